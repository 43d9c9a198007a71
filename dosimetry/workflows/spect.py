"""Post-therapy ¹⁷⁷Lu SPECT/CT dosimetry from one, two or N time points.

:func:`run` takes one study (all time points in one folder) or several (one folder per
time point) and returns a :class:`~dosimetry.results.WorkflowResult` whose dose lies on
the first time point's SPECT grid. Steps (each a function of its own):

* :func:`_time_points` -- the reconstructed NM/SPECT series and the CT of each (same
  frame of reference, else same study and nearest acquisition), in time order; checks of
  the nuclide, the corrections (attenuation and scatter in ``CorrectedImage``) and the
  time after administration;
* :func:`_calibrate` -- counts -> Bq/mL with the camera sensitivity (``"9.1 cps/MBq"`` or a
  calibration record file), decay during the scan corrected;
* :func:`_register` -- every time point's CT registered to the first (rigid by default)
  and its activity resampled onto the first SPECT grid; a similarity metric per time
  point for QA;
* :func:`_voi_tacs` -- VOI activity at each time point;
* :func:`_voi_tia` -- VOI TIA: 1 time point -> single-time-point method (Madsen et al.
  2018 with the population effective half-life, named); 2 -> mono-exponential through
  both points (exactly determined, flagged; uncertainty from the stated measurement
  error); 3+ -> fitted model (:func:`dosimetry.kinetics.fit_tac`);
* :func:`_voxel_tia` -- the voxel TIA map (voxel fits; 1 time point: each voxel scaled by
  its VOI's single-time-point factor);
* dose with the method of ``plan`` (:func:`dosimetry.absorbed_dose`), the table, and the
  partial-volume corrected VOI values beside the uncorrected ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..checks import (
    Finding,
    Policy,
    check_administered_activity,
    check_fraction_in_fov,
    check_no_activity,
    check_organ_dose,
    check_spect_time,
)
from ..errors import DicomInputError, DosimetryError, InputDataError
from ..results import InputRecord, VoiDose, WorkflowResult
from ..voi import VoiMap
from ..volume import Volume, resample
from ._run import Progress, Run, parse_activity_arg
from ._table import build_table, roles_of

__all__ = ["run", "run_folder", "TimePoint", "parse_calibration_text"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TimePoint:
    """One SPECT session: the SPECT series, its CT and the study it came from."""

    spect: Any
    ct: Any | None
    study: Any
    label: str = ""


def parse_calibration_text(text: str | float | Path) -> tuple[float, float, str]:
    """Camera sensitivity (cps/MBq), its standard uncertainty (NaN when not stated) and its
    source, from ``"9.1 cps/MBq"`` (``"9.1 +/- 0.2 cps/MBq"``) or a calibration record file
    (:func:`dosimetry.calibration.parse_calibration`). A bare number is refused."""
    from ..calibration import parse_calibration

    if isinstance(text, float | int) and not isinstance(text, bool):
        raise InputDataError(
            f"--calibration {text!r} has no unit; write it as '9.1 cps/MBq' or give a "
            "calibration record file"
        )
    rec = parse_calibration(text if isinstance(text, Path) else str(text))
    p = Path(str(text))
    from_file = p.suffix.lower() == ".json" or p.is_file()
    source = f"calibration record {p.name}" if from_file else "user (--calibration)"
    return float(rec.cps_per_mbq), float(rec.cps_per_mbq_sd), source


# --------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------
def _time_points(
    run: Run, studies: Sequence[Any], spect: Sequence[int | str] | None
) -> list[TimePoint]:
    """Reconstructed SPECT series with their CTs, in time order."""
    if spect and len(studies) > 1:
        raise InputDataError(
            "--spect selects series within one study folder; with one folder per time point "
            "every reconstructed series of each folder is used"
        )
    found: list[tuple[Any, Any]] = []
    for st in studies:
        selection = list(spect) if spect else list(range(len(st.series_of("SPECT"))))
        found += [(st.spect(sel), st) for sel in selection]
    if not found:
        where = ", ".join(str(st.folder) for st in studies)
        raise DicomInputError(
            f"no reconstructed NM/SPECT series in {where}; `dosimetry spect` needs the "
            "SPECT (NM, ImageType ... RECON TOMO) of each time point"
        )
    found.sort(key=lambda sp: sp[0].acquisition_time)
    return [TimePoint(s, _ct_for(st, s), st) for s, st in found]


def _ct_for(study: Any, spect_series: Any) -> Any | None:
    """The CT of a SPECT/CT session: same frame of reference, else the same study; among
    several candidates the one with the most slices."""
    cts = [study.ct(i) for i in range(len(study.series_of("CT")))]
    same = [c for c in cts if c.frame_of_reference_uid == spect_series.frame_of_reference_uid]
    pool = same or [c for c in cts if c.study_instance_uid == spect_series.study_instance_uid]
    if not pool:
        return None
    return max(pool, key=lambda c: len(c.files))


def _check_series(run: Run, tp: TimePoint, nuclide: str) -> None:
    s = tp.spect
    if s.nuclide != nuclide:
        run.add(
            Finding(
                "spect_nuclide",
                "error",
                f"{tp.label}: the SPECT header names {s.nuclide}, the therapy is {nuclide}",
                "check the series (--spect) or --accept spect_nuclide",
            )
        )
    corrected = [str(v).upper() for v in (s.header.get("CorrectedImage") or [])]
    missing = [c for c in ("ATTN", "SCAT") if c not in corrected]
    if missing:
        run.add(
            Finding(
                "spect_corrections",
                "warning",
                f"{tp.label}: CorrectedImage (0028,0051) lacks {', '.join(missing)} "
                f"({'/'.join(corrected) or 'empty'}): quantitative SPECT needs attenuation "
                "and scatter correction; the calibration factor must match the reconstruction",
                "reconstruct with AC/SC, or accept the stated bias",
            )
        )
    early_h = run.parameter("spect_dead_time_check_h")
    hours = (s.acquisition_time - s.injection_time).total_seconds() / 3600.0
    if "DTIM" not in corrected and hours < early_h:
        run.add(
            Finding(
                "spect_dead_time",
                "warning",
                f"{tp.label}: CorrectedImage (0028,0051) does not state a dead-time correction "
                f"(no DTIM) for a scan {hours:.1f} h after the administration: at the early, "
                "high-count-rate scans of a therapy activity the camera's count losses can bias "
                "the activity low (MIRD Pamphlet No. 26); check the camera's dead time at this "
                "count rate",
                "correct the counts for dead time before the export (DTIM), or keep the "
                "warning with the result",
            )
        )


def _calibrate(run: Run, tp: TimePoint, cps_per_mbq: float) -> Volume:
    a = tp.spect.activity_at_acquisition(calibration_cps_per_mbq=cps_per_mbq)
    run.add(check_no_activity(a.total(), f"the SPECT at {tp.label}"))
    return a


def _ct_method(registration: str) -> Literal["rigid", "deformable"]:
    """The :func:`dosimetry.registration.register_ct` method of a ``registration`` choice."""
    return "deformable" if registration in ("deformable", "bspline") else "rigid"


@dataclass(frozen=True)
class RegistrationQuality:
    """The time-point registrations, for the report: per registered time point its rigid
    parameters and the similarity of the two CTs inside the body before and after
    (normalised cross-correlation, mutual information), and a checkerboard/edge overlay
    drawn when the report is rendered (:func:`dosimetry.registration.registration_qa`)."""

    records: tuple[Mapping[str, Any], ...]
    registrations: tuple[tuple[str, Any, Volume], ...] = ()  # (label, Registration, moving CT)

    def report_blocks(self) -> tuple[str, list[Any]]:
        """Title and blocks for the reports."""
        from ..registration import registration_qa
        from ..report.blocks import Figure, Paragraph, Table
        from ..viewer import figure_to_png

        def pair(rec: Mapping[str, Any], key: str) -> str:
            a, b = rec.get(f"{key}_before"), rec.get(f"{key}_after")
            if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
                return "-"
            return f"{a:.3f} -> {b:.3f}"

        rows = []
        for rec in self.records:
            if rec.get("reference"):
                rows.append((str(rec["time_point"]), "reference", "-", "-", "-", "-"))
                continue
            t = rec.get("translation_mm")
            r = rec.get("rotation_deg")
            rows.append(
                (
                    str(rec["time_point"]),
                    str(rec.get("method", "-")),
                    "-" if t is None else ", ".join(f"{x:+.1f}" for x in t),
                    "-" if r is None else ", ".join(f"{x:+.2f}" for x in r),
                    pair(rec, "ncc"),
                    pair(rec, "mi"),
                )
            )
        blocks: list[Any] = [
            Paragraph(
                "Each time point's CT registered to the first session's CT; the SPECT follows "
                "its CT. Similarity inside the body of the first CT, before -> after "
                "(normalised cross-correlation, 1 = identical; mutual information, higher "
                "is better): it should rise. The figures show one axial slice: checkerboard "
                "of the first CT and the registered one, and the CT edges before and after "
                "(green: first CT, magenta: the time point's)."
            ),
            Table(
                (
                    "time point",
                    "method",
                    "translation (mm, x y z)",
                    "rotation (deg)",
                    "NCC",
                    "MI",
                ),
                tuple(rows),
            ),
        ]
        for label, reg, moving in self.registrations:
            qa = registration_qa(reg, moving)
            fig = qa.figure()
            blocks.append(
                Figure(
                    figure_to_png(fig),
                    f"Registration of the CT at {label} to the first CT (axial slice "
                    f"{qa.index}); mean |HU difference| in the body "
                    f"{qa.mean_abs_diff_hu_before:.0f} -> {qa.mean_abs_diff_hu_after:.0f} HU.",
                    f"registration_{label.replace(' ', '').replace('.', '_')}.png",
                )
            )
        return "Registration of the time points", blocks


def _register(
    run: Run, points: Sequence[TimePoint], activities: Sequence[Volume], registration: str
) -> tuple[list[Volume], list[dict[str, Any]], list[tuple[str, Any, Volume]]]:
    """Every time point on the first SPECT grid (CT-driven registration: rigid, or rigid
    then B-spline for ``"deformable"``)."""
    from ..checks import Finding
    from ..registration import apply_registration, register_ct

    method = _ct_method(registration)
    drop = run.parameter("registration_ncc_drop_warn")
    regs: list[tuple[str, Any, Volume]] = []

    ref = activities[0]
    aligned = [ref]
    records: list[dict[str, Any]] = [{"time_point": points[0].label, "reference": True}]
    ct0 = points[0].ct.volume if points[0].ct is not None else None
    for tp, act in zip(points[1:], activities[1:], strict=True):
        if registration == "none" or ct0 is None or tp.ct is None:
            if not act.same_frame(ref) and registration != "none":
                raise InputDataError(
                    f"{tp.label}: no CT to register this time point to the first (frames of "
                    "reference differ); give the CT series, or --registration none (registration='none') if the "
                    "images are already aligned"
                )
            same = act.same_grid(ref)
            aligned.append(act if same else resample(act, ref, "concentration", fill_value=0.0))
            records.append({"time_point": tp.label, "method": "none"})
            continue
        run.step(f"registering the CT of {tp.label} to the first session ({method})")
        reg = register_ct(ct0, tp.ct.volume, method=method)
        moved = apply_registration(reg, act, ref, "concentration")
        aligned.append(moved)
        rec: dict[str, Any] = {
            "time_point": tp.label,
            "method": f"{reg.method} (CT-driven)",
            "translation_mm": [round(float(x), 3) for x in reg.translation_mm],
            "rotation_deg": [round(float(x), 3) for x in reg.rotation_deg],
        }
        metric = getattr(reg, "metric_value", None)
        if metric is not None:
            rec["metric"] = float(metric)
        rec.update({k: float(v) for k, v in reg.similarity.items()})
        records.append(rec)
        regs.append((tp.label, reg, tp.ct.volume))
        nb, na = rec["ncc_before"], rec["ncc_after"]
        if math.isfinite(nb) and math.isfinite(na) and na < nb - drop:
            run.add(
                Finding(
                    "registration_worse",
                    "warning",
                    f"{tp.label}: the CTs are less alike after the registration than before "
                    f"(NCC in the body {nb:.3f} -> {na:.3f}); the time point may be misaligned",
                    "look at the registration figure in the report; --registration none if "
                    "the images were already aligned",
                )
            )
    return aligned, records, regs


def _study_masks(run: Run, tp: TimePoint, grid: Volume, registration: str) -> dict[str, Volume]:
    """The study's RTSTRUCT/SEG on the reference grid. Structures drawn on another
    session's CT (another frame of reference) are rasterised on that session's SPECT grid
    and carried over by the CT-to-CT registration (occupancy fractions resampled
    linearly)."""
    from ..registration import apply_registration, register_ct

    study = tp.study
    rts = study.series_of("RTSTRUCT") or study.series_of("SEG")
    for_uid = rts[0].frame_of_reference_uid if rts else None
    if for_uid is None or for_uid == grid.frame_of_reference_uid:
        return dict(study.masks(grid=grid, mode="fraction"))
    sessions = [
        i for i, s in enumerate(study.series_of("SPECT")) if s.frame_of_reference_uid == for_uid
    ]
    cts = [i for i, c in enumerate(study.series_of("CT")) if c.frame_of_reference_uid == for_uid]
    if not sessions or not cts or tp.ct is None or registration == "none":
        raise InputDataError(
            "the structures were drawn in another frame of reference than the reference time "
            "point, and no CT of theirs (or of the reference) is there to register them; give "
            "masks on the reference session (--masks) or include that session's CT"
        )
    src_grid = study.spect(sessions[0]).volume
    src_masks = study.masks(grid=src_grid, mode="fraction")
    run.step("registering the structures' CT to the reference CT")
    reg = register_ct(tp.ct.volume, study.ct(cts[0]).volume, method=_ct_method(registration))
    run.assume(
        "VOI transfer",
        "structures rasterised on their own session and carried to the reference time point "
        "by the CT registration",
        f"CT-driven {reg.method} registration (SimpleITK)",
    )
    out = {}
    for name, m in src_masks.items():
        f = m.with_array(np.asarray(m.array, dtype=np.float64), unit="1")
        moved = apply_registration(reg, f, grid, "concentration")
        out[name] = moved.with_array(np.clip(moved.array, 0.0, 1.0), unit="1")
    return out


def _disjoint_masks(
    vois: Mapping[str, Volume], roles: Mapping[str, tuple[str | None, str]]
) -> dict[str, Volume]:
    """The table's regions: organ and body VOIs minus every lesion VOI (the convention of
    the dose table), lesions as they are. Kinetics are fitted per region, so an organ's
    curve does not mix in a lesion's longer clearance."""
    lesions = [n for n in vois if roles[n][1] == "lesion"]
    if not lesions:
        return dict(vois)
    acc = np.zeros(next(iter(vois.values())).shape, dtype=np.float64)
    for n in lesions:
        acc += np.asarray(vois[n].array, dtype=np.float64)
    rest = 1.0 - np.clip(acc, 0.0, 1.0)
    out = {}
    for n, m in vois.items():
        if roles[n][1] == "lesion":
            out[n] = m
            continue
        w = np.asarray(m.array, dtype=np.float64) * rest
        out[n] = m.with_array(w if w.any() else np.asarray(m.array, dtype=np.float64), unit="1")
    return out


