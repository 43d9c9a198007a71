"""How far a default VSV kernel must reach, and at what cost (issue 19, section 3). Not a test.

``python benchmarks/photon_tail.py [--energy] [--speed] [--mc HISTORIES] [--repeats 5]``
prints the numbers quoted in docs/kernels.md ("Photon tail") and benchmarks/README.md:

* ``--energy``: the energy a Lu-177 kernel of radius R deposits inside a soft-tissue body
  (elliptic cylinder 350 x 250 mm; a whole-body map 1100 mm long and a 400 mm torso
  section; uniform uptake, or the kidneys only) relative to a kernel out to the basis'
  reach (385 mm), at 4.42 mm voxels, by ``scipy.signal.fftconvolve`` in float64.
* ``--speed``: the two ways of carrying the tail, timed in interleaved rounds with
  their error against the exact large-kernel convolution (fftconvolve, float64):
  (a) the whole kernel through ``dosimetry.engine.convolve`` (float32, FFT path), and
  (b) a two-grid scheme: the kernel split smoothly (cos^2 taper between r1 and r2) into a
  near part convolved on the voxel grid and a far part convolved on a grid ``f`` times
  coarser (block-sum restriction of the map, coarse kernel = the far kernel averaged over
  the pairs of fine voxels of two coarse voxels, energy-conserving; trilinear
  prolongation of the coarse dose), both through ``dosimetry.engine.convolve``.
* ``--mc N``: region means of ``absorbed_dose(method="vsv")`` with kernels of several
  radii against ``dosimetry.mc.patient_dose`` (ompmc, the ``[mc]`` extra) with N
  histories, in a homogeneous ICRU-tissue torso (400 mm) and whole body (1104 mm)
  surrounded by air: uniform background, kidneys x20, liver x5; 4.8 mm voxels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
from scipy import ndimage, signal

import dosimetry as ds
from dosimetry.engine import convolve

RADII_MM = (None, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0)
FULL_MM = 385.0  # the basis' 40 cm in water, in soft tissue (1.04 g/mL)


def _ellipsoid(shape, h, centre, semi_mm) -> np.ndarray:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    c = centre
    return (
        ((z - c[0]) * h / semi_mm[0]) ** 2
        + ((y - c[1]) * h / semi_mm[1]) ** 2
        + ((x - c[2]) * h / semi_mm[2]) ** 2
    ) <= 1.0


def body_phantom(h: float, shape: tuple[int, int, int], semi_yx=(125.0, 175.0)):
    """(body mask, kidney mask, liver mask): elliptic cylinder along axis 0 and organs
    at the middle of the map."""
    _, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    yc, xc = (shape[1] - 1) / 2, (shape[2] - 1) / 2
    cross = ((y - yc) * h / semi_yx[0]) ** 2 + ((x - xc) * h / semi_yx[1]) ** 2 <= 1.0
    body = np.broadcast_to(cross, shape).copy()
    zc = (shape[0] - 1) / 2
    kid = _ellipsoid(shape, h, (zc, yc + 40 / h, xc - 70 / h), (55, 30, 25))
    kid |= _ellipsoid(shape, h, (zc, yc + 40 / h, xc + 70 / h), (55, 30, 25))
    liver = _ellipsoid(shape, h, (zc + 100 / h, yc, xc - 60 / h), (70, 80, 80)) & body
    return body, kid, liver


def energy(args: argparse.Namespace) -> None:
    h = 4.42
    shape = (250, 128, 128)
    body, kid, _ = body_phantom(h, shape)
    torso = body.copy()
    torso[: int(shape[0] / 2 - 200 / h)] = False
    torso[int(shape[0] / 2 + 200 / h) :] = False
    cases = {
        "whole body, uniform": (body, body),
        "whole body, kidneys only": (kid, body),
        "torso 400 mm, uniform": (torso, torso),
    }
    res: dict[Any, dict[str, float]] = {}
    for r in (*RADII_MM, FULL_MM):
        kw = {"photon_tail": False} if r is None else {"radius_mm": r}
        k = ds.vsv_kernel("Lu-177", h, **kw)
        res[r] = {
            name: float(np.sum(signal.fftconvolve(src.astype(float), k.array, "same") * tgt))
            for name, (src, tgt) in cases.items()
        }
        res[r]["shape"] = k.shape[0]
        res[r]["ef"] = k.energy_fraction
    print("# energy inside the body relative to the 385 mm kernel (Lu-177, 4.42 mm)")
    print("| kernel | side | energy_fraction | " + " | ".join(cases) + " |")
    for r in (*RADII_MM, FULL_MM):
        lab = "electron reach" if r is None else f"{r:g} mm"
        cells = " | ".join(f"{res[r][n] / res[FULL_MM][n]:.4f}" for n in cases)
        print(f"| {lab} | {res[r]['shape']} | {res[r]['ef']:.4f} | {cells} |", flush=True)


# --- option (b): two grids ------------------------------------------------------------


def split_kernel(k: np.ndarray, h: float, r1: float, r2: float) -> tuple[np.ndarray, np.ndarray]:
    """(near kernel cropped to r2, far kernel): k = near + far, cos^2 taper r1..r2 (mm)."""
    n = k.shape[0] // 2
    d = np.arange(-n, n + 1) * h
    r = np.sqrt(d[:, None, None] ** 2 + d[None, :, None] ** 2 + d[None, None, :] ** 2)
    w = np.cos(0.5 * np.pi * np.clip((r - r1) / (r2 - r1), 0.0, 1.0)) ** 2
    m = int(np.ceil(r2 / h))
    near = (k * w)[n - m : n + m + 1, n - m : n + m + 1, n - m : n + m + 1]
    return np.ascontiguousarray(near), k * (1.0 - w)


def coarse_kernel(far: np.ndarray, f: int) -> np.ndarray:
    """Mean dose to a coarse voxel per decay uniformly spread in the coarse source voxel:
    the far kernel averaged (triangle weights (f - |d|) / f^2 per axis) over the pairs of
    fine voxels, at coarse offsets. Sum x f^3 equals the far kernel's sum."""
    tri = np.array([(f - abs(d)) / f**2 for d in range(-(f - 1), f)])
    k = far
    for ax in range(3):
        k = ndimage.convolve1d(k, tri, axis=ax, mode="constant")
    n = far.shape[0] // 2
    idx = n + f * np.arange(-(n // f), n // f + 1)
    return np.ascontiguousarray(k[np.ix_(idx, idx, idx)])


@nb.njit(parallel=True, cache=True)
def _restrict(a: np.ndarray, f: int, out: np.ndarray) -> np.ndarray:  # pragma: no cover
    n0, n1, n2 = a.shape
    for kc in nb.prange(out.shape[0]):
        for k in range(kc * f, min(kc * f + f, n0)):
            for j in range(n1):
                for i in range(n2):
                    out[kc, j // f, i // f] += a[k, j, i]
    return out


@nb.njit(parallel=True, cache=True)
def _prolong_add(dc: np.ndarray, f: int, out: np.ndarray) -> np.ndarray:  # pragma: no cover
    n0, n1, n2 = out.shape
    c0, c1, c2 = dc.shape
    for k in nb.prange(n0):
        u = (k + 0.5) / f - 0.5
        k0 = int(np.floor(u))
        tk = u - k0
        ka, kb = min(max(k0, 0), c0 - 1), min(max(k0 + 1, 0), c0 - 1)
        for j in range(n1):
            v = (j + 0.5) / f - 0.5
            j0 = int(np.floor(v))
            tj = v - j0
            ja, jb = min(max(j0, 0), c1 - 1), min(max(j0 + 1, 0), c1 - 1)
            for i in range(n2):
                w = (i + 0.5) / f - 0.5
                i0 = int(np.floor(w))
                ti = w - i0
                ia, ib = min(max(i0, 0), c2 - 1), min(max(i0 + 1, 0), c2 - 1)
                lo = (1 - tj) * ((1 - ti) * dc[ka, ja, ia] + ti * dc[ka, ja, ib]) + tj * (
                    (1 - ti) * dc[ka, jb, ia] + ti * dc[ka, jb, ib]
                )
                hi = (1 - tj) * ((1 - ti) * dc[kb, ja, ia] + ti * dc[kb, ja, ib]) + tj * (
                    (1 - ti) * dc[kb, jb, ia] + ti * dc[kb, jb, ib]
                )
                out[k, j, i] += (1 - tk) * lo + tk * hi
    return out


def two_grid(a: np.ndarray, near: np.ndarray, kc: np.ndarray, f: int) -> np.ndarray:
    d = convolve(a, near, dtype="float32")
    ac = _restrict(a, f, np.zeros(tuple(-(-s // f) for s in a.shape), a.dtype))
    dc = convolve(ac, kc, dtype="float32")
    return _prolong_add(dc.astype(np.float32), f, d)


def _timed(fns: dict[str, Callable[[], np.ndarray]], repeats: int):
    outs = {k: fn() for k, fn in fns.items()}
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t0)
    return outs, ts


def speed(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from engine import realistic_map

    h_wb = 4.42
    body, kid, liver = body_phantom(h_wb, (250, 128, 128))
    wb = np.where(body, 1.0, 0.0)
    wb = np.where(kid, 30.0, wb)
    wb = np.where(liver, 8.0, wb).astype(np.float32)
    maps = [
        ("whole body 250x128x128", wb, h_wb),
        ("benchmark 128^3", realistic_map((128, 128, 128)), 4.8),
        ("benchmark 160x256x256", realistic_map((160, 256, 256)), 2.73),
    ]
    variants = ((2, 20.0, 45.0), (2, 30.0, 55.0), (4, 40.0, 80.0))
    print("# (a) default kernel through the engine; (b) two grids (f, r1-r2 mm); float32")
    print(
        "| map | method | kernels | ms (median) | fftconvolve / this | max err / peak | "
        "voxels > 1e-3 peak: max / p99 relative error | energy |"
    )
    for label, a, h in maps:
        k = ds.vsv_kernel("Lu-177", h)
        exact = signal.fftconvolve(a.astype(np.float64), k.array, mode="same")
        k32 = k.array.astype(np.float32)
        fns: dict[str, Callable[[], np.ndarray]] = {
            "fftconvolve": lambda a=a, k32=k32: signal.fftconvolve(a, k32, mode="same"),
            "(a)": lambda a=a, k=k: convolve(a, k.array, dtype="float32"),
        }
        shapes = {"fftconvolve": f"{k.shape[0]}^3", "(a)": f"{k.shape[0]}^3"}
        for f, r1, r2 in variants:
            near, far = split_kernel(k.array, h, r1, r2)
            kc = coarse_kernel(far, f)
            name = f"(b) f={f}, {r1:g}-{r2:g} mm"
            fns[name] = lambda a=a, near=near, kc=kc, f=f: two_grid(a, near, kc, f)
            shapes[name] = f"{near.shape[0]}^3 + {kc.shape[0]}^3"
        outs, ts = _timed(fns, args.repeats)
        peak = float(exact.max())
        sel = exact > 1e-3 * peak
        for name in fns:
            d = outs[name].astype(np.float64)
            rel = np.abs(d[sel] - exact[sel]) / exact[sel]
            r = statistics.median(s / t for s, t in zip(ts["fftconvolve"], ts[name], strict=True))
            print(
                f"| {label} | {name} | {shapes[name]} | {1e3 * statistics.median(ts[name]):.0f} "
                f"| {r:.2f} | {np.abs(d - exact).max() / peak:.1e} | {rel.max():.1e} / "
                f"{np.quantile(rel, 0.99):.1e} | {d.sum() / exact.sum() - 1:+.1e} |",
                flush=True,
            )


def mc(args: argparse.Namespace) -> None:
    from dosimetry import Volume
    from dosimetry.mc import patient_dose

    h = 4.8
    for n_slices, label in ((84, "torso 403 mm"), (230, "whole body 1104 mm")):
        shape = (n_slices, 60, 80)
        body, kid, liver = body_phantom(h, shape, semi_yx=(115.0, 170.0))
        tia = np.where(body, 1.0, 0.0)
        tia = np.where(kid, 20.0, tia)
        tia = np.where(liver, 5.0, tia) * 1e9
        dist = ndimage.distance_transform_edt(~(kid | liver)) * h
        inner = ndimage.binary_erosion(body, iterations=3)
        regions = {
            "kidney": ndimage.binary_erosion(kid, iterations=1),
            "liver": ndimage.binary_erosion(liver, iterations=1),
            "background": body & (dist > 15) & inner,
            "background > 50 mm from organs": body & (dist > 50) & inner,
        }
        aff = np.diag([h, h, h, 1.0])
        tv = Volume(tia, aff, "Bq s")
        mats = Volume(np.where(body, 2, 0).astype(np.int16), aff, "1")
        t0 = time.perf_counter()
        res = patient_dose(tv, "Lu-177", materials=mats, histories=args.mc, seed=args.seed)
        ref = res.dose.array
        print(f"# {label}: MC {args.mc:.0e} histories, {time.perf_counter() - t0:.0f} s")
        print("| kernel | " + " | ".join(regions) + " | energy in body |")
        for r in (None, 150.0, 200.0, FULL_MM):
            kw = {"photon_tail": False} if r is None else {"radius_mm": r}
            k = ds.vsv_kernel("Lu-177", h, **kw)
            d = ds.absorbed_dose(tv, "Lu-177", method="vsv", kernel=k).array
            cells = [f"{100 * (d[m].mean() / ref[m].mean() - 1):+.1f} %" for m in regions.values()]
            e = 100 * ((d * body).sum() / (ref * body).sum() - 1)
            lab = "electron reach (11^3)" if r is None else f"{r:g} mm"
            print(f"| {lab} | " + " | ".join(cells) + f" | {e:+.1f} % |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--energy", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--mc", type=float, default=0.0, help="histories of the MC comparison")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    if not (args.energy or args.speed or args.mc):
        args.energy = args.speed = True
    if args.energy:
        energy(args)
    if args.speed:
        speed(args)
    if args.mc:
        args.mc = int(args.mc)
        mc(args)


if __name__ == "__main__":
    main()
