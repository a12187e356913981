"""Checks run before a training or test run builds anything expensive.

MMEngine would otherwise build the whole model and data pipeline, and then
fail deep inside with a bare ``FileNotFoundError`` (or, for pretrained
weights, only warn). These checks fail at once and say what to do.
"""
import os
import os.path as osp
from typing import Iterator, List

from mmengine.config import Config, ConfigDict

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


#: (image suffix, label suffix) of the datasets whose layout is known.
_SUFFIXES = {
    'CityscapesDataset': ('_leftImg8bit.png', '_gtFine_labelTrainIds.png'),
    'ADE20KDataset': ('.jpg', '.png'),
}
#: Label maps read to check their ids: enough to catch a wrong conversion
#: (e.g. Cityscapes labelIds instead of trainIds) without reading them all.
LABELS_SAMPLED = 16


def _images(folder: str, suffix: str) -> List[str]:
    found = []
    for parent, _, files in os.walk(folder):
        found += [osp.relpath(osp.join(parent, name), folder)
                  for name in files if name.endswith(suffix)]
    return sorted(found)


def _label_problems(phase: str, ds: ConfigDict, images: List[str],
                    img_dir: str, label_dir: str, img_suffix: str,
                    label_suffix: str, num_classes: int) -> List[str]:
    """Missing label maps, and label ids that are not classes."""
    import cv2
    import numpy as np
    labels = [osp.join(label_dir, name[:-len(img_suffix)] + label_suffix)
              for name in images]
    missing = [(img, lbl) for img, lbl in zip(images, labels)
               if not osp.isfile(lbl)]
    if missing:
        return [f'{phase} data: {len(missing)} of {len(images)} images in '
                f'{img_dir!r} have no label map, e.g. {missing[0][0]!r} needs '
                f'{missing[0][1]!r}. Prepare the labels (see above) or remove '
                'those images.']
    ignore = ds.get('ignore_index', 255)
    # reduce_zero_label maps raw 0 to ignore and 1..C to 0..C-1.
    reduce = ds.get('reduce_zero_label', False)
    valid = set(range(0, num_classes + 1 if reduce else num_classes))
    valid.add(ignore)
    step = max(len(labels) // LABELS_SAMPLED, 1)
    for path in labels[::step][:LABELS_SAMPLED]:
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if label is None:
            return [f'{phase} data: label map {path!r} cannot be read.']
        bad = sorted(set(np.unique(label).tolist()) - valid)
        if bad:
            return [f'{phase} data: label map {path!r} has ids {bad[:10]} '
                    f'outside the {num_classes} classes (and ignore index '
                    f'{ignore}). The label maps must hold class indices '
                    + ('(for Cityscapes: *_labelTrainIds.png from '
                       'tools/dataset_converters/cityscapes.py, not the '
                       'labelIds); ' if ds.get('type') == 'CityscapesDataset'
                       else '; ') + 'fix the labels or the num_classes.']
    return []


def _datasets(cfg: ConfigDict) -> Iterator[ConfigDict]:
    if cfg is None:
        return
    if 'datasets' in cfg:
        for sub in cfg.datasets:
            yield from _datasets(sub)
    elif 'dataset' in cfg:
        yield from _datasets(cfg.dataset)
    else:
        yield cfg


def dataset_problems(cfg: Config, phases=('train', 'val', 'test')) -> List[str]:
    """Messages for every dataset folder a run would read and cannot, and
    for label maps that are missing or hold ids that are not classes."""
    problems = []
    num_classes = cfg.get('model', {}).get('decode_head', {}).get(
        'num_classes')
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        for ds in _datasets(loader.get('dataset')):
            root = ds.get('data_root', '') or ''
            prefix = ds.get('data_prefix', {}) or {}
            layout, how = _PREPARE.get(
                ds.get('type', ''),
                ('the layout its dataset class expects', 'prepare it'))
            for key in ('img_path', 'seg_map_path'):
                folder = osp.join(root, prefix.get(key, ''))
                if not osp.isdir(folder):
                    problems.append(
                        f'{phase} data: folder {folder!r} does not exist. '
                        f'{ds.get("type", "The dataset")} expects under '
                        f'{root!r}: {layout}. To prepare it, '
                        + how.format(root=root) + '.')
                    break
            else:
                img_suffix, label_suffix = _SUFFIXES.get(
                    ds.get('type', ''), ('.jpg', '.png'))
                img_suffix = ds.get('img_suffix', img_suffix)
                label_suffix = ds.get('seg_map_suffix', label_suffix)
                img_dir = osp.join(root, prefix.get('img_path', ''))
                images = _images(img_dir, img_suffix)
                if not images:
                    problems.append(
                        f'{phase} data: folder {img_dir!r} has no '
                        f'*{img_suffix} images. '
                        f'{ds.get("type", "The dataset")} expects under '
                        f'{root!r}: {layout}.')
                    continue
                if num_classes:
                    problems += _label_problems(
                        phase, ds, images, img_dir,
                        osp.join(root, prefix.get('seg_map_path', '')),
                        img_suffix, label_suffix, num_classes)
                ann = ds.get('ann_file', '')
                if ann and not osp.isfile(osp.join(root, ann)):
                    problems.append(f'{phase} data: split file '
                                    f'{osp.join(root, ann)!r} does not exist.')
    # The same folder is often listed by val and test: say it once.
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
    arch = arch if isinstance(arch, str) else 'custom'
    return [
        f'Pretrained backbone weights not found: {path!r}. Download the '
        f'released ImageNet checkpoint RepMLPNet-{arch}-train-*.pth (official '
        'RepMLPNet release) and convert it:\n'
        f'    python tools/convert_official.py RepMLPNet-{arch}-train-*.pth '
        f'{path}\n'
        'or train from scratch with '
        '--cfg-options model.backbone.init_cfg=None'
    ]


def check_inputs(cfg: Config, phases=('train', 'val', 'test'),
                 need_pretrained: bool = True) -> None:
    """Raise ``FileNotFoundError`` listing every missing input of a run."""
    problems = dataset_problems(cfg, phases)
    if need_pretrained and not cfg.get('load_from') and not cfg.get('resume'):
        problems = pretrained_problems(cfg) + problems
    if problems:
        raise FileNotFoundError('\n\n'.join(problems))
