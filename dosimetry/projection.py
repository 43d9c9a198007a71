"""Diagnostic -> therapy projection: a pre-therapy PET becomes a therapy TIA map.

From one or more PET time points of a diagnostic agent (e.g. ⁶⁸Ga-PSMA-11) this module
predicts the time-integrated activity (TIA) per unit administered activity of a therapy
agent (e.g. ¹⁷⁷Lu-PSMA-617 or ²²⁵Ac-PSMA-617), voxel by voxel. The model, every part of
which is recorded in :attr:`ProjectionResult.assumptions`:

1. **Fraction of injected activity.** For each voxel, the activity at acquisition (decay
   correction undone) divided by the injected diagnostic activity decayed to acquisition
   time: ``f_v = A_v(t_pet) / (A_inj 2^(-t_pet/T_diag))``. This is the *biological*
   fraction of the administered molecules present in the voxel.
2. **Shared biodistribution.** The therapy agent is assumed to reach the same fraction
   ``f_v`` as the diagnostic agent (same target, comparable ligand; an approximation
   whose validity depends on the pair, e.g. PSMA-11 vs PSMA-617 differ in kidney and
   salivary-gland kinetics).
3. **Plateau at PET time.** Uptake is assumed complete at ``t_pet``. ``head="plateau"``
   (default) holds ``f_v`` constant from injection to ``t_pet``; ``head="instant"``
   extrapolates the clearance exponential back to ``t = 0``.
4. **Mono-exponential biological clearance** after ``t_pet`` with a half-life per VOI:
   user values (biological, or effective for the therapy nuclide) or published
   population effective half-lives (``dosimetry/data/population_kinetics.csv``,
   converted to biological half-lives with the ¹⁷⁷Lu physical half-life they contain).
5. **Physical decay** of the therapy nuclide from injection on.

So, with ``lb = ln2/T_bio``, ``lp = ln2/T_phys(therapy)``::

    plateau: TIA_v / A_admin = f_v [ (1 - e^(-lp t_pet)) / lp + e^(-lp t_pet) / (lb + lp) ]
    instant: TIA_v / A_admin = f_v e^(lb t_pet) / (lb + lp)

For a chain parent (²²⁵Ac) the TIA of each member follows from a daughter scenario:
``"in_situ"`` (default): every daughter decays where its parent decayed, so
``TIA_member = N_member * TIA_parent`` with ``N_member`` the number of member decays per
parent decay (product of branching fractions, from :func:`dosimetry.nuclide` progeny);
``free_bi213_fraction=phi``: a fraction ``phi`` of the ²¹³Bi (and its progeny) leaves the
source voxels and decays in ``bi213_sink`` (a VOI, e.g. the kidneys) or, when no sink is
given, is reported as relocated TIA outside the map.

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

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

from .errors import InputDataError, UnitError
from .kinetics._population import (
    canonical_agent,
    canonical_organ,
    population_biological_half_life_s,
    population_effective_half_life_s,
)
from .volume import Volume

__all__ = ["project_tia", "ProjectionResult", "chain_decays_per_parent"]

log = logging.getLogger(__name__)

LN2 = math.log(2.0)

#: Members whose half-life exceeds this are treated as stable (end of chain), e.g. Bi-209.
_STABLE_HALF_LIFE_S = 1e4 * 365.25 * 86400.0

PetInput = Volume | tuple[Volume, float, datetime]


def _assumption(name: str, value: str, source: str) -> dict[str, str]:
    """One assumption row: what (``name``), the value used, and where it came from."""
    return {"name": name, "value": value, "source": source}


@dataclass(frozen=True)
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
        One dict per VOI (and ``"background"``): organ read from the name, voxel count,
        fraction of injected activity at PET time, biological and effective half-life (s),
        summed TIA per administered activity (s), and the half-life's source.
    assumptions
        Every modelling assumption, with value and source.
    sensitivity
        One dict per VOI with an assumed half-life: the VOI's TIA (parent) when that
        half-life is scaled by ``1 - change`` and ``1 + change``, and the relative changes.
    relocated_tia_per_bq
        Chain member -> TIA per administered activity moved out of the source voxels by
        a daughter-redistribution scenario and not placed in the map (no sink given).
    therapy_nuclide, agent
        What was projected.
    """

    tia_per_bq: Volume
    member_tia_per_bq: dict[str, Volume]
    voi_table: list[dict[str, Any]]
    assumptions: list[dict[str, str]]
    sensitivity: list[dict[str, Any]]
    relocated_tia_per_bq: dict[str, float] = field(default_factory=dict)
    therapy_nuclide: str = ""
    agent: str = ""

    def tia(self, administered_activity_bq: float, member: str | None = None) -> Volume:
        """TIA map (``"Bq s"``) for a planned administered activity (Bq)."""
        a = float(administered_activity_bq)
        if not np.isfinite(a) or a <= 0:
            raise InputDataError(
                f"administered_activity_bq must be positive and finite, got {administered_activity_bq!r}"
            )
        vol = self.tia_per_bq if member is None else self.member_tia_per_bq[member]
        return vol.with_array(vol.array * a, unit="Bq s")

    def assumptions_text(self) -> str:
        """The assumptions as an aligned plain-text table."""
        rows = [("name", "value", "source")] + [
            (str(a["name"]), str(a["value"]), str(a["source"])) for a in self.assumptions
        ]
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        return "\n".join(f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}" for r in rows)

    def sensitivity_text(self) -> str:
        """The sensitivity table as plain text (relative TIA changes in %)."""
        lines = [f"{'VOI':<20} {'half-life':<40} {'-change':>9} {'+change':>9}"]
        for r in self.sensitivity:
            lines.append(
                f"{r['voi']:<20} {r['half_life_kind']:<40} "
                f"{100 * r['relative_change_minus']:>8.1f}% {100 * r['relative_change_plus']:>8.1f}%"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        """VOI table, assumptions and sensitivity as text."""
        lines = [
            f"Projected {self.therapy_nuclide} TIA per administered activity "
            f"(kinetic priors: {self.agent or 'none, user half-lives'})"
        ]
        for r in self.voi_table:
            t_bio = r["biological_half_life_s"]
            bio_h = "inf" if not np.isfinite(t_bio) else f"{t_bio / 3600:.1f}"
            lines.append(
                f"  {r['voi']:<18} f={r['fraction_injected']:.4g}  T_bio={bio_h} h  "
                f"T_eff={r['effective_half_life_s'] / 3600:.1f} h  "
                f"TIA/A={r['tia_per_bq_s'] / 3600:.4g} h"
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
    (from :func:`dosimetry.nuclide` progeny, i.e. radioactivedecay's ICRP-107 data).
    Members absent from ICRP-107 or with half-lives above 10^4 years end the chain.

    >>> n = chain_decays_per_parent("Ac-225")
    >>> sorted(n)
    ['Ac-225', 'At-217', 'Bi-213', 'Fr-221', 'Pb-209', 'Po-213', 'Tl-209']
    >>> round(n["Po-213"] + n["Tl-209"], 4) == round(n["Bi-213"], 4)
    True
    """
    from .errors import NuclideError
    from .nuclides import nuclide

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
    from .errors import NuclideError
    from .nuclides import nuclide

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
# inputs
# --------------------------------------------------------------------------------------
@dataclass
class _Frame:
    fraction: np.ndarray  # fraction of injected (decay-corrected) activity per voxel
    t_after_injection_s: float
    grid: Volume
    note: str


def _fraction_from_activity(
    vol: Volume,
    injected_activity_bq: float,
    injection_time: datetime,
    diagnostic_half_life_s: float,
    diagnostic_name: str,
) -> _Frame:
    if vol.unit not in ("Bq/mL", "Bq"):
        raise UnitError(
            f"PET activity Volume has unit {vol.unit!r}; expected 'Bq/mL' (concentration) or "
            "'Bq' (activity per voxel) at acquisition time, decay correction undone."
        )
    a_inj = float(injected_activity_bq)
    if not np.isfinite(a_inj) or a_inj <= 0:
        raise InputDataError(
            f"injected activity must be positive (Bq), got {injected_activity_bq!r}"
        )
    if vol.reference_time is None:
        raise InputDataError(
            "PET activity Volume has no reference_time (acquisition time); set it with "
            "volume.with_array(volume.array, reference_time=datetime(...))."
        )
    if not isinstance(injection_time, datetime):
        raise InputDataError(f"injection_time must be a datetime, got {injection_time!r}")
    dt = (vol.reference_time - injection_time).total_seconds()
    if dt <= 0:
        raise InputDataError(
            f"PET acquisition ({vol.reference_time.isoformat()}) is not after the injection "
            f"({injection_time.isoformat()})."
        )
    arr = np.asarray(vol.array, dtype=np.float64)
    per_voxel = arr * vol.voxel_volume_ml if vol.unit == "Bq/mL" else arr
    present_bq = a_inj * 2.0 ** (-dt / diagnostic_half_life_s)
    note = (
        f"A_inj={a_inj:.6g} Bq {diagnostic_name} at {injection_time.isoformat()}, PET at "
        f"{dt / 3600:.3f} h p.i.; fraction = voxel activity / (A_inj 2^(-t/T_diag))"
    )
    return _Frame(per_voxel / present_bq, dt, vol, note)


def _frames(
    pet: PetInput | Sequence[PetInput],
    diagnostic_nuclide: str | None,
    pet_time_after_injection_s: float | Sequence[float] | None,
) -> tuple[list[_Frame], str]:
    from .nuclides import nuclide

    items: list[PetInput]
    if isinstance(pet, Volume | tuple):
        items = [pet]
    else:
        items = list(pet)
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
    frames: list[_Frame] = []
    diag_desc = "not needed (fraction input)"
    for item, t in zip(items, times, strict=True):
        if isinstance(item, tuple):
            if len(item) != 3:
                raise InputDataError(
                    "a PET time point given as a tuple must be (activity Volume, "
                    "injected_activity_bq, injection_time)"
                )
            vol, a_inj, t_inj = item
            name = diagnostic_nuclide
            if name is None:
                name = vol.provenance.get("nuclide") if vol.provenance else None
                if name is None:
                    raise InputDataError(
                        "the diagnostic nuclide is needed to turn PET activity into a fraction "
                        "of injected activity: pass diagnostic_nuclide='Ga-68' (or 'F-18', ...)."
                    )
                log.info("diagnostic nuclide %s taken from the PET Volume's provenance", name)
            nuc = nuclide(str(name))
            diag_desc = f"{nuc.name}, T1/2 = {nuc.half_life_s:.6g} s (ICRP-107)"
            frames.append(_fraction_from_activity(vol, a_inj, t_inj, nuc.half_life_s, nuc.name))
        elif isinstance(item, Volume):
            if item.unit not in ("1", "1/mL"):
                raise UnitError(
                    f"PET fraction Volume has unit {item.unit!r}; expected '1' (fraction of "
                    "injected activity per voxel) or '1/mL'. For activity (Bq/mL) pass the tuple "
                    "(volume, injected_activity_bq, injection_time)."
                )
            if t is None:
                raise InputDataError(
                    "pet_time_after_injection_s is needed with a fraction Volume (time of the "
                    "PET after injection, in s)."
                )
            t_s = float(t)
            if not np.isfinite(t_s) or t_s <= 0:
                raise InputDataError(f"pet_time_after_injection_s must be > 0, got {t!r}")
            arr = np.asarray(item.array, dtype=np.float64)
            frac = arr * item.voxel_volume_ml if item.unit == "1/mL" else arr.copy()
            frames.append(_Frame(frac, t_s, item, f"fraction Volume at {t_s / 3600:.3f} h p.i."))
        else:
            raise InputDataError(
                f"pet must be a Volume, a (Volume, injected_activity_bq, injection_time) tuple "
                f"or a list of these; got {type(item).__name__}"
            )
    ref = frames[0].grid
    for i, fr in enumerate(frames[1:], start=1):
        ref.check_same_grid(fr.grid, name=f"PET time point {i}")
    for fr in frames:
        if not np.all(np.isfinite(fr.fraction)):
            raise InputDataError(
                f"PET ({fr.note}) has {int(np.sum(~np.isfinite(fr.fraction)))} NaN/inf voxels; "
                "fill or mask them before projecting."
            )
        n_neg = int(np.sum(fr.fraction < 0))
        if n_neg:
            neg = float(-fr.fraction[fr.fraction < 0].sum())
            log.warning(
                "PET (%s): %d negative voxels (sum %.3g of injected) set to 0 (noise clip)",
                fr.note,
                n_neg,
                neg,
            )
            fr.fraction = np.where(fr.fraction < 0, 0.0, fr.fraction)
            fr.note += f"; {n_neg} negative voxels (total {neg:.3g}) clipped to 0"
    frames.sort(key=lambda f: f.t_after_injection_s)
    return frames, diag_desc


def _masks(masks: Mapping[str, Volume], grid: Volume, overlap: str) -> dict[str, np.ndarray]:
    """Mask weights in [0, 1] per VOI (binary or fractional occupancy), overlaps resolved."""
    if overlap not in ("error", "first"):
        raise InputDataError(f"overlap={overlap!r}; valid: 'error', 'first'")
    if not isinstance(masks, Mapping) or not masks:
        raise InputDataError("masks must be a non-empty dict of VOI name -> mask Volume")
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


# --------------------------------------------------------------------------------------
# half-lives
# --------------------------------------------------------------------------------------
@dataclass
class _HalfLife:
    t_bio_s: float  # biological half-life (inf = no biological clearance)
    kind: str  # "biological" or "effective (<nuclide>)"
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


def _scaled(hl: _HalfLife, factor: float, t_phys_s: float) -> float:
    """Biological half-life after scaling the half-life in the form it was given.

    ``t_phys_s`` is the physical half-life the given effective half-life contains; a scaled
    effective half-life is capped at it (no biological clearance).
    """
    if hl.kind == "biological":
        return hl.t_bio_s * factor
    return _bio_from_eff(min(hl.given_s * factor, t_phys_s), t_phys_s, "sensitivity")


# --------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------
def _tia_factor(t_bio_s: float, t_phys_s: float, t_pet_s: float, head: str) -> float:
    """TIA per unit fraction (s) for plateau/instant uptake, mono-exponential clearance."""
    lp = LN2 / t_phys_s
    lb = 0.0 if not np.isfinite(t_bio_s) else LN2 / t_bio_s
    if head == "plateau":
        return (-math.expm1(-lp * t_pet_s)) / lp + math.exp(-lp * t_pet_s) / (lb + lp)
    return math.exp(lb * t_pet_s) / (lb + lp)


_UNSET: Any = object()


def _agent_nuclide(agent: str) -> str | None:
    """Nuclide named at the start of an agent name (``"Ac-225-PSMA-617"`` -> ``"Ac-225"``)."""
    import re

    from .errors import NuclideError
    from .nuclides import normalize_name

    text = agent.strip()
    for pat in (
        r"^\[?(\d{1,3}[A-Za-z]{1,2})\]?",  # 177Lu-..., [225Ac]Ac-...
        r"^([A-Za-z]{1,2}-?\d{1,3})",  # Lu-177-..., Ac225-...
    ):
        m = re.match(pat, text)
        if m:
            try:
                return normalize_name(m.group(1))
            except NuclideError:
                continue
    return None


def _parse_positional(
    args: tuple[Any, ...],
    masks: Mapping[str, Volume] | None,
    therapy_nuclide: str | None,
    agent: Any,
    injected_activity_bq: float | None,
    injection_time: datetime | None,
) -> tuple[Mapping[str, Volume], str | None, Any, float | None, datetime | None]:
    """Accept ``(masks[, therapy_nuclide[, agent]])`` or ``(A_inj, t_inj, masks, ...)``."""
    rest = list(args)
    if rest and not isinstance(rest[0], Mapping):
        if len(rest) < 3 or not isinstance(rest[2], Mapping):
            raise InputDataError(
                "positional arguments after pet must be (masks[, therapy_nuclide[, agent]]) or "
                "(injected_activity_bq, injection_time, masks[, therapy_nuclide[, agent]])"
            )
        if injected_activity_bq is not None or injection_time is not None:
            raise InputDataError("injected activity / injection time given twice")
        injected_activity_bq, injection_time = float(rest[0]), rest[1]
        rest = rest[2:]
    if len(rest) > 3:
        raise InputDataError(f"too many positional arguments ({len(args) + 1})")
    names = ("masks", "therapy_nuclide", "agent")
    given = {"masks": masks, "therapy_nuclide": therapy_nuclide, "agent": agent}
    for key, value in zip(names, rest, strict=False):
        if given[key] is not None and given[key] is not _UNSET:
            raise InputDataError(f"{key} given both positionally and by keyword")
        given[key] = value
    if given["masks"] is None:
        raise InputDataError("masks (dict of VOI name -> mask Volume) is required")
    return (
        given["masks"],
        given["therapy_nuclide"],
        given["agent"],
        injected_activity_bq,
        injection_time,
    )


def project_tia(
    pet: PetInput | Sequence[PetInput],
    *args: Any,
    masks: Mapping[str, Volume] | None = None,
    therapy_nuclide: str | None = None,
    agent: str | None = _UNSET,
    injected_activity_bq: float | None = None,
    injection_time: datetime | None = None,
    biological_half_life_s: float | Mapping[str, float] | None = None,
    effective_half_life_s: float | Mapping[str, float] | None = None,
    background: Literal["whole_body", "physical", "zero"] | float = "whole_body",
    diagnostic_nuclide: str | None = None,
    pet_time_after_injection_s: float | Sequence[float] | None = None,
    head: Literal["plateau", "instant"] = "plateau",
    daughters: Literal["in_situ"] = "in_situ",
    free_bi213_fraction: float = 0.0,
    bi213_sink: str | None = None,
    overlap: Literal["error", "first"] = "error",
    sensitivity_change: float = 0.25,
    plateau_tolerance: float = 0.2,
) -> ProjectionResult:
    """Project a diagnostic PET onto a therapy agent's TIA map per administered activity.

    Call as ``project_tia(pet, masks, therapy_nuclide, agent, ...)`` or, for a single
    activity Volume, ``project_tia(activity, injected_activity_bq, injection_time, masks,
    ...)``.

    Parameters
    ----------
    pet
        One PET time point or a list of them. Each is either a Volume of activity at
        acquisition given as ``(volume, injected_activity_bq, injection_time)`` with
        ``volume.unit`` ``"Bq/mL"`` or ``"Bq"``, decay correction undone, and
        ``volume.reference_time`` the acquisition time; or a Volume of the fraction of
        injected activity (decay-corrected to injection, i.e. biological fraction) per voxel
        (unit ``"1"``) or per mL (``"1/mL"``) with ``pet_time_after_injection_s``. With
        several time points the latest is used as the plateau value; earlier ones check
        the plateau assumption (a warning and an assumptions row when a VOI's fraction
        changes by more than ``plateau_tolerance`` between the last two).
    *args
        ``masks[, therapy_nuclide[, agent]]`` or ``injected_activity_bq, injection_time,
        masks[, therapy_nuclide[, agent]]`` (the latter with an activity Volume as ``pet``).
    masks
        VOI name -> mask Volume on the PET grid: binary, or fractional occupancy in [0, 1]
        (partial-volume voxels are shared between VOIs and background in proportion).
        The name selects the population prior (``"kidney_left"`` -> kidneys; see
        :func:`dosimetry.kinetics.population_effective_half_life_s`).
    therapy_nuclide
        ``"Lu-177"``, ``"Ac-225"``, ... Its physical decay is applied from injection on.
        Default: the nuclide named at the start of ``agent`` (``"Ac-225-PSMA-617"``).
    agent
        Agent whose population priors supply missing half-lives (default
        ``"Lu-177-PSMA-617"``; also ``"Lu-177-DOTATATE"``); a ligand's biological
        half-lives transfer to another nuclide (``"Ac-225-PSMA-617"`` uses the PSMA-617
        priors). ``None``: every half-life must be given.
    injected_activity_bq, injection_time
        Diagnostic injected activity (Bq) and time, for an activity Volume passed alone.
    biological_half_life_s, effective_half_life_s
        A number for every VOI or a dict per VOI name (s). Effective half-lives refer to
        the *therapy* nuclide. A dict entry beats a number of the other kind; both for the
        same VOI is an error. ``numpy.inf`` (biological) means no biological clearance.
    background
        Voxels (or voxel fractions) outside every mask: ``"whole_body"`` (population
        whole-body half-life of ``agent``), ``"physical"`` (no biological clearance, an
        upper bound), ``"zero"`` (no TIA outside the VOIs) or a biological half-life in s.
    diagnostic_nuclide
        Nuclide of the PET agent (``"Ga-68"``, ``"F-18"``), needed for activity input;
        when omitted, the Volume's ``provenance["nuclide"]`` is used (and logged).
    pet_time_after_injection_s
        Time of the PET after injection (s), needed for fraction input.
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

    Returns
    -------
    ProjectionResult
        ``tia_per_bq`` (``"Bq s/Bq"``), per-member maps, VOI table, assumptions and
        sensitivity table.

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
    >>> r = project_tia(frac, {"kidneys": kid}, "Lu-177", agent=None,
    ...                 effective_half_life_s={"kidneys": 40 * 3600.0},
    ...                 pet_time_after_injection_s=3600.0, background="zero")
    >>> # 8 voxels x 1 % x T_eff/ln2 = 4.62 h, plus the plateau during the first hour
    >>> round(r.voi_table[0]["tia_per_bq_s"] / 3600, 2)
    4.68
    """
    from .kinetics._population import agent_reference_nuclide
    from .nuclides import nuclide

    masks, therapy_nuclide, agent, injected_activity_bq, injection_time = _parse_positional(
        args, masks, therapy_nuclide, agent, injected_activity_bq, injection_time
    )
    if agent is _UNSET:
        agent = "Lu-177-PSMA-617"
    if injected_activity_bq is not None or injection_time is not None:
        if not isinstance(pet, Volume) or injected_activity_bq is None or injection_time is None:
            raise InputDataError(
                "injected_activity_bq and injection_time go with a single activity Volume as pet"
            )
        pet = (pet, float(injected_activity_bq), injection_time)
    if therapy_nuclide is None:
        therapy_nuclide = _agent_nuclide(agent) if agent is not None else None
        if therapy_nuclide is None:
            raise InputDataError(
                f"therapy_nuclide not given and agent {agent!r} does not name one; pass "
                "therapy_nuclide='Lu-177' (or 'Ac-225', ...)."
            )
    therapy = nuclide(therapy_nuclide)
    t_phys = therapy.half_life_s
    if head not in ("plateau", "instant"):
        raise InputDataError(f"head={head!r}; valid: 'plateau', 'instant'")
    if daughters != "in_situ":
        raise InputDataError(f"daughters={daughters!r}; valid: 'in_situ'")
    phi = float(free_bi213_fraction)
    if not 0.0 <= phi <= 1.0:
        raise InputDataError(f"free_bi213_fraction must be in [0, 1], got {free_bi213_fraction!r}")
    if not 0.0 < float(sensitivity_change) < 1.0:
        raise InputDataError(f"sensitivity_change must be in (0, 1), got {sensitivity_change!r}")
    canon_agent = None if agent is None else canonical_agent(agent)
    t_ref_phys = t_phys
    if canon_agent is not None:
        t_ref_phys = nuclide(agent_reference_nuclide(canon_agent)).half_life_s

    frames, diag_desc = _frames(pet, diagnostic_nuclide, pet_time_after_injection_s)
    grid = frames[-1].grid
    plateau = frames[-1]
    vois = _masks(masks, grid, overlap)
    if bi213_sink is not None and bi213_sink not in vois:
        raise InputDataError(f"bi213_sink={bi213_sink!r} is not a VOI; VOIs: {', '.join(vois)}")

    assumptions: list[dict[str, str]] = [
        _assumption("therapy nuclide", f"{therapy.name}, T1/2 = {t_phys:.6g} s", "ICRP-107"),
        _assumption("diagnostic nuclide", diag_desc, "ICRP-107"),
        _assumption(
            "fraction of injected activity",
            plateau.note,
            "activity at acquisition (decay correction undone) / decayed injected activity",
        ),
        _assumption(
            "shared biodistribution",
            "therapy agent reaches the diagnostic agent's voxel fractions",
            "modelling assumption (theranostic pair)",
        ),
        _assumption(
            "uptake phase",
            f"plateau reached at PET time {plateau.t_after_injection_s / 3600:.3f} h; head={head}",
            "modelling assumption",
        ),
        _assumption(
            "clearance",
            "mono-exponential biological clearance per VOI after PET time, physical decay "
            "from injection",
            "modelling assumption",
        ),
    ]
    if canon_agent is not None and t_ref_phys != t_phys:
        assumptions.append(
            _assumption(
                "ligand kinetics transfer",
                f"biological half-lives of {canon_agent} applied to {therapy.name}",
                "assumption: the label does not change the pharmacokinetics (Kratochwil 2016)",
            )
        )

    # plateau check with several time points
    if len(frames) >= 2:
        prev = frames[-2]
        for name, w in vois.items():
            f_prev = float((prev.fraction * w).sum())
            f_last = float((plateau.fraction * w).sum())
            change = (f_last - f_prev) / f_prev if f_prev > 0 else math.inf
            row = (
                f"{name}: fraction {f_prev:.4g} at {prev.t_after_injection_s / 3600:.2f} h -> "
                f"{f_last:.4g} at {plateau.t_after_injection_s / 3600:.2f} h ({100 * change:+.1f} %)"
            )
            ok = abs(change) <= plateau_tolerance
            if not ok:
                log.warning("plateau assumption questionable for %s", row)
            assumptions.append(
                _assumption(
                    "plateau check",
                    row,
                    "within tolerance" if ok else f"exceeds {100 * plateau_tolerance:.0f} %",
                )
            )

    # per-region weights: VOIs, then background = 1 - sum of VOI weights
    regions: dict[str, np.ndarray] = dict(vois)
    half_lives: dict[str, _HalfLife] = {}
    for name in vois:
        hl = _resolve_half_life(
            name,
            canon_agent,
            t_phys,
            therapy.name,
            biological_half_life_s,
            effective_half_life_s,
        )
        half_lives[name] = hl
        t_bio_txt = "inf" if not np.isfinite(hl.t_bio_s) else f"{hl.t_bio_s / 3600:.4g}"
        assumptions.append(
            _assumption(
                f"half-life {name}",
                f"{hl.kind} {hl.given_s / 3600:.4g} h -> T_bio {t_bio_txt} h "
                f"(organ read as {canonical_organ(name)})",
                hl.source,
            )
        )
    covered = np.zeros(grid.shape, dtype=np.float64)
    for w in vois.values():
        covered += w
    bg_weight = np.clip(1.0 - covered, 0.0, 1.0)
    if bg_weight.any():
        bg_hl: _HalfLife | None
        if isinstance(background, int | float) and not isinstance(background, bool):
            bg_hl = _HalfLife(float(background), "biological", float(background), "user input")
        elif background == "whole_body":
            if canon_agent is None:
                raise InputDataError(
                    "background='whole_body' needs an agent with population priors; give "
                    "background='physical', 'zero' or a biological half-life in s."
                )
            bg_hl = _resolve_half_life(
                "background",
                canon_agent,
                t_phys,
                therapy.name,
                None,
                None,
                organ_for_prior="whole_body",
            )
        elif background == "physical":
            bg_hl = _HalfLife(
                math.inf, "biological", math.inf, "no biological clearance (upper bound)"
            )
        elif background == "zero":
            bg_hl = None
        else:
            raise InputDataError(
                f"background={background!r}; valid: 'whole_body', 'physical', 'zero' or a "
                "biological half-life in s"
            )
        if bg_hl is not None:
            half_lives["background"] = bg_hl
            regions["background"] = bg_weight
            assumptions.append(
                _assumption(
                    "half-life background",
                    f"{bg_hl.kind} {bg_hl.given_s / 3600:.4g} h (outside every VOI)",
                    bg_hl.source,
                )
            )
        else:
            assumptions.append(
                _assumption(
                    "background", "no TIA outside the VOIs", "user choice background='zero'"
                )
            )

    tia = np.zeros(grid.shape, dtype=np.float64)
    voi_table: list[dict[str, Any]] = []
    for name, w in regions.items():
        hl = half_lives[name]
        factor = _tia_factor(hl.t_bio_s, t_phys, plateau.t_after_injection_s, head)
        part = plateau.fraction * w * factor
        tia += part
        inv_bio = 0.0 if not np.isfinite(hl.t_bio_s) else 1.0 / hl.t_bio_s
        voi_table.append(
            {
                "voi": name,
                "organ": canonical_organ(name) if name != "background" else "background",
                "n_voxels": int(np.count_nonzero(w)),
                "volume_ml": float(w.sum() * grid.voxel_volume_ml),
                "fraction_injected": float((plateau.fraction * w).sum()),
                "biological_half_life_s": hl.t_bio_s,
                "effective_half_life_s": 1.0 / (1.0 / t_phys + inv_bio),
                "tia_per_bq_s": float(part.sum()),
                "source": hl.source,
            }
        )

    # sensitivity: scale each assumed half-life
    change = float(sensitivity_change)
    sensitivity: list[dict[str, Any]] = []
    for entry in voi_table:
        name = entry["voi"]
        hl = half_lives[name]
        if not np.isfinite(hl.t_bio_s):
            continue
        base = entry["tia_per_bq_s"]
        t_given_phys = t_ref_phys if hl.kind.startswith("population") else t_phys
        vals = [
            entry["fraction_injected"]
            * _tia_factor(_scaled(hl, fct, t_given_phys), t_phys, plateau.t_after_injection_s, head)
            for fct in (1.0 - change, 1.0 + change)
        ]
        sensitivity.append(
            {
                "voi": name,
                "half_life_kind": hl.kind,
                "half_life_s": hl.given_s,
                "tia_per_bq_s": base,
                "tia_minus_per_bq_s": vals[0],
                "tia_plus_per_bq_s": vals[1],
                "relative_change_minus": vals[0] / base - 1.0 if base > 0 else 0.0,
                "relative_change_plus": vals[1] / base - 1.0 if base > 0 else 0.0,
            }
        )
    assumptions.append(
        _assumption(
            "sensitivity",
            f"each assumed half-life scaled by 1 -/+ {change:g} (in the form given); TIA "
            "(and so LED dose) of the VOI reported",
            "sensitivity analysis",
        )
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

    # chain members
    counts = chain_decays_per_parent(therapy.name)
    members: dict[str, Volume] = {}
    relocated: dict[str, float] = {}
    freed = set(_chain_descendants("Bi-213", list(counts))) if "Bi-213" in counts else set()
    if phi > 0 and not freed:
        raise InputDataError(f"free_bi213_fraction={phi} but {therapy.name}'s chain has no Bi-213")
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
    if len(counts) > 1:
        desc = ", ".join(f"{k} {v:.4g}" for k, v in counts.items())
        assumptions.append(
            _assumption(
                "daughters",
                f"in situ (decays per parent decay: {desc})",
                "radioactivedecay / ICRP-107 branching; Sgouros et al. 2010 (MIRD 22)",
            )
        )
        if phi > 0:
            where = (
                f"decays in VOI {bi213_sink!r}"
                if bi213_sink
                else "left out of the map (relocated_tia_per_bq)"
            )
            assumptions.append(
                _assumption(
                    "free Bi-213",
                    f"fraction {phi:g} of Bi-213 and progeny leaves the source voxels; {where}",
                    "user scenario; Kruijff et al. 2015",
                )
            )
    return ProjectionResult(
        tia_per_bq=tia_vol,
        member_tia_per_bq=members,
        voi_table=voi_table,
        assumptions=assumptions,
        sensitivity=sensitivity,
        relocated_tia_per_bq=relocated,
        therapy_nuclide=therapy.name,
        agent=canon_agent or "",
    )
