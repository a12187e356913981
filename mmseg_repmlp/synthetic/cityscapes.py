"""Synthetic street scenes written in the real Cityscapes layout.

The demo of this project must run end to end without the real Cityscapes
download (about 11 GB behind a registration wall). This writer stores the
procedural scenes exactly as Cityscapes ships them::

    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_polygons.json

Only the polygon annotations are written, not label images: the preparation
step (:func:`mmseg_repmlp.dataset_converters.convert_cityscapes`, which uses
the official ``cityscapesscripts`` rasteriser) then produces the
``*_gtFine_labelTrainIds.png`` files, exactly as it does for real Cityscapes.
So the demo exercises the same code path a real user runs.

Only numpy and Pillow are used so that importing this module stays cheap
(no torch, no mmseg).
"""
from __future__ import annotations

import functools
import json
import os
from typing import Callable, Dict, Optional, Tuple

import numpy as np
from PIL import Image

from .sample import Sample
from .writer import DatasetLayout, GenerationArguments, write_dataset

__all__ = [
    'generate_synthetic_cityscapes', 'LABEL_TRAIN_IDS', 'MARKER_FILE',
    'PARTIAL_MARKER_FILE'
]

#: Written into ``root`` once a generation has completed; its presence is the
#: only thing that allows this writer to delete or overwrite files in ``root``.
MARKER_FILE = '.synthetic_cityscapes'

#: Real Cityscapes city names. Train and val cities are disjoint, as in the
#: real dataset (frankfurt belongs to the official val split).
TRAIN_CITIES = ('aachen', 'bremen')
VAL_CITIES = ('frankfurt', )
#: Fine annotations in Cityscapes are on frame 19 of each 30-frame snippet.
FRAME_ID = 19

#: Cityscapes label names drawn by the generator and their trainIds, copied
#: from ``cityscapesscripts.helpers.labels`` (a test checks they agree), so
#: that this module does not need the toolkit at import time.
LABEL_TRAIN_IDS: Dict[str, int] = {
    'road': 0,
    'sidewalk': 1,
    'building': 2,
    'pole': 5,
    'traffic sign': 7,
    'vegetation': 8,
    'terrain': 9,
    'sky': 10,
    'person': 11,
    'car': 13,
    # Not a training class (trainId 255 = ignore), as in real Cityscapes.
    'ego vehicle': 255,
}
IGNORE_INDEX = 255


def generate_synthetic_cityscapes(root: str,
                                  num_train: int = 40,
                                  num_val: int = 10,
                                  height: int = 256,
                                  width: int = 512,
                                  seed: int = 0,
                                  overwrite: bool = False,
                                  progress: Optional[Callable[[], None]] = None
                                  ) -> dict:
    """Writes a small procedural street-scene dataset in Cityscapes layout.

    The output is deterministic: the same arguments give byte-identical
    files. Image ``i`` of a split depends only on ``(seed, split, i)``, so
    asking for more images keeps the first ones unchanged.

    Run :func:`mmseg_repmlp.dataset_converters.convert_cityscapes` (or
    ``tools/dataset_converters/cityscapes.py``) afterwards to create the
    ``*_gtFine_labelTrainIds.png`` files and the split lists, exactly as for
    the real dataset.

    Args:
        root: Dataset folder. It must not exist, be empty, or hold an earlier
            synthetic generation (recognised by the ``.synthetic_cityscapes``
            marker file). Nothing is written outside it.
        num_train: Number of training images (cities aachen and bremen).
        num_val: Number of validation images (city frankfurt).
        height: Image height in pixels.
        width: Image width in pixels.
        seed: Non-negative random seed.
        overwrite: Regenerate a previous synthetic dataset in ``root``.
            Without it an existing generation is kept and its summary
            returned.
        progress: Called after each image written, e.g. a progress bar's
            ``update`` (generating takes a while on a slow machine).

    Returns:
        A summary dict with ``root``, ``generated`` (False when an existing
        generation was reused), ``seed``, ``height``, ``width``, per split
        ``splits[split]`` = ``{'num_images', 'cities', 'img_dir', 'ann_dir',
        'images'}``, ``classes`` (label names present, by trainId),
        ``class_train_ids`` and ``class_pixel_fraction`` (share of all
        pixels per class; ``'ignore'`` for trainId 255).

    Raises:
        FileExistsError: If ``root`` is a file, or a non-empty folder that was
            not created by this function.
        ValueError: For invalid sizes, counts or seed.
    """
    return write_dataset(
        root, _LAYOUT,
        GenerationArguments(num_train=num_train, num_val=num_val,
                            height=height, width=width, seed=seed),
        overwrite, progress)


@functools.lru_cache(maxsize=4)
def _split_plan(split: str, num: int) -> Tuple[Tuple[str, str], ...]:
    """(city, stem) pairs, cities in contiguous blocks as in Cityscapes."""
    cities = TRAIN_CITIES if split == 'train' else VAL_CITIES
    plan, seq = [], {c: 0 for c in cities}
    for i in range(num):
        city = cities[i * len(cities) // num]
        plan.append((city, f'{city}_{seq[city]:06d}_{FRAME_ID:06d}'))
        seq[city] += 1
    return tuple(plan)


def _write_sample(root: str, args: GenerationArguments, split: str, i: int,
                  sample: Sample, label: np.ndarray) -> None:
    """Writes image ``i`` of a split and its polygon annotation.

    No label image is written: the converter makes it from the polygons.
    """
    city, stem = _split_plan(split, getattr(args, f'num_{split}'))[i]
    img_dir = os.path.join(root, 'leftImg8bit', split, city)
    ann_dir = os.path.join(root, 'gtFine', split, city)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    Image.fromarray(sample.image, 'RGB').save(
        os.path.join(img_dir, f'{stem}_leftImg8bit.png'))
    annotation = dict(imgHeight=args.height, imgWidth=args.width, objects=[
        dict(label=obj.label, polygon=poly)
        for obj, poly in zip(sample.objects, sample.polygons)
    ])
    with open(os.path.join(ann_dir, f'{stem}_gtFine_polygons.json'), 'w',
              encoding='utf-8') as f:
        json.dump(annotation, f, indent=4)
        f.write('\n')


def _split_summary(args: GenerationArguments,
                   split: str) -> Tuple[str, dict]:
    plan = _split_plan(split, getattr(args, f'num_{split}'))
    cities: Dict[str, int] = {}
    for city, _ in plan:
        cities[city] = cities.get(city, 0) + 1
    return split, dict(num_images=len(plan), cities=cities,
                       img_dir=f'leftImg8bit/{split}',
                       ann_dir=f'gtFine/{split}',
                       images=[f'{city}/{stem}' for city, stem in plan])


_LAYOUT = DatasetLayout(
    dataset='Cityscapes',
    writer='generate_synthetic_cityscapes',
    marker=MARKER_FILE,
    dirs=('leftImg8bit', 'gtFine'),
    files=('train.txt', 'val.txt', 'test.txt'),
    label_ids=LABEL_TRAIN_IDS,
    class_names={tid: name for name, tid in LABEL_TRAIN_IDS.items()},
    void_id=IGNORE_INDEX,
    void_name='ignore',
    ids_key='class_train_ids',
    format_version=1,
    write_sample=_write_sample,
    split_summary=_split_summary)
#: Marks an interrupted generation, which is redone instead of refused.
PARTIAL_MARKER_FILE = _LAYOUT.partial_marker
