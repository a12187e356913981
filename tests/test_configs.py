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


AMP_CONFIGS = [n for n in CONFIGS if '-amp-' in n]


@pytest.mark.parametrize('name', AMP_CONFIGS)
def test_amp_configs_are_bf16_twins(name):
    root = Path(__file__).parents[1] / 'configs'
    amp = Config.fromfile(str(root / name))
    fp32 = Config.fromfile(str(root / name.replace('-amp-', '-')))
    assert amp.optim_wrapper.type == 'AmpOptimWrapper'
    assert amp.optim_wrapper.dtype == 'bfloat16'
    assert amp.optim_wrapper.loss_scale == dict(enabled=False)
    # Everything else is the fp32 config's.
    assert amp.optim_wrapper.optimizer == fp32.optim_wrapper.optimizer
    assert amp.model == fp32.model
    assert amp.train_dataloader == fp32.train_dataloader
    assert amp.param_scheduler == fp32.param_scheduler


@pytest.mark.parametrize('device', ['cpu', pytest.param(
    'cuda', marks=pytest.mark.cuda)])
def test_bf16_amp_train_step(monkeypatch, device):
    """The AMP configs' optimizer wrapper trains the model in bf16.

    MMEngine's AmpOptimWrapper refuses to be built without a GPU; on the
    CPU its device check is the only thing replaced, so the real wrapper
    runs its bf16 autocast and its disabled loss scaler around the
    segmentor's own train_step. On a GPU nothing is replaced.
    """
    from mmengine.optim import build_optim_wrapper
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from .conftest import CONFIG
    if device == 'cpu':
        monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                            lambda: True)
    register_all_modules()
    root = Path(__file__).parents[1] / 'configs'
    amp_cfg = Config.fromfile(str(root / AMP_CONFIGS[0])).optim_wrapper
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device).train()
    bf16_dtypes = []
    model.backbone.register_forward_hook(
        lambda m, i, out: bf16_dtypes.append(out[0].dtype))
    optim_wrapper = build_optim_wrapper(model, amp_cfg)
    assert type(optim_wrapper).__name__ == 'AmpOptimWrapper'
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 128),
                                             ori_shape=(64, 128)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 19, (1, 64, 128), generator=gen))
        samples.append(sample)
    data = dict(
        inputs=[torch.randint(0, 256, (3, 64, 128), generator=gen,
                              dtype=torch.uint8) for _ in range(2)],
        data_samples=samples)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = model.train_step(data, optim_wrapper)
    assert bf16_dtypes == [torch.bfloat16]
    assert torch.isfinite(losses['loss'])
    params = dict(model.named_parameters())
    assert all(p.dtype == torch.float32 for p in params.values())
    moved = [n for n, p in params.items() if not torch.equal(p, before[n])]
    assert any(n.startswith('backbone.') for n in moved)
    assert all(torch.isfinite(p).all() for p in params.values())


def test_reading_a_config_and_building_its_model_is_quiet():
    """Notices a user cannot act on stay out of the output: setuptools'
    ``pkg_resources`` deprecation (MMEngine's package lookup for
    ``mmseg::`` bases, setuptools >= 67) and MMSegmentation's ``build_loss``
    / ``build_pixel_sampler`` deprecations (the demo's OHEM sampler)."""
    import subprocess
    import sys

    from .conftest import CONFIG, REPO
    code = ('import mmseg_repmlp\n'
            'from mmengine.config import Config\n'
            'from mmseg_repmlp.checkpoint.deploy_ckpt import build_segmentor\n'
            f'build_segmentor(Config.fromfile({CONFIG!r}))\n')
    done = subprocess.run([sys.executable, '-W', 'default', '-c', code],
                          cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for notice in ('pkg_resources', 'build_loss', 'build_pixel_sampler'):
        assert notice not in done.stderr, done.stderr[-3000:]
