"""Tests of the synthetic ADE20K writer."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmseg_repmlp.dataset_converters import convert_cityscapes
from mmseg_repmlp.synthetic import (
    LABEL_TRAIN_IDS,
    generate_synthetic_ade20k,
    generate_synthetic_cityscapes,
)
from mmseg_repmlp.synthetic.ade20k import LABEL_ADE20K, MARKER_FILE

from .utils import ALL, SMALL, files_under, label_path

REPO = Path(__file__).resolve().parents[2]
#: (ADE20K folder, file prefix, Cityscapes split) of each split.
SPLITS = [('training', 'ADE_train_', 'train'),
          ('validation', 'ADE_val_', 'val')]
NUM = {'training': SMALL['num_train'], 'validation': SMALL['num_val']}
generate = generate_synthetic_ade20k


def names(folder, prefix):
    return [f'{prefix}{i:08d}' for i in range(1, NUM[folder] + 1)]


def image(root, folder, name):
    return Path(root, 'images', folder, f'{name}.jpg')


def annotation(root, folder, name):
    return Path(root, 'annotations', folder, f'{name}.png')


def read(path):
    with Image.open(path) as img:
        return img.format, img.mode, img.size, np.asarray(img)


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic') / 'ade'
    return root, generate(str(root), **SMALL)


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    """The same scenes in Cityscapes layout, rasterised by the toolkit."""
    root = tmp_path_factory.mktemp('synthetic') / 'cityscapes'
    generate_synthetic_cityscapes(str(root), **SMALL)
    convert_cityscapes(str(root))
    return root


def test_layout_and_names(ade):
    root, summary = ade
    expected = [MARKER_FILE]
    for folder, prefix, _ in SPLITS:
        for name in names(folder, prefix):
            expected += [f'images/{folder}/{name}.jpg',
                         f'annotations/{folder}/{name}.png']
            img_format, mode, size, _ = read(image(root, folder, name))
            assert (img_format, mode, size) == ('JPEG', 'RGB', (256, 128))
            ann_format, mode, size, _ = read(annotation(root, folder, name))
            assert (ann_format, mode, size) == ('PNG', 'L', (256, 128))
        assert summary['splits'][folder] == dict(
            num_images=NUM[folder], img_dir=f'images/{folder}',
            ann_dir=f'annotations/{folder}', images=names(folder, prefix))
    assert files_under(root) == sorted(expected)
    assert summary['generated'] is True and summary['root'] == str(root)


def test_ids_match_mmseg_classes():
    from mmseg.datasets import ADE20KDataset
    classes = ADE20KDataset.METAINFO['classes']
    assert len(classes) == 150
    assert {label: name for label, (name, _) in LABEL_ADE20K.items()} == {
        'road': 'road', 'sidewalk': 'sidewalk', 'building': 'building',
        'sky': 'sky', 'vegetation': 'tree', 'terrain': 'grass',
        'person': 'person', 'car': 'car', 'pole': 'pole',
        'traffic sign': 'signboard', 'ego vehicle': 'other'
    }
    for label, (name, raw_id) in LABEL_ADE20K.items():
        if name == 'other':
            assert raw_id == 0
        else:
            assert classes.index(name) + 1 == raw_id, label
    # Every class the scenes draw has an ADE20K id.
    assert set(LABEL_ADE20K) == set(LABEL_TRAIN_IDS)


def test_label_values(ade):
    root, summary = ade
    union = set()
    for folder, prefix, _ in SPLITS:
        for name in names(folder, prefix):
            values = set(np.unique(read(annotation(root, folder,
                                                   name))[3]).tolist())
            assert values <= set(range(151))
            # Every scene shows road, building and sky.
            assert {7, 2, 3} <= values
            union |= values
    drawn = {raw_id for _, raw_id in LABEL_ADE20K.values()}
    assert 0 in union  # the ego vehicle is "other"
    assert union <= drawn and len(union - {0}) >= 5
    assert sorted(summary['class_ids'].values()) == sorted(union - {0})
    assert set(summary['class_pixel_fraction']) == set(summary['classes']) | {
        'other'
    }


def test_image_colours_match_labels(ade):
    root = ade[0]
    pixels = {}
    for folder, prefix, _ in SPLITS:
        for name in names(folder, prefix):
            rgb = read(image(root, folder, name))[3].astype(np.float64)
            label = read(annotation(root, folder, name))[3]
            for raw_id in (3, 5, 7):  # sky, tree, road
                pixels.setdefault(raw_id, []).append(rgb[label == raw_id])
    sky, tree, road = (np.concatenate(pixels[i]).mean(0) for i in (3, 5, 7))
    assert sky.mean() - road.mean() > 60  # bright sky, dark asphalt
    assert sky[2] > sky[0] + 20  # blue
    assert tree[1] > tree[0] + 20 and tree[1] > tree[2] + 30  # green
    assert abs(road[0] - road[2]) < 20  # grey


def test_labels_match_cityscapes_scenes(ade, cityscapes):
    """Same seed, same scenes: the ADE20K labels are the Cityscapes labels
    (rasterised independently by cityscapesscripts) under the class
    mapping, and the images agree up to JPEG compression."""
    root = ade[0]
    to_ade = np.zeros(256, np.uint8)  # trainId 255 (ego vehicle) -> other
    for label, train_id in LABEL_TRAIN_IDS.items():
        if train_id != 255:
            to_ade[train_id] = LABEL_ADE20K[label][1]
    pairs = [(f, n, s) for f, p, s in SPLITS for n in names(f, p)]
    stems = [stem for _, stem in ALL]
    assert len(pairs) == len(stems)
    for (folder, name, split), stem in zip(pairs, stems):
        train_ids = np.asarray(Image.open(label_path(cityscapes, split,
                                                     stem)))
        label = read(annotation(root, folder, name))[3]
        np.testing.assert_array_equal(label, to_ade[train_ids])
        png = np.asarray(Image.open(
            cityscapes / 'leftImg8bit' / split / f'{stem}_leftImg8bit.png'),
            np.float64)
        jpeg = read(image(root, folder, name))[3].astype(np.float64)
        # Sensor noise is what JPEG loses most of; other scenes differ by >20.
        assert np.abs(jpeg - png).mean() < 8


# The pipeline of MMSegmentation's ADE20K configs; mmseg 1.2.2 warns that
# LoadAnnotations' reduce_zero_label will move to the dataset.
@pytest.mark.filterwarnings('ignore:`reduce_zero_label` will be deprecated')
def test_mmseg_ade20k_dataset_reads_it(ade):
    from mmseg.datasets import ADE20KDataset
    from mmseg.utils import register_all_modules
    register_all_modules()
    root = ade[0]
    dataset = ADE20KDataset(
        data_root=str(root),
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations/validation'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', reduce_zero_label=True)])
    assert len(dataset) == NUM['validation']
    for i, name in enumerate(names('validation', 'ADE_val_')):
        item = dataset[i]
        assert Path(item['img_path']).name == f'{name}.jpg'
        assert item['img'].shape == (128, 256, 3)
        gt = item['gt_seg_map']
        assert set(np.unique(gt).tolist()) <= set(range(150)) | {255}
        raw = read(annotation(root, 'validation', name))[3].astype(np.int64)
        np.testing.assert_array_equal(gt, np.where(raw == 0, 255, raw - 1))


def test_refuses_foreign_and_cityscapes_folders(tmp_path):
    args = dict(num_train=1, num_val=0, height=64, width=64)
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'notes.txt').write_text('my data')
    for overwrite in (False, True):
        with pytest.raises(FileExistsError,
                           match='Refusing(.|\n)*real ADE20K'):
            generate(str(root), overwrite=overwrite, **args)
    assert files_under(root) == ['notes.txt']
    # A synthetic Cityscapes is not an ADE20K generation.
    city = tmp_path / 'city'
    generate_synthetic_cityscapes(str(city), **args)
    before = files_under(city)
    with pytest.raises(FileExistsError, match='synthetic_ade20k'):
        generate(str(city), overwrite=True, **args)
    assert files_under(city) == before


def test_reuse_overwrite_and_interrupted(tmp_path):
    root = tmp_path / 'ade'
    args = dict(num_train=2, num_val=1, height=64, width=128, seed=3)
    first = generate(str(root), **args)
    before = {n: (root / n).read_bytes() for n in files_under(root)}
    with pytest.warns(UserWarning, match='overwrite=True'):
        kept = generate(str(root), **dict(args, num_train=1))
    assert dict(kept, generated=True) == first
    assert {n: (root / n).read_bytes() for n in files_under(root)} == before

    redone = generate(str(root), **dict(args, num_train=1), overwrite=True)
    assert redone['generated'] is True
    assert files_under(root) == sorted([
        MARKER_FILE, 'images/training/ADE_train_00000001.jpg',
        'annotations/training/ADE_train_00000001.png',
        'images/validation/ADE_val_00000001.jpg',
        'annotations/validation/ADE_val_00000001.png'
    ])
    assert all((root / n).read_bytes() == before[n]
               for n in files_under(root) if n != MARKER_FILE)

    (root / MARKER_FILE).rename(root / f'{MARKER_FILE}.partial')
    assert generate(str(root), **args)['generated'] is True
    assert {n: (root / n).read_bytes() for n in files_under(root)} == before


def test_command_line_layout_option(tmp_path):
    root = tmp_path / 'cli'
    out = subprocess.run([
        sys.executable,
        str(REPO / 'tools' / 'dataset_converters' /
            'make_synthetic_cityscapes.py'),
        str(root), '--layout', 'ade20k', '--num-train', '1', '--num-val', '1',
        '--height', '64', '--width', '128'
    ], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)['splits']['validation']['num_images'] == 1
    assert (root / 'annotations' / 'validation' /
            'ADE_val_00000001.png').is_file()
