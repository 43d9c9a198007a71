"""Benchmark: CT-CT registration of a whole-body 4-time-point SPECT/CT study (issue 16).

The study is written by :func:`phantoms.write_lu177_spect_study` at the issue's size:
SPECT 128 x 128 x 250 (4.7952 mm voxels) and CT 304 x 150 x 320 (x, y, z; 2 x 2 x 4 mm),
with known per-session shifts of the anatomy. The phantom's anatomy (torso, neck and head)
spans z -160..+250 mm, so about two thirds of the 1280 mm CT are air: the grid and the
voxel counts are whole-body, the body is not.

Each later session's CT (``SpectTimePoint.ct_expected_hu``: the values written to the
DICOM files, noise included) is registered to the first one's with

* ``new``: :func:`dosimetry.registration.register_ct` with its defaults (no cache);
* ``legacy``: the registration code this project had before issue 16 (reproduced below,
  the same SimpleITK calls), with the settings of the SPECT notebook
  (``shrink_factors=(4, 2)``, ``smoothing_sigmas_mm=(4, 2)``, ``sampling_fraction=0.05``,
  ``iterations=100``: the issue's 18 s per time point); ``--legacy-default`` also times
  its defaults ((4, 2, 1) pyramid, 25 % sampling, 200 iterations) once on one session.

Reported per session: the median wall and CPU time (``time.process_time``, all threads) of
``--repeat`` runs, the translation error against the known shift and the largest rotation
(the truth is a pure translation); then a cache hit, and :func:`apply_registration` of the
SPECT. ``--robustness`` adds sessions made by rasterising the phantom with large shifts
(20-60 mm) and with a cropped field of view, new default initialisation vs the legacy
geometry initialisation.

Run: ``python benchmarks/registration.py [--repeat 3] [--legacy-default] [--robustness]``
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

import dosimetry as ds
import phantoms
from dosimetry.io.sitk import volume_to_sitk
from dosimetry.registration import RegistrationCache, apply_registration, register_ct

SHIFTS_MM = [(0.0, 0.0, 0.0), (4.0, -3.0, 0.0), (-3.0, 2.0, 4.0), (5.0, 0.0, -4.0)]
NOTEBOOK_SETTINGS: dict[str, Any] = {
    "shrink_factors": (4, 2),
    "smoothing_sigmas_mm": (4.0, 2.0),
    "sampling_fraction": 0.05,
    "iterations": 100,
}


def legacy_register_ct(
    fixed_ct: ds.Volume,
    moving_ct: ds.Volume,
    *,
    shrink_factors: tuple[int, ...] = (4, 2, 1),
    smoothing_sigmas_mm: tuple[float, ...] = (4.0, 2.0, 0.0),
    sampling_fraction: float = 0.25,
    iterations: int = 200,
    histogram_bins: int = 50,
    seed: int = 42,
) -> tuple[np.ndarray, np.ndarray]:
    """The rigid registration of dosimetry/registration.py before issue 16 (Mattes MI on
    the CTs' own grids, geometry initialisation); returns (translation mm, angles deg)."""

    def to_sitk(v: ds.Volume) -> sitk.Image:
        return sitk.Cast(volume_to_sitk(v), sitk.sitkFloat32)

    fixed, moving = to_sitk(fixed_ct), to_sitk(moving_ct)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling_fraction, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel(list(shrink_factors))
    reg.SetSmoothingSigmasPerLevel(list(smoothing_sigmas_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    init = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0,
        minStep=1e-4,
        numberOfIterations=iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(init, inPlace=False)
    out = reg.Execute(fixed, moving)
    euler = sitk.Euler3DTransform(sitk.CompositeTransform(out).GetNthTransform(0))
    angles = np.degrees([euler.GetAngleX(), euler.GetAngleY(), euler.GetAngleZ()])
    return np.asarray(euler.GetTranslation()), angles


def timed(fn, repeat: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``repeat`` calls, and the last result."""
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), result


def build_study(folder: Path, seed: int):
    phantom = phantoms.make_torso(voxel_mm=(4.0, 2.0, 2.0), fov_mm=(1280.0, 300.0, 608.0))
    truth = phantoms.write_lu177_spect_study(
        folder,
        phantom=phantom,
        seed=seed,
        shifts_mm=SHIFTS_MM,
        n_spect_slices=250,
        spect_matrix=(128, 128),
        ct_slice_mm=4.0,
    )
    return phantom, truth


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--legacy-default", action="store_true")
    ap.add_argument("--robustness", action="store_true")
    args = ap.parse_args()

    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        phantom, truth = build_study(Path(tmp) / "study", args.seed)
    build_s = time.perf_counter() - t
    cts = [tp.ct_expected_hu for tp in truth.time_points]
    spects = [tp.expected_activity for tp in truth.time_points]
    ct, sp = cts[0], spects[0]
    body = float(np.mean(np.asarray(ct.array) > -500.0))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load:.1f}; SimpleITK {sitk.Version.VersionString()}"
    )
    print(
        f"study: CT {ct.shape[::-1]} (x, y, z) at {ct.spacing_mm[::-1]} mm, "
        f"{100 * body:.1f} % body voxels; SPECT {sp.shape[::-1]} at {sp.spacing_mm[0]:.4g} mm; "
        f"written in {build_s:.0f} s"
    )
    print()
    print(
        row(
            [
                "session",
                "true shift (mm)",
                "method",
                "wall s",
                "CPU s",
                "translation error (mm)",
                "|error| mm",
                "max rotation (deg)",
            ]
        )
    )
    print(row(["---"] * 8))
    totals = {"new": [0.0, 0.0], "legacy": [0.0, 0.0]}
    worst = {"new": 0.0, "legacy": 0.0}
    regs = {}
    for i in range(1, len(cts)):
        true = tuple(float(v) for v in np.subtract(SHIFTS_MM[i], SHIFTS_MM[0]))
        w, c, reg = timed(lambda i=i: register_ct(cts[0], cts[i], cache=None), args.repeat)
        regs[i] = reg
        err = np.asarray(reg.translation_mm) - np.asarray(true)
        totals["new"][0] += w
        totals["new"][1] += c
        worst["new"] = max(worst["new"], float(np.linalg.norm(err)))
        print(
            row(
                [
                    str(i),
                    str(true),
                    "new (defaults)",
                    f"{w:.2f}",
                    f"{c:.2f}",
                    str(np.round(err, 3).tolist()),
                    f"{np.linalg.norm(err):.3f}",
                    f"{max(abs(a) for a in reg.rotation_deg):.3f}",
                ]
            )
        )
        w, c, (tr, ang) = timed(
            lambda i=i: legacy_register_ct(cts[0], cts[i], **NOTEBOOK_SETTINGS), 1
        )
        err = tr - np.asarray(true)
        totals["legacy"][0] += w
        totals["legacy"][1] += c
        worst["legacy"] = max(worst["legacy"], float(np.linalg.norm(err)))
        print(
            row(
                [
                    str(i),
                    str(true),
                    "legacy (notebook settings)",
                    f"{w:.2f}",
                    f"{c:.2f}",
                    str(np.round(err, 3).tolist()),
                    f"{np.linalg.norm(err):.3f}",
                    f"{np.max(np.abs(ang)):.3f}",
                ]
            )
        )
    if args.legacy_default:
        true = tuple(float(v) for v in np.subtract(SHIFTS_MM[1], SHIFTS_MM[0]))
        w, c, (tr, ang) = timed(lambda: legacy_register_ct(cts[0], cts[1]), 1)
        err = tr - np.asarray(true)
        print(
            row(
                [
                    "1",
                    str(true),
                    "legacy (its defaults)",
                    f"{w:.2f}",
                    f"{c:.2f}",
                    str(np.round(err, 3).tolist()),
                    f"{np.linalg.norm(err):.3f}",
                    f"{np.max(np.abs(ang)):.3f}",
                ]
            )
        )
    print()
    n = len(cts) - 1
    for k in ("new", "legacy"):
        print(
            f"{k}: {n} sessions {totals[k][0]:.2f} s wall, {totals[k][1]:.2f} s CPU; "
            f"worst |translation error| {worst[k]:.3f} mm"
        )
    print(
        f"speed-up (legacy notebook settings / new), CPU: "
        f"{totals['legacy'][1] / totals['new'][1]:.1f}x, wall: "
        f"{totals['legacy'][0] / totals['new'][0]:.1f}x"
    )
    r = regs[n]
    print(
        f"similarity of session {n} inside the body: NCC {r.ncc_before:.3f} -> {r.ncc_after:.3f}, "
        f"MI {r.mi_before:.3f} -> {r.mi_after:.3f} nats"
    )

    cache = RegistrationCache()
    register_ct(cts[0], cts[1], cache=cache)
    w, c, hit = timed(lambda: register_ct(cts[0], cts[1], cache=cache), args.repeat)
    print(f"cache hit (hash of both working images + settings): {w:.2f} s wall, {c:.2f} s CPU")
    w, c, _ = timed(lambda: apply_registration(hit, spects[1], spects[0], "extensive"), args.repeat)
    print(f"apply_registration of the 128x128x250 SPECT (extensive): {w:.2f} s wall, {c:.2f} s CPU")

    if args.robustness:
        print()
        print("robustness: sessions rasterised from the phantom (no DICOM), new defaults")
        print(row(["true shift (mm)", "moving CT", "initialization", "CPU s", "|error| mm"]))
        print(row(["---"] * 5))
        lut = np.array([-1000.0, *(s.hu for s in phantom.structures)])
        rng = np.random.default_rng(args.seed)
        aff = np.asarray(ct.affine)
        for shift in [(20.0, -16.0, 40.0), (-36.0, 10.0, -60.0)]:
            labels = phantom.rasterize_labels(aff, ct.shape, shift)
            hu = np.rint(lut[labels] + rng.normal(0.0, 10.0, labels.shape))
            full = ds.Volume(hu, aff, "HU")
            a2 = aff.copy()
            a2[:3, 3] += aff[:3, 0] * 150
            cropped = ds.Volume(hu[150:260], a2, "HU")  # cuts through the torso
            for name, moving in (("whole", full), ("slices 150-259", cropped)):
                for init in ("search", "geometry"):
                    c = time.process_time()
                    reg = register_ct(cts[0], moving, cache=None, initialization=init)
                    c = time.process_time() - c
                    err = float(np.linalg.norm(np.asarray(reg.translation_mm) - shift))
                    print(row([str(shift), name, init, f"{c:.2f}", f"{err:.2f}"]))


if __name__ == "__main__":
    main()
