"""Layout of a synthetic street scene: what stands where, in draw order.

A scene is a straight street seen through :class:`.camera.Camera`: a road
with sidewalks (and sometimes grass) converging to a vanishing point,
building facades along both sides, trees, poles with traffic signs, cars,
pedestrians, the sky and sometimes the ego vehicle's bonnet. Objects are
listed in draw order (later ones on top), so the list alone defines both
the image and the labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from .camera import Camera, Point
from .objects import (
    SceneObject,
    building_style,
    car,
    depth_sample,
    ego_vehicle,
    jitter,
    person,
    pole,
    shadow,
    tree,
    vegetation_style,
)

__all__ = ['ImageEffects', 'Scene', 'layout_scene']

#: Depth scales of the far (practically the vanishing point) and near
#: (far below the image, clipped later) ends of the ground strips.
_FAR_S = 1e-3
_NEAR_S = 4.0
_SIDEWALK_COLOURS = [(150, 146, 140), (164, 120, 108), (176, 170, 158)]


@dataclass
class ImageEffects:
    """Image-wide rendering parameters: lighting, shadows, sensor."""

    brightness: float
    #: Per-channel gains (white balance).
    gains: np.ndarray
    noise_sigma: float
    blur: float
    #: ``{'polygon', 'factor'}`` of each unannotated shadow.
    shadows: List[dict]


@dataclass
class Scene:
    """A sampled scene: its camera, objects in draw order, image effects."""

    camera: Camera
    objects: List[SceneObject]
    effects: ImageEffects


@dataclass
class _Side:
    """Lateral extents (metres) of one side of the street."""

    walk: float
    grass: float
    #: Offset of the facade plane from the road centre.
    facade: float


def layout_scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Samples a street scene of ``height`` x ``width`` pixels."""
    cam, half_road = _camera(rng, height, width)
    # Sky first: everything else is drawn over it.
    objs = [_sky(rng, cam)]
    sides = _sides(rng, half_road)
    objs.append(_far_block(rng, cam))
    for sign in (-1, 1):
        objs += _facades(rng, cam, sign * sides[sign].facade)
    objs += _ground(rng, cam, sides, half_road)
    objs += _things(rng, cam, sides, half_road)
    if rng.random() < 0.5:
        objs.append(ego_vehicle(rng, height, width))
    return Scene(cam, objs, _effects(rng, cam, sides, half_road))


def _camera(rng: np.random.Generator, height: int,
            width: int) -> Tuple[Camera, float]:
    """The camera and half the road width (metres)."""
    horizon = height * rng.uniform(0.36, 0.5)
    vp_x = width * rng.uniform(0.35, 0.65)
    road_m = rng.uniform(6.5, 10.0)
    half_road_px = width * rng.uniform(0.42, 0.75)
    ppm_bottom = 2 * half_road_px / road_m
    # ~ a 50 degree horizontal field of view, as for the Cityscapes camera.
    focal = 1.1 * width
    cam = Camera(height=height, width=width, horizon=horizon, vp_x=vp_x,
                 centre_bottom=vp_x + width * rng.uniform(-0.12, 0.12),
                 ppm_bottom=ppm_bottom, z_bottom=focal / ppm_bottom)
    return cam, road_m / 2


def _sky(rng: np.random.Generator, cam: Camera) -> SceneObject:
    overcast = rng.random() < 0.3
    w, h = cam.width, cam.horizon
    return SceneObject('sky', [(0, 0), (w, 0), (w, h + 2), (0, h + 2)],
                       'sky', dict(overcast=overcast))


def _sides(rng: np.random.Generator, half_road: float) -> Dict[int, _Side]:
    """Per side (-1 left, 1 right), from the curb outwards: sidewalk,
    sometimes grass (terrain), then the facade plane."""
    sides = {}
    for sign in (-1, 1):
        walk = rng.uniform(1.8, 5.0)
        grass = rng.uniform(1.0, 3.5) if rng.random() < 0.35 else 0.0
        sides[sign] = _Side(walk, grass, half_road + walk + grass)
    return sides


