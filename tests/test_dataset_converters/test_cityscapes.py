"""Tests of the Cityscapes converter, run on the synthetic Cityscapes."""
import filecmp
import json
import shutil

import pytest

from mmseg_repmlp.dataset_converters import convert_cityscapes as convert

from ..test_synthetic.utils import (
    ALL,
    STEMS,
    ann_path,
    files_under,
    label_path,
    small_converted_cityscapes,
)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    """The small dataset, generated and converted once for all tests."""
    return small_converted_cityscapes(
        tmp_path_factory.mktemp('synthetic') / 'cityscapes')


def copy_of(dataset, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(dataset[0], root)
    return root


def test_split_files(dataset):
    root = dataset[0]
    assert (root / 'train.txt').read_text() == ''.join(
        f'{s}\n' for s in STEMS['train'])
    assert (root / 'val.txt').read_text() == ''.join(
        f'{s}\n' for s in STEMS['val'])
    assert not (root / 'test.txt').exists()


def test_convert_skips_existing_and_overwrites(dataset, tmp_path):
    root = copy_of(dataset, tmp_path)
    labels = [label_path(root, s, t) for s, t in ALL]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in labels}
    summary = convert(str(root))
    assert (summary['num_converted'], summary['num_skipped']) == (0, 6)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns)
            for p in labels} == before
    summary = convert(str(root), overwrite=True, splits='train')
    assert (summary['num_converted'], summary['num_skipped']) == (4, 0)
    assert list(summary['splits']) == ['train']
    for p in labels:
        assert p.read_bytes() == before[p][0]
    assert not [n for n in files_under(root) if '.tmp' in n]


def test_convert_in_parallel_matches_serial(dataset, tmp_path):
    root = copy_of(dataset, tmp_path)
    for split, stem in ALL:
        label_path(root, split, stem).unlink()
    summary = convert(str(root), nproc=2)
    assert summary['num_converted'] == 6
    for split, stem in ALL:
        assert filecmp.cmp(label_path(root, split, stem),
                           label_path(dataset[0], split, stem),
                           shallow=False)
    assert files_under(root) == files_under(dataset[0])


def test_convert_errors(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        convert(str(tmp_path / 'nowhere'))

    no_gt = tmp_path / 'no_gt'
    (no_gt / 'leftImg8bit').mkdir(parents=True)
    with pytest.raises(FileNotFoundError,
                       match=r'No gtFine/ folder(.|\n)*'
                       r'make_synthetic_cityscapes\.py'):
        convert(str(no_gt))

    empty_gt = tmp_path / 'empty_gt'
    (empty_gt / 'gtFine' / 'train' / 'aachen').mkdir(parents=True)
    with pytest.raises(FileNotFoundError,
                       match=r'No annotation files .*_gtFine_polygons\.json'):
        convert(str(empty_gt))

    with pytest.raises(ValueError, match='nproc'):
        convert(str(dataset[0]), nproc=0)


def test_convert_image_without_annotation(dataset, tmp_path):
    root = copy_of(dataset, tmp_path)
    for split, stem in ALL:
        label_path(root, split, stem).unlink()
    missing = ann_path(root, 'train', STEMS['train'][3])
    missing.unlink()
    with pytest.raises(FileNotFoundError) as info:
        convert(str(root))
    message = str(info.value)
    assert '1 image(s) in' in message
    assert 'bremen_000001_000019_leftImg8bit.png' in message
    assert str(missing) in message
    # Checks run before any work: nothing was converted.
    assert not list(root.rglob('*_labelTrainIds.png'))
    # Without the broken split the conversion works.
    assert convert(str(root), splits=['val'])['num_converted'] == 2


@pytest.mark.parametrize('nproc', [1, 2])
def test_convert_unknown_label(dataset, tmp_path, nproc):
    root = copy_of(dataset, tmp_path)
    path = ann_path(root, 'val', STEMS['val'][0])
    data = json.loads(path.read_text())
    data['objects'][-1]['label'] = 'unicorn'
    path.write_text(json.dumps(data))
    # Must raise (not hang a worker pool, not exit the interpreter).
    with pytest.raises(ValueError, match="unicorn"):
        convert(str(root), nproc=nproc, splits=['val'], overwrite=True)
