"""Optional dependencies, imported only by the features that need them.

The package's core installs without them; a feature that needs one calls
:func:`import_optional_dependency` at the moment it runs, so that ``import dosimetry`` stays
light and a missing package becomes an error that says which feature needs it and how to
install it (``pip install 'dosimetry[mc]'``), not a bare :class:`ImportError` from deep
inside the call.

Examples
--------
>>> np = import_optional_dependency("numpy", feature="the engine", extra="core")
>>> np.__name__
'numpy'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import DosimetryError

__all__ = ["OptionalDependencyError", "import_optional_dependency"]


class OptionalDependencyError(DosimetryError, ImportError):
    """A feature needs a package of an optional extra that is not installed.

    Subclasses :class:`~dosimetry.errors.DosimetryError` (so the CLI maps it to its
    one-line message) and :class:`ImportError` (so ``except ImportError`` still sees it).
    """


def import_optional_dependency(module_name: str, feature: str, extra: str) -> ModuleType:
    """Import ``module_name`` for ``feature``, or say how to install it.

    Parameters
    ----------
    module_name
        Importable name, e.g. ``"ompmc"``.
    feature
        What needs it, in the user's words, e.g. ``"method='mc' (patient Monte Carlo)"``.
    extra
        The optional-dependency group of ``pyproject.toml`` that brings it, e.g. ``"mc"``.

    Returns
    -------
    ModuleType
        The imported module.

    Raises
    ------
    OptionalDependencyError
        ``module_name`` cannot be imported; the message names the feature, the package and
        the install command (``pip install 'dosimetry[<extra>]'``), and keeps the original
        error as its cause.
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise OptionalDependencyError(
            f"{feature} needs the optional package {module_name!r}, which cannot be "
            f"imported ({exc}). Install it with: pip install 'dosimetry[{extra}]' "
            f"(or pip install {module_name})."
        ) from exc
