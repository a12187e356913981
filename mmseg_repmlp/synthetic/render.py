"""Rasterising and rendering the synthetic scenes.

The RGB image is rendered from the very same integer polygons as the labels,
rasterised the same way (PIL, drawn in order, later objects on top), so image
and labels agree pixel for pixel. On top of the per-class textures come cast
shadows, global brightness changes, blur and sensor noise.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .geometry import clip_polygon, to_int_polygon
from .layout import ImageEffects, Scene
from .objects import SceneObject
from .textures import TEXTURES, NoiseFields

__all__ = ['IntPolygon', 'rasterise', 'render']

IntPolygon = List[List[int]]


def rasterise(polygons: Sequence[IntPolygon], height: int,
              width: int) -> np.ndarray:
    """Object index per pixel (0 = none), drawn exactly like json2labelImg:
    PIL polygons filled in annotation order on an 8-bit image."""
    if len(polygons) > 255:
        raise RuntimeError('too many objects for an 8-bit index map')
    img = Image.new('L', (width, height), 0)
    draw = ImageDraw.Draw(img)
    for k, poly in enumerate(polygons, start=1):
        draw.polygon([tuple(p) for p in poly], fill=k)
    return np.asarray(img)


def render(rng: np.random.Generator, scene: Scene,
           objects: Sequence[SceneObject], polygons: Sequence[IntPolygon],
           index: np.ndarray) -> np.ndarray:
    """Renders the image of a scene as ``(H, W, 3)`` uint8 RGB.

    Args:
        rng: Random generator for the noise fields and the sensor noise.
        scene: The scene (camera and image effects).
        objects: Its visible objects, in draw order.
        polygons: Their integer outlines inside the image.
        index: ``rasterise(polygons, ...)``: which object owns each pixel.
    """
    noise = NoiseFields(rng, scene.camera)
    rgb = _paint(noise, objects, polygons, index)
    _cast_shadows(rgb, scene.effects, index)
    return _camera_response(rng, rgb, scene.effects)


def _paint(noise: NoiseFields, objects: Sequence[SceneObject],
           polygons: Sequence[IntPolygon], index: np.ndarray) -> np.ndarray:
    """Textures every object into the pixels it owns (float RGB)."""
    height, width = index.shape
    rgb = np.zeros((height, width, 3), np.float32)
    for k, (obj, poly) in enumerate(zip(objects, polygons), start=1):
        arr = np.asarray(poly)
        x0, y0 = arr.min(axis=0)
        x1, y1 = arr.max(axis=0) + 1
        sl = (slice(y0, y1), slice(x0, x1))
        mask = index[sl] == k
        if not mask.any():
            continue  # fully hidden by later objects
        ys, xs = np.meshgrid(np.arange(y0, y1, dtype=np.float32),
                             np.arange(x0, x1, dtype=np.float32),
                             indexing='ij')
        tex = TEXTURES[obj.kind](noise, obj, ys, xs, sl)
        np.copyto(rgb[sl], tex, where=mask[..., None])
    return rgb


def _cast_shadows(rgb: np.ndarray, effects: ImageEffects,
                  index: np.ndarray) -> None:
    """Darkens ``rgb`` in place under each shadow (objects only)."""
    height, width = index.shape
    for shadow in effects.shadows:
        poly = to_int_polygon(clip_polygon(shadow['polygon'], width, height))
        if len(poly) < 3:
            continue
        dark = (rasterise([poly], height, width) > 0) & (index > 0)
        rgb[dark] *= shadow['factor']


def _camera_response(rng: np.random.Generator, rgb: np.ndarray,
                     effects: ImageEffects) -> np.ndarray:
    """Exposure, white balance, lens blur and sensor noise."""
    rgb *= effects.brightness * effects.gains
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), 'RGB')
    img = img.filter(ImageFilter.GaussianBlur(effects.blur))
    out = np.asarray(img, np.float32)
    out += rng.standard_normal(out.shape, dtype=np.float32) * (
        effects.noise_sigma)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
