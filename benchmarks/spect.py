"""End to end: `dosimetry spect` on a whole-body 4-time-point Lu-177 SPECT/CT (issue #16 §1).

The study is the registration benchmark's (:func:`registration.build_study`): SPECT
128 x 128 x 250 at 4.795 mm, CT 304 x 150 x 320, four sessions with couch shifts, written as
DICOM by :func:`phantoms.write_lu177_spect_study`. The timed call is what the command line
runs, :func:`dosimetry.workflows.spect.run_folder` (reading the DICOM, calibration,
registration of every time point to the first CT, VOIs, organ and voxel kinetics, dose,
tables), without writing the output set; a second run in the same process shows the
registration cache. Each step's share comes from the workflow's progress messages.

Baseline for the ratio: the same call with ``method="led"`` (no convolution) in the same
run, and the issue's measurement before the change (72 s for this case, 74 % of it
registration), quoted, not reproduced.

    python benchmarks/spect.py [--repeat 3] [--method vsv]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from registration import build_study  # noqa: E402

from dosimetry.workflows import spect  # noqa: E402


class StepClock:
    """Progress callback that records when each step began."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, str]] = []

    def __call__(self, message: str) -> None:
        self.marks.append((time.perf_counter(), message))

    def durations(self, end: float) -> list[tuple[str, float]]:
        out = []
        for (t, msg), (t_next, _) in zip(self.marks, [*self.marks[1:], (end, "")], strict=True):
            out.append((msg, t_next - t))
        return out


def run_once(folder: Path, method: str, calibration: str) -> tuple[float, float, StepClock]:
    clock = StepClock()
    w, c = time.perf_counter(), time.process_time()
    spect.run_folder(folder, calibration=calibration, method=method, progress=clock)
    end = time.perf_counter()
    return end - w, time.process_time() - c, clock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--method", default="vsv")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "study"
        t0 = time.perf_counter()
        _, truth = build_study(folder, args.seed)
        print(f"study written in {time.perf_counter() - t0:.1f} s: {folder}")
        cal = f"{truth.calibration_cps_per_mbq} cps/MBq"
        import dosimetry.registration as reg

        walls, cpus = [], []
        first = None
        for i in range(args.repeat):
            # every timed run registers afresh: empty the process-wide registration cache
            with reg._DEFAULT_CACHE._lock:
                reg._DEFAULT_CACHE._mem.clear()
            wall, cpu, clock = run_once(folder, args.method, cal)
            walls.append(wall)
            cpus.append(cpu)
            if first is None:
                first = (wall, clock)
            print(f"run {i + 1}: wall {wall:.1f} s, CPU {cpu:.1f} s")
        led_wall, led_cpu, _ = run_once(folder, "led", cal)
        cached_wall, _, _ = run_once(folder, args.method, cal)
    print()
    print(f"method {args.method}, median of {args.repeat}:")
    print(
        f"  end to end        : {statistics.median(walls):.1f} s wall, "
        f"{statistics.median(cpus):.1f} s CPU (target <= 20 s wall on 2 cores)"
    )
    print(f"  method led        : {led_wall:.1f} s wall, {led_cpu:.1f} s CPU (same run)")
    print(f"  registration cache: {cached_wall:.1f} s wall (second call, same process)")
    print("  before the change : 72 s (issue #16, quoted)")
    assert first is not None
    wall, clock = first
    print("steps of the first run (wall s):")
    for msg, d in clock.durations(clock.marks[0][0] + wall):
        print(f"  {d:6.1f}  {msg[:90]}")


if __name__ == "__main__":
    main()
