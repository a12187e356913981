"""Deploy checkpoints: a segmentor checkpoint's re-parameterized twin.

A deploy checkpoint holds the deploy structure's state dict and meta saying
so (``meta['deploy'] = True``) with the config that builds that structure
(``model.backbone.deploy=True``). No optimizer state, no message hub: plain
tensors and strings, loadable with ``weights_only=True`` as they are.
"""
import copy
import os.path as osp
import warnings
from typing import Mapping, Optional, Tuple

import torch
from mmengine.config import Config

from ..deploy import reparameterize_model
from ..models.utils.ckpt_load import load_strict
from ..utils.compare import max_relative_difference
from ..utils.fileio import safe_torch_load
from ..version import __version__

DEPLOY_SUFFIX = '_deploy'


def deploy_path(path: str) -> str:
    """``work/iter_8000.pth`` -> ``work/iter_8000_deploy.pth``."""
    root, ext = osp.splitext(path)
    return f'{root}{DEPLOY_SUFFIX}{ext or ".pth"}'


def backbone_cfgs(model_cfg: Mapping):
    """Backbone configs of a model config (also inside a TTA wrapper)."""
    if 'backbone' in model_cfg:
        yield model_cfg['backbone']
    if 'module' in model_cfg:
        yield from backbone_cfgs(model_cfg['module'])


def set_deploy(cfg: Config, deploy: bool = True) -> Config:
    """Make ``cfg`` build the deploy (or training) structure, in place.

    A deploy model needs no pretrained initialisation, so ``init_cfg`` goes.
    """
    for backbone in backbone_cfgs(cfg.model):
        if backbone.get('type') == 'RepMLPNet':
            backbone['deploy'] = deploy
            if deploy:
                backbone['init_cfg'] = None
    return cfg


def is_deploy_checkpoint(checkpoint: Mapping) -> bool:
    meta = checkpoint.get('meta') or {}
    return bool(meta.get('deploy', False))


def read_checkpoint(path: str, mmap: bool = False) -> dict:
    """Safely load a checkpoint file into a dict with ``state_dict``."""
    ckpt = safe_torch_load(path, mmap=mmap)
    if not isinstance(ckpt, Mapping):
        raise ValueError(f'{path!r} does not hold a checkpoint dict.')
    if 'state_dict' not in ckpt:
        ckpt = {'state_dict': ckpt, 'meta': {}}
    return ckpt


def configure_for_checkpoint(cfg: Config, path: str) -> bool:
    """Make ``cfg`` build the structure checkpoint ``path`` holds, in place.

    Returns whether it is a deploy checkpoint.
    """
    deployed = is_deploy_checkpoint(read_checkpoint(path, mmap=True))
    set_deploy(cfg, deploy=deployed)
    return deployed


def build_segmentor(cfg: Config):
    """Build ``cfg.model`` from MMSegmentation's registry (on the CPU).

    Every caller builds for inference or conversion, where MMSegmentation's
    notices about how the training losses and pixel samplers are built
    (``build_loss``, ``build_pixel_sampler``, ``avg_non_ignore``) say
    nothing a user can act on; they are silenced
    here (a training run still shows them once, from its runner).
    """
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*build_loss.*')
        warnings.filterwarnings('ignore', message='.*build_pixel_sampler.*')
        warnings.filterwarnings('ignore', message='.*avg_non_ignore.*')
        return MODELS.build(copy.deepcopy(cfg.model))


@torch.no_grad()
def make_deploy_checkpoint(
        cfg: Config,
        checkpoint: Mapping,
        verify_size: Optional[Tuple[int, int]] = None,
        tolerance: float = 1e-4,
        source: str = 'checkpoint') -> Tuple[dict, Optional[float]]:
    """Re-parameterize a training-time segmentor checkpoint.

    Args:
        cfg (Config): The training config.
        checkpoint (Mapping): The loaded training checkpoint.
        verify_size (tuple[int, int], optional): If given, run both models on
            a fixed random image of this size and compare the segmentation
            logits. Default: None.
        tolerance (float): Largest allowed difference, relative to the
            logits' largest magnitude. Default: 1e-4.
        source (str): Name of the checkpoint, for messages and meta.

    Returns:
        tuple[dict, float | None]: The deploy checkpoint, and the relative
        difference when verified.

    Raises:
        RuntimeError: When the verified difference exceeds ``tolerance``.
    """
    if is_deploy_checkpoint(checkpoint):
        raise ValueError(f'{source} is already a deploy checkpoint.')
    train_cfg = set_deploy(copy.deepcopy(cfg), deploy=False)
    for backbone in backbone_cfgs(train_cfg.model):
        backbone['init_cfg'] = None
    # Building initialises weights from the global generator; a hook that
    # does this mid-training must not shift the run's random stream.
    with torch.random.fork_rng(devices=[]):
        model = build_segmentor(train_cfg)
    load_strict(model, checkpoint['state_dict'], source)
    model.eval()
    deployed = reparameterize_model(model)
    rel_diff = None
    if verify_size is not None:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(1, 3, *verify_size, generator=gen)
        ref = model._forward(x)
        if not torch.isfinite(ref).all():
            raise FloatingPointError(
                f'Non-finite logits from the training-time model of {source} '
                'on a random input: its weights have diverged. Lower the '
                'learning rate or clip gradients, and resume from an earlier '
                'checkpoint.')
        out = deployed._forward(x)
        rel_diff = max_relative_difference(out, ref)
        if not rel_diff <= tolerance:
            raise RuntimeError(
                f'Re-parameterized model of {source} differs from it by '
                f'{rel_diff:.3g} (relative to the logits) on a '
                f'{verify_size[0]}x{verify_size[1]} input; tolerance is '
                f'{tolerance:g}. The deploy checkpoint was not written.')
    bad = [k for k, v in deployed.state_dict().items()
           if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise FloatingPointError(
            f'Non-finite weights in the deploy model of {source} ({bad[0]}): '
            'the training weights have diverged (or overflow when folded). '
            'Lower the learning rate or clip gradients, and resume from an '
            'earlier checkpoint.')
    deploy_cfg = set_deploy(copy.deepcopy(cfg), deploy=True)
    src_meta = dict(checkpoint.get('meta') or {})
    meta = {
        'deploy': True,
        'source': source,
        'mmseg_repmlp_version': __version__,
        'cfg': deploy_cfg.pretty_text,
        'verified_rel_diff': rel_diff,
    }
    for key in ('epoch', 'iter', 'dataset_meta', 'seed', 'time'):
        if key in src_meta:
            meta[key] = src_meta[key]
    return {'meta': meta, 'state_dict': deployed.state_dict()}, rel_diff
