"""Procedural street scenes written in the real Cityscapes layout.

The demo of this project must run end to end without the real Cityscapes
download (about 11 GB behind a registration wall). This module draws a small
dataset of street-like views and stores it exactly as Cityscapes ships it::

    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_polygons.json

Only the polygon annotations are written, not label images: the preparation
step (:func:`mmseg_repmlp.datasets.convert_cityscapes`, which uses the
official ``cityscapesscripts`` rasteriser) then produces the
``*_gtFine_labelTrainIds.png`` files, exactly as it does for real Cityscapes.
So the demo exercises the same code path a real user runs.

Scenes are built in a simple pinhole-camera model of a straight street: a
road with sidewalks (and sometimes grass) converging to a vanishing point,
building facades along both sides, trees, poles with traffic signs, cars,
pedestrians, the sky and sometimes the ego vehicle's bonnet. Every object is
one Cityscapes polygon; the RGB image is rendered from the very same integer
polygons, rasterised the same way (PIL, drawn in order, later objects on top),
so image and labels agree pixel for pixel. Classes get a characteristic colour
plus per-object jitter, perspective-correct textures (windows, lane marks,
paving), cast shadows, global brightness changes and sensor noise, so that a
model has to use texture and context, not a colour lookup.

Only numpy and Pillow are used so that importing this module stays cheap
(no torch, no mmseg).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ['generate_synthetic_cityscapes', 'LABEL_TRAIN_IDS', 'MARKER_FILE']

#: Written into ``root`` once a generation has completed; its presence is the
#: only thing that allows this module to delete or overwrite files in ``root``.
MARKER_FILE = '.synthetic_cityscapes'
#: Written first and removed at the end, so an interrupted run is recognised
#: as ours (and can be redone) instead of being refused as a user's folder.
PARTIAL_MARKER_FILE = '.synthetic_cityscapes.partial'
#: Bumped whenever the output for a given seed changes.
FORMAT_VERSION = 1

#: Real Cityscapes city names. Train and val cities are disjoint, as in the
#: real dataset (frankfurt belongs to the official val split).
TRAIN_CITIES = ('aachen', 'bremen')
VAL_CITIES = ('frankfurt', )
#: Fine annotations in Cityscapes are on frame 19 of each 30-frame snippet.
FRAME_ID = 19

#: Cityscapes label names drawn by this generator and their trainIds, copied
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

Point = Tuple[float, float]
_IGNORE = 255


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------
@dataclass
class _Camera:
    """A pinhole camera looking down a straight, flat street.

    Ground points are addressed by a lateral offset ``X`` (metres, 0 = road
    centre, positive = right) and a depth scale ``s`` in (0, inf): ``s = 0`` is
    the horizon and ``s = 1`` the bottom image row. Depth in metres is
    ``z_bottom / s`` and one metre at that depth spans ``ppm_bottom * s``
    pixels. Everything is linear in ``s``, so street-parallel lines meet at the
    vanishing point ``(vp_x, horizon)``.
    """

    height: int
    width: int
    horizon: float
    vp_x: float
    #: Image x of the road centre on the bottom row.
    centre_bottom: float
    #: Pixels per metre on the bottom row.
    ppm_bottom: float
    #: Depth (metres) of the ground seen on the bottom row.
    z_bottom: float

    def ground(self, lateral: float, s: float,
               up: float = 0.0) -> Point:
        """Projects a point ``up`` metres above the ground."""
        x = (self.vp_x + s * (self.centre_bottom - self.vp_x) +
             lateral * self.ppm_bottom * s)
        y = self.horizon + s * (self.height - self.horizon) - (
            up * self.ppm_bottom * s)
        return x, y

    def s_of_row(self, y: np.ndarray) -> np.ndarray:
        """Depth scale of the ground at image rows ``y`` (below horizon)."""
        return np.maximum(y - self.horizon, 1e-3) / (
            self.height - self.horizon)

    def lateral_of(self, x: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Lateral ground offset (metres) of pixel columns ``x`` at ``s``."""
        centre = self.vp_x + s * (self.centre_bottom - self.vp_x)
        return (x - centre) / (self.ppm_bottom * s)

    def s_of_depth(self, z: float) -> float:
        return self.z_bottom / z


@dataclass
class _Obj:
    """One annotated polygon plus what the renderer needs to texture it."""

    label: str
    polygon: List[Point]
    kind: str
    params: dict = field(default_factory=dict)


def _clip_polygon(points: Sequence[Point], width: int,
                  height: int) -> List[Point]:
    """Clips a polygon to the image (Sutherland-Hodgman).

    Real Cityscapes polygons stay inside the image, and keeping them there
    makes the bounding boxes used by the renderer cheap to compute.
    """
    def clip(pts, inside, cut):
        out = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cut(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cut(prev, cur))
        return out

    def cut_x(x0):
        def f(p, q):
            t = (x0 - p[0]) / (q[0] - p[0])
            return (x0, p[1] + t * (q[1] - p[1]))
        return f

    def cut_y(y0):
        def f(p, q):
            t = (y0 - p[1]) / (q[1] - p[1])
            return (p[0] + t * (q[0] - p[0]), y0)
        return f

    xmax, ymax = width - 1, height - 1
    pts = list(points)
    for inside, cut in ((lambda p: p[0] >= 0, cut_x(0)),
                        (lambda p: p[0] <= xmax, cut_x(xmax)),
                        (lambda p: p[1] >= 0, cut_y(0)),
                        (lambda p: p[1] <= ymax, cut_y(ymax))):
        if not pts:
            break
        pts = clip(pts, inside, cut)
    return pts


