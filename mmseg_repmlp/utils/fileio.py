"""Files: safe reading of untrusted ``torch`` files, atomic writing.

Generic helpers with no model code. Reading uses ``weights_only=True``: a
checkpoint is untrusted input. Writing goes to a temporary file that replaces
the destination only once complete, so a crash never leaves a truncated file
where a good one was, and nothing a user made is replaced without asking.
"""
import contextlib
import os
import pickle
import tempfile
import zipfile
from typing import Any, BinaryIO, Callable, Iterator

import torch
from mmengine.fileio import LocalBackend


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint asked the unpickler for something that could run code."""


def _refusal_reason(err: pickle.UnpicklingError) -> str:
    """Why torch's weights-only unpickler refused a file: the unpickler's
    own words (an allowlist's message among them), not torch's generic
    advice around them, which suggests turning safe loading off."""
    text = str(err)
    marker = 'WeightsUnpickler error:'
    if marker in text:
        reason = text.split(marker, 1)[1].split('Check the documentation')[0]
        if reason.strip():
            return ' '.join(reason.split())
    return text.splitlines()[0] if text else type(err).__name__


def safe_torch_load(path: str, map_location: Any = 'cpu',
                    mmap: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True`` and clear errors.

    ``mmap=True`` maps the tensors instead of reading them (cheap when only
    the meta is needed); a file in the legacy (non-zip) format is read.
    """
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
            f'not plain weights ({_refusal_reason(err)}). Only load '
            'checkpoints from sources you trust; convert third-party files '
            'with tools/convert_official.py.') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f'Cannot read checkpoint {path!r}: the file is truncated or not a '
            f'PyTorch checkpoint ({err}). Re-download or re-export it.') from None


def refuse_to_overwrite(path: str, overwrite: bool = False) -> None:
    """Raise ``FileExistsError`` if ``path`` exists and ``overwrite`` is
    False: nothing a user made is replaced without ``--force``. Tools call it
    before long work too, so that the refusal comes at once."""
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f'{path!r} exists; pass --force (or choose '
                              'another name) to replace it.')


@contextlib.contextmanager
def atomic_path(path: str, overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success rename it there.

    Whatever is written to the temporary path (and checked, if the caller
    checks it inside the block) replaces ``path`` only when the block ends
    without an exception; a crash leaves the previous file, if any, intact,
    and the temporary file is removed.

    Args:
        path (str): Destination.
        overwrite (bool): Replace an existing file. Default: True.
    """
    refuse_to_overwrite(path, overwrite)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the permissions a
        # plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write(path: str, write: Callable[[BinaryIO], None],
                 overwrite: bool = True) -> None:
    """Call ``write(f)`` on a file that replaces ``path`` once complete
    (see :func:`atomic_path`)."""
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())


def atomic_save(obj: Any, path: str, overwrite: bool = True) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f), overwrite=overwrite)


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend, writing files atomically.

    Registered as ``'atomic_local'`` by ``import mmseg_repmlp``; the model
    base config sets it for checkpoints
    (``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')``):
    MMEngine otherwise writes checkpoints in place, and a crash mid-write
    leaves a truncated file where a good one may have been.
    """

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(str(filepath), lambda f: f.write(obj))
