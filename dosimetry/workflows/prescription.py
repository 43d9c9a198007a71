"""Prescription: the largest activity per administration within organ-at-risk limits over
a whole treatment, and the treatment history it accounts for.

From a plan (or a measured SPECT result) the dose per administered activity of every VOI is
known; organs at risk are the VOIs the alias table maps to a limited organ (``kidneys`` =
both kidneys, combined by mass). For a treatment of the cycles already given (a
:class:`TreatmentHistory`) plus ``N`` planned identical cycles:

* absorbed-dose limit ``L``: ``D_hist + N d A <= L``, so ``A = (L - D_hist) / (N d)``;
* BED limit: ``BED_hist + N (d A + G (d A)^2 / (alpha/beta)) <= L`` -- quadratic in ``A``
  for the kinetics' Lea-Catcheside factor ``G`` (not a scaling), solved in closed form
  (:func:`dosimetry.radiobiology.dose_for_bed`); cycles are taken to be separated by much
  more than the repair half-time, so their BEDs add;
* EQD2 limit: converted to BED with ``BED = EQD2 (1 + 2 / (alpha/beta))``.

``d`` is the organ's mass-weighted mean dose per activity (Gy/Bq; Gy_RBE/Bq for alpha
emitters, with the RBE named), or its upper bound ``d (1 + k u)`` with ``bound="upper"``.
The result is decision support for a physician, not an order; every output says so.

References
----------
Dale RG. The application of the linear-quadratic dose-effect equation to fractionated and
protracted radiotherapy. Br J Radiol 1985;58:515-528 (BED of protracted irradiation).

Bodei L, Cremonesi M, Ferrari M, et al. Long-term evaluation of renal toxicity after
peptide receptor radionuclide therapy with 90Y-DOTATOC and 177Lu-DOTATATE: the role of
associated risk factors. Eur J Nucl Med Mol Imaging 2008;35:1847-1856 (renal BED limits).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InputDataError
from ..results import WorkflowResult
from ..voi import VoiMap
from ..volume import Volume

__all__ = [
    "Limit",
    "parse_limit",
    "default_limits",
    "OrganDose",
    "LimitOutcome",
    "Prescription",
    "TreatmentHistory",
    "CycleRecord",
    "max_activity",
    "organ_doses",
    "history_entry",
    "DECISION_SUPPORT",
]

DECISION_SUPPORT = (
    "Decision support for the treating physician, not a prescription order: the activity "
    "below follows from the stated limits, kinetics and model assumptions, each with its "
    "uncertainty."
)

Quantity = Literal["absorbed_dose", "bed", "eqd2"]


@dataclass(frozen=True)
class Limit:
    """A limit on an organ's treatment total.

    Attributes
    ----------
    organ
        Organ name (``"kidneys"``, ``"red_marrow"``, ``"salivary_glands"``) or a VOI name.
    quantity
        ``"absorbed_dose"`` (Gy; Gy_RBE for alpha emitters), ``"bed"`` or ``"eqd2"`` (Gy).
    value_gy
        The limit (Gy).
    source
        Citation or ``"user"``.
    """

    organ: str
    quantity: Quantity
    value_gy: float
    source: str = "user"

    def label(self) -> str:
        """``"kidneys BED <= 40 Gy"``."""
        q = {"absorbed_dose": "mean dose", "bed": "BED", "eqd2": "EQD2"}[self.quantity]
        return f"{self.organ} {q} <= {self.value_gy:g} Gy"


def parse_limit(text: str) -> Limit:
    """``"kidneys=23Gy"``, ``"kidneys=BED:40Gy"``, ``"red_marrow=2 Gy"``, ``"kidneys=EQD2:28Gy"``."""
    m = re.fullmatch(
        r"\s*([A-Za-z][\w\-]*)\s*=\s*(?:(BED|EQD2|DOSE)\s*:\s*)?([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*(Gy|Gy_RBE)?\s*",
        str(text),
        flags=re.IGNORECASE,
    )
    if not m:
        raise InputDataError(
            f"--limit {text!r}: write ORGAN=VALUEGy, ORGAN=BED:VALUEGy or ORGAN=EQD2:VALUEGy "
            "(e.g. --limit kidneys=23Gy --limit kidneys=BED:40Gy)"
        )
    kind = (m.group(2) or "dose").lower()
    quantity: Quantity = {"dose": "absorbed_dose", "bed": "bed", "eqd2": "eqd2"}[kind]  # type: ignore[assignment]
    value = float(m.group(3))
    if not (value > 0 and math.isfinite(value)):
        raise InputDataError(f"--limit {text!r}: the limit must be positive")
    return Limit(m.group(1), quantity, value, "user (--limit)")


def default_limits(*, renal_risk_factors: bool = True) -> tuple[Limit, ...]:
    """The table's limits (``status == "limit"``; kidney BED 28 Gy with renal risk factors,
    40 Gy without), each with its citation (``dosimetry/data/organ_dose_limits.csv``)."""
    from ..limits import organ_dose_limits

    out = []
    for r in organ_dose_limits():
        if not r.is_limit or r.limit_gy is None:
            continue
        if r.organ == "kidneys" and r.quantity == "bed":
            without = "without" in r.condition
            if without == renal_risk_factors:
                continue
        out.append(Limit(r.organ, r.quantity, float(r.limit_gy), r.citation))
    return tuple(out)


@dataclass(frozen=True)
class OrganDose:
    """An organ's dose per administered activity in one cycle, and its kinetics."""

    organ: str
    vois: tuple[str, ...]
    mass_g: float
    dose_per_bq: float
    unit: str
    g_factor: float | None
    alpha_beta_gy: float | None
    relative_u: float | None
    note: str = ""


