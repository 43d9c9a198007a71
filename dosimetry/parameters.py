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
import contextvars
import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

from .errors import DosimetryError

__all__ = [
    "Parameter",
    "get",
    "describe",
    "table",
    "override",
    "resolve",
    "snapshot",
    "overrides",
]


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


#: Active overrides. A context variable, not a module global: each thread (and each asyncio
#: task) sees the overrides of its own ``with override(...)`` block, so concurrent workflows
#: in one process (threaded Dask workers) never leak values into each other. Process
#: workers receive the values explicitly (a workflow's ``parameters=`` snapshot).
_OVERRIDES: contextvars.ContextVar[Mapping[str, float]] = contextvars.ContextVar(
    "dosimetry_parameter_overrides", default=MappingProxyType({})
)


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
    return float(_OVERRIDES.get().get(name, p.value))


def resolve(value: float | None, name: str) -> float:
    """``value`` if the caller gave one, else the table's default for ``name``."""
    return get(name) if value is None else float(value)


def describe(name: str) -> Parameter:
    """The full :class:`Parameter` record (value, unit, description, citation)."""
    p = _check(name)
    active = _OVERRIDES.get()
    if name in active:
        return Parameter(p.name, active[name], p.unit, p.description, "user override")
    return p


def table() -> list[Parameter]:
    """All parameters, overrides applied, sorted by name."""
    return [describe(n) for n in sorted(_load())]


@contextlib.contextmanager
def override(**values: float) -> Iterator[None]:
    """Temporarily replace defaults, e.g. ``with override(rbe_alpha=3.0): ...``."""
    for name in values:
        _check(name)
    merged = {**_OVERRIDES.get(), **{k: float(v) for k, v in values.items()}}
    token = _OVERRIDES.set(merged)
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def overrides() -> dict[str, float]:
    """The overrides active in this context (name -> value), e.g. to hand to a worker."""
    return dict(_OVERRIDES.get())


def snapshot() -> dict[str, float]:
    """Every parameter's value as used now (table defaults with active overrides applied).

    A workflow records this in its result, and a task sent to another process carries
    it: ``with override(**snap): ...`` there reproduces the same values.

    >>> snap = snapshot()
    >>> snap["rbe_alpha"]
    5.0
    >>> with override(rbe_alpha=3.0):
    ...     snapshot()["rbe_alpha"]
    3.0
    """
    active = _OVERRIDES.get()
    return {n: float(active.get(n, p.value)) for n, p in sorted(_load().items())}