def _voi_tacs(aligned: Sequence[Volume], masks: Mapping[str, Volume]) -> dict[str, np.ndarray]:
    """VOI activity (Bq) at each time point (fractional masks)."""
    out = {}
    for name, m in masks.items():
        w = np.asarray(m.array, dtype=np.float64)
        out[name] = np.array(
            [
                float(np.sum(np.asarray(a.array, dtype=np.float64) * w) * a.voxel_volume_ml)
                for a in aligned
            ]
        )
    return out


@dataclass(frozen=True)
class VoiKinetics:
    """A VOI's TIA with how it was obtained."""

    tia_bq_s: float
    tia_sd_bq_s: float | None
    method: str
    effective_half_life_s: float | None
    fit: Any = None
    note: str = ""


def _population_half_life(agent: str, organ: str | None) -> tuple[float, str] | None:
    from ..kinetics import population_effective_half_life_s

    for key in (organ, "whole_body"):
        if key is None:
            continue
        try:
            return population_effective_half_life_s(agent, key)
        except DosimetryError:
            continue
    return None


def _voi_tia(
    run: Run,
    times_s: np.ndarray,
    tac: np.ndarray,
    *,
    name: str,
    organ: str | None,
    agent: str,
    nuclide: str,
    model: str,
    user_half_life_s: float | None = None,
) -> VoiKinetics:
    """TIA of one VOI from its time-activity points (rules by the number of points);
    ``user_half_life_s`` replaces the population half-life of a single time point."""
    from ..kinetics import fit_tac, stp_tia

    n = len(times_s)
    if n == 1:
        prior = (
            (user_half_life_s, "user (--half-life / --kinetics)")
            if user_half_life_s is not None
            else _population_half_life(agent, organ)
        )
        if prior is None:
            raise InputDataError(
                f"single time point: no population half-life for VOI {name!r} ({agent}); give "
                f"one (--half-life {name}=DURATION, or effective_half_life_s= in Python) or "
                "more time points"
            )
        t_eff, cite = prior
        v = stp_tia(
            float(tac[0]),
            float(times_s[0]),
            "madsen2018",
            time_unit="s",
            activity_unit="Bq",
            effective_half_life=t_eff,
        )
        sd = None
        if user_half_life_s is None:
            # the population spread of T_eff propagated to the TIA: TIA = A e^(ln2 t/T) T/ln2,
            # so d ln TIA / d ln T = 1 - ln2 t / T (first order)
            from ..kinetics import population_record
            from ..uncertainty import relative_sd_from_spread

            for key in (organ, "whole_body"):
                if key is None:
                    continue
                try:
                    rec = population_record(agent, key)
                except DosimetryError:
                    continue
                rel, _how = relative_sd_from_spread(rec.effective_half_life_s / 3600.0, rec.spread)
                sens = abs(1.0 - math.log(2) * float(times_s[0]) / t_eff)
                sd = float(v) * rel * sens
                break
        return VoiKinetics(
            float(v),
            sd,
            "single time point (Madsen 2018"
            + (f", user half-life {t_eff / 3600:.3g} h)" if user_half_life_s is not None else ")"),
            t_eff,
            note=(
                f"effective half-life {t_eff / 3600:.1f} h: {cite}"
                if user_half_life_s is not None
                else f"population effective half-life {t_eff / 3600:.1f} h: {cite}"
            ),
        )
    if n == 2:
        a1, a2 = float(tac[0]), float(tac[1])
        t1, t2 = float(times_s[0]), float(times_s[1])
        if a1 <= 0 or a2 <= 0 or a2 >= a1:
            raise InputDataError(
                f"VOI {name!r}: two time points need a decreasing activity "
                f"({a1:.4g} Bq -> {a2:.4g} Bq) for the mono-exponential through both"
            )
        lam = math.log(a1 / a2) / (t2 - t1)
        a0 = a1 * math.exp(lam * t1)
        tia = a0 / lam
        # uncertainty from the stated measurement error of each VOI activity (not a fit)
        rel = run.parameter("spect_voi_activity_relative_sd")
        # d(tia)/d(ln a1), d(tia)/d(ln a2) by the chain rule for tia = a1 e^{lam t1}/lam
        dlam_1 = 1.0 / (t2 - t1)
        dlam_2 = -1.0 / (t2 - t1)
        d1 = tia * (1.0 + t1 * dlam_1 - dlam_1 / lam)
        d2 = tia * (t1 * dlam_2 - dlam_2 / lam)
        sd = rel * math.hypot(d1, d2)
        return VoiKinetics(
            tia,
            sd,
            "mono-exponential through two points (exactly determined)",
            math.log(2) / lam,
            note=f"no fit residuals: uncertainty from a {100 * rel:.0f} % measurement SD per point",
        )
    fit = fit_tac(times_s, tac, "s", "Bq", model=model, nuclide=nuclide)
    t_half = None
    try:
        t_half = float(fit.effective_half_lives_s()[0])
    except Exception:  # a trapezoid has none
        t_half = None
    status = str(getattr(fit, "status", "ok"))
    label = f"fit: {fit.model}" + ("" if status in ("ok", "trapezoid") else f" ({status})")
    if not getattr(fit, "identifiable", True):
        run.add(
            Finding(
                "voi_kinetics",
                "warning",
                f"VOI {name}: the {fit.model} fit does not determine its parameters ({status}); "
                "its TIA has no meaningful uncertainty",
                "more time points, or a simpler model (model='mono' in Python)",
            )
        )
    return VoiKinetics(
        float(fit.tia_bq_s), getattr(fit, "tia_sd_bq_s", None), label, t_half, fit=fit
    )


