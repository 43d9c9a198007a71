"""The one table of physical constants and defaults, with citations.

Every default the workbench uses (densities, RBE, alpha/beta ratios, repair half-times,
population half-lives ...) is a row of ``dosimetry/data/parameters.csv`` with its unit and
citation. Functions take an explicit argument to override a value for one call;
:func:`override` changes a value for a block of code::

    >>> import dosimetry as ds
    >>> ds.parameters.get("rbe_alpha")
    5.0
    >>> with ds.parameters.override(rbe_alpha=3.0):
    ...     ds.parameters.get("rbe_alpha")
    3.0
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .errors import DosimetryError

__all__ = ["Parameter", "get", "describe", "table", "override", "resolve"]


@dataclass(frozen=True)
class Parameter:
    """A named default with its unit and citation."""

    name: str
    value: float
    unit: str
    description: str
    citation: str


@lru_cache(maxsize=1)
def _load() -> dict[str, Parameter]:
    text = resources.files("dosimetry").joinpath("data/parameters.csv").read_text("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    out: dict[str, Parameter] = {}
    for row in rows:
        name = row["name"].strip()
        if name in out:
            raise DosimetryError(f"parameters.csv lists {name!r} twice")
        out[name] = Parameter(
            name=name,
            value=float(row["value"]),
            unit=row["unit"].strip(),
            description=row["description"].strip(),
            citation=row["citation"].strip(),
        )
    return out


_overrides: dict[str, float] = {}


def _check(name: str) -> Parameter:
    params = _load()
    if name not in params:
        raise DosimetryError(
            f"unknown parameter {name!r}; known parameters: {', '.join(sorted(params))}"
        )
    return params[name]


def get(name: str) -> float:
    """Value of parameter ``name`` (an active :func:`override` wins)."""
    p = _check(name)
    return float(_overrides.get(name, p.value))


def resolve(value: float | None, name: str) -> float:
    """``value`` if the caller gave one, else the table's default for ``name``."""
    return get(name) if value is None else float(value)


def describe(name: str) -> Parameter:
    """The full :class:`Parameter` record (value, unit, description, citation)."""
    p = _check(name)
    if name in _overrides:
        return Parameter(p.name, _overrides[name], p.unit, p.description, "user override")
    return p


def table() -> list[Parameter]:
    """All parameters, overrides applied, sorted by name."""
    return [describe(n) for n in sorted(_load())]


@contextlib.contextmanager
def override(**values: float) -> Iterator[None]:
    """Temporarily replace defaults, e.g. ``with override(rbe_alpha=3.0): ...``."""
    for name in values:
        _check(name)
    saved = dict(_overrides)
    _overrides.update({k: float(v) for k, v in values.items()})
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(saved)
