"""Tests of the synthetic Cityscapes writer (with the converter run on it)."""
import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmseg_repmlp.dataset_converters import convert_cityscapes as convert
from mmseg_repmlp.synthetic import cityscapes
from mmseg_repmlp.synthetic import generate_synthetic_cityscapes as generate

from .utils import (
    ALL,
    SMALL,
    STEMS,
    ann_path,
    files_under,
    img_path,
    label_path,
    small_converted_cityscapes,
)

REPO = Path(__file__).resolve().parents[2]
TRAIN_IDS = set(range(19)) | {255}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    """The small dataset, generated and converted once for all tests."""
    return small_converted_cityscapes(
        tmp_path_factory.mktemp('synthetic') / 'cityscapes')


def test_layout_and_names(dataset):
    root, summary, _ = dataset
    expected = ['.synthetic_cityscapes', 'train.txt', 'val.txt']
    for split, stem in ALL:
        expected += [
            str(img_path(root, split, stem).relative_to(root)),
            str(ann_path(root, split, stem).relative_to(root)),
            str(label_path(root, split, stem).relative_to(root)),
        ]
    assert files_under(root) == sorted(expected)
    for split, stem in ALL:
        with Image.open(img_path(root, split, stem)) as img:
            assert (img.format, img.mode, img.size) == ('PNG', 'RGB',
                                                       (256, 128))
    assert summary['generated'] is True
    assert summary['root'] == str(root)
    assert summary['splits']['train']['cities'] == {'aachen': 2, 'bremen': 2}
    assert summary['splits']['val']['cities'] == {'frankfurt': 2}
    assert summary['splits']['train']['images'] == STEMS['train']
    assert summary['splits']['val']['img_dir'] == 'leftImg8bit/val'
    assert summary['splits']['val']['ann_dir'] == 'gtFine/val'


def test_polygon_json_format(dataset):
    from cityscapesscripts.helpers.labels import name2label
    root = dataset[0]
    for split, stem in ALL:
        data = json.loads(ann_path(root, split, stem).read_text())
        assert set(data) == {'imgHeight', 'imgWidth', 'objects'}
        assert (data['imgHeight'], data['imgWidth']) == (128, 256)
        # Sky is drawn first, everything else on top of it.
        assert data['objects'][0]['label'] == 'sky'
        for obj in data['objects']:
            assert set(obj) == {'label', 'polygon'}
            assert obj['label'] in name2label
            assert obj['label'] in cityscapes.LABEL_TRAIN_IDS
            assert len(obj['polygon']) >= 3
            for x, y in obj['polygon']:
                assert type(x) is int and type(y) is int
                assert 0 <= x < 256 and 0 <= y < 128


def test_train_ids_table_matches_toolkit():
    from cityscapesscripts.helpers.labels import name2label
    table = {
        name: name2label[name].trainId
        for name in cityscapes.LABEL_TRAIN_IDS
    }
    assert cityscapes.LABEL_TRAIN_IDS == table


def test_deterministic(dataset, tmp_path):
    root = dataset[0]
    again = tmp_path / 'again'
    generate(str(again), **SMALL)
    names = files_under(again)
    assert len(names) == 1 + 2 * len(ALL)  # marker, images, polygons
    for name in names:
        assert filecmp.cmp(root / name, again / name, shallow=False), name
    other = tmp_path / 'other'
    generate(str(other), **dict(SMALL, seed=1))
    for split, stem in ALL:
        assert (img_path(root, split, stem).read_bytes() !=
                img_path(other, split, stem).read_bytes())


def test_converted_labels(dataset):
    root, gen_summary, prep_summary = dataset
    union = set()
    counts = np.zeros(256, np.int64)
    for split, stem in ALL:
        with Image.open(label_path(root, split, stem)) as img:
            assert (img.mode, img.size) == ('L', (256, 128))
            label = np.asarray(img)
        values = set(np.unique(label).tolist())
        assert values <= TRAIN_IDS
        # Every scene shows road, building and sky.
        assert {0, 2, 10} <= values
        union |= values
        counts += np.bincount(label.ravel(), minlength=256)
    drawn = set(cityscapes.LABEL_TRAIN_IDS.values())
    assert union <= drawn
    assert len(union - {255}) >= 5
    assert 255 in union  # the ego vehicle is ignored, as in Cityscapes
    # The generator's own statistics come from its own rasterisation of the
    # polygons; they must agree with the toolkit's rendering exactly.
    fractions = gen_summary['class_pixel_fraction']
    for name, tid in gen_summary['class_train_ids'].items():
        assert fractions[name] == pytest.approx(counts[tid] / counts.sum(),
                                                abs=1e-6)
    assert fractions['ignore'] == pytest.approx(
        counts[255] / counts.sum(), abs=1e-6)
    assert sorted(gen_summary['class_train_ids'].values()) == sorted(union -
                                                                     {255})
    assert prep_summary['splits'] == {
        split: dict(num_annotations=len(STEMS[split]),
                    num_images=len(STEMS[split]),
                    num_converted=len(STEMS[split]), num_skipped=0,
                    split_file=str(root / f'{split}.txt'))
        for split in ('train', 'val')
    }
    assert prep_summary['skipped_splits'] == ['test']
    assert (prep_summary['num_converted'], prep_summary['num_skipped']) == (6,
                                                                            0)


