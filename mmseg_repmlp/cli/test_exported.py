"""``tools/test_exported.py``: evaluate an exported file like a checkpoint.

    python tools/test_exported.py CONFIG MODEL.onnx|MODEL.xml|IR_DIR \
        [--work-dir DIR] [--out DIR] [--threads N] [--cfg-options ...]

The config's test dataloader, hooks and evaluator (``test_evaluator``,
MMSegmentation's ``IoUMetric`` and the like, built by the registry) run in
MMEngine's test loop on the file's outputs, exactly as ``tools/test.py``
runs them on a checkpoint's, and print the same metric table. The file's
metadata says whether it resizes inside (``resize_in_graph``): then it gets
the images unresized, else the pipeline's resized ones, and its logits are
resized back to the image as MMSegmentation does. ``.onnx`` runs in
onnxruntime, an OpenVINO IR through ``compile_ir`` (in the precision it was
exported for).
"""
import argparse
import os
import sys
from typing import List, Optional

from mmengine.config import DictAction
from mmengine.runner import Runner

from ..export.exported import (
    ExportedModel,
    build_exported_segmentor,
    without_resize,
)
from .preflight import check_inputs
from .train import give_runner_its_own_visualizer, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and eval) an exported segmentor (ONNX or '
        'OpenVINO IR) with the config\'s test dataloader and evaluator',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[-1])
    parser.add_argument('config', help='test config file path')
    parser.add_argument('model', help='.onnx file, OpenVINO .xml or its '
                        'folder')
    parser.add_argument('--work-dir', help='the evaluation metric results '
                        'are dumped into this directory as json')
    parser.add_argument('--out', help='directory to save the output '
                        'prediction for offline evaluation')
    parser.add_argument('--threads', type=int,
                        help="inference threads (default: the runtime's)")
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs')
    args = parser.parse_args(argv)
    args.launcher = 'none'
    return args


def build_runner(cfg, exported: ExportedModel) -> Runner:
    """MMEngine's runner for the config's test, with ``exported`` as its
    model."""
    if exported.resize_in_graph:
        dataset = cfg.test_dataloader.dataset
        dataset.pipeline = without_resize(dataset.pipeline)
    give_runner_its_own_visualizer(cfg)
    return Runner(
        model=build_exported_segmentor(exported),
        work_dir=cfg.work_dir,
        test_dataloader=cfg.test_dataloader,
        test_cfg=cfg.get('test_cfg') or dict(type='TestLoop'),
        test_evaluator=cfg.test_evaluator,
        default_hooks=cfg.get('default_hooks'),
        log_processor=cfg.get('log_processor'),
        log_level=cfg.get('log_level', 'INFO'),
        visualizer=cfg.get('visualizer'),
        default_scope=cfg.get('default_scope', 'mmseg'),
        env_cfg=cfg.get('env_cfg', dict(dist_cfg=dict(backend='gloo'))),
        randomness=cfg.get('randomness', dict(seed=None)),
        cfg=cfg)


def main(argv: Optional[List[str]] = None):
    args = parse_args(argv)
    if not (args.model.endswith(('.onnx', '.xml'))
            or os.path.isdir(args.model)):
        sys.exit(f'error: {args.model!r} is neither an .onnx file nor an '
                 'OpenVINO IR (.xml, or its folder).')
    if not os.path.exists(args.model):
        sys.exit(f'error: {args.model!r} does not exist.')
    try:
        cfg = load_config(args)
        cfg.load_from = None
        for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                    'param_scheduler', 'val_dataloader', 'val_cfg',
                    'val_evaluator'):
            cfg[key] = None
        if args.out is not None:
            os.makedirs(args.out, exist_ok=True)
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
        check_inputs(cfg, phases=('test', ), need_pretrained=False)
        exported = ExportedModel(args.model, threads=args.threads)
    except (OSError, ValueError, ImportError) as err:
        sys.exit(f'error: {err}')
    runner = build_runner(cfg, exported)
    runner.logger.info(
        f'Testing {exported.kind} file {exported.path} (precision '
        f'{exported.metadata.get("precision", "fp32")}, resize in graph: '
        f'{exported.resize_in_graph})')
    return runner.test()
