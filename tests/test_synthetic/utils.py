"""File names of the small synthetic Cityscapes shared by the tests of the
generator and of the converter."""
from pathlib import Path

from mmseg_repmlp.dataset_converters import convert_cityscapes
from mmseg_repmlp.synthetic import generate_synthetic_cityscapes

SMALL = dict(num_train=4, num_val=2, height=128, width=256, seed=0)
STEMS = {
    'train': [
        'aachen/aachen_000000_000019', 'aachen/aachen_000001_000019',
        'bremen/bremen_000000_000019', 'bremen/bremen_000001_000019'
    ],
    'val': [
        'frankfurt/frankfurt_000000_000019',
        'frankfurt/frankfurt_000001_000019'
    ],
}
ALL = [(split, stem) for split, stems in STEMS.items() for stem in stems]


def img_path(root, split, stem):
    return Path(root, 'leftImg8bit', split, f'{stem}_leftImg8bit.png')


def ann_path(root, split, stem, suffix='polygons.json'):
    return Path(root, 'gtFine', split, f'{stem}_gtFine_{suffix}')


def label_path(root, split, stem):
    return ann_path(root, split, stem, 'labelTrainIds.png')


def files_under(root):
    return sorted(
        str(p.relative_to(root)) for p in Path(root).rglob('*') if p.is_file())


def small_converted_cityscapes(root):
    """Generates the small dataset into ``root`` and converts it; returns
    ``(root, generator summary, converter summary)``."""
    gen_summary = generate_synthetic_cityscapes(str(root), **SMALL)
    prep_summary = convert_cityscapes(str(root))
    return root, gen_summary, prep_summary
