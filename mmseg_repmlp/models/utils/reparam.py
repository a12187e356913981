"""Pure fusion maths for Locality Injection (RepMLPNet, Ding et al., CVPR 2022).

Every function here takes tensors (or a BatchNorm module for its statistics) and
returns new tensors; none of them touches a model. The blocks in
:mod:`mmseg_repmlp.models.layers` call them from their ``reparameterize()``
methods, and :mod:`mmseg_repmlp.checkpoint` calls them to fold released
checkpoints, so the maths exists once.

Conventions: a convolution kernel is ``(out, in / groups, kh, kw)``; a fully
connected layer stored as a 1x1 convolution is ``(out, in / groups, 1, 1)``.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def bn_to_affine(bn: _BatchNorm) -> Tuple[Tensor, Tensor]:
    """Return ``(scale, shift)`` with ``bn(x) == x * scale + shift`` in eval mode.

    Args:
        bn (_BatchNorm): A batch norm layer with running statistics.

    Returns:
        tuple[Tensor, Tensor]: Per-channel scale and shift, shape ``(C,)``.
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            f'{type(bn).__name__} has no running statistics '
            '(track_running_stats=False); it cannot be folded.')
    std = torch.sqrt(bn.running_var + bn.eps)
    weight = bn.weight if bn.affine else torch.ones_like(std)
    bias = bn.bias if bn.affine else torch.zeros_like(std)
    scale = weight / std
    shift = bias - bn.running_mean * scale
    return scale.detach(), shift.detach()


def fuse_conv_bn(weight: Tensor, bias: Optional[Tensor],
                 bn: _BatchNorm) -> Tuple[Tensor, Tensor]:
    """Fold a BatchNorm that follows a convolution into its kernel and bias.

    Args:
        weight (Tensor): Kernel ``(C_out, C_in / groups, kh, kw)``.
        bias (Tensor, optional): Bias ``(C_out,)`` or None.
        bn (_BatchNorm): The batch norm over the ``C_out`` channels.

    Returns:
        tuple[Tensor, Tensor]: Fused kernel and bias.
    """
    scale, shift = bn_to_affine(bn)
    if scale.numel() != weight.shape[0]:
        raise ValueError(f'BatchNorm has {scale.numel()} channels but the '
                         f'kernel has {weight.shape[0]} output channels.')
    fused_w = weight.detach() * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    fused_b = shift if bias is None else shift + bias.detach() * scale
    return fused_w, fused_b


def fuse_fc_bn_per_shareset(weight: Tensor, bias: Optional[Tensor],
                            bn: _BatchNorm) -> Tuple[Tensor, Tensor]:
    """Fold the BatchNorm over ``S`` sharesets that follows a grouped FC.

    The FC (``fc3``) maps ``S`` groups of ``n = h * w`` values to ``S`` groups
    of ``n`` values; its BatchNorm normalises the ``(., S, h, w)`` tensor, so
    channel ``s`` of the BatchNorm scales the ``n`` output rows of group ``s``.

    Args:
        weight (Tensor): FC kernel ``(S * n, n, 1, 1)``.
        bias (Tensor, optional): FC bias ``(S * n,)`` or None.
        bn (_BatchNorm): Batch norm over ``S`` channels.

    Returns:
        tuple[Tensor, Tensor]: Fused kernel and bias.
    """
    scale, shift = bn_to_affine(bn)
    num_sets = scale.numel()
    if weight.shape[0] % num_sets:
        raise ValueError(f'FC with {weight.shape[0]} outputs cannot be split '
                         f'into {num_sets} sharesets.')
    rows = weight.shape[0] // num_sets
    scale = scale.repeat_interleave(rows)
    shift = shift.repeat_interleave(rows)
    fused_w = weight.detach() * scale.reshape(-1, 1, 1, 1)
    fused_b = shift if bias is None else shift + bias.detach() * scale
    return fused_w, fused_b


def pad_kernel(kernel: Tensor, size: Tuple[int, int]) -> Tensor:
    """Zero-pad a ``(.., kh, kw)`` kernel to ``size``, keeping it centred.

    Padding a ``k x k`` kernel (padding ``k // 2``) to ``K x K`` (padding
    ``K // 2``) gives the same convolution when both sizes are odd.
    """
    kh, kw = kernel.shape[-2:]
    th, tw = size
    if (th - kh) % 2 or (tw - kw) % 2 or th < kh or tw < kw:
        raise ValueError(f'Cannot centre a {kh}x{kw} kernel in {th}x{tw}.')
    ph, pw = (th - kh) // 2, (tw - kw) // 2
    return F.pad(kernel, (pw, pw, ph, ph))


