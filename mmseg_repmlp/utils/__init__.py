"""Generic helpers, free of model code."""
from .compare import (DEFAULT_THRESHOLD, ZERO_GUARD, LabelAgreement,
                      label_agreement, logits_to_labels,
                      max_relative_difference, near_ties, reference_scale)

__all__ = [
    'DEFAULT_THRESHOLD', 'ZERO_GUARD', 'LabelAgreement', 'label_agreement',
    'logits_to_labels', 'max_relative_difference', 'near_ties',
    'reference_scale'
]
