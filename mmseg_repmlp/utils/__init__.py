"""Small generic helpers with no model code: file I/O, comparisons."""
from .fileio import (AtomicLocalBackend, UnsafeCheckpointError, atomic_path,
                     atomic_save, atomic_write, refuse_to_overwrite,
                     safe_torch_load)

__all__ = [
    'AtomicLocalBackend', 'UnsafeCheckpointError', 'atomic_path',
    'atomic_save', 'atomic_write', 'refuse_to_overwrite', 'safe_torch_load'
]