def _to_int_polygon(points: Sequence[Point]) -> List[List[int]]:
    """Rounds to integer pixels (as in Cityscapes) and drops repeats."""
    out: List[List[int]] = []
    for x, y in points:
        p = [int(math.floor(x + 0.5)), int(math.floor(y + 0.5))]
        if not out or out[-1] != p:
            out.append(p)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def _convex_hull(points: Sequence[Point]) -> List[Point]:
    """Andrew's monotone chain; used to outline 3D boxes (cars)."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: List[Point] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: List[Point] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


# --------------------------------------------------------------------------
# Scene layout
# --------------------------------------------------------------------------
_BUILDING_COLOURS = np.array([
    (196, 178, 150), (150, 146, 140), (156, 88, 66), (214, 208, 196),
    (206, 186, 122), (104, 96, 90), (176, 150, 130), (120, 128, 140)
], dtype=np.float32)
_CAR_COLOURS = np.array([
    (28, 28, 32), (222, 222, 226), (168, 172, 178), (164, 30, 30),
    (36, 58, 138), (92, 96, 100), (40, 86, 60), (196, 160, 60)
], dtype=np.float32)
_CLOTH_COLOURS = np.array([
    (30, 30, 40), (200, 200, 205), (40, 60, 120), (150, 40, 40),
    (90, 80, 60), (60, 100, 60), (210, 170, 60), (120, 120, 125)
], dtype=np.float32)
_SKIN_COLOURS = np.array([(224, 180, 150), (190, 140, 100), (120, 80, 60)],
                         dtype=np.float32)


def _jitter(rng: np.random.Generator, colour, amount: float) -> np.ndarray:
    return np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3)


def _layout_scene(rng: np.random.Generator, height: int,
                  width: int) -> Tuple[_Camera, List[_Obj], dict]:
    """Samples a street scene; returns the camera, polygons (draw order)
    and image-wide rendering parameters."""
    horizon = height * rng.uniform(0.36, 0.5)
    vp_x = width * rng.uniform(0.35, 0.65)
    road_m = rng.uniform(6.5, 10.0)
    half_road_px = width * rng.uniform(0.42, 0.75)
    ppm_bottom = 2 * half_road_px / road_m
    # ~ a 50 degree horizontal field of view, as for the Cityscapes camera.
    focal = 1.1 * width
    cam = _Camera(height=height, width=width, horizon=horizon, vp_x=vp_x,
                  centre_bottom=vp_x + width * rng.uniform(-0.12, 0.12),
                  ppm_bottom=ppm_bottom, z_bottom=focal / ppm_bottom)
    half_road = road_m / 2
    objs: List[_Obj] = []
    far_s = 1e-3  # practically the vanishing point

    # Sky first: everything else is drawn over it.
    overcast = rng.random() < 0.3
    objs.append(_Obj('sky', [(0, 0), (width, 0), (width, horizon + 2),
                             (0, horizon + 2)], 'sky',
                     dict(overcast=overcast)))

    # Per side, lateral extents (metres) from the curb outwards: sidewalk,
    # sometimes grass (terrain), then the facade plane.
    sides = {}
    for sign in (-1, 1):
        walk = rng.uniform(1.8, 5.0)
        grass = rng.uniform(1.0, 3.5) if rng.random() < 0.35 else 0.0
        sides[sign] = dict(walk=walk, grass=grass,
                           facade=half_road + walk + grass)

    # Distant buildings closing the street around the vanishing point.
    block_half = width * rng.uniform(0.06, 0.2)
    block_top = horizon - height * rng.uniform(0.03, 0.12)
    objs.append(_Obj('building', [(vp_x - block_half, block_top),
                                  (vp_x + block_half, block_top),
                                  (vp_x + block_half, horizon + 3),
                                  (vp_x - block_half, horizon + 3)],
                     'building', _building_style(rng, frontal=True)))

    # Facades: segments along the street, far to near, each with its own
    # height and look; some are parks (a tree mass instead of a house).
    for sign in (-1, 1):
        lateral = sign * sides[sign]['facade']
        s0 = rng.uniform(0.02, 0.05)
        while True:
            s1 = s0 * rng.uniform(1.3, 2.2)
            if rng.random() < 0.15:
                # A park: bumpy tree line in front of the facade plane.
                top = rng.uniform(6, 14)
                pts = [cam.ground(lateral, s0), cam.ground(lateral, s1)]
                n = 8
                for k in range(n + 1):
                    s = s1 + (s0 - s1) * k / n
                    up = top * rng.uniform(0.75, 1.15)
                    pts.append(cam.ground(lateral, s, up))
                objs.append(_Obj('vegetation', pts, 'vegetation',
                                 _vegetation_style(rng)))
            else:
                floors = int(rng.integers(2, 8))
                top = floors * 3.2 + rng.uniform(0.5, 2.5)
                style = _building_style(rng)
                style.update(lateral=lateral, storey=top / floors,
                             height_m=top)
                objs.append(_Obj('building', [
                    cam.ground(lateral, s0), cam.ground(lateral, s1),
                    cam.ground(lateral, s1, top), cam.ground(lateral, s0, top)
                ], 'building', style))
            s0 = s1
            x1, _ = cam.ground(lateral, s1)
            if x1 < -width or x1 > 2 * width or s1 > 40:
                break

    # Ground: terrain and sidewalk wedges, then the road, all meeting at the
    # vanishing point. The near end goes far below the image and is clipped.
    near_s = 4.0

    def strip(lat0, lat1):
        return [cam.ground(lat0, far_s), cam.ground(lat1, far_s),
                cam.ground(lat1, near_s), cam.ground(lat0, near_s)]

    for sign in (-1, 1):
        side = sides[sign]
        inner = sign * (half_road + side['walk'])
        if side['grass'] > 0:
            objs.append(_Obj('terrain', strip(inner, sign * side['facade']),
                             'terrain', dict(colour=_jitter(
                                 rng, (128, 142, 78), 18))))
        objs.append(_Obj('sidewalk', strip(sign * half_road, inner),
                         'sidewalk', dict(
                             colour=_jitter(rng, rng.choice(
                                 [(150, 146, 140), (164, 120, 108),
                                  (176, 170, 158)]), 14),
                             tile=rng.uniform(0.3, 0.7),
                             curb=sign * half_road)))
    objs.append(_Obj('road', strip(-half_road, half_road), 'road', dict(
        colour=_jitter(rng, (82, 82, 88), 14),
        half_road=half_road,
        lane=rng.uniform(-0.5, 0.5) if rng.random() < 0.3 else 0.0,
        edge_lines=rng.random() < 0.6,
        dash_phase=rng.uniform(0, 9),
        crossing=(rng.uniform(8, 30) if rng.random() < 0.25 else None))))

    # Things standing on the ground, drawn far to near so that nearer ones
    # occlude farther ones.
    things: List[Tuple[float, List[_Obj]]] = []
    z_min, z_max = cam.z_bottom * 1.05, cam.z_bottom / 0.06
    for _ in range(int(rng.integers(1, 6))):
        # Not too close: a car right in front would fill half the image.
        z = _depth_sample(rng, z_min * 1.6, z_max)
        if rng.random() < 0.5:  # parked at the curb
            lat = rng.choice([-1, 1]) * (half_road - rng.uniform(1.0, 1.3))
        else:  # driving in a lane
            lat = rng.choice([-1, 1]) * half_road * rng.uniform(0.2, 0.55)
        things.append((z, _car(rng, cam, lat, z)))
    for _ in range(int(rng.integers(0, 8))):
        z = _depth_sample(rng, z_min * 1.2, z_max * 0.6)
        sign = rng.choice([-1, 1])
        if rng.random() < 0.15:  # crossing the road
            lat = rng.uniform(-half_road, half_road)
        else:
            lat = sign * (half_road + rng.uniform(0.3, 0.9) *
                          sides[sign]['walk'])
        things.append((z, [_person(rng, cam, lat, z)]))
    for _ in range(int(rng.integers(1, 5))):
        z = _depth_sample(rng, z_min * 1.5, z_max * 0.7)
        sign = rng.choice([-1, 1])
        lat = sign * (half_road + rng.uniform(0.3, 0.8))
        things.append((z, _pole(rng, cam, lat, z)))
    for _ in range(int(rng.integers(0, 6))):
        z = _depth_sample(rng, z_min * 1.5, z_max * 0.7)
        sign = rng.choice([-1, 1])
        side = sides[sign]
        lat = sign * (half_road + side['walk'] +
                      side['grass'] * rng.uniform(0.2, 0.8) -
                      (0.0 if side['grass'] else 0.6))
        things.append((z, _tree(rng, cam, lat, z)))
    things.sort(key=lambda t: -t[0])
    for _, group in things:
        objs.extend(group)

    if rng.random() < 0.5:
        objs.append(_ego_vehicle(rng, height, width))

    render = dict(
        brightness=rng.uniform(0.7, 1.25),
        gains=rng.uniform(0.92, 1.08, 3),
        noise_sigma=rng.uniform(2.0, 6.0),
        blur=rng.uniform(0.3, 0.8),
        shadows=[_shadow(rng, cam, sides[sign]['facade'] * sign, half_road)
                 for sign in (-1, 1) if rng.random() < 0.35],
    )
    return cam, objs, render


def _depth_sample(rng: np.random.Generator, z_min: float,
                  z_max: float) -> float:
    # Uniform in 1/z, i.e. uniform in image rows: near objects are as common
    # as far ones, which keeps object sizes balanced.
    return 1.0 / rng.uniform(1.0 / z_max, 1.0 / z_min)


def _building_style(rng: np.random.Generator, frontal: bool = False) -> dict:
    colour = _BUILDING_COLOURS[rng.integers(len(_BUILDING_COLOURS))]
    return dict(
        colour=_jitter(rng, colour, 16),
        window=_jitter(rng, (52, 62, 78), 14),
        window_frac=(rng.uniform(0.35, 0.6), rng.uniform(0.4, 0.65)),
        bay=rng.uniform(2.2, 4.0),
        frontal=frontal,
        streak=rng.uniform(0.0, 12.0),
    )


def _vegetation_style(rng: np.random.Generator) -> dict:
    return dict(colour=_jitter(rng, (62, 98, 40), 16),
                blob=rng.uniform(0.6, 1.2))


def _car(rng: np.random.Generator, cam: _Camera, lat: float,
         z: float) -> List[_Obj]:
    """A car as the convex outline of its body and cabin boxes."""
    half_w = rng.uniform(0.85, 1.0)
    length = rng.uniform(3.8, 4.9)
    body_h = rng.uniform(0.75, 0.95)
    roof_h = body_h + rng.uniform(0.45, 0.65)
    cab0, cab1 = rng.uniform(0.15, 0.35), rng.uniform(0.65, 0.85)
    pts: List[Point] = []
    for depth in (z, z + length):
        s = cam.s_of_depth(depth)
        for dx in (-half_w, half_w):
            pts += [cam.ground(lat + dx, s, 0.15), cam.ground(lat + dx, s,
                                                              body_h)]
    for depth in (z + cab0 * length, z + cab1 * length):
        s = cam.s_of_depth(depth)
        for dx in (-half_w * 0.85, half_w * 0.85):
            pts.append(cam.ground(lat + dx, s, roof_h))
    # Wheels reach the ground slightly inside the body outline.
    s = cam.s_of_depth(z + 0.3)
    pts += [cam.ground(lat - half_w * 0.95, s), cam.ground(lat + half_w * 0.95,
                                                           s)]
    s_near = cam.s_of_depth(z)
    x_l, y_b = cam.ground(lat - half_w, s_near)
    x_r, _ = cam.ground(lat + half_w, s_near)
    colour = _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))]
    return [_Obj('car', _convex_hull(pts), 'car', dict(
        colour=_jitter(rng, colour, 12),
        near=(x_l, x_r, y_b, roof_h * cam.ppm_bottom * s_near),
        body=body_h / roof_h))]


_PERSON_SHAPE = [  # (x, y) in body heights, feet at y=0, facing the camera
    (-0.11, 0.0), (-0.035, 0.0), (0.0, 0.42), (0.035, 0.0), (0.11, 0.0),
    (0.1, 0.48), (0.15, 0.43), (0.17, 0.46), (0.14, 0.78), (0.045, 0.83),
    (0.06, 0.88), (0.055, 0.96), (0.025, 1.0), (-0.025, 1.0), (-0.055, 0.96),
    (-0.06, 0.88), (-0.045, 0.83), (-0.14, 0.78), (-0.17, 0.46),
    (-0.15, 0.43), (-0.1, 0.48)
]


def _person(rng: np.random.Generator, cam: _Camera, lat: float,
            z: float) -> _Obj:
    tall = rng.uniform(1.55, 1.95)
    stride = rng.uniform(0.6, 1.6)  # how far apart the legs are
    bulk = rng.uniform(0.85, 1.25)
    s = cam.s_of_depth(z)
    cx, feet = cam.ground(lat, s)
    scale = tall * cam.ppm_bottom * s
    pts = []
    for x, y in _PERSON_SHAPE:
        k = stride if y < 0.45 else bulk
        x = x * k + rng.normal(0, 0.006)
        pts.append((cx + x * scale, feet - y * scale))
    return _Obj('person', pts, 'person', dict(
        feet=feet, size=scale,
        top=_CLOTH_COLOURS[rng.integers(len(_CLOTH_COLOURS))] +
        rng.uniform(-15, 15, 3),
        legs=_CLOTH_COLOURS[rng.integers(len(_CLOTH_COLOURS))] * 0.8 +
        rng.uniform(-10, 10, 3),
        skin=_SKIN_COLOURS[rng.integers(len(_SKIN_COLOURS))]))


def _pole(rng: np.random.Generator, cam: _Camera, lat: float,
          z: float) -> List[_Obj]:
    s = cam.s_of_depth(z)
    tall = rng.uniform(3.5, 7.5)
    # At least ~2.5 px wide so that poles survive downsampling in training.
    half = max(rng.uniform(0.08, 0.14) * cam.ppm_bottom * s, 1.25)
    x, y = cam.ground(lat, s)
    top = y - tall * cam.ppm_bottom * s
    metal = rng.random() < 0.7
    objs = [_Obj('pole', [(x - half, y), (x + half, y), (x + half, top),
                          (x - half, top)], 'pole', dict(
                              colour=_jitter(rng, (128, 132, 136) if metal
                                             else (58, 72, 62), 12),
                              x=x, half=half))]
    if rng.random() < 0.65:
        size = rng.uniform(0.65, 1.0) * cam.ppm_bottom * s
        cy = top + rng.uniform(0.6, 1.2) * size
        shape = rng.choice(['circle', 'triangle', 'square', 'octagon',
                            'wide'])
        if shape == 'circle':
            pts = [(x + size / 2 * math.cos(a), cy + size / 2 * math.sin(a))
                   for a in np.linspace(0, 2 * math.pi, 16, endpoint=False)]
        elif shape == 'octagon':
            pts = [(x + size / 2 * math.cos(a), cy + size / 2 * math.sin(a))
                   for a in np.linspace(math.pi / 8, 2 * math.pi + math.pi / 8,
                                        8, endpoint=False)]
        elif shape == 'triangle':
            half_s = size / 2
            pts = [(x - half_s, cy - size / 3), (x + half_s, cy - size / 3),
                   (x, cy + size * 0.55)]
            if rng.random() < 0.5:  # warning sign, apex up
                pts = [(px, 2 * cy - py) for px, py in pts]
        elif shape == 'wide':
            pts = [(x - size, cy - size / 3), (x + size, cy - size / 3),
                   (x + size, cy + size / 3), (x - size, cy + size / 3)]
        else:
            half_s = size / 2
            pts = [(x - half_s, cy - half_s), (x + half_s, cy - half_s),
                   (x + half_s, cy + half_s), (x - half_s, cy + half_s)]
        palette = [((200, 30, 34), (236, 236, 232)),  # red rim, white face
                   ((30, 70, 170), (220, 220, 230)),  # blue, white symbol
                   ((232, 196, 40), (40, 40, 40)),  # yellow, dark symbol
                   ((150, 150, 155), (130, 130, 135))]  # back of a sign
        rim, face = palette[int(rng.integers(len(palette)))]
        objs.append(_Obj('traffic sign', pts, 'sign', dict(
            rim=_jitter(rng, rim, 10), face=_jitter(rng, face, 10),
            centre=(x, cy), size=size)))
    return objs


def _tree(rng: np.random.Generator, cam: _Camera, lat: float,
          z: float) -> List[_Obj]:
    """A trunk and a bumpy crown; Cityscapes labels both as vegetation."""
    s = cam.s_of_depth(z)
    ppm = cam.ppm_bottom * s
    x, y = cam.ground(lat, s)
    trunk_h = rng.uniform(1.8, 3.0) * ppm
    half = max(rng.uniform(0.12, 0.2) * ppm, 1.0)
    radius = rng.uniform(1.5, 3.5) * ppm
    cy = y - trunk_h - radius * 0.7
    n = 24
    phase = rng.uniform(0, 2 * math.pi, 3)
    crown = []
    for k in range(n):
        a = 2 * math.pi * k / n
        r = radius * (1 + 0.12 * math.sin(3 * a + phase[0]) +
                      0.08 * math.sin(5 * a + phase[1]) +
                      0.05 * math.sin(9 * a + phase[2]))
        crown.append((x + r * math.cos(a), cy + r * math.sin(a) * 0.9))
    style = _vegetation_style(rng)
    return [
        _Obj('vegetation', [(x - half, y), (x + half, y),
                            (x + half * 0.8, cy), (x - half * 0.8, cy)],
             'trunk', dict(colour=_jitter(rng, (92, 70, 50), 12))),
        _Obj('vegetation', crown, 'vegetation', style),
    ]


def _ego_vehicle(rng: np.random.Generator, height: int,
                 width: int) -> _Obj:
    """The bonnet of the recording car, ignored in training (trainId 255)."""
    rise = height * rng.uniform(0.05, 0.1)
    n = 16
    pts = [(-1, height + 1)]
    for k in range(n + 1):
        t = k / n
        pts.append((width * (-0.05 + 1.1 * t),
                    height - rise * math.sin(math.pi * t) ** 0.5 + 2))
    pts.append((width, height + 1))
    return _Obj('ego vehicle', pts, 'ego', dict(
        colour=_jitter(rng, (34, 34, 40), 8), rise=rise))


def _shadow(rng: np.random.Generator, cam: _Camera, facade: float,
            half_road: float) -> dict:
    """A building shadow falling across the sidewalk and part of the road.

    Shadows only darken the image; they are not annotated, so the model must
    not rely on absolute brightness.
    """
    edge = half_road * rng.uniform(-0.6, 0.6)
    s0, s1 = rng.uniform(0.05, 0.3), rng.uniform(0.5, 4.0)
    pts = [cam.ground(facade, s0), cam.ground(edge, s0), cam.ground(edge, s1),
           cam.ground(facade, s1)]
    return dict(polygon=pts, factor=rng.uniform(0.55, 0.8))


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
class _Ctx:
    """Per-image noise fields shared by all texture functions."""

    def __init__(self, rng: np.random.Generator, cam: _Camera):
        h, w = cam.height, cam.width
        self.rng = rng
        self.cam = cam
        self.fine = rng.standard_normal((h, w), dtype=np.float32)
        self.mid = self._smooth(rng, h, w, 6)
        self.low = self._smooth(rng, h, w, 24)

    @staticmethod
    def _smooth(rng, h, w, cell):
        small = rng.standard_normal((h // cell + 2, w // cell + 2),
                                    dtype=np.float32)
        img = Image.fromarray(small).resize((w, h), Image.BILINEAR)
        field_ = np.asarray(img, dtype=np.float32)
        return field_ / max(float(field_.std()), 1e-6)


def _frac(v: np.ndarray) -> np.ndarray:
    return v - np.floor(v)


def _tex_sky(ctx, obj, ys, xs, sl):
    top = np.array((92, 140, 206) if not obj.params['overcast'] else
                   (176, 184, 196), np.float32)
    low = np.array((186, 206, 226) if not obj.params['overcast'] else
                   (214, 216, 220), np.float32)
    t = np.clip(ys / max(ctx.cam.horizon, 1.0), 0, 1)[..., None]
    rgb = top * (1 - t) + low * t
    cloud = np.clip(ctx.low[sl] * 0.6 + ctx.mid[sl] * 0.25 - 0.3, 0, 1)
    return rgb + (cloud[..., None] * (235 - rgb))


def _tex_building(ctx, obj, ys, xs, sl):
    p = obj.params
    rgb = np.broadcast_to(p['colour'], ys.shape + (3, )).copy()
    rgb *= (1 + 0.06 * ctx.mid[sl] + 0.04 * ctx.fine[sl])[..., None]
    cam = ctx.cam
    if p['frontal']:
        # Far-away block: a small regular grid of windows.
        u, v = xs / 3.0, ys / 3.0
        win = (_frac(u) < 0.5) & (_frac(v) < 0.5)
    else:
        # Recover (depth, height) on the facade plane for each pixel, so
        # windows follow the perspective: columns are equally spaced in depth
        # and rows in height.
        lateral = p['lateral']
        d = cam.centre_bottom - cam.vp_x + lateral * cam.ppm_bottom
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
        rgb *= (1 - p['streak'] / 100 *
                (_frac(depth / 1.7) < 0.2))[..., None]
    glass = p['window'] * (1 + 0.25 * ctx.low[sl])[..., None]
    return np.where(win[..., None], glass, rgb)


def _ground_coords(ctx, ys, xs):
    cam = ctx.cam
    s = cam.s_of_row(ys)
    return cam.lateral_of(xs, s), cam.z_bottom / s


def _tex_road(ctx, obj, ys, xs, sl):
    p = obj.params
    lat, depth = _ground_coords(ctx, ys, xs)
    rgb = p['colour'] * (1 + 0.05 * ctx.mid[sl] + 0.07 * ctx.fine[sl])[
        ..., None]
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


def _tex_sidewalk(ctx, obj, ys, xs, sl):
    p = obj.params
    lat, depth = _ground_coords(ctx, ys, xs)
    rgb = p['colour'] * (1 + 0.04 * ctx.mid[sl] + 0.06 * ctx.fine[sl])[
        ..., None]
    grout = ((_frac(depth / p['tile']) < 0.1) |
             (_frac(lat / p['tile']) < 0.1))
    rgb = rgb * np.where(grout, 0.8, 1.0)[..., None]
    curb = np.abs(lat - p['curb']) < 0.25
    return np.where(curb[..., None], rgb * 1.15 + 10, rgb)


def _tex_terrain(ctx, obj, ys, xs, sl):
    p = obj.params
    speck = ctx.fine[sl] * 0.12 + ctx.mid[sl] * 0.08
    rgb = p['colour'] * (1 + speck)[..., None]
    dry = np.clip(ctx.low[sl], 0, 1)[..., None]  # patches of dry grass
    return rgb + dry * np.array((18, 6, -8), np.float32)


def _tex_vegetation(ctx, obj, ys, xs, sl):
    p = obj.params
    # Leafy texture: strong mid-frequency blobs with dark gaps.
    leaf = ctx.mid[sl] * 0.22 * p['blob'] + ctx.fine[sl] * 0.1
    rgb = p['colour'] * (1 + leaf)[..., None]
    gaps = (ctx.mid[sl] + 0.5 * ctx.fine[sl]) < -1.1
    return np.where(gaps[..., None], rgb * 0.55, rgb)


def _tex_trunk(ctx, obj, ys, xs, sl):
    return obj.params['colour'] * (1 + 0.08 * ctx.fine[sl])[..., None]


def _tex_pole(ctx, obj, ys, xs, sl):
    p = obj.params
    # Cylinder shading across the width.
    t = np.clip((xs - p['x']) / (p['half'] + 0.5), -1, 1)
    shade = 1.15 - 0.35 * t**2 - 0.1 * t
    return p['colour'] * shade[..., None]


def _tex_sign(ctx, obj, ys, xs, sl):
    p = obj.params
    cx, cy = p['centre']
    # The face is the inner part of the sign, away from its outline.
    r = np.maximum(np.abs(xs - cx), np.abs(ys - cy)) / max(p['size'], 1.0)
    inner = r < 0.3
    return np.where(inner[..., None], p['face'], p['rim']) * (
        1 + 0.04 * ctx.fine[sl])[..., None]


def _tex_person(ctx, obj, ys, xs, sl):
    p = obj.params
    v = (p['feet'] - ys) / max(p['size'], 1.0)
    rgb = np.where((v < 0.46)[..., None], p['legs'], p['top'])
    rgb = np.where((v > 0.84)[..., None], p['skin'], rgb)
    hair = v > 0.95
    rgb = np.where(hair[..., None], np.float32(40), rgb)
    return rgb * (1 + 0.05 * ctx.fine[sl])[..., None]


def _tex_car(ctx, obj, ys, xs, sl):
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


def _tex_ego(ctx, obj, ys, xs, sl):
    p = obj.params
    t = (ctx.cam.height - ys) / max(p['rise'], 1.0)
    return p['colour'] * (1 + 0.6 * np.clip(t, 0, 1))[..., None]


_TEXTURES: Dict[str, Callable] = {
    'sky': _tex_sky, 'building': _tex_building, 'road': _tex_road,
    'sidewalk': _tex_sidewalk, 'terrain': _tex_terrain,
    'vegetation': _tex_vegetation, 'trunk': _tex_trunk, 'pole': _tex_pole,
    'sign': _tex_sign, 'person': _tex_person, 'car': _tex_car,
    'ego': _tex_ego
}


def _rasterise(polygons: Sequence[List[List[int]]], height: int,
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


def _make_sample(rng: np.random.Generator, height: int, width: int
                 ) -> Tuple[dict, np.ndarray, np.ndarray]:
    """Builds one image: returns (polygon json dict, RGB uint8, trainIds)."""
    # Resample the (rare) layouts that hide road, buildings or sky entirely,
    # so every image shows the basic street structure.
    for _ in range(20):
        cam, objs, render = _layout_scene(rng, height, width)
        kept: List[_Obj] = []
        polys: List[List[List[int]]] = []
        for obj in objs:
            poly = _to_int_polygon(_clip_polygon(obj.polygon, width, height))
            if len(poly) >= 3:
                kept.append(obj)
                polys.append(poly)
        index = _rasterise(polys, height, width)
        lut = np.full(256, _IGNORE, np.uint8)
        for k, obj in enumerate(kept, start=1):
            lut[k] = LABEL_TRAIN_IDS[obj.label]
        train_ids = lut[index]
        counts = np.bincount(train_ids.ravel(), minlength=256)
        if min(counts[LABEL_TRAIN_IDS[c]]
               for c in ('road', 'building', 'sky')) >= 0.005 * index.size:
            break

    ctx = _Ctx(rng, cam)
    rgb = np.zeros((height, width, 3), np.float32)
    for k, (obj, poly) in enumerate(zip(kept, polys), start=1):
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
        tex = _TEXTURES[obj.kind](ctx, obj, ys, xs, sl)
        np.copyto(rgb[sl], tex, where=mask[..., None])

    for shadow in render['shadows']:
        poly = _to_int_polygon(_clip_polygon(shadow['polygon'], width, height))
        if len(poly) < 3:
            continue
        img = Image.new('L', (width, height), 0)
        ImageDraw.Draw(img).polygon([tuple(p) for p in poly], fill=1)
        dark = np.asarray(img).astype(bool) & (index > 0)
        rgb[dark] *= shadow['factor']

    rgb *= render['brightness'] * render['gains']
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), 'RGB')
    img = img.filter(ImageFilter.GaussianBlur(render['blur']))
    out = np.asarray(img, np.float32)
    out += rng.standard_normal(out.shape, dtype=np.float32) * render[
        'noise_sigma']
    rgb_u8 = np.clip(out + 0.5, 0, 255).astype(np.uint8)

    annotation = dict(imgHeight=height, imgWidth=width, objects=[
        dict(label=obj.label, polygon=poly) for obj, poly in zip(kept, polys)
    ])
    return annotation, rgb_u8, train_ids


# --------------------------------------------------------------------------
# Dataset writer
# --------------------------------------------------------------------------
def _split_plan(split: str, num: int) -> List[Tuple[str, str]]:
    """(city, stem) pairs, cities in contiguous blocks as in Cityscapes."""
    cities = TRAIN_CITIES if split == 'train' else VAL_CITIES
    plan, seq = [], {c: 0 for c in cities}
    for i in range(num):
        city = cities[i * len(cities) // num]
        plan.append((city, f'{city}_{seq[city]:06d}_{FRAME_ID:06d}'))
        seq[city] += 1
    return plan


def _check_root(root: str, overwrite: bool) -> Optional[dict]:
    """Applies the safety rules; returns the previous summary to reuse."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise FileExistsError(
            f'{root!r} exists and is not a directory; choose another root '
            'for the synthetic Cityscapes dataset.')
    if not os.path.isdir(root) or not os.listdir(root):
        return None
    marker = os.path.join(root, MARKER_FILE)
    partial = os.path.join(root, PARTIAL_MARKER_FILE)
    if os.path.isfile(marker) and not overwrite:
        with open(marker, encoding='utf-8') as f:
            return json.load(f)
    if not (os.path.isfile(marker) or os.path.isfile(partial)):
        raise FileExistsError(
            f'Refusing to write the synthetic Cityscapes dataset into '
            f'{root!r}: the folder is not empty and has no {MARKER_FILE!r} '
            'marker, so it was not made by generate_synthetic_cityscapes and '
            'may hold your own data (for example the real Cityscapes). '
            'Pass an empty or non-existent folder instead.')
    return None


