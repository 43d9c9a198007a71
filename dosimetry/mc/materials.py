"""Media and mass densities of the patient Monte Carlo, from a density map or a label map.

The transport needs, per voxel, an ompmc PEGS medium and a mass density. They come from

* a density map (g/mL; CT numbers converted first with ``dosimetry.hu_to_density``): the
  medium from the voxel's density class (air < ``density_air_max_g_per_ml`` <= lung <
  ``density_class_lung_max_g_per_ml`` <= soft tissue < ``density_class_bone_min_g_per_ml``
  <= bone; the bounds are rows of ``dosimetry/data/parameters.csv`` shared with
  ``method="vsv-density"`` and overridable with ``dosimetry.parameters.override``), the
  density the voxel's own;
* a material-label map (labels of ``dosimetry/data/mc_media.csv``: 0 air, 1 lung, 2 soft
  tissue, 3 bone, 4 water, or the caller's own labels through ``material_labels``), with
  the density map when there is one, else each medium's nominal density;
* neither: soft tissue (ICRU tissue) at ``density_soft_tissue_g_per_ml`` everywhere.

This module takes density Volumes: converting CT numbers belongs to :mod:`dosimetry.io`,
which the compute modules do not import.

References
----------
Walters B, Kawrakow I, Rogers DWO. DOSXYZnrc Users Manual. NRCC Report PIRS-794revB
(ctcreate's CT ramp of the four 521ICRU media).

Schneider W, Bortfeld T, Schlegel W. Phys Med Biol 2000;45:459-478 (CT number to density,
:func:`dosimetry.hu_to_density`).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from .. import parameters
from ..errors import InputDataError, UnitError
from ..volume import Volume

__all__ = ["Medium", "MCPhantom", "media", "medium", "classify_density", "mc_phantom"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Medium:
    """One medium of ``dosimetry/data/mc_media.csv``.

    Attributes
    ----------
    label
        Material label (0 air, 1 lung, 2 soft tissue, 3 bone, 4 water).
    name
        Medium name.
    pegs_medium
        ompmc PEGS medium (``521icru`` data).
    nominal_density_g_per_ml
        Density used when a label map comes without a density map.
    density_min_parameter, density_max_parameter
        Names of the parameters bounding the medium's density class (``None``: open end,
        or not a density class: water).
    """

    label: int
    name: str
    pegs_medium: str
    nominal_density_g_per_ml: float
    density_min_parameter: str | None
    density_max_parameter: str | None


@lru_cache(maxsize=1)
def media() -> tuple[Medium, ...]:
    """Every medium of ``dosimetry/data/mc_media.csv``, in label order."""
    text = resources.files("dosimetry").joinpath("data/mc_media.csv").read_text("utf-8")
    rows = csv.DictReader(ln for ln in io.StringIO(text) if not ln.startswith("#"))
    out = [
        Medium(
            label=int(r["label"]),
            name=r["name"].strip(),
            pegs_medium=r["pegs_medium"].strip(),
            nominal_density_g_per_ml=float(r["nominal_density_g_per_ml"]),
            density_min_parameter=r["density_min_parameter"].strip() or None,
            density_max_parameter=r["density_max_parameter"].strip() or None,
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda m: m.label))


def medium(name_or_label: str | int) -> Medium:
    """The medium with this name (``"lung"``, ``"soft tissue"``, ...) or label."""
    for m in media():
        if name_or_label in (m.name, m.label):
            return m
    raise InputDataError(
        f"unknown medium {name_or_label!r}; the patient Monte Carlo's media are "
        + ", ".join(f"{m.label} {m.name!r}" for m in media())
    )


def _class_bounds() -> list[tuple[Medium, float, float]]:
    """(medium, lower bound, upper bound) g/mL of each density class, parameters applied."""
    out = []
    for m in media():
        if m.density_min_parameter is None and m.density_max_parameter is None:
            continue
        lo = 0.0 if m.density_min_parameter is None else parameters.get(m.density_min_parameter)
        hi = np.inf if m.density_max_parameter is None else parameters.get(m.density_max_parameter)
        out.append((m, lo, hi))
    return out


def classify_density(density_g_per_ml: np.ndarray) -> np.ndarray:
    """Material label of each voxel from its density class (see the module docstring).

    >>> classify_density(np.array([0.001, 0.3, 1.0, 1.6])).tolist()
    [0, 1, 2, 3]
    """
    rho = np.asarray(density_g_per_ml, dtype=float)
    labels = np.full(rho.shape, -1, dtype=np.int16)
    for m, lo, hi in _class_bounds():
        labels[(rho >= lo) & (rho < hi)] = m.label
    return labels


@dataclass(frozen=True)
class MCPhantom:
    """What the transport sees: a medium and a density per voxel.

    Attributes
    ----------
    media
        The media present, in the order of ompmc's material index (1-based).
    material_index
        int32 ``[slice, row, col]``: index into ``media`` counting from 1.
    density_g_per_ml
        float64 ``[slice, row, col]`` mass density used by the transport and for voxel masses.
    source
        ``"density"``, ``"labels"``, ``"labels+density"`` or ``"default soft tissue"``.
    """

    media: tuple[Medium, ...]
    material_index: np.ndarray
    density_g_per_ml: np.ndarray
    source: str

    def labels(self) -> np.ndarray:
        """Material labels (``mc_media.csv``) per voxel."""
        lut = np.array([m.label for m in self.media], dtype=np.int16)
        return lut[self.material_index - 1]

    def media_map(self) -> dict[int, str]:
        """ompmc material index -> PEGS medium (for the provenance)."""
        return {i + 1: m.pegs_medium for i, m in enumerate(self.media)}


def _check_density(density: Volume, reference: Volume) -> np.ndarray:
    if density.unit == "HU":
        raise UnitError(
            "density is in HU; convert CT numbers to mass density first: "
            "dosimetry.hu_to_density(ct) (Schneider et al. 2000 or your scanner's curve)"
        )
    if density.unit != "g/mL":
        raise UnitError(f"density must be in 'g/mL', got {density.unit!r}")
    reference.check_same_grid(density, "density")
    rho = np.asarray(density.array, dtype=np.float64)
    bad = ~np.isfinite(rho) | (rho <= 0)
    if np.any(bad):
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputDataError(
            f"density must be finite and > 0 g/mL in every voxel (air is ~0.0012 g/mL); "
            f"{int(bad.sum())} voxel(s) are not (first at index {first}: {rho[first]!r}). "
            "Fill them, e.g. with parameters.get('density_air_g_per_ml')."
        )
    return rho


def mc_phantom(
    reference: Volume,
    density: Volume | None = None,
    materials: Volume | None = None,
    material_labels: Mapping[int, str] | None = None,
) -> MCPhantom:
    """Media and densities on ``reference``'s grid (see the module docstring).

    Parameters
    ----------
    reference
        The grid (the TIA map).
    density
        Mass density map (g/mL) on that grid.
    materials
        Label map on that grid (integer values, unit ``"1"``): the labels of
        ``mc_media.csv`` or, with ``material_labels``, the caller's own.
    material_labels
        The caller's label value -> medium name (``"air"``, ``"lung"``, ``"soft tissue"``,
        ``"bone"``, ``"water"``).

    Returns
    -------
    MCPhantom

    Raises
    ------
    UnitError
        ``density`` not in g/mL (HU: convert first).
    GeometryMismatchError
        A map is not on ``reference``'s grid.
    InputDataError
        Non-finite or non-positive densities; non-integer or unknown labels.
    """
    rho: np.ndarray | None = None
    if density is not None:
        rho = _check_density(density, reference)
    if materials is not None:
        reference.check_same_grid(materials, "materials")
        lab = np.asarray(materials.array)
        if not np.issubdtype(lab.dtype, np.integer):
            if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
                raise InputDataError(
                    "materials must hold integer labels (0 air, 1 lung, 2 soft tissue, "
                    "3 bone, 4 water, or your own with material_labels=)"
                )
            lab = lab.astype(np.int64)
        mapping = (
            {m.label: m for m in media()}
            if material_labels is None
            else {int(k): medium(v) for k, v in material_labels.items()}
        )
        present = np.unique(lab)
        unknown = [int(v) for v in present if int(v) not in mapping]
        if unknown:
            raise InputDataError(
                f"materials holds label(s) {unknown} that name no medium; known labels: "
                + ", ".join(f"{k} ({m.name})" for k, m in sorted(mapping.items()))
                + ". Pass material_labels={label: medium name} for your own labels."
            )
        used = sorted({mapping[int(v)].label for v in present})
        used_media = tuple(medium(v) for v in used)
        index_of = {m.label: i + 1 for i, m in enumerate(used_media)}
        lut_keys = np.array(sorted(mapping), dtype=np.int64)
        lut_vals = np.array([index_of.get(mapping[int(k)].label, 0) for k in lut_keys])
        idx = lut_vals[np.searchsorted(lut_keys, lab)].astype(np.int32)
        if rho is None:
            nominal = np.array([m.nominal_density_g_per_ml for m in used_media])
            rho = nominal[idx - 1]
            source = "labels"
        else:
            source = "labels+density"
        return MCPhantom(used_media, idx, np.asarray(rho, dtype=np.float64), source)
    if rho is None:
        rho = np.full(reference.shape, parameters.get("density_soft_tissue_g_per_ml"))
        tissue = medium("soft tissue")
        log.info(
            "no density or material map: the Monte Carlo transports in %s at %.3g g/mL",
            tissue.pegs_medium,
            float(rho.flat[0]),
        )
        return MCPhantom((tissue,), np.ones(reference.shape, np.int32), rho, "default soft tissue")
    labels = classify_density(rho)
    if np.any(labels < 0):
        raise InputDataError(
            "the density classes leave densities unclassified (first "
            f"{float(rho[labels < 0].flat[0]):.4g} g/mL): check the overrides of "
            + ", ".join(
                sorted(
                    {
                        n
                        for m in media()
                        for n in (m.density_min_parameter, m.density_max_parameter)
                        if n
                    }
                )
            )
        )
    used = sorted(int(v) for v in np.unique(labels))
    used_media = tuple(medium(v) for v in used)
    lut = np.zeros(max(used) + 1, dtype=np.int32)
    for i, v in enumerate(used):
        lut[v] = i + 1
    return MCPhantom(used_media, lut[labels], rho, "density")
