"""The RepMLP block: Global Perceptron, window FC and Local Perceptron.

RepMLPNet (Ding et al., "RepMLPNet: Hierarchical Vision MLP with
Re-parameterized Locality", CVPR 2022). Attribute names and parameter shapes
match the released ImageNet checkpoints (``gp.fc1``, ``gp.fc2``, ``fc3``,
``fc3_bn``, ``repconv{k}.conv``, ``repconv{k}.bn``).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils.reparam import (
    bn_to_affine,
    conv_with,
    depthwise_conv_to_fc,
    fuse_fc_bn_per_shareset,
    pad_kernel,
    sum_kernels,
)
from .conv_bn import ConvBN
from .window import (
    merge_by_shareset,
    pad_to_multiple,
    partition_by_shareset,
    window_partition,
    window_reverse,
)


class GlobalPerceptron(nn.Module):
    """Channel gate from the mean of the whole map (squeeze-excitation form).

    Args:
        channels (int): Channels of the map.
        hidden_channels (int): Channels of the bottleneck.
    """

    def __init__(self, channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden_channels, 1, bias=True)
        self.fc2 = nn.Conv2d(hidden_channels, channels, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        x = x.mean(dim=(2, 3), keepdim=True)
        x = F.relu(self.fc1(x))
        return torch.sigmoid(self.fc2(x))


class RepMLPBlock(nn.Module):
    """RepMLP block on a map of any size.

    The map is cut into ``h x w`` windows; for each of the ``S`` sharesets a
    ``(h*w) x (h*w)`` FC (``fc3``) is shared by every window and every channel
    group. During training, depthwise ``k x k`` convolutions on each window
    (the Local Perceptron) are added to it; :meth:`reparameterize` folds them
    and every BatchNorm into ``fc3`` (Locality Injection). The result is
    multiplied by the Global Perceptron's channel gate.

    A map whose size is not a multiple of the window is zero-padded at the
    bottom and right before the partition and cropped after it: the padded
    windows see zeros there, exactly as the Local Perceptron's zero padding at a
    window border does, so both forms stay equal. The Global Perceptron
    averages the unpadded map only.

    Args:
        channels (int): Channels ``C`` of the map.
        window (tuple[int, int]): Window size ``(h, w)``.
        sharesets (int): Number of sharesets ``S``; must divide ``C``.
        kernels (Sequence[int]): Local Perceptron kernel sizes (odd,
            distinct; any size, also larger than the window). Default: (1, 3).
        reduction (int): Global Perceptron reduction. Default: 4.
        norm_cfg (dict, optional): Config of the norm layers.
            Default: None (BN).
        deploy (bool): Build the re-parameterized structure. Default: False.
    """

    def __init__(self,
                 channels: int,
                 window: Tuple[int, int],
                 sharesets: int,
                 *,
                 kernels: Sequence[int] = (1, 3),
                 reduction: int = 4,
                 norm_cfg: Optional[dict] = None,
                 deploy: bool = False) -> None:
        super().__init__()
        if channels % sharesets:
            raise ValueError(f'sharesets ({sharesets}) must divide the '
                             f'channels ({channels}).')
        for k in kernels:
            if k <= 0 or k % 2 == 0:
                raise ValueError('Local Perceptron kernels must be positive '
                                 f'and odd; got {k}.')
        if len(set(kernels)) != len(kernels):
            # One repconv{k} module per size: a repeated size would be one
            # branch counted twice, which no checkpoint layout describes.
            raise ValueError('Local Perceptron kernels must be distinct; '
                             f'got {tuple(kernels)}.')
        self.channels = channels
        self.window = tuple(window)
        self.sharesets = sharesets
        self.kernels = tuple(kernels)
        self.deploy = deploy
        h, w = self.window
        self.gp = GlobalPerceptron(channels, channels // reduction)
        fc_channels = sharesets * h * w
        self.fc3 = nn.Conv2d(
            fc_channels, fc_channels, 1, groups=sharesets, bias=deploy)
        if not deploy:
            self.fc3_bn = build_norm_layer(norm_cfg or dict(type='BN'),
                                           sharesets)[1]
            for k in self.kernels:
                self.add_module(
                    f'repconv{k}',
                    ConvBN(
                        sharesets,
                        sharesets,
                        k,
                        padding=k // 2,
                        groups=sharesets,
                        norm_cfg=norm_cfg))

    def forward(self, x: Tensor) -> Tensor:
        gate = self.gp(x)
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, self.window)
        windows = window_partition(x, self.window, self.sharesets)
        out = self._window_fc(windows)
        if not self.deploy:
            out = self.fc3_bn(out)
            # Each window's channel groups as one map (see forward_tiled).
            groups = self.channels // self.sharesets
            for k in self.kernels:
                out = out + getattr(self, f'repconv{k}').forward_tiled(
                    windows, groups)
        out = window_reverse(out, x.shape)
        if out.shape[-2:] != (height, width):
            out = out[..., :height, :width]
        return out * gate

    def _window_fc(self, windows: Tensor) -> Tensor:
        """``fc3`` on ``(B, S, h, w)`` windows, as matrix products.

        ``fc3`` keeps the released checkpoints' layout (a grouped 1x1 conv,
        ``(S * n, n, 1, 1)``), but a convolution over 1x1 maps is several
        times slower than the same product as a GEMM: one ``linear`` when
        ``S == 1``, else a batched matmul over the sharesets.
        """
        num_windows, num_sets = windows.shape[:2]
        area = windows.shape[2] * windows.shape[3]
        weight = self.fc3.weight.view(num_sets, area, area)
        bias = self.fc3.bias
        x = windows.reshape(num_windows, num_sets, area)
        if num_sets == 1:
            # A view, not weight[0]: indexing would cost a zero-filled
            # (n, n) gradient buffer in every backward pass.
            out = F.linear(x.view(num_windows, area), weight.view(area, area),
                           bias)
        else:
            x = x.transpose(0, 1)  # (S, B, n)
            if bias is None:
                out = torch.bmm(x, weight.transpose(1, 2))
            else:
                out = torch.baddbmm(
                    bias.view(num_sets, 1, area), x, weight.transpose(1, 2))
            out = out.transpose(0, 1)
        return out.reshape(windows.shape)

    def forward_residual(self, x: Tensor, norm: _BatchNorm) -> Tensor:
        """``x + self(norm(x))`` for inference with the deploy form, in three
        passes over the map and one GEMM.

        ``norm`` (an eval-mode BatchNorm, the unit's ``prebn1``) is applied
        as a per-channel affine map during the copy that lays the windows
        out shareset-major (:func:`~.window.partition_by_shareset`), and the
        Global Perceptron reads its effect on the mean (the mean of an
        affine map is the affine map of the mean). ``fc3`` runs as one
        ``addmm``/``baddbmm`` on contiguous operands, and putting the windows
        back, the gate and the residual add are one ``addcmul``
        (:func:`~.window.merge_by_shareset`). Unfused, the same work is a
        norm pass, two permuting copies before and after a GEMM on strided
        batches, a transpose copy, the gate and the add. Same numbers up to
        float rounding; under autocast the windows are written in the
        autocast dtype directly. A map that needs padding takes the plain
        path.
        """
        if not self.deploy:
            raise RuntimeError('forward_residual needs the deploy form; '
                               'call reparameterize() first.')
        height, width = x.shape[-2:]
        h, w = self.window
        if height % h or width % w or not (
                x.is_contiguous()
                or x.is_contiguous(memory_format=torch.channels_last)):
            return x + self(norm(x))
        scale, shift = self._affine_of(norm)
        gate = self.gp(
            torch.addcmul(shift.view(1, -1, 1, 1),
                          x.mean(dim=(2, 3), keepdim=True),
                          scale.view(1, -1, 1, 1)))
        device = x.device.type
        dtype = (torch.get_autocast_dtype(device)
                 if torch.is_autocast_enabled(device) else None)
        windows = partition_by_shareset(x, self.window, self.sharesets,
                                        scale, shift, dtype)
        sets, area = self.sharesets, h * w
        weight = self.fc3.weight.view(sets, area, area)
        bias = self.fc3.bias.view(sets, 1, area)
        if sets == 1:
            out = torch.addmm(bias[0], windows[0], weight[0].t())[None]
        else:
            out = torch.baddbmm(bias, windows, weight.transpose(1, 2))
        return merge_by_shareset(out, self.window, x, gate)

    def _affine_of(self, norm: _BatchNorm) -> Tuple[Tensor, Tensor]:
        """``bn_to_affine(norm)``, computed again only when the norm's
        tensors or eps change: five tiny ops per unit and call otherwise,
        each a parallel region of its own on the CPU."""
        key = (id(norm), norm.eps, *((t.data_ptr(), t._version, t.dtype)
                                     for t in (norm.weight, norm.bias,
                                               norm.running_mean,
                                               norm.running_var)
                                     if t is not None))
        cached = self.__dict__.get('_affine_cache')
        if cached is None or cached[0] != key:
            cached = (key, bn_to_affine(norm))
            self.__dict__['_affine_cache'] = cached
        return cached[1]

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold ``fc3_bn`` and the Local Perceptron into a biased ``fc3``."""
        if self.deploy:
            return
        branches = [
            fuse_fc_bn_per_shareset(self.fc3.weight, None, self.fc3_bn)
        ]
        if self.kernels:
            largest = max(self.kernels)
            local = []
            for k in self.kernels:
                weight, bias = getattr(self, f'repconv{k}').fused_weight_bias()
                local.append((pad_kernel(weight, (largest, largest)), bias))
            kernel, bias = sum_kernels(local)
            branches.append(depthwise_conv_to_fc(kernel, bias, self.window))
        weight, bias = sum_kernels(branches)
        self.fc3 = conv_with(weight, bias, self.fc3)
        del self.fc3_bn
        for k in self.kernels:
            delattr(self, f'repconv{k}')
        self.deploy = True
