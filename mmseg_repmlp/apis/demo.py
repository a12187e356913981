"""The built-in demo: generate data, train, test the deploy model, infer.

Runs on 2 CPU cores in about 10 minutes with no downloads:

1. a small street-scene dataset in the real Cityscapes layout is generated
   and prepared with the same converter real users run
   (``tools/dataset_converters/cityscapes.py``);
2. a small RepMLPNet-UPerNet is trained with the regular training entry
   (validation, checkpoints, deploy twins written and verified by the hook);
3. the best deploy checkpoint is tested with the regular test entry;
4. one validation image is segmented with the deploy model and written as a
   colour overlay.
"""
import argparse
import glob
import os
import os.path as osp
from typing import List, Optional

DEMO_CONFIG = 'demo/upernet_repmlpnet-tiny_1xb4-600_synthetic-cityscapes-128x256.py'


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


def _newest(pattern: str) -> str:
    files = sorted(glob.glob(pattern), key=osp.getmtime)
    if not files:
        raise FileNotFoundError(f'No file matches {pattern!r}.')
    return files[-1]


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    from ..config_paths import config_path
    from ..datasets import convert_cityscapes, generate_synthetic_cityscapes
    from . import test as test_entry
    from . import train as train_entry
    from .inference import init_model

    config = args.config or config_path(DEMO_CONFIG)
    work_dir = osp.abspath(args.work_dir)
    data_root = osp.join(work_dir, 'data', 'cityscapes')
    train_dir = osp.join(work_dir, 'train')

    print(f'[1/4] Generating a Cityscapes-layout dataset in {data_root}')
    generate_synthetic_cityscapes(
        data_root, num_train=args.num_train, num_val=args.num_val)
    convert_cityscapes(data_root, nproc=2)

    options = [f'{split}_dataloader.dataset.data_root={data_root}'
               for split in ('train', 'val', 'test')]
    if args.max_iters:
        iters = args.max_iters
        options += [
            f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={max(iters // 2, 1)}',
            f'default_hooks.checkpoint.interval={max(iters // 2, 1)}',
            f'param_scheduler.0.end={max(iters // 10, 1)}',
            f'param_scheduler.1.begin={max(iters // 10, 1)}',
            f'param_scheduler.1.end={iters}',
        ]
    print(f'[2/4] Training {osp.basename(config)} in {train_dir}')
    train_entry.main([config, '--work-dir', train_dir, '--cfg-options',
                      *options])

    deploy_ckpt = _newest(osp.join(train_dir, 'best_mIoU_*_deploy.pth'))
    print(f'[3/4] Testing the deploy checkpoint {deploy_ckpt}')
    metrics = test_entry.main([
        config, deploy_ckpt, '--work-dir', osp.join(work_dir, 'test'),
        '--cfg-options', *options[:3]
    ])

    image = sorted(
        glob.glob(osp.join(data_root, 'leftImg8bit', 'val', '*', '*.png')))[0]
    out_file = osp.join(work_dir, 'demo_overlay.png')
    print(f'[4/4] Segmenting {image} with the deploy model -> {out_file}')
    from mmseg.apis import inference_model, show_result_pyplot
    model = init_model(config, deploy_ckpt, device='cpu')
    result = inference_model(model, image)
    show_result_pyplot(
        model, image, result, opacity=0.6, show=False, out_file=out_file)

    print('\nDemo finished.')
    print(f'  val mIoU (deploy model, whole 256x512 images): '
          f'{metrics["mIoU"]:.2f}')
    print(f'  deploy checkpoint: {deploy_ckpt}')
    print(f'  overlay: {out_file}')
    os.makedirs(work_dir, exist_ok=True)
    return dict(metrics=metrics, deploy_checkpoint=deploy_ckpt,
                overlay=out_file)