def _voxel_tia(
    run: Run,
    aligned: Sequence[Volume],
    times_s: np.ndarray,
    body: Volume,
    *,
    nuclide: str,
    kinetics: Mapping[str, VoiKinetics],
    masks: Mapping[str, Volume],
) -> Volume:
    """The voxel TIA map (Bq s per voxel) on the reference grid."""
    from ..kinetics import fit_voxels

    if len(aligned) == 1:
        # each voxel: its activity x its VOI's single-time-point factor (TIA / A(t)),
        # outside the VOIs the body's factor
        a = np.asarray(aligned[0].array, dtype=np.float64) * aligned[0].voxel_volume_ml
        factor = np.zeros(a.shape)
        covered = np.zeros(a.shape)
        t = float(times_s[0])
        order = sorted(masks, key=lambda k: float(np.sum(masks[k].array)))
        for name in order:
            k = kinetics.get(name)
            if k is None or k.effective_half_life_s is None:
                continue
            lam = math.log(2) / k.effective_half_life_s
            w = np.minimum(np.asarray(masks[name].array, dtype=np.float64), 1.0 - covered)
            factor += w * math.exp(lam * t) / lam
            covered += w
        body_k = kinetics.get("__body__")
        if body_k is not None and body_k.effective_half_life_s is not None:
            lam = math.log(2) / body_k.effective_half_life_s
            factor += (1.0 - covered) * math.exp(lam * t) / lam
        return aligned[0].with_array(a * factor, unit="Bq s")
    mask = body.with_array(np.asarray(body.array) > 0.5, unit="1")
    res = fit_voxels(
        list(aligned),
        [float(t) / 3600.0 for t in times_s],
        "mono",
        time_unit="h",
        mask=mask,
        nuclide=nuclide,
    )
    replaced = float(np.mean(np.asarray(res.replaced.array)[np.asarray(mask.array)]))
    if replaced > 0.2:
        run.add(
            Finding(
                "voxel_fits_replaced",
                "warning",
                f"{100 * replaced:.0f} % of the body voxels' fits failed and were replaced by the "
                "trapezoidal rule with a physical tail",
                "more time points, or a VOI-scaled voxel model",
            )
        )
    return res.tia


