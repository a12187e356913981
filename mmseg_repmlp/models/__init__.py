from .backbones import ARCHS, RepMLPNet, RepMLPNetArch, get_arch

__all__ = ['ARCHS', 'RepMLPNet', 'RepMLPNetArch', 'get_arch']
