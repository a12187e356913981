"""The objects of a synthetic street scene and how each one is sampled.

Every object is one Cityscapes polygon (label, outline) plus what the renderer
needs to texture it: a characteristic colour with per-object jitter and a few
shape parameters. The builders here make single objects (cars, pedestrians,
poles with traffic signs, trees, the ego vehicle, facade styles, shadows);
:mod:`.layout` arranges them into a scene.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np

from .camera import Camera, Point
from .geometry import convex_hull

__all__ = [
    'SceneObject', 'jitter', 'depth_sample', 'building_style',
    'vegetation_style', 'car', 'person', 'pole', 'tree', 'ego_vehicle',
    'shadow'
]

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
#: (rim, face) colours of traffic signs.
_SIGN_PALETTE = [((200, 30, 34), (236, 236, 232)),  # red rim, white face
                 ((30, 70, 170), (220, 220, 230)),  # blue, white symbol
                 ((232, 196, 40), (40, 40, 40)),  # yellow, dark symbol
                 ((150, 150, 155), (130, 130, 135))]  # back of a sign
_PERSON_SHAPE = [  # (x, y) in body heights, feet at y=0, facing the camera
    (-0.11, 0.0), (-0.035, 0.0), (0.0, 0.42), (0.035, 0.0), (0.11, 0.0),
    (0.1, 0.48), (0.15, 0.43), (0.17, 0.46), (0.14, 0.78), (0.045, 0.83),
    (0.06, 0.88), (0.055, 0.96), (0.025, 1.0), (-0.025, 1.0), (-0.055, 0.96),
    (-0.06, 0.88), (-0.045, 0.83), (-0.14, 0.78), (-0.17, 0.46),
    (-0.15, 0.43), (-0.1, 0.48)
]


@dataclass
class SceneObject:
    """One annotated polygon plus what the renderer needs to texture it.

    Attributes:
        label: Cityscapes label name (``'road'``, ``'traffic sign'``, ...).
        polygon: Outline in image pixels (floats, may leave the image).
        kind: Texture to paint it with (a key of
            :data:`.textures.TEXTURES`); trunks and crowns share a label
            but not a look.
        params: Colours and shape parameters for the texture.
    """

    label: str
    polygon: List[Point]
    kind: str
    params: dict = field(default_factory=dict)


def jitter(rng: np.random.Generator, colour: Sequence[float],
           amount: float) -> np.ndarray:
    """``colour`` with each channel moved by up to ``amount``."""
    return np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3)


def depth_sample(rng: np.random.Generator, z_min: float,
                 z_max: float) -> float:
    """A depth in ``[z_min, z_max]`` metres."""
    # Uniform in 1/z, i.e. uniform in image rows: near objects are as common
    # as far ones, which keeps object sizes balanced.
    return 1.0 / rng.uniform(1.0 / z_max, 1.0 / z_min)


def building_style(rng: np.random.Generator, frontal: bool = False) -> dict:
    """Colours and window grid of one facade."""
    colour = _BUILDING_COLOURS[rng.integers(len(_BUILDING_COLOURS))]
    return dict(
        colour=jitter(rng, colour, 16),
        window=jitter(rng, (52, 62, 78), 14),
        window_frac=(rng.uniform(0.35, 0.6), rng.uniform(0.4, 0.65)),
        bay=rng.uniform(2.2, 4.0),
        frontal=frontal,
        streak=rng.uniform(0.0, 12.0),
    )


def vegetation_style(rng: np.random.Generator) -> dict:
    """Colour and leafiness of a tree crown or park."""
    return dict(colour=jitter(rng, (62, 98, 40), 16),
                blob=rng.uniform(0.6, 1.2))


def car(rng: np.random.Generator, cam: Camera, lat: float,
        z: float) -> List[SceneObject]:
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
            pts += [cam.ground(lat + dx, s, 0.15),
                    cam.ground(lat + dx, s, body_h)]
    for depth in (z + cab0 * length, z + cab1 * length):
        s = cam.s_of_depth(depth)
        for dx in (-half_w * 0.85, half_w * 0.85):
            pts.append(cam.ground(lat + dx, s, roof_h))
    # Wheels reach the ground slightly inside the body outline.
    s = cam.s_of_depth(z + 0.3)
    pts += [cam.ground(lat - half_w * 0.95, s),
            cam.ground(lat + half_w * 0.95, s)]
    s_near = cam.s_of_depth(z)
    x_l, y_b = cam.ground(lat - half_w, s_near)
    x_r, _ = cam.ground(lat + half_w, s_near)
    colour = _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))]
    return [SceneObject('car', convex_hull(pts), 'car', dict(
        colour=jitter(rng, colour, 12),
        near=(x_l, x_r, y_b, roof_h * cam.ppm_bottom * s_near),
        body=body_h / roof_h))]


def person(rng: np.random.Generator, cam: Camera, lat: float,
           z: float) -> SceneObject:
    """A standing or walking pedestrian facing the camera."""
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
    return SceneObject('person', pts, 'person', dict(
        feet=feet, size=scale,
        top=_CLOTH_COLOURS[rng.integers(len(_CLOTH_COLOURS))] +
        rng.uniform(-15, 15, 3),
        legs=_CLOTH_COLOURS[rng.integers(len(_CLOTH_COLOURS))] * 0.8 +
        rng.uniform(-10, 10, 3),
        skin=_SKIN_COLOURS[rng.integers(len(_SKIN_COLOURS))]))


def pole(rng: np.random.Generator, cam: Camera, lat: float,
         z: float) -> List[SceneObject]:
    """A street pole, often carrying a traffic sign near its top."""
    s = cam.s_of_depth(z)
    tall = rng.uniform(3.5, 7.5)
    # At least ~2.5 px wide so that poles survive downsampling in training.
    half = max(rng.uniform(0.08, 0.14) * cam.ppm_bottom * s, 1.25)
    x, y = cam.ground(lat, s)
    top = y - tall * cam.ppm_bottom * s
    metal = rng.random() < 0.7
    objs = [SceneObject('pole', [(x - half, y), (x + half, y),
                                 (x + half, top), (x - half, top)], 'pole',
                        dict(colour=jitter(rng, (128, 132, 136) if metal
                                           else (58, 72, 62), 12),
                             x=x, half=half))]
    if rng.random() < 0.65:
        objs.append(_traffic_sign(rng, x, top, cam.ppm_bottom * s))
    return objs


def _traffic_sign(rng: np.random.Generator, x: float, top: float,
                  ppm: float) -> SceneObject:
    """A sign hanging from the top of a pole at column ``x``."""
    size = rng.uniform(0.65, 1.0) * ppm
    cy = top + rng.uniform(0.6, 1.2) * size
    shape = rng.choice(['circle', 'triangle', 'square', 'octagon', 'wide'])
    pts = _sign_outline(rng, shape, x, cy, size)
    rim, face = _SIGN_PALETTE[int(rng.integers(len(_SIGN_PALETTE)))]
    return SceneObject('traffic sign', pts, 'sign', dict(
        rim=jitter(rng, rim, 10), face=jitter(rng, face, 10),
        centre=(x, cy), size=size))


def _sign_outline(rng: np.random.Generator, shape: str, x: float, cy: float,
                  size: float) -> List[Point]:
    """Outline of a sign of the given shape centred at ``(x, cy)``."""
    if shape == 'circle':
        return [(x + size / 2 * math.cos(a), cy + size / 2 * math.sin(a))
                for a in np.linspace(0, 2 * math.pi, 16, endpoint=False)]
    if shape == 'octagon':
        return [(x + size / 2 * math.cos(a), cy + size / 2 * math.sin(a))
                for a in np.linspace(math.pi / 8, 2 * math.pi + math.pi / 8,
                                     8, endpoint=False)]
    if shape == 'triangle':
        half_s = size / 2
        pts = [(x - half_s, cy - size / 3), (x + half_s, cy - size / 3),
               (x, cy + size * 0.55)]
        if rng.random() < 0.5:  # warning sign, apex up
            pts = [(px, 2 * cy - py) for px, py in pts]
        return pts
    if shape == 'wide':
        return [(x - size, cy - size / 3), (x + size, cy - size / 3),
                (x + size, cy + size / 3), (x - size, cy + size / 3)]
    half_s = size / 2
    return [(x - half_s, cy - half_s), (x + half_s, cy - half_s),
            (x + half_s, cy + half_s), (x - half_s, cy + half_s)]


def tree(rng: np.random.Generator, cam: Camera, lat: float,
         z: float) -> List[SceneObject]:
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
    style = vegetation_style(rng)
    return [
        SceneObject('vegetation', [(x - half, y), (x + half, y),
                                   (x + half * 0.8, cy),
                                   (x - half * 0.8, cy)],
                    'trunk', dict(colour=jitter(rng, (92, 70, 50), 12))),
        SceneObject('vegetation', crown, 'vegetation', style),
    ]


def ego_vehicle(rng: np.random.Generator, height: int,
                width: int) -> SceneObject:
    """The bonnet of the recording car, ignored in training (trainId 255)."""
    rise = height * rng.uniform(0.05, 0.1)
    n = 16
    pts = [(-1, height + 1)]
    for k in range(n + 1):
        t = k / n
        pts.append((width * (-0.05 + 1.1 * t),
                    height - rise * math.sin(math.pi * t) ** 0.5 + 2))
    pts.append((width, height + 1))
    return SceneObject('ego vehicle', pts, 'ego', dict(
        colour=jitter(rng, (34, 34, 40), 8), rise=rise))


def shadow(rng: np.random.Generator, cam: Camera, facade: float,
           half_road: float) -> dict:
    """A building shadow falling across the sidewalk and part of the road.

    Shadows only darken the image; they are not annotated, so the model must
    not rely on absolute brightness.

    Returns:
        ``{'polygon': outline, 'factor': brightness factor inside it}``.
    """
    edge = half_road * rng.uniform(-0.6, 0.6)
    s0, s1 = rng.uniform(0.05, 0.3), rng.uniform(0.5, 4.0)
    pts = [cam.ground(facade, s0), cam.ground(edge, s0), cam.ground(edge, s1),
           cam.ground(facade, s1)]
    return dict(polygon=pts, factor=rng.uniform(0.55, 0.8))
