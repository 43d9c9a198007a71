"""Benchmark of the dose engine against scipy.signal.fftconvolve (not a test).

Run ``python benchmarks/engine.py --help``. For every map size and kernel side it prints
our time (auto path, and each path separately), the time of
``scipy.signal.fftconvolve(map, kernel, mode="same")`` on the same float32 map and the
same kernel cast to float32, measured in the same run, their ratio, the maximum
difference relative to the peak, and the peak memory (tracemalloc, NumPy/SciPy
allocations; Numba's per-thread buffers are small and not counted). Times are medians
over ``--repeats`` runs. Also: four time points convolved with one kernel (spectrum
reused), and ``absorbed_dose(..., method="vsv")`` end to end.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage, signal

SIZES = {
    "128": (128, 128, 128),
    "256x256x160": (160, 256, 256),
    "512x512x300": (300, 512, 512),
}


def realistic_map(shape: tuple[int, int, int], seed: int = 0, fraction: float = 0.2) -> np.ndarray:
    """float32 TIA-like map: a body (elliptic cylinder) with smooth uptake and hot blobs.

    About ``fraction`` of all voxels are non-zero: the body's background uptake is kept
    only where a smooth random field is high (organs), plus spherical hot lesions.
    """
    rng = np.random.default_rng(seed)
    n0, n1, n2 = shape
    k, j, i = np.ogrid[:n0, :n1, :n2]
    body = ((j - n1 / 2) / (0.36 * n1)) ** 2 + ((i - n2 / 2) / (0.45 * n2)) ** 2 <= 1.0
    body = np.broadcast_to(body, shape)
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=6)
    inside = field[body]
    thr = np.quantile(inside, 1.0 - fraction / body.mean())
    m = np.where(body & (field > thr), 1e6 * (1.0 + 20.0 * (field - thr) / field.std()), 0.0)
    for _ in range(12):  # lesions
        c = [rng.integers(s // 4, 3 * s // 4) for s in shape]
        r = rng.uniform(3, 10)
        sph = (k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= r * r
        m = np.where(sph, m + 2e7, m)
    return np.ascontiguousarray(m, dtype=np.float32)


def synthetic_kernel(side: int) -> np.ndarray:
    """Radially symmetric VSV-like kernel: sharp electron core + photon tail (arb. units)."""
    h = side // 2
    d = np.arange(-h, h + 1, dtype=float)
    r = np.sqrt(d[:, None, None] ** 2 + d[None, :, None] ** 2 + d[None, None, :] ** 2)
    return np.exp(-3.0 * r) + 1e-3 * np.exp(-0.05 * r) / (1.0 + r * r)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any, float]:
    """(median seconds, last result, peak MiB of traced allocations in one run)."""
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), out, peak / 2**20


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["128", "256x256x160"], choices=list(SIZES))
    ap.add_argument("--kernels", nargs="+", type=int, default=[11, 21, 41, 81])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--fraction", type=float, default=0.2, help="non-zero fraction of the map")
    ap.add_argument("--no-end-to-end", action="store_true")
    args = ap.parse_args(argv)

    import numba

    from dosimetry.engine import clear_spectrum_cache, convolve
    from dosimetry.engine.convolve import choose_path

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"numba threads {numba.get_num_threads()}, scipy.fft workers {args.workers}, "
        f"repeats {args.repeats} (medians)"
    )
    # compile once outside the timings
    warm = np.zeros((8, 8, 8), np.float32)
    warm[4, 4, 4] = 1
    convolve(warm, synthetic_kernel(3), path="direct", dtype="float32")
    hdr = (
        f"{'map':>12} {'nz%':>5} {'kernel':>6} {'auto':>6} {'ours s':>8} {'direct s':>9} "
        f"{'fft s':>8} {'fft 1st':>8} {'scipy s':>8} {'ratio':>6} {'maxdiff/peak':>12} "
        f"{'ourMiB':>7} {'scipyMiB':>8} {'mapMiB':>6}"
    )
    print(hdr)
    for size in args.sizes:
        shape = SIZES[size]
        tia = realistic_map(shape, fraction=args.fraction)
        nz = 100.0 * np.count_nonzero(tia) / tia.size
        for side in args.kernels:
            k64 = synthetic_kernel(side)
            k32 = k64.astype(np.float32)
            t_sp, ref, mem_sp = timed(
                lambda k32=k32: signal.fftconvolve(tia, k32, mode="same"), args.repeats
            )
            auto = choose_path(tia, k64, "auto", "float32")
            clear_spectrum_cache()
            t0 = time.perf_counter()
            convolve(tia, k64, path="fft", dtype="float32", workers=args.workers)
            t_first = time.perf_counter() - t0
            t_fft, out_fft, mem_fft = timed(
                lambda k64=k64: convolve(
                    tia, k64, path="fft", dtype="float32", workers=args.workers
                ),
                args.repeats,
            )
            if side <= 21 or args.fraction <= 0.2:
                t_dir, out_dir, mem_dir = timed(
                    lambda k64=k64: convolve(tia, k64, path="direct", dtype="float32"),
                    max(1, args.repeats if side <= 21 else 1),
                )
            else:
                t_dir, out_dir, mem_dir = float("nan"), None, float("nan")
            ours = t_fft if auto == "fft" else t_dir
            out = out_fft if auto == "fft" else out_dir
            mem = mem_fft if auto == "fft" else mem_dir
            peak = float(np.max(np.abs(ref)))
            diff = float(np.max(np.abs(out.astype(np.float64) - ref))) / peak
            print(
                f"{size:>12} {nz:5.1f} {side:>6} {auto:>6} {ours:8.3f} {t_dir:9.3f} {t_fft:8.3f} "
                f"{t_first:8.3f} {t_sp:8.3f} {t_sp / ours:6.2f} {diff:12.2e} {mem:7.0f} "
                f"{mem_sp:8.0f} {tia.nbytes / 2**20:6.0f}",
                flush=True,
            )
        # four time points, one kernel: spectrum computed once, reused
        side = 41 if 41 in args.kernels else args.kernels[0]
        k64 = synthetic_kernel(side)
        k32 = k64.astype(np.float32)
        maps = [tia * np.float32(0.5**t) for t in range(4)]
        clear_spectrum_cache()

        def ours4(k64: np.ndarray = k64) -> list[np.ndarray]:
            return [convolve(m, k64, dtype="float32", workers=args.workers) for m in maps]

        def scipy4(k32: np.ndarray = k32) -> list[np.ndarray]:
            return [signal.fftconvolve(m, k32, mode="same") for m in maps]

        t4, _, _ = timed(lambda: (clear_spectrum_cache(), ours4()), args.repeats)
        s4, _, _ = timed(scipy4, args.repeats)
        print(
            f"# {size}: 4 time points, kernel {side}: ours {t4:.3f} s (spectrum computed once "
            f"per run), scipy {s4:.3f} s, ratio {s4 / t4:.2f}",
            flush=True,
        )
    if not args.no_end_to_end:
        end_to_end(args)


def end_to_end(args: argparse.Namespace) -> None:
    """absorbed_dose(method="vsv") against fftconvolve with the same kernel."""
    import dosimetry as ds

    for size in args.sizes:
        shape = SIZES[size]
        tia_arr = realistic_map(shape, fraction=args.fraction).astype(np.float64) * 3600.0
        tia = ds.Volume.from_spacing(tia_arr, (4.8, 4.8, 4.8), unit="Bq s")
        kernel = ds.vsv_kernel("Lu-177", tia.spacing_mm, source="lanconelli2012")
        for dtype in ("float32", "float64"):
            t, dose, _ = timed(
                lambda dtype=dtype: ds.absorbed_dose(
                    tia, "Lu-177", method="vsv", kernel=kernel, dtype=dtype
                ),
                args.repeats,
            )
            k32 = kernel.array.astype(np.float32)
            tia32 = tia_arr.astype(np.float32)
            ts, ref, _ = timed(lambda: signal.fftconvolve(tia32, k32, mode="same"), args.repeats)
            diff = float(np.max(np.abs(dose.array - ref))) / float(ref.max())
            print(
                f"# end to end {size} Lu-177 4.8 mm lanconelli2012 {kernel.shape} {dtype}: "
                f"absorbed_dose {t:.3f} s (path {dose.provenance.get('convolution_path')}), "
                f"fftconvolve float32 {ts:.3f} s, ratio {ts / t:.2f}, max diff/peak {diff:.1e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
