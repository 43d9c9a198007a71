"""Digital phantoms that write realistic DICOM studies together with their ground truth.

* :func:`make_torso` -- an anthropomorphic torso with neck and head (body, lungs,
  vertebral column, liver, spleen, kidneys, red marrow in the lumbar spine, parotid,
  submandibular and lacrimal glands, lesions) from analytic shapes, rasterised on a fine
  grid.
* :func:`write_pet_ct_study` -- CT + PET (Ga-68-PSMA-11, F-18-PSMA-1007, F-18-DCFPyL,
  F-18-FDG, Ga-68-DOTATATE; cited uptake per organ, :data:`TRACERS`) + RTSTRUCT of the
  phantom, returning a :class:`StudyTruth`.
* :func:`write_lu177_spect_study` -- multi-time-point post-therapy Lu-177 SPECT/CT with
  RTSTRUCT, returning a :class:`SpectTruth` (time-activity curves and TIA).

Every study is a deterministic function of its arguments (``seed`` included).
"""

from __future__ import annotations

from ._calibration import (
    IEC_SPHERE_DIAMETERS_MM,
    CylinderTruth,
    SpherePhantomTruth,
    write_calibration_cylinder,
    write_sphere_phantom,
)
from ._dicom import PatientInfo
from ._kinetics import LU177_PSMA617_KINETICS, LU177_PSMA617_LESION, TimeActivityCurve
from ._nuclear import NUCLIDES, TRACERS, Uptake
from ._pet import PET_DEFECTS, StudyTruth, write_pet_ct_study
from ._spect import SpectTimePoint, SpectTruth, write_lu177_spect_study
from ._torso import (
    DEFAULT_LESION_CLASSES,
    DEFAULT_LESIONS,
    HEAD_NECK_ORGANS,
    Structure,
    TorsoPhantom,
    make_torso,
)

__all__ = [
    "make_torso",
    "TorsoPhantom",
    "Structure",
    "DEFAULT_LESIONS",
    "DEFAULT_LESION_CLASSES",
    "HEAD_NECK_ORGANS",
    "PatientInfo",
    "write_pet_ct_study",
    "StudyTruth",
    "PET_DEFECTS",
    "TRACERS",
    "Uptake",
    "NUCLIDES",
    "write_lu177_spect_study",
    "SpectTruth",
    "SpectTimePoint",
    "TimeActivityCurve",
    "LU177_PSMA617_KINETICS",
    "LU177_PSMA617_LESION",
    "write_calibration_cylinder",
    "CylinderTruth",
    "write_sphere_phantom",
    "SpherePhantomTruth",
    "IEC_SPHERE_DIAMETERS_MM",
]
