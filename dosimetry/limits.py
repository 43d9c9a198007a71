"""Organ-at-risk dose limits for radiopharmaceutical therapy, with their sources.

The table ``dosimetry/data/organ_dose_limits.csv`` lists, per organ and quantity
(``"absorbed_dose"`` or ``"bed"``), the limit in Gy, its status and its citation:

* ``limit``: a threshold used in practice for planning (e.g. kidneys 23 Gy, BED 28/40 Gy,
  red marrow 2 Gy), even where it was transferred from another modality (said in
  ``context`` and ``notes``);
* ``reported``: a literature threshold that is reported beside the result but is not an
  accepted limit for radiopharmaceutical therapy (salivary glands, liver);
* ``no_accepted_threshold``: the organ is reported, no threshold could be sourced
  (lacrimal glands); ``limit_gy`` is ``None``.

Every row is overridable: :func:`organ_dose_limits` takes ``overrides`` (organ, quantity,
condition) -> value, or a whole replacement table (``path``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from .errors import InputDataError

__all__ = ["OrganDoseLimit", "organ_dose_limits", "organ_dose_limit", "LIMIT_QUANTITIES"]

LIMIT_QUANTITIES = ("absorbed_dose", "bed")
_STATUSES = ("limit", "reported", "no_accepted_threshold")
_COLUMNS = ("organ", "quantity", "limit_gy", "status", "condition", "context", "citation", "notes")


@dataclass(frozen=True)
class OrganDoseLimit:
    """One row of the organ dose-limit table.

    Attributes
    ----------
    organ
        ``"kidneys"``, ``"red_marrow"``, ``"salivary_glands"``, ``"lacrimal_glands"``,
        ``"liver"``, ...
    quantity
        ``"absorbed_dose"`` (Gy, or Gy_RBE for alpha emitters) or ``"bed"`` (Gy).
    limit_gy
        The threshold (Gy), ``None`` when no threshold could be sourced.
    status
        ``"limit"``, ``"reported"`` or ``"no_accepted_threshold"``.
    condition
        When the row applies (e.g. "patients with renal risk factors").
    context, citation, notes
        Where the number comes from and its caveats.
    """

    organ: str
    quantity: Literal["absorbed_dose", "bed"]
    limit_gy: float | None
    status: str
    condition: str
    context: str
    citation: str
    notes: str = ""

    @property
    def is_limit(self) -> bool:
        """True for rows meant to constrain a plan (status ``"limit"`` with a value)."""
        return self.status == "limit" and self.limit_gy is not None


def _parse(text: str, source: str) -> tuple[OrganDoseLimit, ...]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputDataError(f"{source} lacks the column(s) {', '.join(missing)}")
    rows: list[OrganDoseLimit] = []
    seen: set[tuple[str, str, str]] = set()
    for i, row in enumerate(reader, start=2):
        organ, quantity = row["organ"].strip(), row["quantity"].strip()
        status, condition = row["status"].strip(), row["condition"].strip()
        if quantity not in LIMIT_QUANTITIES:
            raise InputDataError(
                f"{source} line {i}: quantity {quantity!r} not in {', '.join(LIMIT_QUANTITIES)}"
            )
        if status not in _STATUSES:
            raise InputDataError(f"{source} line {i}: status {status!r} not in {_STATUSES}")
        raw = row["limit_gy"].strip()
        value: float | None
        if raw:
            try:
                value = float(raw)
            except ValueError as exc:
                raise InputDataError(
                    f"{source} line {i}: limit_gy {raw!r} is not a number"
                ) from exc
            if not (value > 0 and math.isfinite(value)):
                raise InputDataError(f"{source} line {i}: limit_gy must be > 0, got {value}")
        else:
            value = None
        if value is None and status != "no_accepted_threshold":
            raise InputDataError(
                f"{source} line {i}: {organ} {quantity} has no value; status must then be "
                "'no_accepted_threshold'"
            )
        key = (organ, quantity, condition)
        if key in seen:
            raise InputDataError(f"{source} lists {key} twice")
        seen.add(key)
        if not row["citation"].strip():
            raise InputDataError(f"{source} line {i}: every row needs a citation (or 'none: ...')")
        rows.append(
            OrganDoseLimit(
                organ=organ,
                quantity=quantity,  # type: ignore[arg-type]
                limit_gy=value,
                status=status,
                condition=condition,
                context=row["context"].strip(),
                citation=row["citation"].strip(),
                notes=(row.get("notes") or "").strip(),
            )
        )
    return tuple(rows)


@lru_cache(maxsize=1)
def _default_rows() -> tuple[OrganDoseLimit, ...]:
    text = resources.files("dosimetry").joinpath("data/organ_dose_limits.csv").read_text("utf-8")
    return _parse(text, "organ_dose_limits.csv")


def organ_dose_limits(
    path: str | Path | None = None,
    overrides: Mapping[tuple[str, str] | tuple[str, str, str], float] | None = None,
) -> list[OrganDoseLimit]:
    """All rows of the organ dose-limit table, with user overrides applied.

    Parameters
    ----------
    path
        A replacement CSV with the same columns (default: the packaged table).
    overrides
        ``(organ, quantity)`` or ``(organ, quantity, condition)`` -> limit (Gy). A 2-tuple
        applies to every condition of that organ and quantity; an override of a key that is
        not in the table adds a row (status ``"limit"``, citation ``"user override"``).

    Returns
    -------
    list of OrganDoseLimit

    Examples
    --------
    >>> rows = organ_dose_limits(overrides={("kidneys", "absorbed_dose"): 20.0})
    >>> [r.limit_gy for r in rows if r.organ == "kidneys" and r.quantity == "absorbed_dose"]
    [20.0]
    """
    if path is None:
        rows = list(_default_rows())
    else:
        p = Path(path)
        rows = list(_parse(p.read_text("utf-8"), str(p)))
    for key, value in (overrides or {}).items():
        v = float(value)
        if not (v > 0 and math.isfinite(v)):
            raise InputDataError(f"override {key} must be a finite limit > 0 Gy, got {value!r}")
        if len(key) not in (2, 3) or key[1] not in LIMIT_QUANTITIES:
            raise InputDataError(
                f"override key {key!r} must be (organ, quantity[, condition]) with quantity in "
                f"{LIMIT_QUANTITIES}"
            )
        hit = False
        for i, r in enumerate(rows):
            if (
                r.organ == key[0]
                and r.quantity == key[1]
                and (len(key) == 2 or r.condition == key[2])
            ):
                rows[i] = replace(
                    r,
                    limit_gy=v,
                    status="limit",
                    citation=f"user override (table value {r.limit_gy} Gy: {r.citation})",
                )
                hit = True
        if not hit:
            rows.append(
                OrganDoseLimit(
                    organ=key[0],
                    quantity=key[1],  # type: ignore[arg-type]
                    limit_gy=v,
                    status="limit",
                    condition=key[2] if len(key) == 3 else "",
                    context="user-defined limit",
                    citation="user override",
                )
            )
    return rows


def organ_dose_limit(
    organ: str,
    quantity: str = "absorbed_dose",
    condition: str | None = None,
    rows: list[OrganDoseLimit] | None = None,
) -> OrganDoseLimit:
    """The row for ``organ`` and ``quantity`` (and ``condition`` if several).

    With several conditions and none given, the *lowest* limit is returned (conservative).

    >>> organ_dose_limit("kidneys", "bed").limit_gy  # risk factors: 28 Gy (lowest)
    28.0
    """
    table = organ_dose_limits() if rows is None else rows
    hits = [r for r in table if r.organ == organ and r.quantity == quantity]
    if condition is not None:
        hits = [r for r in hits if r.condition == condition]
    if not hits:
        have = sorted({(r.organ, r.quantity) for r in table})
        raise InputDataError(
            f"no dose limit for organ={organ!r}, quantity={quantity!r}"
            f"{'' if condition is None else f', condition={condition!r}'}; the table has "
            f"{have}. Give the limit explicitly (overrides=...)."
        )
    with_value = [r for r in hits if r.limit_gy is not None]
    if not with_value:
        return hits[0]
    return min(with_value, key=lambda r: float(r.limit_gy or math.inf))
