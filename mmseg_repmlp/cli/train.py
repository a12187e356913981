"""``tools/train.py``: MMSegmentation's training entry with this project's checks.

Same arguments as MMSegmentation's ``tools/train.py``; before anything is
built, the dataset folders and pretrained weights are checked
(:mod:`.preflight`).
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..checkpoint.resume import find_resumable_checkpoint
from .preflight import InputError, check_inputs


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torchrun passes --local-rank (or sets LOCAL_RANK).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(args: argparse.Namespace) -> Config:
    """The config with ``--cfg-options``, ``--launcher`` and ``--work-dir``
    applied (the work dir defaults to ``work_dirs/<config name>``)."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args)
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('AMP training is already enabled in the config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    cfg.resume = args.resume
    if args.resume and not cfg.get('load_from'):
        # The newest *complete* checkpoint, even if MMEngine's
        # last_checkpoint names one that is gone or was cut short.
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
    return cfg


def _sync_bn_to_bn(node):
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _sync_bn_to_bn(value)


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let ``--launcher pytorch`` run on machines without CUDA.

    MMEngine's launcher calls ``torch.cuda.set_device`` and gives DDP a
    CUDA device id. Without CUDA, start the gloo process group here (MMEngine
    then skips its own set-up), let DDP wrap the CPU model without device ids,
    and use per-process BN for SyncBN, which needs CUDA.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.setdefault(
        'model_wrapper_cfg',
        dict(type='MMDistributedDataParallel', device_ids=None,
             broadcast_buffers=False))
    _sync_bn_to_bn(cfg.model)


def give_runner_its_own_visualizer(cfg: Config) -> None:
    """Let the runner name its visualizer after its own experiment.

    MMSegmentation's runtime names the visualizer ``'visualizer'``, and
    MMEngine hands a second runner that asks for the same name in the same
    process (the demo's test after its training) the first runner's
    instance, with a warning: the test's pictures and logs would go to the
    training's folder. Without a name, MMEngine uses the runner's experiment
    name (config and timestamp), as it does for a config without one.
    """
    visualizer = cfg.get('visualizer')
    if isinstance(visualizer, dict) and visualizer.get('name') == 'visualizer':
        visualizer.pop('name')


def build_runner(cfg: Config) -> Runner:
    """The runner a config asks for (``runner_type``), else MMEngine's."""
    prepare_cpu_distributed(cfg)
    give_runner_its_own_visualizer(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def main(argv: Optional[List[str]] = None) -> Runner:
    args = parse_args(argv)
    cfg = build_config(args)
    try:
        check_inputs(cfg, phases=('train', 'val'))
    except InputError as err:
        sys.exit(f'error: {err}')
    runner = build_runner(cfg)
    runner.train()
    return runner
