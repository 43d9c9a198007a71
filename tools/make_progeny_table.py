"""Write dosimetry/data/progeny_icrp107/progeny.csv from the radioactivedecay package.

The workbench needs, for every ICRP-107 nuclide, its direct progeny with branching
fractions and decay modes, and the half-life of each daughter (stable daughters have an
infinite half-life). radioactivedecay ships exactly this (its ICRP-107-based default data
set) but importing it costs seconds (it pulls sympy, pandas, matplotlib), so the planning
path reads this table instead. tests/nuclides/test_progeny_table.py checks the table
against radioactivedecay row by row.

    python tools/make_progeny_table.py
"""

from __future__ import annotations

import csv
import io
import json
import math
from importlib import resources
from pathlib import Path

import radioactivedecay as rd

OUT = Path(__file__).resolve().parents[1] / "dosimetry" / "data" / "progeny_icrp107"


def rows() -> list[dict[str, str]]:
    folder = resources.files("icrp107_database").joinpath("icrp107")
    names = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))
    out = []
    for parent in names:
        try:
            n = rd.Nuclide(parent)
        except ValueError:
            continue
        for d, b, m in zip(n.progeny(), n.branching_fractions(), n.decay_modes(), strict=True):
            try:
                t = float(rd.Nuclide(d).half_life("s"))
            except ValueError:
                t = math.inf
            out.append(
                {
                    "parent": parent,
                    "daughter": str(d),
                    "branching_fraction": repr(float(b)),
                    "decay_mode": str(m),
                    "daughter_half_life_s": "inf" if math.isinf(t) else repr(t),
                }
            )
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(
        buf,
        fieldnames=[
            "parent",
            "daughter",
            "branching_fraction",
            "decay_mode",
            "daughter_half_life_s",
        ],
        lineterminator="\n",
    )
    w.writeheader()
    for r in rows():
        w.writerow(r)
    (OUT / "progeny.csv").write_text(buf.getvalue(), encoding="utf-8")
    (OUT / "manifest.json").write_text(
        json.dumps(
            {
                "source": "radioactivedecay default data set",
                "dataset": getattr(getattr(rd, "DEFAULTDATA", None), "dataset_name", "unknown"),
                "radioactivedecay_version": rd.__version__,
                "generator": "tools/make_progeny_table.py",
                "licence": "radioactivedecay: MIT; decay data ICRP Publication 107 (2008), "
                "AME2020/NUBASE2020 for stable-nuclide masses",
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
