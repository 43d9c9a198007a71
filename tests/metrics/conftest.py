"""Fixtures for the metrics tests."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

DICOMPYLER = Path(__file__).resolve().parents[1] / "data" / "dicompyler"


@pytest.fixture(scope="session")
def dicompyler_dose_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dicompyler RT Dose, decompressed into a temporary folder."""
    out = tmp_path_factory.mktemp("dicompyler_metrics") / "rtdose.dcm"
    with gzip.open(DICOMPYLER / "rtdose.dcm.gz", "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out
