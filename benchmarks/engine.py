"""Benchmark of the dose engine against scipy.signal.fftconvolve (not a test).

Run ``python benchmarks/engine.py --help``. For every map size and kernel side it prints
our time (auto path, and each path separately), the time of
``scipy.signal.fftconvolve(map, kernel, mode="same")`` on the same float32 map and the
same kernel cast to float32, measured in the same run, their ratio, the maximum
difference relative to the peak, and the peak memory (tracemalloc, NumPy/SciPy
allocations; Numba's per-thread buffers are small and not counted). The compared calls
run in turn within each of ``--repeats`` rounds; times are medians over the rounds and
ratios the medians of the ratios within a round (both sides see the same state of a
shared machine). Also: four time points convolved with one kernel
(``convolve_many``: one spectrum, one bounding box) against four fftconvolve calls, and
``absorbed_dose(..., method="vsv")`` end to end.

Kernels: synthetic VSV-like kernels of the given sides (``--kernels``) and the library's
default Lu-177 kernel (``dosimetry.vsv_kernel("Lu-177", voxel)``, which carries the
photon tail to 200 mm) at a voxel size typical of each map size (:data:`VSV_VOXEL_MM`;
``--no-vsv`` to skip).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from scipy import ndimage, signal

SIZES = {
    "128": (128, 128, 128),
    "256x256x160": (160, 256, 256),
    "512x512x300": (300, 512, 512),
}

#: Voxel size (mm) of the default-kernel case per map size: a 128^2 SPECT matrix
#: (4.8 mm), a 256^2 PET matrix over a 70 cm field (2.73 mm), a 512^2 CT grid (1.37 mm;
#: the default kernel is then capped at 100 voxels from the centre).
VSV_VOXEL_MM = {"128": 4.8, "256x256x160": 2.73, "512x512x300": 1.37}


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


def peak_mib(fn: Callable[[], Any]) -> float:
    """Peak MiB of traced NumPy/SciPy allocations during one call of ``fn``, the FFT
    path's kept work array released first (so that it is counted)."""
    from dosimetry.engine import release_workspace

    release_workspace()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def rounds(
    fns: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Times of ``repeats`` rounds in which every function runs once, in turn (after one
    untimed call each), and the last results. Functions compared within a round see the
    same state of a shared, noisy machine; see :func:`ratio`."""
    out = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            out[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return times, out


def ratio(slow: list[float], fast: list[float]) -> float:
    """Median over rounds of ``slow / fast`` measured in the same round."""
    return statistics.median(a / b for a, b in zip(slow, fast, strict=True))


def _ours(tia: np.ndarray, kernel: np.ndarray, path: str, workers: int) -> np.ndarray:
    from dosimetry.engine import convolve

    return convolve(tia, kernel, path=path, dtype="float32", workers=workers)


def _scipy(tia: np.ndarray, kernel32: np.ndarray) -> np.ndarray:
    return signal.fftconvolve(tia, kernel32, mode="same")


def _four(maps: list[np.ndarray], kernel: np.ndarray, workers: int) -> list[np.ndarray]:
    from dosimetry.engine import clear_spectrum_cache, convolve

    clear_spectrum_cache()  # the spectrum is computed once inside each timed run
    return [convolve(m, kernel, dtype="float32", workers=workers) for m in maps]


def _four_many(
    maps: list[np.ndarray], kernel: np.ndarray, workers: int, stack: bool
) -> list[np.ndarray]:
    from dosimetry.engine import clear_spectrum_cache, convolve_many

    clear_spectrum_cache()  # the spectrum is computed once inside each timed run
    return convolve_many(maps, kernel, dtype="float32", workers=workers, stack=stack)


def _four_scipy(maps: list[np.ndarray], kernel32: np.ndarray) -> list[np.ndarray]:
    return [signal.fftconvolve(m, kernel32, mode="same") for m in maps]


def bench_map(
    label: str, tia: np.ndarray, args: argparse.Namespace, extra: list[tuple[str, np.ndarray]]
) -> None:
    """One map against every kernel: synthetic sides ``args.kernels`` and ``extra``
    (name, kernel) pairs."""
    from dosimetry.engine import clear_spectrum_cache
    from dosimetry.engine.convolve import choose_path

    nz = 100.0 * np.count_nonzero(tia) / tia.size
    cases = [(str(side), synthetic_kernel(side)) for side in args.kernels] + list(extra)
    for name, k64 in cases:
        side = k64.shape[0]
        k32 = k64.astype(np.float32)
        auto = choose_path(tia, k64, "auto", "float32")
        clear_spectrum_cache()
        t0 = time.perf_counter()
        _ours(tia, k64, "fft", args.workers)
        t_first = time.perf_counter() - t0
        fns = {
            "scipy": partial(_scipy, tia, k32),
            "fft": partial(_ours, tia, k64, "fft", args.workers),
        }
        if side <= args.direct_max_side or auto == "direct":
            fns["direct"] = partial(_ours, tia, k64, "direct", args.workers)
        times, outs = rounds(fns, args.repeats)
        med = {n: statistics.median(t) for n, t in times.items()}
        t_dir = med.get("direct", float("nan"))
        ref = outs["scipy"]
        out = outs[auto]
        mem = peak_mib(fns[auto])
        mem_sp = peak_mib(fns["scipy"])
        peak = float(np.max(np.abs(ref)))
        diff = float(np.max(np.abs(out.astype(np.float64) - ref))) / peak
        print(
            f"{label:>14} {nz:5.1f} {name:>9} {auto:>6} {med[auto]:8.3f} {t_dir:8.3f} "
            f"{med['fft']:8.3f} {t_first:8.3f} {med['scipy']:8.3f} "
            f"{ratio(times['scipy'], times[auto]):6.2f} {med['scipy'] / t_first:6.2f} "
            f"{diff:9.1e} {mem:7.0f} {mem_sp:8.0f} {tia.nbytes / 2**20:6.0f}",
            flush=True,
        )
        del outs, ref, out


def default_vsv_kernel(size: str) -> tuple[str, np.ndarray]:
    """The library's default Lu-177 kernel at :data:`VSV_VOXEL_MM` ``[size]`` (name, array)."""
    import dosimetry as ds

    t0 = time.perf_counter()
    k = ds.vsv_kernel("Lu-177", VSV_VOXEL_MM[size])
    t_build = time.perf_counter() - t0
    print(
        f"# default kernel for {size}: Lu-177 {VSV_VOXEL_MM[size]} mm, shape {k.shape}, "
        f"radius {k.radius_mm:g} mm, energy_fraction {k.energy_fraction:.4f}, dropped "
        f"{k.dropped_fraction:.4f} ({k.metadata['extent']['rule']}); obtained in "
        f"{t_build:.2f} s",
        flush=True,
    )
    return f"vsv{k.shape[0]}", np.asarray(k.array)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["128", "256x256x160"], choices=list(SIZES))
    ap.add_argument("--kernels", nargs="+", type=int, default=[11, 21, 41, 81])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--fraction", type=float, default=0.2, help="non-zero fraction of the map")
    ap.add_argument(
        "--sparse-fraction",
        type=float,
        default=0.02,
        help="non-zero fraction of the extra sparse map (lesions only); 0 to skip",
    )
    ap.add_argument("--direct-max-side", type=int, default=11, help="time direct up to this side")
    ap.add_argument("--no-end-to-end", action="store_true")
    ap.add_argument("--no-time-points", action="store_true")
    ap.add_argument("--time-point-kernels", nargs="+", type=int, default=[11, 41])
    ap.add_argument(
        "--no-vsv", action="store_true", help="skip the library's default Lu-177 kernel"
    )
    args = ap.parse_args(argv)

    import numba

    from dosimetry.engine import convolve

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"numba threads {numba.get_num_threads()}, scipy.fft workers {args.workers}, "
        f"repeats {args.repeats} (medians); times in s, memory in MiB (tracemalloc peak)"
    )
    warm = np.zeros((8, 8, 8), np.float32)
    warm[4, 4, 4] = 1
    convolve(warm, synthetic_kernel(3), path="direct", dtype="float32")  # compile
    print(
        f"{'map':>14} {'nz%':>5} {'kernel':>9} {'auto':>6} {'ours':>8} {'direct':>8} {'fft':>8} "
        f"{'fft cold':>8} {'scipy':>8} {'ratio':>6} {'r cold':>6} {'diff/pk':>9} "
        f"{'ourMiB':>7} {'scipyMiB':>8} {'mapMiB':>6}"
    )
    for size in args.sizes:
        shape = SIZES[size]
        tia = realistic_map(shape, fraction=args.fraction)
        vsv = [] if args.no_vsv else [default_vsv_kernel(size)]
        bench_map(size, tia, args, vsv)
        if args.sparse_fraction > 0:
            sparse = lesion_map(shape, args.sparse_fraction)
            sp_args = argparse.Namespace(**{**vars(args), "kernels": [11]})
            bench_map(size + "-sp", sparse, sp_args, vsv)
        if not args.no_time_points:
            time_points(size, tia, args, vsv)
    if not args.no_end_to_end:
        end_to_end(args)


