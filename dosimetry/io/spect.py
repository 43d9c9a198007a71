"""SPECT (reconstructed tomographic NM) series and their calibration to Bq/mL.

A reconstructed SPECT volume is stored either as one NM multi-frame object (Image Type
value 3 ``RECON TOMO``; PS3.3 C.8.4) or as one single-frame file per slice.

Multi-frame geometry (PS3.3 C.8.4.8, C.8.4.11, C.8.4.15): the frames are ordered by the
Slice Vector (0054,0080); the first slice lies at ImagePositionPatient of the Detector
Information Sequence (0054,0022) with its ImageOrientationPatient; slice ``k`` (1-based)
lies at ``IPP + (k - 1) * SpacingBetweenSlices * normal`` where ``normal`` =
row cosine x column cosine and the *sign* of Spacing Between Slices gives the stacking
direction (C.8.4.15). When SpacingBetweenSlices is empty, SliceThickness is used as a
positive spacing (logged).

Calibration (:meth:`SpectSeries.activity_at_acquisition`):

* Units BQML (quantitative vendor reconstruction): with DecayCorrection START used as
  stored; ADMIN: decayed from the administration to the acquisition start; without a
  DecayCorrection attribute (or NONE) the values are the mean concentration over the
  acquisition and are corrected to its start like counts (below).
* Counts: ``A [Bq/mL] = counts / (T_acq * CF) * 1e6 / V_voxel`` with ``CF`` the system
  calibration factor in counts per second per MBq (user argument, required), ``V_voxel``
  in mL, and ``T_acq`` the acquisition duration: the sum over the Rotation Information
  Sequence (0054,0052) items of Actual Frame Duration (0018,1242, ms per view) x Number of
  Frames in Rotation (0054,0053, views per detector). This is the wall-clock acquisition
  time: the detectors acquire simultaneously, so ``CF`` must be defined as reconstructed
  counts per second of acquisition per MBq (as in MIRD Pamphlet 26 and most
  quantitative-SPECT calibration protocols). When the nuclide's half-life is known the
  decay during the acquisition is corrected so that the result is the activity at the
  acquisition start: x ``lambda T / (1 - exp(-lambda T))``.

References
----------
Dewaraja YK, Frey EC, Sgouros G, et al. MIRD Pamphlet No. 23: quantitative SPECT for
patient-specific 3-dimensional dosimetry in internal radionuclide therapy. J Nucl Med
2012;53:1310-1325.
Ljungberg M, Celler A, Konijnenberg MW, et al. MIRD Pamphlet No. 26: joint EANM/MIRD
guidelines for quantitative 177Lu SPECT applied for dosimetry of radiopharmaceutical
therapy. J Nucl Med 2016;57:151-162.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from ..errors import DicomInputError
from ..volume import Volume
from ._geometry import Plane
from .discovery import (
    ImageSeries,
    _floats,
    _Frame,
    as_datetime,
    header_datetime,
    image_shape,
    optional_float,
    parse_dt,
    seq_items,
    strict_float,
    strict_int,
)
from .pet import canonical_nuclide, reference_half_life_s

__all__ = ["SpectSeries"]


class SpectSeries(ImageSeries):
    """A reconstructed SPECT series (Modality NM).

    Overrides (keyword arguments of :meth:`dosimetry.io.Study.spect`), each recorded in
    :attr:`provenance`: ``acquisition_time``, ``acquisition_duration_s``, ``nuclide``,
    ``half_life_s``, ``energy_window`` (1-based index, window name, or an energy in keV
    inside the window, to choose among several reconstructed windows),
    ``injected_activity_bq``, ``injection_time``, ``allow_nonuniform``, ``allow_incomplete``
    (load a volume with fewer frames/slices than its NumberOfSlices or Slice Vector says).

    RescaleSlope/RescaleIntercept are optional for NM images: when absent the stored
    values are used with slope 1 and intercept 0 (recorded in the provenance); when
    present they must be numbers, the slope positive.
    """

    modality_name = "SPECT"
    override_names = frozenset(
        {
            "allow_nonuniform",
            "allow_incomplete",
            "acquisition_time",
            "acquisition_duration_s",
            "nuclide",
            "half_life_s",
            "energy_window",
            "injected_activity_bq",
            "injection_time",
        }
    )

    # -- energy windows / file selection ----------------------------------------------
    @staticmethod
    def _window_of(ds: Dataset) -> dict[str, Any]:
        seq = seq_items(ds, "EnergyWindowInformationSequence", None)
        names, ranges = [], []
        for item in seq:
            names.append(str(item.get("EnergyWindowName", "") or ""))
            for r in seq_items(item, "EnergyWindowRangeSequence", None):
                lo = optional_float(r, "EnergyWindowLowerLimit")
                hi = optional_float(r, "EnergyWindowUpperLimit")
                if lo is not None and hi is not None:
                    ranges.append((lo, hi))
        return {"names": names, "ranges_kev": ranges}

    def energy_windows(self) -> list[dict[str, Any]]:
        """One entry per file: its path, energy window names and ranges (keV)."""
        return [
            {"file": str(p), **self._window_of(h)}
            for p, h in zip(self.info.files, self.info.headers, strict=True)
        ]

    def _selected_files(self) -> list[int]:
        files = list(range(len(self.info.files)))
        multi = [
            i
            for i in files
            if strict_int(self.info.headers[i], "NumberOfFrames", self.info.files[i], 1) > 1
        ]
        for i in files:
            self._check_image_type(i)
        if len(multi) <= 1:
            return files
        choice = self._override("energy_window")
        wins = [self._window_of(self.info.headers[i]) for i in multi]
        listing = "; ".join(
            f"{k + 1}: {self.info.files[i].name} window(s) {w['names']} {w['ranges_kev']} keV"
            for k, (i, w) in enumerate(zip(multi, wins, strict=True))
        )
        if choice is None:
            raise DicomInputError(
                f"the SPECT series holds {len(multi)} reconstructed volumes ({listing}). "
                "Choose one with energy_window=<number above>, =<window name> or "
                "=<photopeak energy in keV>."
            )
        chosen: list[int]
        if isinstance(choice, bool):
            chosen = []
        elif isinstance(choice, int):
            chosen = [multi[choice - 1]] if 1 <= choice <= len(multi) else []
        elif isinstance(choice, float):
            chosen = [
                i
                for i, w in zip(multi, wins, strict=True)
                if any(lo <= choice <= hi for lo, hi in w["ranges_kev"])
            ]
        else:
            chosen = [
                i
                for i, w in zip(multi, wins, strict=True)
                if any(str(choice).strip().lower() == n.strip().lower() for n in w["names"])
            ]
        if len(chosen) != 1:
            raise DicomInputError(
                f"energy_window={choice!r} selects {len(chosen)} of the reconstructed volumes "
                f"({listing}); give a number, a window name or an energy (float, keV) that "
                "selects exactly one"
            )
        self._note(f"energy window {choice!r} selected: {self.info.files[chosen[0]]}")
        return chosen

    def _check_image_type(self, i: int) -> None:
        ds, path = self.info.headers[i], self.info.files[i]
        it = [str(v).upper() for v in _as_list(ds.get("ImageType") or [])]
        kind = it[2] if len(it) > 2 else ""
        if kind in ("TOMO", "GATED TOMO"):
            raise DicomInputError(
                "this NM object holds projections (Image Type TOMO), not a reconstructed "
                "volume: reconstruct it first (with attenuation/scatter correction) and "
                "load the RECON TOMO series",
                path=path,
                tag="ImageType",
            )
        if kind in ("STATIC", "WHOLE BODY", "DYNAMIC", "GATED"):
            raise DicomInputError(
                f"this NM object is planar (Image Type {kind}), not a tomographic volume",
                path=path,
                tag="ImageType",
            )

    # -- geometry ------------------------------------------------------------------------
    @staticmethod
    def _position_source(ds: Dataset) -> Dataset:
        """The dataset holding IPP/IOP: top level, else the Detector Information item."""
        if ds.get("ImagePositionPatient") and ds.get("ImageOrientationPatient"):
            return ds
        seq = seq_items(ds, "DetectorInformationSequence", None)
        if seq:
            return seq[0]
        return ds

    def _frames(self) -> list[_Frame]:
        frames: list[_Frame] = []
        for i in self._selected_files():
            path, ds = self.info.files[i], self.info.headers[i]
            self._refuse_unsupported(path, ds)
            n = strict_int(ds, "NumberOfFrames", path, 1)
            src = self._position_source(ds)
            if n == 1:
                frames.append(_Frame(i, None, self._plane(path, _merged(ds, src))))
                continue
            frames.extend(self._multiframe_planes(i, path, ds, src, n))
        return frames

    def _multiframe_planes(
        self, i: int, path: Path, ds: Dataset, src: Dataset, n: int
    ) -> list[_Frame]:
        ipp = np.array(_floats(src, "ImagePositionPatient", 3, path))
        iop = _floats(src, "ImageOrientationPatient", 6, path)
        ps = _floats(ds, "PixelSpacing", 2, path)
        rows, cols = image_shape(ds, path)
        r, c = np.array(iop[:3]), np.array(iop[3:])
        if not (
            np.all(np.isfinite(ipp))
            and np.all(np.isfinite(r))
            and np.all(np.isfinite(c))
            and abs(float(np.linalg.norm(r)) - 1.0) <= 1e-3
            and abs(float(np.linalg.norm(c)) - 1.0) <= 1e-3
            and abs(float(r @ c)) <= 1e-3
        ):
            raise DicomInputError(
                f"ImageOrientationPatient {list(iop)} is not two orthogonal unit vectors, or "
                f"ImagePositionPatient {ipp.tolist()} is not finite",
                path=path,
                tag="ImageOrientationPatient",
            )
        sbs = strict_float(ds, "SpacingBetweenSlices", path)
        if sbs is None or sbs == 0:
            st = strict_float(ds, "SliceThickness", path)
            if st is None or st <= 0:
                raise DicomInputError(
                    "neither SpacingBetweenSlices nor a positive SliceThickness: the slice "
                    "spacing of the reconstructed volume is unknown",
                    path=path,
                    tag="SpacingBetweenSlices",
                )
            sbs = st
            self._note(
                f"SpacingBetweenSlices empty: SliceThickness {st} mm used as the slice step "
                "(stacking along +normal)"
            )
        else:
            self._use_tag("SpacingBetweenSlices", sbs)
        for kw in ("DetectorVector", "EnergyWindowVector"):
            vec = ds.get(kw)
            values = _as_list(vec) if vec is not None and vec != "" else []
            if not all(isinstance(v, int | float | str) for v in values):
                raise DicomInputError(f"{kw} is not a list of numbers", path=path, tag=kw)
            if len({str(v) for v in values}) > 1:
                raise DicomInputError(
                    f"{kw} has several values in one reconstructed object: frames from "
                    "different detectors/windows are interleaved. Export each as its own "
                    "reconstructed volume.",
                    path=path,
                    tag=kw,
                )
        idx = self._slice_vector(path, ds, n)
        reach = float(np.max(np.abs(ipp))) + abs(sbs) * (max(max(idx), n) + 1)
        if not math.isfinite(reach):
            raise DicomInputError(
                f"SpacingBetweenSlices {sbs} mm with {n} frames places slices beyond any "
                "representable position",
                path=path,
                tag="SpacingBetweenSlices",
            )
        normal = np.cross(r / np.linalg.norm(r), c / np.linalg.norm(c))
        normal = normal / np.linalg.norm(normal)
        out = []
        for f, k in enumerate(idx):
            pos = ipp + (k - 1) * sbs * normal
            out.append(
                _Frame(
                    i,
                    f,
                    Plane(
                        (float(pos[0]), float(pos[1]), float(pos[2])),
                        iop,  # type: ignore[arg-type]
                        (ps[0], ps[1]),
                        (rows, cols),
                        f"{path} [frame {f + 1}]",
                    ),
                )
            )
        self._note(
            "multi-frame NM geometry: IPP/IOP of the Detector Information Sequence, slice k at "
            "IPP + (k-1) x SpacingBetweenSlices x (row cosine x column cosine)"
        )
        return out

    def _slice_vector(self, path: Path, ds: Dataset, n: int) -> list[int]:
        """Slice number (1-based) of each frame: the Slice Vector (0054,0080), checked."""
        slice_vec = ds.get("SliceVector")
        if slice_vec is None or slice_vec == "":
            self._note("SliceVector absent: frames taken in stored order as slices 1..n")
            return list(range(1, n + 1))
        values = _as_list(slice_vec)
        if len(values) != n:
            raise DicomInputError(
                f"SliceVector has {len(values)} values but NumberOfFrames is {n}: the frames "
                "cannot be placed (PS3.3 C.8.4.8.1.6)",
                path=path,
                tag="SliceVector",
            )
        try:
            idx = [int(v) for v in values]
        except (TypeError, ValueError):
            raise DicomInputError(
                f"SliceVector holds non-integer values {values[:5]}...",
                path=path,
                tag="SliceVector",
            ) from None
        if min(idx) < 1:
            raise DicomInputError(
                f"SliceVector values must start at 1, got {min(idx)}", path=path, tag="SliceVector"
            )
        self._use_tag("SliceVector", "per frame")
        return idx

    def _check_complete(self, frames: list[_Frame]) -> None:
        """Refuse a reconstructed volume with fewer slices than its header declares.

        NumberOfSlices (0054,0081, required for RECON TOMO, PS3.3 C.8.4.8) against the
        frames of a multi-frame object (each Slice Vector value 1..NumberOfSlices must be
        present) or against the number of single-frame files.
        """
        super()._check_complete(frames)
        files = sorted({f.file_index for f in frames})
        for i in files:
            path, ds = self.info.files[i], self.info.headers[i]
            n_frames = strict_int(ds, "NumberOfFrames", path, 1)
            n_slices = strict_int(ds, "NumberOfSlices", path, 0)
            if n_frames <= 1 or n_slices <= 0:
                continue
            present = {
                int(v) for v in (_as_list(ds.get("SliceVector")) if ds.get("SliceVector") else [])
            } or set(range(1, n_frames + 1))
            missing = sorted(set(range(1, n_slices + 1)) - present)
            if missing:
                shown = ", ".join(str(m) for m in missing[:10]) + (
                    " ..." if len(missing) > 10 else ""
                )
                self._incomplete(
                    f"NumberOfSlices (0054,0081) is {n_slices}, but the object holds "
                    f"{n_frames} frame(s) covering slice numbers {min(present)}-{max(present)}: "
                    f"{len(missing)} missing slice(s) ({shown})",
                    path=path,
                    tag="NumberOfSlices",
                )
        single = [
            i
            for i in files
            if strict_int(self.info.headers[i], "NumberOfFrames", self.info.files[i], 1) <= 1
        ]
        if single:
            p0 = self.info.files[single[0]]
            n_slices = strict_int(self.info.headers[single[0]], "NumberOfSlices", p0, 0)
            if n_slices > len(single):
                self._incomplete(
                    f"NumberOfSlices (0054,0081) is {n_slices}, but only {len(single)} "
                    f"single-frame image(s) were found: {n_slices - len(single)} missing slice(s)",
                    path=p0,
                    tag="NumberOfSlices",
                )

    # -- units and times ---------------------------------------------------------------------
    @property
    def units(self) -> str:
        """Units (0054,1001) or Rescale Type (0028,1054), upper case; ``""`` = counts."""
        h = self.info.first
        u = str(h.get("Units", "") or h.get("RescaleType", "") or "").strip().upper()
        return u

    def _stored_unit(self) -> str:
        return "Bq/mL" if self.units == "BQML" else "counts"

    def _volume_extra(self) -> dict[str, Any]:
        return {"stored_units": self.units or "counts"}

    @cached_property
    def acquisition_time(self) -> datetime:
        """Acquisition start: override, AcquisitionDateTime, Acquisition Date/Time, or
        (logged) Series Date/Time."""
        ov = self._override("acquisition_time")
        if ov is not None:
            return as_datetime(ov, "acquisition_time")
        h, p = self.info.first, self.info.files[0]
        if h.get("AcquisitionDateTime"):
            self._use_tag("AcquisitionDateTime", str(h.AcquisitionDateTime))
            return parse_dt(h.AcquisitionDateTime, path=p, tag="AcquisitionDateTime")
        t = header_datetime(h, "AcquisitionDate", "AcquisitionTime", path=p)
        if t is not None:
            self._use_tag("AcquisitionTime", str(h.AcquisitionTime))
            return t
        t = header_datetime(h, "SeriesDate", "SeriesTime", path=p)
        if t is not None:
            self._note("Acquisition Date/Time missing: Series Date/Time used as acquisition start")
            return t
        raise DicomInputError(
            "no acquisition date/time (AcquisitionDateTime, AcquisitionDate/Time, "
            "SeriesDate/Time); pass acquisition_time=...",
            path=p,
            tag="AcquisitionTime",
        )

    @cached_property
    def acquisition_duration_s(self) -> float:
        """Wall-clock acquisition duration (s): override, or the sum over the Rotation
        Information Sequence of ActualFrameDuration x NumberOfFramesInRotation."""
        ov = self._override("acquisition_duration_s")
        if ov is not None:
            if not float(ov) > 0:
                raise DicomInputError(f"acquisition_duration_s={ov!r} must be positive")
            return float(ov)
        h, p = self.info.first, self.info.files[0]
        total = 0.0
        items = seq_items(h, "RotationInformationSequence", p)
        for item in items:
            dur = strict_float(item, "ActualFrameDuration", p)
            views = strict_float(item, "NumberOfFramesInRotation", p)
            if dur is None or views is None or dur <= 0 or views <= 0:
                total = 0.0
                break
            total += dur / 1000.0 * views
        if total > 0:
            self._use_tag(
                "RotationInformationSequence",
                f"{len(items)} rotation(s): ActualFrameDuration x NumberOfFramesInRotation",
            )
            self._note(f"acquisition duration {total:g} s from the Rotation Information Sequence")
            return total
        raise DicomInputError(
            "the acquisition duration is unknown (RotationInformationSequence with "
            "ActualFrameDuration and NumberOfFramesInRotation missing, as is common in "
            "reconstructed objects); pass acquisition_duration_s=... (views x seconds per "
            "view)",
            path=p,
            tag="RotationInformationSequence",
        )

    @cached_property
    def nuclide(self) -> str:
        """Canonical nuclide name from the override or the RadionuclideCodeSequence."""
        ov = self._override("nuclide")
        if ov is not None:
            name = canonical_nuclide(str(ov))
            if name is None:
                raise DicomInputError(f"nuclide={ov!r} is not a nuclide name such as 'Lu-177'")
            return name
        h = self.info.first
        for item in seq_items(h, "RadiopharmaceuticalInformationSequence", self.info.files[0]):
            for code in seq_items(item, "RadionuclideCodeSequence", self.info.files[0]):
                name = canonical_nuclide(str(code.get("CodeMeaning", "") or ""))
                if name:
                    self._use_tag("RadionuclideCodeSequence", str(code.get("CodeMeaning")))
                    return name
        raise DicomInputError(
            "the radionuclide is not identified in the header; pass nuclide='Lu-177' (e.g.)",
            path=self.info.files[0],
            tag="RadionuclideCodeSequence",
        )

    @cached_property
    def half_life_s(self) -> float:
        """Half-life (s): override, else the ICRP-107 half-life of :attr:`nuclide`."""
        ov = self._override("half_life_s")
        if ov is not None:
            if not (float(ov) > 0 and math.isfinite(float(ov))):
                raise DicomInputError(f"half_life_s={ov!r} must be a positive finite number")
            return float(ov)
        hl = reference_half_life_s(self.nuclide)
        if hl is None:
            raise DicomInputError(f"no half-life known for {self.nuclide}; pass half_life_s=...")
        return hl

    @cached_property
    def injected_activity_bq(self) -> float:
        """Administered activity (Bq): override, or RadionuclideTotalDose, which the NM
        Isotope Module defines in MBq (PS3.3 C.8.4.10.1.7; the PET module uses Bq)."""
        ov = self._override("injected_activity_bq")
        if ov is not None:
            a_ov = float(ov)
            if not a_ov > 0 or not math.isfinite(a_ov):
                raise DicomInputError(f"injected_activity_bq={ov!r} must be a positive number")
            return a_ov
        from .pet import INJECTED_ACTIVITY_RANGE_BQ

        for item in seq_items(
            self.info.first, "RadiopharmaceuticalInformationSequence", self.info.files[0]
        ):
            a_mbq = optional_float(item, "RadionuclideTotalDose")
            if a_mbq:
                a = a_mbq * 1e6
                lo, hi = INJECTED_ACTIVITY_RANGE_BQ
                if not lo <= a <= hi:
                    raise DicomInputError(
                        f"RadionuclideTotalDose = {a_mbq:g} MBq (NM stores MBq) is outside "
                        f"{lo:g}-{hi:g} Bq; a value in another unit is not rescaled by "
                        "guessing: pass injected_activity_bq=...",
                        path=self.info.files[0],
                        tag="RadionuclideTotalDose",
                    )
                self._use_tag("RadionuclideTotalDose", a_mbq)
                self._note(f"RadionuclideTotalDose {a_mbq:g} MBq (NM unit) = {a:g} Bq")
                return a
        raise DicomInputError(
            "RadionuclideTotalDose missing; pass injected_activity_bq=...",
            path=self.info.files[0],
            tag="RadionuclideTotalDose",
        )

    def _mean_to_start(self) -> float:
        """Factor from the mean activity over the acquisition to the activity at its start,
        ``lambda T / (1 - exp(-lambda T))``; 1 (with a note) when T or the half-life is
        unknown."""
        try:
            t = self.acquisition_duration_s
            lam_t = math.log(2.0) / self.half_life_s * t
        except DicomInputError as exc:
            self._note(
                "no correction for decay during the acquisition (values are the mean over "
                f"the scan): {exc}"
            )
            return 1.0
        f = 1.0 + 0.5 * lam_t if lam_t < 1e-8 else lam_t / -math.expm1(-lam_t)
        self._note(
            f"decay during the {t:g} s acquisition corrected: x {f:.6g} (mean over the scan "
            "-> activity at its start)"
        )
        return f

    @cached_property
    def injection_time(self) -> datetime:
        """Administration start: override or RadiopharmaceuticalStartDateTime (a time of
        day alone is refused: SPECT after therapy is days after the injection)."""
        ov = self._override("injection_time")
        if ov is not None:
            return as_datetime(ov, "injection_time")
        for item in seq_items(
            self.info.first, "RadiopharmaceuticalInformationSequence", self.info.files[0]
        ):
            dt = item.get("RadiopharmaceuticalStartDateTime")
            if dt:
                self._use_tag("RadiopharmaceuticalStartDateTime", str(dt))
                return parse_dt(dt, path=self.info.files[0], tag="RadiopharmaceuticalStartDateTime")
        raise DicomInputError(
            "RadiopharmaceuticalStartDateTime missing (a time of day without a date is "
            "ambiguous days after a therapy); pass injection_time=...",
            path=self.info.files[0],
            tag="RadiopharmaceuticalStartDateTime",
        )

    # -- calibration ---------------------------------------------------------------------------
    def activity_at_acquisition(self, calibration_cps_per_mbq: float | None = None) -> Volume:
        """Activity concentration (Bq/mL) at the acquisition start.

        Parameters
        ----------
        calibration_cps_per_mbq
            System calibration factor (reconstructed counts per second of acquisition per
            MBq) for counts images; ignored (must be None) for Units BQML.

        Returns
        -------
        Volume
            Unit ``"Bq/mL"``, ``reference_time`` = :attr:`acquisition_time`.
        """
        raw = self._raw_stack()
        extra: dict[str, Any] = {"quantity": "activity concentration at acquisition start"}
        if self.units == "BQML":
            if calibration_cps_per_mbq is not None:
                raise DicomInputError(
                    "the SPECT images are already in Bq/mL (Units BQML); do not pass "
                    "calibration_cps_per_mbq",
                    path=self.info.files[0],
                    tag="Units",
                )
            self._use_tag("Units", "BQML")
            dc = str(self.info.first.get("DecayCorrection", "") or "").upper()
            if dc == "ADMIN":
                dt = (self.acquisition_time - self.injection_time).total_seconds()
                try:
                    f = math.exp(-math.log(2.0) / self.half_life_s * dt)
                except OverflowError:
                    raise DicomInputError(
                        f"DecayCorrection ADMIN: the decay from the injection to the acquisition "
                        f"({dt:.4g} s) overflows; the injection or acquisition time is absurd",
                        path=self.info.files[0],
                        tag="RadiopharmaceuticalStartDateTime",
                    ) from None
                with np.errstate(over="ignore", invalid="ignore"):
                    raw *= f
                self._note(f"DecayCorrection ADMIN: x {f:.6g} to the acquisition start")
            elif dc == "START":
                self._note("Units BQML, DecayCorrection START: values used as stored")
            elif dc in ("", "NONE"):
                self._note(
                    "Units BQML without decay correction"
                    + ("" if dc else " (no DecayCorrection attribute)")
                    + ": values are the mean activity concentration over the acquisition"
                )
                f = self._mean_to_start()
                with np.errstate(over="ignore", invalid="ignore"):
                    raw *= f
                extra["decay_during_acquisition_factor"] = f
            else:
                raise DicomInputError(
                    f"DecayCorrection {dc!r} on a BQML SPECT volume is not supported",
                    path=self.info.files[0],
                    tag="DecayCorrection",
                )
        else:
            if self.units not in ("", "CNTS", "COUNTS"):
                raise DicomInputError(
                    f"Units/RescaleType {self.units!r} is neither BQML nor counts",
                    path=self.info.files[0],
                    tag="Units",
                )
            if calibration_cps_per_mbq is None:
                raise DicomInputError(
                    "the SPECT images are in counts: pass calibration_cps_per_mbq=... (the "
                    "camera's calibration factor, counts per second per MBq) to convert to Bq/mL",
                    path=self.info.files[0],
                    tag="Units",
                )
            cf = float(calibration_cps_per_mbq)
            if not cf > 0 or not math.isfinite(cf):
                raise DicomInputError(
                    f"calibration_cps_per_mbq={calibration_cps_per_mbq!r} must be positive"
                )
            t = self.acquisition_duration_s
            voxel_ml = self.geometry_voxel_ml()
            factor = 1e6 / (t * cf * voxel_ml)
            decay = self._mean_to_start()
            if not (math.isfinite(factor * decay) and factor * decay > 0):
                raise DicomInputError(
                    f"the counts-to-Bq/mL factor 1e6 / ({t:g} s x {cf:g} cps/MBq x "
                    f"{voxel_ml:g} mL) is not a finite positive number: the acquisition "
                    "duration or the voxel size in the header is absurd",
                    path=self.info.files[0],
                    tag="RotationInformationSequence",
                )
            with np.errstate(over="ignore", invalid="ignore"):
                raw *= factor * decay
            self._note(f"counts -> Bq/mL: / ({t:g} s x {cf:g} cps/MBq) x 1e6 / {voxel_ml:.6g} mL")
            extra.update(
                {
                    "calibration_cps_per_mbq": cf,
                    "acquisition_duration_s": t,
                    "decay_during_acquisition_factor": decay,
                }
            )
        if not np.all(np.isfinite(raw)):
            raise DicomInputError(
                "the activity concentrations overflow floating point after calibration: the "
                "stored values, RescaleSlope or calibration are absurd",
                path=self.info.files[0],
                tag="PixelData",
            )
        return self._make_volume(raw, "Bq/mL", reference_time=self.acquisition_time, extra=extra)

    def geometry_voxel_ml(self) -> float:
        """Voxel volume (mL) of the output grid."""
        return float(abs(np.linalg.det(self.geometry.affine[:3, :3])) / 1000.0)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    try:
        return list(value)
    except TypeError:
        return [value]


def _merged(ds: Dataset, src: Dataset) -> Dataset:
    """``ds`` with IPP/IOP taken from ``src`` when ``ds`` lacks them."""
    if src is ds:
        return ds
    out = Dataset()
    out.update(ds)
    for kw in ("ImagePositionPatient", "ImageOrientationPatient"):
        if kw in src and not ds.get(kw):
            setattr(out, kw, src[kw].value)
    return out
