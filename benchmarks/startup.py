"""Start-up costs a user waits for (issue #16 §4).

Measures, each in fresh subprocesses (median of repeats):

* ``import dosimetry`` (target <= 0.3 s), and which heavy modules it pulls in (it must import
  neither scipy.ndimage nor numba nor radioactivedecay);
* ``dosimetry --help`` and ``dosimetry plan --help`` (CLI start-up);
* the first small dose computation with an empty Numba cache against the same computation
  with the cache filled by ``dosimetry warmup`` (the compile cost moved to set-up time);
* whether a PET plan imports radioactivedecay (it must not).

Baseline for the ratios: ``python -c pass`` (interpreter start-up) measured in the same run.

    python benchmarks/startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _time(cmd: list[str], env: dict[str, str] | None = None, repeats: int = 5) -> float:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


FIRST_DOSE = (
    "import numpy as np, dosimetry as ds;"
    "t = ds.Volume.from_spacing(np.random.default_rng(0).random((40, 40, 40)) * 1e9, (4.0, 4.0, 4.0), unit='Bq s');"
    "ds.absorbed_dose(t, 'Lu-177', method='vsv')"
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    py = sys.executable
    base = _time([py, "-c", "pass"], repeats=args.repeats)
    imp = _time([py, "-c", "import dosimetry"], repeats=args.repeats)
    heavy = subprocess.run(
        [
            py,
            "-c",
            "import sys, dosimetry; print(','.join(m for m in ('scipy.ndimage', 'numba', "
            "'radioactivedecay', 'pydicom', 'matplotlib') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    cli = _time([py, "-m", "dosimetry.cli", "--help"], repeats=args.repeats)
    cli_plan = _time([py, "-m", "dosimetry.cli", "plan", "--help"], repeats=args.repeats)
    print(f"python -c pass                : {base:.3f} s (baseline)")
    print(f"import dosimetry              : {imp:.3f} s  ({imp - base:.3f} s over the interpreter)")
    print(f"  heavy modules imported      : {heavy or 'none'}")
    print(f"dosimetry --help              : {cli:.3f} s")
    print(f"dosimetry plan --help         : {cli_plan:.3f} s")
    cold_times, warm_times = [], []
    for _ in range(max(1, args.repeats // 3)):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            cold_times.append(_time([py, "-c", FIRST_DOSE], env=env, repeats=1))
            subprocess.run(
                [py, "-m", "dosimetry.cli", "warmup"], check=True, capture_output=True, env=env
            )
            warm_times.append(_time([py, "-c", FIRST_DOSE], env=env, repeats=1))
    cold, warm = statistics.median(cold_times), statistics.median(warm_times)
    print(f"first dose, empty Numba cache : {cold:.2f} s")
    print(f"first dose after warmup       : {warm:.2f} s  (cold / warm = {cold / warm:.1f}x)")
    plan_rd = (
        subprocess.run(
            [
                py,
                "-c",
                "import sys, tempfile, phantoms, dosimetry as ds;"
                "from dosimetry.workflows import pet_plan;"
                "d = tempfile.mkdtemp(); phantoms.write_pet_ct_study(d);"
                "pet_plan.run(ds.load_study(d), therapy='Lu-177-PSMA-617', activity='7.4 GBq', method='led');"
                "print('radioactivedecay' in sys.modules)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    print(f"a PET plan imports radioactivedecay: {plan_rd}")


if __name__ == "__main__":
    main()
