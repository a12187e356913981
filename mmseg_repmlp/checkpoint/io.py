"""Reading checkpoints as untrusted input (``torch.load(weights_only=True)``)."""
import os
import pickle
import zipfile
from typing import Any


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint asked the unpickler for something that could run code."""


def safe_torch_load(path: str, map_location: Any = 'cpu',
                    mmap: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True`` and clear errors.

    ``mmap=True`` maps the tensors instead of reading them (cheap when only
    the meta is needed); a file in the legacy (non-zip) format is read.
    """
    import torch
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Checkpoint {path!r} does not exist.')
    try:
        with open(path, 'rb') as f:
            is_zip = f.read(4) == b'PK\x03\x04'
        return torch.load(path, map_location=map_location, weights_only=True,
                          mmap=mmap and is_zip)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'Refused to load {path!r}: it contains a pickled object that is '
            f'not plain weights ({str(err).splitlines()[0]}). Only load '
            'checkpoints from sources you trust; convert third-party files '
            'with tools/convert_official.py.') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f'Cannot read checkpoint {path!r}: the file is truncated or not a '
            f'PyTorch checkpoint ({err}). Re-download or re-export it.') from None


def atomic_save(obj: Any, path: str, overwrite: bool = True) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename.

    A crash mid-write leaves the previous file (if any) intact, never a
    truncated one.

    Args:
        obj: What to save.
        path (str): Destination.
        overwrite (bool): Replace an existing file. Default: True.
    """
    import tempfile

    import torch
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f'{path!r} exists; pass --force (or choose '
                              'another name) to replace it.')
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
