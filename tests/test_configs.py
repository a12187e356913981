"""Every shipped config builds its model and runs a forward pass."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_repmlp  # noqa: F401

CONFIGS = sorted(
    str(p.relative_to(Path(__file__).parents[1] / 'configs'))
    for p in (Path(__file__).parents[1] / 'configs').rglob('*.py')
    if '_base_' not in p.parts)


def test_every_dataset_has_configs():
    names = set(CONFIGS)
    assert 'cityscapes/upernet_repmlpnet.py' in names
    for arch in ('t256', 'b256', 'd256', 'l256'):
        assert (f'cityscapes/upernet_repmlpnet-{arch}_4xb2-80k_'
                'cityscapes-512x1024.py') in names
        assert f'ade20k/upernet_repmlpnet-{arch}_8xb2-160k_ade20k-512x512.py' \
            in names


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_and_runs(name):
    register_all_modules()
    cfg = Config.fromfile(str(Path(__file__).parents[1] / 'configs' / name))
    assert cfg.custom_imports['imports'] == ['mmseg_repmlp']
    assert any(h['type'] == 'RepMLPDeployHook' for h in cfg.custom_hooks)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    num_classes = cfg.model.decode_head.num_classes
    with torch.no_grad():
        logits = model._forward(torch.randn(1, 3, 64, 96))
    assert logits.shape == (1, num_classes, 16, 24)
    assert torch.isfinite(logits).all()
