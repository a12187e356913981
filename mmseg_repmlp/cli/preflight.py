"""Checks run before a training or test run builds anything expensive.

MMEngine would otherwise build the whole model and data pipeline, and then
fail deep inside with a bare ``FileNotFoundError`` (or, for pretrained
weights, only warn; or, for a head with the wrong number of classes, train
silently). These checks fail at once and say what to do.

The datasets are asked, not second-guessed: each one is built through
MMSegmentation's registry without loading anything (``lazy_init=True``) and
lists its own files with its own suffixes, split file and label conventions
(``reduce_zero_label``, ``ignore_index``, classes), so every dataset that
MMSegmentation accepts passes, including registered classes that set their
suffixes in ``__init__``.
"""
import copy
import os.path as osp
from typing import Iterator, List, Optional, Sequence

import cv2
import numpy as np
from mmengine.config import Config, ConfigDict
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules

#: What to do when a known dataset's folders are missing.
_PREPARE = {
    'CityscapesDataset':
    ('leftImg8bit/{train,val}/<city>/*_leftImg8bit.png and '
     'gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png',
     'download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from '
     'the Cityscapes website, unzip them there, then run\n'
     '    python tools/dataset_converters/cityscapes.py {root} --nproc 8\n'
     'to write the *_labelTrainIds.png maps (or run `make demo` to see the '
     'layout on generated data)'),
    'ADE20KDataset':
    ('images/{training,validation}/*.jpg and '
     'annotations/{training,validation}/*.png',
     'download ADEChallengeData2016.zip (the SceneParsing benchmark) and '
     'unzip it so that {root} is the ADEChallengeData2016 folder'),
}
_PREPARE_OTHER = (
    'an image folder and a label-map folder (data_prefix img_path and '
    'seg_map_path)',
    'put the images and label maps there, or set data_root / data_prefix '
    'to where they are (see "Your own dataset" in the README)')
#: Label maps read to check their ids: enough to catch a wrong conversion
#: (e.g. Cityscapes labelIds instead of trainIds) without reading them all.
LABELS_SAMPLED = 16


def _datasets(cfg: Optional[ConfigDict]) -> Iterator[ConfigDict]:
    """The leaf dataset configs of a (possibly wrapped) dataset config."""
    if cfg is None:
        return
    if 'datasets' in cfg:
        for sub in cfg.datasets:
            yield from _datasets(sub)
    elif 'dataset' in cfg:
        yield from _datasets(cfg.dataset)
    else:
        yield cfg


def _build_lazily(ds_cfg: ConfigDict):
    """The dataset object, without its file list loaded or its pipeline."""
    register_all_modules(init_default_scope=False)
    cfg = copy.deepcopy(ds_cfg)
    cfg.update(lazy_init=True, pipeline=[])
    return DATASETS.build(cfg)


def _head_num_classes(cfg: Config) -> List[tuple]:
    """``(config key, num_classes)`` of every head of the model."""
    model = cfg.get('model', {}) or {}
    model = model.get('module', model)  # a TTA wrapper
    found = []
    for key in ('decode_head', 'auxiliary_head'):
        heads = model.get(key) or []
        many = isinstance(heads, (list, tuple))
        for i, head in enumerate(heads if many else [heads]):
            if head and head.get('num_classes') is not None:
                name = f'model.{key}' + (f'[{i}]' if many else '')
                found.append((name, head['num_classes']))
    return found


def _folder_problem(phase: str, ds_cfg: ConfigDict) -> Optional[str]:
    """A message if a folder the dataset reads from does not exist."""
    root = ds_cfg.get('data_root', '') or ''
    prefix = ds_cfg.get('data_prefix', {}) or {}
    kind = ds_cfg.get('type', 'The dataset')
    layout, how = _PREPARE.get(kind, _PREPARE_OTHER)
    for key in ('img_path', 'seg_map_path'):
        folder = osp.join(root, prefix.get(key, ''))
        if not osp.isdir(folder):
            return (f'{phase} data: folder {folder!r} does not exist. {kind} '
                    f'expects under {root!r}: {layout}. To prepare it, '
                    + how.format(root=root) + '.')
    return None


def _valid_label_ids(dataset) -> set:
    """Raw values a label map of ``dataset`` may hold."""
    if dataset.label_map:
        valid = set(dataset.label_map)
    else:
        num = len(dataset.metainfo['classes'])
        # reduce_zero_label maps raw 0 to ignore and 1..C to 0..C-1.
        valid = set(range(num + 1 if dataset.reduce_zero_label else num))
    valid.add(dataset.ignore_index)
    return valid


