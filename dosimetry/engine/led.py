"""Local energy deposition (LED): all locally absorbed energy stays in the source voxel.

The dose in voxel ``v`` is ``D_v = A~_v * E_local / m_v`` with ``A~_v`` the number of decays
(time-integrated activity, Bq s), ``E_local`` the energy absorbed locally per decay (J) and
``m_v`` the voxel mass (kg) from its density. Nothing here depends on a kernel library.

References
----------
Pasciak AS, Bourgeois AC, McKinney JM, et al. Radioembolization and the dynamic role of
90Y PET/CT. Front Oncol 2014;4:38 (local deposition method for voxel dosimetry).

Bolch WE, Eckerman KF, Sgouros G, Thomas SR. MIRD Pamphlet No. 21: a generalized schema
for radiopharmaceutical dosimetry. J Nucl Med 2009;50:477-484.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputDataError

__all__ = ["local_dose", "voxel_mass_kg"]

#: kg per (g/mL x mL): 1 g = 1e-3 kg.
_KG_PER_G = 1e-3


def voxel_mass_kg(density_g_per_ml: float | np.ndarray, voxel_volume_ml: float) -> np.ndarray:
    """Mass (kg) of voxels of ``voxel_volume_ml`` at ``density_g_per_ml``.

    >>> print(f"{voxel_mass_kg(1.04, 0.064):.4e}")
    6.6560e-05
    """
    return np.multiply(np.asarray(density_g_per_ml, dtype=np.float64), voxel_volume_ml * _KG_PER_G)


def local_dose(
    tia_bq_s: np.ndarray,
    energy_per_decay_j: float,
    voxel_volume_ml: float,
    density_g_per_ml: float | np.ndarray,
    *,
    dtype: type[np.floating] = np.float64,
) -> np.ndarray:
    """Dose (Gy) from depositing ``energy_per_decay_j`` per decay in the source voxel.

    Parameters
    ----------
    tia_bq_s
        Decays per voxel (Bq s), any shape; finite and non-negative (checked by callers).
    energy_per_decay_j
        Energy absorbed locally per decay (J), >= 0.
    voxel_volume_ml
        Volume of one voxel (mL).
    density_g_per_ml
        Scalar, or an array of ``tia_bq_s``'s shape, > 0 (g/mL).
    dtype
        Output dtype; the arithmetic is done in float64 and cast at the end.

    Returns
    -------
    numpy.ndarray
        Absorbed dose (Gy), a new array of ``tia_bq_s``'s shape.

    Examples
    --------
    >>> import numpy as np
    >>> d = local_dose(np.array([[[1e6]]]), 1.602176634e-13, 1.0, 1.0)  # 1 MeV x 1e6 in 1 g
    >>> print(f"{d[0, 0, 0]:.6e}")
    1.602177e-04
    """
    if not np.isfinite(energy_per_decay_j) or energy_per_decay_j < 0:
        raise InputDataError(
            f"energy_per_decay_j must be finite and >= 0, got {energy_per_decay_j!r}"
        )
    if voxel_volume_ml <= 0 or not np.isfinite(voxel_volume_ml):
        raise InputDataError(f"voxel_volume_ml must be > 0, got {voxel_volume_ml!r}")
    rho = np.asarray(density_g_per_ml, dtype=np.float64)
    if not np.all(np.isfinite(rho)) or np.any(rho <= 0):
        raise InputDataError("density_g_per_ml must be finite and > 0 everywhere")
    mass_kg = voxel_mass_kg(rho, voxel_volume_ml)
    out = np.asarray(tia_bq_s, dtype=np.float64) * (energy_per_decay_j / mass_kg)
    return np.asarray(out, dtype=dtype)
