"""Organ dose-limit table: values as published, overrides, lookups."""

from __future__ import annotations

import pytest

from dosimetry.errors import InputDataError
from dosimetry.limits import organ_dose_limit, organ_dose_limits


def test_published_values():
    # Bodei et al. EJNMMI 2008 (abstract): kidney BED 28 Gy with risk factors, 40 Gy without
    bed_rows = {
        r.condition: r.limit_gy
        for r in organ_dose_limits()
        if r.organ == "kidneys" and r.quantity == "bed"
    }
    assert sorted(bed_rows.values()) == [28.0, 40.0]
    assert organ_dose_limit("kidneys").limit_gy == 23.0  # Emami 1991 TD5/5
    assert organ_dose_limit("red_marrow").limit_gy == 2.0
    assert organ_dose_limit("red_marrow").is_limit
    sal = organ_dose_limit("salivary_glands")
    assert sal.status == "reported" and not sal.is_limit
    lac = organ_dose_limit("lacrimal_glands")
    assert lac.limit_gy is None and lac.status == "no_accepted_threshold"
    assert all(r.citation for r in organ_dose_limits())


def test_overrides_and_errors(tmp_path):
    rows = organ_dose_limits(
        overrides={("kidneys", "bed", "patients without renal risk factors"): 35.0}
    )
    assert (
        organ_dose_limit(
            "kidneys", "bed", "patients without renal risk factors", rows=rows
        ).limit_gy
        == 35.0
    )
    assert organ_dose_limit("kidneys", "bed", rows=rows).limit_gy == 28.0
    rows = organ_dose_limits(overrides={("lacrimal_glands", "absorbed_dose"): 100.0})
    assert organ_dose_limit("lacrimal_glands", rows=rows).is_limit
    rows = organ_dose_limits(overrides={("spleen", "absorbed_dose"): 50.0})
    assert organ_dose_limit("spleen", rows=rows).citation == "user override"
    with pytest.raises(InputDataError):
        organ_dose_limits(overrides={("kidneys", "eqd2"): 20.0})
    with pytest.raises(InputDataError, match="no dose limit"):
        organ_dose_limit("brain")
    bad = tmp_path / "l.csv"
    bad.write_text(
        "organ,quantity,limit_gy,status,condition,context,citation,notes\nx,bed,,limit,,,c,\n"
    )
    with pytest.raises(InputDataError, match="no_accepted_threshold"):
        organ_dose_limits(path=bad)
