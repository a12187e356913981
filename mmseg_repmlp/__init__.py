"""mmseg_repmlp: RepMLPNet backbones for MMSegmentation.

``import mmseg_repmlp`` registers every module in MMSegmentation's registries.
"""
from . import checkpoint  # noqa: F401  (safe-loading allowlist)
from .deploy import is_deployed, reparameterize_model
from .engine import RepMLPDeployHook
from .models import ARCHS, RepMLPNet, RepMLPNetArch
from .version import __version__

__all__ = [
    'ARCHS', 'RepMLPNet', 'RepMLPNetArch', 'reparameterize_model',
    'is_deployed', 'RepMLPDeployHook', '__version__'
]
