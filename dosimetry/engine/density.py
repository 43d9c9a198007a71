"""Density handling for kernel convolution: tissue classes and the rho_ref/rho scaling.

The method (``method="vsv-density"`` of :func:`dosimetry.absorbed_dose`):

1. Every voxel is assigned a tissue class from its mass density: lung below
   ``density_class_lung_max_g_per_ml``, bone at or above
   ``density_class_bone_min_g_per_ml``, soft tissue in between (parameter table).
2. For each class present the activity map is convolved with that class's kernel
   (kernel computed in a homogeneous medium of the class), and the result is kept in the
   voxels of that class: tissue-specific kernels as in the multiple-VSV approach of
   Lee et al. 2018, with the target voxel's class selecting the kernel (this package's
   choice; a source-based assignment would convolve each class's activity instead).
3. The dose in each voxel is scaled by ``rho_kernel / rho_voxel`` (Dieudonne et al. 2013):
   the energy deposited per unit volume is assumed unchanged, the mass is the voxel's.

Limits: the scaling is exact only for the locally absorbed part in a voxel whose
surroundings have the voxel's density. Near interfaces (lung/soft tissue, bone/marrow)
electron transport across the boundary is not modelled; Dieudonne et al. report voxel
differences up to ~14 % against Monte Carlo without correction and a linear density
dependence that the correction removes on average. Photon attenuation along the path in
the patient is that of the kernel's homogeneous medium. Use direct Monte Carlo where
these matter (lung tumours, bone metastases). Measured against direct Monte Carlo of a
soft-tissue source voxel between lung and cortical bone (docs/dose.md): exact in the
source's medium; face neighbours across the interface off by -12 % to -37 % (bone) and
+4 % to +189 % (lung; Lu-177 at 2.21 mm the worst).

References
----------
Dieudonne A, Hobbs RF, Lebtahi R, et al. Study of the impact of tissue density
heterogeneities on 3-dimensional abdominal dosimetry: comparison between dose kernel
convolution and direct Monte Carlo methods. J Nucl Med 2013;54:236-243.

Lee MS, Kim JH, Paeng JC, et al. Whole-body voxel-based personalized dosimetry: the
multiple voxel S-value approach for heterogeneous media with nonuniform activity
distributions. J Nucl Med 2018;59:1133-1139.
"""

from __future__ import annotations

import numpy as np

from .. import parameters
from ..errors import InputDataError

__all__ = ["TISSUE_CLASSES", "tissue_classes", "density_scale"]

#: Class index -> medium name as understood by :func:`dosimetry.vsv_kernel`.
TISSUE_CLASSES: tuple[str, ...] = ("lung", "soft tissue", "bone")


def tissue_classes(
    density_g_per_ml: np.ndarray,
    lung_max_g_per_ml: float | None = None,
    bone_min_g_per_ml: float | None = None,
) -> np.ndarray:
    """Tissue class index per voxel: 0 lung, 1 soft tissue, 2 bone (see TISSUE_CLASSES).

    Parameters
    ----------
    density_g_per_ml
        Mass density map (g/mL).
    lung_max_g_per_ml, bone_min_g_per_ml
        Class boundaries; defaults from the parameter table
        (``density_class_lung_max_g_per_ml``, ``density_class_bone_min_g_per_ml``).

    Returns
    -------
    numpy.ndarray
        uint8 array of the map's shape.

    Examples
    --------
    >>> tissue_classes(np.array([0.3, 1.0, 1.9])).tolist()
    [0, 1, 2]
    """
    lo = parameters.resolve(lung_max_g_per_ml, "density_class_lung_max_g_per_ml")
    hi = parameters.resolve(bone_min_g_per_ml, "density_class_bone_min_g_per_ml")
    if not 0 < lo < hi:
        raise InputDataError(
            f"tissue class boundaries must satisfy 0 < lung_max ({lo}) < bone_min ({hi})"
        )
    rho = np.asarray(density_g_per_ml)
    out = np.ones(rho.shape, dtype=np.uint8)
    out[rho < lo] = 0
    out[rho >= hi] = 2
    return out


def density_scale(
    dose: np.ndarray, kernel_density_g_per_ml: float, density_g_per_ml: np.ndarray
) -> np.ndarray:
    """``dose * rho_kernel / rho_voxel`` (Dieudonne et al. 2013), a new array.

    >>> density_scale(np.array([2.0]), 1.0, np.array([0.5])).tolist()
    [4.0]
    """
    rho = np.asarray(density_g_per_ml, dtype=np.float64)
    if np.any(rho <= 0) or not np.all(np.isfinite(rho)):
        raise InputDataError("density must be finite and > 0 g/mL everywhere")
    return np.asarray(dose, dtype=np.float64) * (kernel_density_g_per_ml / rho)
