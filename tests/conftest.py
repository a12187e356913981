import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg_repmlp.cli.demo import (
    DEMO_CONFIG,
    data_root_options,
    short_schedule_options,
)
from mmseg_repmlp.dataset_converters import convert_cityscapes
from mmseg_repmlp.models.utils.norm_stats import randomize_norm_stats_
from mmseg_repmlp.synthetic import generate_synthetic_cityscapes

#: Small architectures that keep every structural feature of the released
#: ones (several sharesets, the Local Perceptron, four stages) at test size.
TINY_ARCH = dict(
    channels=(8, 16, 32, 64),
    depths=(1, 2, 1, 1),
    window_sizes=(8, 4, 2, 2),
    sharesets=(2, 4, 8, 16))
#: Non-square windows and a single-shareset stage.
TINY_RECT_ARCH = dict(
    channels=(8, 16, 16, 32),
    depths=(1, 1, 1, 1),
    window_sizes=((4, 6), (2, 4), (3, 2), (2, 2)),
    sharesets=(1, 2, 4, 8))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run where a GPU is, and are skipped elsewhere
    (CI has none): ``pytest -m cuda`` on a GPU machine runs them all."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU')
    for item in items:
        if 'cuda' in item.keywords:
            item.add_marker(skip)


#: A BatchNorm eps far from PyTorch's 1e-5, for every model whose BN folds
#: are checked (``norm_cfg=NORM_CFG``): with the small variances of
#: :func:`randomize_`, a fold that drops eps or hard-codes 1e-5 is off by
#: tens of percent, not by the 1e-5 the tolerances allow.
BN_EPS = 1e-3
NORM_CFG = dict(type='BN', eps=BN_EPS)


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm statistics: default ones hide fusion bugs.

    Variances are drawn log-uniformly from [1e-3, 10], so ``running_var +
    eps`` depends on eps wherever a variance is small (the shared helper
    draws them from [0.5, 1.5], where eps is invisible).
    """
    randomize_norm_stats_(model, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            exponent = torch.rand(module.num_features, generator=gen) * 4 - 3
            module.running_var.copy_(10**exponent)
    return model


# --- tools: a tiny generated Cityscapes and one short training run -------
REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / 'configs' / DEMO_CONFIG)


def run(args, cwd=None, env=None, check=True, timeout=600):
    """Run a command; on failure show the end of its output."""
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f'{args} exited {done.returncode}:\n'
                             f'{done.stdout[-3000:]}\n{done.stderr[-5000:]}')
    return done


def tool(name):
    return [sys.executable, str(REPO / 'tools' / name)]


@pytest.fixture(scope='session')
def tiny_cityscapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('data') / 'cityscapes'
    generate_synthetic_cityscapes(
        str(root), num_train=4, num_val=2, height=128, width=256, seed=1)
    convert_cityscapes(str(root))
    return root


def train_options(root, iters=4, interval=2, *extra):
    return ['--cfg-options', *data_root_options(str(root)),
            *short_schedule_options(iters, interval),
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=1', *extra]


@pytest.fixture(scope='session')
def trained(tmp_path_factory, tiny_cityscapes):
    """Work dir of a 4-iteration run: checkpoints at 2 and 4, keep 1."""
    work = tmp_path_factory.mktemp('train')
    done = run([*tool('train.py'), CONFIG, '--work-dir', work,
                *train_options(tiny_cityscapes)])
    return work, done.stdout + done.stderr


@pytest.fixture(scope='session')
def spread(trained, tmp_path_factory):
    """A training checkpoint and its deploy twin whose label maps can be
    compared: ``iter_4.pth`` (its format, meta and message hub) with fixed
    random weights, random BN statistics and a classifier of wide spread.
    Its logits give many classes and almost no near ties, unlike the
    4-iteration model's (few classes, up to half the pixels near ties)."""
    from mmengine.config import Config

    from mmseg_repmlp.apis import init_model
    from mmseg_repmlp.checkpoint.deploy_ckpt import make_deploy_checkpoint
    work, _ = trained
    ckpt = torch.load(work / 'iter_4.pth', weights_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = randomize_(init_model(CONFIG, None, device='cpu',
                                      deploy=False))
        with torch.no_grad():
            model.decode_head.conv_seg.weight.normal_(0, 1)
    ckpt['state_dict'] = model.state_dict()
    out = tmp_path_factory.mktemp('spread')
    torch.save(ckpt, out / 'spread.pth')
    deploy, _ = make_deploy_checkpoint(Config.fromfile(CONFIG), ckpt,
                                       source='spread.pth')
    torch.save(deploy, out / 'spread_deploy.pth')
    return out / 'spread.pth', out / 'spread_deploy.pth'


def env_without_pythonpath():
    return {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}


def probe_config(directory, *hooks):
    """A config file in ``directory``: the demo config plus the test-only
    hooks of ``tests/test_tools/probe_hooks.py`` (appended to its custom
    hooks). Runs of it need :func:`probe_env`."""
    from mmengine.config import Config
    custom_hooks = Config.fromfile(CONFIG).to_dict()['custom_hooks']
    path = Path(directory) / 'probe_config.py'
    path.write_text(
        f'_base_ = [{CONFIG!r}]\n'
        "custom_imports = dict(imports=['tests.test_tools.probe_hooks'], "
        'allow_failed_imports=False)\n'
        f'custom_hooks = {[*custom_hooks, *hooks]!r}\n')
    return path


def probe_env():
    """The environment for runs of :func:`probe_config` files: the
    repository (for ``tests.test_tools.probe_hooks``) first on PYTHONPATH."""
    paths = [str(REPO), os.environ.get('PYTHONPATH', '')]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))

