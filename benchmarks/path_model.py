"""Refit the cost model of the automatic direct/FFT path choice (not a test).

``python benchmarks/path_model.py [--repeats 9]`` times both paths of
``dosimetry.engine.convolve`` on the benchmark maps (realistic 20 % non-zero and lesion
maps 2 %, 0.5 %, 0.1 %; 128^3 and 160x256x256) with kernels of side 7, 11 and 15, in
float32 and float64, fits ``t_direct = a * ops + r * visits + d * voxels`` and
``t_fft = c * units + e * taps + d * voxels`` (one per-voxel cost) jointly by
non-negative relative least squares (``ops``,
``visits``, ``units``, ``taps`` from :func:`dosimetry.engine.convolve.work_counts`), and
prints the constants with the
cases in which the fitted and the current model would choose the slower path. Copy the
constants into ``dosimetry/engine/convolve.py`` when they differ on your machine.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from functools import partial
from typing import Any

import numpy as np
from engine import lesion_map, realistic_map, synthetic_kernel
from scipy.optimize import nnls

from dosimetry.engine import convolve

# the module (its name is shadowed by the function in the package namespace)
conv = importlib.import_module("dosimetry.engine.convolve")


def _median(fn: Any, repeats: int) -> float:
    fn()  # warm: compiled code loaded, kernel spectrum cached
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fit(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Non-negative relative least squares: min sum ((x @ c) / t - 1)^2 with c >= 0."""
    coef, _ = nnls(x / t[:, None], np.ones_like(t))
    return coef


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    cases: list[tuple[str, str, int, str, float, float, float, float, float, float, float]] = []
    for shape in [(128, 128, 128), (160, 256, 256)]:
        maps = {
            "20%": realistic_map(shape),
            "2%": lesion_map(shape, 0.02),
            "0.5%": lesion_map(shape, 0.005),
            "0.1%": lesion_map(shape, 0.001),
        }
        for name, m in maps.items():
            for side in (7, 11, 15):
                k = synthetic_kernel(side)
                ext = conv._numba.row_extents(m)
                for dt in ("float32", "float64"):
                    ops, visits, units, taps = conv.work_counts(k.shape, ext, True, dt)
                    td = _median(partial(convolve, m, k, "direct", dt), args.repeats)
                    tf = _median(partial(convolve, m, k, "fft", dt), args.repeats)
                    label = "x".join(map(str, shape[::-1]))
                    cases.append(
                        (label, name, side, dt, ops, units, float(m.size), td, tf, visits, taps)
                    )
                    print(
                        f"{label:12s} {name:5s} side {side:2d} {dt}: direct {td * 1e3:7.2f} ms, "
                        f"fft {tf * 1e3:7.2f} ms",
                        flush=True,
                    )
    for dt in ("float32", "float64"):
        rows = [c for c in cases if c[3] == dt]
        ops = np.array([c[4] for c in rows])
        units = np.array([c[5] for c in rows])
        vox = np.array([c[6] for c in rows])
        td = np.array([c[7] for c in rows])
        tf = np.array([c[8] for c in rows])
        visits = np.array([c[9] for c in rows])
        taps = np.array([c[10] for c in rows])
        # one per-voxel cost for both paths (both write the whole output once after the
        # same validating scan), so that the choice for small sources rests on the work
        # that differs; direct rows then FFT rows, relative errors
        zero = np.zeros_like(ops)
        x = np.r_[np.c_[ops, visits, zero, zero, vox], np.c_[zero, zero, units, taps, vox]]
        a, r, c, e, d = _fit(x, np.r_[td, tf])
        b = d
        models = {
            "fitted": (a, r, b, c, e, d),
            "current": (
                conv._DIRECT_S_PER_OP[dt],
                conv._DIRECT_S_PER_ROW[dt],
                conv._DIRECT_S_PER_VOXEL[dt],
                conv._FFT_S_PER_UNIT[dt],
                conv._FFT_S_PER_TAP[dt],
                conv._FFT_S_PER_VOXEL[dt],
            ),
        }
        print(
            f"\n{dt}: fitted direct {a:.2g} s/op + {r:.2g} s/row + {b:.2g} s/voxel; "
            f"fft {c:.2g} s/unit + {e:.2g} s/tap + {d:.2g} s/voxel"
        )
        for label, (pa, pr, pb, pc, pe, pd) in models.items():
            pick_direct = pa * ops + pr * visits + pb * vox <= pc * units + pe * taps + pd * vox
            wrong = [
                f"{r[0]} {r[1]} side {r[2]} ({max(r[7], r[8]) / min(r[7], r[8]):.2f}x slower)"
                for r, p in zip(rows, pick_direct, strict=True)
                if p != (r[7] <= r[8])
            ]
            print(
                f"  {label} model: {len(rows) - len(wrong)}/{len(rows)} right; {', '.join(wrong)}"
            )


if __name__ == "__main__":
    main()
