from .arch import ARCHS, RepMLPNetArch, get_arch
from .repmlpnet import RepMLPNet

__all__ = ['ARCHS', 'RepMLPNetArch', 'get_arch', 'RepMLPNet']