def _time_point_maps(tia: np.ndarray) -> list[np.ndarray]:
    """Four frames of one study from ``tia`` (washout: the same uptake pattern with
    different supports): frame ``t`` keeps the voxels above the ``(15 t)``-th percentile
    of the non-zero values, scaled by ``0.5**t``."""
    nz = tia[tia > 0]
    maps = []
    for t in range(4):
        thr = tia.dtype.type(np.quantile(nz, 0.15 * t)) if t else tia.dtype.type(0)
        maps.append(np.where(tia > thr, tia * tia.dtype.type(0.5**t), tia.dtype.type(0)))
    return maps


def _dose_many(vols: list[Any], kernel: Any) -> list[Any]:
    import dosimetry as ds
    from dosimetry.engine import clear_spectrum_cache

    clear_spectrum_cache()  # the spectrum is computed once inside each timed run
    return ds.absorbed_dose_many(vols, "Lu-177", method="vsv", kernel=kernel, dtype="float32")


def time_points(
    size: str, tia: np.ndarray, args: argparse.Namespace, extra: list[tuple[str, np.ndarray]]
) -> None:
    """Four maps of one grid (:func:`_time_point_maps`: they differ in support and
    values, as the frames of a study do). Compared: ``convolve_many`` (stacked and one at
    a time), ``convolve`` per map, and four ``fftconvolve`` calls; synthetic kernels of
    sides ``args.time_point_kernels`` and the ``extra`` (name, kernel) pairs.
    """
    maps = _time_point_maps(tia)
    cases = [(f"side {s}", synthetic_kernel(s)) for s in args.time_point_kernels]
    for kname, k64 in cases + [(f"kernel {n}", k) for n, k in extra]:
        k32 = k64.astype(np.float32)
        fns = {
            "scipy": partial(_four_scipy, maps, k32),
            "many": partial(_four_many, maps, k64, args.workers, False),
            "stacked": partial(_four_many, maps, k64, args.workers, True),
            "loop": partial(_four, maps, k64, args.workers),
        }
        times, outs = rounds(fns, args.repeats)
        med = {name: statistics.median(t) for name, t in times.items()}
        sp = times["scipy"]
        diff = max(
            float(np.max(np.abs(o.astype(np.float64) - r))) / float(np.max(np.abs(r)))
            for o, r in zip(outs["many"], outs["scipy"], strict=True)
        )
        print(
            f"# {size}: 4 time points, {kname}: scipy {med['scipy']:.3f} s; convolve_many "
            f"stacked {med['stacked']:.3f} s ({ratio(sp, times['stacked']):.2f}x, "
            f"{peak_mib(fns['stacked']):.0f} MiB), one at a time {med['many']:.3f} s "
            f"({ratio(sp, times['many']):.2f}x, {peak_mib(fns['many']):.0f} MiB); convolve "
            f"per map {med['loop']:.3f} s ({ratio(sp, times['loop']):.2f}x); max diff/peak "
            f"{diff:.1e}",
            flush=True,
        )


