"""One generated sample: a scene's visible objects, object map and image.

Both dataset writers (:mod:`.cityscapes`, :mod:`.ade20k`) draw their images
from here, with the same random stream per image, so a seed gives the same
scenes in either layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from .geometry import clip_polygon, to_int_polygon
from .layout import layout_scene
from .objects import SceneObject
from .render import IntPolygon, rasterise, render

__all__ = ['Sample', 'make_sample', 'sample_rng']

#: Classes every image shows on at least this share of its pixels.
_REQUIRED_CLASSES = ('road', 'building', 'sky')
_MIN_FRACTION = 0.005
_MAX_TRIES = 20


@dataclass
class Sample:
    """A rendered scene with its annotation.

    Attributes:
        objects: Visible objects in draw order.
        polygons: Their integer outlines inside the image (Cityscapes
            polygons).
        index: ``(H, W)`` uint8 map: ``k`` where ``objects[k - 1]`` is on
            top, 0 where no object is.
        image: ``(H, W, 3)`` uint8 RGB image rendered from ``index``.
    """

    objects: List[SceneObject]
    polygons: List[IntPolygon]
    index: np.ndarray
    image: np.ndarray

    def label_map(self, ids: Mapping[str, int], background: int) -> np.ndarray:
        """``(H, W)`` uint8 label image with ``ids[label]`` per object and
        ``background`` where no object is."""
        lut = np.full(256, background, np.uint8)
        for k, obj in enumerate(self.objects, start=1):
            lut[k] = ids[obj.label]
        return lut[self.index]


def sample_rng(seed: int, split_index: int, i: int) -> np.random.Generator:
    """Random stream of image ``i`` of a split.

    One independent stream per image: images do not depend on how many
    others are generated.
    """
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), split_index, i]))


def make_sample(rng: np.random.Generator, height: int, width: int) -> Sample:
    """Lays out, rasterises and renders one ``height`` x ``width`` scene."""
    # Resample the (rare) layouts that hide road, buildings or sky entirely,
    # so every image shows the basic street structure.
    for _ in range(_MAX_TRIES):
        scene = layout_scene(rng, height, width)
        objects, polygons = _visible(scene.objects, width, height)
        index = rasterise(polygons, height, width)
        if _shows_street(objects, index):
            break
    image = render(rng, scene, objects, polygons, index)
    return Sample(objects, polygons, index, image)


def _visible(objects: Sequence[SceneObject], width: int, height: int
             ) -> Tuple[List[SceneObject], List[IntPolygon]]:
    """The objects whose outline keeps an area inside the image, and those
    outlines as integer polygons."""
    kept, polygons = [], []
    for obj in objects:
        poly = to_int_polygon(clip_polygon(obj.polygon, width, height))
        if len(poly) >= 3:
            kept.append(obj)
            polygons.append(poly)
    return kept, polygons


def _shows_street(objects: Sequence[SceneObject], index: np.ndarray) -> bool:
    """Whether every required class covers its minimum share of pixels."""
    counts = np.bincount(index.ravel(), minlength=len(objects) + 1)
    per_label: Dict[str, int] = {}
    for k, obj in enumerate(objects, start=1):
        per_label[obj.label] = per_label.get(obj.label, 0) + int(counts[k])
    return min(per_label.get(name, 0) for name in _REQUIRED_CLASSES) >= (
        _MIN_FRACTION * index.size)
