"""CT: HU volume and HU -> density calibration."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry import Volume
from dosimetry.errors import InputDataError, UnitError
from dosimetry.io import hu_to_density, load_study
from dosimetry.io.ct import load_hu_density_curve

# Schneider, Bortfeld & Schlegel, Phys Med Biol 2000;45:459 as tabulated in the GATE /
# Geant4 DICOM examples: (HU, g/cm3) break points.
SCHNEIDER_2000 = [
    (-1000, 0.00121),
    (-98, 0.93),
    (-97, 0.930486),
    (14, 1.03),
    (23, 1.031),
    (100, 1.1199),
    (101, 1.0762),
    (1600, 1.9642),
    (3000, 2.8),
]


def test_default_curve_is_the_published_table():
    hu, rho = load_hu_density_curve()
    assert list(zip(hu.tolist(), rho.tolist(), strict=True)) == [
        (float(h), r) for h, r in SCHNEIDER_2000
    ]


def test_density_at_and_between_break_points(ct5n_folder):
    h = np.array([h for h, _ in SCHNEIDER_2000], dtype=float)
    np.testing.assert_allclose(hu_to_density(h), [r for _, r in SCHNEIDER_2000], rtol=1e-12)
    # midway between 14 HU (1.03) and 23 HU (1.031); held constant outside the table
    np.testing.assert_allclose(
        hu_to_density(np.array([18.5, -3000.0, 5000.0])), [1.0305, 0.00121, 2.8], rtol=1e-12
    )
    ct = load_study(ct5n_folder).ct()
    rho = ct.density()
    assert rho.unit == "g/mL" and rho.same_grid(ct.volume)
    np.testing.assert_allclose(
        rho.array,
        np.interp(ct.volume.array.astype(float), *zip(*SCHNEIDER_2000, strict=True)),
        rtol=1e-12,
    )
    assert rho.provenance["hu_to_density"]["curve"] == "schneider2000"


def test_user_curves(tmp_path):
    hu = Volume.from_spacing(np.array([[[-1000.0, 0.0, 1000.0]]]), (1, 1, 1), unit="HU")
    lin = hu_to_density(hu, curve=([-1000, 1000], [0.0, 2.0]))
    np.testing.assert_allclose(lin.array, [[[0.0, 1.0, 2.0]]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        hu_to_density(hu, curve={-1000: 0.0, 1000: 2.0}).array, lin.array, atol=1e-15
    )
    csv = tmp_path / "curve.csv"
    csv.write_text("# my scanner, 120 kVp\nhu,density_g_per_ml\n-1000,0.0\n1000,2.0\n")
    np.testing.assert_allclose(hu_to_density(hu, curve=csv).array, lin.array, atol=1e-15)
    with pytest.raises(InputDataError, match="strictly increase"):
        hu_to_density(hu, curve=([0, -10], [1.0, 0.9]))
    with pytest.raises(InputDataError, match="no packaged"):
        hu_to_density(hu, curve="nosuchcurve")
    with pytest.raises(UnitError):
        hu_to_density(hu.with_array(hu.array, unit="Bq/mL"))
    with pytest.raises(InputDataError, match="NaN"):
        hu_to_density(np.array([np.nan]))
