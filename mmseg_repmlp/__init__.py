"""mmseg_repmlp: RepMLPNet backbones for MMSegmentation.

``import mmseg_repmlp`` registers every module in MMSegmentation's registries.
"""
from .deploy import is_deployed, reparameterize_model
from .models import ARCHS, RepMLPNet, RepMLPNetArch
from .version import __version__

__all__ = [
    'ARCHS', 'RepMLPNet', 'RepMLPNetArch', 'reparameterize_model',
    'is_deployed', '__version__'
]