@dataclass(frozen=True)
class PartialVolume:
    """Partial-volume corrected VOI activities per time point and how they were obtained."""

    corrected_tacs: Mapping[str, np.ndarray]
    method: Mapping[str, str]
    recovery: Mapping[str, float]
    fwhm_mm: float | None
    #: relative standard uncertainty of each lesion's recovery coefficient (curve fit)
    rc_relative_sd: Mapping[str, float] = field(default_factory=dict)

    def report_blocks(self) -> tuple[str, list[Any]]:
        """Title and blocks for the reports."""
        from ..report.blocks import Paragraph, Table

        rows = tuple(
            (name, self.method[name], f"{self.recovery[name]:.3f}") for name in self.corrected_tacs
        )
        return "Partial-volume correction", [
            Paragraph(
                "VOI activities corrected for the system resolution; TIA and mean dose are "
                "reported before and after the correction (dose_table.csv: tia_bq_s and "
                "tia_corrected_bq_s, mean_gy and mean_gy_corrected; the voxel map itself "
                "is not corrected)."
            ),
            Table(("VOI", "method", "recovery (measured / corrected)"), rows),
        ]


def _partial_volume(
    run: Run,
    aligned: Sequence[Volume],
    vois: Mapping[str, Volume],
    roles: Mapping[str, tuple[str | None, str]],
    tacs: Mapping[str, np.ndarray],
    *,
    pvc: str,
    fwhm_mm: float | None,
    recovery_curve: Any,
) -> PartialVolume | None:
    """GTM (Rousset 1998) of organs and lesions, or recovery coefficients for lesions."""
    from ..calibration import apply_recovery
    from ..pvc import gtm_correct

    if pvc not in ("auto", "gtm", "none"):
        raise InputDataError(f"--pvc {pvc!r}; valid: auto, gtm, none")
    if pvc == "none" or (pvc == "auto" and fwhm_mm is None and recovery_curve is None):
        run.assume(
            "partial-volume correction",
            "none",
            "user choice (--pvc none)"
            if pvc == "none"
            else "no system resolution (--fwhm) or recovery curve (--recovery) given",
        )
        return None
    if pvc == "gtm" and fwhm_mm is None:
        raise InputDataError("--pvc gtm needs the system resolution: --fwhm MM (fwhm_mm=)")
    names = [n for n in vois if roles[n][1] != "body"]
    rc_rel: dict[str, float] = {}
    corrected: dict[str, np.ndarray] = {}
    method: dict[str, str] = {}
    if fwhm_mm is not None:
        per_tp = [gtm_correct(a, {n: vois[n] for n in names}, fwhm_mm) for a in aligned]
        for n in names:
            corrected[n] = np.array([g.corrected_activity_bq[n] for g in per_tp])
            method[n] = f"geometric transfer matrix, FWHM {fwhm_mm:g} mm"
        run.assume(
            "partial-volume correction",
            f"geometric transfer matrix on the VOIs, Gaussian PSF FWHM {fwhm_mm:g} mm",
            "Rousset OG et al. J Nucl Med 1998;39:904-911",
        )
    if recovery_curve is not None:
        for n in names:
            if roles[n][1] != "lesion":
                continue
            vol = float(np.sum(vois[n].array) * vois[n].voxel_volume_ml)
            rcs = [apply_recovery(float(a), vol, recovery_curve) for a in tacs[n]]
            corrected[n] = np.array([r.corrected_activity_bq for r in rcs])
            method[n] = f"recovery coefficient {rcs[0].rc:.3f} at {vol:.3g} mL"
            rc_sd = recovery_curve.rc_relative_sd(vol)
            if rc_sd is not None:
                rc_rel[n] = rc_sd
        run.assume(
            "lesion recovery",
            "recovery curve of the sphere phantom applied per lesion (VOI volume)",
            recovery_curve.source(),
        )
    if not corrected:
        return None
    recovery = {
        n: float(tacs[n].sum() / corrected[n].sum()) if corrected[n].sum() else float("nan")
        for n in corrected
    }
    return PartialVolume(corrected, method, recovery, fwhm_mm, rc_rel)


