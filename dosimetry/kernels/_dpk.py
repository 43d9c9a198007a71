"""Dose-point kernels: the monoenergetic basis and its folding with nuclide spectra."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

__all__ = [
    "estar_water",
    "csda_range_cm",
    "xcom_water",
    "photon_mu_per_cm",
    "cumulative_energy_mev",
    "Medium",
    "MEDIA",
    "medium_basis",
    "fit_range_scaling",
    "range_scaling",
    "range_scaling_table",
]


@cache
def estar_water() -> tuple[np.ndarray, np.ndarray]:
    """ESTAR liquid-water table: kinetic energy (MeV) and CSDA range (g/cm2).

    References
    ----------
    Berger MJ, Coursey JS, Zucker MA, Chang J. ESTAR: stopping-power and range tables for
    electrons. NIST Standard Reference Database 124 (public domain).
    """
    text = resources.files("dosimetry.kernels").joinpath("data/estar_water_liquid.csv")
    lines = [ln for ln in io.StringIO(text.read_text("utf-8")) if not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    e = np.array([float(r["kinetic_energy_MeV"]) for r in rows])
    r = np.array([float(r["csda_range_g_cm2"]) for r in rows])
    e.setflags(write=False)
    r.setflags(write=False)
    return e, r


def csda_range_cm(energy_mev: float | np.ndarray, density_g_per_ml: float = 1.0) -> np.ndarray:
    """CSDA range of electrons in water (cm), log-log interpolation of ESTAR.

    Below the table's first energy (10 keV) the range is extrapolated as E^1.75 (the local
    slope of the table there); above its last energy, log-log linearly.

    >>> float(np.round(csda_range_cm(1.0), 4))
    0.4367
    """
    e_tab, r_tab = estar_water()
    e = np.asarray(energy_mev, dtype=float)
    le, lr = np.log(e_tab), np.log(r_tab)
    x = np.log(np.maximum(e, 1e-6))
    slope_lo = (lr[1] - lr[0]) / (le[1] - le[0])
    slope_hi = (lr[-1] - lr[-2]) / (le[-1] - le[-2])
    y = np.interp(x, le, lr)
    y = np.where(x < le[0], lr[0] + slope_lo * (x - le[0]), y)
    y = np.where(x > le[-1], lr[-1] + slope_hi * (x - le[-1]), y)
    return np.exp(y) / density_g_per_ml


@cache
def xcom_water() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NIST XCOM liquid water: photon energy (MeV), mu/rho and mu_en/rho (cm2/g).

    References
    ----------
    Hubbell JH, Seltzer SM. Tables of X-ray mass attenuation coefficients and mass
    energy-absorption coefficients. NIST Standard Reference Database 126 (public domain).
    """
    text = resources.files("dosimetry.kernels").joinpath("data/xcom_water_liquid.csv")
    lines = [ln for ln in io.StringIO(text.read_text("utf-8")) if not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    out = tuple(
        np.array([float(r[k]) for r in rows])
        for k in ("energy_MeV", "mu_over_rho_cm2_per_g", "mu_en_over_rho_cm2_per_g")
    )
    for a in out:
        a.setflags(write=False)
    return out[0], out[1], out[2]


def photon_mu_per_cm(energy_mev: float) -> tuple[float, float]:
    """Linear attenuation and energy-absorption coefficients of water (1/cm), log-log
    interpolation of XCOM (1 keV - 20 MeV).

    >>> [round(v, 4) for v in photon_mu_per_cm(0.1)]
    [0.1707, 0.0255]
    """
    e, mu, mu_en = xcom_water()
    x = np.log(float(energy_mev))
    le = np.log(e)
    return (
        float(np.exp(np.interp(x, le, np.log(mu)))),
        float(np.exp(np.interp(x, le, np.log(mu_en)))),
    )


# ---------------------------------------------------------------------------------------
# the shipped monoenergetic basis
# ---------------------------------------------------------------------------------------

#: v2: the 68 Monte Carlo runs of v1 (same seeds) + 25 photon energies at the midpoints of
#: the v1 photon grid (build.SETTINGS), converted to spherical shells with energy uniform in
#: radius inside each shell (v1 assumed uniform density, which put 13 % too much energy in
#: the innermost shell; see docs/kernels.md)
BASIS_VERSION = "dpk_ompmc_v2"
#: below these energies the emission is a point term (electrons: range < 3 um; photons
#: below the XCOM table)
E_MIN_MEV = {"electron": 0.012, "positron": 0.015, "photon": 0.001}
ANNIHILATION_MEV = 0.51099895  # electron rest energy (CODATA 2018)


@cache
def basis() -> dict[str, np.ndarray]:
    """Arrays of ``data/<BASIS_VERSION>/basis.npz`` (see its manifest.json), read-only."""
    path = resources.files("dosimetry.kernels").joinpath(f"data/{BASIS_VERSION}/basis.npz")
    with path.open("rb") as fh, np.load(fh) as z:
        out = {k: np.array(z[k]) for k in z.files}
    # cumulative energy (MeV) inside each shell edge, starting at 0
    # photons at or below PCUT are absorbed on the spot by the transport code: those runs
    # are not kernels; lower energies are extrapolated from the first transported one
    pcut = float(basis_manifest()["settings"]["pcut_mev"])  # type: ignore[index]
    _add_cumulative(out, pcut)
    # positrons: take out the two 511 keV photons (added back from the photon basis so
    # that they are not range-scaled with the positron)
    g = _photon_cum(ANNIHILATION_MEV, out["positron_edges_cm"], out)
    out["positron_cum_mev"] = out["positron_cum_mev"] - 2.0 * g
    for v in out.values():
        v.setflags(write=False)
    return out


def _add_cumulative(out: dict[str, np.ndarray], pcut: float) -> None:
    """Drop photon runs at or below PCUT (absorbed on the spot: not kernels) and add the
    cumulative energy inside each shell edge, ``<p>_cum_mev`` (starting at 0)."""
    if "photon_energy_mev" in out:
        keep = out["photon_energy_mev"] > pcut * (1 + 1e-9)
        for k in [k for k in out if k.startswith("photon_")]:
            out[k] = out[k][keep]
    for p in ("electron", "positron", "photon"):
        if f"{p}_shell_mev" not in out:
            continue
        shells = out[f"{p}_shell_mev"]
        out[f"{p}_cum_mev"] = np.concatenate(
            [np.zeros((shells.shape[0], 1)), np.cumsum(shells, axis=1)], axis=1
        )


@cache
def basis_manifest() -> dict[str, object]:
    import json

    path = resources.files("dosimetry.kernels").joinpath(f"data/{BASIS_VERSION}/manifest.json")
    return dict(json.loads(path.read_text("utf-8")))


def _bracket(grid: np.ndarray, e: float) -> tuple[int, int, float]:
    """Indices i, j and log-weight t of e between grid[i] and grid[j] (clamped)."""
    if e <= grid[0]:
        return 0, 0, 0.0
    if e >= grid[-1]:
        n = len(grid) - 1
        return n, n, 0.0
    j = int(np.searchsorted(grid, e))
    i = j - 1
    t = float(np.log(e / grid[i]) / np.log(grid[j] / grid[i]))
    return i, j, t


def _photon_cum(
    e: float, r_cm: np.ndarray, b: dict[str, np.ndarray] | None = None, density: float = 1.0
) -> np.ndarray:
    """Photon DPK at energy e between basis energies (see :func:`cumulative_energy_mev`).

    ``b`` is a basis (default: water's) and ``density`` its medium's density (g/cm3):
    the interpolation uses water's attenuation coefficients x density (only their ratios
    between neighbouring energies matter, apart from the unscattered share exp(-mu r)).
    """
    b = b if b is not None else basis()
    grid = b["photon_energy_mev"]
    i, j, t = _bracket(grid, e)
    r = np.asarray(r_cm, dtype=float)
    mu, mu_en = photon_mu_per_cm(e)
    x = r * mu * density  # radius in mean free paths at e (water-like attenuation per g)
    near = np.zeros(r.shape)
    far = np.zeros(r.shape)
    for k, w in ((i, 1.0 - t), (j, t)):
        if w == 0.0:
            continue
        mu_k, mu_en_k = photon_mu_per_cm(float(grid[k]))
        frac = np.interp(
            x / (mu_k * density), b["photon_edges_cm"][k], b["photon_cum_mev"][k] / grid[k]
        )
        far += w * frac
        near += w * frac * (mu_k / mu_en_k)
    near *= mu_en / mu
    primary = np.exp(-x)
    return e * (primary * near + (1.0 - primary) * far)


def _water_cumulative(particle: str, e: float, r: np.ndarray) -> np.ndarray:
    """:func:`cumulative_energy_mev` in water; positrons without annihilation photons."""
    b = basis()
    if e < E_MIN_MEV[particle]:
        return np.full(r.shape, e)
    if particle == "photon":
        return _photon_cum(e, r)
    grid = b[f"{particle}_energy_mev"]
    i, j, t = _bracket(grid, e)
    r_e = float(csda_range_cm(e))
    out = np.zeros(r.shape)
    for k, w in ((i, 1.0 - t), (j, t)):
        if w == 0.0:
            continue
        frac = b[f"{particle}_cum_mev"][k] / grid[k]
        r_k = float(csda_range_cm(grid[k]))
        out = out + w * np.interp(r * (r_k / r_e), b[f"{particle}_edges_cm"][k], frac)
    return out * e


def cumulative_energy_mev(
    particle: str, energy_mev: float, r_cm: np.ndarray, medium: str = "water"
) -> np.ndarray:
    """Energy (MeV) absorbed within radius ``r_cm`` (cm in ``medium``) of an isotropic
    point source of one particle of ``energy_mev`` in an infinite ``medium``.

    In water, electrons and positrons are interpolated between basis energies at equal
    scaled radius r / R_CSDA(E) and linearly in log E (the absorbed-energy fraction).
    Photons are interpolated linearly in log E at equal radius in mean free paths,
    mu(E) r; near the source, where the energy absorbed is that of first interactions
    (~ mu_en r), the fractions are compared per unit mu_en/mu, blending to the plain
    fractions with the unscattered share exp(-mu r). Below the basis' lowest energy
    electrons deposit all energy at r = 0 (point term); photons below the first
    transported energy are scaled from it in mu r. Above the highest energy (4 MeV) the
    top kernel is scaled. Positrons include their two 511 keV annihilation photons.

    Other media (:data:`MEDIA`): electron and positron distances are scaled to water by
    rho x s(E) (:func:`range_scaling`); photons (annihilation photons included) come
    from the medium's own Monte Carlo photon basis where it has one (bone), else from
    water's at distances x rho (same composition per gram: soft tissue, lung).

    Measured interpolation and scaling errors against direct runs: docs/kernels.md,
    tests/kernels/test_interpolation.py and tests/kernels/test_media.py.
    """
    r = np.asarray(r_cm, dtype=float)
    e = float(energy_mev)
    if particle not in E_MIN_MEV:
        raise ValueError(f"particle must be electron, positron or photon, got {particle!r}")
    med = MEDIA.get(medium)
    if med is None:
        raise ValueError(f"medium must be one of {', '.join(MEDIA)}, got {medium!r}")
    if particle == "photon":
        return _medium_photon_cum(e, r, med)
    s = range_scaling(medium, e)
    out = _water_cumulative(particle, e, r * (med.density * s))
    if particle == "positron":
        out = out + 2.0 * _medium_photon_cum(ANNIHILATION_MEV, r, med)
    return out


def _medium_photon_cum(e: float, r: np.ndarray, med: Medium) -> np.ndarray:
    if e < E_MIN_MEV["photon"]:
        return np.full(r.shape, e)
    if med.photon_basis is None:
        return _photon_cum(e, r * med.density)
    return _photon_cum(e, r, medium_basis(med.photon_basis), density=med.density)


# ---------------------------------------------------------------------------------------
# media
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Medium:
    """An infinite homogeneous medium of the kernel library.

    ``range_scaling``: a constant s (CSDA range in water / in the medium, both in g/cm2),
    or None for s(E) measured from the Monte Carlo electron runs of ``scaling_basis``
    (:func:`range_scaling_table`). ``photon_basis``: run set with the medium's own photon
    kernels, or None (water's photon kernels at distances x density).
    """

    name: str
    density: float
    citation: str
    range_scaling: float | None = 1.0
    scaling_basis: str | None = None
    photon_basis: str | None = None


#: kernel-library media. Bone and lung: the compositions bundled with ompmc's PEGS data
#: (ICRPBONE521ICRU, cortical bone of ICRP Publication 23 at 1.85 g/cm3; LUNG521ICRU,
#: ICRU Report 44 lung, inflated, 0.26 g/cm3), Monte Carlo run sets built by
#: ``python -m dosimetry.kernels.build run --medium bone|lung`` (docs/kernels.md).
MEDIA: dict[str, Medium] = {
    "water": Medium("water", 1.0, "liquid water, 1.000 g/cm3 (NIST ESTAR)"),
    "soft tissue": Medium(
        "soft tissue",
        1.04,
        "ICRP soft tissue 1.04 g/cm3 (ICRP Publication 23); CSDA range ratio water/tissue "
        "0.9905 in g/cm2 (NIST ESTAR: water 0.4367, ICRU soft tissue 0.4409 g/cm2 at 1 MeV)",
        range_scaling=0.9905,
    ),
    "bone": Medium(
        "bone",
        1.85,
        "cortical bone (ICRP Publication 23), 1.85 g/cm3, as bundled with ompmc "
        "(PEGS medium ICRPBONE521ICRU); photon kernels and electron range scaling s(E) "
        "from this project's ompmc runs in that medium",
        range_scaling=None,
        scaling_basis="dpk_ompmc_bone_v1",
        photon_basis="dpk_ompmc_bone_v1",
    ),
    "lung": Medium(
        "lung",
        0.26,
        "inflated lung (ICRU Report 44), 0.26 g/cm3, as bundled with ompmc (PEGS medium "
        "LUNG521ICRU); electron range scaling s(E) from this project's ompmc runs in that "
        "medium; photons: water kernels scaled by density (checked against lung runs)",
        range_scaling=None,
        scaling_basis="dpk_ompmc_lung_v1",
    ),
}


@cache
def medium_basis(run_set: str) -> dict[str, np.ndarray]:
    """Arrays of the packed run set ``data/<run_set>/basis.npz`` (read-only), with the
    cumulative energies added as in :func:`basis` (positrons keep their annihilation
    photons: these runs check the scaling, they are not folded)."""
    import json

    root = resources.files("dosimetry.kernels").joinpath(f"data/{run_set}")
    with root.joinpath("basis.npz").open("rb") as fh, np.load(fh) as z:
        out = {k: np.array(z[k]) for k in z.files}
    settings = json.loads(root.joinpath("manifest.json").read_text("utf-8"))["settings"]
    _add_cumulative(out, float(settings["pcut_mev"]))
    out["density_g_per_cm3"] = np.asarray(float(settings["density_g_per_cm3"]))
    for v in out.values():
        v.setflags(write=False)
    return out


#: cumulative-fraction window over which s(E) is fitted (energy absorbed within r between
#: 5 % and 90 % of the particle's energy: the electron range part, not the
#: bremsstrahlung tail or the unresolved innermost bins)
_FIT_WINDOW = (0.05, 0.90)


def fit_range_scaling(
    edges_cm: np.ndarray, cum_frac: np.ndarray, density: float, energy_mev: float
) -> float:
    """Scale s (0.7-1.3) for which water's electron kernel at ``energy_mev`` at distances
    r x density x s best matches ``cum_frac`` (absorbed fraction within ``edges_cm`` in
    the medium), least squares over the window ``_FIT_WINDOW``."""
    from scipy.optimize import minimize_scalar

    sel = (cum_frac > _FIT_WINDOW[0]) & (cum_frac < _FIT_WINDOW[1])
    r = np.asarray(edges_cm, dtype=float)[sel]
    target = np.asarray(cum_frac, dtype=float)[sel]

    def err(s: float) -> float:
        model = _water_cumulative("electron", energy_mev, r * density * s) / energy_mev
        return float(np.sum((model - target) ** 2))

    res = minimize_scalar(err, bounds=(0.7, 1.3), method="bounded", options={"xatol": 1e-6})
    return float(res.x)


@cache
def range_scaling_table(medium: str) -> tuple[np.ndarray, np.ndarray]:
    """Energies (MeV) and measured range-scaling factors s(E) of a medium whose
    :attr:`Medium.range_scaling` is None: for each Monte Carlo electron run in the medium,
    the s of :func:`fit_range_scaling`."""
    med = MEDIA[medium]
    if med.scaling_basis is None:
        raise ValueError(f"{medium} has a constant range scaling")
    b = medium_basis(med.scaling_basis)
    rho = float(b["density_g_per_cm3"])
    energies = np.asarray(b["electron_energy_mev"], dtype=float)
    s = np.array(
        [
            fit_range_scaling(b["electron_edges_cm"][k], b["electron_cum_mev"][k] / e, rho, e)
            for k, e in enumerate(energies)
        ]
    )
    energies.setflags(write=False)
    s.setflags(write=False)
    return energies, s


def range_scaling(medium: str, energy_mev: float) -> float:
    """Electron range-scaling factor s of ``medium`` at ``energy_mev``: distances in the
    medium x density x s = water distances. Constant for water and soft tissue; for bone
    and lung interpolated linearly in log E between the measured values
    (:func:`range_scaling_table`), constant beyond the first and last."""
    med = MEDIA[medium]
    if med.range_scaling is not None:
        return med.range_scaling
    e_tab, s_tab = range_scaling_table(medium)
    return float(np.interp(np.log(max(energy_mev, 1e-6)), np.log(e_tab), s_tab))
