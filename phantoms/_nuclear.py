"""Radionuclide and radiopharmaceutical data used by the phantom studies.

Half-lives and positron yields: ICRP Publication 107 (2008), Ann ICRP 38(3), as packaged
in ``icrp107-database`` (F-18: 109.77 min, beta+ 0.9673 per decay; Ga-68: 67.71 min,
beta+ 0.8891; Lu-177: 6.647 d).

Codes: DICOM PS3.16 CID 4020 "PET Radionuclide" / CID 18 "Radiopharmaceutical Isotope"
(SNOMED CT, with the legacy SNOMED-RT "SRT" equivalents that many scanners still write)
and CID 4021 "PET Radiopharmaceutical". Values checked against the code tables shipped
with pydicom 3 (``pydicom.sr._concepts_dict`` / ``_snomed_dict``):

=========  ==========  ========  =================================
nuclide    SCT         SRT       Code Meaning
=========  ==========  ========  =================================
F-18       77004003    C-111A1   ^18^Fluorine
Ga-68      35337001    C-131A3   ^68^Gallium
Lu-177     447553000   C-101ED   ^177^Lutetium
=========  ==========  ========  =================================

Radiopharmaceuticals: PSMA-11 Ga^68^ (NCIt C118961), PSMA-1007 F^18^ (DCM 126758),
Fluorodeoxyglucose F^18^ (SCT 35321007 / SRT C-B1031). No code exists in PS3.16 for
Lu-177 PSMA-617; its sequence item carries the free-text name only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

__all__ = ["Nuclide", "Tracer", "NUCLIDES", "TRACERS", "radiopharmaceutical_item", "code_item"]


@dataclass(frozen=True)
class Nuclide:
    """Decay data and codes of one radionuclide (ICRP-107 values)."""

    name: str
    half_life_s: float
    positron_fraction: float
    code_sct: str
    code_srt: str
    code_meaning: str


NUCLIDES: dict[str, Nuclide] = {
    "F-18": Nuclide("F-18", 109.77 * 60.0, 0.9673, "77004003", "C-111A1", "^18^Fluorine"),
    "Ga-68": Nuclide("Ga-68", 67.71 * 60.0, 0.8891, "35337001", "C-131A3", "^68^Gallium"),
    "Lu-177": Nuclide("Lu-177", 6.647 * 86400.0, 0.0, "447553000", "C-101ED", "^177^Lutetium"),
}


@dataclass(frozen=True)
class Tracer:
    """A PET radiopharmaceutical with the phantom's assumed uptake.

    Attributes
    ----------
    name
        Tracer name as accepted by :func:`phantoms.write_pet_ct_study`.
    nuclide
        Key of :data:`NUCLIDES`.
    radiopharmaceutical
        Text written to Radiopharmaceutical (0018,0031).
    code
        ``(value, scheme, meaning)`` of Radiopharmaceutical Code Sequence, or ``None``.
    default_activity_bq
        Default injected activity (Bq).
    suv
        Assumed SUVmean (body weight) of each phantom region at the default uptake time.
    lesion_suv
        SUVmean of the lesions, in phantom lesion order (the last value repeats).
    """

    name: str
    nuclide: str
    radiopharmaceutical: str
    code: tuple[str, str, str] | None
    default_activity_bq: float
    suv: Mapping[str, float] = field(default_factory=dict)
    lesion_suv: tuple[float, ...] = (10.0,)


#: Assumed SUVmean per region. Phantom assumptions, chosen inside the ranges reported for
#: normal-organ uptake at about 1 h p.i.; they are not a measurement:
#:
#: * Ga-68-PSMA-11: kidneys highest (mean SUVmean 41.7 in 80 patients, and ~20-30 in
#:   other series), salivary glands ~13-15, liver ~5, spleen ~6-8, low background;
#:   lymph-node / bone / soft-tissue lesions SUVmax ~15-24 (Muchnik Kurash M et al.,
#:   Sci Rep 2020;10:3109; Afshar-Oromieh A et al., Eur J Nucl Med Mol Imaging
#:   2015;42:197-209).
#: * F-18-PSMA-1007: high liver (SUVmean ~10-13) and spleen uptake with lower renal
#:   uptake than PSMA-11 (Giesel FL et al., Eur J Nucl Med Mol Imaging 2017;44:678-688).
#: * F-18-FDG: liver SUVmean ~2-3 (reference region, Boellaard R et al., EANM procedure
#:   guidelines v2.0, Eur J Nucl Med Mol Imaging 2015;42:328-354), blood/soft tissue ~1.
#:
#: With the default 80 kg patient this puts ~11 % of the injected Ga-68-PSMA-11 activity
#: (decay-corrected) in the kidneys, ~7 % in the liver, ~1 % in the spleen and ~32 % in the
#: whole torso phantom; the rest is outside it (bladder, salivary glands, head, legs,
#: excreted urine). ``StudyTruth.fraction_in_phantom`` gives the exact number.
TRACERS: dict[str, Tracer] = {
    "Ga-68-PSMA-11": Tracer(
        "Ga-68-PSMA-11",
        "Ga-68",
        "Ga-68 PSMA-11",
        ("C118961", "NCIt", "PSMA-11 Ga^68^"),
        150e6,
        {
            "body": 0.3,
            "soft_tissue": 0.8,
            "vertebral_column": 1.2,
            "lung_right": 0.4,
            "lung_left": 0.4,
            "liver": 5.0,
            "spleen": 6.5,
            "kidney_right": 30.0,
            "kidney_left": 30.0,
        },
        (20.0, 25.0, 12.0, 15.0),
    ),
    "F-18-PSMA-1007": Tracer(
        "F-18-PSMA-1007",
        "F-18",
        "F-18 PSMA-1007",
        ("126758", "DCM", "PSMA-1007 F^18^"),
        250e6,
        {
            "body": 0.3,
            "soft_tissue": 0.7,
            "vertebral_column": 1.5,
            "lung_right": 0.4,
            "lung_left": 0.4,
            "liver": 12.0,
            "spleen": 10.0,
            "kidney_right": 18.0,
            "kidney_left": 18.0,
        },
        (22.0, 25.0, 12.0, 16.0),
    ),
    "F-18-FDG": Tracer(
        "F-18-FDG",
        "F-18",
        "Fludeoxyglucose F^18^",
        ("35321007", "SCT", "Fluorodeoxyglucose F^18^"),
        250e6,
        {
            "body": 0.4,
            "soft_tissue": 0.9,
            "vertebral_column": 1.8,
            "lung_right": 0.5,
            "lung_left": 0.5,
            "liver": 2.5,
            "spleen": 2.0,
            "kidney_right": 3.0,
            "kidney_left": 3.0,
        },
        (8.0, 10.0, 6.0, 7.0),
    ),
}


def code_item(value: str, scheme: str, meaning: str) -> Dataset:
    """One Code Sequence Macro item."""
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def radiopharmaceutical_item(
    nuclide: Nuclide,
    *,
    radiopharmaceutical: str,
    code: tuple[str, str, str] | None,
    administration: datetime,
    total_dose: float,
    code_scheme: str,
    positron_fraction: bool,
) -> Dataset:
    """One Radiopharmaceutical Information Sequence item.

    ``total_dose`` is written as given: Bq for PET (PS3.3 C.8.9.2), MBq for NM
    (PS3.3 C.8.4.10 NM Isotope Module).
    """
    if code_scheme not in ("SRT", "SCT"):
        raise ValueError(f"code_scheme must be 'SRT' or 'SCT', got {code_scheme!r}")
    item = Dataset()
    item.Radiopharmaceutical = radiopharmaceutical
    if code is not None:
        value, scheme, meaning = code
        if scheme == "SCT" and code_scheme == "SRT" and value == "35321007":
            value, scheme = "C-B1031", "SRT"
        item.RadiopharmaceuticalCodeSequence = DicomSequence([code_item(value, scheme, meaning)])
    item.RadiopharmaceuticalRoute = "Intravenous route"
    route = ("G-D101", "SRT") if code_scheme == "SRT" else ("47625008", "SCT")
    item.AdministrationRouteCodeSequence = DicomSequence(
        [code_item(route[0], route[1], "Intravenous route")]
    )
    item.RadiopharmaceuticalStartTime = administration.strftime("%H%M%S.%f")
    item.RadiopharmaceuticalStartDateTime = administration.strftime("%Y%m%d%H%M%S.%f")
    item.RadionuclideTotalDose = f"{total_dose:.10g}"
    item.RadionuclideHalfLife = f"{nuclide.half_life_s:.10g}"
    if positron_fraction:
        item.RadionuclidePositronFraction = f"{nuclide.positron_fraction:.6g}"
    nuc_code = nuclide.code_srt if code_scheme == "SRT" else nuclide.code_sct
    item.RadionuclideCodeSequence = DicomSequence(
        [code_item(nuc_code, code_scheme, nuclide.code_meaning)]
    )
    return item
