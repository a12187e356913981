"""Window partition for the RepMLP block, and the padding it needs.

A ``(N, C, H, W)`` map is cut into non-overlapping ``h x w`` windows and, inside
each window, the ``C`` channels into ``C / S`` groups of ``S`` consecutive
channels (channel ``c = g * S + s``), giving a ``(N * nH * nW * C / S, S, h, w)``
tensor. This grouping is the one the released RepMLPNet weights were trained
with. :func:`window_reverse` is the exact inverse of :func:`window_partition`
for any number of windows; the official implementation's inverse is only right
for a single window, which segmentation inputs never are.
"""
from typing import Tuple

import torch.nn.functional as F
from torch import Tensor


def pad_to_multiple(x: Tensor, multiple: Tuple[int, int]) -> Tensor:
    """Zero-pad the bottom and right of ``x`` so H and W divide ``multiple``.

    Returns ``x`` itself (no copy) when nothing needs padding.
    """
    height, width = x.shape[-2:]
    pad_h = -height % multiple[0]
    pad_w = -width % multiple[1]
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h))


def window_partition(x: Tensor, window: Tuple[int, int],
                     sharesets: int) -> Tensor:
    """Cut ``(N, C, H, W)`` into ``(N * nH * nW * C / S, S, h, w)`` windows.

    H and W must be multiples of the window size (see :func:`pad_to_multiple`).
    """
    n, c, height, width = x.shape
    h, w = window
    if height % h or width % w:
        raise ValueError(f'A {height}x{width} map is not a whole number of '
                         f'{h}x{w} windows; pad it first.')
    x = x.reshape(n, c, height // h, h, width // w, w)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (N, nH, nW, C, h, w)
    return x.reshape(-1, sharesets, h, w)


def window_reverse(windows: Tensor, shape: Tuple[int, int, int, int]) -> Tensor:
    """Put windows from :func:`window_partition` back into a ``shape`` map."""
    n, c, height, width = shape
    h, w = windows.shape[-2:]
    x = windows.reshape(n, height // h, width // w, c, h, w)
    x = x.permute(0, 3, 1, 4, 2, 5)  # (N, C, nH, h, nW, w)
    return x.reshape(n, c, height, width)
