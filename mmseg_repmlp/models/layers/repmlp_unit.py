"""RepMLPNet unit: pre-norm RepMLP block and pre-norm FFN, both residual."""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils.reparam import bn_to_affine, fold_affine_into_pointwise_conv
from .conv_bn import ConvBN
from .gelu_conv import gelu_conv
from .repmlp_block import RepMLPBlock


class FFNBlock(nn.Module):
    """1x1 conv-BN, GELU, 1x1 conv-BN (``ffn_fc1``, ``ffn_fc2``).

    With autograd recording (training), GELU and ``ffn_fc2``'s convolution
    run as :func:`~.gelu_conv.gelu_conv`, which keeps the GELU input only
    for the backward pass: the same outputs and gradients, about a fifth
    less activation memory per training step. Not inside ``torch.compile``,
    whose partitioner makes that choice itself.

    Args:
        channels (int): Input and output channels.
        hidden_channels (int): Hidden channels.
        norm_cfg (dict, optional): Config of the norm layers. Default: None.
        deploy (bool): Build the folded structure. Default: False.
    """

    def __init__(self,
                 channels: int,
                 hidden_channels: int,
                 *,
                 norm_cfg: Optional[dict] = None,
                 deploy: bool = False) -> None:
        super().__init__()
        self.ffn_fc1 = ConvBN(
            channels, hidden_channels, 1, norm_cfg=norm_cfg, deploy=deploy)
        self.ffn_fc2 = ConvBN(
            hidden_channels, channels, 1, norm_cfg=norm_cfg, deploy=deploy)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.ffn_fc1(x)
        if torch.is_grad_enabled() and not torch.compiler.is_compiling():
            return self.ffn_fc2.after_conv(
                gelu_conv(hidden, self.act, self.ffn_fc2.conv))
        return self.ffn_fc2(self.act(hidden))


class RepMLPNetUnit(nn.Module):
    """``y = x + block(prebn1(x)); z = y + ffn(prebn2(y))``.

    In deploy form ``prebn2`` is folded into ``ffn_fc1`` (a 1x1 convolution
    without padding, so the fold is exact). ``prebn1`` stays: the window FC is
    shared by every channel group of a shareset, so a per-channel scale on
    its input cannot move into it.

    Args:
        channels (int): Channels of the map.
        window (tuple[int, int]): Window size ``(h, w)`` of the RepMLP block.
        sharesets (int): Sharesets of the RepMLP block.
        kernels (Sequence[int]): Local Perceptron kernel sizes. Default: (1, 3).
        reduction (int): Global Perceptron reduction. Default: 4.
        ffn_ratio (int): FFN expansion. Default: 4.
        norm_cfg (dict, optional): Config of the norm layers. Default: None.
        deploy (bool): Build the re-parameterized structure. Default: False.
    """

    def __init__(self,
                 channels: int,
                 window: Tuple[int, int],
                 sharesets: int,
                 *,
                 kernels: Sequence[int] = (1, 3),
                 reduction: int = 4,
                 ffn_ratio: int = 4,
                 norm_cfg: Optional[dict] = None,
                 deploy: bool = False) -> None:
        super().__init__()
        norm_cfg = norm_cfg or dict(type='BN')
        self.deploy = deploy
        self.repmlp_block = RepMLPBlock(
            channels,
            window,
            sharesets,
            kernels=kernels,
            reduction=reduction,
            norm_cfg=norm_cfg,
            deploy=deploy)
        self.ffn_block = FFNBlock(
            channels,
            channels * ffn_ratio,
            norm_cfg=norm_cfg,
            deploy=deploy)
        self.prebn1 = build_norm_layer(norm_cfg, channels)[1]
        self.prebn2 = (
            nn.Identity() if deploy else build_norm_layer(norm_cfg,
                                                          channels)[1])

    #: Inference of the deploy form through
    #: :meth:`~.repmlp_block.RepMLPBlock.forward_residual` (same numbers up
    #: to float rounding): ``'auto'`` takes it except under CPU autocast,
    #: where its strided passes cost more than the copies they replace
    #: (``tools/benchmark.py --ablation``: 0.92x without it in bf16 on an AMX
    #: Xeon, neutral without AMX; docs/cpu_inference.md); True always,
    #: False never (runs it as written, e.g. to time both).
    fused_inference: Union[bool, str] = 'auto'

    def forward(self, x: Tensor) -> Tensor:
        if self._fuses(x):
            x = self.repmlp_block.forward_residual(x, self.prebn1)
        else:
            x = x + self.repmlp_block(self.prebn1(x))
        return x + self.ffn_block(self.prebn2(x))

    def _fuses(self, x: Tensor) -> bool:
        """Whether this call takes the fused inference path: deploy form,
        ``prebn1`` an eval-mode BatchNorm with running statistics, no
        autograd, and no tracer or compiler (they see the plain graph;
        inductor fuses it its own way). A block swapped for another module
        (the export's two-part form) runs as written."""
        bn = self.prebn1
        block = self.repmlp_block
        fused = self.fused_inference
        if fused == 'auto':
            fused = not (x.device.type == 'cpu'
                         and torch.is_autocast_enabled('cpu'))
        return (fused and isinstance(block, RepMLPBlock)
                and block.deploy
                and isinstance(bn, _BatchNorm) and not bn.training
                and bn.running_mean is not None
                and not torch.is_grad_enabled()
                and not torch.jit.is_tracing()
                and not torch.compiler.is_compiling()
                and not torch.onnx.is_in_onnx_export())

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold ``prebn2`` into ``ffn_fc1`` (the block and the FFN's
        conv-BNs fold themselves)."""
        if self.deploy:
            return
        fc1 = self.ffn_block.ffn_fc1
        scale, shift = bn_to_affine(self.prebn2)
        fc1.load_fused(*fold_affine_into_pointwise_conv(
            *fc1.fused_weight_bias(), scale, shift))
        self.prebn2 = nn.Identity()
        self.deploy = True
