"""Checkpoints: released-weight conversion, strict backbone loading, safe I/O."""
from .loading import extract_backbone_state, load_backbone
from .official import convert_official, detect_layout, infer_arch
from .io import UnsafeCheckpointError, atomic_save, safe_torch_load
from .safe_globals import register_safe_globals

register_safe_globals()

__all__ = [
    'convert_official', 'detect_layout', 'infer_arch', 'load_backbone',
    'extract_backbone_state', 'safe_torch_load', 'atomic_save',
    'UnsafeCheckpointError'
]
