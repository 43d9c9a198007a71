"""Unit conversion at the API edge.

Internally the workbench uses mm, s, Bq, Gy, J and kg. User-facing functions may accept
strings such as ``"7.4 GBq"`` or ``time_unit="h"``; they are converted here, against the
tables below, and an unknown unit is an error that lists the valid ones.

Constants
---------
MEV_TO_J
    1 MeV = 1.602176634e-13 J, exact since the 2019 SI redefinition (CODATA 2018,
    e = 1.602176634e-19 C).
CI_TO_BQ
    1 Ci = 3.7e10 Bq exactly (definition of the curie; BIPM SI Brochure, 9th ed., Table 8).
"""

from __future__ import annotations

import re

from .errors import UnitError

__all__ = [
    "MEV_TO_J",
    "CI_TO_BQ",
    "TIME_UNITS_S",
    "ACTIVITY_UNITS_BQ",
    "VOLUME_UNITS",
    "time_to_s",
    "s_to_time",
    "activity_to_bq",
    "bq_to_activity",
    "parse_activity",
    "parse_duration",
]

MEV_TO_J = 1.602176634e-13
KEV_TO_J = MEV_TO_J * 1e-3
CI_TO_BQ = 3.7e10

#: Seconds per time unit. A year is the Julian year of 365.25 d (IAU), the convention
#: of ICRP Publication 107 half-lives.
TIME_UNITS_S: dict[str, float] = {
    "s": 1.0,
    "min": 60.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "y": 365.25 * 86400.0,
    "ms": 1e-3,
    "us": 1e-6,
}

ACTIVITY_UNITS_BQ: dict[str, float] = {
    "Bq": 1.0,
    "kBq": 1e3,
    "MBq": 1e6,
    "GBq": 1e9,
    "TBq": 1e12,
    "uCi": 1e-6 * CI_TO_BQ,
    "mCi": 1e-3 * CI_TO_BQ,
    "Ci": CI_TO_BQ,
}

#: Units a :class:`dosimetry.Volume` may carry, with what they mean.
VOLUME_UNITS: dict[str, str] = {
    "Bq/mL": "activity concentration",
    "Bq": "activity per voxel",
    "Bq s": "time-integrated activity per voxel",
    "Bq s/Bq": "time-integrated activity per voxel per administered activity (s)",
    "1/mL": "fraction of injected activity per mL",
    "1": "dimensionless (mask, fraction, ratio)",
    "Gy": "absorbed dose",
    "Gy/s": "absorbed dose rate",
    "Gy/Bq": "absorbed dose per administered activity",
    "Gy_RBE": "RBE-weighted absorbed dose",
    "Gy_RBE/s": "RBE-weighted absorbed dose rate",
    "Gy_RBE/Bq": "RBE-weighted absorbed dose per administered activity",
    "Gy_EQD2": "equieffective dose in 2 Gy fractions",
    "Gy_BED": "biologically effective dose",
    "HU": "CT number (Hounsfield units)",
    "g/mL": "mass density",
    "counts": "detected counts",
    "counts/s": "count rate",
    "g/mL SUV": "standardised uptake value (body weight, g/mL)",
    "SUV": "standardised uptake value",
    "s": "time (e.g. fitted effective half-life map)",
}


def _lookup(unit: str, table: dict[str, float], what: str) -> float:
    if unit in table:
        return table[unit]
    lowered = {k.lower(): v for k, v in table.items()}
    key = unit.strip().lower()
    if key in lowered:
        return lowered[key]
    raise UnitError(f"unknown {what} unit {unit!r}; valid units are: {', '.join(table)}")


def time_to_s(value: float, unit: str) -> float:
    """Convert a time ``value`` in ``unit`` to seconds.

    >>> time_to_s(2.0, "h")
    7200.0
    """
    return float(value) * _lookup(unit, TIME_UNITS_S, "time")


def s_to_time(value_s: float, unit: str) -> float:
    """Convert seconds to ``unit``.

    >>> s_to_time(86400.0, "d")
    1.0
    """
    return float(value_s) / _lookup(unit, TIME_UNITS_S, "time")


def activity_to_bq(value: float, unit: str) -> float:
    """Convert an activity ``value`` in ``unit`` to Bq.

    >>> activity_to_bq(7.4, "GBq")
    7400000000.0
    """
    return float(value) * _lookup(unit, ACTIVITY_UNITS_BQ, "activity")


def bq_to_activity(value_bq: float, unit: str) -> float:
    """Convert Bq to ``unit``.

    >>> bq_to_activity(3.7e10, "mCi")
    1000.0
    """
    return float(value_bq) / _lookup(unit, ACTIVITY_UNITS_BQ, "activity")


_QUANTITY = re.compile(r"^\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*([A-Za-z]+)\s*$")


def _parse(text: str | float, table: dict[str, float], what: str, arg: str) -> float:
    if isinstance(text, int | float):
        raise UnitError(
            f"{arg}={text!r} has no unit; write it with one, e.g. {arg}='7.4 GBq' "
            f"(valid units: {', '.join(table)})"
        )
    m = _QUANTITY.match(str(text))
    if not m:
        raise UnitError(f"{arg}={text!r} is not '<number> <unit>'; valid units: {', '.join(table)}")
    return float(m.group(1)) * _lookup(m.group(2), table, what)


def parse_activity(text: str, arg: str = "activity") -> float:
    """Parse ``"7.4 GBq"`` (or mCi, MBq, ...) to Bq.

    >>> parse_activity("200 mCi")
    7400000000.0
    """
    return _parse(text, ACTIVITY_UNITS_BQ, "activity", arg)


def parse_duration(text: str, arg: str = "time") -> float:
    """Parse ``"48 h"`` (or s, min, d, y) to seconds.

    >>> parse_duration("1.5 h")
    5400.0
    """
    return _parse(text, TIME_UNITS_S, "time", arg)
