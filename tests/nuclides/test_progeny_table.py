"""The shipped progeny table equals radioactivedecay's data, and planning does not need it."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from dosimetry.nuclides import _progeny_table, available_nuclides


def test_progeny_table_matches_radioactivedecay():
    rd = pytest.importorskip("radioactivedecay")
    progeny, half_lives = _progeny_table()
    checked = 0
    for parent in available_nuclides():
        try:
            n = rd.Nuclide(parent)
        except ValueError:
            assert parent not in progeny
            continue
        expect = tuple(
            (str(d), float(b), str(m))
            for d, b, m in zip(n.progeny(), n.branching_fractions(), n.decay_modes(), strict=True)
        )
        assert progeny.get(parent, ()) == expect, parent
        for d, _b, _m in expect:
            try:
                t = float(rd.Nuclide(d).half_life("s"))
            except ValueError:
                t = math.inf
            assert half_lives[d] == t, d
        checked += 1
    assert checked > 1000


def test_import_and_chain_do_not_import_radioactivedecay_scipy_ndimage_or_numba():
    code = (
        "import sys, dosimetry as ds;"
        "assert 'scipy.ndimage' not in sys.modules and 'numba' not in sys.modules;"
        "ch = ds.decay_chain('Ac-225'); n = ds.nuclide('Bi-213').progeny;"
        "assert 'radioactivedecay' not in sys.modules, 'radioactivedecay imported'"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 0, r.stderr
