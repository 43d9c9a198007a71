"""Monte Carlo transport with ompmc (the ``[mc]`` extra): patient dose, the shared ompmc
driving code, media, and when kernels are not enough.

* :func:`patient_dose` -> :class:`MCResult`: dose, alpha part and per-voxel uncertainty
  by transport of every ICRP-107 emission in the patient's media (``method="mc"``).
* :func:`heterogeneity_flags`: per VOI, how much of it lies within an electron range or a
  photon distance of a lung, bone or air interface, the kernel methods' error band that
  implies, and whether Monte Carlo is recommended.
* :mod:`dosimetry.mc.materials`: density or label map -> ompmc media and densities.
* The ompmc driving code shared with the kernel-basis builder: :func:`physics_settings`,
  :data:`OMPMC_MEDIA`, :func:`emission_table`, :func:`sample_decay_particles`,
  :func:`write_phsp_records`, :func:`import_ompmc`.

Importing this package does not import ``ompmc`` (GPL-3.0): the transport runs in worker
processes that import it; without it a run raises
:class:`~dosimetry._optional.OptionalDependencyError` naming ``pip install 'dosimetry[mc]'``.
"""

from ._ompmc import (
    DIRECT_LOCAL_BELOW_MEV,
    OMPMC_MEDIA,
    PHSP_DTYPE,
    TRANSPORT,
    DecaySource,
    decay_source,
    emission_table,
    import_ompmc,
    isotropic_directions,
    physics_settings,
    sample_decay_particles,
    sample_emissions,
    sample_linear_pdf,
    write_phsp_records,
)
from .heterogeneity import HeterogeneityFlag, heterogeneity_flags
from .materials import MCPhantom, Medium, classify_density, mc_phantom, media
from .patient import MCResult, patient_dose

__all__ = [
    "MCResult",
    "patient_dose",
    "HeterogeneityFlag",
    "heterogeneity_flags",
    "MCPhantom",
    "Medium",
    "classify_density",
    "mc_phantom",
    "media",
    "DIRECT_LOCAL_BELOW_MEV",
    "OMPMC_MEDIA",
    "PHSP_DTYPE",
    "TRANSPORT",
    "DecaySource",
    "decay_source",
    "emission_table",
    "import_ompmc",
    "isotropic_directions",
    "physics_settings",
    "sample_decay_particles",
    "sample_emissions",
    "sample_linear_pdf",
    "write_phsp_records",
]
