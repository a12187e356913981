"""The built-in demo: generate data, train, test the deploy model, draw.

Runs on 2 CPU cores in about 6 minutes with no downloads:

1. a small street-scene dataset in the real Cityscapes layout is generated
   and prepared with the same converter real users run
   (``tools/dataset_converters/cityscapes.py``);
2. a small RepMLPNet-UPerNet is trained with the regular training entry
   (validation, checkpoints, deploy twins written and verified by the hook);
3. the best deploy checkpoint is tested with the regular test entry;
4. one validation image is segmented with the deploy model and written as a
   colour overlay;
5. the run is drawn by ``tools/analysis/plot_run.py --tta``: val images
   with their ground truth and prediction, the training curves and the IoU
   of every ground-truth class on whole images and with MMSegmentation's
   multi-scale + flip testing, as PNGs in the work dir.
"""
import argparse
import glob
import os.path as osp
from typing import List, Optional

from ..dataset_converters import convert_cityscapes
from ..synthetic import generate_synthetic_cityscapes
from ..utils.config_paths import config_path
from . import image_demo, plot_run
from . import test as test_entry
from . import train as train_entry

DEMO_CONFIG = 'demo/upernet_repmlpnet-tiny_1xb2-1600_synthetic-cityscapes-128x256.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-train', type=int, default=40)
    parser.add_argument('--num-val', type=int, default=10)
    parser.add_argument(
        '--max-iters', type=int, default=None,
        help='override the config\'s training length (for a quick look)')
    parser.add_argument('--config', default=None,
                        help=f'default: configs/{DEMO_CONFIG}')
    return parser.parse_args(argv)


def data_root_options(data_root: str) -> List[str]:
    """``--cfg-options`` pointing every dataloader at ``data_root``."""
    return [f'{split}_dataloader.dataset.data_root={data_root}'
            for split in ('train', 'val', 'test')]


def short_schedule_options(iters: int, interval: int) -> List[str]:
    """``--cfg-options`` that shorten the demo config's schedule."""
    warmup = max(iters // 10, 1)
    return [
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={interval}',
        f'default_hooks.checkpoint.interval={interval}',
        f'param_scheduler.0.end={warmup}',
        f'param_scheduler.1.begin={warmup}',
        f'param_scheduler.1.end={iters}',
    ]


class _Progress:
    """``  what: done/total`` on one line, updated in place; nothing for a
    step with nothing to do (a second run keeps the data)."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done = what, total, 0

    def __call__(self) -> None:
        self.done += 1
        print(f'\r  {self.what}: {self.done}/{self.total}', end='',
              flush=True)

    def close(self) -> None:
        if self.done:
            print()


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    config = args.config or config_path(DEMO_CONFIG)
    work_dir = osp.abspath(args.work_dir)
    data_root = osp.join(work_dir, 'data', 'cityscapes')
    train_dir = osp.join(work_dir, 'train')

    num_images = args.num_train + args.num_val
    print(f'[1/5] Generating a Cityscapes-layout dataset in {data_root}')
    progress = _Progress('images generated', num_images)
    generated = generate_synthetic_cityscapes(
        data_root, num_train=args.num_train, num_val=args.num_val,
        progress=progress)
    progress.close()
    if not generated['generated']:
        print('  kept the dataset an earlier run generated')
    progress = _Progress('label maps converted', num_images)
    converted = convert_cityscapes(data_root, nproc=2, progress=progress)
    progress.close()
    if converted['num_skipped']:
        print(f'  kept {converted["num_skipped"]} label maps converted '
              'before')

    options = data_root_options(data_root)
    if args.max_iters:
        options += short_schedule_options(args.max_iters,
                                          max(args.max_iters // 2, 1))
    train_args = [config, '--work-dir', train_dir]
    if osp.isfile(osp.join(train_dir, 'last_checkpoint')):
        # A second run continues (or just re-tests) the first one instead
        # of overwriting its checkpoints.
        train_args.append('--resume')
    print(f'[2/5] Training {osp.basename(config)} in {train_dir}')
    train_entry.main([*train_args, '--cfg-options', *options])

    deploy_ckpt = plot_run.find_checkpoint(train_dir)  # the best deploy one
    print(f'[3/5] Testing the deploy checkpoint {deploy_ckpt}')
    metrics = test_entry.main([
        config, deploy_ckpt, '--work-dir', osp.join(work_dir, 'test'),
        '--cfg-options', *data_root_options(data_root),
        # About five progress lines, whatever the number of val images.
        f'default_hooks.logger.interval={max(args.num_val // 5, 1)}'
    ])

    image = sorted(
        glob.glob(osp.join(data_root, 'leftImg8bit', 'val', '*', '*.png')))[0]
    out_file = osp.join(work_dir, 'demo_overlay.png')
    print(f'[4/5] Segmenting {image} with the deploy model -> {out_file}')
    # The overlay is the demo's own output in its work dir: a second run
    # (which resumes the training) draws it again.
    image_demo.main([image, config, deploy_ckpt, '--out-file', out_file,
                     '--opacity', '0.6', '--force'])

    print(f'[5/5] Drawing the run into {work_dir}')
    # Like the overlay, the pictures are the demo's own outputs: redrawn.
    pictures = plot_run.main([train_dir, '--checkpoint', deploy_ckpt,
                              '--out-dir', work_dir, '--tta', '--force'])

    print('\nDemo finished.')
    print(f'  val mIoU (deploy model, whole 256x512 images): '
          f'{metrics["mIoU"]:.2f}')
    print(f'  val mIoU, multi-scale + flip (--tta): '
          f'{pictures["tta_mIoU"]:.2f}')
    print(f'  deploy checkpoint: {deploy_ckpt}')
    print(f'  val images, ground truth, prediction: {pictures["panel"]}')
    print(f'  training curves: {pictures["curves"]}')
    print(f'  per-class IoU: {pictures["per_class_iou"]}')
    print(f'  painted at each validation: '
          f'{osp.join(train_dir, "<timestamp>", "vis_data", "vis_image")}')
    print(f'  overlay: {out_file}')
    return dict(metrics=metrics, deploy_checkpoint=deploy_ckpt,
                overlay=out_file, pictures=pictures)
