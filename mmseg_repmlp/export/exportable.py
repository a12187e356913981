"""Export-friendly stand-ins for modules the ONNX exporter cannot write for
any input size."""
import torch
from torch import Tensor, nn


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


def make_exportable(model: nn.Module) -> nn.Module:
    """Swap, in place, modules the exporter cannot write for any input size.

    ``nn.AdaptiveAvgPool2d`` becomes :class:`ExportableAdaptiveAvgPool2d`;
    SyncBN becomes BN (identical in eval mode).
    """
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(model)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(module, child_name,
                        ExportableAdaptiveAvgPool2d(child.output_size))
    return model
