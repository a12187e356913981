"""The exact globals MMEngine checkpoints need under ``weights_only=True``.

With torch >= 2.6, ``torch.load`` defaults to ``weights_only=True``, and
MMEngine 0.10.7 (which does not pass ``weights_only``) then refuses its own
checkpoints: their message hub holds ``HistoryBuffer`` objects with numpy
arrays and scalars. Turning safe loading off would let any checkpoint run
code, so instead this module allows exactly what those checkpoints contain:

- ``mmengine.logging.history_buffer.HistoryBuffer``;
- numpy's ``ndarray``, ``dtype`` (and its per-type classes such as
  ``numpy.dtypes.Float64DType``, whose state a dtype restores) and the two
  reconstructors of arrays and
  scalars (under numpy 2's ``numpy._core`` and numpy 1's ``numpy.core``
  names);
- ``getattr``, but only as ``HistoryBuffer`` pickles its statistics methods
  (``getattr(HistoryBuffer, 'min')`` for ``min``, ``max``, ``current``,
  ``mean``). Any other ``getattr`` in a checkpoint is refused: a general
  ``getattr`` would hand an attacker attributes of every allowed object.

:func:`register_safe_globals` runs on ``import mmseg_repmlp``, so MMEngine's
resume / ``load_from``, the test tool and the inference API all load with it.
"""
import pickle
from typing import Any

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

#: Statistics that MMEngine registers on every HistoryBuffer.
HISTORY_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def restricted_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` limited to ``HistoryBuffer``'s statistics methods."""
    if obj is HistoryBuffer and name in HISTORY_STATISTICS and not default:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({getattr(obj, "__name__", type(obj))!r}'
        f', {name!r}); only HistoryBuffer statistics '
        f'({", ".join(sorted(HISTORY_STATISTICS))}) are allowed')


def _numpy_core():
    return np._core if hasattr(np, '_core') else np.core


def safe_globals() -> list:
    """The allowlist, in ``torch.serialization.add_safe_globals`` form."""
    multiarray = _numpy_core().multiarray
    allowed = [HistoryBuffer, np.ndarray, np.dtype,
               (restricted_getattr, 'builtins.getattr')]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dtypes.__all__]
    for core in ('numpy._core', 'numpy.core'):
        allowed.append((multiarray._reconstruct,
                        f'{core}.multiarray._reconstruct'))
        allowed.append((multiarray.scalar, f'{core}.multiarray.scalar'))
    return allowed


def register_safe_globals() -> None:
    """Add :func:`safe_globals` to torch's process-wide allowlist."""
    torch.serialization.add_safe_globals(safe_globals())
