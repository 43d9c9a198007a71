"""Command-line interface: ``dosimetry demo --out DIR`` and friends.

Thin by design: arguments are parsed here, the work is done by :mod:`dosimetry.planning`;
heavy modules are imported only when a command runs. Project errors are printed as one
line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from . import __version__

    p = argparse.ArgumentParser(
        prog="dosimetry",
        description="Theranostics dosimetry workbench: PET/SPECT DICOM to absorbed-dose maps.",
    )
    p.add_argument("--version", action="version", version=f"dosimetry {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log every step (INFO)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser(
        "demo",
        help="run the whole pipeline on the built-in torso phantom",
        description=(
            "Generate a 68Ga-PSMA-11 PET/CT phantom patient as DICOM, read it back like a "
            "scanner export, project a 177Lu-PSMA-617 therapy, compute the absorbed-dose map "
            "and write DICOM RTDOSE, NIfTI and a per-organ dose table."
        ),
    )
    d.add_argument("--out", required=True, type=Path, help="output folder (created)")
    d.add_argument(
        "--activity",
        default="7.4 GBq",
        help="planned administered 177Lu activity, with unit (default: 7.4 GBq)",
    )
    d.add_argument(
        "--method",
        default="auto",
        choices=["auto", "led", "vsv", "vsv-density"],
        help="dose method: local energy deposition, voxel S-value convolution in soft "
        "tissue, or with lung/soft-tissue/bone kernels from the CT density (vsv-density) "
        "(auto: vsv when the kernel library is available, else led)",
    )
    d.add_argument("--seed", type=int, default=0, help="phantom noise seed (default 0)")
    d.add_argument("--overwrite", action="store_true", help="replace existing output files")

    r = sub.add_parser(
        "plan",
        help="177Lu/225Ac plan from a PET study folder",
        description="Project a diagnostic PET study to a therapy and compute the dose map.",
    )
    r.add_argument("study", type=Path, help="folder with the PET/CT DICOM (and RTSTRUCT)")
    r.add_argument("--out", required=True, type=Path, help="output folder (created)")
    r.add_argument("--therapy", default="Lu-177-PSMA-617", help="therapy agent")
    r.add_argument("--activity", default=None, help="planned administered activity, with unit")
    r.add_argument("--method", default="auto", choices=["auto", "led", "vsv", "vsv-density"])
    r.add_argument(
        "--rbe",
        type=float,
        default=None,
        help="RBE of alpha particles for the RBE-weighted dose (default: the cited table value)",
    )
    r.add_argument("--overwrite", action="store_true")
    return p


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dosimetry`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 0

    from .errors import DosimetryError

    try:
        if args.command == "demo":
            from .planning import run_demo

            result = run_demo(
                args.out,
                activity=args.activity,
                method=args.method,
                seed=args.seed,
                overwrite=args.overwrite,
                progress=_progress,
            )
        else:
            from .planning import run_plan_from_folder

            if args.activity is None:
                parser.error("plan: --activity is required (e.g. --activity '7.4 GBq')")
            result = run_plan_from_folder(
                args.study,
                args.out,
                therapy=args.therapy,
                activity=args.activity,
                method=args.method,
                rbe=args.rbe,
                overwrite=args.overwrite,
                progress=_progress,
            )
    except DosimetryError as exc:
        print(f"dosimetry: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"dosimetry: error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
