"""The preflight asks each dataset for its own files and label conventions."""
import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from mmseg_repmlp.cli.preflight import (
    InputError,
    check_inputs,
    dataset_problems,
    pretrained_problems,
)


@DATASETS.register_module(force=True)
class PngShapesDataset(BaseSegDataset):
    """The registered-class pattern: suffixes set in ``__init__``."""
    METAINFO = dict(classes=('background', 'square', 'disc'),
                    palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0]])

    def __init__(self, **kwargs):
        super().__init__(img_suffix='.png', seg_map_suffix='.png', **kwargs)


def _write(root, img_dir, ann_dir, names, img_ext, ann_ext, labels):
    for name, label in zip(names, labels):
        (root / img_dir).mkdir(parents=True, exist_ok=True)
        (root / ann_dir).mkdir(parents=True, exist_ok=True)
        image = np.full((8, 12, 3), 100, np.uint8)
        cv2.imwrite(str(root / img_dir / f'{name}{img_ext}'), image)
        cv2.imwrite(str(root / ann_dir / f'{name}{ann_ext}'),
                    np.asarray(label, np.uint8))


def _cfg(dataset, num_classes):
    head = dict(type='FCNHead', num_classes=num_classes)
    return Config(dict(
        model=dict(decode_head=head, auxiliary_head=dict(head)),
        train_dataloader=dict(dataset=dataset)))


def _labels(values, n=2):
    return [np.full((8, 12), v, np.uint8) for v in values][:n]


@pytest.fixture
def shapes(tmp_path):
    _write(tmp_path, 'img_dir/train', 'ann_dir/train', ['a', 'b'], '.png',
           '.png', _labels([0, 2]))
    return dict(type='PngShapesDataset', data_root=str(tmp_path),
                data_prefix=dict(img_path='img_dir/train',
                                 seg_map_path='ann_dir/train'))


def test_registered_class_with_its_own_suffixes_passes(shapes):
    assert dataset_problems(_cfg(shapes, 3), phases=('train', )) == []


def test_wrong_num_classes_names_both_and_the_fix(shapes):
    problems = dataset_problems(_cfg(shapes, 19), phases=('train', ))
    assert len(problems) == 2  # decode and auxiliary head
    assert 'model.decode_head.num_classes is 19' in problems[0]
    assert '3 classes' in problems[0] and "'square'" in problems[0]
    assert 'model.decode_head.num_classes=3' in problems[0]
    assert 'model.auxiliary_head.num_classes is 19' in problems[1]
    with pytest.raises(InputError, match='num_classes=3'):
        check_inputs(_cfg(shapes, 19), phases=('train', ))


def test_config_only_dataset_with_metainfo(tmp_path):
    _write(tmp_path, 'img_dir/train', 'ann_dir/train', ['a', 'b'], '.jpg',
           '.png', _labels([1, 4]))
    dataset = dict(type='BaseSegDataset', data_root=str(tmp_path),
                   data_prefix=dict(img_path='img_dir/train',
                                    seg_map_path='ann_dir/train'),
                   metainfo=dict(classes=('a', 'b', 'c')),
                   img_suffix='.jpg', seg_map_suffix='.png')
    problems = dataset_problems(_cfg(dataset, 3), phases=('train', ))
    assert len(problems) == 1
    assert 'has ids [4] outside the 3 classes' in problems[0]
    assert 'class indices 0..2' in problems[0]


def _ade(tmp_path, values):
    _write(tmp_path, 'images/validation', 'annotations/validation',
           ['ADE_val_00000001', 'ADE_val_00000002'], '.jpg', '.png',
           _labels(values))
    return dict(type='ADE20KDataset', data_root=str(tmp_path),
                data_prefix=dict(img_path='images/validation',
                                 seg_map_path='annotations/validation'))


def test_ade20k_raw_ids_are_accepted(tmp_path):
    # 0 is "other" and 150 the last class: ADE20KDataset reduces the zero
    # label by default, which the config does not say.
    assert dataset_problems(_cfg(_ade(tmp_path, [0, 150]), 150),
                            phases=('train', )) == []


def test_ade20k_ids_beyond_its_classes_are_named(tmp_path):
    problems = dataset_problems(_cfg(_ade(tmp_path, [0, 151]), 150),
                                phases=('train', ))
    assert len(problems) == 1
    assert 'has ids [151] outside the 150 classes' in problems[0]
    assert 'reduce_zero_label=True' in problems[0]


def test_missing_label_map_names_the_suffix(shapes, tmp_path):
    (tmp_path / 'ann_dir' / 'train' / 'b.png').unlink()
    problems = dataset_problems(_cfg(shapes, 3), phases=('train', ))
    assert len(problems) == 1
    assert '1 of 2 images have no label map' in problems[0]
    assert 'b.png' in problems[0]


def test_missing_folder_says_how_to_prepare(tmp_path):
    dataset = dict(type='PngShapesDataset', data_root=str(tmp_path / 'no'),
                   data_prefix=dict(img_path='img_dir/train',
                                    seg_map_path='ann_dir/train'))
    problems = dataset_problems(_cfg(dataset, 3), phases=('train', ))
    assert len(problems) == 1 and 'does not exist' in problems[0]
    assert 'To prepare it, prepare it' not in problems[0]
    assert 'Your own dataset' in problems[0]


def test_missing_pretrained_file_of_a_custom_arch_names_no_release():
    cfg = Config(dict(model=dict(backbone=dict(
        arch=dict(channels=(8, 16, 32, 64)),
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/mine.pth')))))
    problems = pretrained_problems(cfg)
    assert len(problems) == 1 and 'custom arch' in problems[0]
    assert 'RepMLPNet-custom' not in problems[0]
    assert 'init_cfg=None' in problems[0]
    cfg.model.backbone.arch = 'T256'
    assert 'RepMLPNet-T256-train-*.pth' in pretrained_problems(cfg)[0]


def test_a_dataset_read_by_val_and_test_is_checked_once(tmp_path):
    _write(tmp_path, 'img_dir/val', 'ann_dir/val', ['a'], '.png', '.png',
           _labels([7], n=1))
    dataset = dict(type='PngShapesDataset', data_root=str(tmp_path),
                   data_prefix=dict(img_path='img_dir/val',
                                    seg_map_path='ann_dir/val'))
    cfg = _cfg(dataset, 3)
    cfg.val_dataloader = dict(dataset=dataset)
    cfg.test_dataloader = dict(dataset=dataset)
    problems = dataset_problems(cfg, phases=('val', 'test'))
    assert len(problems) == 1 and problems[0].startswith('val data:')