def _lesion_masks(
    run: Run,
    activity: Volume,
    body: Volume,
    vois: Mapping[str, Volume],
    roles: Mapping[str, tuple[str | None, str]],
    spec: str,
) -> dict[str, Volume]:
    """Lesions delineated on the first time point: ``"40%"`` of each lesion's maximum
    (Erdi et al. 1997) or ``"level:VALUE"`` (Bq/mL), searched in the body outside organs of
    high physiological uptake (kidneys, salivary and lacrimal glands, bladder, bowel), from
    maxima of at least five times the body's median concentration (project convention)."""
    from ..segmentation import threshold_lesions

    text = str(spec).strip()
    excluded = {"kidneys", "salivary_glands", "lacrimal_glands", "urinary_bladder", "bowel"}
    img = np.asarray(activity.array, dtype=float)
    body_sel = np.asarray(body.array, dtype=float) > 0.5
    # search regions: each organ VOI (not excluded) with its own uptake as the reference,
    # and the rest of the body with the body's: a lesion stands out from the tissue it
    # lies in (a hot normal liver is not a field of lesions)
    regions: list[np.ndarray] = []
    rest = body_sel.copy()
    for n, m in vois.items():
        sel = np.asarray(m.array) > 0.5
        if roles[n][1] == "body":
            continue
        rest &= ~(np.asarray(m.array) > 0)
        if roles[n][0] not in excluded and roles[n][1] == "organ" and sel.any():
            regions.append(sel & body_sel)
    regions.append(rest)
    kw: dict[str, Any] = {"min_volume_ml": run.parameter("spect_lesion_min_volume_ml")}
    if text.endswith("%"):
        kw["fraction"] = float(text[:-1]) / 100.0
        rule = (
            f"{text} of the local maximum (Erdi et al. 1997), peaks >= 5 x the median of the "
            "organ (or the rest of the body) they lie in"
        )
    elif text.lower().startswith("level:"):
        kw["level"] = float(text.split(":", 1)[1])
        rule = f"fixed level {kw['level']:g} {activity.unit}"
    else:
        raise InputDataError(
            f"--lesions {spec!r}: write a percentage of the local maximum ('40%') or a fixed "
            "level ('level:50000' in Bq/mL)"
        )
    found: dict[str, Volume] = {}
    for sel in regions:
        inside = img[sel & (img > 0)]
        if not inside.size:
            continue
        part = threshold_lesions(
            activity,
            fraction=kw.get("fraction"),
            level=kw.get("level"),
            search_mask=activity.with_array(sel, unit="1"),
            min_volume_ml=float(kw["min_volume_ml"]),
            min_peak=5.0 * float(np.median(inside)) if "fraction" in kw else None,
            prefix="lesion_auto_tmp",
        )
        for v in part.values():
            found[f"lesion_auto_{len(found) + 1}"] = v
    run.assume(
        "lesion delineation",
        f"{len(found)} lesion(s): {rule}, at least "
        f"{run.parameter('spect_lesion_min_volume_ml'):g} mL each",
        "dosimetry.segmentation.threshold_lesions",
    )
    return {
        k: v.with_array(np.asarray(v.array, dtype=np.float32), unit="1") for k, v in found.items()
    }


