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

Radiopharmaceuticals (CID 4021 unless stated): PSMA-11 Ga^68^ (NCIt C118961), PSMA-1007
F^18^ (DCM 126758), Piflufolastat F^18^ (= DCFPyL, NCIt C116352), Dotatate Ga^68^ (SCT
724025002; no SRT equivalent in the tables, so it is written as SCT in both schemes),
Fluorodeoxyglucose F^18^ (SCT 35321007 / SRT C-B1031). No code exists in PS3.16 for
Lu-177 PSMA-617; its sequence item carries the free-text name only (pydicom also lists
"Lutetium^177^ DOTATATE", SCT 781259000, in CID 25).

Uptake: :data:`TRACERS` gives each phantom region a cited SUV (or says that none was
found, ``Uptake.source`` starting with "not sourced"); see the comment above it and
``docs/literature_doses.md``. The phantom's Lu-177 kinetics (:mod:`phantoms._kinetics`)
come from a separate literature (post-therapy Lu-177 dosimetry), so that a PET-based
prediction compared with the SPECT-measured dose of the same phantom is not tuned by
construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

__all__ = [
    "Nuclide",
    "Tracer",
    "Uptake",
    "NUCLIDES",
    "TRACERS",
    "radiopharmaceutical_item",
    "code_item",
]


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
class Uptake:
    """One region's assumed uptake in a tracer table, with where it came from.

    Attributes
    ----------
    suv
        SUV (body weight, g/mL) given to the whole region in the phantom (uniform).
    basis
        What the number is: ``"SUVmean"``, ``"median SUVmean"``, ``"SUVmax"`` (a published
        SUVmax used as the uniform value), or ``"assumption"`` (no source).
    source
        Citation of the value, or ``"not sourced: ..."`` saying why there is none.
    """

    suv: float
    basis: str
    source: str


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
    uptake
        :class:`Uptake` (SUV, basis, source) of each phantom region at the default uptake
        time (about 1 h p.i.).
    lesion_uptake
        :class:`Uptake` of the lesions, in phantom lesion order (the last value repeats).
    activity_source
        Where the default activity comes from (or ``"not sourced: ..."``).
    """

    name: str
    nuclide: str
    radiopharmaceutical: str
    code: tuple[str, str, str] | None
    default_activity_bq: float
    uptake: Mapping[str, Uptake] = field(default_factory=dict)
    lesion_uptake: tuple[Uptake, ...] = ()
    activity_source: str = ""

    @property
    def suv(self) -> dict[str, float]:
        """Region -> SUV (body weight, g/mL)."""
        return {k: v.suv for k, v in self.uptake.items()}

    @property
    def lesion_suv(self) -> tuple[float, ...]:
        """Lesion SUVs in phantom lesion order."""
        return tuple(u.suv for u in self.lesion_uptake)


# --- sources -------------------------------------------------------------------------------
#: 68Ga-PSMA-11, 80 PET/CT scans; normal organs: mean of the SUVmean of each scan;
#: lesions: mean SUVmax by class.
MUCHNIK_2020 = (
    "Muchnik Kurash M, Gill R, Khairulin M, Harbosh H, Keidar Z. 68Ga-labeled PSMA-11 "
    "(68Ga-isoPROtrace-11) synthesized with ready to use kit: normal biodistribution and "
    "uptake characteristics of tumour lesions. Sci Rep 2020;10:3109. "
    "doi:10.1038/s41598-020-60099-y (80 scans)"
)
#: 50 patients with both 68Ga-PSMA-11 and 18F-PSMA-1007 PET within one year; SUVmean.
PSMA11_VS_1007_2024 = (
    "Evaluating the biodistribution for [68Ga]Ga-PSMA-11 and [18F]F-PSMA-1007 PET/CT with an "
    "inter- and intrapatient based analysis. EJNMMI Res 2024 (published 2024-04-06). "
    "doi:10.1186/s13550-024-01097-3 (50 patients, both tracers; authors not shown on the "
    "pages read)"
)
#: 68Ga-PSMA PET/CT of 55 men; SUVmax mean +- SD of normal organs.
PSMA11_CNM_2017 = (
    "Evaluation of practical interpretation hurdles in 68Ga-PSMA PET/CT in 55 patients: "
    "physiological tracer distribution and incidental tracer uptake. Clin Nucl Med "
    "2017;42(7) (Ovid accession 00003072-201707000-00028; authors not shown on the page "
    "read)"
)
#: 18F-PSMA-1007 PET-CT of 1086 patients; median (IQR) SUVmean of organs at risk.
TRAGARDH_2025 = (
    "Trägårdh E, Larsson M, Minarik D, Enqvist O, Edenbrandt L. Evaluation of "
    "[18F]PSMA-1007 uptake variability in patients with prostate cancer. Clin Physiol Funct "
    "Imaging 2025. doi:10.1111/cpf.70016 (1086 patients)"
)
#: 18F-DCFPyL, 65 scans of 64 patients; SUVmean mean +- SD per organ and side.
DCFPYL_2017 = (
    "Semiquantitative parameters in PSMA-targeted PET imaging with 18F-DCFPyL: variability "
    "in normal-organ uptake. J Nucl Med 2017;58(6):942 (PMC5450367; 65 scans of 64 "
    "patients; authors not listed on the pages read)"
)
#: 68Ga-DOTATATE PET/CT of 120 patients; mean SUVmax of normal organs and tumour classes.
DOTATATE_ANM_2013 = (
    "Physiological and tumoral uptake of 68Ga-DOTATATE: standardized uptake values and "
    "challenges in interpretation. Ann Nucl Med 2013. doi:10.1007/s12149-013-0718-4 "
    "(120 patients; authors not shown on the page read)"
)
WALKER_2013 = (
    "Walker RC, Smith GT, Liu E, Moore B, Clanton J, Stabin M. Measured human dosimetry of "
    "68Ga-DOTATATE. J Nucl Med 2013;54(6):855-860. doi:10.2967/jnumed.112.114165"
)
OZGUVEN_2021 = (
    "Özgüven S, Filizoğlu N, Kesim S, et al. Physiological biodistribution of 68Ga-DOTA-TATE "
    "in normal subjects. Mol Imaging Radionucl Ther 2021;30(1):39-46 (118 subjects)"
)
PFOB_2016 = (
    "Pfob CH et al. Biodistribution and radiation dosimetry of 68Ga-PSMA HBED CC - a PSMA "
    "specific probe for PET imaging of prostate cancer. Eur J Nucl Med Mol Imaging 2016 "
    "(abstract as indexed by UroToday: 'a standard activity of 150 MBq')"
)
GIESEL_2017 = (
    "Giesel FL, Hadaschik B, Cardinale J, et al. F-18 labelled PSMA-1007: biodistribution, "
    "radiation dosimetry and histopathological validation of tumor lesions in prostate "
    "cancer patients. Eur J Nucl Med Mol Imaging 2017;44(4):678-688. "
    "doi:10.1007/s00259-016-3573-4 ('200-250 MBq examination')"
)
SZABO_2015 = (
    "Szabo Z, Mena E, Rowe SP, et al. Initial evaluation of [18F]DCFPyL for prostate-specific "
    "membrane antigen (PSMA)-targeted PET imaging of prostate cancer. Mol Imaging Biol "
    "2015;17(4):565-574 ('an injected dose of 370 MBq')"
)
BOELLAARD_2015 = (
    "Boellaard R et al. FDG PET/CT: EANM procedure guidelines for tumour imaging: version "
    "2.0. Eur J Nucl Med Mol Imaging 2015;42:328-354 (liver reference region SUVmean ~2-3)"
)

_BACKGROUND = "not sourced: background tissue value, a phantom assumption"
_NO_GLAND_FDG = "not sourced: no organ-specific FDG value read; the soft-tissue value is used"
_MARROW = "not sourced: no marrow SUV read for this tracer; the vertebral-column value is used"


def _a(suv: float, source: str = _BACKGROUND) -> Uptake:
    return Uptake(suv, "assumption", source)


def _pair(names: tuple[str, str], value: Uptake) -> dict[str, Uptake]:
    return {names[0]: value, names[1]: value}


_KIDNEYS = ("kidney_right", "kidney_left")
_LUNGS = ("lung_right", "lung_left")
_PAROTIDS = ("parotid_right", "parotid_left")
_SUBMANDIBULARS = ("submandibular_right", "submandibular_left")
_LACRIMALS = ("lacrimal_right", "lacrimal_left")

_PSMA11_LESIONS: tuple[Uptake, ...] = (
    Uptake(24.2, "SUVmax", f"{MUCHNIK_2020}: soft-tissue metastases (liver lesion)"),
    Uptake(14.6, "SUVmax", f"{MUCHNIK_2020}: lymph-node metastases"),
    Uptake(24.2, "SUVmax", f"{MUCHNIK_2020}: soft-tissue metastases (lung nodule)"),
    Uptake(15.9, "SUVmax", f"{MUCHNIK_2020}: bone metastases"),
)


def _psma_lesions_from_psma11(tracer: str, reason: str) -> tuple[Uptake, ...]:
    return tuple(
        Uptake(u.suv, u.basis, f"not sourced for {tracer}: {reason}; {u.source}")
        for u in _PSMA11_LESIONS
    )


#: Uptake per phantom region about 1 h p.i., as SUV (body weight, g/mL), each with its
#: source. The phantom gives a region one uniform value; a published SUVmean is used as
#: it is; where only SUVmax was found it is used as the uniform value (basis "SUVmax": an
#: upper-side choice for large organs; for glands of a few mL and for lesions the imaged
#: SUVmax is itself lowered by partial volume, so the true concentration is if anything
#: higher). The fraction of injected activity a region holds at the PET time follows as
#: %IA = SUV x V / W (V region volume in mL, W body weight in g; 80 kg default), see
#: :attr:`phantoms.StudyTruth.organ_fraction_injected` and ``docs/literature_doses.md``.
#: Values are converted consistently from the cited SUVs; no %IA was found that could be
#: used directly for all organs.
TRACERS: dict[str, Tracer] = {
    "Ga-68-PSMA-11": Tracer(
        "Ga-68-PSMA-11",
        "Ga-68",
        "Ga-68 PSMA-11",
        ("C118961", "NCIt", "PSMA-11 Ga^68^"),
        150e6,
        {
            "body": _a(0.3),
            "soft_tissue": _a(0.8),
            "vertebral_column": _a(1.2),
            **_pair(_LUNGS, _a(0.4)),
            "liver": Uptake(5.4, "SUVmean", f"{PSMA11_VS_1007_2024}: 5.4 +- 1.7"),
            "spleen": Uptake(8.1, "SUVmean", f"{PSMA11_VS_1007_2024}: 8.1 +- 3.5"),
            **_pair(_KIDNEYS, Uptake(41.7, "SUVmean", MUCHNIK_2020)),
            "red_marrow": _a(1.2, _MARROW),
            **_pair(_PAROTIDS, Uptake(14.5, "SUVmean", MUCHNIK_2020)),
            **_pair(_SUBMANDIBULARS, Uptake(13.02, "SUVmean", MUCHNIK_2020)),
            **_pair(_LACRIMALS, Uptake(15.7, "SUVmax", f"{PSMA11_CNM_2017}: 15.7 +- 7.2")),
        },
        _PSMA11_LESIONS,
        f"{PFOB_2016}",
    ),
    "F-18-PSMA-1007": Tracer(
        "F-18-PSMA-1007",
        "F-18",
        "F-18 PSMA-1007",
        ("126758", "DCM", "PSMA-1007 F^18^"),
        250e6,
        {
            "body": _a(0.3),
            "soft_tissue": _a(0.7),
            "vertebral_column": _a(1.5),
            **_pair(_LUNGS, _a(0.4)),
            "liver": Uptake(11.8, "median SUVmean", f"{TRAGARDH_2025}: 11.8 (IQR 4.4)"),
            "spleen": Uptake(11.3, "median SUVmean", f"{TRAGARDH_2025}: 11.3 (IQR 5.8)"),
            **_pair(_KIDNEYS, Uptake(13.1, "median SUVmean", f"{TRAGARDH_2025}: 13.1 (IQR 4.6)")),
            "red_marrow": _a(1.5, _MARROW),
            **_pair(_PAROTIDS, Uptake(18.6, "median SUVmean", f"{TRAGARDH_2025}: 18.6 (IQR 6.8)")),
            **_pair(
                _SUBMANDIBULARS,
                _a(18.6, "not sourced: no PSMA-1007 submandibular value read; parotid value"),
            ),
            **_pair(
                _LACRIMALS,
                _a(18.6, "not sourced: no PSMA-1007 lacrimal value read; parotid value"),
            ),
        },
        _psma_lesions_from_psma11(
            "F-18-PSMA-1007",
            "68Ga-PSMA-11 lesion values; malignant lesions did not show higher SUVmean on "
            f"PSMA-1007 than on PSMA-11 in {PSMA11_VS_1007_2024}",
        ),
        GIESEL_2017,
    ),
    "F-18-DCFPyL": Tracer(
        "F-18-DCFPyL",
        "F-18",
        "F-18 DCFPyL",
        ("C116352", "NCIt", "Piflufolastat F^18^"),
        370e6,
        {
            "body": _a(0.3),
            "soft_tissue": _a(0.8),
            "vertebral_column": _a(1.2),
            **_pair(_LUNGS, _a(0.4)),
            "liver": Uptake(5.0, "SUVmean", f"{DCFPYL_2017}: whole liver 5.0 +- 0.7"),
            "spleen": Uptake(4.0, "SUVmean", f"{DCFPYL_2017}: 4.0 +- 1.5"),
            "kidney_right": Uptake(20.1, "SUVmean", f"{DCFPYL_2017}: 20.1 +- 4.6"),
            "kidney_left": Uptake(19.4, "SUVmean", f"{DCFPYL_2017}: 19.4 +- 4.5"),
            "red_marrow": _a(1.2, _MARROW),
            "parotid_right": Uptake(9.1, "SUVmean", f"{DCFPYL_2017}: 9.1 +- 2.0"),
            "parotid_left": Uptake(9.0, "SUVmean", f"{DCFPYL_2017}: 9.0 +- 2.1"),
            "submandibular_right": Uptake(9.6, "SUVmean", f"{DCFPYL_2017}: 9.6 +- 2.3"),
            "submandibular_left": Uptake(9.4, "SUVmean", f"{DCFPYL_2017}: 9.4 +- 2.2"),
            "lacrimal_right": Uptake(6.6, "SUVmean", f"{DCFPYL_2017}: 6.6 +- 1.8"),
            "lacrimal_left": Uptake(6.4, "SUVmean", f"{DCFPYL_2017}: 6.4 +- 1.8"),
        },
        _psma_lesions_from_psma11(
            "F-18-DCFPyL", "no DCFPyL lesion SUV read; 68Ga-PSMA-11 lesion values"
        ),
        SZABO_2015,
    ),
    "F-18-FDG": Tracer(
        "F-18-FDG",
        "F-18",
        "Fludeoxyglucose F^18^",
        ("35321007", "SCT", "Fluorodeoxyglucose F^18^"),
        250e6,
        {
            "body": _a(0.4),
            "soft_tissue": _a(0.9),
            "vertebral_column": _a(1.8),
            **_pair(_LUNGS, _a(0.5)),
            "liver": Uptake(2.5, "SUVmean", BOELLAARD_2015),
            "spleen": _a(2.0),
            **_pair(_KIDNEYS, _a(3.0)),
            "red_marrow": _a(1.8, _MARROW),
            **_pair(_PAROTIDS, _a(0.9, _NO_GLAND_FDG)),
            **_pair(_SUBMANDIBULARS, _a(0.9, _NO_GLAND_FDG)),
            **_pair(_LACRIMALS, _a(0.9, _NO_GLAND_FDG)),
        },
        tuple(_a(v, "not sourced: FDG lesion SUV, a phantom assumption") for v in (8, 10, 6, 7)),
        "not sourced: typical adult activity, a phantom assumption",
    ),
    "Ga-68-DOTATATE": Tracer(
        "Ga-68-DOTATATE",
        "Ga-68",
        "Ga-68 DOTATATE",
        ("724025002", "SCT", "Dotatate Ga^68^"),
        185e6,
        {
            "body": _a(0.3),
            "soft_tissue": _a(0.8),
            "vertebral_column": _a(1.2),
            **_pair(_LUNGS, _a(0.4)),
            "liver": Uptake(9.12, "SUVmax", f"{DOTATATE_ANM_2013}: mean SUVmax 9.12"),
            "spleen": Uptake(24.67, "SUVmax", f"{DOTATATE_ANM_2013}: mean SUVmax 24.67"),
            **_pair(_KIDNEYS, Uptake(14.30, "SUVmax", f"{DOTATATE_ANM_2013}: mean SUVmax 14.30")),
            "red_marrow": _a(1.2, _MARROW),
            **_pair(
                _PAROTIDS,
                _a(0.8, f"not sourced: 'minimal to mild' uptake ({OZGUVEN_2021}); soft tissue"),
            ),
            **_pair(
                _SUBMANDIBULARS,
                _a(0.8, f"not sourced: 'minimal to mild' uptake ({OZGUVEN_2021}); soft tissue"),
            ),
            **_pair(_LACRIMALS, _a(0.8, "not sourced: no DOTATATE lacrimal value; soft tissue")),
        },
        (
            Uptake(28.72, "SUVmax", f"{DOTATATE_ANM_2013}: liver lesions"),
            Uptake(12.59, "SUVmax", f"{DOTATATE_ANM_2013}: lymph nodes"),
            Uptake(
                12.59,
                "SUVmax",
                f"not sourced for a lung nodule: lymph-node value of {DOTATATE_ANM_2013}",
            ),
            Uptake(18.28, "SUVmax", f"{DOTATATE_ANM_2013}: bone lesions"),
        ),
        f"{WALKER_2013} (Table 3: typical administered activity 185 MBq)",
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
