"""Radiopharmacy dispensing: the activity to draw now for a prescribed activity at injection.

``A_draw = A_inj * 2 ** ((t_inj - t_draw) / T_1/2)`` with the ICRP-107 half-life of
:mod:`dosimetry.nuclides`. The dose-calibrator reading that corresponds to the drawn
activity is returned with the assumption it rests on:

* ¹⁸F, ⁶⁸Ga, ¹⁷⁷Lu: the calibrator is set (and calibrated) for the nuclide; reading = drawn
  activity of the nuclide.
* ¹⁷⁷Lu with the long-lived isomer ¹⁷⁷ᵐLu (T½ 160 d) as impurity: given the activity ratio
  ¹⁷⁷ᵐLu/¹⁷⁷Lu at a reference time (certificate of analysis), the impurity activity drawn
  and injected is reported; the ratio grows with time because ¹⁷⁷Lu decays faster. Typical
  ratios for carrier-added ¹⁷⁷Lu (direct ¹⁷⁶Lu(n,γ) route) of 0.01-0.02 % at the end of
  irradiation are reported by a producer (Henkelmann R, Isotope Technologies Garching,
  contribution at indico.cern.ch/event/70767/contributions/1236766); Konijnenberg (Curr
  Radiopharm 2015;8:145-149) evaluated 0.1 % (1 kBq/MBq) as a conservative admixture. For
  no-carrier-added ¹⁷⁷Lu (¹⁷⁶Yb route) no typical ratio could be sourced (the isomer is not
  produced by that route's main reaction); no default is applied: give the certificate's
  value.
* ²²⁵Ac: after radiochemical purification the daughters grow in (²²¹Fr, T½ 4.8 min;
  ²¹³Bi, T½ 45.6 min). Dose-calibrator settings for ²²⁵Ac are assumed to refer to ²²⁵Ac in
  secular equilibrium with its progeny; a sample measured before equilibrium reads low.
  The reading is estimated as the ²²⁵Ac activity times the photon-energy-weighted ingrowth
  of the chain (the ionisation-chamber response is taken as proportional to the photon
  energy emitted by each member, an approximation; ICRP-107 photon energies). By the
  Bateman equations ²¹³Bi is within 1 % of its equilibrium activity 5.2 h after
  separation. Check the calibrator maker's
  setting documentation for your chamber.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime

from .errors import InputDataError
from .nuclides import nuclide as _nuclide

_log = logging.getLogger(__name__)

__all__ = ["DispenseResult", "activity_to_draw", "ac225_ingrowth", "LU177M_NOTE"]

LU177M_NOTE = (
    "177mLu/177Lu ratio: carrier-added 177Lu 0.01-0.02 % at end of irradiation reported by a "
    "producer (Henkelmann, ITG; indico.cern.ch/event/70767/contributions/1236766), doubling in "
    "about one week; Konijnenberg, Curr Radiopharm 2015;8:145-149 evaluated 0.1 %. No typical "
    "value could be sourced for no-carrier-added 177Lu; use the certificate of analysis."
)


@dataclass(frozen=True)
class DispenseResult:
    """What to draw, and what the calibrator should read.

    Attributes
    ----------
    nuclide
        Canonical nuclide name.
    prescribed_activity_bq
        Activity wanted at ``injection_time`` (Bq).
    injection_time, draw_time
        Times of injection and of drawing/measuring.
    elapsed_s
        ``injection_time - draw_time`` (s, >= 0).
    decay_factor
        ``A_inj / A_draw = 2 ** (-elapsed / T_1/2)``.
    draw_activity_bq
        Activity of the nuclide to draw at ``draw_time`` (Bq).
    calibrator_reading_bq
        Expected reading of a calibrator set for the nuclide (see the module docstring).
    half_life_s
        Half-life used (ICRP-107).
    impurity_activity_bq
        Impurity name -> activity (Bq) at draw and at injection time, where computed.
    notes
        Assumptions and sources, in words.
    """

    nuclide: str
    prescribed_activity_bq: float
    injection_time: datetime
    draw_time: datetime
    elapsed_s: float
    decay_factor: float
    draw_activity_bq: float
    calibrator_reading_bq: float
    half_life_s: float
    impurity_activity_bq: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def ac225_ingrowth(time_since_separation_s: float) -> dict[str, float]:
    """Activity of ²²¹Fr and ²¹³Bi relative to ²²⁵Ac at a time after purification.

    Bateman solution for ²²⁵Ac -> ²²¹Fr -> (²¹⁷At, 32 ms, taken in equilibrium with
    ²²¹Fr) -> ²¹³Bi, starting from pure ²²⁵Ac, with ICRP-107 half-lives and the
    radioactivedecay branching fraction of ²¹⁷At to ²¹³Bi. Values are activity ratios
    (member / ²²⁵Ac); at equilibrium they approach ``l/(l - l_Ac)`` times the branching
    (slightly above 1: transient equilibrium).

    Returns
    -------
    dict
        ``{"Fr-221": ..., "Bi-213": ..., "calibrator_fraction": ...}`` where the last is the
        photon-energy-weighted reading relative to the equilibrium reading (see module
        docstring).

    >>> round(ac225_ingrowth(0.0)["Bi-213"], 6), round(ac225_ingrowth(48 * 3600.0)["Bi-213"], 4)
    (0.0, 1.0034)
    """
    t = float(time_since_separation_s)
    if not (t >= 0 and math.isfinite(t)):
        raise InputDataError(f"time_since_separation_s must be >= 0, got {time_since_separation_s}")
    ac, fr, at, bi = (_nuclide(n) for n in ("Ac-225", "Fr-221", "At-217", "Bi-213"))
    l1, l2, l3 = ac.decay_constant_per_s, fr.decay_constant_per_s, bi.decay_constant_per_s
    b_at_bi = dict((d, b) for d, b, _ in at.progeny).get("Bi-213", 1.0)
    # A2/A1 and A3/A1 for a pure parent at t = 0 (Bateman), A_i = lambda_i N_i
    e1, e2, e3 = math.exp(-l1 * t), math.exp(-l2 * t), math.exp(-l3 * t)
    a2 = l2 / (l2 - l1) * (e1 - e2) / e1
    n3 = (
        l1
        * l2
        * (
            e1 / ((l2 - l1) * (l3 - l1))
            + e2 / ((l1 - l2) * (l3 - l2))
            + e3 / ((l1 - l3) * (l2 - l3))
        )
    )
    a3 = b_at_bi * l3 * n3 / (l1 * e1)

    def response(r2: float, r3: float) -> float:
        return (
            ac.energy_per_decay_mev("photon")
            + r2 * (fr.energy_per_decay_mev("photon") + at.energy_per_decay_mev("photon"))
            + r3 * bi.energy_per_decay_mev("photon")
        )

    a2_eq = l2 / (l2 - l1)
    a3_eq = b_at_bi * l2 * l3 / ((l2 - l1) * (l3 - l1))
    return {
        "Fr-221": a2,
        "Bi-213": a3,
        "calibrator_fraction": response(a2, a3) / response(a2_eq, a3_eq),
    }


def activity_to_draw(
    nuclide: str,
    prescribed_activity_bq: float,
    injection_time: datetime,
    draw_time: datetime,
    *,
    lu177m_ratio: float | None = None,
    lu177m_ratio_time: datetime | None = None,
    ac225_separation_time: datetime | None = None,
) -> DispenseResult:
    """Activity to draw at ``draw_time`` so that ``prescribed_activity_bq`` remains at injection.

    Parameters
    ----------
    nuclide
        ``"F-18"``, ``"Ga-68"``, ``"Lu-177"``, ``"Ac-225"`` (any ICRP-107 nuclide works for
        the decay; the calibrator notes are specific to these).
    prescribed_activity_bq
        Activity at injection (Bq), > 0.
    injection_time, draw_time
        Planned injection and draw/measurement times (timezone-consistent datetimes);
        ``draw_time`` must not be after ``injection_time``.
    lu177m_ratio
        ¹⁷⁷Lu only: activity ratio ¹⁷⁷ᵐLu/¹⁷⁷Lu (e.g. ``2e-4`` for 0.02 %) at
        ``lu177m_ratio_time`` (default: ``draw_time``), from the certificate of analysis.
    ac225_separation_time
        ²²⁵Ac only: time of the last radiochemical purification; default: equilibrium
        assumed (reading = activity), which is stated in the notes.

    Returns
    -------
    DispenseResult

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> t0 = datetime(2026, 3, 2, 9, 0)
    >>> r = activity_to_draw("F-18", 300e6, t0 + timedelta(minutes=109.77), t0)
    >>> round(r.draw_activity_bq / 1e6, 1), round(r.decay_factor, 4)
    (600.0, 0.5)
    """
    a_inj = float(prescribed_activity_bq)
    if not (a_inj > 0 and math.isfinite(a_inj)):
        raise InputDataError(
            f"prescribed_activity_bq must be a finite activity > 0 Bq, got {prescribed_activity_bq!r}"
        )
    nuc = _nuclide(nuclide)
    dt = (injection_time - draw_time).total_seconds()
    if dt < 0:
        raise InputDataError(
            f"draw_time {draw_time.isoformat()} is after injection_time "
            f"{injection_time.isoformat()}: the activity is drawn before it is injected; "
            "swap the arguments or correct the times"
        )
    factor = 2.0 ** (-dt / nuc.half_life_s)
    a_draw = a_inj / factor
    notes = [f"decay law with T1/2({nuc.name}) = {nuc.half_life_s:.6g} s (ICRP-107)"]
    reading = a_draw
    impurities: dict[str, dict[str, float]] = {}
    if nuc.name == "Lu-177":
        if lu177m_ratio is not None:
            ratio = float(lu177m_ratio)
            if not (0 <= ratio < 1):
                raise InputDataError(f"lu177m_ratio must be in [0, 1), got {lu177m_ratio}")
            t_ref = draw_time if lu177m_ratio_time is None else lu177m_ratio_time
            m = _nuclide("Lu-177m")
            # activity of each at draw time from the ratio at t_ref
            dt_ref = (draw_time - t_ref).total_seconds()
            ratio_draw = (
                ratio * 2.0 ** (-dt_ref / m.half_life_s) / 2.0 ** (-dt_ref / nuc.half_life_s)
            )
            a_m_draw = ratio_draw * a_draw
            a_m_inj = a_m_draw * 2.0 ** (-dt / m.half_life_s)
            impurities["Lu-177m"] = {"at_draw_bq": a_m_draw, "at_injection_bq": a_m_inj}
            notes.append(
                f"177mLu impurity from the given ratio {ratio:.3g} at {t_ref.isoformat()}: "
                f"{a_m_inj:.4g} Bq injected (ratio at injection {a_m_inj / a_inj:.3g})"
            )
        else:
            notes.append("177mLu impurity not computed (no lu177m_ratio given). " + LU177M_NOTE)
        notes.append("calibrator reading = drawn 177Lu activity (calibrator set for Lu-177)")
    elif nuc.name == "Ac-225":
        if ac225_separation_time is None:
            notes.append(
                "Ac-225: daughters assumed in secular equilibrium (reading = activity with a "
                "calibrator setting for Ac-225 in equilibrium with its progeny); give "
                "ac225_separation_time for a freshly purified sample"
            )
        else:
            t_sep = (draw_time - ac225_separation_time).total_seconds()
            ing = ac225_ingrowth(t_sep)
            reading = a_draw * ing["calibrator_fraction"]
            notes.append(
                f"Ac-225 measured {t_sep / 3600:.3g} h after purification: Fr-221/Ac-225 = "
                f"{ing['Fr-221']:.4f}, Bi-213/Ac-225 = {ing['Bi-213']:.4f}; a calibrator set for "
                f"Ac-225 in equilibrium reads {ing['calibrator_fraction']:.4f} x the Ac-225 "
                "activity (photon-energy-weighted ingrowth, approximate)"
            )
    else:
        notes.append(f"calibrator reading = drawn activity (calibrator set for {nuc.name})")
    return DispenseResult(
        nuclide=nuc.name,
        prescribed_activity_bq=a_inj,
        injection_time=injection_time,
        draw_time=draw_time,
        elapsed_s=dt,
        decay_factor=factor,
        draw_activity_bq=a_draw,
        calibrator_reading_bq=reading,
        half_life_s=nuc.half_life_s,
        impurity_activity_bq=impurities,
        notes=tuple(notes),
    )