def _clear_previous(root: str) -> None:
    """Removes what an earlier generation (or the preparation step run on
    it) wrote, so stale images or labelTrainIds cannot survive a rerun.

    Only called when ``root`` carries one of our markers.
    """
    for name in ('leftImg8bit', 'gtFine'):
        path = os.path.join(root, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
    for name in ('train.txt', 'val.txt', 'test.txt', MARKER_FILE):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            os.remove(path)


def generate_synthetic_cityscapes(root: str,
                                  num_train: int = 40,
                                  num_val: int = 10,
                                  height: int = 256,
                                  width: int = 512,
                                  seed: int = 0,
                                  overwrite: bool = False) -> dict:
    """Writes a small procedural street-scene dataset in Cityscapes layout.

    The output is deterministic: the same arguments give byte-identical
    files. Image ``i`` of a split depends only on ``(seed, split, i)``, so
    asking for more images keeps the first ones unchanged.

    Run :func:`mmseg_repmlp.datasets.convert_cityscapes` (or
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
    for name, value, low in (('num_train', num_train, 1),
                             ('num_val', num_val, 0), ('height', height, 64),
                             ('width', width, 64), ('seed', seed, 0)):
        if isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < low:
            raise ValueError(f'{name} must be an integer >= {low}, '
                             f'got {value!r}')
    root = os.path.abspath(os.fspath(root))
    previous = _check_root(root, overwrite)
    if previous is not None:
        requested = dict(num_train=num_train, num_val=num_val, height=height,
                         width=width, seed=seed)
        recorded = {k: previous.get('arguments', {}).get(k)
                    for k in requested}
        if recorded != requested:
            warnings.warn(
                f'{root!r} already holds a synthetic Cityscapes dataset made '
                f'with {recorded}, not the requested {requested}; keeping it. '
                'Pass overwrite=True (--overwrite) to regenerate it.')
        return dict(previous, root=root, generated=False)

    os.makedirs(root, exist_ok=True)
    partial = os.path.join(root, PARTIAL_MARKER_FILE)
    with open(partial, 'w', encoding='utf-8') as f:
        f.write('generation in progress\n')
    _clear_previous(root)

    pixel_counts = np.zeros(256, np.int64)
    splits = {}
    for split_index, (split, num) in enumerate((('train', num_train),
                                                ('val', num_val))):
        if num == 0:
            continue
        images = []
        for i, (city, stem) in enumerate(_split_plan(split, num)):
            # One independent stream per image: images do not depend on how
            # many others are generated.
            rng = np.random.default_rng(
                np.random.SeedSequence([int(seed), split_index, i]))
            annotation, rgb, train_ids = _make_sample(rng, height, width)
            pixel_counts += np.bincount(train_ids.ravel(), minlength=256)
            img_dir = os.path.join(root, 'leftImg8bit', split, city)
            ann_dir = os.path.join(root, 'gtFine', split, city)
            os.makedirs(img_dir, exist_ok=True)
            os.makedirs(ann_dir, exist_ok=True)
            Image.fromarray(rgb, 'RGB').save(
                os.path.join(img_dir, f'{stem}_leftImg8bit.png'))
            with open(os.path.join(ann_dir, f'{stem}_gtFine_polygons.json'),
                      'w', encoding='utf-8') as f:
                json.dump(annotation, f, indent=4)
                f.write('\n')
            images.append(f'{city}/{stem}')
        cities: Dict[str, int] = {}
        for name in images:
            city = name.split('/')[0]
            cities[city] = cities.get(city, 0) + 1
        splits[split] = dict(num_images=num, cities=cities,
                             img_dir=f'leftImg8bit/{split}',
                             ann_dir=f'gtFine/{split}', images=images)

    total = int(pixel_counts.sum())
    by_id = sorted((tid, name) for name, tid in LABEL_TRAIN_IDS.items()
                   if tid != _IGNORE and pixel_counts[tid] > 0)
    summary = dict(
        format_version=FORMAT_VERSION,
        arguments=dict(num_train=num_train, num_val=num_val, height=height,
                       width=width, seed=seed),
        seed=seed, height=height, width=width, splits=splits,
        classes=[name for _, name in by_id],
        class_train_ids={name: tid for tid, name in by_id},
        class_pixel_fraction=dict(
            [(name, round(float(pixel_counts[tid]) / total, 6))
             for tid, name in by_id] +
            [('ignore', round(float(pixel_counts[_IGNORE]) / total, 6))]),
    )
    # The marker is written last: its presence means "complete and ours".
    # It holds no absolute path, so identical runs give identical bytes.
    with open(os.path.join(root, MARKER_FILE), 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write('\n')
    os.remove(partial)
    return dict(summary, root=root, generated=True)
