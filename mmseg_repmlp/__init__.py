"""mmseg_repmlp: RepMLPNet backbones for MMSegmentation.

``import mmseg_repmlp`` registers, and this file is the one place that does:

- ``RepMLPNet`` in MMSegmentation's ``MODELS`` (``models``);
- the hooks ``RepMLPDeployHook``, ``StopOnNonFiniteLossHook`` and
  ``RNGStateHook`` in MMEngine's ``HOOKS`` (``engine``);
- the ``'atomic_local'`` file backend that writes checkpoints atomically;
- the exact objects MMEngine checkpoints hold in torch's ``weights_only``
  allowlist (:mod:`mmseg_repmlp.checkpoint.safe_globals`).
"""
from mmengine.fileio import register_backend

from .checkpoint.safe_globals import register_safe_globals
from .deploy import is_deployed, reparameterize_model
from .engine import RepMLPDeployHook, RNGStateHook, StopOnNonFiniteLossHook
from .models import ARCHS, RepMLPNet, RepMLPNetArch
from .utils.fileio import AtomicLocalBackend
from .version import __version__

register_backend('atomic_local', AtomicLocalBackend, force=True)
register_safe_globals()

__all__ = [
    'ARCHS', 'RepMLPNet', 'RepMLPNetArch', 'reparameterize_model',
    'is_deployed', 'RepMLPDeployHook', 'RNGStateHook',
    'StopOnNonFiniteLossHook', '__version__'
]
