"""``conv2d(gelu(h))`` that keeps ``h``, not ``gelu(h)``, for the backward pass.

Autograd saves both for the FFN's ``fc2(gelu(h))``: GELU keeps its input
``h`` and the convolution keeps its input ``gelu(h)`` for the weight
gradient. Both have the FFN's hidden width, four times the unit's channels:
the largest maps of a RepMLPNet unit. :class:`GeluConv2d` saves ``h`` alone
and recomputes ``gelu(h)`` (one elementwise op) in the backward pass, with
the same kernels autograd would run, so the gradients are bitwise the same
and a training step keeps about a fifth less activation memory.

Under autocast it casts as autocast would (``gelu`` in ``h``'s dtype, then
the convolution's input, weight and bias in the autocast dtype), and saves
the cast weight, as autograd does for an autocast convolution.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GeluConv2d(torch.autograd.Function):
    """``F.conv2d(F.gelu(h, approximate), weight, bias, ...)``."""

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Optional[Tensor],
                stride: Tuple[int, int], padding: Tuple[int, int],
                dilation: Tuple[int, int], groups: int,
                approximate: str) -> Tensor:
        device = h.device.type
        dtype = (torch.get_autocast_dtype(device)
                 if torch.is_autocast_enabled(device) else weight.dtype)
        weight_c = weight.to(dtype)
        bias_c = None if bias is None else bias.to(dtype)
        with torch.autocast(device, enabled=False):
            g = F.gelu(h, approximate=approximate).to(dtype)
            out = F.conv2d(g, weight_c, bias_c, stride, padding, dilation,
                           groups)
        ctx.save_for_backward(h, weight_c)
        ctx.conv = (stride, padding, dilation, groups)
        ctx.approximate = approximate
        ctx.weight_dtype = weight.dtype
        ctx.bias = None if bias is None else (bias.shape, bias.dtype)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        h, weight_c = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        g = F.gelu(h, approximate=ctx.approximate).to(weight_c.dtype)
        needs = ctx.needs_input_grad
        grad_g, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out.to(weight_c.dtype), g, weight_c,
            None if ctx.bias is None else list(ctx.bias[0]), list(stride),
            list(padding), list(dilation), False, [0] * len(stride), groups,
            [needs[0], needs[1], needs[2] and ctx.bias is not None])
        grad_h = None
        if needs[0]:
            grad_h = torch.ops.aten.gelu_backward(
                grad_g.to(h.dtype), h, approximate=ctx.approximate)
        if grad_w is not None:
            grad_w = grad_w.to(ctx.weight_dtype)
        if grad_b is not None:
            grad_b = grad_b.to(ctx.bias[1])
        return grad_h, grad_w, grad_b, None, None, None, None, None


def gelu_conv(h: Tensor, act: nn.GELU, conv: nn.Conv2d) -> Tensor:
    """``conv(act(h))`` through :class:`GeluConv2d`."""
    if conv.padding_mode != 'zeros' or isinstance(conv.padding, str):
        raise ValueError('gelu_conv supports numeric zero padding only.')
    return GeluConv2d.apply(h, conv.weight, conv.bias, conv.stride,
                            conv.padding, conv.dilation, conv.groups,
                            act.approximate)
