"""Validation of dose methods against direct Monte Carlo (``python -m dosimetry.mc.validate``).

* :func:`compare_layered` / :func:`layered_table`: ``method="vsv-density"`` and ``"vsv"``
  of :func:`dosimetry.absorbed_dose` against the kernel builder's direct runs across
  lung | soft tissue | bone layers (``tests/kernels/data/direct_layers``; docs/dose.md).
  Moved here from ``dosimetry.kernels.build`` so that ``kernels`` never imports ``dose``.
* :func:`slab_phantom`: the heterogeneous torso-slab phantom of the patient Monte Carlo's
  validation (lung with a soft-tissue lesion, a vertebra with a bone metastasis, a kidney,
  soft tissue, air around), with its regions; :func:`region_means` reduces a dose map to
  the regions' mass-weighted means, :func:`combine_parts` combines independent runs.

Command line::

    python -m dosimetry.mc.validate layered-table tests/kernels/data/direct_layers/*.npz

This module imports :mod:`dosimetry.dose` inside the functions that need it; nothing in
``dosimetry.dose`` imports it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..volume import Volume

__all__ = [
    "LAYER_OFFSETS",
    "compare_layered",
    "layered_table",
    "SlabPhantom",
    "slab_phantom",
    "REGIONS",
    "region_means",
    "combine_parts",
]

#: offsets (x, y, z) of the layered comparison; x runs across the layers
LAYER_OFFSETS: tuple[tuple[int, int, int], ...] = (
    (-2, 0, 0),
    (-1, 0, 0),
    (0, 0, 0),
    (1, 0, 0),
    (2, 0, 0),
    (0, 1, 0),
    (-1, 1, 0),
    (1, 1, 0),
)


def compare_layered(
    info: dict[str, Any],
) -> list[tuple[tuple[int, int, int], float, float, float, float]]:
    """Rows (offset, direct Gy/decay, relative sd, vsv-density / direct - 1, homogeneous
    soft-tissue vsv / direct - 1) for a combined layered run
    (``dosimetry.kernels.build.combine_direct_runs``): ``dosimetry.absorbed_dose`` of one
    decay in the source voxel with ``method="vsv-density"`` on the run's density map, and
    with ``method="vsv"`` (soft tissue)."""
    from ..dose import absorbed_dose

    s = info["svalue"]
    n = s.shape[0]
    c = n // 2
    v = info["voxel_mm"]
    tia = np.zeros((n, n, n))
    tia[c, c, c] = 1.0
    rho = np.broadcast_to(info["density_x"][:, None, None], (n, n, n)).copy()
    t = Volume.from_spacing(tia, spacing_mm=(v, v, v), unit="Bq s")
    dv = Volume.from_spacing(rho, spacing_mm=(v, v, v), unit="g/mL")
    het = absorbed_dose(t, info["nuclide"], method="vsv-density", density=dv).array
    hom = absorbed_dose(t, info["nuclide"], method="vsv").array
    rows = []
    for off in LAYER_OFFSETS:
        idx = (c + off[0], c + off[1], c + off[2])
        val = float(s[idx])
        rows.append(
            (off, val, float(info["sd"][idx]) / val, het[idx] / val - 1.0, hom[idx] / val - 1.0)
        )
    return rows


def layered_table(files: list[Path]) -> str:
    """Markdown table of :func:`compare_layered` for layered direct runs (docs/dose.md),
    one row per (nuclide, voxel size), the parts of a case combined."""
    from ..kernels.build import combine_direct_runs

    cases: dict[tuple[str, float], list[Path]] = {}
    for f in files:
        with np.load(f) as d:
            cases.setdefault((str(d["nuclide"]), float(d["voxel_mm"])), []).append(f)
    head = ["x=-2 (lung)", "x=-1 (lung)", "self", "x=+1 (bone)", "x=+2 (bone)"]
    head += ["in-plane face", "lung edge", "bone edge"]
    lines = [
        "| nuclide | voxel (mm) | histories | method | " + " | ".join(head) + " |",
        "|" + "---|" * (len(head) + 4),
    ]
    for (nuc, v), fs in sorted(cases.items()):
        info = combine_direct_runs(sorted(fs))
        rows = compare_layered(info)
        rel = [f"{r[1] / rows[2][1]:.1e}" for r in rows]
        lines.append(
            f"| {nuc} | {v:.2f} | {info['histories'] / 1e6:g} M | direct / self | "
            + " | ".join(rel)
            + " |"
        )
        for name, col in (("vsv-density", 3), ("vsv (soft tissue)", 4)):
            cells = [f"{100 * r[col]:+.1f} %" for r in rows]
            lines.append(f"| | | | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- phantom
#: regions of :func:`slab_phantom` compared between methods (docs/dose.md)
REGIONS: tuple[str, ...] = (
    "lung lesion",
    "lung shell",
    "lung",
    "bone metastasis",
    "normal bone",
    "bone shell",
    "kidney",
    "background",
    "body surface",
)


@dataclass(frozen=True)
class SlabPhantom:
    """A heterogeneous validation phantom: density, material labels, TIA and regions.

    Attributes
    ----------
    density
        g/mL: air 0.0012, lung 0.26, soft tissue 1.04 (lesion, kidney, body), bone 1.5.
    materials
        Labels of ``dosimetry/data/mc_media.csv`` (0 air, 1 lung, 2 soft tissue, 3 bone).
    tia
        Relative decays per voxel, ``"Bq s"`` (one parent decay per unit): lesion 100,
        bone metastasis 60, kidney 20, normal bone 1, background 0.25, lung 0.05, air 0.
    regions
        ``{name: bool mask}`` (:data:`REGIONS`): ``lung shell`` is the lung voxels sharing a
        face, edge or corner with the lesion, ``lung`` the other lung voxels; ``bone shell``
        the soft-tissue voxels touching bone; ``background`` the soft tissue at least two
        voxels from lung, bone, air and the hot organs; ``body surface`` the soft-tissue
        voxels touching air.
    """

    density: Volume
    materials: Volume
    tia: Volume
    regions: Mapping[str, Volume]


def slab_phantom(voxel_mm: float = 4.42, shape: tuple[int, int, int] = (32, 44, 56)) -> SlabPhantom:
    """The validation phantom (axes: slices, rows = anterior-posterior, columns = right-left).

    A body (elliptic cylinder along the slices, 2 voxels of air around it), a lung
    (ellipsoid, 0.26 g/mL) holding a 2 cm soft-tissue lesion, a vertebra (cylinder of bone
    at 1.5 g/mL) holding a 1.6 cm bone metastasis, and a kidney (ellipsoid). Its geometry
    is analytic in millimetres, so other voxel sizes describe the same object.
    """
    n0, n1, n2 = shape
    z, y, x = np.meshgrid(
        (np.arange(n0) - (n0 - 1) / 2) * voxel_mm,
        (np.arange(n1) - (n1 - 1) / 2) * voxel_mm,
        (np.arange(n2) - (n2 - 1) / 2) * voxel_mm,
        indexing="ij",
    )
    half_y, half_x = (n1 / 2 - 2) * voxel_mm, (n2 / 2 - 2) * voxel_mm
    body = (y / half_y) ** 2 + (x / half_x) ** 2 <= 1.0
    lung = ((z / 60.0) ** 2 + ((y + 10.0) / 55.0) ** 2 + ((x + 55.0) / 40.0) ** 2) <= 1.0
    lesion = (z**2 + (y + 10.0) ** 2 + (x + 55.0) ** 2) <= 10.0**2
    bone = ((y - 55.0) ** 2 + x**2 <= 18.0**2) & body
    metastasis = (z**2 + (y - 55.0) ** 2 + (x + 4.0) ** 2) <= 8.0**2
    kidney = (((z - 10.0) / 40.0) ** 2 + ((y - 35.0) / 22.0) ** 2 + ((x - 60.0) / 25.0) ** 2) <= 1.0
    labels = np.zeros(shape, dtype=np.int16)
    labels[body] = 2
    labels[lung & body] = 1
    labels[lesion] = 2
    labels[bone] = 3
    labels[kidney & ~bone] = 2
    rho = np.choose(labels, [0.00120479, 0.26, 1.04, 1.5])
    tia = np.zeros(shape)
    tia[body] = 0.25
    tia[lung & body] = 0.05
    tia[bone] = 1.0
    tia[kidney & ~bone] = 20.0
    tia[lesion] = 100.0
    tia[metastasis & bone] = 60.0
    struct = np.ones((3, 3, 3), bool)
    lung_only = (labels == 1) & ~lesion
    shell = ndimage.binary_dilation(lesion, struct) & lung_only
    near = ndimage.binary_dilation(
        (labels != 2) | kidney | lesion, struct, iterations=2
    )  # two voxels from anything but plain soft tissue
    air = labels == 0
    tissue = (labels == 2) & ~lesion & ~kidney
    regions_np = {
        "lung lesion": lesion,
        "lung shell": shell,
        "lung": lung_only & ~shell,
        "bone metastasis": metastasis & bone,
        "normal bone": bone & ~metastasis,
        "bone shell": tissue & ndimage.binary_dilation(bone, struct),
        "kidney": kidney & ~bone,
        "background": (labels == 2) & ~near & body,
        "body surface": tissue & ndimage.binary_dilation(air, struct),
    }
    sp = (voxel_mm, voxel_mm, voxel_mm)
    return SlabPhantom(
        density=Volume.from_spacing(rho, sp, unit="g/mL"),
        materials=Volume.from_spacing(labels, sp, unit="1"),
        tia=Volume.from_spacing(tia, sp, unit="Bq s"),
        regions={k: Volume.from_spacing(v, sp, unit="1") for k, v in regions_np.items()},
    )


def region_means(dose: Volume, regions: Mapping[str, Volume], density: Volume) -> dict[str, float]:
    """Mass-weighted mean dose of each region (the dose's unit)."""
    rho = np.asarray(density.array, dtype=float)
    out = {}
    for name, mask in regions.items():
        w = np.asarray(mask.array, dtype=float) * rho
        out[name] = float(np.sum(w * dose.array) / np.sum(w))
    return out


def combine_parts(
    parts: Sequence[Mapping[str, Mapping[str, float]]],
) -> dict[str, tuple[float, float]]:
    """Region means and standard uncertainties of independent runs combined with weights
    by their histories: ``parts`` are ``{"histories": {"n": N}, "mean": {region: value},
    "sd": {region: sd}}`` records; returns ``{region: (mean, sd)}``.

    >>> p1 = {"histories": {"n": 1}, "mean": {"a": 1.0}, "sd": {"a": 0.2}}
    >>> p2 = {"histories": {"n": 1}, "mean": {"a": 3.0}, "sd": {"a": 0.2}}
    >>> m, s = combine_parts([p1, p2])["a"]
    >>> round(m, 6), round(s, 6)
    (2.0, 0.141421)
    """
    if not parts:
        return {}
    n = np.array([float(p["histories"]["n"]) for p in parts])
    w = n / n.sum()
    out = {}
    for region in parts[0]["mean"]:
        m = np.array([float(p["mean"][region]) for p in parts])
        s = np.array([float(p["sd"][region]) for p in parts])
        out[region] = (float(np.sum(w * m)), float(np.sqrt(np.sum((w * s) ** 2))))
    return out


def _main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m dosimetry.mc.validate")
    sub = ap.add_subparsers(dest="cmd", required=True)
    lt = sub.add_parser("layered-table", help="layered direct runs vs vsv-density (markdown)")
    lt.add_argument("files", type=Path, nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "layered-table":
        print(layered_table(list(args.files)))


if __name__ == "__main__":
    _main()
