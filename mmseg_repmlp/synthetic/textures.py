"""Per-class textures of the synthetic scenes.

Classes get a characteristic colour plus per-object jitter and
perspective-correct textures (windows, lane marks, paving), so that a model
has to use texture and context, not a colour lookup. Each texture function
paints the bounding box of one object; the renderer keeps the pixels the
object owns.
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

import numpy as np
from PIL import Image

from .camera import Camera
from .objects import SceneObject

__all__ = ['NoiseFields', 'TEXTURES']

#: Row and column slices of an object's bounding box.
Box = Tuple[slice, slice]


class NoiseFields:
    """Per-image noise fields shared by all texture functions.

    Attributes:
        cam: The scene's camera.
        fine: Per-pixel white noise.
        mid: Smooth noise with features of about 6 pixels.
        low: Smooth noise with features of about 24 pixels.
    """

    def __init__(self, rng: np.random.Generator, cam: Camera):
        h, w = cam.height, cam.width
        self.rng = rng
        self.cam = cam
        self.fine = rng.standard_normal((h, w), dtype=np.float32)
        self.mid = self._smooth(rng, h, w, 6)
        self.low = self._smooth(rng, h, w, 24)

    @staticmethod
    def _smooth(rng: np.random.Generator, h: int, w: int,
                cell: int) -> np.ndarray:
        """Unit-variance noise, bilinearly upsampled from ``cell``-pixel
        cells."""
        small = rng.standard_normal((h // cell + 2, w // cell + 2),
                                    dtype=np.float32)
        img = Image.fromarray(small).resize((w, h), Image.BILINEAR)
        field_ = np.asarray(img, dtype=np.float32)
        return field_ / max(float(field_.std()), 1e-6)


#: ``texture(noise, obj, ys, xs, box) -> (h, w, 3) float RGB`` of the box,
#: given the row and column coordinates ``ys``, ``xs`` of its pixels.
Texture = Callable[[NoiseFields, SceneObject, np.ndarray, np.ndarray, Box],
                   np.ndarray]


def _frac(v: np.ndarray) -> np.ndarray:
    return v - np.floor(v)


def _speckled(ctx: NoiseFields, colour: np.ndarray, sl: Box, mid: float,
              fine: float) -> np.ndarray:
    """``colour`` varied by the mid and fine noise with these strengths."""
    return colour * (1 + mid * ctx.mid[sl] + fine * ctx.fine[sl])[..., None]


def _tex_sky(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
             xs: np.ndarray, sl: Box) -> np.ndarray:
    top = np.array((92, 140, 206) if not obj.params['overcast'] else
                   (176, 184, 196), np.float32)
    low = np.array((186, 206, 226) if not obj.params['overcast'] else
                   (214, 216, 220), np.float32)
    t = np.clip(ys / max(ctx.cam.horizon, 1.0), 0, 1)[..., None]
    rgb = top * (1 - t) + low * t
    cloud = np.clip(ctx.low[sl] * 0.6 + ctx.mid[sl] * 0.25 - 0.3, 0, 1)
    return rgb + (cloud[..., None] * (235 - rgb))


def _facade_windows(cam: Camera, p: dict, ys: np.ndarray,
                    xs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Window mask and weathering factor of a facade along the street.

    Recovers (depth, height) on the facade plane for each pixel, so windows
    follow the perspective: columns are equally spaced in depth and rows in
    height.
    """
    d = cam.centre_bottom - cam.vp_x + p['lateral'] * cam.ppm_bottom
    s = np.maximum((xs - cam.vp_x) / d, 1e-3)
    base = cam.horizon + s * (cam.height - cam.horizon)
    up = (base - ys) / (cam.ppm_bottom * s)  # metres above ground
    depth = cam.z_bottom / s
    storey = up / p['storey']
    win = ((_frac(depth / p['bay']) < p['window_frac'][0]) &
           (_frac(storey) > 0.3) & (_frac(storey) < 0.3 +
                                     p['window_frac'][1]) &
           (storey > 1.0) & (up < p['height_m'] - 0.5))
    # Ground floor: dark shop windows / doors.
    shop = (storey < 0.85) & (up > 0.3) & (_frac(depth / (p['bay'] * 2))
                                          < 0.6)
    win |= shop
    # Vertical weathering streaks make facades less uniform.
    weathering = 1 - p['streak'] / 100 * (_frac(depth / 1.7) < 0.2)
    return win, weathering


