"""Comparing two models' outputs: relative logit difference, labels, ties.

Every check that one model reproduces another (re-parameterization, ONNX
export, the benchmark's agreement columns) measures the same things the same
way, with these helpers. They take PyTorch tensors or NumPy arrays.
"""
from typing import NamedTuple, Optional, Union

import numpy as np
import torch
from torch import Tensor

Array = Union[Tensor, np.ndarray]

#: The smallest scale a difference is taken relative to. An all-zero (or
#: denormal) reference has no scale to speak of, so a difference from it is
#: read against this instead of dividing by zero: equal all-zero outputs give
#: 0, any real difference a huge number that fails every tolerance.
ZERO_GUARD = 1e-12

#: The threshold MMSegmentation's decode heads use for a single-class
#: (sigmoid) output when their config sets none.
DEFAULT_THRESHOLD = 0.3


def _as_numpy(x: Array) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_float(x: Array) -> Array:
    """``x`` in at least float32, so that differences neither wrap around
    (unsigned ints) nor round away (half precision)."""
    if isinstance(x, Tensor):
        return x if x.dtype in (torch.float32, torch.float64) else x.float()
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


def reference_scale(reference: Array) -> float:
    """``max |reference|``, never below :data:`ZERO_GUARD`."""
    return max(float(abs(_as_float(reference)).max()), ZERO_GUARD)


def max_relative_difference(actual: Array, reference: Array) -> float:
    """``max |actual - reference| / max |reference|``.

    The difference is relative to the reference's largest magnitude, not
    element-wise: logits near zero would otherwise make any rounding look
    large. Where the reference is all zeros the divisor is
    :data:`ZERO_GUARD` (see there). NaN in either input gives NaN, which
    fails every ``<= tolerance`` check.

    Args:
        actual (Tensor | np.ndarray): The output under test.
        reference (Tensor | np.ndarray): The output it should reproduce, of
            the same shape.

    Returns:
        float: The relative difference (0.0 when equal).
    """
    if actual.shape != reference.shape:
        raise ValueError(f'Cannot compare outputs of shapes {actual.shape} '
                         f'and {reference.shape}.')
    if isinstance(actual, Tensor) != isinstance(reference, Tensor):
        actual, reference = _as_numpy(actual), _as_numpy(reference)
    actual, reference = _as_float(actual), _as_float(reference)
    return float(abs(actual - reference).max()) / reference_scale(reference)


def near_ties(logits: Array, tolerance: float) -> Array:
    """Pixels whose label float rounding may decide.

    Those whose two best classes are at most ``tolerance`` x the largest
    logit magnitude apart, or, for a single-class head, whose logit is that
    close to 0. There any two correct implementations may pick different
    labels, so label maps are compared on the other pixels only.

    Args:
        logits (Tensor | np.ndarray): ``(N, C, H, W)`` logits.
        tolerance (float): Margin relative to the largest logit magnitude.

    Returns:
        Tensor | np.ndarray: ``(N, H, W)`` boolean mask, of ``logits``' kind
        (a tensor on the CPU).
    """
    array = _as_numpy(_as_float(logits))
    margin = tolerance * reference_scale(array)
    if array.shape[1] == 1:
        ties = np.abs(array[:, 0]) <= margin
    else:
        top2 = np.partition(array, -2, axis=1)[:, -2:]
        ties = (top2[:, 1] - top2[:, 0]) <= margin
    return torch.from_numpy(ties) if isinstance(logits, Tensor) else ties


def logits_to_labels(logits: Array,
                     threshold: Optional[float] = None,
                     dtype: Optional[Union[torch.dtype, np.dtype]] = None
                     ) -> Array:
    """MMSegmentation's labels for ``(N, C, H, W)`` logits: ``(N, H, W)``.

    The best class, or for a single-class head ``sigmoid(logit) >
    threshold``. Written with tensor operations only, so it can be traced
    into an exported graph.

    Args:
        logits (Tensor | np.ndarray): The logits.
        threshold (float, optional): The decode head's ``threshold``; None
            is MMSegmentation's default, :data:`DEFAULT_THRESHOLD`.
        dtype (torch.dtype | np.dtype, optional): Of the labels.
            Default: int64.

    Returns:
        Tensor | np.ndarray: The labels, of ``logits``' kind.
    """
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    if isinstance(logits, Tensor):
        if logits.shape[1] == 1:
            labels = (logits.sigmoid() > threshold)[:, 0]
        else:
            labels = logits.argmax(dim=1)
        return labels.to(torch.int64 if dtype is None else dtype)
    logits = np.asarray(logits)
    if logits.shape[1] == 1:
        labels = (1 / (1 + np.exp(-logits[:, 0]))) > threshold
    else:
        labels = logits.argmax(axis=1)
    return labels.astype(np.int64 if dtype is None else dtype)


class LabelAgreement(NamedTuple):
    """How far two label maps agree where float rounding cannot decide.

    Attributes:
        equal_fraction (float): Of the decided pixels, the fraction with the
            same label (1.0 when no pixel is decided).
        near_ties (int): Pixels not compared (see :func:`near_ties`).
    """
    equal_fraction: float
    near_ties: int

    @property
    def identical(self) -> bool:
        return self.equal_fraction == 1.0


def label_agreement(labels: Array, ref_labels: Array, ref_logits: Array,
                    tolerance: float) -> LabelAgreement:
    """Compare ``labels`` with ``ref_labels`` off the reference's near ties.

    Args:
        labels (Tensor | np.ndarray): ``(N, H, W)`` labels under test.
        ref_labels (Tensor | np.ndarray): The reference labels.
        ref_logits (Tensor | np.ndarray): ``(N, C, H, W)`` logits the
            reference labels come from.
        tolerance (float): See :func:`near_ties`.
    """
    labels, ref_labels = _as_numpy(labels), _as_numpy(ref_labels)
    if labels.shape != ref_labels.shape:
        raise ValueError(f'Cannot compare label maps of shapes '
                         f'{labels.shape} and {ref_labels.shape}.')
    decided = ~_as_numpy(near_ties(ref_logits, tolerance))
    same = labels.astype(np.int64) == ref_labels.astype(np.int64)
    equal = float(same[decided].mean()) if decided.any() else 1.0
    return LabelAgreement(equal, int((~decided).sum()))
