"""PET series: stored values, activity concentration at acquisition, SUV.

DICOM semantics (PS3.3 C.8.9 PET Series / PET Isotope / PET Image modules):

* Units (0054,1001): BQML (Bq/mL), CNTS (counts; Philips adds a private activity-
  concentration scale factor), GML (SUVbw in g/mL), and others this reader refuses.
* Decay Correction (0054,1102), C.8.9.1.1.5: the real-world event the images were
  decay corrected to. ``START``: the acquisition start (for PET the Series Date/Time,
  C.8.9.1.1.2, to which Frame Reference Time is relative); ``ADMIN``: the
  radiopharmaceutical administration (Radiopharmaceutical Start DateTime/Time);
  ``NONE``: not corrected, each image holds the activity at its own Frame Reference
  Time (0054,1300) = offset in ms from the Series Date/Time (C.8.9.4.1.5).
* Decay Factor (0054,1321): the factor that was applied; with Frame Reference Time,
  Radionuclide Half Life and Series Date/Time it determines the decay-correction
  reference time (C.8.9.1.1.5). This reader checks that relation.
* Radionuclide Total Dose (0018,1074): administered activity in **Bq** for the PET
  Isotope Module (C.8.9.2). Never rescaled by guessing from its magnitude.

:meth:`PetSeries.activity_at_acquisition` returns the activity concentration (Bq/mL)
present at the acquisition start, i.e. with the scanner's decay correction replaced by
the decay between the reference event and the acquisition start:

* START: values already refer to the acquisition start: factor 1;
* ADMIN: ``C(t_acq) = C(t_inj) * exp(-lambda * (t_acq - t_inj))``;
* NONE: per image, ``C(t_acq) = C(t_k) * exp(+lambda * (t_k - t_acq))`` with
  ``t_k = SeriesDateTime + FrameReferenceTime_k``.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..errors import DicomInputError, NuclideError
from ..volume import Volume
from .discovery import (
    ImageSeries,
    _Frame,
    as_datetime,
    header_datetime,
    optional_float,
    parse_da,
    parse_dt,
    parse_tm,
    seq_items,
    strict_float,
    strict_int,
)

__all__ = [
    "PetSeries",
    "canonical_nuclide",
    "reference_half_life_s",
    "nuclide_from_half_life",
    "lean_body_mass_kg",
    "body_surface_area_m2",
    "INJECTED_ACTIVITY_RANGE_BQ",
    "DECAY_FACTOR_RTOL",
    "HALF_LIFE_RTOL",
]

log = logging.getLogger(__name__)

#: Plausible administered activities (Bq). Outside: error naming ``injected_activity_bq=``
#: (a value in MBq written into the Bq field is caught here, never rescaled silently).
INJECTED_ACTIVITY_RANGE_BQ = (1e5, 1e11)
#: Relative tolerance between the header's Decay Factor and the one implied by the times.
DECAY_FACTOR_RTOL = 5e-3
#: Relative tolerance when matching or cross-checking half-lives.
HALF_LIFE_RTOL = 0.02
#: Nuclides whose half-life is this long (s) need a full injection date-time: scans
#: happen days after injection, so a time-of-day alone is ambiguous.
_NEEDS_INJECTION_DATE_S = 12 * 3600.0
#: Series Type (0054,1000) value 1 of series whose Image Index is the slice index alone
#: (PS3.3 C.8.9.4.1.9); for DYNAMIC and GATED series the slice index is the last,
#: fastest-varying dimension of Image Index.
_ONE_VOLUME_SERIES_TYPES = ("STATIC", "WHOLE BODY")


def _exp(x: float, what: str, *, path: Any = None, tag: str | None = None) -> float:
    """``math.exp(x)`` with an overflow reported as a :class:`DicomInputError`."""
    try:
        return math.exp(x)
    except OverflowError:
        raise DicomInputError(
            f"{what}: the decay factor exp({x:.4g}) overflows; the header's times or "
            "half-life are absurd (check the dates, FrameReferenceTime and "
            "RadionuclideHalfLife)",
            path=path,
            tag=tag,
        ) from None


def _decay_average_offset_s(lam: float, duration_s: float) -> float:
    """Time after a frame's start at which the activity equals its mean over the frame,
    ``ln(lambda T / (1 - exp(-lambda T))) / lambda`` (PS3.3 C.8.9.4.1.5); ``T / 2`` in the
    limit ``lambda T -> 0`` (no division by an underflowed zero)."""
    lt = lam * duration_s
    if lt < 1e-8:
        return 0.5 * duration_s
    return math.log(lt / -math.expm1(-lt)) / lam


def _as_values(value: Any) -> list[Any]:
    """A DICOM value as a list (empty for None/'', one item for a single value)."""
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _cs_key(value: Any) -> str:
    """A code-string value (single or multi-valued) as one upper-case comparison key."""
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v).strip().upper() for v in value)
    return str(value).strip().upper()


def _ranges(values: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    out: list[str] = []
    start = prev = None
    for v in sorted(values):
        if start is None:
            start = prev = v
        elif v == prev + 1:  # type: ignore[operator]
            prev = v
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = v
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(out)


# ----------------------------------------------------------------------------- nuclides
# Code values of DICOM CID 4020 "PET Radionuclide" (SNOMED-RT and SNOMED CT forms),
# DICOM PS3.16.
_CODE_TO_NUCLIDE = {
    "C-105A1": "C-11",
    "40565003": "C-11",
    "C-107A1": "N-13",
    "21576001": "N-13",
    "C-B1038": "O-15",
    "129504001": "O-15",
    "C-111A1": "F-18",
    "77004003": "F-18",
    "C-127A2": "Cu-64",
    "3932008": "Cu-64",
    "C-131A3": "Ga-68",
    "35337001": "Ga-68",
    "C-159A2": "Rb-82",
    "79197006": "Rb-82",
    "C-162A3": "Y-86",
    "10738001": "Y-86",
    "C-168A4": "Zr-89",
    "63360001": "Zr-89",
    "C-162A7": "Y-90",
    "14691008": "Y-90",
    "C-114A5": "I-124",
    "40937006": "I-124",
    "126600": "Sc-44",
}

_ELEMENTS = {
    "hydrogen": "H", "carbon": "C", "nitrogen": "N", "oxygen": "O", "fluorine": "F",
    "sodium": "Na", "phosphorus": "P", "potassium": "K", "scandium": "Sc",
    "titanium": "Ti", "chromium": "Cr", "manganese": "Mn", "iron": "Fe", "cobalt": "Co",
    "copper": "Cu", "zinc": "Zn", "gallium": "Ga", "germanium": "Ge", "arsenic": "As",
    "selenium": "Se", "bromine": "Br", "krypton": "Kr", "rubidium": "Rb",
    "strontium": "Sr", "yttrium": "Y", "zirconium": "Zr", "niobium": "Nb",
    "technetium": "Tc", "indium": "In", "iodine": "I", "xenon": "Xe", "samarium": "Sm",
    "terbium": "Tb", "holmium": "Ho", "erbium": "Er", "lutetium": "Lu", "rhenium": "Re",
    "thallium": "Tl", "lead": "Pb", "bismuth": "Bi", "astatine": "At", "radium": "Ra",
    "actinium": "Ac", "thorium": "Th",
}  # fmt: skip
_SYMBOLS = {s.lower(): s for s in _ELEMENTS.values()}

#: Candidates for identifying a nuclide from RadionuclideHalfLife alone.
_HALF_LIFE_CANDIDATES = (
    "F-18", "Ga-68", "Lu-177", "C-11", "N-13", "O-15", "Cu-64", "Zr-89", "I-124",
    "Y-90", "Y-86", "Rb-82", "Tc-99m", "In-111", "I-131", "I-123", "Tb-161", "Sc-44",
    "Cu-61", "Ga-67", "Sm-153", "Ho-166", "Re-188", "Pb-212", "Ac-225", "Ra-223",
    "Sc-47", "Cu-67", "Tb-152", "Pb-203",
)  # fmt: skip


def canonical_nuclide(text: str) -> str | None:
    """Canonical ``"Lu-177"`` form of a nuclide name, or ``None`` when not recognised.

    The DICOM code-meaning forms (``"^177^Lutetium"``, ``"F^18^[^18^Fluorine]"``) and
    element names (``"Lutetium-177"``) are reduced to symbol and mass here; the name itself
    is then checked by the package's one nuclide parser, :func:`dosimetry.nuclides.normalize_name`
    (``"Lu-177"``, ``"177Lu"``, ``"Lu177"``, ``"lu-177"``, ``"99mTc"``).

    >>> [canonical_nuclide(t) for t in ("177Lu", "lu-177", "^68^Gallium", "F^18^", "99mTc")]
    ['Lu-177', 'Lu-177', 'Ga-68', 'F-18', 'Tc-99m']
    >>> canonical_nuclide("Lutetium-177"), canonical_nuclide("Xx-999")
    ('Lu-177', None)
    """
    from ..nuclides import normalize_name

    t = str(text).strip()
    candidate = t
    for pattern, sym_group, mass_group, iso_group in (
        (r"\^(\d+)(m?)\^\s*([A-Za-z]+).*", 3, 1, 2),  # ^177^Lutetium
        (r"([A-Za-z]+)\^(\d+)(m?)\^.*", 1, 2, 3),  # F^18^
        (r"([A-Za-z]{3,})[\s\-_]*(\d+)(m?)", 1, 2, 3),  # Lutetium-177
        (r"(\d+)(m?)[\s\-_]*([A-Za-z]{3,})", 3, 1, 2),  # 177-Lutetium
    ):
        m = re.fullmatch(pattern, t)
        if m:
            word = m.group(sym_group).lower()
            sym = _ELEMENTS.get(word) or _SYMBOLS.get(word)
            if sym is None:
                continue  # not an element name ("99mTc" read as "99" + "mTc")
            candidate = f"{sym}-{int(m.group(mass_group))}{m.group(iso_group)}"
            break
    try:
        return normalize_name(candidate)
    except NuclideError:
        return None


def reference_half_life_s(name: str) -> float | None:
    """Half-life (s) of ``name`` from the package nuclide data (ICRP-107); ``None`` when
    the name is not a nuclide of that data set.

    >>> reference_half_life_s("F-18")
    6586.2
    """
    from ..nuclides import nuclide

    try:
        return float(nuclide(name).half_life_s)
    except (NuclideError, ValueError, KeyError):
        return None


def nuclide_from_half_life(half_life_s: float, rtol: float = HALF_LIFE_RTOL) -> list[str]:
    """Nuclides whose ICRP-107 half-life is within ``rtol`` of ``half_life_s``.

    >>> nuclide_from_half_life(6586.2)
    ['F-18']
    """
    out = []
    for name in _HALF_LIFE_CANDIDATES:
        ref = reference_half_life_s(name)
        if ref is not None and abs(half_life_s - ref) <= rtol * ref:
            out.append(name)
    return out


# ----------------------------------------------------------------------------- body size
LbmFormula = Literal["janmahasatian", "james"]


def lean_body_mass_kg(
    weight_kg: float, height_m: float, sex: str, formula: LbmFormula = "janmahasatian"
) -> float:
    """Lean body mass (kg) from weight, height and sex.

    Parameters
    ----------
    weight_kg, height_m
        Body weight (kg) and height (m).
    sex
        ``"M"`` or ``"F"``.
    formula
        ``"janmahasatian"`` (default; recommended for SUL by Tahari et al. 2014):
        male ``9270 W / (6680 + 216 BMI)``, female ``9270 W / (8780 + 244 BMI)``,
        BMI = W / H^2 (kg/m^2). ``"james"``: male ``1.10 W - 128 (W/H)^2``, female
        ``1.07 W - 148 (W/H)^2`` with H in cm (the PERCIST SUL of Wahl et al. 2009).

    References
    ----------
    Janmahasatian S, Duffull SB, Ash S, et al. Quantification of lean bodyweight.
    Clin Pharmacokinet 2005;44:1051-1065.
    James WPT. Research on obesity. London: Her Majesty's Stationery Office; 1976.
    Tahari AK, Chien D, Azadi JR, Wahl RL. Optimum lean body formulation for correction
    of standardized uptake value in PET imaging. J Nucl Med 2014;55:1481-1484.

    >>> round(lean_body_mass_kg(70.0, 1.75, "M"), 2)
    55.86
    >>> round(lean_body_mass_kg(70.0, 1.75, "M", "james"), 2)
    56.52
    """
    w, h = float(weight_kg), float(height_m)
    s = str(sex).upper()
    if s not in ("M", "F"):
        raise DicomInputError(f"sex={sex!r}: lean body mass needs 'M' or 'F'", tag="PatientSex")
    if formula == "janmahasatian":
        bmi = w / h**2
        lbm = (
            9270.0 * w / (6680.0 + 216.0 * bmi) if s == "M" else 9270.0 * w / (8780.0 + 244.0 * bmi)
        )
    elif formula == "james":
        h_cm = 100.0 * h
        lbm = 1.10 * w - 128.0 * (w / h_cm) ** 2 if s == "M" else 1.07 * w - 148.0 * (w / h_cm) ** 2
    else:
        raise DicomInputError(f"lbm_formula={formula!r}; valid: 'janmahasatian', 'james'")
    if not lbm > 0:
        raise DicomInputError(
            f"the {formula} formula gives a non-positive lean body mass ({lbm:.1f} kg) for "
            f"W={w} kg, H={h} m; use lbm_formula='janmahasatian'"
        )
    return float(lbm)


def body_surface_area_m2(weight_kg: float, height_m: float) -> float:
    """Body surface area (m^2) by Du Bois: ``0.007184 W^0.425 H_cm^0.725``.

    References
    ----------
    Du Bois D, Du Bois EF. A formula to estimate the approximate surface area if height
    and weight be known. Arch Intern Med 1916;17:863-871.

    >>> round(body_surface_area_m2(70.0, 1.75), 3)
    1.848
    """
    return float(0.007184 * float(weight_kg) ** 0.425 * (100.0 * float(height_m)) ** 0.725)


# ----------------------------------------------------------------------------- series
class PetSeries(ImageSeries):
    """A PET image series (Modality PT).

    Overrides (keyword arguments of :meth:`dosimetry.io.Study.pet` or
    ``load_study(..., overrides=...)``), each recorded in :attr:`provenance`:

    ``injected_activity_bq``, ``injection_time`` (datetime or ISO string),
    ``patient_weight_kg``, ``patient_height_m``, ``patient_sex`` ("M"/"F"),
    ``decay_correction`` ("START"/"ADMIN"/"NONE"), ``nuclide``, ``half_life_s``,
    ``units_scale_bq_per_ml`` (factor from the rescaled stored values to Bq/mL, for
    Units this reader cannot convert), ``acquisition_time`` (acquisition start),
    ``allow_nonuniform`` (``"resample"``), ``allow_incomplete`` (load a series that lacks
    slices its NumberOfSlices / Image Index / DICOMDIR name), ``assume_rescale_slope``
    (slope for images without the Type 1 RescaleSlope).

    Header checks before any value is used: RescaleSlope present and positive in every
    image (Type 1, PS3.3 C.8.9.4); Units, DecayCorrection, NumberOfSlices and Series Type
    the same in every image; the series complete (NumberOfSlices, Image Index, DICOMDIR);
    DecayCorrection, CorrectedImage and DecayFactor consistent with each other and, per
    slice, with the header times.
    """

    modality_name = "PET"
    _acquisition_from_ge = False
    _rescale_module = "PET Image Module (PS3.3 C.8.9.4)"
    _rescaled_what = "the activity concentrations"
    override_names = frozenset(
        {
            "allow_nonuniform",
            "allow_incomplete",
            "assume_rescale_slope",
            "injected_activity_bq",
            "injection_time",
            "patient_weight_kg",
            "patient_height_m",
            "patient_sex",
            "decay_correction",
            "nuclide",
            "half_life_s",
            "units_scale_bq_per_ml",
            "acquisition_time",
        }
    )

    # -- header helpers ------------------------------------------------------------------
    @property
    def _first(self) -> Dataset:
        return self.info.first

    @property
    def _first_path(self) -> Any:
        return self.info.files[0]

    def _missing(self, tag: str, override: str, what: str) -> DicomInputError:
        return DicomInputError(
            f"{what} is missing or empty; pass {override}=... (e.g. "
            f"study.pet({override}=...)) to supply it",
            path=self._first_path,
            tag=tag,
        )

    @property
    def units(self) -> str:
        """DICOM Units (0054,1001) as stored (e.g. ``"BQML"``), ``""`` when absent."""
        return str(self._first.get("Units", "") or "").strip().upper()

    def _stored_unit(self) -> str:
        return {"BQML": "Bq/mL", "CNTS": "counts", "GML": "g/mL SUV"}.get(self.units, "1")

    def _volume_extra(self) -> dict[str, Any]:
        return {"stored_units": self.units}

    @property
    def _radiopharmaceutical(self) -> Dataset:
        seq = seq_items(self._first, "RadiopharmaceuticalInformationSequence", self._first_path)
        if not seq:
            raise DicomInputError(
                "RadiopharmaceuticalInformationSequence is missing or empty: the "
                "administered activity, injection time and nuclide are unknown. Supply "
                "them with injected_activity_bq=..., injection_time=..., nuclide=...",
                path=self._first_path,
                tag="RadiopharmaceuticalInformationSequence",
            )
        if len(seq) > 1:
            raise DicomInputError(
                f"RadiopharmaceuticalInformationSequence has {len(seq)} items (several "
                "tracers); this reader cannot tell which one the images show. Supply "
                "injected_activity_bq=..., injection_time=..., nuclide=...",
                path=self._first_path,
                tag="RadiopharmaceuticalInformationSequence",
            )
        return seq[0]

    # -- series consistency and completeness ---------------------------------------------
    def _check_complete(self, frames: list[_Frame]) -> None:
        """Header-level checks of the whole series before any pixel is read.

        Units, DecayCorrection, NumberOfSlices and Series Type must agree between the
        images. NumberOfSlices (0054,0081, PET Series Module) and Image Index (0054,1330,
        PET Image Module) then tell whether slices are missing: Image Index is the slice
        index (1..NumberOfSlices) for STATIC and WHOLE BODY series, and the slice index is
        its fastest-varying part for DYNAMIC and GATED series (PS3.3 C.8.9.4.1.9); one
        volume of a dynamic series must hold every slice index once. Missing first or last
        slices cannot be seen in the slice positions; this check sees them.
        """
        super()._check_complete(frames)
        headers = [self.info.headers[f.file_index] for f in frames]
        paths = [self.info.files[f.file_index] for f in frames]
        for kw in ("Units", "DecayCorrection", "NumberOfSlices", "SeriesType"):
            seen: dict[str, Any] = {}
            for h, p in zip(headers, paths, strict=True):
                seen.setdefault(_cs_key(h.get(kw)), p)
            if len(seen) > 1:
                (a, pa), (b, pb) = list(seen.items())[:2]
                raise DicomInputError(
                    f"{kw} differs between the images of PET series {self.series_instance_uid}: "
                    f"{a or '(absent)'!r} in {pa}, {b or '(absent)'!r} in {pb}. A series holds "
                    "one kind of image; split it or export it again.",
                    path=pb,
                    tag=kw,
                )
        first, p0 = headers[0], paths[0]
        n_declared = strict_int(first, "NumberOfSlices", p0, 0)
        if n_declared <= 0:
            self._note(
                "NumberOfSlices absent: whether slices are missing at the ends of the stack "
                "cannot be checked (gaps inside are checked from the slice positions)"
            )
            return
        self._use_tag("NumberOfSlices", n_declared)
        indices = [strict_int(h, "ImageIndex", p, 0) for h, p in zip(headers, paths, strict=True)]
        if all(i == 0 for i in indices):
            self._note("ImageIndex absent: completeness checked by the number of images only")
            if len(frames) < n_declared:
                self._incomplete(
                    f"NumberOfSlices (0054,0081) is {n_declared}, but only {len(frames)} "
                    f"image(s) were found: {n_declared - len(frames)} missing slice(s)",
                    path=p0,
                    tag="NumberOfSlices",
                )
            return
        bad = [(i, p) for i, p in zip(indices, paths, strict=True) if i <= 0]
        if bad:
            raise DicomInputError(
                f"ImageIndex is missing or not positive in {len(bad)} of {len(paths)} images "
                f"(e.g. {bad[0][1]}); it is Type 1 in the PET Image Module (PS3.3 C.8.9.4)",
                path=bad[0][1],
                tag="ImageIndex",
            )
        series_type = _cs_key(first.get("SeriesType")).split("\\")[0]
        slice_idx = [(i - 1) % n_declared + 1 for i in indices]
        if series_type in _ONE_VOLUME_SERIES_TYPES or not series_type:
            over = [(i, p) for i, p in zip(indices, paths, strict=True) if i > n_declared]
            if over:
                raise DicomInputError(
                    f"ImageIndex {over[0][0]} exceeds NumberOfSlices {n_declared} of a "
                    f"{series_type or 'PET'} series (PS3.3 C.8.9.4.1.9): the header is "
                    "inconsistent",
                    path=over[0][1],
                    tag="ImageIndex",
                )
        by_slice: dict[int, Any] = {}
        for k, p in zip(slice_idx, paths, strict=True):
            if k in by_slice:
                raise DicomInputError(
                    f"slice index {k} (from ImageIndex, NumberOfSlices {n_declared}) appears in "
                    f"both {by_slice[k]} and {p}: several time frames or copies of one slice. "
                    "Load one volume (one time frame) at a time.",
                    path=p,
                    tag="ImageIndex",
                )
            by_slice[k] = p
        missing = sorted(set(range(1, n_declared + 1)) - set(by_slice))
        if missing:
            lo, hi = min(by_slice), max(by_slice)
            where = []
            if missing[0] < lo:
                where.append(f"{lo - 1} at the start of the stack (below slice index {lo})")
            if missing[-1] > hi:
                where.append(f"{n_declared - hi} at the end of the stack (above slice index {hi})")
            inner = [m for m in missing if lo < m < hi]
            if inner:
                where.append(f"{len(inner)} inside the stack")
            self._incomplete(
                f"NumberOfSlices (0054,0081) is {n_declared}, but {len(frames)} image(s) were "
                f"found: {len(missing)} missing slice(s), Image Index (0054,1330) slice "
                f"index(es) {_ranges(missing)} absent ({'; '.join(where)})",
                path=p0,
                tag="ImageIndex",
            )
        self._use_tag("ImageIndex", f"slice indices 1..{n_declared} complete")

    # -- nuclide ---------------------------------------------------------------------------
    @cached_property
    def nuclide(self) -> str:
        """Canonical nuclide name (``"F-18"``), from the override, the RadionuclideCodeSequence
        code or meaning, or a unique match of RadionuclideHalfLife; cross-checked against
        the nuclide data when both are known."""
        ov = self._override("nuclide")
        if ov is not None:
            name = canonical_nuclide(str(ov))
            if name is None:
                raise DicomInputError(f"nuclide={ov!r} is not a nuclide name such as 'Lu-177'")
            return name
        name = self._nuclide_from_header()
        if name is None:
            raise DicomInputError(
                "the radionuclide cannot be identified (no usable RadionuclideCodeSequence "
                "and no unique RadionuclideHalfLife match); pass nuclide='Ga-68' (for example)",
                path=self._first_path,
                tag="RadionuclideCodeSequence",
            )
        return name

    def _nuclide_from_header(self) -> str | None:
        seq = seq_items(self._first, "RadiopharmaceuticalInformationSequence", self._first_path)
        if not seq:
            return None
        item = seq[0]
        codes = seq_items(item, "RadionuclideCodeSequence", self._first_path)
        if codes:
            code = codes[0]
            value = str(code.get("CodeValue", "") or "").strip()
            meaning = str(code.get("CodeMeaning", "") or "")
            self._use_tag("RadionuclideCodeSequence", f"{value} {meaning}".strip())
            name = _CODE_TO_NUCLIDE.get(value) or canonical_nuclide(meaning)
            if name:
                self._check_half_life(name, item)
                return name
        hl = optional_float(item, "RadionuclideHalfLife")
        if hl:
            matches = nuclide_from_half_life(hl)
            if len(matches) == 1:
                self._note(
                    f"nuclide {matches[0]} identified from RadionuclideHalfLife {hl} s "
                    f"(unique match within {HALF_LIFE_RTOL:.0%} of ICRP-107 half-lives)"
                )
                return matches[0]
            if len(matches) > 1:
                raise DicomInputError(
                    f"RadionuclideHalfLife {hl} s matches several nuclides {matches}; pass "
                    "nuclide=... to choose",
                    path=self._first_path,
                    tag="RadionuclideHalfLife",
                )
        return None

    def _check_half_life(self, name: str, item: Dataset) -> None:
        hl = optional_float(item, "RadionuclideHalfLife")
        ref = reference_half_life_s(name)
        if hl is None or ref is None:
            return
        if abs(hl - ref) > HALF_LIFE_RTOL * ref:
            raise DicomInputError(
                f"RadionuclideHalfLife {hl} s does not match {name} (ICRP-107: {ref} s, "
                f"tolerance {HALF_LIFE_RTOL:.0%}). Pass nuclide=... and/or half_life_s=...",
                path=self._first_path,
                tag="RadionuclideHalfLife",
            )
        if abs(hl - ref) > 1e-3 * ref:
            self._note(
                f"header RadionuclideHalfLife {hl} s differs from the ICRP-107 value for "
                f"{name} ({ref} s) by {100 * (hl / ref - 1):+.2f} %; the header value is "
                "used to undo the scanner's decay correction"
            )

    @cached_property
    def half_life_s(self) -> float:
        """Half-life (s) used for all decay arithmetic of this series.

        The override ``half_life_s``, else the header's RadionuclideHalfLife (the value the
        scanner used for its decay correction; cross-checked against the nuclide data),
        else the ICRP-107 half-life of :attr:`nuclide`.
        """
        ov = self._override("half_life_s")
        if ov is not None:
            if not (float(ov) > 0 and math.isfinite(float(ov))):
                raise DicomInputError(f"half_life_s={ov!r} must be a positive finite number")
            return float(ov)
        seq = seq_items(self._first, "RadiopharmaceuticalInformationSequence", self._first_path)
        hl = strict_float(seq[0], "RadionuclideHalfLife", self._first_path) if seq else None
        if hl is not None and hl <= 0:
            raise DicomInputError(
                f"RadionuclideHalfLife = {hl} s is not positive; pass half_life_s=...",
                path=self._first_path,
                tag="RadionuclideHalfLife",
            )
        if hl is not None:
            self._use_tag("RadionuclideHalfLife", hl)
            if "nuclide" in self._overrides:
                self._check_half_life(self.nuclide, seq[0])
            else:
                try:
                    _ = self.nuclide  # identifies and cross-checks
                except DicomInputError as exc:
                    if exc.tag != "RadionuclideCodeSequence":
                        raise
            return hl
        ref = reference_half_life_s(self.nuclide)
        if ref is None:
            raise DicomInputError(
                f"no half-life for {self.nuclide}: RadionuclideHalfLife is missing; pass "
                "half_life_s=...",
                path=self._first_path,
                tag="RadionuclideHalfLife",
            )
        self._note(
            f"RadionuclideHalfLife missing: ICRP-107 half-life of {self.nuclide} ({ref} s) used"
        )
        return ref

    @property
    def _lambda(self) -> float:
        return math.log(2.0) / self.half_life_s

    # -- patient -----------------------------------------------------------------------------
    @cached_property
    def patient_weight_kg(self) -> float:
        """Patient weight (kg): override or PatientWeight (0010,1030)."""
        ov = self._override("patient_weight_kg")
        w = float(ov) if ov is not None else optional_float(self._first, "PatientWeight")
        if w is None or w == 0:
            raise self._missing("PatientWeight", "patient_weight_kg", "PatientWeight")
        if not 0.5 <= w <= 500:
            raise DicomInputError(
                f"patient weight {w} kg is implausible (0.5-500 kg); pass patient_weight_kg=...",
                path=self._first_path,
                tag="PatientWeight",
            )
        if ov is None:
            self._use_tag("PatientWeight", w)
        return w

    @cached_property
    def patient_height_m(self) -> float:
        """Patient height (m): override or PatientSize (0010,1020), which DICOM defines in m."""
        ov = self._override("patient_height_m")
        h = float(ov) if ov is not None else optional_float(self._first, "PatientSize")
        if h is None or h == 0:
            raise self._missing("PatientSize", "patient_height_m", "PatientSize (height in m)")
        if not 0.3 <= h <= 2.6:
            raise DicomInputError(
                f"patient height {h} is implausible in metres (PatientSize is in m; a value in "
                "cm is not rescaled by guessing); pass patient_height_m=...",
                path=self._first_path,
                tag="PatientSize",
            )
        if ov is None:
            self._use_tag("PatientSize", h)
        return h

    @cached_property
    def patient_sex(self) -> str:
        """``"M"`` or ``"F"``: override or PatientSex (0010,0040)."""
        ov = self._override("patient_sex")
        s = str(ov if ov is not None else self._first.get("PatientSex", "") or "").strip().upper()
        if s not in ("M", "F"):
            raise DicomInputError(
                f"PatientSex is {s!r}; lean body mass needs 'M' or 'F': pass patient_sex=...",
                path=self._first_path,
                tag="PatientSex",
            )
        if ov is None:
            self._use_tag("PatientSex", s)
        return s

    # -- administration -------------------------------------------------------------------------
    @cached_property
    def injected_activity_bq(self) -> float:
        """Administered activity (Bq): override or RadionuclideTotalDose (0018,1074), in Bq."""
        ov = self._override("injected_activity_bq")
        if ov is not None:
            a = float(ov)
            if not a > 0 or not math.isfinite(a):
                raise DicomInputError(f"injected_activity_bq={ov!r} must be a positive number")
            return a
        item = self._radiopharmaceutical
        a_opt = optional_float(item, "RadionuclideTotalDose")
        if a_opt is None or a_opt == 0:
            raise self._missing(
                "RadionuclideTotalDose", "injected_activity_bq", "RadionuclideTotalDose"
            )
        lo, hi = INJECTED_ACTIVITY_RANGE_BQ
        if not lo <= a_opt <= hi:
            raise DicomInputError(
                f"RadionuclideTotalDose = {a_opt:g} is outside the plausible range "
                f"{lo:g}-{hi:g} Bq (DICOM stores Bq; a value in MBq or mCi is not rescaled by "
                "guessing). Pass injected_activity_bq=... with the activity in Bq.",
                path=self._first_path,
                tag="RadionuclideTotalDose",
            )
        self._use_tag("RadionuclideTotalDose", a_opt)
        return a_opt

    @property
    def _series_datetime(self) -> datetime:
        t = header_datetime(self._first, "SeriesDate", "SeriesTime", path=self._first_path)
        if t is None:
            raise DicomInputError(
                "SeriesDate/SeriesTime missing: the PET time reference is unknown; pass "
                "acquisition_time=...",
                path=self._first_path,
                tag="SeriesTime",
            )
        self._use_tag("SeriesDate", str(self._first.SeriesDate))
        self._use_tag("SeriesTime", str(self._first.SeriesTime))
        return t

    @cached_property
    def injection_time(self) -> datetime:
        """Start of the radiopharmaceutical administration.

        Override ``injection_time``, else RadiopharmaceuticalStartDateTime (0018,1078), else
        RadiopharmaceuticalStartTime (0018,1072) on the SeriesDate: the injection is placed
        in the 12 h before the series start when its time of day is later than the series
        time by more than 12 h (midnight crossing), else on the series date (it may then
        follow the series start slightly, as in dynamic scans started before injection).
        For nuclides with half-lives of 12 h or more a time of day alone is refused.
        """
        ov = self._override("injection_time")
        if ov is not None:
            return as_datetime(ov, "injection_time")
        item = self._radiopharmaceutical
        dt = item.get("RadiopharmaceuticalStartDateTime")
        if dt:
            self._use_tag("RadiopharmaceuticalStartDateTime", str(dt))
            return parse_dt(dt, path=self._first_path, tag="RadiopharmaceuticalStartDateTime")
        tm = item.get("RadiopharmaceuticalStartTime")
        if not tm:
            raise self._missing(
                "RadiopharmaceuticalStartDateTime",
                "injection_time",
                "RadiopharmaceuticalStartDateTime and RadiopharmaceuticalStartTime",
            )
        self._use_tag("RadiopharmaceuticalStartTime", str(tm))
        hl = optional_float(item, "RadionuclideHalfLife")
        if hl is None:
            hl = reference_half_life_s(self.nuclide)
        if hl is not None and hl >= _NEEDS_INJECTION_DATE_S:
            raise DicomInputError(
                f"only RadiopharmaceuticalStartTime ({tm}) is given, without a date; for a "
                f"nuclide with a half-life of {hl / 3600:.1f} h the scan may be days after "
                "the injection, so the date cannot be inferred. Pass injection_time=...",
                path=self._first_path,
                tag="RadiopharmaceuticalStartDateTime",
            )
        t_series = self._series_datetime
        inj = datetime.combine(
            parse_da(self._first.SeriesDate, path=self._first_path, tag="SeriesDate"),
            parse_tm(tm, path=self._first_path, tag="RadiopharmaceuticalStartTime"),
        )
        if (inj - t_series).total_seconds() > 12 * 3600:
            inj -= timedelta(days=1)
            self._note(
                f"injection time {tm} is later in the day than the series time "
                f"{self._first.SeriesTime}: taken as the previous day (midnight crossing), "
                f"{inj.isoformat()}"
            )
        else:
            self._note(
                f"injection date taken from SeriesDate (only RadiopharmaceuticalStartTime "
                f"given): {inj.isoformat()}"
            )
        return inj

    # -- times -----------------------------------------------------------------------------------
    @cached_property
    def decay_correction(self) -> str:
        """``"START"``, ``"ADMIN"`` or ``"NONE"``: override or DecayCorrection (0054,1102)."""
        ov = self._override("decay_correction")
        value = str(ov if ov is not None else self._first.get("DecayCorrection", "") or "")
        value = value.strip().upper()
        if value not in ("START", "ADMIN", "NONE"):
            if ov is None and not value:
                raise self._missing("DecayCorrection", "decay_correction", "DecayCorrection")
            raise DicomInputError(
                f"DecayCorrection {value!r} is not START, ADMIN or NONE; pass decay_correction=...",
                path=self._first_path,
                tag="DecayCorrection",
            )
        if ov is None:
            self._use_tag("DecayCorrection", value)
        return value

    def _acquisition_datetimes(self) -> list[datetime | None]:
        out: list[datetime | None] = []
        for h, p in zip(self.slice_headers(), self._slice_paths(), strict=True):
            adt = h.get("AcquisitionDateTime")
            if adt:
                out.append(parse_dt(adt, path=p, tag="AcquisitionDateTime"))
            else:
                out.append(header_datetime(h, "AcquisitionDate", "AcquisitionTime", path=p))
        return out

    def _slice_paths(self) -> list[Any]:
        return [self.info.files[f.file_index] for f in self._sorted_frames()]

    @cached_property
    def acquisition_time(self) -> datetime:
        """Acquisition start: override, else the Series Date/Time (the PET series time
        reference, PS3.3 C.8.9.1.1.2), checked against the images' Acquisition Times."""
        ov = self._override("acquisition_time")
        if ov is not None:
            return as_datetime(ov, "acquisition_time")
        t_series = self._series_datetime
        acq = [t for t in self._acquisition_datetimes() if t is not None]
        if acq and min(acq) < t_series - timedelta(seconds=1):
            ge = self._ge_scan_datetime()
            if ge is not None:
                self._acquisition_from_ge = True
                self._note(
                    f"SeriesTime is later than the earliest AcquisitionTime ({min(acq)}): "
                    f"GE private scan date-time (0009,100D) {ge.isoformat()} used as the "
                    "acquisition start (series re-processed after the scan)"
                )
                return ge
            raise DicomInputError(
                f"SeriesDate/Time {t_series.isoformat()} is later than the earliest image "
                f"AcquisitionDate/Time {min(acq).isoformat()} (the series was probably "
                "re-processed after the scan, which resets Series Time). The decay-"
                "correction reference is then unknown: pass acquisition_time=...",
                path=self._first_path,
                tag="SeriesTime",
            )
        return t_series

    def _ge_scan_datetime(self) -> datetime | None:
        try:
            elem = self._first.get_private_item(0x0009, 0x0D, "GEMS_PETD_01")
        except KeyError:
            return None
        try:
            return parse_dt(elem.value, path=self._first_path, tag="GEMS_PETD_01 (0009,xx0D)")
        except DicomInputError:
            return None

    @property
    def reference_time(self) -> datetime | None:
        """The decay-correction reference: acquisition start (START), injection (ADMIN),
        ``None`` when the images are not decay corrected (NONE)."""
        mode = self.decay_correction
        if mode == "START":
            return self.acquisition_time
        if mode == "ADMIN":
            return self.injection_time
        return None

    def frame_reference_times_s(self) -> np.ndarray:
        """Per slice: time (s) the pixel values refer to, relative to the acquisition start.

        FrameReferenceTime (0054,1300, ms from the Series Date/Time) when present; else
        derived from each image's Acquisition Date/Time and ActualFrameDuration as the
        time of the decay-averaged activity, ``t_acq + ln(lambda T / (1 - exp(-lambda T)))
        / lambda`` (PS3.3 C.8.9.4.1.5, example 2).
        """
        t0 = self.acquisition_time
        t_series = self._series_datetime
        offset = (t_series - t0).total_seconds()
        out = []
        derived = False
        acq = None
        for h, p in zip(self.slice_headers(), self._slice_paths(), strict=True):
            frt = strict_float(h, "FrameReferenceTime", p)
            if frt is not None and not self._acquisition_from_ge:
                out.append(frt / 1000.0 + offset)
                continue
            if acq is None:
                acq = self._acquisition_datetimes()
            t_img = acq[len(out)]
            dur = strict_float(h, "ActualFrameDuration", p)
            if t_img is None or dur is None or dur <= 0:
                raise DicomInputError(
                    "FrameReferenceTime is missing and cannot be derived (needs "
                    "AcquisitionDate/Time and ActualFrameDuration); the time of the "
                    "non-decay-corrected values is unknown. Pass decay_correction=... only "
                    "if you know the images are in fact decay corrected.",
                    path=p,
                    tag="FrameReferenceTime",
                )
            t_ave = _decay_average_offset_s(self._lambda, dur / 1000.0)
            out.append((t_img - t0).total_seconds() + t_ave)
            derived = True
        if derived:
            self._note(
                "FrameReferenceTime missing: derived from AcquisitionDate/Time + "
                "ActualFrameDuration as the decay-averaged time (PS3.3 C.8.9.4.1.5)"
            )
        else:
            self._use_tag("FrameReferenceTime", "per slice")
        return np.array(out, dtype=float)

    def _check_decay_tags(self) -> None:
        """Refuse decay-correction tags that contradict each other, per image.

        PS3.3 C.8.9: Decay Correction (0054,1102) says what the values are corrected to;
        Corrected Image (0028,0051) lists ``DECY`` when they are decay corrected; Decay
        Factor (0054,1321) is the factor applied, required (Type 1C) when Decay Correction
        is not NONE. Refused: NONE with ``DECY`` or with a DecayFactor other than 1 (within
        :data:`DECAY_FACTOR_RTOL`); START/ADMIN with a CorrectedImage that lacks ``DECY``;
        START/ADMIN with DecayFactor missing in some or all images; a DecayFactor that is
        not a positive number. Skipped (noted) when ``decay_correction`` is given by the
        user, who then states the truth.
        """
        if self._overrides.get("decay_correction") is not None:
            self._note("decay-tag consistency check skipped: decay_correction given by the user")
            return
        mode = self.decay_correction
        headers, paths = self.slice_headers(), self._slice_paths()
        missing_df = []
        fix = "Check the export; pass decay_correction=... to state what the values are."
        for h, p in zip(headers, paths, strict=True):
            corrected = [str(v).strip().upper() for v in _as_values(h.get("CorrectedImage"))]
            df = strict_float(h, "DecayFactor", p)
            if df is not None and df <= 0:
                raise DicomInputError(
                    f"DecayFactor = {df} is not positive. {fix}", path=p, tag="DecayFactor"
                )
            if mode == "NONE":
                if "DECY" in corrected:
                    raise DicomInputError(
                        f"DecayCorrection is NONE but CorrectedImage {corrected} lists DECY "
                        "(decay corrected): the header contradicts itself, so the time the "
                        f"values refer to is unknown. {fix}",
                        path=p,
                        tag="CorrectedImage",
                    )
                if df is not None and abs(df - 1.0) > DECAY_FACTOR_RTOL:
                    raise DicomInputError(
                        f"DecayCorrection is NONE but DecayFactor is {df}: a factor other than "
                        f"1 (tolerance {DECAY_FACTOR_RTOL:.1%}) means a decay correction was "
                        f"applied, so the header contradicts itself. {fix}",
                        path=p,
                        tag="DecayFactor",
                    )
                continue
            if corrected and "DECY" not in corrected:
                raise DicomInputError(
                    f"DecayCorrection is {mode} but CorrectedImage {corrected} does not list "
                    f"DECY: the header contradicts itself about whether the values are decay "
                    f"corrected. {fix}",
                    path=p,
                    tag="CorrectedImage",
                )
            if df is None:
                missing_df.append(p)
        if missing_df:
            some = (
                "every image"
                if len(missing_df) == len(paths)
                else f"{len(missing_df)} of {len(paths)} images (e.g. {missing_df[0]})"
            )
            raise DicomInputError(
                f"DecayFactor is missing in {some}; it is required (Type 1C) when "
                f"DecayCorrection is {mode} (PS3.3 C.8.9.4), and without it the decay "
                f"correction of those images cannot be verified. Pass "
                f"decay_correction='{mode}' to confirm the correction yourself.",
                path=missing_df[0],
                tag="DecayFactor",
            )
        self._note(f"DecayCorrection {mode}, CorrectedImage and DecayFactor agree in every image")

    def _check_decay_factors(self) -> None:
        """Compare each image's DecayFactor with the factor the times imply."""
        timing = ("acquisition_time", "injection_time", "decay_correction", "half_life_s")
        if any(self._overrides.get(k) is not None for k in timing):
            self._note("DecayFactor consistency check skipped: timing overridden by the user")
            return
        mode = self.decay_correction
        _ = self.acquisition_time
        if getattr(self, "_acquisition_from_ge", False):
            self._note(
                "DecayFactor consistency check skipped: the series time was reset after the "
                "scan, so FrameReferenceTime offsets are not relative to the scan start"
            )
            return
        headers = self.slice_headers()
        paths = self._slice_paths()
        dfs = [strict_float(h, "DecayFactor", p) for h, p in zip(headers, paths, strict=True)]
        if mode == "NONE" or all(d is None for d in dfs):
            return
        frts = [
            strict_float(h, "FrameReferenceTime", p) for h, p in zip(headers, paths, strict=True)
        ]
        if any(f is None for f in frts):
            return
        if mode == "START":
            has_hl = self._first.get(
                "RadiopharmaceuticalInformationSequence"
            ) or self._overrides.get("nuclide")
            if not has_hl:
                self._note(
                    "DecayFactor consistency check skipped: no half-life (no "
                    "RadiopharmaceuticalInformationSequence); not needed for START"
                )
                return
        t_series = self._series_datetime
        t_ref = self.acquisition_time if mode == "START" else self.injection_time
        offset = (t_series - t_ref).total_seconds()
        lam = self._lambda
        for df, frt, p in zip(dfs, frts, self._slice_paths(), strict=True):
            if df is None or frt is None:
                continue
            expected = _exp(
                lam * (offset + frt / 1000.0), "DecayFactor check", path=p, tag="FrameReferenceTime"
            )
            if not df > 0:  # pragma: no cover - refused by _check_decay_tags
                raise DicomInputError(
                    f"DecayFactor {df} is not positive", path=p, tag="DecayFactor"
                )
            if not expected > 0 or abs(df / expected - 1.0) > DECAY_FACTOR_RTOL:
                try:
                    implied: Any = (
                        t_series + timedelta(seconds=frt / 1000.0 - math.log(df) / lam)
                    ).isoformat()
                except OverflowError:
                    implied = "a time outside the calendar"
                raise DicomInputError(
                    f"DecayFactor {df} disagrees with DecayCorrection={mode}: with "
                    f"FrameReferenceTime {frt} ms and half-life {self.half_life_s} s the "
                    f"images would be decay corrected to {implied}, not to "
                    f"{t_ref.isoformat()} (factor {expected:.6g} expected, tolerance "
                    f"{DECAY_FACTOR_RTOL:.1%}). Check the header; pass acquisition_time=..., "
                    "injection_time=... or decay_correction=... to state the truth.",
                    path=p,
                    tag="DecayFactor",
                )
        self._use_tag("DecayFactor", "checked per slice")
        self._note(
            f"DecayFactor of every slice agrees with DecayCorrection={mode} "
            f"(tolerance {DECAY_FACTOR_RTOL:.1%})"
        )

    # -- values -----------------------------------------------------------------------------------
    def _to_bq_per_ml(self) -> np.ndarray:
        """Per-slice factor from rescaled stored values to Bq/mL at each value's own time."""
        n = len(self._sorted_frames())
        ov = self._override("units_scale_bq_per_ml")
        if ov is not None:
            f = float(ov)
            if not f > 0:
                raise DicomInputError(f"units_scale_bq_per_ml={ov!r} must be positive")
            self._note(
                f"stored values (Units {self.units or 'absent'}) x {f} = Bq/mL (user override)"
            )
            return np.full(n, f)
        units = self.units
        self._use_tag("Units", units)
        if units == "BQML":
            return np.ones(n)
        if units == "CNTS":
            out = []
            for h, p in zip(self.slice_headers(), self._slice_paths(), strict=True):
                try:
                    f = float(h.get_private_item(0x7053, 0x09, "Philips PET Private Group").value)
                except (KeyError, TypeError, ValueError):
                    raise DicomInputError(
                        "Units CNTS without the Philips activity concentration scale factor "
                        "(7053,xx09, private creator 'Philips PET Private Group'): the counts "
                        "cannot be converted to Bq/mL. Pass units_scale_bq_per_ml=...",
                        path=p,
                        tag="Units",
                    ) from None
                if not f > 0:
                    raise DicomInputError(
                        f"Philips activity concentration scale factor {f} is not positive",
                        path=p,
                        tag="Units",
                    )
                out.append(f)
            self._use_tag("Philips (7053,1009) ActivityConcentrationScaleFactor", out[0])
            self._note("Units CNTS: Bq/mL = value x Philips private (7053,1009) per slice")
            return np.array(out)
        if units == "GML":
            mode = self.decay_correction
            if mode == "NONE":
                raise DicomInputError(
                    "Units GML (SUVbw) with DecayCorrection NONE: the time the SUV refers to "
                    "is undefined. Pass units_scale_bq_per_ml=...",
                    path=self._first_path,
                    tag="Units",
                )
            t_ref = self.reference_time
            if t_ref is None:  # pragma: no cover - excluded by the NONE branch above
                raise DicomInputError("no decay-correction reference time", tag="DecayCorrection")
            a_ref = self.injected_activity_bq * _exp(
                -self._lambda * (t_ref - self.injection_time).total_seconds(),
                "Units GML conversion",
                path=self._first_path,
                tag="RadiopharmaceuticalStartDateTime",
            )
            f = a_ref / (1000.0 * self.patient_weight_kg)
            self._note(
                "Units GML (SUVbw): Bq/mL = SUV x injected activity decayed to the "
                f"{mode} reference / (weight in g); factor {f:.6g}"
            )
            return np.full(n, f)
        raise DicomInputError(
            f"Units {units or '(absent)'!r} cannot be converted to Bq/mL by this reader "
            "(supported: BQML, CNTS with the Philips scale factor, GML). Pass "
            "units_scale_bq_per_ml=... (the factor from stored values to Bq/mL).",
            path=self._first_path,
            tag="Units",
        )

    def _decay_to_acquisition(self) -> np.ndarray:
        """Per-slice factor from each value's reference time to the acquisition start."""
        mode = self.decay_correction
        n = len(self._sorted_frames())
        lam = self._lambda if mode != "START" else 0.0
        if mode == "START":
            self._note("DecayCorrection START: values refer to the acquisition start (factor 1)")
            return np.ones(n)
        t_acq = self.acquisition_time
        if mode == "ADMIN":
            dt = (t_acq - self.injection_time).total_seconds()
            f = _exp(
                -lam * dt,
                "DecayCorrection ADMIN",
                path=self._first_path,
                tag="RadiopharmaceuticalStartDateTime",
            )
            self._note(
                f"DecayCorrection ADMIN: values x exp(-ln2 x {dt:.1f} s / {self.half_life_s} s)"
                f" = {f:.6g} to bring them from the injection to the acquisition start"
            )
            return np.full(n, f)
        t_k = self.frame_reference_times_s()
        self._note(
            "DecayCorrection NONE: each slice x exp(+ln2 x t_k / T1/2), t_k = its frame "
            "reference time after the acquisition start"
        )
        with np.errstate(over="ignore"):
            factors: np.ndarray = np.exp(lam * t_k)
        if not np.all(np.isfinite(factors)):
            k = int(np.argmax(~np.isfinite(factors)))
            raise DicomInputError(
                f"DecayCorrection NONE: the decay factor to the acquisition start overflows for "
                f"a frame reference time of {t_k[k]:.4g} s (half-life {self.half_life_s} s); "
                "the header times are absurd",
                path=self._slice_paths()[k],
                tag="FrameReferenceTime",
            )
        return factors

    def activity_at_acquisition(self) -> Volume:
        """Activity concentration (Bq/mL) present at the acquisition start.

        Returns
        -------
        Volume
            Unit ``"Bq/mL"``; ``reference_time`` = :attr:`acquisition_time`; provenance
            lists the unit conversion and decay factors applied.
        """
        raw = self._raw_stack()
        if self.decay_correction != "START" or self.units == "GML":
            _ = self.half_life_s
        self._check_decay_tags()
        self._check_decay_factors()
        scale = self._to_bq_per_ml() * self._decay_to_acquisition()
        with np.errstate(over="ignore", invalid="ignore"):
            raw *= scale[:, None, None]
        if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(raw))):
            raise DicomInputError(
                "the activity concentrations overflow floating point after the unit and "
                "decay conversion (factors "
                f"{float(np.min(scale)):.3g}..{float(np.max(scale)):.3g}): the header's "
                "scale factors or times are absurd",
                path=self._first_path,
                tag="PixelData",
            )
        return self._make_volume(
            raw,
            "Bq/mL",
            reference_time=self.acquisition_time,
            extra={
                "quantity": "activity concentration at acquisition start",
                "stored_units": self.units,
                "decay_correction": self.decay_correction,
                "slice_factors": scale.tolist(),
            },
        )

    def suv(self, kind: str = "bw", *, lbm_formula: LbmFormula = "janmahasatian") -> Volume:
        """Standardised uptake value at the acquisition start.

        ``SUV = C(t_acq) / (A_inj exp(-lambda (t_acq - t_inj)) / M)`` with ``M`` the body
        weight (``"bw"``, g/mL), the lean body mass (``"lbm"``, g/mL; see
        :func:`lean_body_mass_kg`) or the body surface area (``"bsa"``, Du Bois, in
        cm^2/mL, unit ``"SUV"``).

        References
        ----------
        Kinahan PE, Fletcher JW. PET/CT standardized uptake values (SUVs) in clinical
        practice and assessing response to therapy. Semin Ultrasound CT MR
        2010;31:496-505.
        """
        kind = kind.lower()
        if kind not in ("bw", "lbm", "bsa"):
            raise DicomInputError(f"kind={kind!r}; valid: 'bw', 'lbm', 'bsa'")
        conc = self.activity_at_acquisition()
        dt = (conc.reference_time - self.injection_time).total_seconds()  # type: ignore[operator]
        a_acq = self.injected_activity_bq * _exp(
            -self._lambda * dt, "SUV", path=self._first_path, tag="RadiopharmaceuticalStartDateTime"
        )
        if not a_acq > 0:
            raise DicomInputError(
                f"the injected activity decayed to the acquisition start is {a_acq:g} Bq "
                f"({dt:.4g} s after the injection): no SUV can be computed; check the "
                "injection and acquisition times",
                path=self._first_path,
                tag="RadiopharmaceuticalStartDateTime",
            )
        if kind == "bw":
            norm, unit, what = 1000.0 * self.patient_weight_kg, "g/mL SUV", "body weight (g)"
        elif kind == "lbm":
            lbm = lean_body_mass_kg(
                self.patient_weight_kg, self.patient_height_m, self.patient_sex, lbm_formula
            )
            norm, unit, what = 1000.0 * lbm, "g/mL SUV", f"lean body mass ({lbm_formula}, g)"
        else:
            bsa = body_surface_area_m2(self.patient_weight_kg, self.patient_height_m)
            norm, unit, what = 1e4 * bsa, "SUV", "body surface area (Du Bois, cm^2)"
        prov = dict(conc.provenance)
        prov.update(self.provenance)
        prov.update(
            {
                "quantity": f"SUV{kind}",
                "suv_unit": "cm2/mL" if kind == "bsa" else "g/mL",
                "suv_normalisation": f"{what} = {norm:.6g}",
                "injected_activity_at_acquisition_bq": a_acq,
            }
        )
        with np.errstate(over="ignore", invalid="ignore"):
            values = conc.array * (norm / a_acq)
        if not np.all(np.isfinite(values)):
            raise DicomInputError(
                f"SUV{kind} overflows floating point (normalisation {norm:.4g} / "
                f"{a_acq:.4g} Bq): the injected activity or the times are absurd",
                path=self._first_path,
                tag="RadionuclideTotalDose",
            )
        return conc.with_array(values, unit=unit, provenance=prov)

    def _repr_extra(self) -> str:
        return f"Units={self.units}"