def depthwise_conv_to_fc(kernel: Tensor, bias: Optional[Tensor],
                         window: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """Turn a depthwise convolution on one window into an equivalent FC.

    The convolution (``S`` channels, ``groups=S``, stride 1, padding
    ``k // 2``, zero padding at the window border) is linear in the window, so
    applying it to the ``n = h * w`` one-hot windows gives the columns of its
    ``n x n`` matrix for each channel.

    Args:
        kernel (Tensor): ``(S, 1, k, k)`` with odd ``k``.
        bias (Tensor, optional): ``(S,)`` or None.
        window (tuple[int, int]): Window height and width ``(h, w)``.

    Returns:
        tuple[Tensor, Tensor]: FC kernel ``(S * n, n, 1, 1)`` in ``fc3``'s
        layout (group ``s`` owns rows ``s * n .. s * n + n - 1``) and bias
        ``(S * n,)``.
    """
    num_sets, _, kh, kw = kernel.shape
    h, w = window
    n = h * w
    basis = torch.eye(n, dtype=kernel.dtype, device=kernel.device)
    basis = basis.reshape(n, 1, h, w).repeat(1, num_sets, 1, 1)
    # response[i, s, o] = output o of channel s for the one-hot input i.
    response = F.conv2d(basis, kernel.detach(), padding=(kh // 2, kw // 2),
                        groups=num_sets).reshape(n, num_sets, n)
    fc = response.permute(1, 2, 0).reshape(num_sets * n, n, 1, 1)
    if bias is None:
        fc_bias = kernel.new_zeros(num_sets * n)
    else:
        fc_bias = bias.detach().repeat_interleave(n)
    return fc, fc_bias


def fold_affine_into_pointwise_conv(
        weight: Tensor, bias: Optional[Tensor], scale: Tensor,
        shift: Tensor) -> Tuple[Tensor, Tensor]:
    """Fold ``x * scale + shift`` on the input of a 1x1 convolution into it.

    Exact only for a 1x1 kernel without padding and groups (every output sees
    every input pixel it would have seen, and no zero padding meets ``shift``).

    Args:
        weight (Tensor): ``(C_out, C_in, 1, 1)``.
        bias (Tensor, optional): ``(C_out,)`` or None.
        scale (Tensor): ``(C_in,)``.
        shift (Tensor): ``(C_in,)``.

    Returns:
        tuple[Tensor, Tensor]: Fused kernel and bias.
    """
    if weight.shape[2:] != (1, 1) or weight.shape[1] != scale.numel():
        raise ValueError('Only an ungrouped 1x1 kernel over '
                         f'{scale.numel()} channels can absorb an input '
                         f'affine; got kernel {tuple(weight.shape)}.')
    weight = weight.detach()
    fused_w = weight * scale.reshape(1, -1, 1, 1)
    fused_b = weight.flatten(1) @ shift
    if bias is not None:
        fused_b = fused_b + bias.detach()
    return fused_w, fused_b


def sum_kernels(pairs: Sequence[Tuple[Tensor, Tensor]]) -> Tuple[Tensor, Tensor]:
    """Add ``(kernel, bias)`` pairs of parallel linear branches."""
    weight = sum(p[0] for p in pairs)
    bias = sum(p[1] for p in pairs)
    return weight, bias


def conv_with(weight: Tensor, bias: Tensor, like: nn.Conv2d) -> nn.Conv2d:
    """Build a biased ``nn.Conv2d`` with ``like``'s geometry and given tensors.

    Built on the meta device and then given storage: no random
    initialisation, which would be wasted work and would draw from the
    global generator (shifting a training run's random stream when a hook
    converts a copy of the model).
    """
    conv = nn.Conv2d(
        like.in_channels,
        like.out_channels,
        like.kernel_size,
        stride=like.stride,
        padding=like.padding,
        dilation=like.dilation,
        groups=like.groups,
        bias=True,
        device='meta',
        dtype=weight.dtype).to_empty(device=weight.device)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv
