"""Released RepMLPNet ImageNet checkpoints -> this backbone's state dict.

The official checkpoints (``RepMLPNet-B256-train-acc81.03.pth``,
``RepMLPNet-D256-deploy.pth``, ...) are plain name -> tensor dicts, possibly
with a ``module.`` prefix from multi-GPU training. The training-time layout
has the same names as :class:`~mmseg_repmlp.models.RepMLPNet`; the official
deploy layout only fused ``fc3``, so it is loaded into a model of that shape
and folded the rest of the way by the modules' own ``reparameterize()``.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Type

import torch
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..backbones.arch import RepMLPNetArch, match_released
from ..layers.repmlp_block import RepMLPBlock
from .reparameterize import reparameterize_modules

_CLASSIFIER = re.compile(r'^(head|head_norm)\.')


def strip_prefix(state_dict: Mapping[str, Tensor],
                 prefix: str) -> Dict[str, Tensor]:
    """Drop ``prefix`` from the keys that start with it (others unchanged)."""
    return OrderedDict(
        (k[len(prefix):] if k.startswith(prefix) else k, v)
        for k, v in state_dict.items())


def detect_layout(state_dict: Mapping[str, Tensor]) -> str:
    """Return ``'train'``, ``'official-deploy'`` or ``'deploy'``.

    ``'deploy'`` is this project's fully folded form; ``'official-deploy'``
    is the official conversion's (only ``fc3`` fused).
    """
    keys = set(state_dict)
    if any(k.endswith('repmlp_block.fc3_bn.weight') for k in keys):
        return 'train'
    if not any(k.endswith('repmlp_block.fc3.weight') for k in keys):
        raise ValueError(
            'Not a RepMLPNet state dict: no "stages.<i>.<j>.repmlp_block.fc3" '
            f'key among {len(keys)} keys (first: {sorted(keys)[:3]}).')
    if 'conv_embedding.bn.weight' in keys:
        return 'official-deploy'
    return 'deploy'


def infer_arch(state_dict: Mapping[str, Tensor]) -> RepMLPNetArch:
    """Read a RepMLPNet's sizes off its state dict (any layout).

    Windows are taken as square (true of every released variant); a deploy
    state dict does not record the Local Perceptron kernels, which a deploy
    model does not need, so the default (1, 3) is assumed there.
    """
    try:
        stem = state_dict['conv_embedding.conv.weight']
        channels = [stem.shape[0]]
        i = 0
        while f'embeds.{i}.conv.weight' in state_dict:
            channels.append(state_dict[f'embeds.{i}.conv.weight'].shape[0])
            i += 1
        units = [re.match(r'stages\.(\d+)\.(\d+)\.', k) for k in state_dict]
        depths, windows, sharesets = [], [], []
        for stage in range(len(channels)):
            depth = 1 + max(int(m.group(2)) for m in units
                            if m and int(m.group(1)) == stage)
            fc3 = state_dict[f'stages.{stage}.0.repmlp_block.fc3.weight']
            area = fc3.shape[1]
            side = math.isqrt(area)
            if side * side != area:
                raise ValueError(
                    f'stage {stage} has a non-square window of {area} pixels; '
                    'give the arch explicitly.')
            depths.append(depth)
            windows.append(side)
            sharesets.append(fc3.shape[0] // area)
        kernels = sorted(
            int(m.group(1)) for m in (re.match(
                r'stages\.0\.0\.repmlp_block\.repconv(\d+)\.conv\.weight$', k)
                                      for k in state_dict) if m)
        gp = state_dict['stages.0.0.repmlp_block.gp.fc1.weight']
        ffn = state_dict['stages.0.0.ffn_block.ffn_fc1.conv.weight']
    except KeyError as err:
        raise ValueError(f'Not a complete RepMLPNet state dict: missing '
                         f'{err.args[0]!r}.') from None
    return RepMLPNetArch(
        channels=channels,
        depths=depths,
        window_sizes=windows,
        sharesets=sharesets,
        kernels=kernels or (1, 3),
        reduction=channels[0] // gp.shape[0],
        ffn_ratio=ffn.shape[0] // channels[0],
        patch_size=stem.shape[-1])


def describe_arch(arch: RepMLPNetArch) -> str:
    """``'RepMLPNet-D256'`` for a released variant, else its sizes."""
    name = match_released(arch)
    if name != 'custom':
        return f'RepMLPNet-{name}'
    return (f'a custom RepMLPNet (channels={arch.channels}, depths='
            f'{arch.depths}, windows={arch.window_sizes}, sharesets='
            f'{arch.sharesets})')


def convert_official(
        state_dict: Mapping[str, Tensor],
        backbone_cls: Optional[Type[nn.Module]] = None) -> Dict[str, Tensor]:
    """Map a released ImageNet checkpoint to this backbone's state dict.

    Accepts the training-time or the official deploy layout, with or without
    the ``module.`` prefix, and drops the classifier (``head``,
    ``head_norm``). A training-time checkpoint gives the training-time state
    dict (for fine-tuning); an official deploy checkpoint gives this
    project's deploy state dict (for ``RepMLPNet(..., deploy=True)``).

    Args:
        state_dict (Mapping[str, Tensor]): The released checkpoint's dict
            (or a ``{'state_dict': ...}``/``{'model': ...}`` wrapper).
        backbone_cls (type, optional): The class that folds an official
            deploy layout. Default: None (``RepMLPNet`` from the registry).

    Returns:
        dict: Backbone state dict.
    """
    for wrapper in ('state_dict', 'model'):
        if wrapper in state_dict and isinstance(state_dict[wrapper], Mapping):
            state_dict = state_dict[wrapper]
    state_dict = strip_prefix(state_dict, 'module.')
    state_dict = OrderedDict((k, v) for k, v in state_dict.items()
                             if not _CLASSIFIER.match(k))
    if detect_layout(state_dict) != 'official-deploy':
        return state_dict
    return _finish_official_deploy(
        state_dict, backbone_cls or MODELS.get('RepMLPNet'))


def _finish_official_deploy(state_dict: Dict[str, Tensor],
                            backbone_cls: Type[nn.Module]
                            ) -> Dict[str, Tensor]:
    """Load the official deploy layout (only ``fc3`` fused) into a
    model of that shape on the meta device, and fold the rest."""
    arch = infer_arch(state_dict)
    with torch.device('meta'):
        model = backbone_cls(
            arch, in_channels=state_dict['conv_embedding.conv.weight'].shape[1])
        for module in model.modules():
            if isinstance(module, RepMLPBlock):
                module.reparameterize()
    model.load_state_dict(state_dict, strict=True, assign=True)
    return reparameterize_modules(model.eval()).state_dict()
