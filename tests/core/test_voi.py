"""VOI names -> organs by the explicit alias table: no fuzzy matching."""

from __future__ import annotations

import pytest

from dosimetry.errors import InputDataError
from dosimetry.voi import VoiMap, normalise_voi_name


@pytest.mark.parametrize(
    ("name", "organ", "role"),
    [
        ("Kidney_L", "kidneys", "organ"),
        ("kidney_left", "kidneys", "organ"),
        ("Right Kidney", "kidneys", "organ"),
        ("Parotid R", "salivary_glands", "organ"),
        ("submandibular_gland_left", "salivary_glands", "organ"),
        ("lacrimal_right", "lacrimal_glands", "organ"),
        ("lesion_3", "tumour", "lesion"),
        ("Lesion 12", "tumour", "lesion"),
        ("GTV_bone", "tumour", "lesion"),
        ("BODY", "whole_body", "body"),
        ("External", "whole_body", "body"),
        ("lung_upper_lobe_left", "lungs", "organ"),
        ("red_marrow", "bone_marrow", "organ"),
        ("liver", "liver", "organ"),
    ],
)
def test_alias_table(name, organ, role):
    m = VoiMap.default()
    assert m.organ(name) == organ and m.role(name) == role


@pytest.mark.parametrize(
    "name", ["not_a_lesion", "hot", "kidneystone", "myliver", "brain", "lesionless"]
)
def test_no_fuzzy_matches(name):
    assert VoiMap.default().organ(name) is None
    assert VoiMap.default().role(name) == "other"


def test_normalisation():
    assert normalise_voi_name(" Kidney-L ") == "kidney"
    assert normalise_voi_name("left_parotid") == "parotid"
    assert normalise_voi_name("lesion_12b") == "lesion"
    assert normalise_voi_name("liver") == "liver"


def test_user_table_wins(tmp_path):
    f = tmp_path / "map.csv"
    f.write_text("voi,organ,role\nhot,tumour,lesion\nKidney_L,liver,organ\nNiere links,kidneys,\n")
    m = VoiMap.from_file(f)
    assert m.organ("hot") == "tumour" and m.role("hot") == "lesion"
    assert m.organ("Kidney_L") == "liver"  # the user's word beats the built-in alias
    assert m.organ("Niere links") == "kidneys" and m.role("Niere links") == "organ"
    assert m.organ("spleen") == "spleen"  # the built-in table still answers
    bad = tmp_path / "bad.csv"
    bad.write_text("name,organ\nx,liver\n")
    with pytest.raises(InputDataError, match="voi,organ"):
        VoiMap.from_file(bad)
    with pytest.raises(InputDataError, match="cannot read"):
        VoiMap.from_file(tmp_path / "missing.csv")
