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


_IMG_SUFFIX = {'CityscapesDataset': '_leftImg8bit.png', 'ADE20KDataset': '.jpg'}


def _has_file(folder: str, suffix: str) -> bool:
    for _, _, files in os.walk(folder):
        if any(name.endswith(suffix) for name in files):
            return True
    return False


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
    """Messages for every dataset folder a run would read and cannot."""
    problems = []
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
                suffix = ds.get('img_suffix') or _IMG_SUFFIX.get(
                    ds.get('type', ''), '.jpg')
                images = osp.join(root, prefix.get('img_path', ''))
                if not _has_file(images, suffix):
                    problems.append(
                        f'{phase} data: folder {images!r} has no '
                        f'*{suffix} images. {ds.get("type", "The dataset")} '
                        f'expects under {root!r}: {layout}.')
                    continue
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