def lesion_map(shape: tuple[int, int, int], fraction: float, seed: int = 1) -> np.ndarray:
    """Sparse float32 map: uniform spheres (lesions, kidneys) filling ``fraction``."""
    rng = np.random.default_rng(seed)
    m = np.zeros(shape, dtype=np.float32)
    filled = 0
    while filled < fraction * m.size:
        c = [int(rng.integers(s // 5, 4 * s // 5)) for s in shape]
        r = float(rng.uniform(3, 12))
        lo = [max(0, int(c[a] - r)) for a in range(3)]
        hi = [min(shape[a], int(c[a] + r) + 1) for a in range(3)]
        k, j, i = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        sph = (k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= r * r
        view = m[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        filled += int(np.count_nonzero(sph & (view == 0)))
        view[sph] += np.float32(rng.uniform(1e6, 2e7))
    return m


def end_to_end(args: argparse.Namespace) -> None:
    """absorbed_dose(method="vsv") against fftconvolve with the same kernel, and
    absorbed_dose_many of four time points against four fftconvolve calls: with the
    Lanconelli 2012 Lu-177 kernel (11^3) and with the library's default Lu-177 kernel
    (photon tail, 200 mm: 85^3 at 4.8 mm) unless ``--no-vsv``."""
    import dosimetry as ds

    for size in args.sizes:
        shape = SIZES[size]
        tia_arr = realistic_map(shape, fraction=args.fraction).astype(np.float64) * 3600.0
        tia = ds.Volume.from_spacing(tia_arr, (4.8, 4.8, 4.8), unit="Bq s")
        kernels = [
            ("lanconelli2012", ds.vsv_kernel("Lu-177", tia.spacing_mm, source="lanconelli2012"))
        ]
        if not args.no_vsv:
            kernels.append(("default", ds.vsv_kernel("Lu-177", tia.spacing_mm)))
        maps = _time_point_maps(tia_arr)
        vols = [ds.Volume.from_spacing(m, (4.8, 4.8, 4.8), unit="Bq s") for m in maps]
        maps32 = [m.astype(np.float32) for m in maps]
        tia32 = tia_arr.astype(np.float32)
        for kname, kernel in kernels:
            k32 = kernel.array.astype(np.float32)
            fns = {
                "scipy": partial(_scipy, tia32, k32),
                "float32": partial(
                    ds.absorbed_dose, tia, "Lu-177", "vsv", kernel=kernel, dtype="float32"
                ),
                "float64": partial(
                    ds.absorbed_dose, tia, "Lu-177", "vsv", kernel=kernel, dtype="float64"
                ),
                "scipy4": partial(_four_scipy, maps32, k32),
                "many": partial(_dose_many, vols, kernel),
            }
            times, outs = rounds(fns, args.repeats)
            ref = outs["scipy"]
            ts = statistics.median(times["scipy"])
            diff4 = max(
                float(np.max(np.abs(d.array - r))) / float(r.max())
                for d, r in zip(outs["many"], outs["scipy4"], strict=True)
            )
            print(
                f"# end to end {size}, {kname} kernel {kernel.shape}, 4 time points: "
                f"absorbed_dose_many (float32) {statistics.median(times['many']):.3f} s, 4x "
                f"fftconvolve float32 {statistics.median(times['scipy4']):.3f} s, ratio "
                f"{ratio(times['scipy4'], times['many']):.2f}, max diff/peak {diff4:.1e}",
                flush=True,
            )
            for dtype in ("float32", "float64"):
                t = statistics.median(times[dtype])
                dose = outs[dtype]
                diff = float(np.max(np.abs(dose.array - ref))) / float(ref.max())
                print(
                    f"# end to end {size}, Lu-177 4.8 mm {kname} kernel {kernel.shape}, "
                    f"{dtype}: absorbed_dose {t:.3f} s (path "
                    f"{dose.provenance.get('convolution_path')}), fftconvolve float32 "
                    f"{ts:.3f} s, ratio {ratio(times['scipy'], times[dtype]):.2f}, max "
                    f"diff/peak {diff:.1e}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
