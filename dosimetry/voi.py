"""VOI names -> organs: one explicit alias table, never fuzzy matching.

A VOI name from an RTSTRUCT, a SEG or a mask file is mapped to an organ of the workbench
(``kidneys``, ``liver``, ``salivary_glands``, ``tumour``, ``whole_body``, ...) and a role
(``organ``, ``lesion``, ``body``) by looking it up in ``dosimetry/data/voi_aliases.csv``
after a fixed normalisation:

1. lower case; spaces, hyphens and dots become ``_``;
2. a side or index suffix or prefix is removed once: ``_left``, ``_right``, ``_l``,
   ``_r``, ``_lt``, ``_rt``, ``_bilateral``, ``left_``, ``right_``, ``l_``, ``r_`` and a
   trailing number (``lesion_3``, ``kidney_left``, ``Kidney_L``, ``Parotid R``).

The normalised name must equal an alias exactly, or start with one of the few explicit
prefix rules of the table (``gtv_*``, ``lesion_*``: ``GTV_bone``, ``lesion_liver``;
not when a later word names something else, ``tumour_bed``, ``lesion_free``, ``gtv_ring``):
``not_a_lesion`` maps to nothing (it is not a lesion), and a VOI that maps to nothing gets whole-body kinetics with a warning that
names it. A user table (``--voi-map FILE``, :meth:`VoiMap.from_file`: CSV with columns
``voi,organ[,role]``) is consulted first, on the raw name and then on the normalised one.

>>> m = VoiMap.default()
>>> m.organ("Kidney_L"), m.organ("parotid right"), m.organ("lesion_3"), m.organ("not_a_lesion")
('kidneys', 'salivary_glands', 'tumour', None)
>>> m.organ("lesion_liver"), m.organ("tumor_bed"), m.organ("lesion_free_liver")
('tumour', None, None)
>>> m.role("lesion 2"), m.role("BODY"), m.role("liver")
('lesion', 'body', 'organ')
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from .errors import InputDataError

__all__ = ["VoiMap", "normalise_voi_name", "ROLES"]

Role = Literal["organ", "lesion", "body", "other"]
ROLES: tuple[str, ...] = ("organ", "lesion", "body", "other")

_SUFFIX = re.compile(r"(?:_(?:left|right|l|r|lt|rt|bilateral|sin|dx|\d+[a-z]?))$")
_PREFIX = re.compile(r"^(?:left|right|l|r)_")
#: Words after a prefix rule's prefix that name something other than the object itself
#: (a surgical bed, a margin or ring around it, tissue free of it): no prefix match.
_NOT_THE_OBJECT = frozenset(
    {
        "bed",
        "free",
        "ring",
        "shell",
        "margin",
        "rim",
        "minus",
        "excl",
        "excluded",
        "without",
        "not",
        "no",
        "surrounding",
        "background",
        "bkg",
        "ptv",
        "ctv",
        "itv",
    }
)


def normalise_voi_name(name: str) -> str:
    """The lookup key of a VOI name (see the module docstring).

    >>> normalise_voi_name("Kidney_L"), normalise_voi_name("Lesion 12"), normalise_voi_name(
    ...     "left-parotid"
    ... )
    ('kidney', 'lesion', 'parotid')
    """
    key = re.sub(r"[\s\-.]+", "_", str(name).strip().lower())
    key = re.sub(r"_+", "_", key).strip("_")
    stripped = _SUFFIX.sub("", key)
    if stripped == key:
        stripped = _PREFIX.sub("", key)
    return stripped or key


@dataclass(frozen=True)
class _Entry:
    organ: str
    role: Role


@lru_cache(maxsize=1)
def _default_table() -> Mapping[str, _Entry]:
    text = resources.files("dosimetry").joinpath("data/voi_aliases.csv").read_text("utf-8")
    out: dict[str, _Entry] = {}
    for row in csv.DictReader(io.StringIO(text)):
        alias = row["alias"].strip().lower()
        role = row["role"].strip()
        if role not in ROLES:
            raise InputDataError(f"voi_aliases.csv: role {role!r} of {alias!r} not in {ROLES}")
        out[alias] = _Entry(row["organ"].strip(), role)  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class VoiMap:
    """VOI name -> organ and role: the user's table first, then the alias table.

    Attributes
    ----------
    user
        Exact VOI name (or its normalised key) -> (organ, role) given by the user.
    source
        Where the user table came from (shown in the assumptions).
    """

    user: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def default(cls) -> VoiMap:
        """The built-in alias table only."""
        return cls()

    @classmethod
    def from_file(cls, path: str | Path) -> VoiMap:
        """A user table: CSV with a header ``voi,organ[,role]`` (role default: ``organ``,
        or ``lesion`` when the organ is ``tumour``, ``body`` for ``whole_body``)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputDataError(f"--voi-map: cannot read {p}: {exc}") from exc
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or not {"voi", "organ"} <= set(reader.fieldnames):
            raise InputDataError(
                f"--voi-map {p}: the first line must name the columns voi,organ[,role]; got "
                f"{reader.fieldnames}"
            )
        user: dict[str, tuple[str, str]] = {}
        for row in reader:
            voi = (row.get("voi") or "").strip()
            organ = (row.get("organ") or "").strip()
            if not voi or not organ:
                continue
            role = (row.get("role") or "").strip() or _role_for(organ)
            if role not in ROLES:
                raise InputDataError(f"--voi-map {p}: role {role!r} of {voi!r}; valid: {ROLES}")
            user[voi] = (organ, role)
        return cls(user, str(p))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str], source: str = "user") -> VoiMap:
        """A user table from ``{voi: organ}``."""
        return cls({k: (v, _role_for(v)) for k, v in mapping.items()}, source)

    def _lookup(self, name: str) -> _Entry | None:
        if name in self.user:
            organ, role = self.user[name]
            return _Entry(organ, role)  # type: ignore[arg-type]
        key = normalise_voi_name(name)
        for voi, (organ, role) in self.user.items():
            if normalise_voi_name(voi) == key:
                return _Entry(organ, role)  # type: ignore[arg-type]
        table = _default_table()
        if key in table:
            return table[key]
        for alias, entry in table.items():
            if alias.endswith("*") and key.startswith(alias[:-1]):
                rest = set(key[len(alias) - 1 :].split("_"))
                if rest & _NOT_THE_OBJECT:  # "tumour_bed", "lesion_free": not a lesion
                    return None
                return entry
        return None

    def organ(self, name: str) -> str | None:
        """The organ of VOI ``name``, or ``None`` when no table names it."""
        e = self._lookup(name)
        return None if e is None else e.organ

    def role(self, name: str) -> Role:
        """``"organ"``, ``"lesion"``, ``"body"`` or ``"other"`` (not in any table)."""
        e = self._lookup(name)
        return "other" if e is None else e.role

    def known_aliases(self) -> list[str]:
        """Every alias of the built-in table (for error messages and docs)."""
        return sorted(_default_table())


def _role_for(organ: str) -> str:
    if organ == "tumour":
        return "lesion"
    if organ == "whole_body":
        return "body"
    return "organ"
