"""RepMLPNet backbone for semantic segmentation.

RepMLPNet: Ding, Chen, Zhang, Han, Ding. "RepMLPNet: Hierarchical Vision MLP
with Re-parameterized Locality", CVPR 2022 (arXiv 2112.11081).

The module names and parameter shapes of the training-time structure match the
released ImageNet checkpoints (``conv_embedding``, ``stages.i.j``,
``embeds.i``), so a converted checkpoint
(:func:`~mmseg_repmlp.models.utils.ckpt_convert.convert_official`) loads strictly. The
classification head is not built.
"""
from typing import Optional, Sequence, Tuple, Union

import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers.conv_bn import ConvBN
from ..layers.repmlp_unit import RepMLPNetUnit
from ..layers.window import pad_to_multiple
from ..utils.ckpt_convert import detect_layout
from ..utils.ckpt_load import load_backbone
from ..utils.reparameterize import reparameterize_modules
from .arch import ARCHS, RepMLPNetArch, get_arch


@MODELS.register_module()
class RepMLPNet(BaseModule):
    """RepMLPNet backbone returning multi-level features.

    Stage ``i`` outputs ``channels[i]`` maps at stride ``4 * 2**i``, taken
    after the stage and before the next downsampling.

    Any input size works. Each stage keeps the map at exactly
    ``ceil(H / stride) x ceil(W / stride)``: the input is zero-padded to a
    multiple of the stem's stride and each downsampling input to an even
    size; inside every RepMLP block a map that is not a whole number of
    windows is zero-padded at the bottom and right for the window FC and
    cropped back after it. So the border windows see zeros beyond the image
    (as the Local Perceptron does at every window border), while the Global
    Perceptron averages only the real map. Sizes that are multiples of
    ``4 * 2**i * window[i]`` (e.g. 512x1024 for the 256 variants) are never
    padded.

    Args:
        arch (str | dict | RepMLPNetArch): A released variant
            (``'T224', 'B224', 'T256', 'B256', 'D256', 'L256'``) or a dict with
            ``channels``, ``depths``, ``window_sizes``, ``sharesets`` and
            optionally ``kernels``, ``reduction``, ``ffn_ratio``,
            ``patch_size``. Default: 'B256'.
        in_channels (int): Input channels. Default: 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Default: (0, 1, 2, 3).
        frozen_stages (int): Stages to freeze (parameters fixed, norms in eval
            mode); 0 freezes the stem only, ``i`` the stem and the first ``i``
            stages with their downsampling. -1 freezes nothing. Default: -1.
        norm_eval (bool): Keep every BatchNorm in eval mode during training.
            Default: False.
        norm_cfg (dict): Config of every norm layer (``BN``, ``SyncBN``).
            Default: ``dict(type='BN', requires_grad=True)``.
        with_cp (bool): Gradient checkpointing per unit (saves memory, costs
            time). Default: False.
        deploy (bool): Build the re-parameterized (deploy) structure, into
            which a converted state dict loads strictly. Default: False.
        init_cfg (dict | list[dict], optional): Initialization config;
            ``dict(type='Pretrained', checkpoint=PATH)`` loads a checkpoint
            strictly (see :func:`~mmseg_repmlp.models.utils.ckpt_load.load_backbone`).
            Default: None.
    """

    arch_zoo = ARCHS

    def __init__(self,
                 arch: Union[str, dict, RepMLPNetArch] = 'B256',
                 *,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 deploy: bool = False,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = get_arch(arch)
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        num_stages = self.arch.num_stages
        out_indices = tuple(
            i + num_stages if i < 0 else i for i in out_indices)
        for i in out_indices:
            if not 0 <= i < num_stages:
                raise ValueError(f'out_indices {out_indices} out of range for '
                                 f'{num_stages} stages.')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}]; '
                             f'got {frozen_stages}.')
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.strides = self.arch.strides()
        channels = self.arch.channels

        patch = self.arch.patch_size
        self.conv_embedding = ConvBN(
            in_channels,
            channels[0],
            patch,
            stride=patch,
            with_relu=True,
            norm_cfg=norm_cfg,
            deploy=deploy)
        self.embeds = nn.ModuleList(
            ConvBN(
                channels[i],
                channels[i + 1],
                2,
                stride=2,
                with_relu=True,
                norm_cfg=norm_cfg,
                deploy=deploy) for i in range(num_stages - 1))
        self.stages = nn.ModuleList(
            nn.ModuleList(
                RepMLPNetUnit(
                    channels[i],
                    self.arch.window_sizes[i],
                    self.arch.sharesets[i],
                    kernels=self.arch.kernels,
                    reduction=self.arch.reduction,
                    ffn_ratio=self.arch.ffn_ratio,
                    norm_cfg=norm_cfg,
                    deploy=deploy) for _ in range(self.arch.depths[i]))
            for i in range(num_stages))
        self.out_channels = tuple(channels[i] for i in out_indices)
        self._freeze_stages()

    def init_weights(self) -> None:
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            # MMEngine's PretrainedInit loads non-strictly; a backbone whose
            # weights silently half-load trains for days on garbage.
            load_backbone(
                self, cfg['checkpoint'], map_location=cfg.get('map_location',
                                                              'cpu'))
            self.is_init = True
            return
        super().init_weights()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A deploy state dict loaded into the training-time structure (by
        # MMEngine's load_checkpoint, MMSegInferencer, ...) switches the
        # model to the deploy structure first, so it loads instead of
        # half-loading into the wrong layout.
        if not self.deploy:
            own = {k[len(prefix):]: v for k, v in state_dict.items()
                   if k.startswith(prefix)}
            try:
                layout = detect_layout(own)
            except ValueError:  # not a whole backbone: load as it is
                layout = None
            if layout == 'deploy':
                reparameterize_modules(self)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _run_unit(self, unit: nn.Module, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(unit, x, use_reentrant=False)
        return unit(x)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.conv_embedding(pad_to_multiple(x, (self.arch.patch_size, ) * 2))
        outs = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.embeds[i - 1](pad_to_multiple(x, (2, 2)))
            for unit in stage:
                x = self._run_unit(unit, x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    @property
    def deploy(self) -> bool:
        """Whether every part is in the re-parameterized (deploy) form."""
        return all(m.deploy for m in self.modules()
                   if m is not self and hasattr(m, 'reparameterize'))

    def _frozen_modules(self):
        if self.frozen_stages >= 0:
            yield self.conv_embedding
        for i in range(self.frozen_stages):
            if i > 0:
                yield self.embeds[i - 1]
            yield self.stages[i]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'RepMLPNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
