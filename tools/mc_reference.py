"""Reference Monte Carlo of the heterogeneous validation phantom (resumable).

Runs :func:`dosimetry.mc.patient_dose` on :func:`dosimetry.mc.validate.slab_phantom`
(4.42 mm voxels; lung with a soft-tissue lesion, vertebra with a bone metastasis, kidney,
soft tissue, air) with FULL transport (``range_rejection=False``: no variance reduction),
in independent parts of a fixed number of histories, each with its own seed
(``10000 + part``). Every finished part writes one small JSON file (region means, their
standard uncertainties from the part's 10 batches, histories, seed, wall time, ompmc
version) to the output folder; a part whose file exists is skipped, so the run can be
stopped and resumed, and the files can be committed as they arrive. The tests
(tests/mc/test_reference.py) combine the parts (:func:`dosimetry.mc.validate.combine_parts`).

    python tools/mc_reference.py run --nuclide Lu-177 --parts 40 --histories 1000000
    python tools/mc_reference.py run --nuclide Y-90 --parts 40 --histories 250000
    python tools/mc_reference.py run --nuclide Ac-225 --parts 20 --histories 500000
    python tools/mc_reference.py table            # combined region means (markdown)
    python tools/mc_reference.py methods          # kernel methods vs the reference (markdown)
    python tools/mc_reference.py bands            # -> dosimetry/data/mc_kernel_error_bands.csv
    python tools/mc_reference.py compare          # CI-sized runs (tests/mc) vs the reference

``--workers`` sets the worker processes (default 1, to leave cores to others).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from dosimetry.mc import patient_dose
from dosimetry.mc.validate import REGIONS, combine_parts, region_means, slab_phantom

OUT = Path(__file__).resolve().parents[1] / "tests" / "mc" / "data" / "slab_reference"
SEED0 = 10_000
CHAIN = {"Ac-225": True}
log = logging.getLogger("mc_reference")


def part_file(out: Path, nuclide: str, part: int) -> Path:
    return out / f"{nuclide}_part{part:03d}.json"


def run(nuclide: str, parts: int, histories: int, out: Path, workers: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ph = slab_phantom()
    for k in range(parts):
        f = part_file(out, nuclide, k)
        if f.exists():
            continue
        t0 = time.perf_counter()
        r = patient_dose(
            ph.tia,
            nuclide,
            density=ph.density,
            chain=CHAIN.get(nuclide, False),
            histories=histories,
            batches=10,
            seed=SEED0 + k,
            target_vois=ph.regions,
            range_rejection=False,
            stratified=False,
            workers=workers,
        )
        rec = {
            "nuclide": nuclide,
            "chain": CHAIN.get(nuclide, False),
            "part": k,
            "seed": SEED0 + k,
            "histories": {"n": r.histories},
            "batches": r.batches,
            "range_rejection": False,
            "stratified": False,
            "phantom": "dosimetry.mc.validate.slab_phantom() (4.42 mm, 32x44x56)",
            "unit": "Gy per unit of the phantom's relative TIA (Bq s)",
            "mean": dict(r.voi_mean_dose),
            "sd": {k2: r.voi_mean_dose[k2] * u for k2, u in r.voi_relative_uncertainty.items()},
            "alpha_mean": region_means(r.alpha_dose, ph.regions, ph.density),
            "ompmc_version": r.provenance["ompmc_version"],
            "wall_s": time.perf_counter() - t0,
            "energy_balance_j": r.provenance["energy_balance_j"],
        }
        tmp = f.with_suffix(".part")
        tmp.write_text(json.dumps(rec, indent=1, sort_keys=True))
        tmp.replace(f)
        log.info("%s part %d: %d histories in %.0f s", nuclide, k, r.histories, rec["wall_s"])


def load(out: Path, nuclide: str) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted(out.glob(f"{nuclide}_part*.json"))]


def table(out: Path) -> str:
    lines = [
        "| nuclide | histories | " + " | ".join(REGIONS) + " |",
        "|" + "---|" * (len(REGIONS) + 2),
    ]
    for nuc in ("Lu-177", "Y-90", "Ac-225"):
        parts = load(out, nuc)
        if not parts:
            continue
        c = combine_parts(parts)
        n = sum(p["histories"]["n"] for p in parts)
        cells = [f"{c[r][0]:.4g} ± {100 * c[r][1] / c[r][0]:.2f} %" for r in REGIONS]
        lines.append(f"| {nuc} | {n / 1e6:g} M | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: interface class of dosimetry.mc.heterogeneity -> the phantom's regions that measure it
BAND_REGIONS = {
    "soft tissue": ("kidney", "background"),
    "soft tissue next to lung": ("lung lesion",),
    "soft tissue next to bone": ("bone shell",),
    "soft tissue next to air": ("body surface",),
    "lung": ("lung",),
    "lung next to soft tissue": ("lung shell",),
    "bone": ("bone metastasis", "normal bone"),
}
BANDS_CSV = Path(__file__).resolve().parents[1] / "dosimetry" / "data" / "mc_kernel_error_bands.csv"


def method_errors(out: Path) -> dict[str, dict[str, dict[str, float]]]:
    """{nuclide: {method: {region: kernel method / reference - 1}}}."""
    import dosimetry as ds

    ph = slab_phantom()
    res: dict[str, dict[str, dict[str, float]]] = {}
    for nuc in ("Lu-177", "Y-90", "Ac-225"):
        parts = load(out, nuc)
        if not parts:
            continue
        ref = combine_parts(parts)
        chain = CHAIN.get(nuc, False)
        res[nuc] = {}
        for method, kw in (
            ("led", {"density": ph.density}),
            ("vsv", {}),
            ("vsv-density", {"density": ph.density}),
        ):
            d = ds.absorbed_dose(ph.tia, nuc, method=method, chain=chain, **kw)
            m = region_means(d, ph.regions, ph.density)
            res[nuc][method] = {r: m[r] / ref[r][0] - 1 for r in REGIONS}
    return res


def bands(out: Path) -> str:
    """The error-band table of dosimetry.mc.heterogeneity from the kernel methods' region
    errors: per nuclide, method and interface class, the lowest and highest error over the
    class's regions; and the rows of nuclide ``any`` (the envelope over the nuclides), used
    for nuclides the phantom was not run with."""
    errs = method_errors(out)
    counts = {n: sum(p["histories"]["n"] for p in load(out, n)) for n in errs}
    lines = [
        "# Estimated error of kernel-method region means against the patient Monte Carlo, per",
        "# interface class of a voxel (dosimetry.mc.heterogeneity): lowest and highest relative",
        "# error of the regions of the validation phantom dosimetry.mc.validate.slab_phantom()",
        "# (4.42 mm) that measure the class, per nuclide (Lu-177, Y-90, Ac-225 with its chain)",
        "# and as the envelope over them (nuclide 'any', for other nuclides). Reference:",
        "# full-transport Monte Carlo (ompmc 0.4.0), histories "
        + ", ".join(f"{n} {c / 1e6:g} M" for n, c in counts.items())
        + ";",
        "# tests/mc/data/slab_reference. Generated by: python tools/mc_reference.py bands.",
        "# This project's own measurement on one phantom (docs/dose.md), not a published bound.",
        "nuclide,method,interface_class,low,high,regions",
    ]
    for nuclide in (*errs, "any"):
        nucs = list(errs) if nuclide == "any" else [nuclide]
        for method in ("led", "vsv", "vsv-density"):
            for cls, regions in BAND_REGIONS.items():
                vals = [errs[n][method][r] for n in nucs for r in regions]
                lines.append(
                    f"{nuclide},{method},{cls},{min(vals):.3f},{max(vals):.3f},"
                    f"{' + '.join(regions)}"
                )
    return "\n".join(lines) + "\n"


#: the CI-sized runs of tests/mc/conftest.py (default variance reduction)
CI_HISTORIES = {"Lu-177": 300_000, "Y-90": 40_000, "Ac-225": 100_000}
CI_SEED = 7


def compare(out: Path) -> str:
    """The CI runs' region means against the reference: (CI / reference - 1) % and the
    deviation in combined standard deviations; and the energy balance of each run."""
    import math

    ph = slab_phantom()
    lines = [
        "| nuclide | histories | " + " | ".join(REGIONS) + " | energy balance |",
        "|" + "---|" * (len(REGIONS) + 3),
    ]
    mass = ph.density.array * ph.tia.voxel_volume_ml * 1e-3
    for nuc, n in CI_HISTORIES.items():
        parts = load(out, nuc)
        if not parts:
            continue
        ref = combine_parts(parts)
        r = patient_dose(
            ph.tia,
            nuc,
            density=ph.density,
            chain=CHAIN.get(nuc, False),
            histories=n,
            batches=10,
            seed=CI_SEED,
            target_vois=ph.regions,
        )
        cells = []
        for reg in REGIONS:
            m = r.voi_mean_dose[reg]
            sd = m * r.voi_relative_uncertainty[reg]
            z = (m - ref[reg][0]) / math.hypot(sd, ref[reg][1])
            cells.append(f"{100 * (m / ref[reg][0] - 1):+.1f} % ({z:+.1f} sd)")
        eb = r.provenance["energy_balance_j"]
        deposited = float((r.dose.array * mass).sum())
        balance = (deposited + eb["escaped"]) / eb["emitted"] - 1
        lines.append(
            f"| {nuc} | {n / 1e6:g} M | " + " | ".join(cells) + f" | {100 * balance:+.2f} % |"
        )
    return "\n".join(lines)


def methods(out: Path) -> str:
    """Region means of led, vsv and vsv-density relative to the reference (docs/dose.md)."""
    import dosimetry as ds

    ph = slab_phantom()
    lines = [
        "| nuclide | method | " + " | ".join(REGIONS) + " |",
        "|" + "---|" * (len(REGIONS) + 2),
    ]
    for nuc in ("Lu-177", "Y-90", "Ac-225"):
        parts = load(out, nuc)
        if not parts:
            continue
        ref = combine_parts(parts)
        chain = CHAIN.get(nuc, False)
        cells = [f"{100 * ref[r][1] / ref[r][0]:.2f} %" for r in REGIONS]
        lines.append(f"| {nuc} | reference 1 sd | " + " | ".join(cells) + " |")
        for method, kw in (
            ("led", {"density": ph.density}),
            ("vsv", {}),
            ("vsv-density", {"density": ph.density}),
        ):
            d = ds.absorbed_dose(ph.tia, nuc, method=method, chain=chain, **kw)
            m = region_means(d, ph.regions, ph.density)
            cells = [f"{100 * (m[r] / ref[r][0] - 1):+.1f} %" for r in REGIONS]
            lines.append(f"| | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("run")
    a.add_argument("--nuclide", required=True)
    a.add_argument("--parts", type=int, required=True)
    a.add_argument("--histories", type=int, required=True)
    a.add_argument("--workers", type=int, default=1)
    a.add_argument("--out", type=Path, default=OUT)
    t = sub.add_parser("table")
    t.add_argument("--out", type=Path, default=OUT)
    m = sub.add_parser("methods")
    m.add_argument("--out", type=Path, default=OUT)
    b = sub.add_parser("bands")
    b.add_argument("--out", type=Path, default=OUT)
    c = sub.add_parser("compare")
    c.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("dosimetry").setLevel(logging.WARNING)
    if args.cmd == "run":
        run(args.nuclide, args.parts, args.histories, args.out, args.workers)
    elif args.cmd == "table":
        print(table(args.out))
    elif args.cmd == "compare":
        print(compare(args.out))
    elif args.cmd == "bands":
        BANDS_CSV.write_text(bands(args.out))
        print(BANDS_CSV.read_text())
    else:
        print(methods(args.out))


if __name__ == "__main__":
    main()
