"""Checkpoints: deploy checkpoints, safe loading, resuming.

Released-weight conversion lives beside the model
(:mod:`mmseg_repmlp.models.utils.ckpt_convert`); its public names are
re-exported here, where the README documents them.
"""
from ..models.utils.ckpt_convert import (
                                         convert_official,
                                         detect_layout,
                                         infer_arch,
)
from ..models.utils.ckpt_load import extract_backbone_state, load_backbone
from ..utils.fileio import UnsafeCheckpointError, atomic_save, safe_torch_load
from .resume import find_resumable_checkpoint

__all__ = [
    'convert_official', 'detect_layout', 'infer_arch', 'load_backbone',
    'extract_backbone_state', 'safe_torch_load', 'atomic_save',
    'UnsafeCheckpointError', 'find_resumable_checkpoint'
]