def test_image_matches_labels(dataset):
    root = dataset[0]
    pixels = {}
    for split, stem in ALL:
        img = np.asarray(Image.open(img_path(root, split, stem)), np.float64)
        label = np.asarray(Image.open(label_path(root, split, stem)))
        for tid in (0, 2, 8, 10):
            pixels.setdefault(tid, []).append(img[label == tid])
    mean = {k: np.concatenate(v).mean(0) for k, v in pixels.items()}
    std = {k: np.concatenate(v).std(0) for k, v in pixels.items()}
    sky, road, veg = mean[10], mean[0], mean[8]
    assert sky.mean() - road.mean() > 60  # bright sky, dark asphalt
    assert sky[2] > sky[0] + 20  # blue
    assert veg[1] > veg[0] + 20 and veg[1] > veg[2] + 30  # green
    assert abs(road[0] - road[2]) < 20  # grey
    # Facades are textured (windows), not a flat colour per class.
    assert (std[2] > 25).all()


def test_refuses_foreign_folder(tmp_path):
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'notes.txt').write_text('my data')
    with pytest.raises(FileExistsError, match='Refusing'):
        generate(str(root), num_train=1, num_val=0, height=64, width=64)
    assert files_under(root) == ['notes.txt']
    with pytest.raises(FileExistsError, match='Refusing'):
        generate(str(root), num_train=1, num_val=0, height=64, width=64,
                 overwrite=True)
    with pytest.raises(FileExistsError, match='not a directory'):
        generate(str(root / 'notes.txt'), num_train=1, num_val=0, height=64,
                 width=64)
    assert (root / 'notes.txt').read_text() == 'my data'


def test_marker_reuse_and_overwrite(tmp_path):
    root = tmp_path / 'synth'
    root.mkdir()  # an existing empty folder is fine
    args = dict(num_train=2, num_val=1, height=64, width=128, seed=3)
    first = generate(str(root), **args)
    convert(str(root))
    before = {n: (root / n).read_bytes() for n in files_under(root)}

    again = generate(str(root), **args)
    assert again['generated'] is False
    assert dict(again, generated=True) == first
    with pytest.warns(UserWarning, match='overwrite=True'):
        kept = generate(str(root), **dict(args, num_train=1))
    assert kept['splits']['train']['num_images'] == 2
    assert {n: (root / n).read_bytes() for n in files_under(root)} == before

    redone = generate(str(root), **dict(args, num_train=1), overwrite=True)
    assert redone['generated'] is True
    # Old images, their (now stale) labels and split lists are gone.
    assert files_under(root) == sorted([
        '.synthetic_cityscapes',
        'leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png',
        'gtFine/train/aachen/aachen_000000_000019_gtFine_polygons.json',
        'leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png',
        'gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_polygons.json',
    ])


def test_interrupted_generation_is_redone(tmp_path):
    root = tmp_path / 'synth'
    (root / 'leftImg8bit').mkdir(parents=True)
    (root / 'leftImg8bit' / 'half_written.png').write_bytes(b'')
    (root / cityscapes.PARTIAL_MARKER_FILE).write_text('')
    summary = generate(str(root), num_train=1, num_val=0, height=64,
                       width=64)
    assert summary['generated'] is True
    assert not (root / 'leftImg8bit' / 'half_written.png').exists()
    assert not (root / cityscapes.PARTIAL_MARKER_FILE).exists()
    assert (root / cityscapes.MARKER_FILE).is_file()


@pytest.mark.parametrize('kwargs', [
    dict(num_train=0), dict(num_val=-1), dict(height=16), dict(seed=-1),
    dict(width=1.5)
])
def test_generate_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate(str(tmp_path / 'x'), **kwargs)
    assert not (tmp_path / 'x').exists()


def test_command_line_tools(tmp_path):
    # Run from outside the repository, without PYTHONPATH: the installed
    # package is what the tools use.
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    tools = REPO / 'tools' / 'dataset_converters'
    root = tmp_path / 'cli'
    out = subprocess.run([
        sys.executable, str(tools / 'make_synthetic_cityscapes.py'),
        str(root), '--num-train', '2', '--num-val', '1', '--height', '64',
        '--width', '128', '--seed', '5'
    ], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)['splits']['train']['num_images'] == 2
    out = subprocess.run([
        sys.executable, str(tools / 'cityscapes.py'), str(root), '--nproc', '2'
    ], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary['num_converted'], summary['skipped_splits']) == (3,
                                                                    ['test'])
    assert (root / 'val.txt').read_text() == \
        'frankfurt/frankfurt_000000_000019\n'
