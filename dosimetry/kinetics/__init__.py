"""Kinetics: time-activity fits, time-integrated activity (TIA), single-time-point
methods, voxel-wise fits and population priors.

All functions work in Bq and s internally; user-facing ones accept ``time_unit`` and
``activity_unit`` strings at the edge.
"""

from __future__ import annotations

from ._decay import decay_correct, decay_factor, undo_decay_correction
from ._population import (
    PopulationHalfLife,
    canonical_agent,
    canonical_organ,
    population_biological_half_life_s,
    population_effective_half_life_s,
    population_table,
)

__all__ = [
    "decay_factor",
    "decay_correct",
    "undo_decay_correction",
    "PopulationHalfLife",
    "population_effective_half_life_s",
    "population_biological_half_life_s",
    "population_table",
    "canonical_agent",
    "canonical_organ",
]
