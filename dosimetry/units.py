"""Unit conversion at the API edge.

Internally the workbench uses mm, s, Bq, Gy, J and kg. User-facing functions may accept
strings such as ``"7.4 GBq"`` or ``time_unit="h"``; they are converted here, against the
tables below, and an unknown unit is an error that lists the valid ones.

Activity units are matched exactly, with case-sensitive SI prefixes (BIPM, The
International System of Units, 9th ed. 2019, chapter 3: multiple prefix symbols are
upper case except da, h and k, submultiples lower case; "m" is milli, "M" is mega): ``"8 mBq"``
is 8 millibecquerel, ``"200 MCi"`` is refused (no such unit in use, and a slip for
``mCi`` cannot be told from one for ``MBq``), and case slips such as ``"gbq"``,
``"GBQ"`` or ``"mbq"`` are refused with the list of valid spellings rather than guessed.
The micro prefix may be written ``u``, ``µ`` (micro sign) or ``μ`` (Greek mu). Time
units, which have no case ambiguity among those listed, are matched case-insensitively.

Constants
---------
MEV_TO_J
    1 MeV = 1.602176634e-13 J, exact since the 2019 SI redefinition (CODATA 2018,
    e = 1.602176634e-19 C).
CI_TO_BQ
    1 Ci = 3.7e10 Bq exactly (definition of the curie; BIPM SI Brochure, 9th ed., Table 8).
"""

from __future__ import annotations

import math
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
    "format_activity",
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

#: Activity units, matched exactly (case-sensitive SI prefixes).
ACTIVITY_UNITS_BQ: dict[str, float] = {
    "mBq": 1e-3,
    "Bq": 1.0,
    "kBq": 1e3,
    "MBq": 1e6,
    "GBq": 1e9,
    "TBq": 1e12,
    "uCi": 1e-6 * CI_TO_BQ,
    "µCi": 1e-6 * CI_TO_BQ,
    "mCi": 1e-3 * CI_TO_BQ,
    "Ci": CI_TO_BQ,
}
#: Other spellings of the same units (Greek small mu U+03BC for the micro sign U+00B5).
_ACTIVITY_ALIASES = {"μCi": "µCi"}

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
    if not isinstance(unit, str):
        raise UnitError(
            f"{what} unit {unit!r} is not a string; valid units are: {', '.join(table)}"
        )
    if unit in table:
        return table[unit]
    key = unit.strip()
    if table is ACTIVITY_UNITS_BQ:
        key = _ACTIVITY_ALIASES.get(key, key)
        if key in table:
            return table[key]
        near = [k for k in table if k.lower() == key.lower()]
        hint = ""
        if near:
            hint = (
                " (SI prefixes are case-sensitive; in another case these letters spell "
                f"{' or '.join(near)})"
            )
        raise UnitError(
            f"unknown {what} unit {unit!r}{hint}; valid units, spelled exactly: {', '.join(table)}"
        )
    lowered = {k.lower(): v for k, v in table.items()}
    if key.lower() in lowered:
        return lowered[key.lower()]
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


_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµμ]+)\s*$")


def _parse(text: str | float, table: dict[str, float], what: str, arg: str) -> float:
    if isinstance(text, int | float):
        raise UnitError(
            f"{arg}={text!r} has no unit; write it with one, e.g. {arg}='7.4 GBq' "
            f"(valid units: {', '.join(table)})"
        )
    m = _QUANTITY.match(str(text))
    if not m:
        raise UnitError(f"{arg}={text!r} is not '<number> <unit>'; valid units: {', '.join(table)}")
    try:
        return float(m.group(1)) * _lookup(m.group(2), table, what)
    except UnitError as exc:
        raise UnitError(f"{arg}={text!r}: {exc}") from None


def parse_activity(text: str, arg: str = "activity") -> float:
    """Parse ``"7.4 GBq"`` (or mCi, MBq, ...) to Bq.

    >>> parse_activity("200 mCi")
    7400000000.0
    """
    return _parse(text, ACTIVITY_UNITS_BQ, "activity", arg)


_FORMAT_PREFIXES = ((1e12, "TBq"), (1e9, "GBq"), (1e6, "MBq"), (1e3, "kBq"), (1.0, "Bq"))


def format_activity(value_bq: float) -> str:
    """An activity in Bq as text with three significant digits and the SI prefix that
    puts the number in [1, 1000) (TBq above, mBq below 1 Bq).

    >>> format_activity(7.4e9), format_activity(8e6), format_activity(1.5e5)
    ('7.40 GBq', '8.00 MBq', '150 kBq')
    >>> format_activity(999.6e3), format_activity(0.0)
    ('1.00 MBq', '0 Bq')
    """
    v = float(value_bq)
    if not math.isfinite(v):
        raise UnitError(f"value_bq={value_bq!r} is not a finite activity")
    if v == 0.0:
        return "0 Bq"
    mag = abs(float(f"{abs(v):.3g}"))  # rounded to 3 significant digits first
    factor, unit = next(((f, u) for f, u in _FORMAT_PREFIXES if mag >= f), (1e-3, "mBq"))
    x = float(f"{v / factor:.3g}")
    if abs(x) >= 1000 or abs(x) < 1:  # beyond TBq or below 1 mBq: no prefix left
        return f"{v / factor:.3g} {unit}"
    digits = 0 if abs(x) >= 100 else (1 if abs(x) >= 10 else 2)
    return f"{x:.{digits}f} {unit}"


def parse_duration(text: str, arg: str = "time") -> float:
    """Parse ``"48 h"`` (or s, min, d, y) to seconds.

    >>> parse_duration("1.5 h")
    5400.0
    """
    return _parse(text, TIME_UNITS_S, "time", arg)
