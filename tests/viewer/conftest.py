"""Viewer tests run headless: the Agg backend, small volumes, no display."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import dosimetry as ds  # noqa: E402

# axial DICOM: slice axis +S, rows +P, columns +L (LPS)
AXIAL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def small_case(shape=(9, 10, 12), direction=AXIAL, spacing=(3.0, 2.0, 2.5)):
    """A dose map with a hot spot, a CT and two VOIs on one small grid."""
    k, j, i = np.indices(shape, dtype=float)
    centre = (np.array(shape) - 1) / 2.0
    r2 = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2
    dose = ds.Volume.from_spacing(
        20.0 * np.exp(-r2 / 8.0),
        spacing,
        origin_mm=(-10.0, 5.0, 30.0),
        direction=direction,
        unit="Gy",
    )
    ct = dose.with_array(np.where(r2 < 20.0, 40.0, -800.0), unit="HU")
    masks = {
        "tumour": dose.with_array(r2 <= 4.0, unit="1"),
        "shell": dose.with_array((r2 > 4.0) & (r2 <= 12.0), unit="1"),
    }
    return dose, ct, masks


@pytest.fixture
def case():
    return small_case()
