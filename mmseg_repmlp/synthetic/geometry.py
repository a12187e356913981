"""Polygon helpers of the synthetic scenes: clipping, rounding, convex hulls.

Real Cityscapes polygons have integer vertices inside the image; these
helpers bring the generator's floating-point outlines into that form.
"""
from __future__ import annotations

import math
from typing import Callable, List, Sequence

from .camera import Point

__all__ = ['clip_polygon', 'to_int_polygon', 'convex_hull']

_Inside = Callable[[Point], bool]
_Cut = Callable[[Point, Point], Point]


def _clip_half_plane(points: List[Point], inside: _Inside,
                     cut: _Cut) -> List[Point]:
    """One Sutherland-Hodgman step: keeps the part where ``inside`` holds."""
    out = []
    for i, cur in enumerate(points):
        prev = points[i - 1]
        if inside(cur):
            if not inside(prev):
                out.append(cut(prev, cur))
            out.append(cur)
        elif inside(prev):
            out.append(cut(prev, cur))
    return out


def _cut_at_x(x0: float) -> _Cut:
    """Intersection of a segment with the vertical line ``x = x0``."""

    def cut(p: Point, q: Point) -> Point:
        t = (x0 - p[0]) / (q[0] - p[0])
        return (x0, p[1] + t * (q[1] - p[1]))

    return cut


def _cut_at_y(y0: float) -> _Cut:
    """Intersection of a segment with the horizontal line ``y = y0``."""

    def cut(p: Point, q: Point) -> Point:
        t = (y0 - p[1]) / (q[1] - p[1])
        return (p[0] + t * (q[0] - p[0]), y0)

    return cut


def clip_polygon(points: Sequence[Point], width: int,
                 height: int) -> List[Point]:
    """Clips a polygon to the image (Sutherland-Hodgman).

    Real Cityscapes polygons stay inside the image, and keeping them there
    makes the bounding boxes used by the renderer cheap to compute.
    """
    xmax, ymax = width - 1, height - 1
    pts = list(points)
    for inside, cut in ((lambda p: p[0] >= 0, _cut_at_x(0)),
                        (lambda p: p[0] <= xmax, _cut_at_x(xmax)),
                        (lambda p: p[1] >= 0, _cut_at_y(0)),
                        (lambda p: p[1] <= ymax, _cut_at_y(ymax))):
        if not pts:
            break
        pts = _clip_half_plane(pts, inside, cut)
    return pts


def to_int_polygon(points: Sequence[Point]) -> List[List[int]]:
    """Rounds to integer pixels (as in Cityscapes) and drops repeats."""
    out: List[List[int]] = []
    for x, y in points:
        p = [int(math.floor(x + 0.5)), int(math.floor(y + 0.5))]
        if not out or out[-1] != p:
            out.append(p)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _half_hull(points: Sequence[Point]) -> List[Point]:
    """One chain of Andrew's algorithm over points in sweep order."""
    chain: List[Point] = []
    for p in points:
        while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
            chain.pop()
        chain.append(p)
    return chain


def convex_hull(points: Sequence[Point]) -> List[Point]:
    """Andrew's monotone chain; used to outline 3D boxes (cars)."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts
    return _half_hull(pts)[:-1] + _half_hull(reversed(pts))[:-1]