def _tex_building(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
                  xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    rgb = np.broadcast_to(p['colour'], ys.shape + (3, )).copy()
    rgb *= (1 + 0.06 * ctx.mid[sl] + 0.04 * ctx.fine[sl])[..., None]
    if p['frontal']:
        # Far-away block: a small regular grid of windows.
        u, v = xs / 3.0, ys / 3.0
        win = (_frac(u) < 0.5) & (_frac(v) < 0.5)
    else:
        win, weathering = _facade_windows(ctx.cam, p, ys, xs)
        rgb *= weathering[..., None]
    glass = p['window'] * (1 + 0.25 * ctx.low[sl])[..., None]
    return np.where(win[..., None], glass, rgb)


def _ground_coords(ctx: NoiseFields, ys: np.ndarray,
                   xs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(lateral offset, depth) in metres of ground pixels."""
    cam = ctx.cam
    s = cam.s_of_row(ys)
    return cam.lateral_of(xs, s), cam.z_bottom / s


def _tex_road(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
              xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    lat, depth = _ground_coords(ctx, ys, xs)
    rgb = _speckled(ctx, p['colour'], sl, 0.05, 0.07)
    # Tyre tracks: slightly darker bands in each lane.
    track = np.abs(_frac((lat - p['lane']) / (p['half_road'] / 2) + 0.5) -
                   0.5) < 0.12
    rgb = rgb * np.where(track, 0.92, 1.0)[..., None]
    mark = ((np.abs(lat - p['lane']) < 0.08) &
            (_frac((depth + p['dash_phase']) / 9.0) < 0.35))
    if p['edge_lines']:
        mark |= np.abs(np.abs(lat) - (p['half_road'] - 0.35)) < 0.08
    if p['crossing'] is not None:
        mark |= ((depth > p['crossing']) & (depth < p['crossing'] + 3.5) &
                 (_frac(lat / 1.0) < 0.5))
    paint = np.float32(212) + 10 * ctx.fine[sl][..., None]
    return np.where(mark[..., None], paint, rgb)


def _tex_sidewalk(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
                  xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    lat, depth = _ground_coords(ctx, ys, xs)
    rgb = _speckled(ctx, p['colour'], sl, 0.04, 0.06)
    grout = ((_frac(depth / p['tile']) < 0.1) |
             (_frac(lat / p['tile']) < 0.1))
    rgb = rgb * np.where(grout, 0.8, 1.0)[..., None]
    curb = np.abs(lat - p['curb']) < 0.25
    return np.where(curb[..., None], rgb * 1.15 + 10, rgb)


def _tex_terrain(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
                 xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    speck = ctx.fine[sl] * 0.12 + ctx.mid[sl] * 0.08
    rgb = p['colour'] * (1 + speck)[..., None]
    dry = np.clip(ctx.low[sl], 0, 1)[..., None]  # patches of dry grass
    return rgb + dry * np.array((18, 6, -8), np.float32)


def _tex_vegetation(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
                    xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    # Leafy texture: strong mid-frequency blobs with dark gaps.
    leaf = ctx.mid[sl] * 0.22 * p['blob'] + ctx.fine[sl] * 0.1
    rgb = p['colour'] * (1 + leaf)[..., None]
    gaps = (ctx.mid[sl] + 0.5 * ctx.fine[sl]) < -1.1
    return np.where(gaps[..., None], rgb * 0.55, rgb)


def _tex_trunk(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
               xs: np.ndarray, sl: Box) -> np.ndarray:
    return obj.params['colour'] * (1 + 0.08 * ctx.fine[sl])[..., None]


def _tex_pole(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
              xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    # Cylinder shading across the width.
    t = np.clip((xs - p['x']) / (p['half'] + 0.5), -1, 1)
    shade = 1.15 - 0.35 * t**2 - 0.1 * t
    return p['colour'] * shade[..., None]


def _tex_sign(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
              xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    cx, cy = p['centre']
    # The face is the inner part of the sign, away from its outline.
    r = np.maximum(np.abs(xs - cx), np.abs(ys - cy)) / max(p['size'], 1.0)
    inner = r < 0.3
    return np.where(inner[..., None], p['face'], p['rim']) * (
        1 + 0.04 * ctx.fine[sl])[..., None]


def _tex_person(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
                xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    v = (p['feet'] - ys) / max(p['size'], 1.0)
    rgb = np.where((v < 0.46)[..., None], p['legs'], p['top'])
    rgb = np.where((v > 0.84)[..., None], p['skin'], rgb)
    hair = v > 0.95
    rgb = np.where(hair[..., None], np.float32(40), rgb)
    return rgb * (1 + 0.05 * ctx.fine[sl])[..., None]


def _tex_car(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
             xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    x_l, x_r, y_b, h = p['near']
    v = (y_b - ys) / max(h, 1.0)  # 0 at the bumper bottom, 1 at the roof
    u = (xs - x_l) / max(x_r - x_l, 1.0)
    body = p['colour'] * (1 + 0.15 * np.clip(v, 0, 1) +
                          0.03 * ctx.fine[sl])[..., None]
    glass = np.float32((46, 54, 64)) + 30 * np.clip(v - p['body'], 0,
                                                    1)[..., None]
    cabin = (v > p['body'] + 0.06) & (v < 0.94)  # roof stays body colour
    rgb = np.where(cabin[..., None], glass, body * np.where(
        v >= 0.94, 0.85, 1.0)[..., None])
    dark = v < 0.12
    rgb = np.where(dark[..., None], np.float32(24), rgb)
    lights = ((v > p['body'] - 0.3) & (v < p['body'] - 0.12) &
              ((np.abs(u - 0.08) < 0.07) | (np.abs(u - 0.92) < 0.07)))
    return np.where(lights[..., None], np.float32((190, 30, 30)), rgb)


def _tex_ego(ctx: NoiseFields, obj: SceneObject, ys: np.ndarray,
             xs: np.ndarray, sl: Box) -> np.ndarray:
    p = obj.params
    t = (ctx.cam.height - ys) / max(p['rise'], 1.0)
    return p['colour'] * (1 + 0.6 * np.clip(t, 0, 1))[..., None]


#: Texture of each :attr:`.objects.SceneObject.kind`.
TEXTURES: Dict[str, Texture] = {
    'sky': _tex_sky, 'building': _tex_building, 'road': _tex_road,
    'sidewalk': _tex_sidewalk, 'terrain': _tex_terrain,
    'vegetation': _tex_vegetation, 'trunk': _tex_trunk, 'pole': _tex_pole,
    'sign': _tex_sign, 'person': _tex_person, 'car': _tex_car,
    'ego': _tex_ego
}
