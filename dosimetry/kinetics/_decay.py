"""Physical decay: decay factors and decay-correction round trips."""

from __future__ import annotations

import numpy as np

from ..errors import InputDataError

__all__ = ["decay_factor", "decay_correct", "undo_decay_correction"]


def _check_half_life(half_life_s: float) -> float:
    t = float(half_life_s)
    if not np.isfinite(t) or t <= 0:
        raise InputDataError(f"half_life_s must be a positive finite number of seconds, got {t!r}")
    return t


def decay_factor(elapsed_s: float | np.ndarray, half_life_s: float) -> float | np.ndarray:
    """Fraction ``2**(-elapsed/T)`` of the activity left after ``elapsed_s`` seconds.

    >>> decay_factor(6.647 * 86400, 6.647 * 86400)
    0.5
    """
    t = _check_half_life(half_life_s)
    out = np.exp2(-np.asarray(elapsed_s, dtype=float) / t)
    return float(out) if np.ndim(out) == 0 else out


def decay_correct(
    activity: float | np.ndarray, elapsed_s: float | np.ndarray, half_life_s: float
) -> float | np.ndarray:
    """Activity decay-corrected back to the reference time ``elapsed_s`` earlier.

    ``A_ref = A(t) * 2**(elapsed/T)``: the activity there would have been at the
    reference time (e.g. injection) had there been no physical decay.

    >>> round(decay_correct(50.0, 3600.0, 3600.0), 12)
    100.0
    """
    out = np.asarray(activity, dtype=float) / np.asarray(decay_factor(elapsed_s, half_life_s))
    return float(out) if np.ndim(out) == 0 else out


def undo_decay_correction(
    activity_ref: float | np.ndarray, elapsed_s: float | np.ndarray, half_life_s: float
) -> float | np.ndarray:
    """Inverse of :func:`decay_correct`: activity present ``elapsed_s`` after the reference.

    >>> undo_decay_correction(100.0, 3600.0, 3600.0)
    50.0
    """
    out = np.asarray(activity_ref, dtype=float) * np.asarray(decay_factor(elapsed_s, half_life_s))
    return float(out) if np.ndim(out) == 0 else out
