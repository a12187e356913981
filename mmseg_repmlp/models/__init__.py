from .backbones import ARCHS, RepMLPNet, RepMLPNetArch, get_arch
from .losses import ClassWeightedCrossEntropyLoss

__all__ = [
    'ARCHS', 'RepMLPNet', 'RepMLPNetArch', 'get_arch',
    'ClassWeightedCrossEntropyLoss'
]
