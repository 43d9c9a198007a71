"""Threshold delineation of lesions on activity (or SUV) images.

Two rules, each returning connected components (face connectivity by default) as masks
named ``lesion_1``, ``lesion_2``, ... in decreasing order of their maximum:

* **Fraction of the local maximum** (``fraction=0.4``): a lesion is the connected region
  around a maximum whose values reach ``fraction x`` that maximum. Fixed thresholds of
  about 40 % of the maximum were derived from sphere phantoms for volume delineation by
  Erdi et al. 1997 (PET; the threshold that reproduced the sphere volumes lay near 40 %
  for spheres above about 4 mL and rose for smaller ones). Maxima come from ``seeds_mm``
  (the highest value within ``search_radius_mm`` of each seed) or, without seeds, from
  the image inside ``search_mask``: the hottest voxel first, then the hottest voxel left
  outside the lesions found, as long as it reaches ``min_peak`` (default: the threshold of
  the first lesion, so that only maxima a fixed-fraction rule can separate from the
  hottest lesion's surroundings are taken).
* **Absolute level** (``level=...`` in the image's unit, e.g. Bq/mL or SUV): every
  connected region at or above the level inside ``search_mask``.

Components smaller than ``min_volume_ml`` are dropped. A fixed fraction depends on the
resolution, the object size and the lesion-to-background contrast: in a warm background
(lesions in the liver) a 40 % threshold can include background; give ``search_mask`` to
keep organs with high uptake (kidneys, bladder) out.

References
----------
Erdi YE, Mawlawi O, Larson SM, Imbriaco M, Yeung H, Finn R, Humm JL. Segmentation of lung
lesion volume by adaptive positron emission tomography image thresholding. Cancer
1997;80(12 Suppl):2505-2509.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from .errors import InputDataError
from .volume import Volume

__all__ = ["threshold_lesions"]

log = logging.getLogger(__name__)


def _structure(connectivity: int) -> np.ndarray:
    from scipy import ndimage

    if connectivity not in (1, 2, 3):
        raise InputDataError(
            f"connectivity={connectivity!r}; valid: 1 (faces, 6 neighbours), 2 (edges, 18) "
            "or 3 (corners, 26)"
        )
    return np.asarray(ndimage.generate_binary_structure(3, connectivity))


def _argmax(values: np.ndarray) -> tuple[int, int, int]:
    i, j, k = np.unravel_index(int(np.argmax(values)), values.shape)
    return int(i), int(j), int(k)


def _component_at(
    mask: np.ndarray, index: tuple[int, int, int], structure: np.ndarray
) -> np.ndarray:
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=structure)
    lab = labels[index]
    if lab == 0:
        return np.zeros(mask.shape, dtype=bool)
    return np.asarray(labels == lab)


def threshold_lesions(
    activity: Volume,
    *,
    fraction: float | None = 0.4,
    level: float | None = None,
    seeds_mm: Sequence[Sequence[float]] | None = None,
    search_mask: Volume | None = None,
    search_radius_mm: float = 15.0,
    min_volume_ml: float = 0.0,
    min_peak: float | None = None,
    max_lesions: int = 100,
    connectivity: int = 1,
    prefix: str = "lesion",
) -> dict[str, Volume]:
    """Lesion masks by a fixed fraction of the local maximum or by an absolute level.

    Parameters
    ----------
    activity
        Image to delineate on (activity concentration, SUV, ...).
    fraction
        Threshold as a fraction of each lesion's maximum (default 0.4; Erdi et al. 1997).
        Ignored when ``level`` is given.
    level
        Absolute threshold in ``activity.unit`` (e.g. Bq/mL or SUV); replaces ``fraction``.
    seeds_mm
        Lesion positions (LPS mm), one lesion per seed (fraction rule).
    search_mask
        Where lesions may be (a mask on the activity grid); required for the fraction rule
        without seeds, optional otherwise.
    search_radius_mm
        Radius (mm) around each seed in which its maximum is taken (a project default: of
        the order of the resolution of clinical SPECT/PET; set it for your data).
    min_volume_ml
        Components smaller than this are dropped (mL; default 0: none).
    min_peak
        Fraction rule without seeds: smallest maximum (``activity.unit``) that starts a
        lesion; default the first lesion's threshold (``fraction x`` the hottest value).
    max_lesions
        Upper bound on the number of lesions returned.
    connectivity
        1 (faces), 2 (edges) or 3 (corners).
    prefix
        Mask names are ``f"{prefix}_{k}"``.

    Returns
    -------
    dict[str, Volume]
        Boolean masks (unit ``"1"``) on the activity grid, hottest first; their
        provenance records the rule, the threshold and the maximum.

    References
    ----------
    Erdi YE et al. Cancer 1997;80(12 Suppl):2505-2509.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((20, 20, 20)); img[5:9, 5:9, 5:9] = 10.0; img[12:15, 12:15, 12:15] = 6.0
    >>> vol = Volume.from_spacing(img, (2.0, 2.0, 2.0), unit="Bq/mL")
    >>> out = threshold_lesions(vol, search_mask=vol.with_array(np.ones(img.shape), unit="1"))
    >>> {k: int(v.array.sum()) for k, v in out.items()}
    {'lesion_1': 64, 'lesion_2': 27}
    """
    img = np.asarray(activity.array, dtype=float)
    if not np.all(np.isfinite(img)):
        raise InputDataError("activity holds NaN or infinite values")
    structure = _structure(connectivity)
    if not (isinstance(min_volume_ml, int | float) and min_volume_ml >= 0):
        raise InputDataError(f"min_volume_ml={min_volume_ml!r} must be >= 0")
    if not (isinstance(max_lesions, int) and max_lesions >= 1):
        raise InputDataError(f"max_lesions={max_lesions!r} must be a positive integer")
    search = np.ones(img.shape, dtype=bool)
    if search_mask is not None:
        activity.check_same_grid(search_mask, "search_mask")
        search = np.asarray(search_mask.array) > 0
        if not search.any():
            raise InputDataError("search_mask is empty")
    voxel_ml = activity.voxel_volume_ml
    found: list[tuple[float, np.ndarray, dict[str, float | str]]] = []

    if level is not None:
        lv = float(level)
        if not math.isfinite(lv):
            raise InputDataError(f"level={level!r} must be a finite number ({activity.unit})")
        from scipy import ndimage

        labels, n = ndimage.label((img >= lv) & search, structure=structure)
        for lab in range(1, n + 1):
            comp = labels == lab
            peak = float(img[comp].max())
            found.append((peak, comp, {"rule": f"level {lv:g} {activity.unit}", "threshold": lv}))
    else:
        if fraction is None or not (0.0 < float(fraction) < 1.0):
            raise InputDataError(f"fraction={fraction!r} must lie in (0, 1), e.g. 0.4 for 40 %")
        frac = float(fraction)
        rule = f"{100 * frac:g} % of the local maximum (Erdi et al. 1997)"
        if seeds_mm is not None:
            if not (isinstance(search_radius_mm, int | float) and search_radius_mm > 0):
                raise InputDataError(f"search_radius_mm={search_radius_mm!r} must be > 0")
            aff = np.asarray(activity.affine)
            inv = np.linalg.inv(aff)
            reach = [int(math.ceil(search_radius_mm / sp)) + 1 for sp in activity.spacing_mm]
            for k, seed in enumerate(seeds_mm):
                s = np.asarray(seed, dtype=float).reshape(3)
                if not np.all(np.isfinite(s)):
                    raise InputDataError(f"seeds_mm[{k}]={seed!r} must be three finite numbers")
                idx = np.rint((inv @ np.append(s, 1.0))[:3]).astype(int)
                box = tuple(
                    slice(max(int(i) - r, 0), max(min(int(i) + r + 1, n), 0))
                    for i, r, n in zip(idx, reach, img.shape, strict=True)
                )
                near = np.zeros(img.shape, dtype=bool)
                if all(b.stop > b.start for b in box):
                    sub = np.indices(tuple(b.stop - b.start for b in box)).reshape(3, -1).T
                    sub = sub + np.array([b.start for b in box])
                    world = sub @ aff[:3, :3].T + aff[:3, 3]
                    inside = np.sum((world - s) ** 2, axis=1) <= search_radius_mm**2
                    near[box] = inside.reshape(tuple(b.stop - b.start for b in box))
                near &= search
                if not near.any():
                    raise InputDataError(
                        f"seeds_mm[{k}]={seed!r} (index {idx.tolist()}) has no voxel of the "
                        f"search region within {search_radius_mm:g} mm"
                    )
                cand = np.where(near, img, -np.inf)
                at = _argmax(cand)
                peak = float(img[at])
                if not peak > 0:
                    raise InputDataError(f"seeds_mm[{k}]: no activity near the seed")
                comp = _component_at((img >= frac * peak) & search, at, structure)
                found.append(
                    (
                        peak,
                        comp,
                        {"rule": rule, "threshold": frac * peak, "seed_mm": str(s.tolist())},
                    )
                )
        else:
            if search_mask is None:
                raise InputDataError(
                    "the fraction rule needs seeds_mm= or search_mask= (without them the "
                    "hottest organs, e.g. kidneys or bladder, would be taken as lesions); or "
                    "give level= for an absolute threshold"
                )
            left = search.copy()
            floor = None if min_peak is None else float(min_peak)
            while len(found) < max_lesions and left.any():
                cand = np.where(left, img, -np.inf)
                at = _argmax(cand)
                peak = float(img[at])
                if floor is None:
                    floor = frac * peak
                if not peak > 0 or peak < floor:
                    break
                comp = _component_at((img >= frac * peak) & left, at, structure)
                left &= ~comp
                found.append((peak, comp, {"rule": rule, "threshold": frac * peak}))
    out: dict[str, Volume] = {}
    kept = [f for f in found if float(f[1].sum()) * voxel_ml >= min_volume_ml]
    dropped = len(found) - len(kept)
    if dropped:
        log.info("threshold_lesions: %d component(s) below %g mL dropped", dropped, min_volume_ml)
    kept.sort(key=lambda f: -f[0])
    for k, (peak, comp, info) in enumerate(kept[:max_lesions], start=1):
        out[f"{prefix}_{k}"] = activity.with_array(
            comp,
            unit="1",
            provenance={
                "source": "threshold_lesions",
                **info,
                "maximum": peak,
                "unit": activity.unit,
                "volume_ml": float(comp.sum()) * voxel_ml,
            },
        )
    if not out:
        log.warning("threshold_lesions: no lesion found")
    return out