def _far_block(rng: np.random.Generator, cam: Camera) -> SceneObject:
    """Distant buildings closing the street around the vanishing point."""
    block_half = cam.width * rng.uniform(0.06, 0.2)
    block_top = cam.horizon - cam.height * rng.uniform(0.03, 0.12)
    left, right = cam.vp_x - block_half, cam.vp_x + block_half
    return SceneObject('building', [(left, block_top), (right, block_top),
                                    (right, cam.horizon + 3),
                                    (left, cam.horizon + 3)],
                       'building', building_style(rng, frontal=True))


def _facades(rng: np.random.Generator, cam: Camera,
             lateral: float) -> List[SceneObject]:
    """Segments along one side of the street, far to near, each with its own
    height and look; some are parks (a tree mass instead of a house)."""
    objs = []
    s0 = rng.uniform(0.02, 0.05)
    while True:
        s1 = s0 * rng.uniform(1.3, 2.2)
        if rng.random() < 0.15:
            objs.append(_park(rng, cam, lateral, s0, s1))
        else:
            objs.append(_house(rng, cam, lateral, s0, s1))
        s0 = s1
        x1, _ = cam.ground(lateral, s1)
        if x1 < -cam.width or x1 > 2 * cam.width or s1 > 40:
            return objs


def _park(rng: np.random.Generator, cam: Camera, lateral: float, s0: float,
          s1: float) -> SceneObject:
    """A bumpy tree line in front of the facade plane."""
    top = rng.uniform(6, 14)
    pts = [cam.ground(lateral, s0), cam.ground(lateral, s1)]
    n = 8
    for k in range(n + 1):
        s = s1 + (s0 - s1) * k / n
        up = top * rng.uniform(0.75, 1.15)
        pts.append(cam.ground(lateral, s, up))
    return SceneObject('vegetation', pts, 'vegetation', vegetation_style(rng))


def _house(rng: np.random.Generator, cam: Camera, lateral: float, s0: float,
           s1: float) -> SceneObject:
    """A facade of a few storeys between depth scales ``s0`` and ``s1``."""
    floors = int(rng.integers(2, 8))
    top = floors * 3.2 + rng.uniform(0.5, 2.5)
    style = building_style(rng)
    style.update(lateral=lateral, storey=top / floors, height_m=top)
    return SceneObject('building', [
        cam.ground(lateral, s0), cam.ground(lateral, s1),
        cam.ground(lateral, s1, top), cam.ground(lateral, s0, top)
    ], 'building', style)


def _strip(cam: Camera, lat0: float, lat1: float) -> List[Point]:
    """A ground strip between two lateral offsets, from the vanishing point
    to far below the image."""
    return [cam.ground(lat0, _FAR_S), cam.ground(lat1, _FAR_S),
            cam.ground(lat1, _NEAR_S), cam.ground(lat0, _NEAR_S)]


def _ground(rng: np.random.Generator, cam: Camera, sides: Dict[int, _Side],
            half_road: float) -> List[SceneObject]:
    """Terrain and sidewalk wedges, then the road."""
    objs = []
    for sign in (-1, 1):
        side = sides[sign]
        inner = sign * (half_road + side.walk)
        if side.grass > 0:
            objs.append(SceneObject(
                'terrain', _strip(cam, inner, sign * side.facade), 'terrain',
                dict(colour=jitter(rng, (128, 142, 78), 18))))
        objs.append(SceneObject(
            'sidewalk', _strip(cam, sign * half_road, inner), 'sidewalk',
            dict(colour=jitter(rng, rng.choice(_SIDEWALK_COLOURS), 14),
                 tile=rng.uniform(0.3, 0.7), curb=sign * half_road)))
    objs.append(_road(rng, cam, half_road))
    return objs


