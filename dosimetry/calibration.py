"""Quantitative-SPECT calibration: camera sensitivity and recovery coefficients.

Two measurements turn reconstructed SPECT counts into activity a physicist can trust, and
each is kept as a small, versioned JSON record that the workflows accept by path:

* **Camera sensitivity** (:func:`sensitivity_from_acquisition` -> :class:`CalibrationRecord`):
  a uniform cylinder or a point source of known activity, acquired and reconstructed
  like a patient. With the activity ``A_ref`` assayed at ``t_ref``, the acquisition
  starting at ``t_0`` and lasting ``T``, and ``C`` reconstructed counts in the VOI::

      A_0   = A_ref exp(-lambda (t_0 - t_ref))             activity at the scan start
      T_eff = (1 - exp(-lambda T)) / lambda                decay during the scan
      S     = C / (A_0 [MBq] T_eff [s])                    cps/MBq

  which is the inverse of the conversion :meth:`dosimetry.io.SpectSeries.
  activity_at_acquisition` applies (``A_0 = C / (S T_eff)``; MIRD Pamphlet 23, Dewaraja
  et al. 2012; MIRD Pamphlet 26, Ljungberg et al. 2016). The VOI must hold every count the
  source produced (the whole field of view by default; a cylinder VOI grown by about two
  FWHM), otherwise the counts spilled out by the finite resolution are missed.
  Uncertainty: counting statistics ``1/sqrt(C)`` (reconstructed counts treated as
  Poisson, an approximation) combined in quadrature with the stated relative uncertainty
  of the activity assay (EANM guidance, Gear et al. 2018).
* **Recovery coefficients** (:func:`recovery_from_spheres` -> :class:`RecoveryCurve`):
  spheres of known volume and activity concentration (NEMA/IEC-like phantom), the mean
  concentration in each sphere VOI over the true one, ``RC = C_meas / C_true`` (Hoffman et
  al. 1979); with a warm background ``C_b``, ``RC = (C_meas - C_b) / (C_true - C_b)``
  (the sphere's own recovery, spill-in from the background removed; Kessler et al. 1984).
  ``RC(volume)`` is fitted with the recovery of a uniform sphere of diameter ``d`` seen
  through an isotropic 3-D Gaussian point-spread function of full width ``FWHM``,
  averaged over the sphere (:func:`sphere_recovery`), scaled by a plateau ``RC_max``::

      RC(d) = RC_max (1/V) int_S int_S g(x - x') dx' dx
            = RC_max (4 pi / V) int_0^d s^2 g(s) V_cap(s) ds,
      V_cap(s) = pi (2d + s)(d - s)^2 / 12     (overlap of two spheres of diameter d)

  with ``g`` the Gaussian (``sigma = FWHM / (2 sqrt(2 ln 2))``); the integral has a closed
  form in ``erf`` and ``exp``. ``FWHM`` and ``RC_max`` are the two fitted parameters; the
  fitted FWHM is the effective resolution of the reconstruction, which need not equal
  the nominal one. ``model="table"`` interpolates the measured RCs linearly in
  log(volume) instead (no extrapolation: the nearest measured value beyond the range).
  :func:`apply_recovery` divides a lesion's VOI activity by ``RC(volume)`` and says where
  the RC came from.

References
----------
Dewaraja YK, Frey EC, Sgouros G, et al. MIRD Pamphlet No. 23: quantitative SPECT for
patient-specific 3-dimensional dosimetry in internal radionuclide therapy. J Nucl Med
2012;53:1310-1325.

Ljungberg M, Celler A, Konijnenberg MW, et al. MIRD Pamphlet No. 26: joint EANM/MIRD
guidelines for quantitative 177Lu SPECT applied for dosimetry of radiopharmaceutical
therapy. J Nucl Med 2016;57:151-162.

Gear JI, Cox MG, Gustafsson J, et al. EANM practical guidance on uncertainty analysis for
molecular radiotherapy absorbed dose calculations. Eur J Nucl Med Mol Imaging
2018;45:2456-2474.

Hoffman EJ, Huang SC, Phelps ME. Quantitation in positron emission computed tomography:
1. Effect of object size. J Comput Assist Tomogr 1979;3:299-308.

Kessler RM, Ellis JR, Eden M. Analysis of emission tomographic scan data: limitations
imposed by resolution and background. J Comput Assist Tomogr 1984;8:514-522.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputDataError, OutputError, UnitError
from .units import parse_activity
from .volume import Volume

__all__ = [
    "SCHEMA_VERSION",
    "CalibrationRecord",
    "RecoveryCurve",
    "RecoveryCorrection",
    "sensitivity_from_acquisition",
    "parse_calibration",
    "recovery_from_spheres",
    "apply_recovery",
    "sphere_mask",
    "sphere_recovery",
    "blurred_sphere_profile",
    "FWHM_TO_SIGMA",
]

log = logging.getLogger(__name__)

#: Version of the JSON layout written by :meth:`CalibrationRecord.save` and
#: :meth:`RecoveryCurve.save`; :meth:`~CalibrationRecord.load` refuses newer versions.
SCHEMA_VERSION = 1
_SCHEMA = "dosimetry.calibration"

#: sigma of a Gaussian per unit FWHM: 1 / (2 sqrt(2 ln 2)).
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))

_RECOVERY_MODELS = ("gaussian-sphere", "table")


# --------------------------------------------------------------------------------------
# records
def _iso(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _check_number(name: str, value: Any, *, positive: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputDataError(f"{name}={value!r} is not a number") from None
    if not math.isfinite(v) or (positive and v <= 0):
        raise InputDataError(
            f"{name}={value!r} must be a {'positive ' if positive else ''}finite number"
        )
    return v


def _write_json(path: str | Path, payload: Mapping[str, Any], overwrite: bool) -> Path:
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputError(f"{str(p)!r} exists; pass overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return p


def _read_json(path: str | Path, kind: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"calibration record {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(f"calibration record {str(p)!r} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != _SCHEMA:
        raise InputDataError(
            f'{str(p)!r} is not a dosimetry calibration record (no "schema": "{_SCHEMA}"); '
            "write one with CalibrationRecord.save or RecoveryCurve.save"
        )
    version = data.get("version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise InputDataError(
            f"{str(p)!r}: record version {version!r}, this package reads versions 1 to "
            f"{SCHEMA_VERSION}; update the package"
        )
    if data.get("kind") != kind:
        raise InputDataError(
            f"{str(p)!r} holds a {data.get('kind')!r} record, not a {kind!r} record"
        )
    return data


@dataclass(frozen=True)
class CalibrationRecord:
    """Camera sensitivity (reconstructed counts per second of acquisition per MBq).

    Attributes
    ----------
    cps_per_mbq
        Sensitivity (cps/MBq), as :meth:`dosimetry.io.SpectSeries.activity_at_acquisition`
        takes it.
    cps_per_mbq_sd
        One standard uncertainty (cps/MBq); NaN when not known (a stated value).
    nuclide
        Nuclide the sensitivity holds for (``"Lu-177"``), or None (a stated value).
    date
        Acquisition date/time of the calibration (ISO 8601), or ``""``.
    camera, collimator, energy_window, reconstruction
        Free text describing the system the factor belongs to.
    source_geometry
        ``"uniform cylinder 6283 mL"``, ``"point source"``, ...
    method
        How the value was obtained.
    details
        Numbers behind it (counts, activity, times, VOI volume, ...).
    """

    cps_per_mbq: float
    cps_per_mbq_sd: float = math.nan
    nuclide: str | None = None
    date: str = ""
    camera: str = ""
    collimator: str = ""
    energy_window: str = ""
    reconstruction: str = ""
    source_geometry: str = ""
    method: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    kind = "camera-sensitivity"

    def __post_init__(self) -> None:
        _check_number("cps_per_mbq", self.cps_per_mbq)

    @property
    def relative_sd(self) -> float:
        """``cps_per_mbq_sd / cps_per_mbq`` (NaN when unknown)."""
        return float(self.cps_per_mbq_sd) / float(self.cps_per_mbq)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, with schema, kind and version."""
        body = asdict(self)
        body["details"] = dict(self.details)
        sd = body["cps_per_mbq_sd"]
        body["cps_per_mbq_sd"] = None if not math.isfinite(sd) else sd
        return {"schema": _SCHEMA, "kind": self.kind, "version": SCHEMA_VERSION, **body}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationRecord:
        """Inverse of :meth:`to_dict` (unknown keys refused)."""
        body = {k: v for k, v in data.items() if k not in ("schema", "kind", "version")}
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(body) - known)
        if extra:
            raise InputDataError(f"calibration record: unknown fields {extra}")
        if body.get("cps_per_mbq_sd") is None:
            body["cps_per_mbq_sd"] = math.nan
        return cls(**body)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the record as JSON (refuses to replace a file unless ``overwrite``)."""
        return _write_json(path, self.to_dict(), overwrite)

    @classmethod
    def load(cls, path: str | Path) -> CalibrationRecord:
        """Read a record written by :meth:`save`."""
        return cls.from_dict(_read_json(path, cls.kind))

    def summary(self) -> str:
        """One line: value, uncertainty, nuclide, date and source."""
        sd = f" +/- {self.cps_per_mbq_sd:.3g}" if math.isfinite(self.cps_per_mbq_sd) else ""
        what = ", ".join(
            s
            for s in (
                self.nuclide or "",
                self.date,
                self.camera,
                self.collimator,
                self.energy_window,
                self.source_geometry,
            )
            if s
        )
        return f"{self.cps_per_mbq:.6g}{sd} cps/MBq ({what}; {self.method})"


# --------------------------------------------------------------------------------------
# camera sensitivity
def _decay_constant_per_s(nuclide: str, half_life_s: float | None) -> tuple[str, float]:
    if half_life_s is not None:
        return nuclide, math.log(2.0) / _check_number("half_life_s", half_life_s)
    from .nuclides import nuclide as _nuclide  # lazy: decay data are loaded on demand

    nuc = _nuclide(nuclide)
    return nuc.name, nuc.decay_constant_per_s


def _voi_weights(image: Volume, voi: Volume | None, name: str) -> np.ndarray | None:
    if voi is None:
        return None
    image.check_same_grid(voi, name)
    w = np.asarray(voi.array, dtype=float)
    if np.any(w < 0) or np.any(w > 1) or not np.all(np.isfinite(w)):
        raise InputDataError(f"{name} must be a mask with values in [0, 1]")
    if not np.any(w > 0):
        raise InputDataError(f"{name} is empty")
    return w


def sensitivity_from_acquisition(
    image: Volume,
    *,
    activity: float | str,
    activity_reference_time: datetime,
    acquisition_start: datetime,
    acquisition_duration_s: float,
    nuclide: str,
    voi: Volume | None = None,
    activity_relative_sd: float | None = None,
    half_life_s: float | None = None,
    camera: str = "",
    collimator: str = "",
    energy_window: str = "",
    reconstruction: str = "",
    source_geometry: str = "",
) -> CalibrationRecord:
    """Camera sensitivity (cps/MBq) from a reconstructed calibration acquisition.

    Parameters
    ----------
    image
        Reconstructed counts (unit ``"counts"``) or count rate (``"counts/s"``: counts per
        second of acquisition) of a source of known activity.
    activity
        Activity assayed in the source (Bq, or ``"200 MBq"``), at
        ``activity_reference_time`` (e.g. the dose-calibrator reading minus the residual in
        the syringe).
    activity_reference_time
        When ``activity`` was measured.
    acquisition_start, acquisition_duration_s
        Start of the acquisition and its wall-clock duration (s); the heads acquire
        simultaneously (as for :meth:`dosimetry.io.SpectSeries.acquisition_duration_s`).
    nuclide
        ``"Lu-177"``; its half-life corrects the decay from the assay to the scan and
        during the scan (override with ``half_life_s``).
    voi
        Mask (values in [0, 1]) on the image grid holding all counts of the source;
        default the whole image.
    activity_relative_sd
        Relative standard uncertainty of the assayed activity (dose calibrator); without
        it the uncertainty is counting statistics only (stated in ``method``).
    half_life_s
        Override of the nuclide's half-life (s).
    camera, collimator, energy_window, reconstruction, source_geometry
        Free text stored in the record.

    Returns
    -------
    CalibrationRecord

    References
    ----------
    Ljungberg M et al. MIRD Pamphlet No. 26. J Nucl Med 2016;57:151-162 (sensitivity from
    a calibration acquisition); Gear JI et al. Eur J Nucl Med Mol Imaging
    2018;45:2456-2474 (uncertainty).

    Examples
    --------
    >>> import numpy as np
    >>> from datetime import datetime
    >>> img = Volume.from_spacing(np.full((4, 4, 4), 9.6e5 / 64), (4.0, 4.0, 4.0), unit="counts")
    >>> t0 = datetime(2024, 1, 1, 12, 0)
    >>> rec = sensitivity_from_acquisition(img, activity="100 MBq", activity_reference_time=t0,
    ...     acquisition_start=t0, acquisition_duration_s=1000.0, nuclide="Lu-177",
    ...     half_life_s=1e30)
    >>> round(rec.cps_per_mbq, 6)
    9.6
    """
    if image.unit not in ("counts", "counts/s"):
        raise UnitError(
            f"image.unit={image.unit!r}; the calibration needs reconstructed 'counts' or a "
            "'counts/s' rate (read the series with .volume, not activity_at_acquisition)"
        )
    a_ref = parse_activity(activity, "activity") if isinstance(activity, str) else activity
    a_ref = _check_number("activity", a_ref)
    duration = _check_number("acquisition_duration_s", acquisition_duration_s)
    if not isinstance(activity_reference_time, datetime) or not isinstance(
        acquisition_start, datetime
    ):
        raise InputDataError(
            "activity_reference_time and acquisition_start must be datetime objects, got "
            f"{activity_reference_time!r}, {acquisition_start!r}"
        )
    if (activity_reference_time.tzinfo is None) != (acquisition_start.tzinfo is None):
        raise InputDataError(
            "activity_reference_time and acquisition_start must both carry a time zone or "
            "both be naive"
        )
    rsd_a = None
    if activity_relative_sd is not None:
        rsd_a = _check_number("activity_relative_sd", activity_relative_sd)
    name, lam = _decay_constant_per_s(nuclide, half_life_s)
    weights = _voi_weights(image, voi, "voi")
    arr = np.asarray(image.array, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise InputDataError("image holds NaN or infinite values")
    total = float(np.sum(arr if weights is None else arr * weights))
    counts = total * duration if image.unit == "counts/s" else total
    if not counts > 0:
        raise InputDataError(f"the VOI holds {counts:g} counts: nothing to calibrate with")
    dt = (acquisition_start - activity_reference_time).total_seconds()
    a0 = a_ref * math.exp(-lam * dt)
    lam_t = lam * duration
    t_eff = duration if lam_t < 1e-12 else -math.expm1(-lam_t) / lam
    s = counts / (a0 / 1e6 * t_eff)
    rel_counts = 1.0 / math.sqrt(counts)
    rel = math.hypot(rel_counts, rsd_a) if rsd_a is not None else rel_counts
    voi_ml = (
        float(np.sum(weights)) * image.voxel_volume_ml
        if weights is not None
        else float(np.prod(image.shape)) * image.voxel_volume_ml
    )
    method = (
        "reconstructed counts in the VOI / (activity at the scan start x decay-weighted "
        "duration (1 - exp(-lambda T)) / lambda) (MIRD Pamphlet 26); uncertainty: counting "
        "statistics"
        + (
            f" and a {100 * rsd_a:g} % activity assay (Gear 2018)"
            if rsd_a is not None
            else " only (activity assay uncertainty not stated)"
        )
    )
    if dt < 0:
        log.warning(
            "sensitivity_from_acquisition: the activity reference time is %.0f s after the "
            "acquisition start; the activity is decayed backwards",
            -dt,
        )
    details = {
        "counts": counts,
        "activity_bq": a_ref,
        "activity_reference_time": _iso(activity_reference_time),
        "acquisition_start": _iso(acquisition_start),
        "acquisition_duration_s": duration,
        "activity_at_acquisition_start_bq": a0,
        "decay_weighted_duration_s": t_eff,
        "decay_constant_per_s": lam,
        "voi_volume_ml": voi_ml,
        "counting_relative_sd": rel_counts,
        "activity_relative_sd": rsd_a,
        "image_unit": image.unit,
    }
    return CalibrationRecord(
        cps_per_mbq=s,
        cps_per_mbq_sd=s * rel,
        nuclide=name,
        date=_iso(acquisition_start),
        camera=camera,
        collimator=collimator,
        energy_window=energy_window,
        reconstruction=reconstruction,
        source_geometry=source_geometry,
        method=method,
        details=details,
    )


_SENS = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*"
    r"(?:(?:\+/-|±)\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*)?"
    r"(cps|counts/s|cts/s|counts per second)\s*(?:/|per)\s*(Bq|kBq|MBq|GBq)\s*$"
)
_PER_MBQ = {"Bq": 1e-6, "kBq": 1e-3, "MBq": 1.0, "GBq": 1e3}


def parse_calibration(text_or_path: str | Path | CalibrationRecord) -> CalibrationRecord:
    """A :class:`CalibrationRecord` from ``"9.1 cps/MBq"`` or a record file's path.

    Accepted text: ``"<number> <rate>/<activity>"`` with rate ``cps``, ``counts/s`` or
    ``cts/s`` and activity ``Bq``, ``kBq``, ``MBq`` or ``GBq`` (``"9.1 cps/MBq"``,
    ``"0.0091 cps/kBq"``), optionally with a standard uncertainty
    (``"9.1 +/- 0.2 cps/MBq"``). A bare number is refused: its unit would be a guess. A
    path (an existing file, or a name ending in ``.json``) is read with
    :meth:`CalibrationRecord.load`.

    Examples
    --------
    >>> parse_calibration("9.1 cps/MBq").cps_per_mbq
    9.1
    >>> rec = parse_calibration("0.0091 +/- 0.0002 cps/kBq")
    >>> round(rec.cps_per_mbq, 9), round(rec.cps_per_mbq_sd, 9)
    (9.1, 0.2)
    """
    if isinstance(text_or_path, CalibrationRecord):
        return text_or_path
    if isinstance(text_or_path, bool) or isinstance(text_or_path, int | float):
        raise UnitError(
            f"calibration {text_or_path!r} has no unit; write it as '9.1 cps/MBq' or give a "
            "calibration record file (.json)"
        )
    if isinstance(text_or_path, Path):
        return CalibrationRecord.load(text_or_path)
    if not isinstance(text_or_path, str):
        raise InputDataError(
            f"calibration must be text such as '9.1 cps/MBq' or a path, got {text_or_path!r}"
        )
    s = text_or_path.strip()
    m = _SENS.match(s)
    if m is None:
        p = Path(s)
        if p.suffix.lower() == ".json" or p.is_file():
            return CalibrationRecord.load(p)
        raise UnitError(
            f"calibration {text_or_path!r}: write the camera sensitivity as "
            "'<number> cps/MBq' (also cps/kBq, cps/Bq, cps/GBq, counts/s/MBq; e.g. "
            "'9.1 cps/MBq' or '9.1 +/- 0.2 cps/MBq') or give a calibration record file "
            "(.json, written by CalibrationRecord.save)"
        )
    per = _PER_MBQ[m.group(4)]
    value = float(m.group(1)) / per
    sd = float(m.group(2)) / per if m.group(2) else math.nan
    _check_number("calibration", value)
    return CalibrationRecord(
        cps_per_mbq=value,
        cps_per_mbq_sd=sd,
        method=f"stated by the user ({s!r})",
    )


# --------------------------------------------------------------------------------------
# spheres: analytic recovery of a Gaussian-blurred uniform sphere
def _sigma(fwhm_mm: float) -> float:
    return _check_number("fwhm_mm", fwhm_mm) * FWHM_TO_SIGMA


def sphere_recovery(diameter_mm: float | np.ndarray, fwhm_mm: float) -> np.ndarray:
    """Mean over a uniform sphere of the sphere blurred by an isotropic 3-D Gaussian.

    ``RC(d) = (4 pi / V) int_0^d s^2 g(s) V_cap(s) ds`` (module docstring) in closed form:
    with ``a = d``, ``R = d/2``, ``U = a^2 / (2 sigma^2)`` and the moments
    ``M2 = sigma^3 sqrt(pi/2) erf(a/(sigma sqrt 2)) - sigma^2 a e^-U``,
    ``M3 = 2 sigma^4 (1 - (1 + U) e^-U)``, ``M5 = 4 sigma^6 (2 - (U^2 + 2U + 2) e^-U)``::

        RC = (pi^2 / 3) (16 R^3 M2 - 12 R^2 M3 + M5) / (V (2 pi sigma^2)^(3/2))

    Parameters
    ----------
    diameter_mm
        Sphere diameter(s) (mm).
    fwhm_mm
        FWHM of the Gaussian point-spread function (mm).

    Returns
    -------
    numpy.ndarray
        Recovery coefficient(s) in (0, 1].

    References
    ----------
    Hoffman EJ et al. J Comput Assist Tomogr 1979;3:299-308; Kessler RM et al. J Comput
    Assist Tomogr 1984;8:514-522 (recovery of spheres under a Gaussian resolution).

    Examples
    --------
    >>> [round(float(sphere_recovery(d, 11.0)), 3) for d in (10.0, 37.0, 400.0)]
    [0.18, 0.704, 0.972]
    """
    from scipy.special import erf

    sig = _sigma(fwhm_mm)
    d = np.asarray(diameter_mm, dtype=float)
    if np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise InputDataError(f"diameter_mm must be positive, got {diameter_mm!r}")
    r = d / 2.0
    u = d**2 / (2.0 * sig**2)
    eu = np.exp(-u)
    m2 = sig**3 * math.sqrt(math.pi / 2.0) * erf(d / (sig * math.sqrt(2.0))) - sig**2 * d * eu
    m3 = 2.0 * sig**4 * (-np.expm1(-u) - u * eu)
    m5 = 4.0 * sig**6 * (2.0 - (u**2 + 2.0 * u + 2.0) * eu)
    v = 4.0 / 3.0 * math.pi * r**3
    out = (math.pi**2 / 3.0) * (16 * r**3 * m2 - 12 * r**2 * m3 + m5)
    out = out / (v * (2.0 * math.pi * sig**2) ** 1.5)
    return np.asarray(np.clip(out, 0.0, 1.0))


def blurred_sphere_profile(
    r_mm: float | np.ndarray, diameter_mm: float, fwhm_mm: float
) -> np.ndarray:
    """Value at distance ``r_mm`` from the centre of a unit uniform sphere blurred by an
    isotropic 3-D Gaussian (fraction of the true concentration)::

        f(r) = [erf((R - r)/(sigma sqrt 2)) + erf((R + r)/(sigma sqrt 2))] / 2
               - sigma / (r sqrt(2 pi)) [exp(-(R - r)^2/(2 sigma^2)) - exp(-(R + r)^2/(2 sigma^2))]

    and ``f(0) = erf(R/(sigma sqrt 2)) - sqrt(2/pi) (R/sigma) exp(-R^2/(2 sigma^2))``.

    >>> round(float(blurred_sphere_profile(0.0, 200.0, 11.0)), 6)
    1.0
    """
    from scipy.special import erf

    sig = _sigma(fwhm_mm)
    big_r = _check_number("diameter_mm", diameter_mm) / 2.0
    r = np.abs(np.asarray(r_mm, dtype=float))
    s2 = sig * math.sqrt(2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        main = 0.5 * (erf((big_r - r) / s2) + erf((big_r + r) / s2))
        corr = (
            sig
            / (r * math.sqrt(2.0 * math.pi))
            * (
                np.exp(-((big_r - r) ** 2) / (2 * sig**2))
                - np.exp(-((big_r + r) ** 2) / (2 * sig**2))
            )
        )
        out = main - corr
    at0 = math.erf(big_r / s2) - math.sqrt(2.0 / math.pi) * big_r / sig * math.exp(
        -(big_r**2) / (2 * sig**2)
    )
    out = np.where(r < 1e-9 * max(big_r, sig), at0, out)
    return np.asarray(out)


def sphere_mask(
    reference: Volume,
    center_mm: Sequence[float],
    diameter_mm: float,
    *,
    supersample: int = 5,
) -> Volume:
    """Fraction of each voxel of ``reference``'s grid inside a sphere (unit ``"1"``).

    Parameters
    ----------
    reference
        The grid (any unit).
    center_mm
        Sphere centre (LPS mm).
    diameter_mm
        Sphere diameter (mm).
    supersample
        Sub-voxel points per axis used to estimate each voxel's fraction.

    Examples
    --------
    >>> import numpy as np
    >>> ref = Volume.from_spacing(np.zeros((20, 20, 20)), (2.0, 2.0, 2.0))
    >>> m = sphere_mask(ref, (19.0, 19.0, 19.0), 20.0, supersample=8)
    >>> round(float(m.array.sum()) * ref.voxel_volume_ml / (4 / 3 * np.pi * 1.0**3), 2)
    1.0
    """
    d = _check_number("diameter_mm", diameter_mm)
    if not (isinstance(supersample, int) and supersample >= 1):
        raise InputDataError(f"supersample={supersample!r} must be a positive integer")
    c = np.asarray(center_mm, dtype=float).reshape(3)
    if not np.all(np.isfinite(c)):
        raise InputDataError(f"center_mm={center_mm!r} must be three finite numbers")
    r = d / 2.0
    aff = np.asarray(reference.affine)
    inv = np.linalg.inv(aff)
    # index-space bounding box of the sphere (corners of the world box mapped to indices)
    corners = np.array(
        [
            [c[0] + sx * r, c[1] + sy * r, c[2] + sz * r, 1.0]
            for sx in (-1, 1)
            for sy in (-1, 1)
            for sz in (-1, 1)
        ]
    )
    idx = (inv @ corners.T)[:3]
    lo = np.maximum(np.floor(idx.min(axis=1)) - 1, 0).astype(int)
    hi = np.minimum(np.ceil(idx.max(axis=1)) + 2, np.array(reference.shape)).astype(int)
    out = np.zeros(reference.shape, dtype=float)
    if np.any(hi <= lo):
        log.warning("sphere_mask: the sphere at %s mm lies outside the grid", c.tolist())
        return reference.with_array(out, unit="1")
    offs = (np.arange(supersample) + 0.5) / supersample - 0.5
    ks, js, is_ = (np.arange(lo[a], hi[a]) for a in range(3))
    grid = np.stack(
        np.meshgrid(
            (ks[:, None] + offs[None, :]).ravel(),
            (js[:, None] + offs[None, :]).ravel(),
            (is_[:, None] + offs[None, :]).ravel(),
            indexing="ij",
        ),
        axis=-1,
    )
    world = grid @ aff[:3, :3].T + aff[:3, 3]
    inside = np.sum((world - c) ** 2, axis=-1) <= r * r
    n = (hi - lo).tolist()
    frac = inside.reshape(n[0], supersample, n[1], supersample, n[2], supersample).mean(
        axis=(1, 3, 5)
    )
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = frac
    return reference.with_array(
        out, unit="1", provenance={"sphere_center_mm": c.tolist(), "sphere_diameter_mm": d}
    )


# --------------------------------------------------------------------------------------
# recovery curve
@dataclass(frozen=True)
class RecoveryCurve:
    """Recovery coefficient as a function of object volume, fitted to sphere measurements.

    Attributes
    ----------
    model
        ``"gaussian-sphere"`` (``RC_max x`` :func:`sphere_recovery` with a fitted FWHM) or
        ``"table"`` (linear interpolation in log(volume), clamped at the ends).
    parameters, parameter_sd
        ``{"fwhm_mm": ..., "rc_max": ...}`` and their standard uncertainties (NaN when
        not estimable); empty for the table.
    volumes_ml, rc
        The measured spheres (true volumes, mL) and their recovery coefficients.
    definition
        ``"mean / true"`` or ``"(mean - background) / (true - background)"``.
    background_bq_per_ml, true_bq_per_ml
        Concentrations of the measurement (NaN when not given).
    nuclide, date, camera, collimator, energy_window, reconstruction, source_geometry,
    method, details
        Where the curve comes from (as in :class:`CalibrationRecord`).
    """

    model: str
    parameters: Mapping[str, float]
    parameter_sd: Mapping[str, float]
    volumes_ml: tuple[float, ...]
    rc: tuple[float, ...]
    definition: str = "mean / true"
    background_bq_per_ml: float = math.nan
    true_bq_per_ml: float = math.nan
    nuclide: str | None = None
    date: str = ""
    camera: str = ""
    collimator: str = ""
    energy_window: str = ""
    reconstruction: str = ""
    source_geometry: str = ""
    method: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    kind = "recovery-curve"

    def __post_init__(self) -> None:
        if self.model not in _RECOVERY_MODELS:
            raise InputDataError(
                f"RecoveryCurve.model={self.model!r}; valid: {', '.join(_RECOVERY_MODELS)}"
            )
        if len(self.volumes_ml) != len(self.rc) or not self.volumes_ml:
            raise InputDataError("RecoveryCurve: volumes_ml and rc must be non-empty and equal")
        if self.model == "gaussian-sphere" and not {"fwhm_mm", "rc_max"} <= set(self.parameters):
            raise InputDataError("RecoveryCurve 'gaussian-sphere' needs fwhm_mm and rc_max")

    def __call__(self, volume_ml: float | np.ndarray) -> np.ndarray:
        """RC at ``volume_ml`` (mL)."""
        v = np.asarray(volume_ml, dtype=float)
        if np.any(~np.isfinite(v)) or np.any(v <= 0):
            raise InputDataError(f"volume_ml must be positive, got {volume_ml!r}")
        if self.model == "gaussian-sphere":
            d = 2.0 * (3.0 * v * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
            return self.parameters["rc_max"] * sphere_recovery(d, self.parameters["fwhm_mm"])
        order = np.argsort(self.volumes_ml)
        xs = np.log(np.asarray(self.volumes_ml, dtype=float)[order])
        ys = np.asarray(self.rc, dtype=float)[order]
        return np.asarray(np.interp(np.log(v), xs, ys))

    def rc_relative_sd(self, volume_ml: float) -> float | None:
        """Relative standard uncertainty of ``RC(volume_ml)`` from the fit's parameter
        uncertainties (``"gaussian-sphere"``: FWHM and RC_max, first order, central
        differences, their covariance neglected); ``None`` where the curve states none
        (a table, or NaN uncertainties)."""
        if self.model != "gaussian-sphere":
            return None
        sd_f = float(self.parameter_sd.get("fwhm_mm", math.nan))
        sd_m = float(self.parameter_sd.get("rc_max", math.nan))
        if not (math.isfinite(sd_f) and math.isfinite(sd_m)):
            return None
        rc = float(self(volume_ml))
        if not rc > 0:
            return None
        fwhm = float(self.parameters["fwhm_mm"])
        h = 1e-4 * fwhm
        d = 2.0 * (3.0 * float(volume_ml) * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
        m = float(self.parameters["rc_max"])
        slope = m * (sphere_recovery(d, fwhm + h) - sphere_recovery(d, fwhm - h)) / (2 * h)
        return math.hypot(slope * sd_f / rc, sd_m / m)

    def in_range(self, volume_ml: float) -> bool:
        """Whether ``volume_ml`` lies within the measured spheres' volumes."""
        return min(self.volumes_ml) <= float(volume_ml) <= max(self.volumes_ml)

    def source(self) -> str:
        """Short text saying where the RC comes from (for tables and reports)."""
        if self.model == "gaussian-sphere":
            what = (
                f"Gaussian-sphere fit (FWHM {self.parameters['fwhm_mm']:.3g} mm, plateau "
                f"{self.parameters['rc_max']:.3g})"
            )
        else:
            what = "interpolated sphere table"
        ctx = ", ".join(s for s in (self.date, self.camera, self.source_geometry) if s)
        return f"{what} of {len(self.rc)} spheres" + (f" ({ctx})" if ctx else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, with schema, kind and version."""
        body = asdict(self)
        for k in ("parameters", "parameter_sd", "details"):
            body[k] = dict(getattr(self, k))
        body["volumes_ml"] = list(self.volumes_ml)
        body["rc"] = list(self.rc)
        for k in ("background_bq_per_ml", "true_bq_per_ml"):
            if not math.isfinite(body[k]):
                body[k] = None
        body["parameter_sd"] = {
            k: (None if not math.isfinite(v) else v) for k, v in body["parameter_sd"].items()
        }
        return {"schema": _SCHEMA, "kind": self.kind, "version": SCHEMA_VERSION, **body}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecoveryCurve:
        """Inverse of :meth:`to_dict`."""
        body = {k: v for k, v in data.items() if k not in ("schema", "kind", "version")}
        extra = sorted(set(body) - set(cls.__dataclass_fields__))
        if extra:
            raise InputDataError(f"recovery curve record: unknown fields {extra}")
        body["volumes_ml"] = tuple(float(v) for v in body.get("volumes_ml", ()))
        body["rc"] = tuple(float(v) for v in body.get("rc", ()))
        for k in ("background_bq_per_ml", "true_bq_per_ml"):
            if body.get(k) is None:
                body[k] = math.nan
        body["parameter_sd"] = {
            k: (math.nan if v is None else float(v))
            for k, v in dict(body.get("parameter_sd") or {}).items()
        }
        return cls(**body)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the curve as JSON."""
        return _write_json(path, self.to_dict(), overwrite)

    @classmethod
    def load(cls, path: str | Path) -> RecoveryCurve:
        """Read a curve written by :meth:`save`."""
        return cls.from_dict(_read_json(path, cls.kind))


def _mean_in(values: np.ndarray, mask: np.ndarray, name: str) -> float:
    w = np.asarray(mask, dtype=float)
    s = float(w.sum())
    if not s > 0:
        raise InputDataError(f"sphere VOI {name!r} is empty")
    return float(np.sum(values * w) / s)


def _fit_gaussian_sphere(
    d_mm: np.ndarray, rc: np.ndarray, fit_plateau: bool, fwhm0: float
) -> tuple[dict[str, float], dict[str, float]]:
    from scipy import optimize

    def model(q: np.ndarray) -> np.ndarray:
        plateau = q[1] if fit_plateau else 1.0
        return plateau * sphere_recovery(d_mm, q[0])

    q0 = np.array([fwhm0, 1.0]) if fit_plateau else np.array([fwhm0])
    lower = np.array([1e-3, 1e-3])[: q0.size]
    upper = np.array([1e4, 10.0])[: q0.size]
    res = optimize.least_squares(
        lambda q: model(q) - rc, q0, bounds=(lower, upper), xtol=1e-12, ftol=1e-12, gtol=1e-12
    )
    n, k = rc.size, q0.size
    sd = np.full(k, math.nan)
    if n > k:
        s2 = float(np.sum(res.fun**2)) / (n - k)
        try:
            cov = np.linalg.inv(res.jac.T @ res.jac) * s2
            sd = np.sqrt(np.abs(np.diag(cov)))
        except np.linalg.LinAlgError:
            pass
    params = {"fwhm_mm": float(res.x[0]), "rc_max": float(res.x[1]) if fit_plateau else 1.0}
    sds = {"fwhm_mm": float(sd[0]), "rc_max": float(sd[1]) if fit_plateau else 0.0}
    return params, sds


def recovery_from_spheres(
    activity: Volume,
    spheres: Mapping[str, Volume],
    true_concentration_bq_per_ml: float | Mapping[str, float],
    *,
    sphere_volumes_ml: Mapping[str, float] | None = None,
    background_bq_per_ml: float | None = None,
    model: str = "gaussian-sphere",
    fit_plateau: bool | None = None,
    fwhm_start_mm: float = 10.0,
    nuclide: str | None = None,
    date: datetime | str | None = None,
    camera: str = "",
    collimator: str = "",
    energy_window: str = "",
    reconstruction: str = "",
    source_geometry: str = "",
) -> RecoveryCurve:
    """Recovery coefficients of a sphere phantom and the fitted curve RC(volume).

    Parameters
    ----------
    activity
        Reconstructed activity concentration (``"Bq/mL"``; ``"Bq"`` per voxel is divided
        by the voxel volume) at the same reference time as the true concentrations.
    spheres
        Sphere name -> VOI mask on the activity grid (values in [0, 1], e.g. from
        :func:`sphere_mask` with the sphere's true position and inner diameter).
    true_concentration_bq_per_ml
        True concentration in the spheres (one value, or one per sphere) at the image's
        reference time.
    sphere_volumes_ml
        True (inner) volume of each sphere (mL); default the mask's volume.
    background_bq_per_ml
        True background concentration; when given the RC is
        ``(mean - background) / (true - background)``.
    model
        ``"gaussian-sphere"`` (default) or ``"table"`` (module docstring).
    fit_plateau
        Fit ``RC_max`` as well as the FWHM (default: when there are 3 spheres or more).
    fwhm_start_mm
        Start value of the FWHM fit (mm).
    nuclide, date, camera, collimator, energy_window, reconstruction, source_geometry
        Stored in the curve.

    Returns
    -------
    RecoveryCurve

    References
    ----------
    Hoffman EJ et al. J Comput Assist Tomogr 1979;3:299-308; Kessler RM et al. J Comput
    Assist Tomogr 1984;8:514-522.
    """
    if model not in _RECOVERY_MODELS:
        raise InputDataError(f"model={model!r}; valid: {', '.join(_RECOVERY_MODELS)}")
    if not spheres:
        raise InputDataError("spheres is empty: give {name: sphere VOI mask}")
    if activity.unit == "Bq/mL":
        conc = np.asarray(activity.array, dtype=float)
    elif activity.unit == "Bq":
        conc = np.asarray(activity.array, dtype=float) / activity.voxel_volume_ml
    else:
        raise UnitError(
            f"activity.unit={activity.unit!r}; give an activity concentration ('Bq/mL') or "
            "activity per voxel ('Bq'), e.g. SpectSeries.activity_at_acquisition(...)"
        )
    bkg = (
        None
        if background_bq_per_ml is None
        else _check_number("background_bq_per_ml", background_bq_per_ml, positive=False)
    )
    names = list(spheres)
    vols, rcs, means, trues = [], [], [], []
    for name in names:
        mask = spheres[name]
        activity.check_same_grid(mask, f"spheres[{name!r}]")
        true = (
            true_concentration_bq_per_ml[name]
            if isinstance(true_concentration_bq_per_ml, Mapping)
            else true_concentration_bq_per_ml
        )
        true = _check_number(f"true_concentration_bq_per_ml[{name!r}]", true)
        mean = _mean_in(conc, mask.array, name)
        if bkg is not None:
            if not true > bkg:
                raise InputDataError(
                    f"sphere {name!r}: true concentration {true:g} Bq/mL must exceed the "
                    f"background {bkg:g} Bq/mL"
                )
            rc = (mean - bkg) / (true - bkg)
        else:
            rc = mean / true
        vol = (
            _check_number(f"sphere_volumes_ml[{name!r}]", sphere_volumes_ml[name])
            if sphere_volumes_ml is not None
            else float(np.sum(mask.array)) * activity.voxel_volume_ml
        )
        vols.append(vol)
        rcs.append(rc)
        means.append(mean)
        trues.append(true)
    v = np.array(vols)
    r = np.array(rcs)
    params: dict[str, float] = {}
    sds: dict[str, float] = {}
    if model == "gaussian-sphere":
        plateau = (len(names) >= 3) if fit_plateau is None else bool(fit_plateau)
        d = 2.0 * (3.0 * v * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
        params, sds = _fit_gaussian_sphere(
            d, r, plateau, _check_number("fwhm_start_mm", fwhm_start_mm)
        )
        method = (
            "RC = mean concentration in the sphere VOI / true concentration"
            + (" (background subtracted from both)" if bkg is not None else "")
            + "; fitted with RC_max x the recovery of a Gaussian-blurred uniform sphere "
            "(least squares, parameters FWHM" + (" and RC_max)" if plateau else "; RC_max = 1)")
        )
    else:
        method = (
            "RC = mean concentration in the sphere VOI / true concentration"
            + (" (background subtracted from both)" if bkg is not None else "")
            + "; linear interpolation in log(volume), clamped outside the measured range"
        )
    details = {
        "spheres": {
            n: {"volume_ml": vo, "mean_bq_per_ml": me, "true_bq_per_ml": tr, "rc": rc}
            for n, vo, me, tr, rc in zip(names, vols, means, trues, rcs, strict=True)
        },
        "image_reference_time": _iso(activity.reference_time),
    }
    return RecoveryCurve(
        model=model,
        parameters=params,
        parameter_sd=sds,
        volumes_ml=tuple(float(x) for x in v),
        rc=tuple(float(x) for x in r),
        definition="(mean - background) / (true - background)"
        if bkg is not None
        else "mean / true",
        background_bq_per_ml=math.nan if bkg is None else bkg,
        true_bq_per_ml=float(trues[0]) if len(set(trues)) == 1 else math.nan,
        nuclide=nuclide,
        date=_iso(date),
        camera=camera,
        collimator=collimator,
        energy_window=energy_window,
        reconstruction=reconstruction,
        source_geometry=source_geometry,
        method=method,
        details=details,
    )


@dataclass(frozen=True)
class RecoveryCorrection:
    """Result of :func:`apply_recovery` for one VOI.

    Attributes
    ----------
    corrected_activity_bq, measured_activity_bq
        VOI activity after and before the correction (Bq).
    rc
        Recovery coefficient used.
    volume_ml
        VOI volume the RC was looked up for (mL).
    source
        Where the RC comes from (:meth:`RecoveryCurve.source`).
    extrapolated
        True when ``volume_ml`` lies outside the measured spheres' volumes.
    background_bq_per_ml
        Background concentration removed before dividing (None: plain division).
    """

    corrected_activity_bq: float
    measured_activity_bq: float
    rc: float
    volume_ml: float
    source: str
    extrapolated: bool
    background_bq_per_ml: float | None = None


def apply_recovery(
    voi_activity_bq: float,
    voi_volume_ml: float,
    curve: RecoveryCurve,
    *,
    background_bq_per_ml: float | None = None,
) -> RecoveryCorrection:
    """Correct a VOI's activity for partial volume with a recovery curve.

    Without background: ``A_corr = A / RC(V)``. With the surrounding background
    concentration ``B`` (for a curve measured with ``definition`` ``(mean - background)
    / (true - background)``): ``C = B + (A/V - B) / RC(V)``, ``A_corr = C V``.

    Parameters
    ----------
    voi_activity_bq
        Activity in the VOI as measured (Bq).
    voi_volume_ml
        The object's volume (mL; from CT or the delineation).
    curve
        :class:`RecoveryCurve` (e.g. :meth:`RecoveryCurve.load`).
    background_bq_per_ml
        Concentration around the object (Bq/mL), or None.

    Returns
    -------
    RecoveryCorrection

    Examples
    --------
    >>> c = RecoveryCurve("table", {}, {}, (1.0, 10.0), (0.5, 0.8))
    >>> r = apply_recovery(50.0, 1.0, c)
    >>> r.corrected_activity_bq, r.rc, r.extrapolated
    (100.0, 0.5, False)
    """
    a = _check_number("voi_activity_bq", voi_activity_bq, positive=False)
    v = _check_number("voi_volume_ml", voi_volume_ml)
    rc = float(curve(v))
    if not rc > 0:
        raise InputDataError(f"RC({v:g} mL) = {rc:g}: no correction possible")
    extrap = not curve.in_range(v)
    if extrap:
        log.warning(
            "apply_recovery: VOI volume %.3g mL lies outside the measured spheres (%.3g-%.3g "
            "mL); the RC %.3g is extrapolated",
            v,
            min(curve.volumes_ml),
            max(curve.volumes_ml),
            rc,
        )
    if background_bq_per_ml is None:
        corrected = a / rc
    else:
        b = _check_number("background_bq_per_ml", background_bq_per_ml, positive=False)
        corrected = (b + (a / v - b) / rc) * v
    return RecoveryCorrection(
        corrected_activity_bq=float(corrected),
        measured_activity_bq=a,
        rc=rc,
        volume_ml=v,
        source=curve.source(),
        extrapolated=extrap,
        background_bq_per_ml=background_bq_per_ml,
    )
