"""Synthetic street scenes written in the ADE20K (ADEChallengeData2016) layout.

The same scenes as :mod:`.cityscapes` (the same seed gives the same scenes),
stored as the ADE20K scene-parsing benchmark ships::

    <root>/images/training/ADE_train_00000001.jpg            (RGB JPEG)
    <root>/annotations/training/ADE_train_00000001.png       (8-bit, 1 channel)
    <root>/images/validation/ADE_val_00000001.jpg
    <root>/annotations/validation/ADE_val_00000001.png

Annotations hold raw ADE20K ids: 0 is "other" and class ``i`` of
MMSegmentation's ``ADE20KDataset.METAINFO['classes']`` is ``i + 1``, so that
``ADE20KDataset`` (``reduce_zero_label=True``) reads them as it reads the real
dataset. Labels come from the same rasterisation the image is rendered from;
only the image is JPEG-compressed, the labels are exact.

Only numpy and Pillow are used so that importing this module stays cheap
(no torch, no mmseg).
"""
from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np
from PIL import Image

from .sample import Sample
from .writer import DatasetLayout, GenerationArguments, write_dataset

__all__ = ['generate_synthetic_ade20k', 'LABEL_ADE20K', 'MARKER_FILE']

#: Written into ``root`` once a generation has completed; its presence is the
#: only thing that allows this writer to delete or overwrite files in ``root``.
MARKER_FILE = '.synthetic_ade20k'
JPEG_QUALITY = 95

#: Raw ADE20K id of pixels that belong to none of the 150 classes.
OTHER_ID = 0
#: ADE20K class ``(name, raw id)`` of each scene label; the raw id is one
#: more than the name's index in ``ADE20KDataset.METAINFO['classes']`` of
#: mmseg 1.2.2 (a test checks they agree), so that this module does not
#: import mmseg.
LABEL_ADE20K: Dict[str, Tuple[str, int]] = {
    'road': ('road', 7),
    'sidewalk': ('sidewalk', 12),
    'building': ('building', 2),
    'pole': ('pole', 94),
    'traffic sign': ('signboard', 44),
    'vegetation': ('tree', 5),
    'terrain': ('grass', 10),
    'sky': ('sky', 3),
    'person': ('person', 13),
    'car': ('car', 21),
    # ADE20K has no class for the recording car's bonnet.
    'ego vehicle': ('other', OTHER_ID),
}
#: ADEChallengeData2016 folder and file name prefix of each split.
_SPLIT_NAMES = {
    'train': ('training', 'ADE_train_'),
    'val': ('validation', 'ADE_val_')
}


def generate_synthetic_ade20k(root: str,
                              num_train: int = 40,
                              num_val: int = 10,
                              height: int = 256,
                              width: int = 512,
                              seed: int = 0,
                              overwrite: bool = False) -> dict:
    """Writes a small procedural street-scene dataset in ADE20K layout.

    The output is deterministic, and image ``i`` of a split shows the same
    scene as image ``i`` of :func:`.generate_synthetic_cityscapes` with the
    same seed and size (files are numbered from 1, as in ADE20K). Arguments,
    folder rules and errors are those of
    :func:`.generate_synthetic_cityscapes`; here ``root`` is recognised as an
    earlier generation by its ``.synthetic_ade20k`` marker file, and is
    ``data/ade/ADEChallengeData2016`` for MMSegmentation's ADE20K configs.

    Returns:
        A summary dict with ``root``, ``generated`` (False when an existing
        generation was reused), ``seed``, ``height``, ``width``, per split
        ``splits['training' | 'validation']`` = ``{'num_images', 'img_dir',
        'ann_dir', 'images'}``, ``classes`` (ADE20K names present, by id),
        ``class_ids`` (raw ids) and ``class_pixel_fraction`` (share of all
        pixels per class; ``'other'`` for id 0).
    """
    return write_dataset(
        root, _LAYOUT,
        GenerationArguments(num_train=num_train, num_val=num_val,
                            height=height, width=width, seed=seed),
        overwrite)


def _name(split: str, i: int) -> str:
    """File name (without extension) of image ``i``, counted from 1."""
    return f'{_SPLIT_NAMES[split][1]}{i + 1:08d}'


def _write_sample(root: str, args: GenerationArguments, split: str, i: int,
                  sample: Sample, label: np.ndarray) -> None:
    """Writes image ``i`` of a split as JPEG and its exact label as PNG."""
    folder = _SPLIT_NAMES[split][0]
    img_dir = os.path.join(root, 'images', folder)
    ann_dir = os.path.join(root, 'annotations', folder)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    Image.fromarray(sample.image, 'RGB').save(
        os.path.join(img_dir, f'{_name(split, i)}.jpg'), quality=JPEG_QUALITY)
    Image.fromarray(label, 'L').save(
        os.path.join(ann_dir, f'{_name(split, i)}.png'))


def _split_summary(args: GenerationArguments,
                   split: str) -> Tuple[str, dict]:
    folder = _SPLIT_NAMES[split][0]
    num = getattr(args, f'num_{split}')
    return folder, dict(num_images=num, img_dir=f'images/{folder}',
                        ann_dir=f'annotations/{folder}',
                        images=[_name(split, i) for i in range(num)])


_LAYOUT = DatasetLayout(
    dataset='ADE20K',
    writer='generate_synthetic_ade20k',
    marker=MARKER_FILE,
    dirs=('images', 'annotations'),
    files=(),
    label_ids={label: i for label, (_, i) in LABEL_ADE20K.items()},
    class_names={i: name for name, i in LABEL_ADE20K.values()},
    void_id=OTHER_ID,
    void_name='other',
    ids_key='class_ids',
    format_version=1,
    write_sample=_write_sample,
    split_summary=_split_summary)
