"""Kinetics: time-activity fits, time-integrated activity (TIA), single-time-point
methods, voxel-wise fits and population priors.

All functions work in Bq and s internally; user-facing ones accept ``time_unit`` and
``activity_unit`` strings at the edge.
"""

from __future__ import annotations

from ._decay import decay_correct, decay_factor, undo_decay_correction
from ._models import EXP_MODELS, ExpModel
from ._population import (
    PopulationHalfLife,
    canonical_agent,
    canonical_organ,
    population_biological_half_life_s,
    population_effective_half_life_s,
    population_record,
    population_table,
)
from ._relations import (
    RELATION_ORGANS,
    LiteratureDose,
    UptakeRelation,
    literature_dose_range,
    literature_doses,
    relation_organ,
    uptake_relation,
    uptake_relation_table,
    uptake_relations,
)
from ._stp import StpTia, hanscheid_ratio, stp_tia
from ._tac import MODELS, TacFit, fit_tac
from ._voxel import STATUS_MEANING, VoxelFitResult, fit_voxels

__all__ = [
    "fit_tac",
    "TacFit",
    "MODELS",
    "EXP_MODELS",
    "ExpModel",
    "stp_tia",
    "StpTia",
    "hanscheid_ratio",
    "fit_voxels",
    "VoxelFitResult",
    "STATUS_MEANING",
    "decay_factor",
    "decay_correct",
    "undo_decay_correction",
    "PopulationHalfLife",
    "population_effective_half_life_s",
    "population_record",
    "population_biological_half_life_s",
    "population_table",
    "canonical_agent",
    "canonical_organ",
    "UptakeRelation",
    "uptake_relation",
    "uptake_relations",
    "uptake_relation_table",
    "relation_organ",
    "RELATION_ORGANS",
    "LiteratureDose",
    "literature_doses",
    "literature_dose_range",
]
