"""Validation table: dpk kernels vs the Lanconelli 2012 database (``python -m dosimetry.kernels.validate [bone]``).

Prints a Markdown table (soft tissue, or bone with the argument ``bone``; 3.00, 4.80,
6.00 mm; its seven nuclides): ratio
ours/published for the self voxel and the face (0,0,1), edge (0,1,1), corner (1,1,1) and
(0,0,2) neighbours, for our kernel without conversion/Auger electrons (what the database's
source terms hold); the energy per decay by which the database exceeds that kernel in the
source voxel and in the whole 11 x 11 x 11 block; and the full kernel's self-voxel excess
with the conversion + Auger share that explains it.
"""

from __future__ import annotations

import sys

import numpy as np

from ..nuclides import nuclide
from ..units import MEV_TO_J
from ._lanconelli import lanconelli_kernel
from ._vsv import vsv_kernel

__all__ = ["rows", "markdown"]

NUCLIDES = ("Sr-89", "Y-90", "I-131", "Sm-153", "Lu-177", "Re-186", "Re-188")
SIZES = (3.00, 4.80, 6.00)
OFFSETS = ((0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1), (0, 0, 2))


def _block(a: np.ndarray) -> np.ndarray:
    """The central 11 x 11 x 11 block of a kernel."""
    c = a.shape[0] // 2
    return a[c - 5 : c + 6, c - 5 : c + 6, c - 5 : c + 6]


#: medium of our kernels -> the database's (its bone is ICRU compact bone, ours ICRP
#: cortical bone: both 1.85 g/cm3, different compositions)
MEDIA = {"soft tissue": "soft tissue", "bone": "bone"}


def rows(medium: str = "soft tissue") -> list[dict[str, object]]:
    """One dict per (nuclide, voxel size) with ratios ours/published and energy budgets."""
    if medium not in MEDIA:
        raise ValueError(f"medium must be one of {', '.join(MEDIA)}")
    out = []
    for name in NUCLIDES:
        nuc = nuclide(name)
        e_ce = nuc.energy_per_decay_mev("IE") + nuc.energy_per_decay_mev("auger")
        for v in SIZES:
            ref = lanconelli_kernel(name, v, medium=MEDIA[medium]).array
            radius = 5.0 * np.sqrt(3.0) * v * 1.001  # the whole published 11^3 block
            part_k = vsv_kernel(name, v, medium=medium, exclude=("ce_auger",), radius_mm=radius)
            part = _block(part_k.array)
            full = _block(vsv_kernel(name, v, medium=medium, radius_mm=radius).array)
            kev = part_k.voxel_mass_kg / MEV_TO_J * 1e3  # Gy per decay -> keV per decay
            c = 5
            ratios = []
            for o in OFFSETS:
                r = ref[c + o[0], c + o[1], c + o[2]]
                p = part[c + o[0], c + o[1], c + o[2]]
                ratios.append(float(p / r) if r > 0 else float("nan"))
            self_ref = ref[c, c, c]
            out.append(
                {
                    "nuclide": name,
                    "voxel_mm": v,
                    "ratios": ratios,
                    "neigh_above_1e-3": [
                        bool(ref[c + o[0], c + o[1], c + o[2]] >= 1e-3 * self_ref) for o in OFFSETS
                    ],
                    "db_excess_self_kev": float((self_ref - part[c, c, c]) * kev),
                    "db_excess_block_kev": float((ref.sum() - part.sum()) * kev),
                    "full_self_excess": float(full[c, c, c] / self_ref - 1.0),
                    "ce_auger_self_share": float((full[c, c, c] - part[c, c, c]) / part[c, c, c]),
                    "ce_auger_mev": e_ce,
                }
            )
    return out


def markdown(medium: str = "soft tissue") -> str:
    """The validation table as Markdown."""
    lines = [
        "| nuclide | voxel (mm) | self | (0,0,1) | (0,1,1) | (1,1,1) | (0,0,2) "
        "| DB - ours, self (keV/decay) | DB - ours, 11^3 block (keV/decay) "
        "| full kernel self vs DB | CE+Auger adds to self | CE+Auger (keV/decay) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows(medium):
        cells = []
        for val, big in zip(r["ratios"], r["neigh_above_1e-3"], strict=True):  # type: ignore[call-overload]
            cells.append(f"{val:.3f}" + ("" if big else "*"))
        lines.append(
            f"| {r['nuclide']} | {r['voxel_mm']:.2f} | "
            + " | ".join(cells)
            + f" | {float(r['db_excess_self_kev']):+.1f} | {float(r['db_excess_block_kev']):+.1f}"  # type: ignore[arg-type]
            + f" | {100 * float(r['full_self_excess']):+.1f} % | "  # type: ignore[arg-type]
            f"{100 * float(r['ce_auger_self_share']):+.1f} % | {1e3 * float(r['ce_auger_mev']):.1f} |"  # type: ignore[arg-type]
        )
    lines.append("")
    lines.append(
        f"Ratios: our kernel without conversion/Auger electrons / Lanconelli 2012 ({medium}"
        + (
            "; ours ICRP cortical bone, theirs ICRU compact bone, both 1.85 g/cm3). "
            if medium == "bone"
            else "). "
        )
        + "`*`: published value below 1e-3 of the self value (outside the acceptance criterion). "
        "DB - ours: energy per decay deposited by the database's kernel minus ours (without "
        "conversion/Auger electrons), in the source voxel and in the whole published block."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown(" ".join(sys.argv[1:]) or "soft tissue") + "\n")
