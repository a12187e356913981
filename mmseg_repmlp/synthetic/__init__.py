"""Procedural street scenes written in the layouts of real datasets.

``generate_synthetic_cityscapes`` writes them as Cityscapes ships
(``leftImg8bit/`` images, ``gtFine/`` polygons) and
``generate_synthetic_ade20k`` as ADEChallengeData2016 (``images/`` JPEGs,
``annotations/`` PNG label maps). Only numpy and Pillow are imported: no
torch, no mmseg.
"""
from .ade20k import generate_synthetic_ade20k
from .cityscapes import (
                         LABEL_TRAIN_IDS,
                         MARKER_FILE,
                         generate_synthetic_cityscapes,
)

__all__ = [
    'generate_synthetic_cityscapes', 'generate_synthetic_ade20k',
    'LABEL_TRAIN_IDS', 'MARKER_FILE'
]
