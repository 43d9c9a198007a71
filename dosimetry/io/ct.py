"""CT series: Hounsfield units and mass density.

:class:`CtSeries` reads a CT series as a Volume in HU (Rescale Slope/Intercept applied).
:func:`hu_to_density` converts HU to mass density (g/mL) with a piecewise-linear
calibration curve; the default is the Schneider et al. (2000) curve shipped in
``dosimetry/data/hu_density_schneider2000.csv`` (with its citation). A CT calibration is
scanner- and tube-voltage-specific: give your own with ``curve=``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, overload

import numpy as np

from ..errors import DicomInputError, InputDataError, UnitError
from ..volume import Volume
from .discovery import ImageSeries

__all__ = ["CtSeries", "hu_to_density", "load_hu_density_curve", "DEFAULT_HU_DENSITY_CURVE"]

log = logging.getLogger(__name__)

#: Name of the packaged default curve (``dosimetry/data/hu_density_<name>.csv``).
DEFAULT_HU_DENSITY_CURVE = "schneider2000"

Curve = str | Path | tuple[Sequence[float], Sequence[float]] | Mapping[float, float] | None


def _parse_curve_csv(text: str, origin: str) -> tuple[np.ndarray, np.ndarray]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    if not rows or "hu" not in rows[0] or "density_g_per_ml" not in rows[0]:
        raise InputDataError(
            f"HU-density curve {origin} must be a CSV with columns 'hu,density_g_per_ml' "
            "(lines starting with '#' are comments)"
        )
    hu = np.array([float(r["hu"]) for r in rows])
    rho = np.array([float(r["density_g_per_ml"]) for r in rows])
    return hu, rho


@cache
def _packaged_curve(name: str) -> tuple[np.ndarray, np.ndarray]:
    res = resources.files("dosimetry").joinpath(f"data/hu_density_{name}.csv")
    if not res.is_file():
        avail = sorted(
            p.name[len("hu_density_") : -len(".csv")]
            for p in resources.files("dosimetry").joinpath("data").iterdir()
            if p.name.startswith("hu_density_") and p.name.endswith(".csv")
        )
        raise InputDataError(
            f"no packaged HU-density curve {name!r}; available: {', '.join(avail)}; or give "
            "a CSV path, a (hu, density) pair of sequences, or a {hu: density} mapping"
        )
    return _parse_curve_csv(res.read_text("utf-8"), f"'{name}'")


def load_hu_density_curve(curve: Curve = None) -> tuple[np.ndarray, np.ndarray]:
    """The (HU points, density g/mL points) of a calibration curve, validated.

    Parameters
    ----------
    curve
        ``None`` (the default :data:`DEFAULT_HU_DENSITY_CURVE`), the name of a packaged
        curve, a path to a CSV with columns ``hu,density_g_per_ml``, a pair of sequences
        ``(hu, density)``, or a mapping ``{hu: density}``.

    >>> hu, rho = load_hu_density_curve()
    >>> round(float(np.interp(0.0, hu, rho)), 6)
    1.017449
    """
    if curve is None:
        curve = DEFAULT_HU_DENSITY_CURVE
    if isinstance(curve, Mapping):
        items = sorted((float(k), float(v)) for k, v in curve.items())
        hu = np.array([k for k, _ in items])
        rho = np.array([v for _, v in items])
    elif isinstance(curve, tuple):
        hu, rho = np.asarray(curve[0], dtype=float), np.asarray(curve[1], dtype=float)
    elif isinstance(curve, Path) or (
        isinstance(curve, str) and (curve.endswith(".csv") or "/" in curve)
    ):
        p = Path(curve)
        if not p.is_file():
            raise InputDataError(f"HU-density curve file {p} does not exist")
        hu, rho = _parse_curve_csv(p.read_text("utf-8"), str(p))
    elif isinstance(curve, str):
        hu, rho = _packaged_curve(curve)
    else:
        raise InputDataError(
            f"curve={curve!r}: give None, a name, a CSV path, (hu, rho) or a mapping"
        )
    if hu.ndim != 1 or hu.shape != rho.shape or len(hu) < 2:
        raise InputDataError(
            "an HU-density curve needs at least two (hu, density) points of equal count"
        )
    if not (np.all(np.isfinite(hu)) and np.all(np.isfinite(rho))):
        raise InputDataError("the HU-density curve contains NaN or infinite values")
    if np.any(np.diff(hu) <= 0):
        raise InputDataError(
            f"the HU points of the curve must strictly increase, got {hu.tolist()}"
        )
    if np.any(rho < 0):
        raise InputDataError("the HU-density curve has negative densities")
    return hu.copy(), rho.copy()


@overload
def hu_to_density(hu_volume: Volume, curve: Curve = None) -> Volume: ...
@overload
def hu_to_density(hu_volume: np.ndarray, curve: Curve = None) -> np.ndarray: ...


def hu_to_density(hu_volume: Volume | np.ndarray, curve: Curve = None) -> Volume | np.ndarray:
    """Mass density (g/mL) from CT numbers by piecewise-linear interpolation.

    Parameters
    ----------
    hu_volume
        CT image in HU (a Volume with unit ``"HU"``, or an array).
    curve
        Calibration curve, see :func:`load_hu_density_curve`. Default: Schneider et al.
        2000 (``dosimetry/data/hu_density_schneider2000.csv``). Values outside the curve's
        HU range take the end densities (the number of such voxels is logged).

    Returns
    -------
    Volume or numpy.ndarray
        Same grid, unit ``"g/mL"``.

    References
    ----------
    Schneider W, Bortfeld T, Schlegel W. Correlation between CT numbers and tissue
    parameters needed for Monte Carlo simulations of clinical dose distributions.
    Phys Med Biol 2000;45:459-478.

    Examples
    --------
    >>> hu_to_density(np.array([-1000.0, 0.0, 1600.0])).round(4).tolist()
    [0.0012, 1.0174, 1.9642]
    """
    hu_pts, rho_pts = load_hu_density_curve(curve)
    if isinstance(hu_volume, Volume):
        if hu_volume.unit != "HU":
            raise UnitError(f"hu_to_density needs a Volume in 'HU', got unit {hu_volume.unit!r}")
        values = hu_volume.array
    else:
        values = np.asarray(hu_volume)
    if not np.all(np.isfinite(values)):
        raise InputDataError("the CT image contains NaN or infinite values")
    outside = int(np.count_nonzero((values < hu_pts[0]) | (values > hu_pts[-1])))
    if outside:
        log.info(
            "hu_to_density: %d voxel(s) outside the curve's range %g..%g HU take the end densities",
            outside,
            hu_pts[0],
            hu_pts[-1],
        )
    rho = np.interp(values.astype(np.float64), hu_pts, rho_pts)
    if isinstance(hu_volume, Volume):
        prov: dict[str, Any] = dict(hu_volume.provenance)
        prov["hu_to_density"] = {
            "curve": curve if isinstance(curve, str | type(None)) else str(curve),
            "hu": hu_pts.tolist(),
            "density_g_per_ml": rho_pts.tolist(),
            "voxels_outside_range": outside,
        }
        if curve is None:
            prov["hu_to_density"]["curve"] = DEFAULT_HU_DENSITY_CURVE
        return hu_volume.with_array(rho, unit="g/mL", provenance=prov)
    return rho


class CtSeries(ImageSeries):
    """A CT image series; :attr:`volume` is in HU, :meth:`density` in g/mL.

    Overrides: ``allow_nonuniform`` (``"resample"``), ``allow_incomplete`` (load a series
    that lacks files its DICOMDIR lists), ``assume_rescale_slope`` and
    ``assume_rescale_intercept`` (for images without these Type 1 attributes of the CT
    Image Module, PS3.3 C.8.2.1; a missing intercept would shift every CT number).
    """

    modality_name = "CT"
    _volume_dtype = np.float32
    _rescale_module = "CT Image Module (PS3.3 C.8.2.1)"
    _intercept_required = True
    _rescaled_what = "the CT numbers (HU)"
    override_names = frozenset(
        {"allow_nonuniform", "allow_incomplete", "assume_rescale_slope", "assume_rescale_intercept"}
    )

    def _stored_unit(self) -> str:
        rt = str(self.info.first.get("RescaleType", "") or "").strip().upper()
        if rt not in ("", "HU", "US"):
            raise DicomInputError(
                f"RescaleType {rt!r}: the CT values are not Hounsfield units",
                path=self.info.files[0],
                tag="RescaleType",
            )
        return "HU"

    def density(self, curve: Curve = None) -> Volume:
        """Mass density (g/mL) via :func:`hu_to_density` (default Schneider et al. 2000)."""
        return hu_to_density(self.volume, curve)