# --------------------------------------------------------------------------------------
# the workflow
# --------------------------------------------------------------------------------------
def run(
    study: Any | Sequence[Any],
    *,
    calibration: str | Path,
    activity: str | None = None,
    therapy: str = "Lu-177-PSMA-617",
    method: str = "auto",
    spect: Sequence[int | str] | None = None,
    effective_half_life_s: Mapping[str, float] | None = None,
    masks: Mapping[str, Volume] | str | Path | None = None,
    voi_map: VoiMap | None = None,
    registration: str = "rigid",
    model: str = "auto",
    pvc: str = "auto",
    fwhm_mm: float | None = None,
    recovery: Any = None,
    lesions: str | None = None,
    rbe: float | None = None,
    minus_lesions: bool = True,
    overrides: Mapping[str, Any] | None = None,
    mc: Mapping[str, Any] | None = None,
    limits: Sequence[Any] | None = None,
    prescribe: bool = False,
    cycles: int = 1,
    history: Any = None,
    limit_bound: str = "mean",
    lq: Mapping[str, tuple[float, float]] | None = None,
    renal_risk_factors: bool = True,
    blood: str | Path | None = None,
    policy: Policy | str | Mapping[str, str] | None = None,
    accept: Iterable[str] | bool = (),
    parameters: Mapping[str, float] | None = None,
    progress: Progress | None = None,
) -> WorkflowResult:
    """Absorbed dose from post-therapy quantitative SPECT/CT at one or several time points.

    Parameters
    ----------
    study
        A :class:`dosimetry.io.Study` holding every time point, or one study per time point.
    calibration
        Camera sensitivity ``"9.1 cps/MBq"`` or a calibration record file (JSON).
    activity
        Administered activity with unit, when the headers lack it (or to override them).
    therapy
        Therapy agent given (its nuclide must match the SPECT's; population half-lives
        for a single time point), any spelling of :func:`dosimetry.nuclides.parse_agent`.
    method
        Dose method, as for :func:`dosimetry.workflows.pet_plan.run`.
    spect
        Which NM series to use (index, UID or description; default all reconstructed).
    effective_half_life_s
        VOI name or shell pattern (``"lesion*"``) -> effective half-life (s) for a single
        time point, instead of the agent's population value (``--half-life``,
        ``--kinetics``); ignored, with a note, when there are several time points.
    masks
        VOIs (mapping, or an RTSTRUCT/SEG/NIfTI path); default the study's RTSTRUCT on the
        first session.
    voi_map
        VOI name -> organ table.
    registration
        ``"rigid"`` (CT-driven, default), ``"deformable"`` or ``"none"`` (already aligned).
    model
        TAC model for 3+ time points (``"auto"`` or a model name of
        :func:`dosimetry.kinetics.fit_tac`).
    pvc, fwhm_mm, recovery
        Partial-volume correction of the VOI values: ``"auto"`` (GTM when the system
        resolution is known: ``fwhm_mm`` or the fitted FWHM of ``recovery``; recovery
        coefficients for lesions when a curve is given), ``"gtm"`` or ``"none"``.
        ``recovery`` is a :class:`dosimetry.calibration.RecoveryCurve` or its JSON file.
    lesions
        Delineate lesions on the first time point when none are given: ``"40%"`` of the
        local maximum or ``"level:VALUE"`` (Bq/mL).
    rbe, minus_lesions, mc, policy, accept, parameters, progress
        As for :func:`dosimetry.workflows.pet_plan.run`.
    overrides
        Header overrides for every SPECT series (``injection_time``, ``injected_activity_bq``).
    limits, prescribe, cycles, history, limit_bound, lq, renal_risk_factors
        As for :func:`dosimetry.workflows.pet_plan.run`: BED/EQD2 per VOI, and with limits
        the activity for the next cycles given this measured cycle (the updated history,
        with this cycle as "measured (SPECT)", is written as history.json).
    blood
        Blood samples (CSV) for the blood-based red-marrow dose.

    Returns
    -------
    WorkflowResult
        ``kind="spect"``; ``details`` holds the TAC fits (``"tac_fits"``), the VOI kinetics
        and the registrations.
    """
    from ..nuclides import parse_agent

    run_ = Run("spect", progress=progress, policy=policy, accept=accept, parameters=parameters)
    studies = list(study) if isinstance(study, list | tuple) else [study]
    with run_.active():
        agent_ = parse_agent(therapy)
        cps_per_mbq, cps_sd, cal_source = parse_calibration_text(calibration)
        ov = dict(overrides or {})
        if activity is not None:
            ov["injected_activity_bq"] = parse_activity_arg(activity, "--activity (activity=)")
        run_.step("finding the SPECT time points and their CTs")
        points = _time_points(run_, studies, spect)
        if ov:
            points = [
                TimePoint(tp.study.spect(tp.spect.series_instance_uid, **ov), tp.ct, tp.study)
                for tp in points
            ]
        injection: datetime = points[0].spect.injection_time
        administered = float(points[0].spect.injected_activity_bq)
        run_.add(
            check_administered_activity(
                administered,
                agent_.nuclide,
                "--activity (or RadionuclideTotalDose (0018,1074) of the SPECT)",
            )
        )
        times_s = np.array(
            [(tp.spect.acquisition_time - injection).total_seconds() for tp in points]
        )
        points = [
            TimePoint(tp.spect, tp.ct, tp.study, f"{t / 3600:.1f} h")
            for tp, t in zip(points, times_s, strict=True)
        ]
        for tp, t in zip(points, times_s, strict=True):
            run_.add(check_spect_time(t / 3600.0, agent_.nuclide, f"SPECT {tp.label}"))
            _check_series(run_, tp, agent_.nuclide)
        run_.step(
            f"calibrating {len(points)} time point(s): counts -> Bq/mL ({cps_per_mbq:g} cps/MBq)"
        )
        activities = [_calibrate(run_, tp, cps_per_mbq) for tp in points]
        for tp, a, t in zip(points, activities, times_s, strict=True):
            decayed = administered * 2.0 ** (-t / points[0].spect.half_life_s)
            run_.add(check_fraction_in_fov(a.total() / decayed, "SPECT", f"SPECT {tp.label}"))
        aligned, reg_records, reg_objects = _register(run_, points, activities, registration)
        grid = aligned[0]
        from ..checks import check_grid_extent
        from ..kernels import electron_reach_mm

        run_.add(
            check_grid_extent(
                grid.shape, grid.spacing_mm, electron_reach_mm(agent_.nuclide), "the SPECT"
            )
        )
        density = None
        if points[0].ct is not None:
            rho_air = run_.parameter("density_air_g_per_ml")
            density = resample(points[0].ct.density(), grid, "concentration", fill_value=rho_air)
            density = density.with_array(np.clip(density.array, rho_air, None))
        # masks
        if masks is None:
            run_.step("rasterising the RTSTRUCT onto the first SPECT grid")
            vois = _study_masks(run_, points[0], grid, registration)
            external = points[0].study.external_roi_names()
        elif isinstance(masks, str | Path):
            from ..io.records import load_masks

            vois, external = load_masks(masks, grid, mode="fraction", option="--masks"), set()
        else:
            vois, external = dict(masks), set()
        voi_map = voi_map or VoiMap.default()
        roles = roles_of(list(vois), voi_map, external)
        body_names = [n for n in vois if roles[n][1] == "body"]
        body = (
            vois[body_names[0]]
            if body_names
            else grid.with_array(np.ones(grid.shape, np.float32), unit="1")
        )
        if lesions is not None:
            if any(r[1] == "lesion" for r in roles.values()):
                run_.add(
                    Finding("lesions_given", "info", "--lesions ignored: VOIs hold lesions", "")
                )
            else:
                vois.update(_lesion_masks(run_, aligned[0], body, vois, roles, lesions))
                roles = roles_of(list(vois), voi_map, external)
        curve = None
        if recovery is not None:
            from ..calibration import RecoveryCurve

            curve = (
                recovery if isinstance(recovery, RecoveryCurve) else RecoveryCurve.load(recovery)
            )
            if fwhm_mm is None and "fwhm_mm" in curve.parameters:
                fwhm_mm = float(curve.parameters["fwhm_mm"])

        run_.step("VOI time-activity curves and TIA")
        region_masks = _disjoint_masks(vois, roles) if minus_lesions else dict(vois)
        tacs = _voi_tacs(aligned, region_masks)
        from .options import expand_half_lives

        user_t = expand_half_lives(effective_half_life_s, region_masks) or {}
        if user_t and len(times_s) > 1:
            run_.assume(
                "user half-lives not used",
                ", ".join(sorted(user_t)),
                f"{len(times_s)} time points: the VOIs' own fitted kinetics are used",
            )
            user_t = {}
        kinetics: dict[str, VoiKinetics] = {}
        for name, tac in tacs.items():
            organ, role = roles[name]
            try:
                kinetics[name] = _voi_tia(
                    run_,
                    times_s,
                    tac,
                    name=name,
                    organ=organ,
                    agent=agent_.name,
                    nuclide=agent_.nuclide,
                    model=model,
                    user_half_life_s=user_t.get(name),
                )
            except DosimetryError as exc:
                run_.add(Finding("voi_kinetics", "warning", f"VOI {name}: no TIA ({exc})", ""))
        pv = _partial_volume(
            run_, aligned, region_masks, roles, tacs, pvc=pvc, fwhm_mm=fwhm_mm, recovery_curve=curve
        )
        corrected_kinetics: dict[str, VoiKinetics] = {}
        if pv is not None:
            run_.step("partial-volume correction of the VOI values")
            for name, ctac in pv.corrected_tacs.items():
                try:
                    corrected_kinetics[name] = _voi_tia(
                        run_,
                        times_s,
                        ctac,
                        name=name,
                        organ=roles[name][0],
                        agent=agent_.name,
                        nuclide=agent_.nuclide,
                        model=model,
                        user_half_life_s=user_t.get(name),
                    )
                except DosimetryError as exc:
                    run_.add(
                        Finding("voi_kinetics", "warning", f"VOI {name} (corrected): {exc}", "")
                    )
        if len(times_s) == 1:
            prior = _population_half_life(agent_.name, "whole_body")
            if prior is not None:
                kinetics["__body__"] = VoiKinetics(0.0, None, "population", prior[0])
        run_.step("voxel TIA map")
        tia = _voxel_tia(
            run_, aligned, times_s, body, nuclide=agent_.nuclide, kinetics=kinetics, masks=vois
        )
        kinetics.pop("__body__", None)

        from ..nuclides import decay_chain
        from ..nuclides import nuclide as nuclide_data
        from .pet_plan import UncertaintyBudget, _choose_method, _dose_maps

        members = decay_chain(agent_.nuclide).members
        chain = len(members) > 1
        alpha = any(nuclide_data(m).energy_per_decay_mev("alpha") > 0 for m in members)
        chosen, kernel = _choose_method(
            run_, method, agent_.nuclide, tia.spacing_mm, density, chain
        )
        run_.step(f"absorbed dose ({chosen.upper()})")
        dose, dose_rbe, uncertainty = _dose_maps(
            tia,
            agent_.nuclide,
            method=chosen,
            kernel=kernel,
            density=density,
            chain=chain,
            alpha=alpha,
            rbe=rbe,
            mc=mc,
            target_vois={k: v for k, v in vois.items() if roles[k][1] in ("organ", "lesion")},
        )
        run_.assume_kernel(dose)
        table = build_table(
            dose,
            vois,
            roles,
            density=density,
            dose_rbe=dose_rbe,
            tia=tia,
            administered_activity_bq=administered,
            minus_lesions=minus_lesions,
        )
        for row in table:  # a calibration or time error shows as an absurd dose
            stats = row.dose_rbe or row.dose
            run_.add(check_organ_dose(row.name, row.role, stats.mean, stats.unit))
        from ._heterogeneity import flag_table, method_terms

        table, heterogeneity = flag_table(
            run_, table, vois, density, agent_.nuclide, chain=chain, method=chosen
        )
        from ..uncertainty import Term, combine

        cal_rel = (
            cps_sd / cps_per_mbq
            if math.isfinite(cps_sd)
            else run_.parameter("spect_calibration_relative_sd")
        )
        cal_src = (
            cal_source
            if math.isfinite(cps_sd)
            else "parameter spect_calibration_relative_sd (the calibration states none)"
        )
        budgets: dict[str, tuple[Any, ...]] = {}
        rows = []
        for row in table:
            k = kinetics.get(row.name)
            if k is None:
                rows.append(row)
                continue
            extra = dict(row.extra)
            extra["tia_voi_fit_bq_s"] = k.tia_bq_s
            terms = [
                Term("camera calibration", cal_rel, 1.0, cal_src),
                Term(
                    "VOI mass",
                    run_.parameter("voi_mass_relative_sd"),
                    1.0,
                    "parameter voi_mass_relative_sd",
                ),
                *method_terms(run_, chosen, row.name, dose, heterogeneity),
            ]
            if k.tia_sd_bq_s is not None and k.tia_bq_s > 0 and math.isfinite(k.tia_sd_bq_s):
                terms.append(
                    Term(
                        f"TIA ({k.method})",
                        k.tia_sd_bq_s / k.tia_bq_s,
                        1.0,
                        "fit covariance (delta method)"
                        if k.fit is not None
                        else k.note or k.method,
                    )
                )
            budgets[row.name] = tuple(terms)
            u = row.dose.mean * combine(terms)
            kc = corrected_kinetics.get(row.name)
            if kc is not None and k.tia_bq_s > 0 and kc.tia_bq_s > 0:
                extra["tia_corrected_bq_s"] = kc.tia_bq_s
                extra["recovery"] = k.tia_bq_s / kc.tia_bq_s
                extra["mean_gy_corrected"] = row.dose.mean * kc.tia_bq_s / k.tia_bq_s
                # the corrected dose: the same budget plus the recovery coefficient's own
                # uncertainty where the curve states it (GTM: the FWHM is taken as exact)
                rc_sd = pv.rc_relative_sd.get(row.name) if pv is not None else None
                extra["mean_gy_corrected_u"] = extra["mean_gy_corrected"] * math.hypot(
                    combine(terms), rc_sd or 0.0
                )
            rows.append(
                VoiDose(
                    row.name,
                    row.organ,
                    row.role,
                    row.volume_ml,
                    row.mass_g,
                    row.dose,
                    row.dose_rbe,
                    k.tia_bq_s,
                    u,
                    row.bed_gy,
                    row.eqd2_gy,
                    "; ".join(x for x in (row.notes, k.method) if x),
                    extra,
                )
            )
        from ..results import DoseTable

        table = DoseTable(tuple(rows), administered, table.convention)

        run_.assume("calibration", f"{cps_per_mbq:g} cps/MBq", cal_source)
        run_.assume(
            "time points",
            ", ".join(tp.label for tp in points),
            "SPECT acquisition start - administration",
        )
        n = len(points)
        run_.assume(
            "VOI kinetics",
            {
                1: "single time point (Madsen 2018) with the population effective half-life",
                2: "mono-exponential through both points (exactly determined)",
            }.get(n, f"fitted ({model})"),
            {1: "Madsen MT et al. Med Phys 2018;45:2318-2324", 2: "two-point rule"}.get(
                n, "Kletting P et al. Med Phys 2013;40:102504 (AICc selection)"
            ),
        )
        if n == 2:
            run_.assume(
                "two-point uncertainty",
                f"{100 * run_.parameter('spect_voi_activity_relative_sd'):.0f} % SD per VOI activity",
                "parameter spect_voi_activity_relative_sd",
            )
        run_.assume(
            "voxel TIA",
            "voxel-wise mono-exponential fits inside the body (failed fits: trapezoid with "
            "physical tail)"
            if n > 1
            else "each voxel scaled by its VOI's single-time-point factor",
            "dosimetry.kinetics.fit_voxels" if n > 1 else "Madsen 2018 applied per VOI",
        )
        run_.assume(
            "registration",
            registration if registration == "none" else f"{_ct_method(registration)} (CT-driven)",
            "SimpleITK; the Registration section of the report shows its quality",
        )
        run_.assume("dose method", chosen, "user" if method != "auto" else "automatic choice")
        from ..io.records import input_record, patient_record

        inputs: list[InputRecord] = []
        for tp in points:
            inputs.append(input_record(tp.spect, f"SPECT {tp.label}"))
            if tp.ct is not None:
                inputs.append(input_record(tp.ct, f"CT {tp.label}"))
        images: dict[str, Volume] = {"SPECT": activities[0]}
        if points[0].ct is not None:
            images["CT"] = points[0].ct.volume
        fits = {name: k.fit for name, k in kinetics.items() if k.fit is not None}
        result = WorkflowResult(
            kind="spect",
            title=f"{agent_.name} post-therapy SPECT/CT dosimetry, {n} time point(s)",
            agent=agent_.name,
            nuclide=agent_.nuclide,
            administered_activity_bq=administered,
            method=chosen,
            inputs=tuple(inputs),
            masks=vois,
            tia=tia,
            dose=dose,
            dose_rbe=dose_rbe,
            dose_uncertainty=uncertainty,
            density=density,
            images=images,
            table=table,
            provenance={"dose": dict(dose.provenance), "registrations": reg_records},
            reference=points[0].spect,
            details={
                "tac_fits": fits,
                "voi_kinetics": kinetics,
                "registrations": reg_records,
                **(
                    {
                        "registration_quality": RegistrationQuality(
                            tuple(reg_records), tuple(reg_objects)
                        )
                    }
                    if reg_objects
                    else {}
                ),
                "tacs": tacs,
                "times_s": times_s,
                **({"partial_volume": pv} if pv is not None else {}),
                "uncertainty": UncertaintyBudget(budgets),
                **({"heterogeneity": heterogeneity} if heterogeneity is not None else {}),
            },
            patient=patient_record(points[0].spect),
            **run_.common(),
        )
        from ._organ_level import with_organ_level_methods
        from .prescription import finish_with_prescription

        result = with_organ_level_methods(run_, result, blood=blood)
        return finish_with_prescription(
            run_,
            result,
            limits=limits,
            prescribe=prescribe,
            cycles=cycles,
            history=history,
            limit_bound=limit_bound,
            lq=lq,
            renal_risk_factors=renal_risk_factors,
            history_source="measured (SPECT)",
        )


def run_folder(
    folder: str | Path | Sequence[str | Path],
    *,
    header_overrides: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> WorkflowResult:
    """:func:`run` on one folder (all time points) or a list of folders (one per time point);
    ``header_overrides`` are the studies' overrides (``--header`` on the command line)."""
    from ..io import load_study

    folders = [folder] if isinstance(folder, str | Path) else list(folder)
    progress = kwargs.get("progress")
    if progress is not None:
        progress(f"reading DICOM folder(s) {', '.join(str(f) for f in folders)}")
    studies = [load_study(f, overrides=header_overrides) for f in folders]
    return run(studies if len(studies) > 1 else studies[0], **kwargs)
