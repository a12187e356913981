"""Small generic helpers with no model code: file I/O, comparisons."""
from .compare import (
                      DEFAULT_THRESHOLD,
                      ZERO_GUARD,
                      LabelAgreement,
                      label_agreement,
                      logits_to_labels,
                      max_relative_difference,
                      near_ties,
                      reference_scale,
)
from .fileio import (
                      AtomicLocalBackend,
                      UnsafeCheckpointError,
                      atomic_path,
                      atomic_save,
                      atomic_write,
                      refuse_to_overwrite,
                      safe_torch_load,
)

__all__ = [
    'DEFAULT_THRESHOLD', 'ZERO_GUARD', 'LabelAgreement', 'label_agreement',
    'logits_to_labels', 'max_relative_difference', 'near_ties',
    'reference_scale', 'AtomicLocalBackend', 'UnsafeCheckpointError',
    'atomic_path', 'atomic_save', 'atomic_write', 'refuse_to_overwrite',
    'safe_torch_load'
]
