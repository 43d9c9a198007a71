"""patient_dose in homogeneous soft tissue against the kernel library and Lanconelli 2012.

One source voxel (4.42 mm, a voxel size of the Lanconelli 2012 database) in a cube of 21^3
voxels of ICRU tissue at 1.04 g/mL (the default medium). The voxel S-values scored by the
Monte Carlo are averaged over the symmetric equivalents of each offset and compared with
``dosimetry.vsv_kernel`` (the dose-point-kernel library, same physics, another route:
radial kernels folded and integrated over voxels) and with the published Monte Carlo voxel
S-values of Lanconelli et al. Phys Med Biol 2012;57:517-533 (tests/data copy through
``dosimetry.kernels.lanconelli_kernel``).

Like with like (docs/kernels.md): the database's source terms lack ICRP-107's conversion
and Auger electrons, so for Lu-177 the run compared with it leaves them out
(``exclude=("ce_auger",)``); Y-90 has none to speak of (0.2 keV per decay).

Criteria, stated before the comparison: library: self voxel 3 %, neighbours above 1e-3 of
the self value 5 % (as tests/kernels/test_direct_vsv.py). Lanconelli: self 3 %,
neighbours 7 % (as docs/kernels.md), except the Lu-177 self voxel: 5 %, because the
database deposits ~4.5 keV per decay more than ICRP-107's beta spectrum in its source
voxel (documented, docs/kernels.md: the library is 3.1-3.9 % low there too). Each widened
by 3 standard deviations of the run.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.kernels import lanconelli_kernel
from dosimetry.mc import patient_dose

VOXEL_MM = 4.42
N = 21
OFFSETS = ((0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1), (0, 0, 2))


def _equivalents(off):
    out = set()
    for perm in itertools.permutations(off):
        for signs in itertools.product((1, -1), repeat=3):
            out.add(tuple(s * q for s, q in zip(signs, perm, strict=True)))
    return sorted(out)


def _svalues(dose, sd, c, decays):
    """Gy per decay and its sd per offset, averaged over the offset's equivalents."""
    out = {}
    for off in OFFSETS:
        idx = tuple(np.array([c + e[a] for e in _equivalents(off)]) for a in range(3))
        k = len(idx[0])
        out[off] = (
            float(dose[idx].mean()) / decays,
            float(np.sqrt(np.sum(sd[idx] ** 2))) / k / decays,
        )
    return out


def _run(nuclide, histories, exclude=()):
    tia = np.zeros((N, N, N))
    c = N // 2
    tia[c, c, c] = 1e6
    r = patient_dose(
        ds.Volume.from_spacing(tia, (VOXEL_MM,) * 3, unit="Bq s"),
        nuclide,
        histories=histories,
        batches=10,
        seed=2,
        exclude=exclude,
    )
    assert r.provenance["media"] == {1: "ICRUTISSUE521ICRU"}
    return _svalues(r.dose.array, r.uncertainty.array, c, 1e6)


def _check(mc, ref, tol_self, tol_nb, floor=1e-3):
    c = ref.shape[0] // 2
    self_ref = ref[c, c, c]
    checked = []
    for off, (val, sd) in mc.items():
        r = ref[c + off[0], c + off[1], c + off[2]]
        if off != (0, 0, 0) and r < floor * self_ref:
            continue
        tol = tol_self if off == (0, 0, 0) else tol_nb
        assert abs(val / r - 1) <= tol + 3 * sd / val, (off, val / r - 1, sd / val)
        checked.append(off)
    return checked


@pytest.fixture(scope="module")
def lu177():
    return _run("Lu-177", 200_000)


@pytest.fixture(scope="module")
def y90():
    return _run("Y-90", 30_000)


@pytest.mark.validation
def test_lu177_matches_the_kernel_library(lu177):
    k = ds.vsv_kernel("Lu-177", VOXEL_MM, medium="soft tissue").array
    assert len(_check(lu177, k, 0.03, 0.05)) >= 2


@pytest.mark.validation
def test_y90_matches_the_kernel_library(y90):
    k = ds.vsv_kernel("Y-90", VOXEL_MM, medium="soft tissue").array
    assert len(_check(y90, k, 0.03, 0.05)) >= 4


@pytest.mark.validation
def test_y90_matches_lanconelli(y90):
    ref = lanconelli_kernel("Y-90", VOXEL_MM).array
    assert len(_check(y90, ref, 0.03, 0.07)) >= 4


@pytest.mark.validation
def test_lu177_without_conversion_electrons_matches_lanconelli():
    mc = _run("Lu-177", 200_000, exclude=("ce_auger",))
    ref = lanconelli_kernel("Lu-177", VOXEL_MM).array
    assert len(_check(mc, ref, 0.05, 0.07)) >= 2
