"""mmseg_repmlp: RepMLPNet backbones for MMSegmentation.

``import mmseg_repmlp`` registers, and this file is the one place that does:

- ``RepMLPNet`` and ``ClassWeightedCrossEntropyLoss`` (MMSegmentation's
  class-weighted cross-entropy, fixed for ignored pixels) in
  MMSegmentation's ``MODELS`` (``models``);
- the hooks ``RepMLPDeployHook``, ``StopOnNonFiniteLossHook`` and
  ``RNGStateHook`` in MMEngine's ``HOOKS`` (``engine``);
- the ``'atomic_local'`` file backend, also for every local path, so that
  MMEngine writes checkpoints atomically whatever schedule a config has;
- ``mmseg_repmlp::`` as a config scheme (``_base_ =
  ['mmseg_repmlp::_base_/repmlpnet_upernet.py']``) for installed packages;
- the exact objects MMEngine checkpoints hold in torch's ``weights_only``
  allowlist (:mod:`mmseg_repmlp.checkpoint.safe_globals`).

It also hides setuptools' notice that ``pkg_resources`` is deprecated, which
MMEngine's package lookup (``mmseg::`` config bases) triggers on every
config it reads; nothing a user of this package can act on.
"""
import warnings

from mmengine.config.utils import MODULE2PACKAGE
from mmengine.fileio import register_backend

from .checkpoint.safe_globals import register_safe_globals
from .deploy import is_deployed, reparameterize_model
from .engine import RepMLPDeployHook, RNGStateHook, StopOnNonFiniteLossHook
from .models import ARCHS, RepMLPNet, RepMLPNetArch
from .utils.fileio import AtomicLocalBackend
from .version import __version__

register_backend('atomic_local', AtomicLocalBackend, force=True, prefixes='')
MODULE2PACKAGE.setdefault('mmseg_repmlp', 'mmseg_repmlp')
register_safe_globals()
warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                        category=UserWarning)

__all__ = [
    'ARCHS', 'RepMLPNet', 'RepMLPNetArch', 'reparameterize_model',
    'is_deployed', 'RepMLPDeployHook', 'RNGStateHook',
    'StopOnNonFiniteLossHook', '__version__'
]
