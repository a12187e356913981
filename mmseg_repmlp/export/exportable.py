"""Export-friendly stand-ins: modules the ONNX exporter cannot write for
any input size, and the RepMLP block in a form that quantizes well."""
from typing import Tuple

import torch
from torch import Tensor, nn

from ..models.layers import (
    RepMLPBlock,
    pad_to_multiple,
    window_partition,
    window_reverse,
)
from ..models.layers.conv_bn import tiled_depthwise_conv
from ..models.utils.reparam import conv_with, depthwise_conv_to_fc


def _pool_matrix(size, out: int, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
    """``(out, size)`` matrix averaging the bins of adaptive pooling.

    Bin ``i`` covers ``[floor(i * size / out), ceil((i + 1) * size / out))``
    as in PyTorch. ``size`` may be a size traced from a tensor shape, so the
    matrix (and the graph) follows the input size.
    """
    idx = torch.arange(out, device=device)
    start = torch.div(idx * size, out, rounding_mode='floor')
    end = torch.div((idx + 1) * size + out - 1, out, rounding_mode='floor')
    pos = torch.arange(size, device=device)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return inside.to(dtype) / (end - start).to(dtype)[:, None]


class ExportableAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` for any input size in an exported graph.

    The TorchScript exporter can only write adaptive pooling for a static
    input size that the output size divides (UPerNet's PPM pools the 1/32
    map to 1, 2, 3 and 6 bins). Here each axis is averaged with a bin
    matrix, ``A_h @ x @ A_w^T``: the same bins, rounding aside.

    Args:
        output_size (int | tuple): As ``nn.AdaptiveAvgPool2d``'s (``None``
            keeps that side).
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.output_size = tuple(output_size)

    def forward(self, x: Tensor) -> Tensor:
        out_h, out_w = self.output_size
        height, width = x.shape[-2:]
        if out_h is None:
            out_h = height
        if out_w is None:
            out_w = width
        if out_h == 1 and out_w == 1:
            return x.mean(dim=(-2, -1), keepdim=True)
        rows = _pool_matrix(height, out_h, x.dtype, x.device)
        cols = _pool_matrix(width, out_w, x.dtype, x.device)
        return torch.matmul(torch.matmul(rows, x), cols.t())


def make_exportable(model: nn.Module,
                    unfold_local_perceptron: bool = False) -> nn.Module:
    """Swap, in place, modules the exporter cannot write for any input size.

    ``nn.AdaptiveAvgPool2d`` becomes :class:`ExportableAdaptiveAvgPool2d`;
    SyncBN becomes BN (identical in eval mode). With
    ``unfold_local_perceptron`` every deployed :class:`RepMLPBlock` becomes
    an :class:`UnfoldedRepMLPBlock` (the form INT8 quantization needs).
    """
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(model)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(module, child_name,
                        ExportableAdaptiveAvgPool2d(child.output_size))
            elif (unfold_local_perceptron and isinstance(child, RepMLPBlock)
                  and child.deploy):
                setattr(module, child_name, UnfoldedRepMLPBlock(child))
    return model


@torch.no_grad()
def split_local_kernel(weight: Tensor, window: Tuple[int, int],
                       kernel_size: int = 3) -> Tuple[Tensor, Tensor]:
    """Split a deploy ``fc3`` into a window FC and a depthwise kernel.

    Locality Injection adds the Local Perceptron (a depthwise ``k x k``
    convolution on each window) to ``fc3`` as an ``n x n`` matrix with a
    few large entries near the diagonal. For each shareset and each offset
    of the ``kernel_size x kernel_size`` neighbourhood, the kernel value is
    the mean of ``fc3``'s entries at that offset; the FC keeps the rest, so
    ``fc3 == rest + depthwise_conv_to_fc(kernel)`` exactly (in real
    arithmetic): the same sum, computed in two parts whose rows each have
    a narrow range of values (what per-channel INT8 needs).

    Args:
        weight (Tensor): Deploy ``fc3`` kernel ``(S * n, n, 1, 1)``.
        window (tuple[int, int]): ``(h, w)`` with ``n = h * w``.
        kernel_size (int): Odd size of the split-off kernel. Default: 3.

    Returns:
        tuple[Tensor, Tensor]: The remaining FC kernel (same shape as
        ``weight``) and the depthwise kernel ``(S, 1, k, k)``.
    """
    h, w = window
    n = h * w
    num_sets = weight.shape[0] // n
    fc = weight.reshape(num_sets, n, n)  # [s, output, input]
    half = kernel_size // 2
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()
    kernel = weight.new_zeros(num_sets, 1, kernel_size, kernel_size)
    for dy in range(-half, half + 1):
        for dx in range(-half, half + 1):
            inside = ((ys + dy >= 0) & (ys + dy < h) & (xs + dx >= 0) &
                      (xs + dx < w))
            if not inside.any():
                continue
            out_idx = torch.nonzero(inside).flatten()
            in_idx = (ys[out_idx] + dy) * w + xs[out_idx] + dx
            values = fc[:, out_idx, in_idx]  # (S, positions)
            kernel[:, 0, dy + half, dx + half] = values.mean(dim=1)
    local, _ = depthwise_conv_to_fc(kernel, None, window)
    return weight - local, kernel


class UnfoldedRepMLPBlock(nn.Module):
    """A deploy :class:`RepMLPBlock` computing its window FC in two parts.

    ``fc3`` is split by :func:`split_local_kernel` into a window FC and a
    depthwise convolution on each window (zero padding at the window
    border), whose sum is the deploy ``fc3``: float outputs equal the
    deploy block's up to rounding. For INT8 export: the folded ``fc3`` has
    a few large near-diagonal entries per row that dominate every row's
    quantization scale; split, both parts quantize per channel with small
    error. The deploy checkpoint is unchanged: this is built from it.

    Args:
        block (RepMLPBlock): A deployed block (``block.deploy``).
    """

    def __init__(self, block: RepMLPBlock) -> None:
        super().__init__()
        if not block.deploy:
            raise ValueError('UnfoldedRepMLPBlock needs a deployed '
                             'RepMLPBlock (call reparameterize() first).')
        self.channels = block.channels
        self.window = block.window
        self.sharesets = block.sharesets
        self.gp = block.gp
        weight, kernel = split_local_kernel(block.fc3.weight, block.window)
        self.fc3 = conv_with(weight, block.fc3.bias, block.fc3)
        self.local = nn.Conv2d(
            self.sharesets, self.sharesets, kernel.shape[-1],
            padding=kernel.shape[-1] // 2, groups=self.sharesets, bias=False)
        with torch.no_grad():
            self.local.weight.copy_(kernel)

    def _window_fc(self, windows: Tensor) -> Tensor:
        return RepMLPBlock._window_fc(self, windows)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.gp(x)
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, self.window)
        windows = window_partition(x, self.window, self.sharesets)
        out = self._window_fc(windows)
        # Each window's channel groups as one map of C channels (as
        # ConvBN.forward_tiled).
        local = tiled_depthwise_conv(windows, self.local,
                                     self.channels // self.sharesets)
        out = out + local
        out = window_reverse(out, x.shape)
        if out.shape[-2:] != (height, width):
            out = out[..., :height, :width]
        return out * gate
