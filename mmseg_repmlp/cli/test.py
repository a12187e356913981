"""``tools/test.py``: MMSegmentation's test entry, for either kind of checkpoint.

Same arguments as MMSegmentation's ``tools/test.py``. A deploy checkpoint
(written by :class:`~mmseg_repmlp.engine.RepMLPDeployHook` or
``tools/reparam.py``) is tested with the deploy structure it records.
"""
import argparse
import os
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction

from ..apis.fast_inference import accelerate, is_accelerated, segmentor_of
from ..checkpoint.deploy_ckpt import configure_for_checkpoint
from .preflight import check_inputs
from .train import build_runner, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and eval) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (train or deploy)')
    parser.add_argument(
        '--work-dir',
        help='if specified, the evaluation metric results will be dumped '
        'into the directory as json')
    parser.add_argument(
        '--out',
        type=str,
        help='the directory to save the output prediction for offline '
        'evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images (ground truth | prediction) of '
        'every test image will be saved, as SHOW_DIR/vis_data/vis_image/'
        'test_<image>_<iter>.png')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
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
    parser.add_argument(
        '--tta', action='store_true',
        help='test-time augmentation: the config\'s tta_model around the '
        'checkpoint\'s structure, on the tta_pipeline\'s images (for '
        'MMSegmentation\'s dataset bases: several scales, each also '
        'flipped, the predictions averaged)')
    fast = parser.add_argument_group(
        'fast inference', 'mmseg_repmlp.apis.accelerate: the '
        'backbone and heads compiled, replayed as CUDA graphs and/or in '
        'reduced precision; fp32 changes outputs only by float rounding')
    fast.add_argument(
        '--compile', action='store_true',
        help='torch.compile the backbone and heads (compiles on the first '
        'batch of each input size; on the CPU with inductor freezing, the '
        'fastest CPU path, with --dtype bf16 where the CPU has bf16)')
    fast.add_argument(
        '--cuda-graph', action='store_true',
        help='replay CUDA graphs, one per input size (CUDA only; with '
        '--compile: inductor reduce-overhead)')
    fast.add_argument(
        '--dtype', choices=['fp32', 'bf16', 'fp16'], default='fp32',
        help='autocast dtype of the backbone and heads')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _trigger_visualization_hook(cfg: Config, args: argparse.Namespace):
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks to use '
            '--show or --show-dir.')
    hook = default_hooks['visualization']
    hook['draw'] = True
    # The hook paints every `interval`-th batch (50 in MMSegmentation's
    # runtime): a small test set would get no picture at all.
    hook['interval'] = 1
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        visualizer = cfg.visualizer
        visualizer['save_dir'] = args.show_dir
    return cfg


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args)
    # Loaded strictly in main(), not by MMEngine's lenient load_from.
    cfg.load_from = None
    # A test needs none of the training fields. With them, MMEngine builds
    # the training dataloader as soon as a hook asks for runner.iter (the
    # visualization hook does for --show-dir), which fails where only the
    # test data is.
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler'):
        cfg[key] = None
    configure_for_checkpoint(cfg, args.checkpoint)
    if args.show or args.show_dir:
        cfg = _trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        # MMSegmentation's IoUMetric creates it on rank 0 only; another rank
        # can write its first prediction before that.
        os.makedirs(args.out, exist_ok=True)
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def main(argv: Optional[List[str]] = None):
    args = parse_args(argv)
    try:
        cfg = build_config(args)
        check_inputs(cfg, phases=('test', ), need_pretrained=False)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    runner = build_runner(cfg)
    try:
        runner.load_checkpoint(args.checkpoint, map_location='cpu',
                               strict=True)
    except RuntimeError as err:
        sys.exit(f'error: {args.checkpoint} does not match the model built '
                 f'from {args.config}: {err}')
    try:
        accelerate(runner.model, compile=args.compile,
                   cuda_graph=args.cuda_graph, dtype=args.dtype)
    except (ValueError, TypeError) as err:
        sys.exit(f'error: {err}')
    if is_accelerated(runner.model):
        options = segmentor_of(runner.model).fast_inference
        runner.logger.info(
            'fast inference: dict(' +
            ', '.join(f'{k}={v!r}' for k, v in options.items()) + ')')
    return runner.test()