def _label_problems(phase: str, dataset, data_list: Sequence[dict]
                    ) -> List[str]:
    """Missing images or label maps, and label ids that are not classes."""
    kind = type(dataset).__name__
    missing = [d['img_path'] for d in data_list
               if not osp.isfile(d['img_path'])]
    if missing:
        return [f'{phase} data: {len(missing)} of {len(data_list)} images '
                f'listed by {dataset.ann_file!r} do not exist, e.g. '
                f'{missing[0]!r}.']
    pairs = [(d['img_path'], d['seg_map_path']) for d in data_list
             if d.get('seg_map_path')]
    missing = [(img, lbl) for img, lbl in pairs if not osp.isfile(lbl)]
    if missing:
        return [f'{phase} data: {len(missing)} of {len(pairs)} images '
                f'have no label map, e.g. {missing[0][0]!r} needs '
                f'{missing[0][1]!r} ({kind}: seg_map_suffix '
                f'{dataset.seg_map_suffix!r}). Prepare the labels (see above) '
                'or remove those images.']
    valid = _valid_label_ids(dataset)
    num = len(dataset.metainfo['classes'])
    step = max(len(pairs) // LABELS_SAMPLED, 1)
    for _, path in pairs[::step][:LABELS_SAMPLED]:
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if label is None:
            return [f'{phase} data: label map {path!r} cannot be read.']
        bad = sorted(set(np.unique(label).tolist()) - valid)
        if bad:
            convention = ('raw ids 1..{0} for the classes and 0 for "other" '
                          '(reduce_zero_label=True)'.format(num)
                          if dataset.reduce_zero_label else
                          f'class indices 0..{num - 1}')
            hint = ('for Cityscapes: *_labelTrainIds.png from '
                    'tools/dataset_converters/cityscapes.py, not the '
                    'labelIds; ' if kind == 'CityscapesDataset' else '')
            return [f'{phase} data: label map {path!r} has ids {bad[:10]} '
                    f'outside the {num} classes (and ignore index '
                    f'{dataset.ignore_index}). {kind} expects {convention}; '
                    f'{hint}fix the labels, or the classes / '
                    'reduce_zero_label of the dataset.']
    return []


def _dataset_problems(phase: str, ds_cfg: ConfigDict, heads: List[tuple]
                      ) -> List[str]:
    folder = _folder_problem(phase, ds_cfg)
    if folder:
        return [folder]
    kind = ds_cfg.get('type', 'The dataset')
    try:
        dataset = _build_lazily(ds_cfg)
        data_list = dataset.load_data_list()
    except (FileNotFoundError, OSError) as err:
        return [f'{phase} data: {kind} cannot list its files: {err}']
    classes = tuple(dataset.metainfo.get('classes') or ())
    problems = [
        f'{name}.num_classes is {num}, but the {phase} dataset ({kind}) has '
        f'{len(classes)} classes {classes[:8]}{" ..." if len(classes) > 8 else ""}. '
        f'Set num_classes={len(classes)} in every head of the config (e.g. '
        f'--cfg-options {name}.num_classes={len(classes)}), or give the '
        'dataset the classes the model is meant to predict (metainfo).'
        for name, num in heads if classes and num != len(classes)
    ]
    if not data_list:
        img_dir = dataset.data_prefix.get('img_path', '')
        layout = _PREPARE.get(kind, _PREPARE_OTHER)[0]
        return problems + [
            f'{phase} data: folder {img_dir!r} has no '
            f'*{dataset.img_suffix} images. {kind} expects under '
            f'{dataset.data_root!r}: {layout}.']
    return problems + _label_problems(phase, dataset, data_list)


def dataset_problems(cfg: Config, phases=('train', 'val', 'test')) -> List[str]:
    """Messages for every dataset folder a run would read and cannot, for
    label maps that are missing or hold ids that are not classes, and for
    heads whose ``num_classes`` is not the dataset's number of classes."""
    heads = _head_num_classes(cfg)
    problems, checked = [], []
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        for ds_cfg in _datasets(loader.get('dataset')):
            # val and test often read the same dataset: list and check it
            # once, and say its problems once.
            if ds_cfg in checked:
                continue
            checked.append(ds_cfg)
            problems += _dataset_problems(phase, ds_cfg, heads)
    return list(dict.fromkeys(problems))


def pretrained_problems(cfg: Config) -> List[str]:
    """A message when the backbone's pretrained file is missing."""
    backbone = cfg.get('model', {}).get('backbone', {}) or {}
    init = backbone.get('init_cfg') or {}
    if not isinstance(init, dict) or init.get('type') != 'Pretrained':
        return []
    path = init.get('checkpoint', '')
    if '://' in path or osp.isfile(path):
        return []
    arch = backbone.get('arch', 'B256')
    if isinstance(arch, str):
        where = (f'Download the released ImageNet checkpoint '
                 f'RepMLPNet-{arch}-train-*.pth (official RepMLPNet release) '
                 'and convert it:\n'
                 f'    python tools/convert_official.py '
                 f'RepMLPNet-{arch}-train-*.pth {path}\n')
    else:
        where = ('The backbone has a custom arch, for which no released '
                 'checkpoint exists: point init_cfg.checkpoint at weights '
                 'of this arch that you trained or converted,\n')
    return [f'Pretrained backbone weights not found: {path!r}. {where}'
            'or train from scratch with '
            '--cfg-options model.backbone.init_cfg=None']


class InputError(ValueError):
    """The inputs of a run are missing or inconsistent; the message lists
    every problem and what to do about it."""


def check_inputs(cfg: Config, phases=('train', 'val', 'test'),
                 need_pretrained: bool = True) -> None:
    """Raise :class:`InputError` listing every problem with a run's inputs."""
    problems = dataset_problems(cfg, phases)
    if need_pretrained and not cfg.get('load_from') and not cfg.get('resume'):
        problems = pretrained_problems(cfg) + problems
    if problems:
        raise InputError('\n\n'.join(problems))
