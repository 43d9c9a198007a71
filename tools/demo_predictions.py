"""Write the demo's voxel-level 177Lu-PSMA-617 predictions into docs/literature_doses.md.

Runs the PET plan (the demo's defaults: VSV, agent-pair relations) on the phantom patient
with 68Ga-PSMA-11 and with 18F-PSMA-1007 as the diagnostic, and replaces the section
between the markers ``<!-- demo-predictions:start -->`` and ``<!-- demo-predictions:end -->``
with a table of organ doses (Gy/GBq, mass-weighted over the organ's VOIs, lesions
subtracted) beside the literature ranges of the same file's table.

    python tools/demo_predictions.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import dosimetry as ds
import phantoms
from dosimetry.kinetics import literature_dose_range
from dosimetry.workflows import pet_plan

DOC = Path(__file__).resolve().parents[1] / "docs" / "literature_doses.md"
START, END = "<!-- demo-predictions:start -->", "<!-- demo-predictions:end -->"
ORGANS = {
    "kidneys": "kidneys",
    "salivary_glands": "salivary_glands",
    "lacrimal_glands": "lacrimal_glands",
    "liver": "liver",
    "spleen": "spleen",
    "bone_marrow": "red_marrow",
}


def _organ(result, organ):
    rows = [r for r in result.table if r.organ == organ and r.role != "lesion"]
    if not rows:
        return None
    mean = sum(r.mass_g * r.dose.mean for r in rows) / sum(r.mass_g for r in rows)
    return result.table.per_activity(mean, "GBq")


def main() -> None:
    results = {}
    for tracer in ("Ga-68-PSMA-11", "F-18-PSMA-1007"):
        folder = Path(tempfile.mkdtemp()) / "study"
        phantoms.write_pet_ct_study(folder, seed=0, tracer=tracer)
        results[tracer] = pet_plan.run(
            ds.load_study(folder), therapy="Lu-177-PSMA-617", activity="7.4 GBq"
        )
    lines = [
        START,
        "",
        "## 8. The demo's voxel-level predictions",
        "",
        "`dosimetry demo` (VSV with the default kernel, agent-pair relations, organs minus",
        "lesions) on the phantom patient, ¹⁷⁷Lu-PSMA-617 per administered GBq, beside the",
        "literature (cohort means; patient range). Written by `tools/demo_predictions.py`;",
        "`tests/workflows/test_projection_literature.py` checks them against the patient ranges.",
        "",
        "| organ | ⁶⁸Ga-PSMA-11 | ¹⁸F-PSMA-1007 | cohort means | patient range |",
        "|---|---:|---:|---|---|",
    ]
    for organ, lit in ORGANS.items():
        try:
            lo, hi, n = literature_dose_range("Lu-177-PSMA-617", lit)
            plo, phi, _ = literature_dose_range("Lu-177-PSMA-617", lit, kind="patients")
            cohorts, patients = f"{lo:g}-{hi:g} ({n})", f"{plo:g}-{phi:g}"
        except ds.DosimetryError:
            cohorts, patients = "none found", "-"
        vals = [_organ(results[t], organ) for t in results]
        cells = ["-" if v is None else f"{v:.3f}" for v in vals]
        lines.append(f"| {organ} | {cells[0]} | {cells[1]} | {cohorts} | {patients} |")
    lines += ["", END]
    text = DOC.read_text(encoding="utf-8")
    block = "\n".join(lines)
    if START in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
