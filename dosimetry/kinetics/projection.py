"""Diagnostic -> therapy projection: a pre-therapy PET becomes a therapy TIA map.

From one or more PET time points of a diagnostic agent (e.g. ⁶⁸Ga-PSMA-11) this module
predicts the time-integrated activity (TIA) per unit administered activity of a therapy
agent (e.g. ¹⁷⁷Lu-PSMA-617 or ²²⁵Ac-PSMA-617), voxel by voxel. The model, every part of
which is recorded in :attr:`ProjectionResult.assumptions`:

1. **Fraction of injected activity.** For each voxel, the activity at acquisition (decay
   correction undone) divided by the injected diagnostic activity decayed to acquisition
   time: ``f_v = A_v(t_pet) / (A_inj 2^(-t_pet/T_diag))`` (:meth:`PetFrame.from_activity`).
   This is the *biological* fraction of the administered molecules present in the voxel.
2. **Uptake relation.** The therapy agent reaches ``r f_v`` with a ratio ``r`` per VOI
   (``uptake_ratio``): 1 unless a relation between the diagnostic and the therapy agent
   is given (e.g. from paired patient cohorts); the source of each ratio is recorded.
3. **Plateau at PET time.** Uptake is assumed complete at ``t_pet``. ``head="plateau"``
   (default) holds the fraction constant from injection to ``t_pet``; ``head="instant"``
   extrapolates the clearance exponential back to ``t = 0``.
4. **Mono-exponential biological clearance** after ``t_pet`` with a half-life per VOI:
   user values (biological, or effective for the therapy nuclide) or published
   population effective half-lives (``dosimetry/data/population_kinetics.csv``,
   converted to biological half-lives with the physical half-life they contain).
5. **Physical decay** of the therapy nuclide from injection on.

So, with ``lb = ln2/T_bio``, ``lp = ln2/T_phys(therapy)``::

    plateau: TIA_v / A_admin = r f_v [ (1 - e^(-lp t_pet)) / lp + e^(-lp t_pet) / (lb + lp) ]
    instant: TIA_v / A_admin = r f_v e^(lb t_pet) / (lb + lp)

For a chain parent (²²⁵Ac) the TIA of each member follows from a daughter scenario:
``"in_situ"`` (default): every daughter decays where its parent decayed, so
``TIA_member = N_member * TIA_parent`` with ``N_member`` the number of member decays per
parent decay (product of branching fractions, from :func:`dosimetry.nuclide` progeny);
``free_bi213_fraction=phi``: a fraction ``phi`` of the ²¹³Bi (and its progeny) leaves the
source voxels and decays in ``bi213_sink`` (a VOI, e.g. the kidneys) or, when no sink is
given, is reported as relocated TIA outside the map.

The computation is split into steps that are each tested alone: :func:`_regions` (mask
weights and the background), :func:`_half_lives` (one half-life per region with its
source), :func:`_tia_map`, :func:`_sensitivity`, :func:`_chain_members` and
:func:`_assumptions`.

References
----------
Kratochwil C, et al. 225Ac-PSMA-617 for PSMA-targeted alpha-radiation therapy of
metastatic castration-resistant prostate cancer. J Nucl Med 2016;57:1941-1944 (treatment
activity derived from ¹⁷⁷Lu-PSMA-617 kinetics extrapolated to the ²²⁵Ac half-life).

Kruijff RM, Wolterbeek HT, Denkova AG. A critical review of alpha radionuclide therapy:
how to deal with recoiling daughters? Pharmaceuticals 2015;8:321-336 (daughter
redistribution, free ²¹³Bi accumulating in the kidneys).

Sgouros G, et al. MIRD Pamphlet No. 22: radiobiology and dosimetry of alpha-particle
emitters for targeted radionuclide therapy. J Nucl Med 2010;51:311-328.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from ..errors import InputDataError, NuclideError, UnitError
from ..results import Assumption, Finding, SensitivityRow
from ..volume import Volume
from ._population import (
    agent_reference_nuclide,
    canonical_agent,
    canonical_organ,
    population_biological_half_life_s,
    population_effective_half_life_s,
)

__all__ = [
    "project_tia",
    "ProjectionResult",
    "ProjectedVoi",
    "PetFrame",
    "UptakeRatio",
    "chain_decays_per_parent",
]

LN2 = math.log(2.0)

#: Members whose half-life exceeds this are treated as stable (end of chain), e.g. Bi-209.
_STABLE_HALF_LIFE_S = 1e4 * 365.25 * 86400.0


# --------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PetFrame:
    """One PET time point as the fraction of injected activity per voxel.

    Build with :meth:`from_activity` (activity at acquisition) or :meth:`from_fraction`.

    Attributes
    ----------
    fraction
        Fraction of the injected (decay-corrected to injection, i.e. biological) activity
        per voxel, negative noise clipped to 0.
    t_after_injection_s
        Time of the PET after injection (s).
    grid
        The PET Volume the fraction lies on.
    note
        How the fraction was obtained (for the assumptions).
    negative_voxels, negative_sum
        Voxels clipped to 0 and their summed (negative) fraction.
    """

    fraction: np.ndarray
    t_after_injection_s: float
    grid: Volume
    note: str
    negative_voxels: int = 0
    negative_sum: float = 0.0
    nuclide: str | None = None

    @classmethod
    def from_activity(
        cls,
        volume: Volume,
        injected_activity_bq: float,
        injection_time: datetime,
        nuclide: str,
    ) -> PetFrame:
        """A frame from PET activity at acquisition (decay correction undone).

        Parameters
        ----------
        volume
            Activity (``"Bq/mL"`` or ``"Bq"`` per voxel) with ``reference_time`` the
            acquisition time.
        injected_activity_bq
            Injected diagnostic activity (Bq) at ``injection_time``.
        injection_time
            Time of injection.
        nuclide
            Diagnostic nuclide (``"Ga-68"``, ``"F-18"``): its physical decay from
            injection to acquisition is divided out.
        """
        from ..nuclides import nuclide as get_nuclide

        if volume.unit not in ("Bq/mL", "Bq"):
            raise UnitError(
                f"PET activity Volume has unit {volume.unit!r}; expected 'Bq/mL' (concentration) "
                "or 'Bq' (activity per voxel) at acquisition time, decay correction undone."
            )
        a_inj = float(injected_activity_bq)
        if not np.isfinite(a_inj) or a_inj <= 0:
            raise InputDataError(
                f"injected activity must be positive (Bq), got {injected_activity_bq!r}"
            )
        if volume.reference_time is None:
            raise InputDataError(
                "PET activity Volume has no reference_time (acquisition time); set it with "
                "volume.with_array(volume.array, reference_time=datetime(...))."
            )
        if not isinstance(injection_time, datetime):
            raise InputDataError(f"injection_time must be a datetime, got {injection_time!r}")
        dt = (volume.reference_time - injection_time).total_seconds()
        if dt <= 0:
            raise InputDataError(
                f"PET acquisition ({volume.reference_time.isoformat()}) is not after the "
                f"injection ({injection_time.isoformat()})."
            )
        nuc = get_nuclide(nuclide)
        arr = np.asarray(volume.array, dtype=np.float64)
        per_voxel = arr * volume.voxel_volume_ml if volume.unit == "Bq/mL" else arr
        present_bq = a_inj * 2.0 ** (-dt / nuc.half_life_s)
        note = (
            f"A_inj={a_inj:.6g} Bq {nuc.name} at {injection_time.isoformat()}, PET at "
            f"{dt / 3600:.3f} h p.i.; fraction = voxel activity / (A_inj 2^(-t/T_diag))"
        )
        return cls._checked(per_voxel / present_bq, dt, volume, note, nuc.name)

    @classmethod
    def from_fraction(cls, volume: Volume, t_after_injection_s: float) -> PetFrame:
        """A frame from a fraction-of-injected-activity Volume (``"1"`` per voxel or
        ``"1/mL"``) at ``t_after_injection_s``."""
        if volume.unit not in ("1", "1/mL"):
            raise UnitError(
                f"PET fraction Volume has unit {volume.unit!r}; expected '1' (fraction of "
                "injected activity per voxel) or '1/mL'. For activity (Bq/mL) use "
                "PetFrame.from_activity(volume, injected_activity_bq, injection_time, nuclide)."
            )
        t_s = float(t_after_injection_s)
        if not np.isfinite(t_s) or t_s <= 0:
            raise InputDataError(
                f"pet_time_after_injection_s must be > 0, got {t_after_injection_s!r}"
            )
        arr = np.asarray(volume.array, dtype=np.float64)
        frac = arr * volume.voxel_volume_ml if volume.unit == "1/mL" else arr.copy()
        return cls._checked(frac, t_s, volume, f"fraction Volume at {t_s / 3600:.3f} h p.i.")

    @classmethod
    def _checked(
        cls, fraction: np.ndarray, t_s: float, grid: Volume, note: str, nuclide: str | None = None
    ) -> PetFrame:
        if not np.all(np.isfinite(fraction)):
            raise InputDataError(
                f"PET ({note}) has {int(np.sum(~np.isfinite(fraction)))} NaN/inf voxels; "
                "fill or mask them before projecting."
            )
        neg = fraction < 0
        n_neg = int(np.count_nonzero(neg))
        neg_sum = float(-fraction[neg].sum()) if n_neg else 0.0
        if n_neg:
            fraction = np.where(neg, 0.0, fraction)
            note += f"; {n_neg} negative voxels (total {neg_sum:.3g}) clipped to 0"
        return cls(fraction, t_s, grid, note, n_neg, neg_sum, nuclide)


@dataclass(frozen=True)
class UptakeRatio:
    """Therapy-agent uptake relative to the diagnostic agent's, for one VOI.

    Attributes
    ----------
    ratio
        Multiplier of the diagnostic fraction of injected activity.
    relative_sd
        Relative standard uncertainty of the ratio (feeds the dose uncertainty).
    source
        Citation (cohort, imaging, method) or the reason for the value.
    """

    ratio: float
    relative_sd: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class ProjectedVoi:
    """One row of the projection's VOI table (a VOI or the background)."""

    voi: str
    organ: str
    n_voxels: int
    volume_ml: float
    fraction_injected: float
    uptake_ratio: float
    biological_half_life_s: float
    effective_half_life_s: float
    tia_per_bq_s: float
    source: str