def _road(rng: np.random.Generator, cam: Camera,
          half_road: float) -> SceneObject:
    return SceneObject('road', _strip(cam, -half_road, half_road), 'road',
                       dict(colour=jitter(rng, (82, 82, 88), 14),
                            half_road=half_road,
                            lane=(rng.uniform(-0.5, 0.5)
                                  if rng.random() < 0.3 else 0.0),
                            edge_lines=rng.random() < 0.6,
                            dash_phase=rng.uniform(0, 9),
                            crossing=(rng.uniform(8, 30)
                                      if rng.random() < 0.25 else None)))


def _things(rng: np.random.Generator, cam: Camera, sides: Dict[int, _Side],
            half_road: float) -> List[SceneObject]:
    """Cars, pedestrians, poles and trees, drawn far to near so that nearer
    ones occlude farther ones."""
    z_min, z_max = cam.z_bottom * 1.05, cam.z_bottom / 0.06
    kinds = (  # (how many, depth range, where across the street, builder)
        # Not too close: a car right in front would fill half the image.
        ((1, 6), (z_min * 1.6, z_max), _car_lateral, car),
        ((0, 8), (z_min * 1.2, z_max * 0.6), _person_lateral, _pedestrian),
        ((1, 5), (z_min * 1.5, z_max * 0.7), _pole_lateral, pole),
        ((0, 6), (z_min * 1.5, z_max * 0.7), _tree_lateral, tree),
    )
    things: List[Tuple[float, List[SceneObject]]] = []
    for counts, depths, lateral, build in kinds:
        for _ in range(int(rng.integers(*counts))):
            z = depth_sample(rng, *depths)
            things.append((z, build(rng, cam, lateral(rng, sides, half_road),
                                    z)))
    things.sort(key=lambda t: -t[0])
    return [obj for _, group in things for obj in group]


def _car_lateral(rng: np.random.Generator, sides: Dict[int, _Side],
                 half_road: float) -> float:
    if rng.random() < 0.5:  # parked at the curb
        return rng.choice([-1, 1]) * (half_road - rng.uniform(1.0, 1.3))
    # driving in a lane
    return rng.choice([-1, 1]) * half_road * rng.uniform(0.2, 0.55)


def _person_lateral(rng: np.random.Generator, sides: Dict[int, _Side],
                    half_road: float) -> float:
    sign = rng.choice([-1, 1])
    if rng.random() < 0.15:  # crossing the road
        return rng.uniform(-half_road, half_road)
    return sign * (half_road + rng.uniform(0.3, 0.9) * sides[sign].walk)


def _pedestrian(rng: np.random.Generator, cam: Camera, lat: float,
                z: float) -> List[SceneObject]:
    return [person(rng, cam, lat, z)]


def _pole_lateral(rng: np.random.Generator, sides: Dict[int, _Side],
                  half_road: float) -> float:
    sign = rng.choice([-1, 1])
    return sign * (half_road + rng.uniform(0.3, 0.8))


def _tree_lateral(rng: np.random.Generator, sides: Dict[int, _Side],
                  half_road: float) -> float:
    sign = rng.choice([-1, 1])
    side = sides[sign]
    return sign * (half_road + side.walk +
                   side.grass * rng.uniform(0.2, 0.8) -
                   (0.0 if side.grass else 0.6))


def _effects(rng: np.random.Generator, cam: Camera, sides: Dict[int, _Side],
             half_road: float) -> ImageEffects:
    """Lighting, shadows and sensor parameters of the whole image."""
    return ImageEffects(
        brightness=rng.uniform(0.7, 1.25),
        gains=rng.uniform(0.92, 1.08, 3),
        noise_sigma=rng.uniform(2.0, 6.0),
        blur=rng.uniform(0.3, 0.8),
        shadows=[shadow(rng, cam, sides[sign].facade * sign, half_road)
                 for sign in (-1, 1) if rng.random() < 0.35],
    )