@dataclass(frozen=True)
class CycleRecord:
    """One cycle of a treatment: what was given and the organ doses it gave (or will)."""

    cycle: int
    date: str
    agent: str
    administered_activity_bq: float
    source: str
    organs: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class TreatmentHistory:
    """A patient's treatment so far (versioned JSON, read-only input)."""

    cycles: tuple[CycleRecord, ...] = ()
    patient_id: str = ""
    FORMAT = "dosimetry-treatment-history/1"

    @classmethod
    def load(cls, path: str | Path) -> TreatmentHistory:
        """Read a history file (never modified)."""
        from ..io.outputs import check_output_file

        p = Path(path)
        check_output_file(p)  # a history.json of an output set must be the one written
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputDataError(f"--history: cannot read {p}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            raise InputDataError(
                f'--history {p}: not a treatment history (expected "format": "{cls.FORMAT}")'
            )
        cycles = []
        for i, c in enumerate(data.get("cycles", []), start=1):
            try:
                organs = {
                    str(k): {str(kk): float(vv) for kk, vv in v.items()}
                    for k, v in dict(c.get("organs", {})).items()
                }
                cycles.append(
                    CycleRecord(
                        int(c.get("cycle", i)),
                        str(c.get("date", "")),
                        str(c["agent"]),
                        float(c["administered_activity_bq"]),
                        str(c.get("source", "")),
                        organs,
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise InputDataError(f"--history {p}: cycle {i} is incomplete ({exc})") from exc
        return cls(tuple(cycles), str(data.get("patient_id", "")))

    def with_cycles(self, new: Iterable[CycleRecord]) -> TreatmentHistory:
        """A copy with more cycles (numbered on)."""
        cycles = list(self.cycles)
        for c in new:
            cycles.append(
                CycleRecord(
                    len(cycles) + 1, c.date, c.agent, c.administered_activity_bq, c.source, c.organs
                )
            )
        return TreatmentHistory(tuple(cycles), self.patient_id)

    def to_json(self) -> str:
        """The history as versioned JSON."""
        return (
            json.dumps(
                {
                    "format": self.FORMAT,
                    "patient_id": self.patient_id,
                    "cycles": [asdict(c) for c in self.cycles],
                },
                indent=2,
            )
            + "\n"
        )

    def cumulative(self) -> dict[str, tuple[float, float | None, int]]:
        """Every organ and lesion (``"lesion:NAME"``) of the history: its summed mean dose,
        summed BED (``None`` unless every cycle that has it gives its BED) and the number
        of cycles that record it."""
        out: dict[str, tuple[float, float | None, int]] = {}
        for c in self.cycles:
            for key, o in c.organs.items():
                if "mean_gy" not in o:
                    continue
                d0, b0, n0 = out.get(key, (0.0, 0.0, 0))
                d = float(o["mean_gy"])
                if "bed_gy" in o:
                    b = float(o["bed_gy"])
                elif "g_factor" in o and "alpha_beta_gy" in o:
                    b = d * (1.0 + o["g_factor"] * d / o["alpha_beta_gy"])
                else:
                    b = None
                out[key] = (d0 + d, None if b0 is None or b is None else b0 + b, n0 + 1)
        return out

    def totals(self, organ: str) -> tuple[float, float | None]:
        """Cumulative (dose, BED) of ``organ`` over the history; BED ``None`` if a cycle
        lacks it. A cycle's BED is its own ``bed_gy`` or, from ``mean_gy``, ``g_factor``
        and ``alpha_beta_gy``, ``D (1 + G D / (alpha/beta))``.

        Raises
        ------
        InputDataError
            A cycle without the organ's ``mean_gy``: counting it as 0 would understate the
            dose already given."""
        dose = 0.0
        bed: float | None = 0.0
        for c in self.cycles:
            o = c.organs.get(organ)
            if o is None or "mean_gy" not in o:
                have = ", ".join(sorted(c.organs)) or "none"
                raise InputDataError(
                    f"treatment history: cycle {c.cycle} ({c.date}, {c.source or 'no source'}) "
                    f"has no mean dose of {organ} (organs recorded: {have}); the limit on "
                    f"{organ} needs it. Add the organ's mean_gy to that cycle of the --history "
                    "file, or leave that limit out"
                )
            d = float(o["mean_gy"])
            dose += d
            if bed is None:
                continue
            if "bed_gy" in o:
                bed += float(o["bed_gy"])
            elif "g_factor" in o and "alpha_beta_gy" in o:
                bed += d * (1.0 + o["g_factor"] * d / o["alpha_beta_gy"])
            else:
                bed = None
        return dose, bed


@dataclass(frozen=True)
class LimitOutcome:
    """One limit: the activity it allows and the organ's totals at the prescription."""

    limit: Limit
    organ_dose: OrganDose
    max_activity_bq: float
    prior_dose_gy: float
    prior_bed_gy: float | None
    total_at_prescription_gy: float
    binding: bool = False

    @property
    def remaining_gy(self) -> float | None:
        """What the history leaves of the limit, in the limit's quantity (Gy; BED or EQD2
        for those limits): ``limit - prior``; ``None`` where the prior BED is unknown."""
        lim = self.limit
        if lim.quantity == "absorbed_dose":
            return lim.value_gy - self.prior_dose_gy
        if self.prior_bed_gy is None:
            return None
        prior = self.prior_bed_gy
        if lim.quantity == "eqd2":
            ab = self.organ_dose.alpha_beta_gy
            if ab is None:
                return None
            prior = prior / (1.0 + 2.0 / ab)
        return lim.value_gy - prior


@dataclass(frozen=True)
class Prescription:
    """The largest activity per administration within every limit over the treatment."""

    max_activity_bq: float
    limiting_organ: str
    limiting_voi: str
    cycles: int
    bound: str
    outcomes: tuple[LimitOutcome, ...]
    agent: str
    rbe_note: str
    history: TreatmentHistory
    notes: tuple[str, ...] = ()

    def summary_lines(self) -> list[str]:
        """What the command line prints: the activity, what limits it, and every limit."""
        per = "MBq" if self.max_activity_bq < 1e9 else "GBq"
        scale = 1e6 if per == "MBq" else 1e9
        lines = [
            f"PRESCRIPTION ({DECISION_SUPPORT.split(':')[0].lower()}): at most "
            f"{self.max_activity_bq / scale:.3g} {per} of {self.agent} per administration "
            f"for {self.cycles} more cycle(s) after {len(self.history.cycles)} given, "
            f"limited by {self.limiting_organ} ({self.limiting_voi}; limit on the "
            f"{self.bound})"
        ]
        for o in self.outcomes:
            prior = f"{o.prior_dose_gy:.3g} Gy" + (
                "" if o.prior_bed_gy is None else f" (BED {o.prior_bed_gy:.3g})"
            )
            left = "" if o.remaining_gy is None else f", {o.remaining_gy:.3g} Gy of the limit left"
            lines.append(
                f"  {o.limit.label()}: allows {o.max_activity_bq / scale:.3g} {per}; given "
                f"{prior}{left}; at the prescription {o.total_at_prescription_gy:.3g} Gy"
                + (" <- binding" if o.binding else "")
            )
        lines += [f"  note: {n}" for n in self.notes]
        return lines

    def to_json(self) -> str:
        """``prescription.json``: the activity, the limiting VOI, the limits and totals."""
        return (
            json.dumps(
                {
                    "format": "dosimetry-prescription/1",
                    "decision_support": DECISION_SUPPORT,
                    "agent": self.agent,
                    "max_activity_bq": self.max_activity_bq,
                    "limiting_organ": self.limiting_organ,
                    "limiting_voi": self.limiting_voi,
                    "planned_cycles": self.cycles,
                    "limit_applies_to": self.bound,
                    "rbe": self.rbe_note,
                    "previous_cycles": len(self.history.cycles),
                    "limits": [
                        {
                            "organ": o.limit.organ,
                            "quantity": o.limit.quantity,
                            "limit_gy": o.limit.value_gy,
                            "source": o.limit.source,
                            "vois": list(o.organ_dose.vois),
                            "dose_per_gbq": o.organ_dose.dose_per_bq * 1e9,
                            "unit": o.organ_dose.unit,
                            "g_factor": o.organ_dose.g_factor,
                            "alpha_beta_gy": o.organ_dose.alpha_beta_gy,
                            "prior_dose_gy": o.prior_dose_gy,
                            "prior_bed_gy": o.prior_bed_gy,
                            "remaining_gy": o.remaining_gy,
                            "max_activity_bq": o.max_activity_bq,
                            "total_at_prescription_gy": o.total_at_prescription_gy,
                            "binding": o.binding,
                        }
                        for o in self.outcomes
                    ],
                    "notes": list(self.notes),
                },
                indent=2,
            )
            + "\n"
        )

    def output_files(self) -> dict[str, str]:
        """File name -> content written into the output set."""
        return {"prescription.json": self.to_json()}

    def report_blocks(self) -> tuple[str, list[Any]]:
        """Title and blocks for the reports (decision support first)."""
        from ..report.blocks import KeyValues, Paragraph, Table, format_activity

        rows = []
        for o in self.outcomes:
            rows.append(
                (
                    o.limit.label(),
                    ", ".join(o.organ_dose.vois),
                    f"{o.organ_dose.dose_per_bq * 1e9:.3g} {o.organ_dose.unit}/GBq",
                    "-" if o.organ_dose.g_factor is None else f"{o.organ_dose.g_factor:.3g}",
                    f"{o.prior_dose_gy:.3g}"
                    + ("" if o.prior_bed_gy is None else f" / BED {o.prior_bed_gy:.3g}"),
                    "-" if o.remaining_gy is None else f"{o.remaining_gy:.3g}",
                    format_activity(o.max_activity_bq),
                    f"{o.total_at_prescription_gy:.3g}",
                    "limiting" if o.binding else "",
                )
            )
        blocks = [
            Paragraph(DECISION_SUPPORT, "warning"),
            KeyValues(
                (
                    ("Largest activity per administration", format_activity(self.max_activity_bq)),
                    ("Limiting organ (VOI)", f"{self.limiting_organ} ({self.limiting_voi})"),
                    ("Planned identical cycles", str(self.cycles)),
                    ("Previous cycles in the history", str(len(self.history.cycles))),
                    ("Limits apply to", self.bound),
                    ("RBE", self.rbe_note or "not applicable (no alpha emitter)"),
                )
            ),
            Table(
                (
                    "limit",
                    "VOIs",
                    "dose per activity",
                    "G",
                    "history (Gy)",
                    "remaining of the limit (Gy)",
                    "max activity",
                    "total at prescription (Gy)",
                    "",
                ),
                tuple(rows),
                ("left", "left", "right", "right", "right", "right", "right", "right", "left"),
            ),
        ]
        blocks += [Paragraph(n, "note") for n in self.notes]
        return "Prescription (decision support)", blocks


def _reported_organs(
    result: WorkflowResult,
    activity_bq: float,
    cycles: int,
    hist: TreatmentHistory,
    lims: Sequence[Limit],
    lq: Mapping[str, tuple[float, float]] | None,
) -> list[str]:
    """Notes for the organs the limit table reports without limiting (salivary and
    lacrimal glands, liver): their treatment dose at the prescribed activity beside their
    literature threshold, or the statement that none is accepted."""
    from ..limits import organ_dose_limits

    limited = {lim.organ for lim in lims}
    out = []
    rows = [r for r in organ_dose_limits() if not r.is_limit and r.organ not in limited]
    doses = organ_doses(result, {r.organ for r in rows}, lq=lq)
    for r in rows:
        od = doses.get(r.organ)
        if od is None:
            continue
        planned = cycles * od.dose_per_bq * activity_bq
        try:
            prior, _ = hist.totals(r.organ)
            dose = f"{prior + planned:.3g} {od.unit} over the treatment"
        except InputDataError:  # a cycle of the history lacks it: never counted as 0
            dose = (
                f"{planned:.3g} {od.unit} over the planned cycle(s) only (the treatment "
                "history lacks its dose for an earlier cycle)"
            )
        threshold = (
            f"literature threshold {r.limit_gy:g} Gy ({r.status}; {r.citation})"
            if r.limit_gy is not None
            else "no accepted threshold"
        )
        out.append(
            f"{r.organ} (reported, not a limit): {dose} at the prescribed activity; {threshold}"
        )
    return out


def _kinetics_g(result: WorkflowResult, voi: str, repair_s: float) -> float | None:
    """Lea-Catcheside G of a VOI from the result's kinetics (projection or TAC fit)."""
    from ..radiobiology import DoseRateShape, lea_catcheside_g

    proj = result.details.get("projection")
    if proj is not None:
        try:
            row = proj.row(voi)
        except KeyError:
            try:
                row = proj.row("background")
            except KeyError:
                return None
        return lea_catcheside_g(DoseRateShape.mono_exponential(row.effective_half_life_s), repair_s)
    fits = result.details.get("tac_fits") or {}
    fit = fits.get(voi)
    if fit is not None:
        shape = _shape_of_fit(fit)
        if shape is not None:
            return lea_catcheside_g(shape, repair_s)
    kin = (result.details.get("voi_kinetics") or {}).get(voi)
    if kin is not None and getattr(kin, "effective_half_life_s", None):
        return lea_catcheside_g(DoseRateShape.mono_exponential(kin.effective_half_life_s), repair_s)
    return None


def _shape_of_fit(fit: Any) -> Any:
    """A DoseRateShape from a TacFit's fitted exponentials (:class:`dosimetry.kinetics.TacFit`
    physical parameters ``A{i}_bq``, ``lambda{i}_per_s``, ``lambda_uptake_per_s``; effective
    rates, since the fit is to activities without decay correction), so G sees the uptake
    phase and every clearance phase. A trapezoid fit has no exponentials: its effective
    half-life (the tail's) is used as a mono-exponential."""
    from ..radiobiology import DoseRateShape

    p = dict(getattr(fit, "params", None) or {})
    amps, rates = [], []
    i = 1
    while f"A{i}_bq" in p and f"lambda{i}_per_s" in p:
        amps.append(float(p[f"A{i}_bq"]))
        rates.append(float(p[f"lambda{i}_per_s"]))
        i += 1
    if amps and all(math.isfinite(r) and r > 0 for r in rates) and sum(amps) > 0:
        up = p.get("lambda_uptake_per_s")
        return DoseRateShape.from_tac(amps, rates, None if up is None else float(up))
    try:
        t = float(fit.effective_half_lives_s()[0])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return DoseRateShape.mono_exponential(t) if math.isfinite(t) and t > 0 else None


def organ_doses(
    result: WorkflowResult,
    organs: Iterable[str],
    *,
    voi_map: VoiMap | None = None,
    lq: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, OrganDose]:
    """Each organ's mass-weighted dose per administered activity (Gy/Bq; Gy_RBE/Bq for
    alpha emitters) over the VOIs mapped to it, with a mass- and dose-weighted
    Lea-Catcheside factor when its alpha/beta and repair half-time are known."""
    from ..radiobiology import tissue_parameters

    vm = voi_map or VoiMap.default()
    a = result.administered_activity_bq
    if not a:
        raise InputDataError("the result has no administered activity: cannot scale doses")
    out: dict[str, OrganDose] = {}
    for organ in organs:
        want = vm.organ(organ) or organ
        rows = [
            r for r in result.table if r.role != "lesion" and (r.organ == want or r.name == organ)
        ]
        # a blood-based marrow row is another estimate of the same organ, not more tissue:
        # never mass-averaged with the image VOIs; the larger dose per activity is used
        blood = [r for r in rows if "blood_tia_bq_s_per_ml" in r.extra]
        image = [r for r in rows if r not in blood]
        if blood and image:
            img_mean = sum(r.mass_g * r.dose.mean for r in image) / sum(r.mass_g for r in image)
            rows = blood if max(r.dose.mean for r in blood) > img_mean else image
        if not rows:
            continue
        mass = sum(r.mass_g for r in rows)
        stats = [(r, r.dose_rbe or r.dose) for r in rows]
        unit = stats[0][1].unit
        mean = sum(r.mass_g * s.mean for r, s in stats) / mass
        ab = rep = None
        if lq and (organ in lq or want in lq):
            ab, rep = lq.get(organ) or lq[want]
        else:
            try:
                p = tissue_parameters(organ)
                ab, rep = p.alpha_beta_gy, p.repair_half_time_s
            except InputDataError:
                ab = rep = None
        g = None
        if ab is not None and rep is not None:
            gs = [(_kinetics_g(result, r.name, rep), r.mass_g * s.mean) for r, s in stats]
            if all(x is not None for x, _ in gs) and sum(w for _, w in gs) > 0:
                g = sum(x * w for x, w in gs if x is not None) / sum(w for _, w in gs)
        us = [r.mean_u / (r.dose.mean or math.inf) for r in rows if r.mean_u is not None]
        rel_u = max(us) if len(us) == len(rows) and us else None
        out[organ] = OrganDose(
            organ, tuple(r.name for r in rows), mass, mean / a, unit, g, ab, rel_u
        )
    return out


def max_activity(
    result: WorkflowResult,
    limits: Sequence[Limit] | None = None,
    *,
    cycles: int = 1,
    history: TreatmentHistory | None = None,
    bound: Literal["mean", "upper"] = "mean",
    coverage: float = 1.96,
    voi_map: VoiMap | None = None,
    lq: Mapping[str, tuple[float, float]] | None = None,
) -> Prescription:
    """The largest activity per administration for which every limit holds over the whole
    treatment (history + ``cycles`` planned identical cycles).

    Parameters
    ----------
    result
        A plan or a measured result (doses scale linearly with the activity).
    limits
        Limits to apply (default :func:`default_limits`).
    cycles
        Planned identical cycles (>= 1).
    history
        Cycles already given (their doses/BEDs count against the limits).
    bound
        ``"mean"`` (the VOI mean, default) or ``"upper"`` (mean + ``coverage`` x standard
        uncertainty, where the table has one).
    voi_map, lq
        VOI -> organ table; user alpha/beta (Gy) and repair half-time (s) per organ.

    Returns
    -------
    Prescription

    Raises
    ------
    InputDataError
        No limited organ among the VOIs; a BED limit for an organ without alpha/beta and
        repair half-time (give them with ``lq=`` / ``--lq``).
    """
    from ..radiobiology import dose_for_bed

    if int(cycles) < 1:
        raise InputDataError(f"--cycles must be at least 1, got {cycles}")
    lims = tuple(limits) if limits is not None else default_limits()
    hist = history or TreatmentHistory()
    doses = organ_doses(result, {lim.organ for lim in lims}, voi_map=voi_map, lq=lq)
    outcomes: list[LimitOutcome] = []
    notes = []
    for lim in lims:
        od = doses.get(lim.organ)
        if od is None:
            notes.append(f"limit {lim.label()}: no VOI of this organ in the study; not applied")
            continue
        d = od.dose_per_bq
        if bound == "upper":
            if od.relative_u is None:
                notes.append(f"{lim.organ}: no uncertainty in the table; the mean is used")
            else:
                d *= 1.0 + coverage * od.relative_u
        prior_d, prior_bed = hist.totals(lim.organ)
        if lim.quantity == "absorbed_dose":
            room = lim.value_gy - prior_d
            a = max(room, 0.0) / (cycles * d) if d > 0 else math.inf
            total = prior_d + cycles * d * a
        else:
            if od.g_factor is None or od.alpha_beta_gy is None:
                raise InputDataError(
                    f"limit {lim.label()}: no alpha/beta and repair half-time for {lim.organ} "
                    "(only kidneys are sourced in the parameter table); give them with "
                    f"--lq {lim.organ}=ALPHA_BETA_GY/REPAIR_H (lq= in Python) or use an absorbed-dose limit"
                )
            target = lim.value_gy
            if lim.quantity == "eqd2":
                target = lim.value_gy * (1.0 + 2.0 / od.alpha_beta_gy)
            if prior_bed is None:
                raise InputDataError(
                    f"limit {lim.label()}: a cycle of the history lacks the BED of {lim.organ} "
                    "(give bed_gy, or mean_gy with g_factor and alpha_beta_gy)"
                )
            d_cycle = dose_for_bed(target, od.alpha_beta_gy, od.g_factor, cycles, prior_bed)
            a = d_cycle / d if d > 0 else math.inf
            per = d * a
            total = prior_bed + cycles * per * (1.0 + od.g_factor * per / od.alpha_beta_gy)
            if lim.quantity == "eqd2":
                total = total / (1.0 + 2.0 / od.alpha_beta_gy)
        outcomes.append(LimitOutcome(lim, od, a, prior_d, prior_bed, total))
    if not outcomes:
        raise InputDataError(
            "no limit applies: none of the limited organs ("
            + ", ".join(sorted({lim.organ for lim in lims}))
            + ") has a VOI in this study"
        )
    best = min(outcomes, key=lambda o: o.max_activity_bq)
    outcomes = [
        LimitOutcome(
            o.limit,
            o.organ_dose,
            o.max_activity_bq,
            o.prior_dose_gy,
            o.prior_bed_gy,
            o.total_at_prescription_gy,
            o is best,
        )
        for o in outcomes
    ]
    # at the prescribed activity every limit's total (the binding one at its limit)
    final = []
    for o in outcomes:
        a = best.max_activity_bq
        per = (
            o.organ_dose.dose_per_bq
            * a
            * (
                1.0 + coverage * o.organ_dose.relative_u
                if bound == "upper" and o.organ_dose.relative_u
                else 1.0
            )
        )
        if o.limit.quantity == "absorbed_dose":
            total = o.prior_dose_gy + cycles * per
        else:
            g, ab = o.organ_dose.g_factor or 0.0, o.organ_dose.alpha_beta_gy or math.inf
            total = (o.prior_bed_gy or 0.0) + cycles * per * (1.0 + g * per / ab)
            if o.limit.quantity == "eqd2":
                total /= 1.0 + 2.0 / ab
        final.append(
            LimitOutcome(
                o.limit,
                o.organ_dose,
                o.max_activity_bq,
                o.prior_dose_gy,
                o.prior_bed_gy,
                total,
                o.binding,
            )
        )
    limiting_voi = max(best.organ_dose.vois, key=lambda v: result.table.row(v).dose.mean)
    rbe_note = ""
    if result.is_alpha:
        rbe = result.parameters.get("rbe_alpha")
        rbe_note = (
            f"limits apply to the RBE-weighted dose (Gy_RBE, RBE {rbe:g} for alpha particles); "
            "limits derived from beta-emitter data are an extrapolation for alpha emitters"
        )
        from ..radiobiology import ALPHA_BED_CONVENTION

        if any(o.limit.quantity != "absorbed_dose" for o in final):
            notes.append(ALPHA_BED_CONVENTION)
    if best.max_activity_bq <= 0:
        notes.append(
            f"the history already reaches the limit {best.limit.label()}: no further activity "
            "is allowed under it"
        )
    else:
        notes.extend(_reported_organs(result, best.max_activity_bq, cycles, hist, lims, lq))
        from ..checks import bound as plausibility_bound

        b = plausibility_bound("administered_activity", result.nuclide)
        if best.max_activity_bq > b.warn_high:
            over_error = best.max_activity_bq > b.error_high
            notes.append(
                f"the limits allow {best.max_activity_bq / 1e9:.3g} GBq per administration, above "
                f"the usual range of single {result.nuclide} administrations "
                f"({b.warn_low / 1e9:g}-{b.warn_high / 1e9:g} GBq; dosimetry/data/plausibility.csv)"
                + (
                    f" and above the {b.error_high / 1e9:g} GBq this tool plans without "
                    "--accept administered_activity"
                    if over_error
                    else ""
                )
                + ": the organ limits are not what bounds the activity here; more cycles at "
                "a lower activity (--cycles) or the clinical protocol's activity apply"
            )
    return Prescription(
        max_activity_bq=best.max_activity_bq,
        limiting_organ=best.limit.organ,
        limiting_voi=limiting_voi,
        cycles=int(cycles),
        bound=bound if bound == "mean" else f"mean + {coverage:g} x standard uncertainty",
        outcomes=tuple(final),
        agent=result.agent,
        rbe_note=rbe_note,
        history=hist,
        notes=tuple(notes),
    )


#: Key prefix of a lesion in a cycle record (``"lesion:lesion_1"``), beside organ names.
LESION_PREFIX = "lesion:"


def history_entry(
    result: WorkflowResult,
    organs: Iterable[str],
    *,
    activity_bq: float | None = None,
    source: str,
    when: str | None = None,
    voi_map: VoiMap | None = None,
    lq: Mapping[str, tuple[float, float]] | None = None,
) -> CycleRecord:
    """A cycle record of ``result`` (at ``activity_bq``, default the result's activity):
    each organ's mean dose and, where its radiobiology is known, G, alpha/beta and BED."""
    a = float(activity_bq if activity_bq is not None else result.administered_activity_bq or 0.0)
    recs: dict[str, dict[str, float]] = {}
    for organ, od in organ_doses(result, organs, voi_map=voi_map, lq=lq).items():
        d = od.dose_per_bq * a
        rec = {"mean_gy": d}
        if od.g_factor is not None and od.alpha_beta_gy is not None:
            rec.update(
                g_factor=od.g_factor,
                alpha_beta_gy=od.alpha_beta_gy,
                bed_gy=d * (1.0 + od.g_factor * d / od.alpha_beta_gy),
            )
        recs[organ] = rec
    # lesions by VOI name (the same names over a patient's cycles add up), as "lesion:NAME"
    a_result = result.administered_activity_bq
    for r in result.table:
        if r.role != "lesion" or not a_result:
            continue
        stats = r.dose_rbe or r.dose
        d = stats.mean / a_result * a
        lrec: dict[str, float] = {"mean_gy": d}
        if r.bed_gy is not None and math.isclose(a, a_result, rel_tol=1e-9):
            lrec["bed_gy"] = float(r.bed_gy)
        recs[f"{LESION_PREFIX}{r.name}"] = lrec
    return CycleRecord(0, when or date.today().isoformat(), result.agent, a, source, recs)


def with_radiobiology(
    result: WorkflowResult, lq: Mapping[str, tuple[float, float]] | None = None
) -> WorkflowResult:
    """The result with BED and EQD2 per VOI where the organ's alpha/beta and repair
    half-time are known (parameter table, or ``lq``), from the VOI's own kinetics (its
    Lea-Catcheside factor) and mean dose. For alpha emitters the alpha part is
    RBE-weighted and non-repairable (:data:`dosimetry.radiobiology.ALPHA_BED_CONVENTION`).
    Rows without sourced parameters keep empty BED columns, said in their notes."""
    from dataclasses import replace as dc_replace

    from ..radiobiology import ALPHA_BED_CONVENTION, bed_gy, tissue_parameters
    from ..results import Assumption, DoseTable

    rows = []
    used: dict[str, tuple[float, float, str]] = {}
    missing: list[str] = []
    voxel_lq: list[tuple[str, float, float]] = []  # (VOI, alpha/beta Gy, G) for the BED map
    rbe = float(result.parameters.get("rbe_alpha", 5.0))
    for r in result.table:
        key = r.organ or ""
        ab = rep = None
        src = ""
        if lq and (r.name in lq or key in lq):
            ab, rep = lq.get(r.name) or lq[key]
            src = "user (--lq)"
        elif key:
            try:
                p = tissue_parameters(key)
                ab, rep, src = p.alpha_beta_gy, p.repair_half_time_s, p.alpha_beta_source
            except InputDataError:
                ab = rep = None
        if ab is None or rep is None or r.role == "body":
            if r.role != "body":
                missing.append(r.name)
            rows.append(r)
            continue
        g = _kinetics_g(result, r.name, rep)
        if g is None:
            missing.append(r.name)
            rows.append(r)
            continue
        d = r.dose.mean
        if r.dose_rbe is not None and rbe > 1.0:
            d_alpha = max((r.dose_rbe.mean - d) / (rbe - 1.0), 0.0)
            d_beta = max(d - d_alpha, 0.0)
            bed = rbe * d_alpha + float(bed_gy(d_beta, ab, g))
            # d BED / d ln(scale of the dose): both parts scale with the TIA
            slope = rbe * d_alpha + d_beta * (1.0 + 2.0 * g * d_beta / ab)
        else:
            bed = float(bed_gy(d, ab, g))
            slope = d * (1.0 + 2.0 * g * d / ab)
        extra = dict(r.extra)
        if r.mean_u is not None and d > 0 and math.isfinite(r.mean_u):
            # first order: the dose's relative uncertainty through dBED/dD = 1 + 2 G D/(a/b);
            # alpha/beta and G taken as exact (their own spread is not sourced)
            extra["bed_gy_u"] = slope * r.mean_u / d
        used[key or r.name] = (ab, rep, src)
        voxel_lq.append((r.name, ab, g))
        rows.append(dc_replace(r, bed_gy=bed, eqd2_gy=bed / (1.0 + 2.0 / ab), extra=extra))
    table = DoseTable(tuple(rows), result.table.administered_activity_bq, result.table.convention)
    assumptions = list(result.assumptions)
    for organ, (ab, rep, src) in used.items():
        assumptions.append(
            Assumption(
                f"radiobiology {organ}",
                f"alpha/beta {ab:g} Gy, repair half-time {rep / 3600:.3g} h; G from the VOI's "
                "kinetics (Lea-Catcheside); BED = D (1 + G D / (alpha/beta)); bed_gy_u: the "
                "dose uncertainty times dBED/dD = 1 + 2 G D / (alpha/beta) (alpha/beta and G "
                "without uncertainty)",
                src,
            )
        )
    if used and result.is_alpha:
        assumptions.append(
            Assumption("BED of alpha emitters", ALPHA_BED_CONVENTION, "project convention")
        )
    if missing:
        assumptions.append(
            Assumption(
                "BED not reported",
                ", ".join(missing),
                "no sourced alpha/beta and repair half-time for these organs "
                "(docs/radiobiology.md); give them with --lq ORGAN=ALPHA_BETA_GY/REPAIR_H",
            )
        )
    bed_map = bed_volume(result, voxel_lq, rbe)
    if bed_map is not None:
        assumptions.append(
            Assumption(
                "voxel BED map",
                "bed.dcm / bed.nii.gz: BED voxel by voxel, D (1 + G D / (alpha/beta)) with each "
                "VOI's alpha/beta and G (its kinetics taken as uniform over the VOI); a voxel in "
                "several VOIs takes the smallest VOI's (a lesion inside an organ keeps its own); "
                "0 outside VOIs with radiobiology parameters (no BED defined there)",
                "project convention; Dale 1985 (BED of protracted irradiation)",
            )
        )
    return result.replace(table=table, assumptions=tuple(assumptions), bed=bed_map)


def bed_volume(
    result: WorkflowResult, voxel_lq: Iterable[tuple[str, float, float]], rbe: float
) -> Volume | None:
    """The voxel BED map (unit ``Gy_BED``) of ``result`` for the VOIs of ``voxel_lq``
    (VOI name, alpha/beta in Gy, Lea-Catcheside G): ``BED = D (1 + G D / (alpha/beta))``
    in each voxel of the VOI (a fractional mask's voxel counts when at least half inside);
    for alpha emitters the alpha part, ``(D_RBE - D) / (RBE - 1)``, is RBE-weighted and
    non-repairable (:data:`dosimetry.radiobiology.ALPHA_BED_CONVENTION`). Smaller VOIs
    are painted last, so a lesion inside an organ keeps its own parameters. Voxels of no
    such VOI are 0. ``None`` without a dose map or without any VOI."""
    items = [(n, ab, g) for n, ab, g in voxel_lq if n in result.masks]
    if result.dose is None or not items:
        return None
    d = np.asarray(result.dose.array, dtype=np.float64)
    alpha_split = result.dose_rbe is not None and rbe > 1.0
    if alpha_split:
        assert result.dose_rbe is not None
        d_alpha = np.clip(
            (np.asarray(result.dose_rbe.array, np.float64) - d) / (rbe - 1.0), 0, None
        )
        d_beta = np.clip(d - d_alpha, 0.0, None)
    out = np.zeros(d.shape, dtype=np.float64)
    inside = []
    for name, ab, g in items:
        m = np.asarray(result.masks[name].array)
        sel = m >= 0.5 if m.dtype.kind == "f" else m.astype(bool)
        if sel.shape != d.shape:
            continue
        inside.append((int(sel.sum()), name, ab, g, sel))
    if not inside:
        return None
    for _, _name, ab, g, sel in sorted(inside, key=lambda t: -t[0]):
        if alpha_split:
            db = d_beta[sel]
            out[sel] = rbe * d_alpha[sel] + db * (1.0 + g * db / ab)
        else:
            dv = d[sel]
            out[sel] = dv * (1.0 + g * dv / ab)
    return result.dose.with_array(out.astype(np.float32), unit="Gy_BED")


def parse_lq(text: str) -> tuple[str, tuple[float, float]]:
    """``"liver=2.5/1.5"`` -> ("liver", (2.5 Gy, 1.5 h in s)): alpha/beta in Gy, repair
    half-time in hours."""
    m = re.fullmatch(
        r"\s*([A-Za-z][\w\-]*)\s*=\s*([0-9.eE+]+)\s*(?:Gy)?\s*/\s*([0-9.eE+]+)\s*h?\s*", str(text)
    )
    if not m:
        raise InputDataError(
            f"--lq {text!r}: write ORGAN=ALPHA_BETA_GY/REPAIR_HALF_TIME_H, e.g. --lq liver=2.5/1.5"
        )
    ab, rep_h = float(m.group(2)), float(m.group(3))
    if not (ab > 0 and rep_h > 0 and math.isfinite(ab) and math.isfinite(rep_h)):
        raise InputDataError(f"--lq {text!r}: both values must be positive")
    return m.group(1), (ab, rep_h * 3600.0)


class HistoryOutput:
    """``history.json`` of an output folder: the treatment history with this result's cycle."""

    def __init__(self, history: TreatmentHistory):
        self.history = history

    def output_files(self) -> dict[str, str]:
        """File name -> content written into the output set."""
        return {"history.json": self.history.to_json()}

    def report_blocks(self) -> tuple[str, list[Any]]:
        """Per-cycle doses and the cumulative dose and BED of every organ and lesion."""
        from ..report.blocks import Paragraph, Table, format_activity

        cyc = tuple(
            (
                str(c.cycle),
                c.date,
                c.agent,
                format_activity(c.administered_activity_bq),
                c.source,
                "; ".join(
                    f"{k} {v.get('mean_gy', float('nan')):.3g} Gy"
                    + (f" (BED {v['bed_gy']:.3g})" if "bed_gy" in v else "")
                    for k, v in c.organs.items()
                ),
            )
            for c in self.history.cycles
        )
        n = len(self.history.cycles)
        total = tuple(
            (
                key.removeprefix(LESION_PREFIX),
                "lesion" if key.startswith(LESION_PREFIX) else "organ",
                f"{d:.3g}",
                "-" if b is None else f"{b:.3g}",
                f"{k} of {n}",
            )
            for key, (d, b, k) in self.history.cumulative().items()
        )
        return "Treatment history", [
            Paragraph(
                "Every cycle of history.json (the --history file's cycles, then this result's: "
                "measured for spect, planned for plan). Cycles add in dose and, with repair "
                "between cycles, in BED; a lesion is followed by its VOI name."
            ),
            Table(("cycle", "date", "agent", "activity", "source", "doses"), cyc),
            Table(
                ("organ or lesion", "kind", "total dose (Gy)", "total BED (Gy)", "cycles"),
                total,
                ("left", "left", "right", "right", "right"),
            ),
        ]


def finish_with_prescription(
    run: Any,
    result: WorkflowResult,
    *,
    limits: Sequence[Limit | str] | None,
    prescribe: bool,
    cycles: int,
    history: TreatmentHistory | str | Path | None,
    limit_bound: str,
    lq: Mapping[str, tuple[float, float]] | None,
    renal_risk_factors: bool,
    history_source: str,
) -> WorkflowResult:
    """BED/EQD2 in the table, and (when limits are asked for) the prescription and the
    updated treatment history, as details of the result (written by the output step)."""
    from ..checks import Finding

    result = with_radiobiology(result, lq)
    hist = (
        history
        if isinstance(history, TreatmentHistory)
        else (TreatmentHistory.load(history) if history is not None else TreatmentHistory())
    )
    details = dict(result.details)
    common_end = {}
    organs = {"kidneys", "red_marrow", "salivary_glands", "lacrimal_glands", "liver", "spleen"}
    measured = history_source != "planned"
    lims: list[Limit] = []
    if limits or prescribe:
        lims = [parse_limit(x) if isinstance(x, str) else x for x in (limits or ())]
        if not lims:
            lims = list(default_limits(renal_risk_factors=renal_risk_factors))
        organs |= {lim.organ for lim in lims}
    wanted = history is not None or bool(limits) or prescribe
    entry = history_entry(result, organs, source=history_source, lq=lq) if wanted else None
    if lims and entry is not None:
        # a measured cycle (spect) has been given: it counts against the limits, and the
        # prescription is for the next cycles, predicted from its dose per activity
        prior = hist.with_cycles([entry]) if measured else hist
        p = max_activity(result, lims, cycles=cycles, history=prior, bound=limit_bound, lq=lq)  # type: ignore[arg-type]
        details["prescription"] = p
        a = result.administered_activity_bq or 0.0
        if not measured and a > p.max_activity_bq * (1 + 1e-9):
            run.add(
                Finding(
                    "activity_above_prescription",
                    "warning",
                    f"the planned activity exceeds the largest activity within the limits "
                    f"({p.limiting_organ}: {p.max_activity_bq / 1e9:.3g} GBq per administration)",
                    "lower --activity, or review the limits",
                )
            )
        common_end["findings"] = run.findings.as_tuple()
    if entry is not None:
        details["history"] = HistoryOutput(
            hist.with_cycles([entry] * (cycles if not measured else 1))
        )
    return result.replace(details=details, **common_end)
