from .cross_entropy_loss import (
                                 ClassWeightedCrossEntropyLoss,
                                 class_weighted_cross_entropy,
)

__all__ = ['ClassWeightedCrossEntropyLoss', 'class_weighted_cross_entropy']
