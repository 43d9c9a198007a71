"""An analytic torso CT that can be moved by a known rigid transform."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

import dosimetry as ds


def rotation_matrix(angles_deg: tuple[float, float, float]) -> np.ndarray:
    """R = Rz @ Rx @ Ry (angles about x, y, z in degrees): ITK's Euler3D default order."""
    ax, ay, az = (math.radians(a) for a in angles_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ rx @ ry


def torso_ct(
    shape: tuple[int, int, int] = (40, 48, 56),
    spacing_mm: float = 3.0,
    *,
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
    translation_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    noise_hu: float = 10.0,
    seed: int = 0,
) -> ds.Volume:
    """CT (HU) of an analytic torso on a grid centred on the LPS origin.

    The anatomy is moved by ``T(p) = R p + t`` (rotation about the grid centre, the
    origin): the returned image at ``q`` shows the anatomy's point ``R^T (q - t)``, so a
    registration of this image (moving) to the unmoved one (fixed) should find ``T``
    in ITK's fixed-to-moving convention.
    """
    n = np.asarray(shape)
    origin = -(n - 1) / 2.0 * spacing_mm
    vol = ds.Volume.from_spacing(np.zeros(shape), (spacing_mm,) * 3, origin_mm=tuple(origin))
    idx = np.stack(np.indices(shape), axis=-1).reshape(-1, 3)
    q = vol.index_to_world(idx)
    r = rotation_matrix(rotation_deg)
    p = (q - np.asarray(translation_mm)) @ r  # rows: R^T (q - t)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    hu = np.full(x.shape, -1000.0)
    body = (x / 46) ** 2 + (y / 56) ** 2 + (z / 68) ** 2 <= 1
    hu[body] = -90.0  # fat
    muscle = (x / 40) ** 2 + (y / 50) ** 2 + (z / 62) ** 2 <= 1
    hu[muscle] = 40.0
    lung_l = ((x - 18) / 14) ** 2 + ((y + 12) / 18) ** 2 + ((z - 25) / 28) ** 2 <= 1
    lung_r = ((x + 17) / 13) ** 2 + ((y + 8) / 16) ** 2 + ((z - 22) / 24) ** 2 <= 1
    hu[lung_l | lung_r] = -780.0
    spine = ((x - 2) ** 2 + (y - 34) ** 2 <= 8**2) & (np.abs(z) < 58)
    hu[spine] = 700.0
    liver = ((x + 18) / 16) ** 2 + ((y + 6) / 20) ** 2 + ((z + 22) / 14) ** 2 <= 1
    hu[liver] = 60.0
    kidney = ((x - 22) / 6) ** 2 + ((y - 22) / 8) ** 2 + ((z + 35) / 12) ** 2 <= 1
    hu[kidney] = 30.0
    if noise_hu > 0:
        hu = hu + np.random.default_rng(seed).normal(0.0, noise_hu, hu.shape)
    return vol.with_array(hu.reshape(shape), unit="HU")


@pytest.fixture(scope="session")
def make_ct() -> Callable[..., ds.Volume]:
    return torso_ct
