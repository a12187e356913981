"""Window partition for the RepMLP block, and the padding it needs.

A ``(N, C, H, W)`` map is cut into non-overlapping ``h x w`` windows and, inside
each window, the ``C`` channels into ``C / S`` groups of ``S`` consecutive
channels (channel ``c = g * S + s``), giving a ``(N * nH * nW * C / S, S, h, w)``
tensor. This grouping is the one the released RepMLPNet weights were trained
with. :func:`window_reverse` is the exact inverse of :func:`window_partition`
for any number of windows; the official implementation's inverse is only right
for a single window, which segmentation inputs never are.
"""
from typing import Optional, Tuple

import torch
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


def map_view(x: Tensor, window: Tuple[int, int], sharesets: int) -> Tensor:
    """A ``(N, C / S, S, nH, h, nW, w)`` view of a ``(N, C, H, W)`` map.

    No copy: ``x`` must be contiguous or channels-last (what the
    convolutions before it return) and a whole number of windows. Channel
    ``c = g * S + s`` is at ``[:, g, s]``, as in :func:`window_partition`.
    """
    n, c, height, width = x.shape
    h, w = window
    groups = c // sharesets
    if x.is_contiguous():
        return x.view(n, groups, sharesets, height // h, h, width // w, w)
    if x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).view(n, height // h, h, width // w, w,
                                          groups, sharesets).permute(
                                              0, 5, 6, 1, 2, 3, 4)
    raise ValueError('map_view needs a contiguous or channels-last map.')


def partition_by_shareset(x: Tensor,
                          window: Tuple[int, int],
                          sharesets: int,
                          scale: Optional[Tensor] = None,
                          shift: Optional[Tensor] = None,
                          dtype: Optional[torch.dtype] = None) -> Tensor:
    """Windows of ``x`` as ``(S, N * nH * nW * C / S, h * w)``, contiguous.

    The shareset-major twin of :func:`window_partition`: the rows of
    shareset ``s`` are every window's channels ``g * S + s``, in the order
    ``(N, nH, nW, g)``, so the window FC is one (batched) GEMM on contiguous
    operands. With ``scale`` and ``shift`` (per channel, ``(C,)``) it
    returns the windows of ``x * scale + shift``: the affine map and the
    permuting copy are one pass over the map. ``dtype`` (default ``x``'s)
    is the dtype of the windows, e.g. autocast's, so that the GEMM does not
    cast them again.
    """
    n, c, height, width = x.shape
    h, w = window
    groups = c // sharesets
    source = map_view(x, window, sharesets).permute(2, 0, 3, 5, 1, 4, 6)
    out = torch.empty(source.shape, dtype=dtype or x.dtype, device=x.device)
    if scale is None:
        out.copy_(source)
    else:
        # (C,) -> broadcast over (S, N, nH, nW, G, h, w)
        def per_channel(v: Tensor) -> Tensor:
            return v.view(groups, sharesets).t().reshape(
                sharesets, 1, 1, 1, groups, 1, 1)

        torch.addcmul(per_channel(shift), source, per_channel(scale),
                      out=out)
    return out.view(sharesets, -1, h * w)


def merge_by_shareset(windows: Tensor, window: Tuple[int, int],
                      residual: Tensor, gate: Tensor) -> Tensor:
    """``residual + reverse(windows) * gate`` in one pass over the map.

    ``windows`` is ``(S, B, h * w)`` as :func:`partition_by_shareset` lays
    them out for a map of ``residual``'s shape (a whole number of windows);
    ``gate`` is ``(N, C, 1, 1)``. The result has ``residual``'s memory
    format.
    """
    n, c, height, width = residual.shape
    sharesets = windows.shape[0]
    groups = c // sharesets
    h, w = window
    source = windows.view(sharesets, n, height // h, width // w, groups, h,
                          w).permute(1, 4, 0, 2, 5, 3, 6)
    out = torch.empty_like(residual)
    torch.addcmul(map_view(residual, window, sharesets), source,
                  gate.view(n, groups, sharesets, 1, 1, 1, 1),
                  out=map_view(out, window, sharesets))
    return out
