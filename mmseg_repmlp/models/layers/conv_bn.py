"""Convolution + BatchNorm (+ ReLU), foldable into one biased convolution."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn

from ..utils.reparam import conv_with, fuse_conv_bn


class ConvBN(nn.Module):
    """``conv -> bn -> act`` as RepMLPNet's ``conv_bn`` / ``conv_bn_relu``.

    The attribute names (``conv``, ``bn``) match the released checkpoints.
    In deploy form the BatchNorm is folded into a biased ``conv``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Square kernel size.
        stride (int): Stride. Default: 1.
        padding (int): Zero padding. Default: 0.
        groups (int): Convolution groups. Default: 1.
        with_relu (bool): Apply ReLU after the norm. Default: False.
        norm_cfg (dict): Config of the norm layer. Default: ``dict(type='BN')``.
        deploy (bool): Build the folded structure directly. Default: False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 *,
                 stride: int = 1,
                 padding: int = 0,
                 groups: int = 1,
                 with_relu: bool = False,
                 norm_cfg: Optional[dict] = None,
                 deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            groups=groups,
            bias=deploy)
        if not deploy:
            self.bn = build_norm_layer(norm_cfg or dict(type='BN'),
                                       out_channels)[1]
        self.act = nn.ReLU() if with_relu else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.after_conv(self.conv(x))

    def after_conv(self, x: Tensor) -> Tensor:
        """What follows the convolution: the norm (training form), then
        the activation."""
        if not self.deploy:
            x = self.bn(x)
        return self.act(x)

    def forward_tiled(self, x: Tensor, tiles: int) -> Tensor:
        """``forward(x)`` of a depthwise ConvBN over many small maps, fast.

        ``x`` of shape ``(N, C, H, W)`` is viewed as ``(N / tiles,
        C * tiles, H, W)`` and convolved with the kernel tiled ``tiles``
        times along the channels: the same numbers, but one depthwise
        convolution over ``C * tiles`` channels instead of a grouped one over
        ``N`` maps of ``C`` channels, which CPU kernels run many times slower
        when ``C`` is small (the Local Perceptron of RepMLPNet-B256's first
        stage: 768 single-channel 64x64 windows at 512x1024). The norm
        still sees ``(N, C, H, W)``.

        Args:
            x (Tensor): ``(N, C, H, W)``; ``tiles`` must divide ``N``.
            tiles (int): How many consecutive maps become one.
        """
        out = tiled_depthwise_conv(x, self.conv, tiles)
        return self.after_conv(out)

    @torch.no_grad()
    def fused_weight_bias(self) -> Tuple[Tensor, Tensor]:
        """The deploy form's kernel and bias (``bn`` folded into ``conv``),
        computed without changing the module."""
        if self.deploy:
            return self.conv.weight, self.conv.bias
        return fuse_conv_bn(self.conv.weight, self.conv.bias, self.bn)

    @torch.no_grad()
    def load_fused(self, weight: Tensor, bias: Tensor) -> None:
        """Switch to the deploy form with the given kernel and bias."""
        self.conv = conv_with(weight, bias, self.conv)
        if hasattr(self, 'bn'):
            del self.bn
        self.deploy = True

    def reparameterize(self) -> None:
        """Fold ``bn`` into ``conv``; a no-op when already in deploy form."""
        if not self.deploy:
            self.load_fused(*self.fused_weight_bias())


def tiled_depthwise_conv(x: Tensor, conv: nn.Conv2d, tiles: int) -> Tensor:
    """``conv(x)`` for a depthwise ``conv`` over many small maps, as one
    depthwise convolution over ``tiles`` consecutive maps at a time (see
    :meth:`ConvBN.forward_tiled`); ``(N, C, H', W')`` like ``conv(x)``.

    Raises:
        ValueError: ``conv`` is not depthwise over ``x``'s channels, or
            ``tiles`` does not divide ``N``.
    """
    n, channels, height, width = x.shape
    if (conv.groups != channels or conv.out_channels != channels
            or n % tiles):
        raise ValueError(
            f'forward_tiled needs a depthwise conv over the {channels} '
            f'input channels and tiles ({tiles}) dividing the {n} maps.')
    weight = conv.weight.repeat(tiles, 1, 1, 1)
    bias = None if conv.bias is None else conv.bias.repeat(tiles)
    out = F.conv2d(
        x.reshape(n // tiles, channels * tiles, height, width), weight,
        bias, conv.stride, conv.padding, conv.dilation,
        groups=channels * tiles)
    return out.view(n, channels, *out.shape[-2:])