@dataclass(frozen=True, eq=False)
class ProjectionResult:
    """Result of :func:`project_tia`.

    Attributes
    ----------
    tia_per_bq
        TIA of the therapy nuclide (the chain parent) per administered activity,
        Volume in ``"Bq s/Bq"`` (i.e. seconds) on the PET grid.
    member_tia_per_bq
        Chain member -> TIA map per administered parent activity (``"Bq s/Bq"``); for a
        nuclide without radioactive progeny only the nuclide itself.
    voi_table
        One :class:`ProjectedVoi` per VOI (and the background).
    assumptions
        Every modelling assumption, with value and source.
    findings
        What the projection's checks found (clipped negative voxels, plateau check).
    sensitivity
        One row per VOI with an assumed half-life: the VOI's TIA (parent) when that
        half-life is scaled by ``1 - change`` and ``1 + change``.
    relocated_tia_per_bq
        Chain member -> TIA per administered activity moved out of the source voxels by
        a daughter-redistribution scenario and not placed in the map (no sink given).
    therapy_nuclide, agent
        What was projected.
    pet_time_after_injection_s
        Time of the PET used as the plateau.
    """

    tia_per_bq: Volume
    member_tia_per_bq: dict[str, Volume]
    voi_table: tuple[ProjectedVoi, ...]
    assumptions: tuple[Assumption, ...]
    findings: tuple[Finding, ...]
    sensitivity: tuple[SensitivityRow, ...]
    relocated_tia_per_bq: dict[str, float] = field(default_factory=dict)
    therapy_nuclide: str = ""
    agent: str = ""
    pet_time_after_injection_s: float = 0.0

    def tia(self, administered_activity_bq: float, member: str | None = None) -> Volume:
        """TIA map (``"Bq s"``) for a planned administered activity (Bq)."""
        a = float(administered_activity_bq)
        if not np.isfinite(a) or a <= 0:
            raise InputDataError(
                f"administered_activity_bq must be positive and finite, got {administered_activity_bq!r}"
            )
        vol = self.tia_per_bq if member is None else self.member_tia_per_bq[member]
        return vol.with_array(vol.array * a, unit="Bq s")

    def row(self, voi: str) -> ProjectedVoi:
        """The VOI table row of ``voi``."""
        for r in self.voi_table:
            if r.voi == voi:
                return r
        raise KeyError(f"no VOI {voi!r}; VOIs: {', '.join(r.voi for r in self.voi_table)}")

    def assumptions_text(self) -> str:
        """The assumptions as an aligned plain-text table."""
        rows = [("name", "value", "source")] + [
            (a.name, a.value, a.source) for a in self.assumptions
        ]
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        return "\n".join(f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}" for r in rows)

    def sensitivity_text(self) -> str:
        """The sensitivity table as plain text (relative TIA changes in %)."""
        lines = [f"{'VOI':<20} {'half-life':<40} {'-change':>9} {'+change':>9}"]
        for r in self.sensitivity:
            lines.append(
                f"{r.voi:<20} {r.half_life_kind:<40} "
                f"{100 * r.relative_change_minus:>8.1f}% {100 * r.relative_change_plus:>8.1f}%"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        """VOI table, assumptions and sensitivity as text."""
        lines = [
            f"Projected {self.therapy_nuclide} TIA per administered activity "
            f"(kinetic priors: {self.agent or 'none, user half-lives'})"
        ]
        for r in self.voi_table:
            bio_h = (
                "inf"
                if not np.isfinite(r.biological_half_life_s)
                else f"{r.biological_half_life_s / 3600:.1f}"
            )
            lines.append(
                f"  {r.voi:<18} f={r.fraction_injected:.4g}  T_bio={bio_h} h  "
                f"T_eff={r.effective_half_life_s / 3600:.1f} h  "
                f"TIA/A={r.tia_per_bq_s / 3600:.4g} h"
            )
        return "\n".join(
            lines + ["", self.assumptions_text(), "", "Sensitivity:", self.sensitivity_text()]
        )


# --------------------------------------------------------------------------------------
# chains
# --------------------------------------------------------------------------------------
def chain_decays_per_parent(parent: str) -> dict[str, float]:
    """Number of decays of each chain member per decay of ``parent`` (parent = 1).

    Integrated over all time, every radioactive descendant decays once per atom that
    reaches it, so the count is the sum over paths of the product of branching fractions
    (from :func:`dosimetry.nuclide` progeny, i.e. ICRP-107 branching).
    Members absent from ICRP-107 or with half-lives above 10^4 years end the chain.

    >>> n = chain_decays_per_parent("Ac-225")
    >>> sorted(n)
    ['Ac-225', 'At-217', 'Bi-213', 'Fr-221', 'Pb-209', 'Po-213', 'Tl-209']
    >>> round(n["Po-213"] + n["Tl-209"], 4) == round(n["Bi-213"], 4)
    True
    """
    from ..nuclides import nuclide

    root = nuclide(parent)
    counts: dict[str, float] = {root.name: 1.0}
    order = [root.name]
    # breadth-first accumulation; chains are short and acyclic
    frontier = [(root.name, 1.0)]
    while frontier:
        name, n = frontier.pop(0)
        for daughter, branch, _mode in nuclide(name).progeny:
            try:
                d = nuclide(daughter)
            except NuclideError:
                continue
            if d.half_life_s > _STABLE_HALF_LIFE_S:
                continue
            counts[d.name] = counts.get(d.name, 0.0) + n * float(branch)
            if d.name not in order:
                order.append(d.name)
            frontier.append((d.name, n * float(branch)))
    return {k: counts[k] for k in order}


def _chain_descendants(member: str, members: Sequence[str]) -> list[str]:
    """``member`` and every chain member below it."""
    from ..nuclides import nuclide

    out = [member]
    frontier = [member]
    while frontier:
        name = frontier.pop(0)
        for daughter, _b, _m in nuclide(name).progeny:
            try:
                d = nuclide(daughter).name
            except NuclideError:
                continue
            if d in members and d not in out:
                out.append(d)
                frontier.append(d)
    return out


# --------------------------------------------------------------------------------------
# step 1: frames and regions
# --------------------------------------------------------------------------------------
def _frames(
    pet: PetFrame | Volume | Sequence[PetFrame | Volume],
    pet_time_after_injection_s: float | Sequence[float] | None,
) -> list[PetFrame]:
    """The PET time points as frames, on one grid, sorted by time."""
    items: list[PetFrame | Volume]
    if isinstance(pet, PetFrame | Volume):
        items = [pet]
    elif isinstance(pet, Sequence) and not isinstance(pet, str):
        items = list(pet)
    else:
        raise InputDataError(
            f"pet must be a PetFrame, a fraction Volume or a list of them; got {type(pet).__name__}. "
            "Build a frame from activity with PetFrame.from_activity(volume, "
            "injected_activity_bq, injection_time, nuclide)."
        )
    if not items:
        raise InputDataError("pet is empty: give at least one PET time point")
    times: list[float | None]
    if pet_time_after_injection_s is None:
        times = [None] * len(items)
    elif isinstance(pet_time_after_injection_s, Sequence | np.ndarray):
        times = [float(x) for x in pet_time_after_injection_s]
    else:
        times = [float(pet_time_after_injection_s)] * len(items)
    if len(times) != len(items):
        raise InputDataError(
            f"pet_time_after_injection_s has {len(times)} values for {len(items)} PET time points"
        )
    frames: list[PetFrame] = []
    for item, t in zip(items, times, strict=True):
        if isinstance(item, PetFrame):
            frames.append(item)
        elif isinstance(item, Volume):
            if t is None:
                raise InputDataError(
                    "pet_time_after_injection_s is needed with a fraction Volume (time of the "
                    "PET after injection, in s); for activity use PetFrame.from_activity(...)."
                )
            frames.append(PetFrame.from_fraction(item, t))
        else:
            raise InputDataError(
                f"each PET time point must be a PetFrame or a fraction Volume; got "
                f"{type(item).__name__}"
            )
    ref = frames[0].grid
    for i, fr in enumerate(frames[1:], start=1):
        ref.check_same_grid(fr.grid, name=f"PET time point {i}")
    return sorted(frames, key=lambda f: f.t_after_injection_s)


def _masks(masks: Mapping[str, Volume], grid: Volume, overlap: str) -> dict[str, np.ndarray]:
    """Mask weights in [0, 1] per VOI (binary or fractional occupancy), overlaps resolved."""
    if overlap not in ("error", "first"):
        raise InputDataError(f"overlap={overlap!r}; valid: 'error', 'first'")
    if not isinstance(masks, Mapping):
        raise InputDataError("masks must be a dict of VOI name -> mask Volume")
    out: dict[str, np.ndarray] = {}
    taken = np.zeros(grid.shape, dtype=np.float64)
    tol = 1e-6
    for name, m in masks.items():
        if not isinstance(m, Volume):
            raise InputDataError(f"mask {name!r} must be a Volume, got {type(m).__name__}")
        grid.check_same_grid(m, name=f"mask {name!r}")
        w = np.asarray(m.array, dtype=np.float64)
        if not np.all(np.isfinite(w)) or w.min() < 0.0 or w.max() > 1.0 + tol:
            raise InputDataError(
                f"mask {name!r} has values outside [0, 1] (min {np.nanmin(w):.3g}, max "
                f"{np.nanmax(w):.3g}); give a binary mask or fractional occupancy"
            )
        w = np.minimum(w, 1.0)
        over = taken + w > 1.0 + tol
        if over.any():
            if overlap == "error":
                raise InputDataError(
                    f"mask {name!r} overlaps earlier masks in {int(over.sum())} voxels (weights "
                    "sum above 1); make the masks disjoint or pass overlap='first' (earlier "
                    "masks keep their weight)."
                )
            w = np.minimum(w, 1.0 - taken)
        if not w.any():
            raise InputDataError(f"mask {name!r} is empty (after removing overlaps)")
        taken += w
        out[str(name)] = w
    return out


def _regions(
    vois: Mapping[str, np.ndarray], shape: tuple[int, ...]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """VOI weights and the background weight ``1 - sum(VOI weights)`` (clipped to [0, 1])."""
    covered = np.zeros(shape, dtype=np.float64)
    for w in vois.values():
        covered += w
    return dict(vois), np.clip(1.0 - covered, 0.0, 1.0)


# --------------------------------------------------------------------------------------
# step 2: half-lives
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _HalfLife:
    t_bio_s: float  # biological half-life (inf = no biological clearance)
    kind: str  # "biological", "effective (<nuclide>)" or "population effective (<agent>)"
    given_s: float  # the value in the form it was given (for the sensitivity table)
    source: str


def _lookup(spec: float | Mapping[str, float] | None, name: str) -> float | None:
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        v = spec.get(name)
        return None if v is None else float(v)
    return float(spec)


def _bio_from_eff(t_eff_s: float, t_phys_s: float, what: str) -> float:
    if not np.isfinite(t_eff_s) or t_eff_s <= 0:
        raise InputDataError(f"effective half-life for {what} must be > 0 s, got {t_eff_s!r}")
    if t_eff_s > t_phys_s * (1 + 1e-12):
        raise InputDataError(
            f"effective half-life for {what} ({t_eff_s:.6g} s) exceeds the physical half-life "
            f"({t_phys_s:.6g} s): impossible for a clearing tissue."
        )
    inv = 1.0 / t_eff_s - 1.0 / t_phys_s
    return math.inf if inv <= 0 else 1.0 / inv


def _resolve_half_life(
    voi: str,
    agent: str | None,
    t_phys_s: float,
    therapy_name: str,
    biological: float | Mapping[str, float] | None,
    effective: float | Mapping[str, float] | None,
    organ_for_prior: str | None = None,
) -> _HalfLife:
    b = _lookup(biological, voi)
    e = _lookup(effective, voi)
    # a dict entry for this VOI wins over a scalar given for the other kind
    if b is not None and e is not None:
        b_dict = isinstance(biological, Mapping)
        e_dict = isinstance(effective, Mapping)
        if b_dict == e_dict:
            raise InputDataError(
                f"VOI {voi!r} has both a biological and an effective half-life; give one."
            )
        if b_dict:
            e = None
        else:
            b = None
    if b is not None:
        if not (b > 0):
            raise InputDataError(f"biological half-life for {voi!r} must be > 0 s, got {b!r}")
        return _HalfLife(b, "biological", b, "user input (biological_half_life_s)")
    if e is not None:
        return _HalfLife(
            _bio_from_eff(e, t_phys_s, voi),
            f"effective ({therapy_name})",
            e,
            "user input (effective_half_life_s), biological = 1/(1/T_eff - 1/T_phys)",
        )
    if agent is None:
        raise InputDataError(
            f"no half-life for VOI {voi!r}: give biological_half_life_s or effective_half_life_s "
            "(a number or a dict per VOI), or an agent with population priors."
        )
    organ = organ_for_prior or voi
    t_bio, cite = population_biological_half_life_s(agent, organ)
    t_eff_pop, _ = population_effective_half_life_s(agent, organ)
    return _HalfLife(
        t_bio, f"population effective ({canonical_agent(agent)})", t_eff_pop, f"population: {cite}"
    )


def _half_lives(
    vois: Sequence[str],
    background: str | float | None,
    *,
    agent: str | None,
    t_phys_s: float,
    therapy_name: str,
    biological: float | Mapping[str, float] | None,
    effective: float | Mapping[str, float] | None,
    prior_organ: Mapping[str, str] | None = None,
) -> dict[str, _HalfLife | None]:
    """One half-life per VOI and for the background (``None``: no TIA there)."""
    proxies = prior_organ or {}
    out: dict[str, _HalfLife | None] = {
        name: _resolve_half_life(
            name, agent, t_phys_s, therapy_name, biological, effective, proxies.get(name)
        )
        for name in vois
    }
    if background is None:
        return out
    if isinstance(background, int | float) and not isinstance(background, bool):
        out["background"] = _HalfLife(
            float(background), "biological", float(background), "user input"
        )
    elif background == "whole_body":
        if agent is None:
            raise InputDataError(
                "background='whole_body' needs an agent with population priors; give "
                "background='physical', 'zero' or a biological half-life in s."
            )
        out["background"] = _resolve_half_life(
            "background", agent, t_phys_s, therapy_name, None, None, organ_for_prior="whole_body"
        )
    elif background == "physical":
        out["background"] = _HalfLife(
            math.inf, "biological", math.inf, "no biological clearance (upper bound)"
        )
    elif background == "zero":
        out["background"] = None
    else:
        raise InputDataError(
            f"background={background!r}; valid: 'whole_body', 'physical', 'zero' or a "
            "biological half-life in s"
        )
    return out


def _scaled(hl: _HalfLife, factor: float, t_phys_s: float) -> float:
    """Biological half-life after scaling the half-life in the form it was given.

    ``t_phys_s`` is the physical half-life the given effective half-life contains; a scaled
    effective half-life is capped at it (no biological clearance).
    """
    if hl.kind == "biological":
        return hl.t_bio_s * factor
    return _bio_from_eff(min(hl.given_s * factor, t_phys_s), t_phys_s, "sensitivity")


# --------------------------------------------------------------------------------------
# step 3: the model
# --------------------------------------------------------------------------------------
def _tia_factor(t_bio_s: float, t_phys_s: float, t_pet_s: float, head: str) -> float:
    """TIA per unit fraction (s) for plateau/instant uptake, mono-exponential clearance."""
    lp = LN2 / t_phys_s
    lb = 0.0 if not np.isfinite(t_bio_s) else LN2 / t_bio_s
    if head == "plateau":
        return (-math.expm1(-lp * t_pet_s)) / lp + math.exp(-lp * t_pet_s) / (lb + lp)
    return math.exp(lb * t_pet_s) / (lb + lp)


def _tia_map(
    frame: PetFrame,
    regions: Mapping[str, np.ndarray],
    half_lives: Mapping[str, _HalfLife | None],
    ratios: Mapping[str, UptakeRatio],
    *,
    t_phys_s: float,
    head: str,
) -> tuple[np.ndarray, tuple[ProjectedVoi, ...]]:
    """The parent TIA map per administered activity and the per-region table."""
    tia = np.zeros(frame.fraction.shape, dtype=np.float64)
    rows: list[ProjectedVoi] = []
    t_pet = frame.t_after_injection_s
    for name, w in regions.items():
        hl = half_lives.get(name)
        if hl is None:
            continue
        ratio = ratios[name].ratio if name in ratios else 1.0
        factor = _tia_factor(hl.t_bio_s, t_phys_s, t_pet, head)
        part = frame.fraction * w * (ratio * factor)
        tia += part
        inv_bio = 0.0 if not np.isfinite(hl.t_bio_s) else 1.0 / hl.t_bio_s
        rows.append(
            ProjectedVoi(
                voi=name,
                organ=(canonical_organ(name) or "") if name != "background" else "background",
                n_voxels=int(np.count_nonzero(w)),
                volume_ml=float(w.sum() * frame.grid.voxel_volume_ml),
                fraction_injected=float((frame.fraction * w).sum()),
                uptake_ratio=ratio,
                biological_half_life_s=hl.t_bio_s,
                effective_half_life_s=1.0 / (1.0 / t_phys_s + inv_bio),
                tia_per_bq_s=float(part.sum()),
                source=hl.source,
            )
        )
    return tia, tuple(rows)


def _sensitivity(
    rows: Sequence[ProjectedVoi],
    half_lives: Mapping[str, _HalfLife | None],
    *,
    change: float,
    t_phys_s: float,
    t_ref_phys_s: float,
    t_pet_s: float,
    head: str,
) -> tuple[SensitivityRow, ...]:
    """Each region's TIA with its assumed half-life scaled by ``1 -/+ change``."""
    out: list[SensitivityRow] = []
    for entry in rows:
        hl = half_lives[entry.voi]
        if hl is None or not np.isfinite(hl.t_bio_s):
            continue
        t_given_phys = t_ref_phys_s if hl.kind.startswith("population") else t_phys_s
        vals = [
            entry.fraction_injected
            * entry.uptake_ratio
            * _tia_factor(_scaled(hl, f, t_given_phys), t_phys_s, t_pet_s, head)
            for f in (1.0 - change, 1.0 + change)
        ]
        out.append(
            SensitivityRow(
                voi=entry.voi,
                half_life_kind=hl.kind,
                half_life_s=hl.given_s,
                change=change,
                tia_per_bq_s=entry.tia_per_bq_s,
                tia_minus_per_bq_s=vals[0],
                tia_plus_per_bq_s=vals[1],
            )
        )
    return tuple(out)


def _chain_members(
    tia_vol: Volume,
    therapy_name: str,
    vois: Mapping[str, np.ndarray],
    *,
    free_bi213_fraction: float,
    bi213_sink: str | None,
) -> tuple[dict[str, Volume], dict[str, float], dict[str, float]]:
    """Per-member TIA maps, relocated TIA (no sink) and the decays per parent decay."""
    counts = chain_decays_per_parent(therapy_name)
    phi = free_bi213_fraction
    tia = np.asarray(tia_vol.array)
    members: dict[str, Volume] = {}
    relocated: dict[str, float] = {}
    freed = set(_chain_descendants("Bi-213", list(counts))) if "Bi-213" in counts else set()
    if phi > 0 and not freed:
        raise InputDataError(f"free_bi213_fraction={phi} but {therapy_name}'s chain has no Bi-213")
    total_parent = float(tia.sum())
    for member, n in counts.items():
        arr = tia * n
        if member in freed and phi > 0:
            moved = phi * n * total_parent
            arr = arr * (1.0 - phi)
            if bi213_sink is not None:
                sink = vois[bi213_sink]
                arr = arr + sink * (moved / float(sink.sum()))
            else:
                relocated[member] = moved
        members[member] = tia_vol.with_array(arr, unit="Bq s/Bq")
    return members, relocated, counts


def _assumptions(
    *,
    therapy_name: str,
    t_phys_s: float,
    diag_desc: str,
    plateau: PetFrame,
    head: str,
    canon_agent: str | None,
    ligand_transfer: bool,
    half_lives: Mapping[str, _HalfLife | None],
    ratios: Mapping[str, UptakeRatio],
    plateau_rows: Sequence[tuple[str, str, bool]],
    change: float,
    counts: Mapping[str, float],
    free_bi213_fraction: float,
    bi213_sink: str | None,
    prior_organ: Mapping[str, str] | None = None,
) -> tuple[Assumption, ...]:
    """Every modelling assumption of the projection, with its source."""
    out = [
        Assumption("therapy nuclide", f"{therapy_name}, T1/2 = {t_phys_s:.6g} s", "ICRP-107"),
        Assumption("diagnostic nuclide", diag_desc, "ICRP-107"),
        Assumption(
            "fraction of injected activity",
            plateau.note,
            "activity at acquisition (decay correction undone) / decayed injected activity",
        ),
    ]
    related = {k: v for k, v in ratios.items() if k in half_lives}
    if not related:
        out.append(
            Assumption(
                "shared biodistribution",
                "therapy agent reaches the diagnostic agent's voxel fractions",
                "modelling assumption (theranostic pair)",
            )
        )
    else:
        for name, r in related.items():
            out.append(
                Assumption(
                    f"uptake relation {name}",
                    f"therapy fraction = {r.ratio:.3g} x diagnostic fraction "
                    f"(relative SD {100 * r.relative_sd:.0f} %)",
                    r.source,
                )
            )
    out += [
        Assumption(
            "uptake phase",
            f"plateau reached at PET time {plateau.t_after_injection_s / 3600:.3f} h; head={head}",
            "modelling assumption",
        ),
        Assumption(
            "clearance",
            "mono-exponential biological clearance per VOI after PET time, physical decay "
            "from injection",
            "modelling assumption",
        ),
    ]
    if ligand_transfer:
        out.append(
            Assumption(
                "ligand kinetics transfer",
                f"biological half-lives of {canon_agent} applied to {therapy_name}",
                "assumption: the label does not change the pharmacokinetics (Kratochwil 2016)",
            )
        )
    for voi, text, ok in plateau_rows:
        out.append(
            Assumption(
                "plateau check", f"{voi}: {text}", "within tolerance" if ok else "exceeds tolerance"
            )
        )
    for name, hl in half_lives.items():
        if hl is None or name == "background":
            if hl is None:
                out.append(
                    Assumption(
                        "background", "no TIA outside the VOIs", "user choice background='zero'"
                    )
                )
            else:
                out.append(
                    Assumption(
                        "half-life background",
                        f"{hl.kind} {hl.given_s / 3600:.4g} h (outside every VOI)",
                        hl.source,
                    )
                )
            continue
        t_bio_txt = "inf" if not np.isfinite(hl.t_bio_s) else f"{hl.t_bio_s / 3600:.4g}"
        out.append(
            Assumption(
                f"half-life {name}",
                f"{hl.kind} {hl.given_s / 3600:.4g} h -> T_bio {t_bio_txt} h "
                f"(organ read as {(prior_organ or {}).get(name) or canonical_organ(name)})",
                hl.source,
            )
        )
    out.append(
        Assumption(
            "sensitivity",
            f"each assumed half-life scaled by 1 -/+ {change:g} (in the form given); TIA "
            "(and so LED dose) of the VOI reported",
            "sensitivity analysis",
        )
    )
    if len(counts) > 1:
        desc = ", ".join(f"{k} {v:.4g}" for k, v in counts.items())
        out.append(
            Assumption(
                "daughters",
                f"in situ (decays per parent decay: {desc})",
                "ICRP-107 branching; Sgouros et al. 2010 (MIRD 22)",
            )
        )
        if free_bi213_fraction > 0:
            where = (
                f"decays in VOI {bi213_sink!r}"
                if bi213_sink
                else "left out of the map (relocated_tia_per_bq)"
            )
            out.append(
                Assumption(
                    "free Bi-213",
                    f"fraction {free_bi213_fraction:g} of Bi-213 and progeny leaves the source "
                    f"voxels; {where}",
                    "user scenario; Kruijff et al. 2015",
                )
            )
    return tuple(out)


# --------------------------------------------------------------------------------------
# the public function
# --------------------------------------------------------------------------------------
def project_tia(
    pet: PetFrame | Volume | Sequence[PetFrame | Volume],
    masks: Mapping[str, Volume],
    *,
    agent: str | None,
    therapy_nuclide: str | None = None,
    biological_half_life_s: float | Mapping[str, float] | None = None,
    effective_half_life_s: float | Mapping[str, float] | None = None,
    uptake_ratio: Mapping[str, UptakeRatio] | None = None,
    background: Literal["whole_body", "physical", "zero"] | float = "whole_body",
    pet_time_after_injection_s: float | Sequence[float] | None = None,
    head: Literal["plateau", "instant"] = "plateau",
    daughters: Literal["in_situ"] = "in_situ",
    free_bi213_fraction: float = 0.0,
    bi213_sink: str | None = None,
    overlap: Literal["error", "first"] = "error",
    sensitivity_change: float = 0.25,
    plateau_tolerance: float = 0.2,
    prior_organ: Mapping[str, str] | None = None,
) -> ProjectionResult:
    """Project a diagnostic PET onto a therapy agent's TIA map per administered activity.

    Parameters
    ----------
    pet
        One PET time point or a list of them: :class:`PetFrame` (from activity with
        :meth:`PetFrame.from_activity`), or a Volume of the fraction of injected activity
        (decay-corrected to injection, i.e. biological fraction) per voxel (unit ``"1"``)
        or per mL (``"1/mL"``) with ``pet_time_after_injection_s``. With several time
        points the latest is used as the plateau value; earlier ones check the plateau
        assumption (a ``"plateau"`` finding when a VOI's fraction changes by more than
        ``plateau_tolerance`` between the last two).
    masks
        VOI name -> mask Volume on the PET grid: binary, or fractional occupancy in [0, 1]
        (partial-volume voxels are shared between VOIs and background in proportion).
        The name selects the population prior (``"kidney_left"`` -> kidneys; see
        :func:`dosimetry.kinetics.population_effective_half_life_s`). May be empty (the
        whole map is background).
    agent
        Therapy agent (required keyword): its population priors supply missing
        half-lives, and its nuclide is the therapy nuclide unless ``therapy_nuclide`` is
        given; a ligand's biological half-lives transfer to another nuclide
        (``"Ac-225-PSMA-617"`` uses the PSMA-617 priors). ``None``: every half-life must
        be given, and ``therapy_nuclide`` too.
    therapy_nuclide
        ``"Lu-177"``, ``"Ac-225"``, ... Default: the agent's nuclide.
    biological_half_life_s, effective_half_life_s
        A number for every VOI or a dict per VOI name (s). Effective half-lives refer to
        the *therapy* nuclide. A dict entry beats a number of the other kind; both for the
        same VOI is an error. ``numpy.inf`` (biological) means no biological clearance.
    uptake_ratio
        VOI (or ``"background"``) -> :class:`UptakeRatio`: the therapy agent's uptake
        relative to the diagnostic agent's. VOIs without an entry use 1 (shared
        biodistribution), stated in the assumptions.
    background
        Voxels (or voxel fractions) outside every mask: ``"whole_body"`` (population
        whole-body half-life of ``agent``), ``"physical"`` (no biological clearance, an
        upper bound), ``"zero"`` (no TIA outside the VOIs) or a biological half-life in s.
    pet_time_after_injection_s
        Time of the PET after injection (s), needed for fraction Volumes.
    head
        ``"plateau"`` (constant fraction from injection to PET time) or ``"instant"``
        (clearance exponential extrapolated to injection).
    daughters
        Daughter scenario for chain parents; ``"in_situ"`` (each member decays where its
        parent decayed), optionally modified by ``free_bi213_fraction``.
    free_bi213_fraction
        Fraction (0-1) of ²¹³Bi and its progeny that leaves the source voxels.
    bi213_sink
        Name of the VOI where freed ²¹³Bi decays (spread over it in proportion to the
        mask weights); ``None``: the relocated TIA is reported in ``relocated_tia_per_bq``
        and left out of the map.
    overlap
        ``"error"`` when mask weights sum above 1 in a voxel, or ``"first"`` (earlier
        masks keep their weight, later ones get what is left).
    sensitivity_change
        Relative change applied to each assumed half-life for the sensitivity table.
    plateau_tolerance
        Relative change of a VOI's fraction between the last two PET time points above
        which the plateau assumption is flagged.
    prior_organ
        VOI -> organ whose population half-life the VOI takes (a stated proxy, e.g. the
        salivary glands' for the lacrimal glands); default: the organ the VOI name maps to.

    Returns
    -------
    ProjectionResult
        ``tia_per_bq`` (``"Bq s/Bq"``), per-member maps, VOI table, assumptions, findings
        and sensitivity table.

    Raises
    ------
    GeometryMismatchError
        Masks or time points on another grid.
    InputDataError, UnitError, DosimetryError
        Missing times/activities, NaN voxels, masks outside [0, 1] or overlapping, missing
        half-lives (the message lists what the population table has).

    Examples
    --------
    >>> import numpy as np
    >>> from dosimetry import Volume
    >>> frac = Volume.from_spacing(np.full((2, 2, 2), 0.01), (4.0, 4.0, 4.0), unit="1")
    >>> kid = frac.with_array(np.ones((2, 2, 2), bool), unit="1")
    >>> r = project_tia(frac, {"kidneys": kid}, agent=None, therapy_nuclide="Lu-177",
    ...                 effective_half_life_s={"kidneys": 40 * 3600.0},
    ...                 pet_time_after_injection_s=3600.0, background="zero")
    >>> # 8 voxels x 1 % x T_eff/ln2 = 4.62 h, plus the plateau during the first hour
    >>> round(r.voi_table[0].tia_per_bq_s / 3600, 2)
    4.68
    """
    from ..nuclides import nuclide, parse_agent

    if therapy_nuclide is None:
        if agent is None:
            raise InputDataError(
                "therapy_nuclide is needed when agent=None; pass therapy_nuclide='Lu-177' "
                "(or 'Ac-225', ...)."
            )
        therapy_nuclide = parse_agent(agent).nuclide
    therapy = nuclide(therapy_nuclide)
    t_phys = therapy.half_life_s
    if head not in ("plateau", "instant"):
        raise InputDataError(f"head={head!r}; valid: 'plateau', 'instant'")
    if daughters != "in_situ":
        raise InputDataError(f"daughters={daughters!r}; valid: 'in_situ'")
    phi = float(free_bi213_fraction)
    if not 0.0 <= phi <= 1.0:
        raise InputDataError(f"free_bi213_fraction must be in [0, 1], got {free_bi213_fraction!r}")
    change = float(sensitivity_change)
    if not 0.0 < change < 1.0:
        raise InputDataError(f"sensitivity_change must be in (0, 1), got {sensitivity_change!r}")
    canon_agent = None if agent is None else canonical_agent(agent)
    t_ref_phys = t_phys
    if canon_agent is not None:
        t_ref_phys = nuclide(agent_reference_nuclide(canon_agent)).half_life_s
    ratios = dict(uptake_ratio or {})
    for name, r in ratios.items():
        if not isinstance(r, UptakeRatio) or not (np.isfinite(r.ratio) and r.ratio >= 0):
            raise InputDataError(f"uptake_ratio[{name!r}] must be an UptakeRatio with ratio >= 0")

    frames = _frames(pet, pet_time_after_injection_s)
    plateau = frames[-1]
    grid = plateau.grid
    vois = _masks(masks, grid, overlap)
    if bi213_sink is not None and bi213_sink not in vois:
        raise InputDataError(f"bi213_sink={bi213_sink!r} is not a VOI; VOIs: {', '.join(vois)}")

    findings: list[Finding] = []
    from ..checks import check_negative_voxels, check_plateau

    for fr in frames:
        total = float(fr.fraction.sum())
        f = check_negative_voxels(
            fr.negative_voxels, fr.negative_sum, total, f"PET ({fr.note.split(';')[0]})"
        )
        if f is not None:
            findings.append(f)
    plateau_rows: list[tuple[str, str, bool]] = []
    if len(frames) >= 2:
        prev = frames[-2]
        for name, w in vois.items():
            f_prev = float((prev.fraction * w).sum())
            f_last = float((plateau.fraction * w).sum())
            rel = (f_last - f_prev) / f_prev if f_prev > 0 else math.inf
            text = (
                f"fraction {f_prev:.4g} at {prev.t_after_injection_s / 3600:.2f} h -> "
                f"{f_last:.4g} at {plateau.t_after_injection_s / 3600:.2f} h ({100 * rel:+.1f} %)"
            )
            ok = abs(rel) <= plateau_tolerance
            plateau_rows.append((name, text, ok))
            pf = check_plateau(name, rel, plateau_tolerance, text)
            if pf is not None:
                findings.append(pf)

    regions, bg_weight = _regions(vois, grid.shape)
    half_lives = _half_lives(
        list(vois),
        background if bg_weight.any() else None,
        agent=canon_agent,
        t_phys_s=t_phys,
        therapy_name=therapy.name,
        biological=biological_half_life_s,
        effective=effective_half_life_s,
        prior_organ=prior_organ,
    )
    if half_lives.get("background") is not None:
        regions["background"] = bg_weight
    tia, rows = _tia_map(plateau, regions, half_lives, ratios, t_phys_s=t_phys, head=head)
    sensitivity = _sensitivity(
        rows,
        half_lives,
        change=change,
        t_phys_s=t_phys,
        t_ref_phys_s=t_ref_phys,
        t_pet_s=plateau.t_after_injection_s,
        head=head,
    )
    provenance = {
        **dict(grid.provenance),
        "projection": {
            "therapy_nuclide": therapy.name,
            "agent": canon_agent,
            "head": head,
            "pet_time_after_injection_s": plateau.t_after_injection_s,
            "daughters": daughters,
            "free_bi213_fraction": phi,
        },
    }
    tia_vol = Volume(
        tia,
        grid.affine,
        "Bq s/Bq",
        frame_of_reference_uid=grid.frame_of_reference_uid,
        reference_time=None,
        provenance=provenance,
    )
    members, relocated, counts = _chain_members(
        tia_vol, therapy.name, vois, free_bi213_fraction=phi, bi213_sink=bi213_sink
    )
    diag_desc = _diagnostic_description(frames)
    assumptions = _assumptions(
        therapy_name=therapy.name,
        t_phys_s=t_phys,
        diag_desc=diag_desc,
        plateau=plateau,
        head=head,
        canon_agent=canon_agent,
        ligand_transfer=canon_agent is not None and t_ref_phys != t_phys,
        half_lives=half_lives,
        ratios=ratios,
        plateau_rows=plateau_rows,
        change=change,
        counts=counts,
        free_bi213_fraction=phi,
        bi213_sink=bi213_sink,
        prior_organ=prior_organ,
    )
    return ProjectionResult(
        tia_per_bq=tia_vol,
        member_tia_per_bq=members,
        voi_table=rows,
        assumptions=assumptions,
        findings=tuple(findings),
        sensitivity=sensitivity,
        relocated_tia_per_bq=relocated,
        therapy_nuclide=therapy.name,
        agent=canon_agent or "",
        pet_time_after_injection_s=plateau.t_after_injection_s,
    )


def _diagnostic_description(frames: Sequence[PetFrame]) -> str:
    from ..nuclides import nuclide

    for fr in frames:
        if fr.nuclide is not None:
            return f"{fr.nuclide}, T1/2 = {nuclide(fr.nuclide).half_life_s:.6g} s (ICRP-107)"
    return "not needed (fraction input)"
