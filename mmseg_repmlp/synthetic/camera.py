"""The pinhole camera of the synthetic street scenes.

Scenes are built in a simple pinhole-camera model of a straight, flat street:
street-parallel lines (curbs, facades, lane marks) meet at one vanishing
point, and object sizes shrink linearly with depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = ['Camera', 'Point']

Point = Tuple[float, float]


@dataclass
class Camera:
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

    def ground(self, lateral: float, s: float, up: float = 0.0) -> Point:
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
        """Depth scale of the ground ``z`` metres away."""
        return self.z_bottom / z
