"""What every ompmc run of the project shares: physics settings, media, emission tables,
decay-particle sampling and the IAEA phase-space writer.

Used by the patient Monte Carlo (:mod:`dosimetry.mc.patient`) and the offline kernel-basis
builder (:mod:`dosimetry.kernels.build`). Nothing here imports ``ompmc`` at import time:
:func:`import_ompmc` does, through the one optional-dependency helper, where a run starts.

The particles of a source are written as an IAEA phase-space file (one particle per
history, ``ompmc.calc_forward_phsp`` with ``order="replay"``): every record starts a new
history (negative energy), the sign of the particle type carries the sign of the third
direction cosine, and all coordinates are stored.

References
----------
Doerner E. ompMC: OpenMP parallel Monte Carlo photon and electron transport (an EGSnrc
re-implementation), https://github.com/e0404/ompMC (GPL-3.0).

Kawrakow I, Mainegra-Hing E, Rogers DWO, Tessier F, Walters BRB. The EGSnrc code system:
Monte Carlo simulation of electron and photon transport. NRCC Report PIRS-701.

Capote R, Jeraj R, Ma CM, et al. Phase-space database for external beam radiotherapy.
IAEA Report INDC(NDS)-0484 (2006): the IAEA phase-space format.

ICRP, 2008. Nuclear Decay Data for Dosimetric Calculations. ICRP Publication 107.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .._optional import import_optional_dependency
from ..errors import NuclideError

__all__ = [
    "MC_FEATURE",
    "TRANSPORT",
    "TRANSPORT_CUT_MEV",
    "OMPMC_MEDIA",
    "PHSP_DTYPE",
    "DIRECT_LOCAL_BELOW_MEV",
    "DecaySource",
    "decay_source",
    "emission_table",
    "import_ompmc",
    "isotropic_directions",
    "physics_settings",
    "sample_decay_particles",
    "sample_emissions",
    "sample_linear_pdf",
    "write_phsp_records",
]

#: what the optional-dependency error names as the feature that needs ompmc
MC_FEATURE = "Monte Carlo transport (method='mc', dosimetry.mc, the kernel-basis builder)"

#: Transport settings shared by every run of the project (the kernel basis' physics,
#: measured to matter in docs/kernels.md): PEGS data ``521icru`` (ICRU Report 37 stopping
#: powers as bundled with ompmc), ECUT 0.521 MeV total energy (10 keV kinetic), PCUT
#: 0.01 MeV, no photon splitting. ``esave_mev`` is EGSnrc's range-rejection threshold
#: (total energy, MeV): an electron below it whose residual CSDA range is shorter than the
#: distance to the nearest voxel boundary deposits its energy on the spot. Only the
#: bremsstrahlung such an electron would still have emitted is lost (radiative yield of a
#: 2 MeV electron in water 0.9 %, ESTAR); 20 MeV total applies it to every electron. The
#: patient Monte Carlo uses it by default (``range_rejection=True``) and is validated
#: against full transport (docs/dose.md); the kernel basis does not.
TRANSPORT: dict[str, Any] = {
    "pegs": "521icru",
    "ecut_total_mev": 0.521,
    "pcut_mev": 0.01,
    "n_split": 1,
    "esave_mev": 20.0,
}

#: kinetic energy (MeV) below which an emitted electron or photon is deposited where it is
#: born instead of being transported: the transport cut-offs (ECUT 0.521 MeV total = 10 keV
#: kinetic, PCUT 0.01 MeV); the transport would deposit it on the spot anyway
TRANSPORT_CUT_MEV = 0.010
#: the kernel builder's name for :data:`TRANSPORT_CUT_MEV` (direct voxel runs)
DIRECT_LOCAL_BELOW_MEV = TRANSPORT_CUT_MEV

#: ompmc media (PEGS ``521icru``) of the kernel library's tissue bases and its direct
#: checks: name -> (PEGS medium, density g/cm3). The PEGS compositions are ICRU Report 44 /
#: ICRP 23 data as bundled with ompmc (cortical bone 1.85 g/cm3, inflated lung 0.26 g/cm3,
#: ICRU four-component tissue, scored here at ICRP soft tissue's 1.04 g/cm3). The patient
#: Monte Carlo's media (with air) are in ``dosimetry/data/mc_media.csv``
#: (:mod:`dosimetry.mc.materials`).
OMPMC_MEDIA: dict[str, tuple[str, float]] = {
    "water": ("H2O521ICRU", 1.0),
    "soft tissue": ("ICRUTISSUE521ICRU", 1.04),
    "bone": ("ICRPBONE521ICRU", 1.85),
    "lung": ("LUNG521ICRU", 0.26),
}

#: ompmc / EGSnrc particle codes of the IAEA phase-space format
PHOTON, ELECTRON, POSITRON = 1, 2, 3

#: phase-space record of the IAEA format as the project writes it (all coordinates stored)
PHSP_DTYPE = np.dtype(
    [
        ("type", "i1"),
        ("e", "<f4"),
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("u", "<f4"),
        ("v", "<f4"),
        ("wt", "<f4"),
    ]
)


def import_ompmc() -> ModuleType:
    """The ``ompmc`` module, or an :class:`~dosimetry._optional.OptionalDependencyError`
    that says how to install it (``pip install 'dosimetry[mc]'``)."""
    return import_optional_dependency("ompmc", MC_FEATURE, "mc")


def physics_settings(
    s: dict[str, Any], seeds: tuple[int, int], folder: str, esave_mev: float | None = None
) -> Any:
    """``ompmc.Physics`` with the transport settings of ``s`` (keys ``pegs``,
    ``ecut_total_mev``, ``pcut_mev``, ``n_split``: :data:`TRANSPORT` or the kernel
    basis' run set), the two RNG seeds and the range-rejection threshold ``esave_mev``
    (total energy; ``None``: off); ompmc writes its scratch files to ``folder``."""
    ompmc = import_ompmc()
    return ompmc.Physics(
        pegs_file=ompmc.data_path() / "pegs4" / f"{s['pegs']}.pegs4dat",
        global_ecut=float(s["ecut_total_mev"]),
        global_pcut=float(s["pcut_mev"]),
        n_split=int(s["n_split"]),
        seeds=seeds,
        output_folder=os.path.join(folder, ""),
        esave=None if esave_mev is None else float(esave_mev),
    )


# ----------------------------------------------------------------------------- emissions
def emission_table(name: str) -> dict[str, Any]:
    """ICRP-107 emissions of ``name`` as particles to sample for a Monte Carlo run.

    Returns
    -------
    dict
        ``nuclide``; the beta spectrum ``beta_e_mev`` / ``beta_pdf`` (``None`` without
        beta decay) scaled so that ``beta_per_decay`` particles carry ICRP-107's beta
        energy per decay ``beta_energy_per_decay_mev`` (as the kernel library folds it);
        ``beta_code`` (2 electrons, 3 positrons, ``None``); the discrete ``lines``
        ``(energy MeV, yield per decay, particle code, ICRP-107 class)`` of conversion and
        Auger electrons, gamma and X rays (annihilation photons only for nuclides without
        positrons, whose annihilation the transport produces itself);
        ``alpha_energy_per_decay_mev`` (alpha particles and recoils, deposited locally) and
        ``total_energy_per_decay_mev`` (every ICRP-107 class).

    Raises
    ------
    NuclideError
        Neutron, fission or delayed-beta emitters; nuclides that emit both beta- and beta+
        (ICRP-107 gives one spectrum for both, so their particles cannot be told apart);
        beta emission without a spectrum.
    """
    from ..nuclides import nuclide

    nuc = nuclide(name)
    for cls in ("neutron", "fission", "betaD"):
        if nuc.lines(cls).size:
            raise NuclideError(
                f"{nuc.name} emits {cls} radiation, which ompmc does not transport; "
                "Monte Carlo dose is available for beta, gamma, X-ray, conversion/Auger "
                "electron and alpha emitters only"
            )
    has_minus, has_plus = bool(nuc.lines("beta-").size), bool(nuc.lines("beta+").size)
    if has_minus and has_plus:
        raise NuclideError(
            f"{nuc.name} emits both beta- and beta+ but ICRP-107 gives one beta spectrum "
            "for both: its electrons and positrons cannot be sampled apart. Use a kernel "
            "method for this nuclide."
        )
    beta_cls = "beta-" if has_minus else ("beta+" if has_plus else None)
    e: np.ndarray | None = None
    p: np.ndarray | None = None
    n_beta = e_beta = 0.0
    if beta_cls is not None:
        if nuc.beta_spectrum is None:
            raise NuclideError(f"{nuc.name} emits {beta_cls} but ICRP-107 has no spectrum")
        e_beta = nuc.energy_per_decay_mev(beta_cls)
        spec = np.asarray(nuc.beta_spectrum, dtype=float)
        e, p = spec[:, 0], np.clip(spec[:, 1], 0.0, None)
        # particles per decay: the spectrum's shape scaled to ICRP-107's energy per decay
        n_per_mev = float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(e)))
        e_per_mev = float(np.sum(0.5 * (p[1:] * e[1:] + p[:-1] * e[:-1]) * np.diff(e)))
        n_beta = n_per_mev * e_beta / e_per_mev
    classes = [("IE", ELECTRON), ("auger", ELECTRON), ("gamma", PHOTON), ("X", PHOTON)]
    if not has_plus:
        classes.append(("annihilation", PHOTON))
    lines = []
    for cls, code in classes:
        for en, y in nuc.lines(cls):
            if y > 0:
                lines.append((float(en), float(y), code, cls))
    return {
        "nuclide": nuc.name,
        "beta_e_mev": e,
        "beta_pdf": p,
        "beta_per_decay": n_beta,
        "beta_energy_per_decay_mev": e_beta,
        "beta_code": None if beta_cls is None else (ELECTRON if has_minus else POSITRON),
        "lines": lines,
        "alpha_energy_per_decay_mev": nuc.energy_per_decay_mev("alpha+recoil"),
        "total_energy_per_decay_mev": nuc.energy_per_decay_mev("total"),
    }


def sample_linear_pdf(
    rng: np.random.Generator, e: np.ndarray, p: np.ndarray, n: int, u01: np.ndarray | None = None
) -> np.ndarray:
    """Energies drawn from a piecewise-linear density tabulated at ``e`` (exact inversion;
    ``u01``: the uniform numbers in [0, 1) to invert, default drawn from ``rng``)."""
    de = np.diff(e)
    area = 0.5 * (p[1:] + p[:-1]) * de
    cdf = np.concatenate([[0.0], np.cumsum(area)])
    u = rng.uniform(0.0, cdf[-1], n) if u01 is None else np.asarray(u01) * cdf[-1]
    k = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, de.size - 1)
    a = u - cdf[k]  # area still to cover inside bin k
    p0 = p[k]
    slope = (p[k + 1] - p0) / de[k]
    # solve p0 t + slope t^2 / 2 = a for t in [0, de]
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = np.sqrt(np.maximum(p0 * p0 + 2.0 * slope * a, 0.0))
        t_quad = np.where(np.abs(slope) > 1e-12 * np.maximum(p0, 1e-300), (disc - p0) / slope, 0.0)
        t_lin = np.where(p0 > 0, a / np.where(p0 > 0, p0, 1.0), 0.0)
    t = np.where(np.abs(slope) * de[k] > 1e-9 * np.maximum(p0, 1e-300), t_quad, t_lin)
    return np.asarray(e[k] + np.clip(t, 0.0, de[k]))


def isotropic_directions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """``(u, v, w)`` of ``n`` isotropic unit vectors (w uniform in [-1, 1], azimuth uniform)."""
    w = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_t = np.sqrt(1.0 - w * w)
    return sin_t * np.cos(phi), sin_t * np.sin(phi), w


def _linear_pdf_moments(e: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact integrals of ``p`` and of ``E p`` over each bin of a piecewise-linear density
    (the trapezoidal rule on ``E p`` is 0.3 % low on ICRP-107's beta grids)."""
    de = np.diff(e)
    p0, e0 = p[:-1], e[:-1]
    slope = (p[1:] - p0) / de
    m0 = 0.5 * (p[1:] + p0) * de
    m1 = p0 * e0 * de + (p0 + slope * e0) * de**2 / 2.0 + slope * de**3 / 3.0
    return m0, m1


def _split_at(e: np.ndarray, p: np.ndarray, cut: float) -> tuple[np.ndarray, np.ndarray]:
    """The tabulated density with a grid point at ``cut`` (linear interpolation, exact for
    a piecewise-linear density; unchanged where the grid already has one)."""
    if np.any(np.isclose(e, cut)) or cut <= e[0] or cut >= e[-1]:
        return e, p
    i = int(np.searchsorted(e, cut))
    pc = float(np.interp(cut, e, p))
    return np.insert(e, i, cut), np.insert(p, i, pc)


def sample_decay_particles(
    table: dict[str, Any], n: int, voxel_cm: float, seed: int
) -> tuple[np.ndarray, float, float]:
    """``n`` transported particles of one beta-minus nuclide, uniform in the voxel centred
    at 0 (the kernel builder's direct voxel runs).

    Each particle is drawn from all emissions at or above :data:`DIRECT_LOCAL_BELOW_MEV`
    with probability proportional to its yield per decay (beta spectrum sampled by exact
    inversion of its piecewise-linear density), isotropic, at a uniform point of the cube
    of edge ``voxel_cm`` centred at the origin. Returns the records, the transported
    particles per decay ``y_t`` (dose per decay = dose per particle x ``y_t``) and the
    energy per decay (MeV) of the emissions below the cut, deposited in the source voxel.

    Raises
    ------
    NuclideError
        The table has no beta-minus spectrum with a grid point at the cut energy.
    """
    rng = np.random.default_rng(seed)
    e, p = table["beta_e_mev"], table["beta_pdf"]
    cut = DIRECT_LOCAL_BELOW_MEV
    if e is None or table.get("beta_code", ELECTRON) != ELECTRON:
        raise NuclideError(
            f"sample_decay_particles handles beta-minus nuclides only, got {table['nuclide']}"
        )
    if not np.any(np.isclose(e, cut)):
        raise NuclideError(
            f"the beta spectrum of {table['nuclide']} has no grid point at the cut energy {cut} MeV"
        )
    # beta: the part of the spectrum below the cut is local energy
    n_b = float(table["beta_per_decay"])
    area = 0.5 * (p[1:] + p[:-1]) * np.diff(e)
    area_e = 0.5 * (p[1:] * e[1:] + p[:-1] * e[:-1]) * np.diff(e)
    scale_n = n_b / float(area.sum())
    below = e[1:] <= cut + 1e-12
    y_beta_above = scale_n * float(area[~below].sum())
    local = scale_n * float(area_e[below].sum())
    lines_above = [(en, y, c) for en, y, c, _ in table["lines"] if en >= cut]
    local += sum(en * y for en, y, _, _ in table["lines"] if en < cut)
    yields = np.array([y_beta_above] + [y for _, y, _ in lines_above])
    y_t = float(yields.sum())
    pick = rng.choice(yields.size, size=n, p=yields / y_t)
    energy = np.empty(n)
    code = np.empty(n, dtype=np.int8)
    is_beta = pick == 0
    i_cut = int(np.flatnonzero(np.isclose(e, cut))[0])
    energy[is_beta] = sample_linear_pdf(rng, e[i_cut:], p[i_cut:], int(is_beta.sum()))
    code[is_beta] = ELECTRON
    for j, (en, _, c) in enumerate(lines_above, start=1):
        m = pick == j
        energy[m] = en
        code[m] = c
    u, v, w = isotropic_directions(rng, n)
    rec = np.zeros(n, PHSP_DTYPE)
    rec["type"] = np.where(w < 0, -code, code)  # sign of the type = sign of w
    rec["e"] = -energy  # negative energy: every particle starts a new history
    for ax in ("x", "y", "z"):
        rec[ax] = rng.uniform(-0.5 * voxel_cm, 0.5 * voxel_cm, n)
    rec["u"] = u
    rec["v"] = v
    rec["wt"] = 1.0
    return rec, y_t, local


@dataclass(frozen=True)
class DecaySource:
    """The particles one decay of a nuclide hands to the transport, as sampling tables.

    Attributes
    ----------
    nuclide
        Canonical name.
    particles_per_decay
        Transported particles per decay ``y_t``: the histories of ``N`` decays are ``N y_t``.
    component_cdf
        Cumulative probability of each transported component (the beta continuum above
        the cut first when there is one, then the discrete lines), ending at 1.
    component_energy_mev
        Energy of each component (NaN for the beta continuum).
    component_code
        ompmc particle code of each component (1 photon, 2 electron, 3 positron).
    beta_e_mev, beta_pdf
        The part of the beta spectrum that is transported (beta-: from the cut up; beta+:
        all of it, as a positron below the cut still annihilates), or ``None``.
    local_mev_per_decay
        Electrons and photons below the cut (beta- spectrum below it, low-energy lines):
        deposited in the source voxel.
    alpha_mev_per_decay
        Alpha particles and recoils (ICRP-107), deposited in the source voxel.
    transported_mev_per_decay
        Mean kinetic energy handed to the transport per decay.
    positrons_per_decay
        Positrons per decay (each brings 2 x 0.511 MeV of annihilation photons).
    total_mev_per_decay
        Every ICRP-107 class (the energy balance's reference).
    excluded_mev_per_decay
        Energy per decay of the components left out (``exclude``): neither transported
        nor deposited.
    """

    nuclide: str
    particles_per_decay: float
    component_cdf: np.ndarray
    component_energy_mev: np.ndarray
    component_code: np.ndarray
    beta_e_mev: np.ndarray | None
    beta_pdf: np.ndarray | None
    local_mev_per_decay: float
    alpha_mev_per_decay: float
    transported_mev_per_decay: float
    positrons_per_decay: float
    total_mev_per_decay: float
    excluded_mev_per_decay: float = 0.0


#: emission components that :func:`decay_source` can leave out (names of the kernel
#: library's components): ICRP-107 classes of each
COMPONENTS: dict[str, tuple[str, ...]] = {
    "beta": ("beta-", "beta+"),
    "ce_auger": ("IE", "auger"),
    "photon": ("gamma", "X", "annihilation"),
    "alpha": ("alpha", "alpha recoil"),
}


def decay_source(
    name: str, cut_mev: float = TRANSPORT_CUT_MEV, exclude: tuple[str, ...] = ()
) -> DecaySource:
    """Sampling tables of the transported emissions of ``name`` (:func:`emission_table`).

    Electrons and photons below ``cut_mev`` are deposited locally (so is the beta-minus
    spectrum below it); positrons are transported from 0 (their annihilation photons are
    produced by the transport); alphas and recoils are local. ``exclude`` leaves whole
    components out (keys of :data:`COMPONENTS`, e.g. ``("ce_auger",)`` to compare with
    tables whose source terms lack conversion and Auger electrons).
    """
    bad = [c for c in exclude if c not in COMPONENTS]
    if bad:
        raise NuclideError(
            f"exclude: unknown emission component(s) {bad}; valid: {', '.join(COMPONENTS)}"
        )
    t = emission_table(name)
    excluded = 0.0
    if "beta" in exclude:
        excluded += float(t["beta_energy_per_decay_mev"])
        t["beta_code"] = None
    if "alpha" in exclude:
        excluded += float(t["alpha_energy_per_decay_mev"])
        t["alpha_energy_per_decay_mev"] = 0.0
    drop = {c for comp in exclude if comp in ("ce_auger", "photon") for c in COMPONENTS[comp]}
    excluded += sum(en * y for en, y, _, cls in t["lines"] if cls in drop)
    t["lines"] = [ln for ln in t["lines"] if ln[3] not in drop]
    comps_y: list[float] = []
    comps_e: list[float] = []
    comps_c: list[int] = []
    local = 0.0
    transported = 0.0
    e_seg = p_seg = None
    positrons = 0.0
    if t["beta_code"] is not None:
        e, p = np.asarray(t["beta_e_mev"]), np.asarray(t["beta_pdf"])
        if t["beta_code"] == ELECTRON:
            e, p = _split_at(e, p, cut_mev)
        m0, m1 = _linear_pdf_moments(e, p)
        # the sampled density is the piecewise-linear one: scale it so that its exact mean
        # energy carries ICRP-107's beta energy per decay
        scale_n = float(t["beta_energy_per_decay_mev"]) / float(m1.sum())
        if t["beta_code"] == ELECTRON:
            below = e[1:] <= cut_mev + 1e-12
            local += scale_n * float(m1[below].sum())
            i_cut = int(np.count_nonzero(below))
            e_seg, p_seg = e[i_cut:], p[i_cut:]
            y_beta = scale_n * float(m0[~below].sum())
            transported += scale_n * float(m1[~below].sum())
        else:
            e_seg, p_seg = e, p
            y_beta = scale_n * float(m0.sum())
            transported += scale_n * float(m1.sum())
            positrons = y_beta
        if y_beta > 0:
            comps_y.append(y_beta)
            comps_e.append(float("nan"))
            comps_c.append(int(t["beta_code"]))
    for en, y, code, _cls in t["lines"]:
        if en >= cut_mev:
            comps_y.append(y)
            comps_e.append(en)
            comps_c.append(code)
            transported += en * y
        else:
            local += en * y
    y_arr = np.asarray(comps_y, dtype=float)
    y_t = float(y_arr.sum())
    cdf = np.cumsum(y_arr) / y_t if y_t > 0 else np.zeros(0)
    if cdf.size:
        cdf[-1] = 1.0
    return DecaySource(
        nuclide=str(t["nuclide"]),
        particles_per_decay=y_t,
        component_cdf=cdf,
        component_energy_mev=np.asarray(comps_e, dtype=float),
        component_code=np.asarray(comps_c, dtype=np.int8),
        beta_e_mev=e_seg,
        beta_pdf=p_seg,
        local_mev_per_decay=local,
        alpha_mev_per_decay=float(t["alpha_energy_per_decay_mev"]),
        transported_mev_per_decay=transported,
        positrons_per_decay=positrons,
        total_mev_per_decay=float(t["total_energy_per_decay_mev"]),
        excluded_mev_per_decay=excluded,
    )


def _stratified_permuted(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniform numbers, one in each [i/n, (i+1)/n) (systematic sampling), in random
    order: their empirical distribution is uniform to within 1/n, each is marginally
    uniform (unbiased), and their order carries no information."""
    return (rng.permutation(n) + rng.random()) / n


def sample_emissions(
    src: DecaySource, n: int, rng: np.random.Generator, stratified: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Kinetic energies (MeV) and particle codes of ``n`` transported particles of ``src``,
    each drawn from all its transported emissions in proportion to their yields.
    ``stratified``: the emission lines and the beta energies are drawn by systematic
    sampling in random order (each line gets its expected number of particles to within
    one, the beta energies follow the spectrum to within 1/n) instead of independently."""
    energy = np.empty(n)
    code = np.empty(n, dtype=np.int8)
    if n == 0:
        return energy, code
    last = src.component_cdf.size - 1
    u = _stratified_permuted(rng, n) if stratified else rng.random(n)
    k = np.minimum(np.searchsorted(src.component_cdf, u, side="right"), last)
    code[:] = src.component_code[k]
    energy[:] = src.component_energy_mev[k]
    cont = np.isnan(energy)
    n_cont = int(np.count_nonzero(cont))
    if n_cont and src.beta_e_mev is not None and src.beta_pdf is not None:
        u_b = _stratified_permuted(rng, n_cont) if stratified else None
        energy[cont] = sample_linear_pdf(rng, src.beta_e_mev, src.beta_pdf, n_cont, u_b)
    return energy, code


def write_phsp_records(base: Path, rec: np.ndarray, title: str) -> None:
    """IAEA phase-space pair (``base.IAEAheader`` + ``base.IAEAphsp``) for the records
    ``rec`` (:data:`PHSP_DTYPE`)."""
    data = rec.tobytes()
    base.with_suffix(".IAEAphsp").write_bytes(data)
    contents = "\n".join(
        f"    {v}     // {k}"
        for k, v in [
            ("X is stored ?", 1),
            ("Y is stored ?", 1),
            ("Z is stored ?", 1),
            ("U is stored ?", 1),
            ("V is stored ?", 1),
            ("W is stored ?", 1),
            ("Weight is stored ?", 1),
            ("Extra floats stored ?", 0),
            ("Extra longs stored ?", 0),
        ]
    )
    n = rec.size
    header = (
        f"$IAEA_INDEX:\n0\n\n$TITLE:\n{title}\n\n"
        f"$FILE_TYPE:\n0\n\n$CHECKSUM:\n{len(data)}\n\n$RECORD_CONTENTS:\n{contents}\n\n"
        f"$RECORD_CONSTANT:\n\n$RECORD_LENGTH:\n{PHSP_DTYPE.itemsize}\n\n$BYTE_ORDER:\n1234\n\n"
        f"$ORIG_HISTORIES:\n{n}\n\n$PARTICLES:\n{n}\n\n"
    )
    base.with_suffix(".IAEAheader").write_text(header)
