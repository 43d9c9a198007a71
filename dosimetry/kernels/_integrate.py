"""Voxel S-values from a radial dose-point kernel, for any (also non-cubic) voxel size.

For a source voxel and a target voxel at offset ``o`` (voxel units) the difference
vector between a uniform point in each has the density ``prod_i T(Delta_i/h_i - o_i)/V``
with ``T(u) = max(0, 1-|u|)``. Hence, for energy deposited at distance d from the
emission point in a random direction, the probability of landing in the target voxel is
the geometric factor ``G_o(d) = (1/4pi) int T(d w / h - o) dw`` (spherical mean), and

    S_o = (1/m) sum_k G_o(d_k) dE_k,

with dE_k the energy absorbed per decay in the spherical shell k around the point source
and m the voxel mass. ``G_o`` is tabulated once per voxel shape for the near offsets
(|o_i| <= 2); farther offsets, where the dose varies smoothly across a voxel, use the
two-point rule per axis exact for cubics under the triangular weight (nodes
o_i +- 1/sqrt(6)).

References
----------
Bolch WE et al. MIRD Pamphlet No. 17: the dosimetry of nonuniform activity distributions -
radionuclide S values at the voxel level. J Nucl Med 1999;40:11S-36S.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["geometric_factors", "near_offsets", "integrate_vsv"]

N_NEAR = 2
_N_MU, _N_PHI = 64, 128


@lru_cache(maxsize=1)
def _directions() -> tuple[np.ndarray, np.ndarray]:
    mu, wmu = np.polynomial.legendre.leggauss(_N_MU)
    phi = (np.arange(_N_PHI) + 0.5) * (2 * np.pi / _N_PHI)
    s = np.sqrt(1 - mu**2)
    dirs = np.stack(
        [
            (mu[:, None] * np.ones_like(phi)[None, :]).ravel(),
            (s[:, None] * np.cos(phi)[None, :]).ravel(),
            (s[:, None] * np.sin(phi)[None, :]).ravel(),
        ],
        axis=1,
    )
    w = (wmu[:, None] * np.ones_like(phi)[None, :]).ravel() / (2.0 * _N_PHI)
    return dirs, w  # weights sum to 1


def near_offsets() -> np.ndarray:
    """Octant offsets (0..N_NEAR per axis) whose S-values use the geometric-factor table."""
    g = np.arange(N_NEAR + 1)
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)


def geometric_factors(voxel_mm: tuple[float, float, float], d_mm: np.ndarray) -> np.ndarray:
    """``G[o, k]``: probability that energy deposited at distance ``d_mm[k]`` from a
    uniformly distributed emission point in the source voxel lands in the voxel at octant
    offset ``near_offsets()[o]`` (spherical mean of the triangle product)."""
    h = np.asarray(voxel_mm, dtype=float)
    dirs, w = _directions()
    offs = near_offsets().astype(float)
    d = np.asarray(d_mm, dtype=float)
    out = np.zeros((offs.shape[0], d.size))
    for k0 in range(0, d.size, 64):
        dd = d[k0 : k0 + 64]
        u = dd[:, None, None] * dirs[None, :, :] / h  # (nd, ndir, 3)
        for io, o in enumerate(offs):
            t = np.clip(1.0 - np.abs(u - o), 0.0, None).prod(axis=-1)
            out[io, k0 : k0 + 64] = t @ w
    return out


def integrate_vsv(
    r_mm: np.ndarray,
    cum_j: np.ndarray,
    voxel_mm: tuple[float, float, float],
    half_width: tuple[int, int, int],
    mass_kg: float,
    g_table: np.ndarray,
) -> np.ndarray:
    """Full kernel (Gy per decay) from the cumulative absorbed energy ``cum_j`` (J) inside
    radius ``r_mm`` (``r_mm[0] == 0``; ``cum_j[0]`` is the point term at the source).

    ``g_table`` is :func:`geometric_factors` at the shell mid-radii of ``r_mm``.
    """
    h = np.asarray(voxel_mm, dtype=float)
    n = np.asarray(half_width, dtype=int)
    de = np.diff(cum_j)
    mid = 0.5 * (r_mm[1:] + r_mm[:-1])
    octant = np.zeros(tuple(n + 1))
    # far field: pointwise dose from shell-average energy density
    shell_vol = 4.0 / 3.0 * np.pi * (r_mm[1:] ** 3 - r_mm[:-1] ** 3)
    dens = de / shell_vol  # J per mm3 per decay
    a = 1.0 / np.sqrt(6.0)
    gi = [np.arange(n[i] + 1, dtype=float) for i in range(3)]
    oi, oj, ok = np.meshgrid(*gi, indexing="ij")
    acc = np.zeros(oi.shape)
    for si in (-a, a):
        for sj in (-a, a):
            for sk in (-a, a):
                rr = np.sqrt(
                    ((oi + si) * h[0]) ** 2 + ((oj + sj) * h[1]) ** 2 + ((ok + sk) * h[2]) ** 2
                )
                acc += np.interp(rr, mid, dens, right=0.0)
    voxel_mm3 = float(np.prod(h))
    octant[:] = acc / 8.0 * voxel_mm3 / mass_kg
    # near field: exact geometric factors
    near = near_offsets()
    s_near = (g_table @ de) / mass_kg
    for (i, j, k), s in zip(near, s_near, strict=True):
        if i <= n[0] and j <= n[1] and k <= n[2]:
            octant[i, j, k] = s
    octant[0, 0, 0] += cum_j[0] / mass_kg  # point term: all in the source voxel
    full = octant
    for ax in range(3):
        mirrored = np.flip(np.take(full, np.arange(1, full.shape[ax]), axis=ax), axis=ax)
        full = np.concatenate([mirrored, full], axis=ax)
    return np.ascontiguousarray(full)
