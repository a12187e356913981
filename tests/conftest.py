import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm statistics: default ones hide fusion bugs."""
    return randomize_norm_stats_(model, seed)




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


def env_without_pythonpath():
    return {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
