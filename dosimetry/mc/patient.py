"""Patient-specific Monte Carlo dose: ompmc transport of every ICRP-107 emission in the
patient's own media and densities.

:func:`patient_dose` samples decays in proportion to a time-integrated activity map
(uniformly inside each voxel), hands every electron, positron and photon at or above the
transport cut-offs to ompmc (an EGSnrc re-implementation) in the voxel phantom built from
the density or material map (:mod:`dosimetry.mc.materials`), and deposits alphas, recoils
and the emissions below the cut-offs in the voxel of the decay.

Batches. ompmc keeps global C state and prints to the terminal, so every run happens in
a worker process (a ``ProcessPoolExecutor`` with the spawn start method, one OpenMP
thread each, or the tasks of a Dask ``Client`` when one is given). The histories are
split over ``batches`` independent batches, each its own stream of seeds; a batch's
particles are written as IAEA phase-space files of at most :data:`CHUNK_HISTORIES`
particles, one ompmc run each, so memory stays bounded whatever the number of histories.
The dose is the mean of the batches, its standard uncertainty per voxel the standard
deviation of the batch means over sqrt(batches) (the batch method of EGSnrc's DOSXYZnrc;
Walters, Kawrakow and Rogers, Med Phys 2002;29:2745-2752, compare it with the
history-by-history method).

Stopping rule, in order: ``histories`` (fixed); else a target relative standard uncertainty
(default 1 %) of the mean dose of each of ``target_vois`` (or, with ``target_kind=
"voxel"``, of the mean per-voxel relative uncertainty in each VOI, or in the voxels above
50 % of the maximum dose when no VOI is given: the reporting convention of AAPM TG-105,
Chetty et al. Med Phys 2007;34:4818-4853), reached in rounds that every batch shares; and
``time_budget_s`` or ``max_histories`` whichever comes first. After a pilot round the
histories still needed are predicted from the 1/sqrt(N) law.

Transport frame. ompmc's voxels are axis-aligned boxes: the transport runs in the grid's
own frame (x along slices, y along rows, z along columns, origin at the grid's corner),
which is the LPS frame rotated and possibly reflected. Transport of isotropic sources in a
voxel phantom is invariant under rotations and reflections, so any orthogonal affine,
flipped or permuted, is mapped exactly; a sheared (non-orthogonal) grid is refused.

Variance reduction: EGSnrc range rejection (``range_rejection=True``, ESAVE 20 MeV:
electrons that cannot leave their voxel deposit their energy on the spot; only their
bremsstrahlung is lost), validated against full transport in docs/dose.md.

Product code importing this module does not import ``ompmc`` or ``dask``: the workers do.

References
----------
Doerner E. ompMC, https://github.com/e0404/ompMC (GPL-3.0); Kawrakow I et al. The EGSnrc
code system, NRCC Report PIRS-701. ICRP Publication 107 (2008). Sgouros G et al. MIRD
Pamphlet No. 22, J Nucl Med 2010;51:311-328 (alpha emitters, in-situ decay of progeny).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .. import parameters
from ..errors import GeometryMismatchError, InputDataError, NuclideError, UnitError
from ..units import MEV_TO_J
from ..volume import Volume
from ._ompmc import (
    PHSP_DTYPE,
    TRANSPORT,
    DecaySource,
    decay_source,
    import_ompmc,
    isotropic_directions,
    physics_settings,
    sample_emissions,
    write_phsp_records,
)
from .materials import mc_phantom

__all__ = ["MCResult", "patient_dose", "CHUNK_HISTORIES", "DEFAULT_MAX_HISTORIES"]

log = logging.getLogger(__name__)

#: TIA unit -> dose unit
_TIA_UNITS: dict[str, str] = {"Bq s": "Gy", "Bq s/Bq": "Gy/Bq"}
#: particles per ompmc run: ompmc holds the whole phase space in memory (~150-200 B per
#: particle), so 1e6 keeps a worker near 200 MB; ~1e7 is its practical ceiling
CHUNK_HISTORIES = 1_000_000
#: histories of the pilot round (all batches together) when a target sets the number
PILOT_HISTORIES = 200_000
#: fewest histories a batch runs in a round (below this the run's start-up dominates)
MIN_HISTORIES_PER_BATCH = 1000
#: default cap on the histories of one call (a target that cannot be reached stops here)
DEFAULT_MAX_HISTORIES = 1_000_000_000
#: a round asks for at most this factor more histories than were run before it
_GROWTH_MAX = 16.0
#: a round asks for this factor more than the 1/sqrt(N) prediction
_SAFETY = 1.1
#: voxels above this fraction of the maximum dose set the voxel criterion without VOIs
#: (AAPM TG-105, Chetty et al. Med Phys 2007;34:4818-4853)
VOXEL_THRESHOLD_OF_MAX = 0.5
#: 2 m_e c^2 in MeV (CODATA 2018): annihilation photons of a positron
_ANNIHILATION_MEV = 2 * 0.51099895


@dataclass(frozen=True, eq=False)
class MCResult:
    """Result of :func:`patient_dose`.

    Attributes
    ----------
    dose
        Absorbed dose (``"Gy"``, or ``"Gy/Bq"`` for a TIA in ``"Bq s/Bq"``): electrons,
        positrons and photons transported, plus alphas, recoils and sub-cut-off emissions
        deposited in the voxel of the decay. 0 in air voxels (density below
        ``density_air_max_g_per_ml``; see the provenance).
    alpha_dose
        The alpha-and-recoil part of ``dose`` (same unit), for RBE weighting.
    uncertainty
        Standard uncertainty of ``dose`` per voxel (same unit), from the batches. The
        locally deposited parts carry none (they do not depend on random numbers).
    histories
        Transported particles (histories) run in all.
    batches
        Independent batches the uncertainty comes from.
    voi_relative_uncertainty
        Relative standard uncertainty of each target VOI's mean dose (or of its mean
        voxel uncertainty with ``target_kind="voxel"``); empty without ``target_vois``.
    voi_mean_dose
        Mass-weighted mean dose of each target VOI (the dose's unit).
    elapsed_s
        Wall time of the call.
    provenance
        Transport code and version, settings, media map, seeds, histories, rounds, the
        stopping rule and why it stopped, the energy balance, air voxels.
    """

    dose: Volume
    alpha_dose: Volume
    uncertainty: Volume
    histories: int
    batches: int
    voi_relative_uncertainty: Mapping[str, float]
    voi_mean_dose: Mapping[str, float]
    elapsed_s: float
    provenance: Mapping[str, Any] = field(repr=False)

    @property
    def histories_per_s(self) -> float:
        """Histories per second of wall time (start-up included)."""
        return self.histories / self.elapsed_s if self.elapsed_s > 0 else float("nan")


# ----------------------------------------------------------------------------- problem
@dataclass(frozen=True)
class _Member:
    source: DecaySource
    flat_index: np.ndarray  # voxels with decays (C order of the [slice, row, col] grid)
    cdf: np.ndarray  # cumulative sampling probability of those voxels, ending at 1
    weight: np.ndarray | None = None  # particle weight per voxel (source biasing), or 1


@dataclass(frozen=True)
class _Problem:
    """Everything a worker needs (pickled once per worker process)."""

    key: str
    shape: tuple[int, int, int]
    spacing_cm: tuple[float, float, float]
    pegs_media: tuple[str, ...]
    material_index: np.ndarray
    density_g_per_ml: np.ndarray
    members: tuple[_Member, ...]
    member_probability: np.ndarray
    seed: int
    esave_mev: float | None
    chunk_histories: int
    stratified: bool = True


@dataclass(frozen=True)
class _TaskSpec:
    batch: int
    round: int
    histories: int


@dataclass(frozen=True)
class _TaskResult:
    batch: int
    round: int
    histories: int
    edep_mev: np.ndarray  # energy deposited per voxel, summed over the task's histories
    kinetic_mev: float  # kinetic energy handed to the transport (weighted)
    positrons: float  # positrons (weighted)
    started: int
    wall_s: float
    cpu_s: float  # CPU time of the worker process on this task


# ----------------------------------------------------------------------------- worker side
_WORKER: dict[str, Any] = {}
_OMPMC_LOCK = threading.Lock()


def _init_worker(problem: _Problem) -> None:
    """Local worker start: one OpenMP thread (set before ompmc's runtime loads), the
    problem kept for every task."""
    os.environ["OMP_NUM_THREADS"] = "1"
    _WORKER["problem"] = problem


def _run_local(spec: _TaskSpec) -> _TaskResult:
    return _run_task(_WORKER["problem"], spec)


@contextlib.contextmanager
def _engine_output(path: Path) -> Iterator[None]:
    """Send what the C engine writes to the terminal (file descriptors 1 and 2) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (*saved, fd):
            os.close(f)


def _geometry(ompmc: Any, problem: _Problem) -> Any:
    cached = _WORKER.get("geometry")
    if cached is not None and cached[0] == problem.key:
        return cached[1]
    bounds = [
        np.arange(n + 1, dtype=np.float64) * s
        for n, s in zip(problem.shape, problem.spacing_cm, strict=True)
    ]
    geo = ompmc.Geometry(
        *bounds,
        list(problem.pegs_media),
        np.asfortranarray(problem.density_g_per_ml, dtype=np.float64),
        np.asfortranarray(problem.material_index, dtype=np.int32),
    )
    _WORKER["geometry"] = (problem.key, geo)
    return geo


def _inside(x: np.ndarray, hi: float) -> np.ndarray:
    """float32 coordinates strictly inside [0, hi) (rounding must not put one on the face)."""
    x32 = x.astype(np.float32)
    return np.minimum(x32, np.nextafter(np.float32(hi), np.float32(0.0)))


def _stratified(rng: np.random.Generator, k: int) -> np.ndarray:
    """``k`` uniform numbers, one in each of the intervals [i/k, (i+1)/k) (one random
    offset shared: systematic sampling). Each is marginally uniform on [0, 1), so every
    estimate stays unbiased, while the number drawn below any value c is k c to within 1."""
    return (np.arange(k) + rng.random()) / k


def _sample(problem: _Problem, n: int, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """``n`` phase-space records: member by its share of the particles, voxel by its
    decays, position uniform in the voxel, emission by yield, direction isotropic.

    ``problem.stratified``: the members, voxels, emission lines and beta energies are
    drawn by systematic sampling (the particles of each voxel and each emission line are
    their expected number to within one, the beta energies follow the spectrum, the
    emissions assigned to the voxels in random order) instead of independently: the same
    estimate without the multinomial noise of where the decays fall, which dominates the
    uncertainty of VOI means of short-range emissions."""
    if problem.stratified:
        cum = np.cumsum(problem.member_probability)
        which = np.minimum(np.searchsorted(cum, _stratified(rng, n), side="right"), cum.size - 1)
        counts = np.bincount(which, minlength=cum.size)
    else:
        counts = rng.multinomial(n, problem.member_probability)
    parts = []
    for m, k in zip(problem.members, counts, strict=True):
        k = int(k)
        if k == 0:
            continue
        u_vox = _stratified(rng, k) if problem.stratified else rng.random(k)
        j = np.minimum(np.searchsorted(m.cdf, u_vox, side="right"), m.cdf.size - 1)
        idx = np.unravel_index(m.flat_index[j], problem.shape)
        energy, code = sample_emissions(m.source, k, rng, stratified=problem.stratified)
        u, v, w = isotropic_directions(rng, k)
        rec = np.zeros(k, PHSP_DTYPE)
        rec["type"] = np.where(w < 0, -code, code)  # sign of the type = sign of w
        rec["e"] = -energy  # negative: every record starts a new history
        for ax, i, n_ax, s in zip("xyz", idx, problem.shape, problem.spacing_cm, strict=True):
            rec[ax] = _inside((i + rng.random(k)) * s, n_ax * s)
        rec["u"] = u
        rec["v"] = v
        rec["wt"] = 1.0 if m.weight is None else m.weight[j]
        parts.append(rec)
    rec = np.concatenate(parts)
    wt = rec["wt"].astype(np.float64)
    kinetic = float(np.sum(-rec["e"] * wt, dtype=np.float64))
    positrons = float(np.sum(wt[np.abs(rec["type"]) == 3]))
    return rec, kinetic, positrons


def _chunks(n: int, size: int) -> list[int]:
    """``n`` histories as runs of at most ``size`` (even: ompmc's two internal batches)."""
    k = max(1, math.ceil(n / size))
    base = n // k
    out = [base + (1 if i < n - base * k else 0) for i in range(k)]
    return [c + (c % 2) for c in out]


def _run_task(problem: _Problem, spec: _TaskSpec) -> _TaskResult:
    """One batch's share of a round: sample, write, transport, sum (in a worker)."""
    ompmc = import_ompmc()
    t0 = time.perf_counter()
    c0 = time.process_time()
    total = np.zeros(problem.shape, dtype=np.float64)
    kinetic = positrons = 0.0
    started = histories = 0
    with _OMPMC_LOCK, tempfile.TemporaryDirectory(prefix="dosimetry-mc-") as tmp:
        geo = _geometry(ompmc, problem)
        engine_log = Path(tmp) / "ompmc.log"
        for c, n in enumerate(_chunks(spec.histories, problem.chunk_histories)):
            ss = np.random.SeedSequence([problem.seed, spec.batch, spec.round, c])
            rng = np.random.default_rng(ss)
            s1, s2 = (int(x) & 0x7FFFFFFF for x in ss.spawn(1)[0].generate_state(2))
            rec, kin, pos = _sample(problem, n, rng)
            base = Path(tmp) / "source"
            write_phsp_records(base, rec, f"dosimetry.mc batch {spec.batch} round {spec.round}")
            del rec
            physics = physics_settings(TRANSPORT, (s1, s2), tmp, problem.esave_mev)
            try:
                with _engine_output(engine_log):
                    edep, _unc, summary = ompmc.calc_forward_phsp(
                        geo,
                        ompmc.PhaseSpaceSource(str(base), order="replay"),
                        physics,
                        n_histories=n,
                        n_batches=2,
                        output_dose=False,
                    )
            except Exception as exc:
                tail = engine_log.read_text(errors="replace")[-2000:] if engine_log.exists() else ""
                exc.add_note(f"ompmc output (last 2000 characters):\n{tail}")
                raise
            total += np.asarray(edep, dtype=np.float64) * int(summary.n_histories)
            kinetic += kin
            positrons += pos
            started += int(summary.n_started)
            histories += int(summary.n_histories)
    return _TaskResult(
        spec.batch,
        spec.round,
        histories,
        total,
        kinetic,
        positrons,
        started,
        time.perf_counter() - t0,
        time.process_time() - c0,
    )


# ----------------------------------------------------------------------------- runners
class _LocalRunner:
    def __init__(self, problem: _Problem, workers: int):
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(problem,),
        )

    def submit(self, spec: _TaskSpec) -> Any:
        return self._pool.submit(_run_local, spec)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _InlineRunner:
    """Tasks run one after another in this process. Used where no worker process may be
    started: inside a daemonic process (a Dask worker of a cohort, a multiprocessing pool
    worker), whose children Python forbids. The same tasks and seeds as the pool, so the
    same dose; a cohort already keeps the cores busy with other studies."""

    def __init__(self, problem: _Problem):
        self._problem = problem

    def submit(self, spec: _TaskSpec) -> cf.Future[_TaskResult]:
        fut: cf.Future[_TaskResult] = cf.Future()
        try:
            fut.set_result(_run_task(self._problem, spec))
        except Exception as exc:
            fut.set_exception(exc)
        return fut

    def close(self) -> None:
        return None


def _in_daemon() -> bool:
    """True in a daemonic process (it may not start worker processes)."""
    return bool(multiprocessing.current_process().daemon)


class _ClientRunner:
    """Tasks on a Dask ``Client`` (duck-typed: ``scatter`` and ``submit``; Dask is never
    imported here)."""

    def __init__(self, client: Any, problem: _Problem):
        self._client = client
        self._problem = client.scatter(problem, broadcast=True)

    def submit(self, spec: _TaskSpec) -> Any:
        return self._client.submit(_run_task, self._problem, spec, pure=False)

    def close(self) -> None:
        return None


def _as_completed(futures: list[Any]) -> Iterable[Any]:
    if all(isinstance(f, cf.Future) for f in futures):
        yield from cf.as_completed(futures)
        return
    pending = list(futures)
    while pending:
        done = [f for f in pending if f.done()]
        for f in done:
            pending.remove(f)
            yield f
        if pending and not done:
            time.sleep(0.05)


# ----------------------------------------------------------------------------- main side
def _check_tia(tia: Volume, name: str) -> np.ndarray:
    if not isinstance(tia, Volume):
        raise InputDataError(f"{name} must be a dosimetry.Volume, got {type(tia).__name__}")
    if tia.unit not in _TIA_UNITS:
        raise UnitError(
            f"{name} must be a time-integrated activity in 'Bq s' (dose in Gy) or 'Bq s/Bq' "
            f"(Gy/Bq), got unit {tia.unit!r}"
        )
    arr = np.asarray(tia.array, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if np.any(bad):
        raise InputDataError(
            f"{name} contains {int(bad.sum())} NaN or infinite value(s) (first at index "
            f"{tuple(int(i) for i in np.argwhere(bad)[0])}); fix or mask them first."
        )
    if np.any(arr < 0):
        raise InputDataError(
            f"{name} contains {int((arr < 0).sum())} negative value(s) (min {arr.min():.4g}); "
            "activity cannot be negative. Clip noise explicitly, e.g. np.clip(tia.array, 0, None)."
        )
    return arr


def _transport_spacing_cm(tia: Volume) -> tuple[float, float, float]:
    """Voxel edges (cm) along the slice, row and column axes; refuses sheared grids."""
    d = tia.direction
    gram = d.T @ d
    if not np.allclose(gram, np.eye(3), atol=1e-6):
        raise GeometryMismatchError(
            "the Monte Carlo needs an orthogonal grid (ompmc's voxels are boxes), but the "
            f"axes of tia are not orthogonal (direction cosines {np.round(d, 6).tolist()}; a "
            "tilted CT gantry shears the grid). Resample tia and the density map onto an "
            "orthogonal grid first: dosimetry.resample(volume, reference, quantity=...)."
        )
    sp = tia.spacing_mm
    return (sp[0] / 10.0, sp[1] / 10.0, sp[2] / 10.0)


def _chain_members(parent: str) -> tuple[list[str], dict[tuple[str, str], float]]:
    """Members decaying in equilibrium with ``parent`` (shorter-lived progeny, as
    ``dosimetry.dose.local_energy_per_decay_j`` counts them) and their links."""
    from ..nuclides import decay_chain, nuclide

    ch = decay_chain(parent)
    t_parent = nuclide(ch.parent).half_life_s
    keep = [ch.parent]
    links: dict[tuple[str, str], float] = {}
    for m in ch.members[1:]:
        mothers = [(a, f) for (a, b), f in ch.branching.items() if b == m and a in keep]
        if not mothers or nuclide(m).half_life_s >= t_parent:
            log.info("chain of %s stops at %s (not shorter-lived than the parent)", ch.parent, m)
            continue
        keep.append(m)
        for a, f in mothers:
            links[(a, m)] = f
    return keep, links


def _member_maps(
    tia: Volume, arr: np.ndarray, name: str, chain: bool, member_tia: Mapping[str, Volume] | None
) -> list[tuple[str, np.ndarray, str]]:
    """(member, decays per voxel, where the map came from) for the nuclide or its chain."""
    from ..nuclides import normalize_name

    canonical = normalize_name(name)
    if not chain:
        if member_tia:
            raise InputDataError(
                "member_tia gives maps of chain members: pass chain=True as well (got "
                f"member_tia for {', '.join(member_tia)} with chain=False)"
            )
        return [(canonical, arr, "tia")]
    members, links = _chain_members(canonical)
    given: dict[str, Volume] = {}
    for k, v in (member_tia or {}).items():
        key = normalize_name(k)
        if key == canonical:
            raise InputDataError(f"member_tia[{k!r}]: the parent's map is the tia argument")
        if key not in members:
            raise NuclideError(
                f"member_tia[{k!r}]: {key} is not a member of the {canonical} chain "
                f"decaying with it; members: {', '.join(members[1:])}"
            )
        given[key] = v
    maps: dict[str, np.ndarray] = {canonical: arr}
    out = [(canonical, arr, "tia")]
    for m in members[1:]:
        if m in given:
            v = given[m]
            tia.check_same_grid(v, f"member_tia[{m!r}]")
            if v.unit != tia.unit:
                raise UnitError(
                    f"member_tia[{m!r}] is in {v.unit!r}, tia in {tia.unit!r}: give every "
                    "member's decays in the same unit"
                )
            maps[m] = _check_tia(v, f"member_tia[{m!r}]")
            out.append((m, maps[m], "member_tia"))
        else:
            mothers = [(a, f) for (a, b), f in links.items() if b == m and a in maps]
            acc = np.zeros_like(arr)
            for a, f in mothers:
                acc += f * maps[a]
            maps[m] = acc
            src = " + ".join(f"{f:.4g} x {a}" for a, f in mothers)
            out.append((m, acc, f"in situ ({src})"))
    return out


def _weights(masks: Mapping[str, Volume], tia: Volume) -> dict[str, np.ndarray]:
    out = {}
    for name, mask in masks.items():
        tia.check_same_grid(mask, f"target_vois[{name!r}]")
        w = np.asarray(mask.array, dtype=np.float64)
        if np.any(~np.isfinite(w)) or np.any(w < 0) or np.any(w > 1):
            raise InputDataError(
                f"target_vois[{name!r}] must be a mask (bool or occupancy in [0, 1])"
            )
        if not np.any(w > 0):
            raise InputDataError(f"target_vois[{name!r}] is empty on the tia grid")
        out[str(name)] = w
    return out


@dataclass
class _Tally:
    """Per-batch energy sums (MeV) and what the rule needs from them."""

    energy: np.ndarray  # (batches, *shape)
    per_batch: int = 0
    kinetic_mev: float = 0.0
    positrons: float = 0.0
    started: int = 0
    histories: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def add(self, r: _TaskResult) -> None:
        self.energy[r.batch] += r.edep_mev
        self.kinetic_mev += r.kinetic_mev
        self.positrons += r.positrons
        self.started += r.started
        self.histories += r.histories
        self.wall_s += r.wall_s
        self.cpu_s += r.cpu_s


def _report(progress: Callable[[str], None] | None, msg: str) -> None:
    log.info("%s", msg)
    if progress is not None:
        progress(msg)


def patient_dose(
    tia: Volume,
    nuclide: str,
    *,
    density: Volume | None = None,
    materials: Volume | None = None,
    material_labels: Mapping[int, str] | None = None,
    chain: bool = False,
    member_tia: Mapping[str, Volume] | None = None,
    histories: int | None = None,
    target_uncertainty: float = 0.01,
    target_vois: Mapping[str, Volume] | None = None,
    target_kind: Literal["mean", "voxel"] = "mean",
    time_budget_s: float | None = None,
    max_histories: int | None = None,
    batches: int = 10,
    seed: int = 0,
    range_rejection: bool = True,
    stratified: bool = True,
    source_biasing: bool = True,
    exclude: tuple[str, ...] = (),
    workers: int | None = None,
    client: Any = None,
    progress: Callable[[str], None] | None = None,
) -> MCResult:
    """Absorbed dose by Monte Carlo transport in the patient's own media.

    Parameters
    ----------
    tia
        Time-integrated activity per voxel of ``nuclide`` (decays): ``"Bq s"`` (dose in Gy)
        or ``"Bq s/Bq"`` (Gy/Bq). Finite, >= 0, not all 0. Any orthogonal affine (flipped
        or permuted axes included); voxels may be anisotropic.
    nuclide
        ``"Lu-177"``, ``"Y-90"``, ``"Ac-225"``, ... (any spelling). Beta-minus, beta-plus,
        gamma/X-ray and alpha emitters; not nuclides emitting both beta signs.
    density
        Mass density (g/mL) on ``tia``'s grid (from CT: ``dosimetry.hu_to_density``); media
        from its density classes (:mod:`dosimetry.mc.materials`).
    materials
        Material-label map on ``tia``'s grid instead of (or with) ``density``: labels of
        ``dosimetry/data/mc_media.csv`` (0 air, 1 lung, 2 soft tissue, 3 bone, 4 water).
        Neither given: soft tissue at ``density_soft_tissue_g_per_ml`` everywhere.
    material_labels
        Your own label value -> medium name, for ``materials``.
    chain
        Transport the progeny decaying with the parent (``"Ac-225"``: Fr-221, At-217,
        Bi-213, Po-213, Tl-209, Pb-209), each with its own emissions.
    member_tia
        Decays of chain members from their own maps (same grid and unit as ``tia``), e.g.
        ``{"Bi-213": tia_bi213}`` for redistributed Bi-213. A member without a map decays
        where its mothers decayed (in situ: the mothers' decays x branching), which is the
        default for every member.
    histories
        Fixed number of transported particles (histories). ``None``: set by the target.
    target_uncertainty
        Relative standard uncertainty to reach (default 0.01): of each target VOI's mean
        dose (``target_kind="mean"``), or of the mean per-voxel relative uncertainty in each
        VOI (``"voxel"``; without VOIs: in the voxels above 50 % of the maximum dose).
    target_vois
        ``{name: mask}`` on ``tia``'s grid (bool or occupancy in [0, 1]) for the stopping
        rule and :attr:`MCResult.voi_relative_uncertainty`.
    target_kind
        ``"mean"`` or ``"voxel"`` (see ``target_uncertainty``).
    time_budget_s
        Stop when the next round would end after this wall time (the result says so).
    max_histories
        Cap on the histories (default :data:`DEFAULT_MAX_HISTORIES`).
    batches
        Independent batches (>= 2; default 10) for the uncertainty.
    seed
        Seed of every random stream (sampling and transport): the same call with the
        same seed and ``batches`` returns the same arrays (a time budget can stop it at
        another round).
    range_rejection
        EGSnrc range rejection (default True; validated in docs/dose.md). False: full
        transport of every electron.
    stratified
        Draw the decays' voxels, chain members and emission lines by systematic sampling
        (default; unbiased, validated in docs/dose.md) instead of independently.
    source_biasing
        With ``target_vois``: draw the decays in and around target VOIs that hold a small
        share of the particles more often (each such VOI, dilated by the most energetic
        electron's range, gets at least half of its equal share of the particles), with
        particle weights that undo it (default; unbiased, validated in docs/dose.md). The
        dose map elsewhere then gets fewer histories.
    exclude
        Emission components left out entirely (``"beta"``, ``"ce_auger"``, ``"photon"``,
        ``"alpha"``), e.g. ``("ce_auger",)`` to compare with published voxel S-values whose
        source terms lack conversion and Auger electrons. Default: none.
    workers
        Local worker processes (default: the CPUs this process may use). Ignored with
        ``client``.
    client
        A ``dask.distributed.Client``: batches run as its tasks (workers with one thread
        each: ompmc is serialised within a process). Dask is not imported otherwise.
    progress
        Called with a one-line status (batches done, histories, rate, current uncertainty)
        as batches finish; the same lines go to the ``dosimetry.mc.patient`` logger.

    Returns
    -------
    MCResult

    Raises
    ------
    UnitError, InputDataError, GeometryMismatchError, NuclideError
        Invalid maps, units, grids, masks or nuclides (the message names the fix).
    dosimetry._optional.OptionalDependencyError
        ``ompmc`` is not installed (``pip install 'dosimetry[mc]'``).

    Examples
    --------
    >>> import numpy as np, dosimetry as ds
    >>> from dosimetry.mc import patient_dose
    >>> tia = ds.Volume.from_spacing(np.zeros((9, 9, 9)), (4.42,) * 3, unit="Bq s")
    >>> tia.array[4, 4, 4] = 1e9
    >>> r = patient_dose(tia, "Lu-177", histories=20_000, batches=4, workers=1)  # doctest: +SKIP
    >>> r.dose.unit  # doctest: +SKIP
    'Gy'
    """
    t_start = time.perf_counter()
    arr = _check_tia(tia, "tia")
    if not arr.any():
        raise InputDataError("tia is 0 everywhere: there is nothing to transport")
    if int(batches) < 2:
        raise InputDataError(f"batches must be >= 2 (the uncertainty needs them), got {batches}")
    n_batches = int(batches)
    if histories is not None and int(histories) < n_batches:
        raise InputDataError(f"histories must be >= batches ({n_batches}), got {histories}")
    if not (0 < float(target_uncertainty) < 1):
        raise InputDataError(
            f"target_uncertainty is a relative uncertainty in (0, 1), got {target_uncertainty}"
        )
    if target_kind not in ("mean", "voxel"):
        raise InputDataError(f"target_kind must be 'mean' or 'voxel', got {target_kind!r}")
    if time_budget_s is not None and not float(time_budget_s) > 0:
        raise InputDataError(f"time_budget_s must be > 0 s, got {time_budget_s}")
    cap = int(DEFAULT_MAX_HISTORIES if max_histories is None else max_histories)
    spacing_cm = _transport_spacing_cm(tia)
    phantom = mc_phantom(tia, density, materials, material_labels)
    voi_w = _weights(target_vois, tia) if target_vois else {}
    maps = _member_maps(tia, arr, nuclide, chain, member_tia)
    sources = [(m, a, origin, decay_source(m, exclude=tuple(exclude))) for m, a, origin in maps]

    rho = phantom.density_g_per_ml
    mass_kg = rho * tia.voxel_volume_ml * 1e-3
    j_per_kg = MEV_TO_J / mass_kg  # Gy per MeV deposited in the voxel
    local_mev = np.zeros(tia.shape)
    alpha_mev = np.zeros(tia.shape)
    members_prov = []
    weights = []
    run_members = []
    emitted_mev = 0.0
    air = rho < parameters.get("density_air_max_g_per_ml")
    # the transport grid: the bounding box of everything that is not air or holds decays
    # (outside it there is only air, which a particle that leaves the box never meets
    # again in a way that matters: the box is convex)
    box = _bounding_box(~air | np.logical_or.reduce([a > 0 for _, a, _, _ in sources]))
    sub_shape = tuple(sl.stop - sl.start for sl in box)
    # source biasing: decays in and around small target VOIs are drawn more often, their
    # particles weighted down by the same factor (importance 1 elsewhere)
    particle_map = np.zeros(sub_shape)
    for _, a, _, src in sources:
        particle_map += a[box] * src.particles_per_decay
    importance = (
        _importance(particle_map, {k: w[box] for k, w in voi_w.items()}, spacing_cm, nuclide, chain)
        if source_biasing and voi_w
        else None
    )
    z_biased = float(np.sum(particle_map * importance)) if importance is not None else 0.0
    w_total = float(np.sum(particle_map))
    for m, a, origin, src in sources:
        decays = float(a.sum())
        local_mev += a * src.local_mev_per_decay
        alpha_mev += a * src.alpha_mev_per_decay
        emitted_mev += decays * (src.total_mev_per_decay - src.excluded_mev_per_decay)
        members_prov.append(
            {
                "nuclide": m,
                "decays": decays,
                "map": origin,
                "particles_per_decay": src.particles_per_decay,
                "transported_mev_per_decay": src.transported_mev_per_decay,
                "local_mev_per_decay": src.local_mev_per_decay,
                "alpha_mev_per_decay": src.alpha_mev_per_decay,
            }
        )
        w = decays * src.particles_per_decay
        if w > 0:
            a_box = np.ascontiguousarray(a[box])
            flat = np.flatnonzero(a_box.ravel() > 0)
            p_flat = a_box.ravel()[flat]
            weight = None
            if importance is not None:
                imp = importance.ravel()[flat]
                p_flat = p_flat * imp
                weight = z_biased / (w_total * imp)  # p / q: the estimate stays unbiased
                w = float(np.sum(p_flat)) * src.particles_per_decay
            cdf = np.cumsum(p_flat)
            cdf /= cdf[-1]
            run_members.append(_Member(src, flat, cdf, weight))
            weights.append(w)
    particles_total = w_total  # transported particles of all decays
    local_gy = local_mev * j_per_kg
    alpha_gy = alpha_mev * j_per_kg

    if histories is not None:
        kind = "histories"
    elif voi_w:
        kind = f"voi {target_kind}"
    else:
        kind = "voxel" if target_kind == "voxel" or time_budget_s is None else "time budget"
    tally = _Tally(np.zeros((n_batches, *sub_shape)))
    rounds: list[int] = []
    achieved: dict[str, float] = {}
    reason = "no transported emissions"
    ompmc_version = None
    workers_used = 0
    inline = False  # batches run in this process (a daemonic one, e.g. a Dask worker)
    scale = particles_total * j_per_kg[box]  # Gy per (MeV per history) in each voxel
    if run_members:
        ompmc = import_ompmc()  # fail here, before any worker starts, if it is missing
        ompmc_version = str(ompmc.__version__)
        problem = _Problem(
            key=uuid.uuid4().hex,
            shape=(sub_shape[0], sub_shape[1], sub_shape[2]),
            spacing_cm=spacing_cm,
            pegs_media=tuple(m.pegs_medium for m in phantom.media),
            material_index=np.ascontiguousarray(phantom.material_index[box], dtype=np.int32),
            density_g_per_ml=np.ascontiguousarray(rho[box]),
            members=tuple(run_members),
            member_probability=np.asarray(weights) / float(sum(weights)),
            seed=int(seed),
            esave_mev=TRANSPORT["esave_mev"] if range_rejection else None,
            chunk_histories=CHUNK_HISTORIES,
            stratified=bool(stratified),
        )
        runner: _LocalRunner | _ClientRunner | _InlineRunner
        if client is not None:
            workers_used = 0
            runner = _ClientRunner(client, problem)
        elif _in_daemon():
            workers_used, inline = 1, True
            runner = _InlineRunner(problem)
            log.info(
                "Monte Carlo batches run in this process: it is a daemonic process (e.g. a "
                "Dask worker of a cohort), which may not start worker processes"
            )
        else:
            workers_used = _n_workers(workers, n_batches)
            runner = _LocalRunner(problem, workers_used)
        try:
            per_batch = (
                math.ceil(int(histories) / n_batches)
                if histories is not None
                else max(MIN_HISTORIES_PER_BATCH, math.ceil(min(PILOT_HISTORIES, cap) / n_batches))
            )
            r = 0
            while True:
                t_round = time.perf_counter()
                futures = [runner.submit(_TaskSpec(b, r, per_batch)) for b in range(n_batches)]
                for i, fut in enumerate(_as_completed(futures), start=1):
                    tally.add(fut.result())
                    _report(
                        progress,
                        f"Monte Carlo round {r + 1}: {i}/{n_batches} batches, "
                        f"{tally.histories:.3g} histories, "
                        f"{tally.histories / (time.perf_counter() - t_start):.3g} histories/s",
                    )
                tally.per_batch += per_batch
                rounds.append(per_batch)
                round_s = time.perf_counter() - t_round
                achieved = _uncertainties(
                    tally,
                    scale,
                    (local_gy + alpha_gy)[box],
                    rho[box],
                    {k: w[box] for k, w in voi_w.items()},
                    target_kind,
                    air[box],
                )
                u = max(achieved.values()) if achieved else float("nan")
                elapsed = time.perf_counter() - t_start
                _report(
                    progress,
                    f"Monte Carlo after {tally.histories:.3g} histories ({elapsed:.1f} s): "
                    + ", ".join(f"{k} {100 * v:.2f} %" for k, v in achieved.items())
                    + (f" (target {100 * target_uncertainty:g} %)" if histories is None else ""),
                )
                if histories is not None:
                    reason = "fixed histories"
                    break
                if np.isfinite(u) and u <= target_uncertainty:
                    reason = "target reached"
                    break
                done = tally.histories
                if done >= cap:
                    reason = "max_histories reached"
                    break
                rate = n_batches * per_batch / max(round_s, 1e-9)
                if time_budget_s is not None:
                    left = float(time_budget_s) - elapsed
                    if left < 0.1 * round_s:
                        reason = "time budget"
                        break
                if np.isfinite(u) and u > 0:
                    need = done * (u / target_uncertainty) ** 2 * _SAFETY
                else:  # no dose in a target yet: grow as far as allowed
                    need = done * _GROWTH_MAX
                need = min(need, done * _GROWTH_MAX, cap)
                if time_budget_s is not None:
                    need = min(need, done + 0.9 * rate * (float(time_budget_s) - elapsed))
                per_batch = max(MIN_HISTORIES_PER_BATCH, math.ceil((need - done) / n_batches))
                if time_budget_s is not None and (need - done) < 0.05 * done:
                    reason = "time budget"
                    break
                r += 1
        finally:
            runner.close()

    # --- results
    n_done = max(tally.per_batch, 1)
    transported = np.zeros(tia.shape)
    sd = np.zeros(tia.shape)
    if run_members:
        batch_gy = tally.energy * (scale / n_done)
        transported[box] = batch_gy.mean(axis=0)
        sd[box] = batch_gy.std(axis=0, ddof=1) / math.sqrt(n_batches)
        del batch_gy
    dose = transported + local_gy + alpha_gy
    deposited_mev = float(np.sum(dose / j_per_kg))
    escaped_mev = (
        particles_total
        * (tally.kinetic_mev + _ANNIHILATION_MEV * tally.positrons - float(tally.energy.sum()))
        / tally.histories
        if tally.histories
        else 0.0
    )
    thr = parameters.get("density_air_max_g_per_ml")
    n_air = int(np.count_nonzero(air))
    total_decays = float(sum(float(a.sum()) for _, a, _, _ in sources))
    air_decays = float(sum(float(a[air].sum()) for _, a, _, _ in sources)) if n_air else 0.0
    frac_air = air_decays / total_decays if total_decays > 0 else 0.0
    alpha_out = alpha_gy.copy()
    if n_air:
        for x in (dose, alpha_out, sd):
            x[air] = 0.0
        if frac_air > 1e-3:
            log.warning(
                "%.2g %% of the map's decays lie in %d air voxels (density < %g g/mL): they "
                "are transported, but no dose is reported there (parameter "
                "density_air_max_g_per_ml)",
                100 * frac_air,
                n_air,
                thr,
            )
    voi_mean = {k: float(np.sum(w * rho * dose) / np.sum(w * rho)) for k, w in voi_w.items()}
    voi_u = achieved if voi_w else {}
    elapsed = time.perf_counter() - t_start
    j_scale = MEV_TO_J
    prov: dict[str, Any] = {
        "method": "mc",
        "code": "ompmc",
        "ompmc_version": ompmc_version,
        "nuclide": sources[0][0],
        "chain": bool(chain),
        "members": members_prov,
        "tia_unit": tia.unit,
        "excluded_components": list(exclude),
        "transport": {
            **{k: v for k, v in TRANSPORT.items() if k != "esave_mev"},
            "esave_mev": TRANSPORT["esave_mev"] if range_rejection else None,
            "range_rejection": bool(range_rejection),
            "stratified_source": bool(stratified),
            "source_biasing": importance is not None,
            "local_below_mev": 0.010,
            "particles_per_run_max": CHUNK_HISTORIES,
            "frame": "grid index axes (x: slices, y: rows, z: columns), edges in cm",
            "transport_box": [[sl.start, sl.stop] for sl in box],
            "spacing_cm": list(spacing_cm),
        },
        "media": phantom.media_map(),
        "media_source": phantom.source,
        "density_classes_g_per_ml": {
            n: parameters.get(n)
            for n in (
                "density_air_max_g_per_ml",
                "density_class_lung_max_g_per_ml",
                "density_class_bone_min_g_per_ml",
            )
        },
        "seed": int(seed),
        "seeds": "numpy SeedSequence([seed, batch, round, run]) for sampling; two 31-bit "
        "words spawned from it for ompmc's Philox4x32-10",
        "batches": n_batches,
        "histories": tally.histories,
        "histories_per_batch_by_round": rounds,
        "stopping_rule": {
            "kind": kind,
            "target_uncertainty": None if histories is not None else float(target_uncertainty),
            "target_kind": target_kind,
            "time_budget_s": time_budget_s,
            "max_histories": cap,
            "achieved": dict(achieved),
            "stopped_because": reason,
        },
        "energy_balance_j": {
            "emitted": emitted_mev * j_scale,
            "deposited": deposited_mev * j_scale,
            "escaped": escaped_mev * j_scale,
            "local_non_alpha": float(local_mev.sum()) * j_scale,
            "alpha": float(alpha_mev.sum()) * j_scale,
        },
        "air_density_max_g_per_ml": thr,
        "air_voxels": n_air,
        "source_fraction_in_air": frac_air,
        "workers": "dask client" if client is not None else (workers_used or 0),
        "in_process": inline,
        "elapsed_s": elapsed,
        "worker_s": tally.wall_s,
        "worker_cpu_s": tally.cpu_s,
    }
    unit = _TIA_UNITS[tia.unit]
    fields = {"provenance": prov}
    return MCResult(
        dose=tia.with_array(dose, unit=unit, **fields),
        alpha_dose=tia.with_array(alpha_out, unit=unit, **fields),
        uncertainty=tia.with_array(sd, unit=unit, **fields),
        histories=tally.histories,
        batches=n_batches,
        voi_relative_uncertainty=voi_u,
        voi_mean_dose=voi_mean,
        elapsed_s=elapsed,
        provenance=prov,
    )


def _importance(
    particles: np.ndarray,
    voi_w: Mapping[str, np.ndarray],
    spacing_cm: tuple[float, float, float],
    nuclide: str,
    chain: bool,
) -> np.ndarray:
    """Source importance per voxel: 1, raised in each target VOI dilated by the range of
    the most energetic electron (its own decays and those next to it dose it) to give
    that region at least ``0.5 / len(voi_w)`` of the particles (the largest raise wins
    where regions overlap)."""
    from scipy import ndimage

    from .heterogeneity import csda_range_water_g_per_cm2, max_electron_energy_mev

    r_cm = csda_range_water_g_per_cm2(max_electron_energy_mev(nuclide, chain)) / 1.04
    total = float(particles.sum())
    share_min = 0.5 / len(voi_w)
    imp = np.ones(particles.shape)
    for w in voi_w.values():
        if not np.any(w > 0):
            continue
        margin = [max(1, math.ceil(r_cm / s)) for s in spacing_cm]
        struct = np.ones([2 * m + 1 for m in margin], dtype=bool)
        region = ndimage.binary_dilation(w > 0, struct)
        share = float(particles[region].sum()) / total if total > 0 else 0.0
        if 0 < share < share_min:
            imp[region] = np.maximum(imp[region], share_min / share)
    return imp


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """Index slices of the smallest box holding every True voxel (the whole grid if none)."""
    out = []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        hit = np.flatnonzero(mask.any(axis=other))
        out.append(slice(int(hit[0]), int(hit[-1]) + 1) if hit.size else slice(0, mask.shape[ax]))
    return (out[0], out[1], out[2])


def _n_workers(workers: int | None, n_batches: int) -> int:
    if workers is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not on Linux
            n = os.cpu_count() or 1
    else:
        n = int(workers)
        if n < 1:
            raise InputDataError(f"workers must be >= 1, got {workers}")
    return max(1, min(n, n_batches))


def _uncertainties(
    tally: _Tally,
    scale: np.ndarray,
    fixed_gy: np.ndarray,
    rho: np.ndarray,
    voi_w: Mapping[str, np.ndarray],
    kind: str,
    air: np.ndarray,
) -> dict[str, float]:
    """Relative standard uncertainty per target (VOI means, VOI voxels, or the voxels
    above half the maximum) after the rounds so far."""
    b = tally.energy.shape[0]
    n = tally.per_batch
    if kind == "mean" and voi_w:
        out = {}
        flat_e = tally.energy.reshape(b, -1)
        for name, w in voi_w.items():
            idx = np.flatnonzero(w.ravel() > 0)
            wm = w.ravel()[idx] * rho.ravel()[idx]
            m_tot = float(wm.sum())
            if m_tot <= 0:  # the VOI lies in the air outside the transport box: no dose
                out[name] = 0.0
                continue
            per_batch = flat_e[:, idx] @ (wm * scale.ravel()[idx]) / (n * m_tot)
            mean = float(per_batch.mean()) + float(wm @ fixed_gy.ravel()[idx]) / m_tot
            sd = float(per_batch.std(ddof=1)) / math.sqrt(b)
            out[name] = sd / mean if mean > 0 else float("inf")
        return out
    batch_gy = tally.energy * (scale / n)
    mean = batch_gy.mean(axis=0) + fixed_gy
    sd = batch_gy.std(axis=0, ddof=1) / math.sqrt(b)
    rel = np.divide(sd, mean, out=np.full(mean.shape, np.inf), where=mean > 0)
    if voi_w:  # the mean relative uncertainty of the VOI's voxels (air: not reported)
        out = {}
        for name, w in voi_w.items():
            sel = (w > 0) & ~air
            if not sel.any():
                out[name] = 0.0
            elif np.all(np.isfinite(rel[sel])):
                out[name] = float(np.sum(w[sel] * rel[sel]) / np.sum(w[sel]))
            else:
                out[name] = float("inf")
        return out
    mean[air] = 0.0  # dose per mass of air voxels is not reported
    sel = mean >= VOXEL_THRESHOLD_OF_MAX * float(mean.max())
    return {"voxels above 50 % of max": float(rel[sel].mean())}
