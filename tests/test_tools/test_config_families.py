"""Every shipped config family trains a few iterations on generated data in
its real layout and label conventions, through ``tools/train.py``, with the
shipped pipelines (only their sizes shrunk) and a tiny backbone; the deploy
twin is then tested, and (custom dataset) exported.

The configs are used as a user uses them: a config of the user's, outside
the repository, inherits the shipped one by path.
"""
import re

import cv2
import numpy as np

from ..conftest import REPO, run, tool

#: A tiny backbone and heads, set in the user's config.
TINY_MODEL = """
model = dict(
    data_preprocessor=dict(size=CROP),
    backbone=dict(
        arch=dict(_delete_=True, channels=(16, 32, 64, 96), depths=(1, 1, 1, 1),
                  window_sizes=(8, 4, 2, 2), sharesets=(1, 2, 4, 8)),
        init_cfg=None),
    decode_head=dict(in_channels=[16, 32, 64, 96], channels=32),
    auxiliary_head=dict(in_channels=64, channels=16))
"""


def _user_config(tmp_path, shipped, crop, body=''):
    path = tmp_path / 'my_config.py'
    path.write_text(f"_base_ = ['{REPO / 'configs' / shipped}']\n"
                    f'CROP = {crop}\n' + TINY_MODEL + body)
    return path


def _sizes(crop, scale, train_resize=2, train_crop=3, test_resize=1):
    """``--cfg-options`` shrinking the shipped pipelines' sizes only."""
    h, w = crop
    return [
        f'train_dataloader.dataset.pipeline.{train_resize}.scale={scale}',
        f'train_dataloader.dataset.pipeline.{train_crop}.crop_size=({h},{w})',
        f'val_dataloader.dataset.pipeline.{test_resize}.scale={scale}',
        f'test_dataloader.dataset.pipeline.{test_resize}.scale={scale}',
    ]


def _schedule(iters):
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
        f'param_scheduler.1.end={iters}', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1'
    ]


def _miou(output):
    found = re.findall(r'mIoU: ([0-9.]+)', output)
    assert found, output[-3000:]
    return float(found[-1])


def _train_and_test(config, work, options):
    done = run([*tool('train.py'), config, '--work-dir', work,
                '--cfg-options', *options], timeout=900)
    log = done.stdout + done.stderr
    deploy = sorted(work.glob('iter_*_deploy.pth'))
    assert deploy, log[-3000:]
    test_options = [o for o in options if o.startswith('test_')]
    done = run([*tool('test.py'), config, deploy[-1], '--work-dir',
                work / 'test', '--cfg-options', *test_options], timeout=600)
    return deploy[-1], log, _miou(done.stdout + done.stderr)


def test_cityscapes_flagship_trains_on_cityscapes_layout(tiny_cityscapes,
                                                         tmp_path):
    crop = (64, 128)
    config = _user_config(tmp_path, 'cityscapes/upernet_repmlpnet.py', crop)
    options = [f'{s}_dataloader.dataset.data_root={tiny_cityscapes}'
               for s in ('train', 'val', 'test')]
    options += _sizes(crop, '(256,128)') + _schedule(2)
    _, log, miou = _train_and_test(config, tmp_path / 'work', options)
    assert 'CityscapesDataset' in log and 0 <= miou <= 100


# --- a dataset of the user's: 3 classes, PNG, MMSegmentation's layout ------
SHAPES_CLASSES = ('background', 'square', 'disc')


def make_shapes_dataset(root, num_train=6, num_val=2, size=(96, 128),
                        seed=0):
    """Squares and discs on noise: ``img_dir/{train,val}/*.png`` and class
    indices in ``ann_dir/{train,val}/*.png``."""
    rng = np.random.default_rng(seed)
    h, w = size
    for split, num in (('train', num_train), ('val', num_val)):
        (root / 'img_dir' / split).mkdir(parents=True)
        (root / 'ann_dir' / split).mkdir(parents=True)
        for i in range(num):
            image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
            label = np.zeros((h, w), np.uint8)
            for _ in range(3):
                cls = int(rng.integers(1, 3))
                cy, cx = int(rng.integers(16, h - 16)), int(
                    rng.integers(16, w - 16))
                r = int(rng.integers(8, 16))
                if cls == 1:
                    cv2.rectangle(label, (cx - r, cy - r), (cx + r, cy + r),
                                  1, -1)
                else:
                    cv2.circle(label, (cx, cy), r, 2, -1)
            colours = np.array([[30, 30, 30], [40, 40, 220], [220, 160, 40]],
                               np.uint8)
            image = np.clip(image + colours[label], 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / 'img_dir' / split / f'{i:04d}.png'), image)
            cv2.imwrite(str(root / 'ann_dir' / split / f'{i:04d}.png'), label)
    return root


CUSTOM = 'custom/upernet_repmlpnet-t256_1xb4-20k_custom-512x512.py'


def test_custom_dataset_template_trains_tests_and_exports(tmp_path):
    root = make_shapes_dataset(tmp_path / 'shapes')
    crop = (64, 64)
    config = _user_config(tmp_path, CUSTOM, crop)
    options = [f'{s}_dataloader.dataset.data_root={root}'
               for s in ('train', 'val', 'test')]
    options += _sizes(crop, '(128,96)') + _schedule(4)
    deploy, log, miou = _train_and_test(config, tmp_path / 'work', options)
    assert 0 <= miou <= 100
    onnx = tmp_path / 'shapes.onnx'
    done = run([*tool('export_onnx.py'), config, deploy, onnx, '--shape',
                '96', '128'], timeout=600)
    assert onnx.is_file(), done.stdout + done.stderr


def test_custom_dataset_with_wrong_num_classes_is_refused(tmp_path):
    root = make_shapes_dataset(tmp_path / 'shapes', num_train=2, num_val=1)
    config = _user_config(tmp_path, CUSTOM, (64, 64))
    done = run([*tool('train.py'), config, '--work-dir', tmp_path / 'w',
                '--cfg-options',
                *[f'{s}_dataloader.dataset.data_root={root}'
                  for s in ('train', 'val')],
                'model.decode_head.num_classes=19'], check=False,
               timeout=300)
    assert done.returncode != 0
    assert 'model.decode_head.num_classes is 19' in done.stderr
    assert 'has 3 classes' in done.stderr
    assert not (tmp_path / 'w').exists() or not list(
        (tmp_path / 'w').glob('*.pth'))


def test_ade20k_config_trains_on_ade20k_layout(tmp_path):
    from mmseg_repmlp.synthetic import generate_synthetic_ade20k

    # Raw ids 0..150 with 0 = "other", as ADEChallengeData2016 ships them;
    # ADE20KDataset reduces the zero label by default.
    root = tmp_path / 'ADEChallengeData2016'
    generate_synthetic_ade20k(str(root), num_train=4, num_val=2, height=96,
                              width=128, seed=2)
    # The street scenes have no flag: paint one (raw id 150, the last
    # class) into every label map, so the whole id range is used.
    for label in root.glob('annotations/*/*.png'):
        ids = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
        ids[:4, :4] = 150
        cv2.imwrite(str(label), ids)
    crop = (64, 64)
    config = _user_config(
        tmp_path, 'ade20k/upernet_repmlpnet-t256_8xb2-160k_ade20k-512x512.py',
        crop)
    options = [f'{s}_dataloader.dataset.data_root={root}'
               for s in ('train', 'val', 'test')]
    options += _sizes(crop, '(128,96)') + _schedule(2)
    _, log, miou = _train_and_test(config, tmp_path / 'work', options)
    assert 'ADE20KDataset' in log and 0 <= miou <= 100
