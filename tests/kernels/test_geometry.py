"""Geometric factors, radial grid and cylinder-to-shell conversion: analytic and
independent checks (closed forms, sum rules, Monte Carlo sampling, exact volumes)."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry.kernels import _vsv
from dosimetry.kernels._integrate import (
    geometric_factors,
    near_extent,
    near_offsets,
    radial_grid,
    shell_mean_geometric_factors,
)
from dosimetry.kernels._pack import (
    cylinder_to_shells,
    ring_slab_sphere_volume,
    shell_bin_weights,
    sphere_surface_fraction,
)


def _g0_closed_form(d, a, b, c):
    """Self-voxel geometric factor of an a x b x c box for d <= min(a, b, c): the spherical
    mean of prod(1 - d|w_i|/h_i), with E|w_i| = 1/2, E|w_i w_j| = 2/(3 pi),
    E|w_1 w_2 w_3| = 1/(4 pi) for isotropic unit vectors (for a cube this is the pair-distance
    density d^2 (4 pi - 6 pi d + 8 d^2 - d^3) of Philip 2007 divided by 4 pi d^2)."""
    return (
        1
        - d / 2 * (1 / a + 1 / b + 1 / c)
        + 2 * d * d / (3 * np.pi) * (1 / (a * b) + 1 / (b * c) + 1 / (c * a))
        - d**3 / (4 * np.pi * a * b * c)
    )


@pytest.mark.parametrize("h", [(1.0, 1.0, 1.0), (4.42, 4.42, 3.27), (1.0, 1.3, 0.7)])
def test_self_factor_matches_closed_form(h):
    d = np.linspace(1e-3, min(h), 17)
    g = geometric_factors(h, d)
    np.testing.assert_allclose(g[0], _g0_closed_form(d, *h), rtol=0, atol=1e-7)  # analytic


@pytest.mark.parametrize("h", [(1.0, 1.0, 1.0), (2.0, 1.5, 1.0)])
def test_factors_sum_to_one(h):
    """Energy at distance d lands somewhere: all offsets together hold probability 1
    (offsets within the near set suffice while d <= 2 min(h))."""
    d = np.linspace(0.01, 2 * min(h), 23)
    g = geometric_factors(h, d)
    mult = 2.0 ** (near_offsets() > 0).sum(axis=1)  # octant -> all sign combinations
    # quadrature accuracy (offsets related by swapping equal axes share one computation)
    np.testing.assert_allclose(mult @ g, 1.0, rtol=0, atol=1e-6)
    assert np.all(g >= -1e-15)


def test_factors_agree_with_monte_carlo_sampling():
    """Independent estimate: uniform points in the source voxel, isotropic directions,
    count the target voxel reached at distance d (2e5 samples: sd <= 0.0011)."""
    rng = np.random.default_rng(7)
    h = np.array([1.0, 1.4, 0.8])
    n = 200_000
    for d in (0.6, 1.7):
        p = rng.uniform(0, 1, (n, 3)) * h
        w = rng.normal(size=(n, 3))
        w /= np.linalg.norm(w, axis=1)[:, None]
        idx = np.floor((p + d * w) / h).astype(int)
        g = geometric_factors(tuple(h), np.array([d]))[:, 0]
        for io, o in enumerate(near_offsets()):
            frac = np.mean(np.all(idx == o, axis=1))
            assert frac == pytest.approx(g[io], abs=6e-3), (d, o)


def test_axis_permutation_symmetry():
    h = (1.0, 1.3, 0.7)
    d = np.array([0.4, 1.1, 2.3])
    g = geometric_factors(h, d)
    gp = geometric_factors((h[2], h[1], h[0]), d)
    offs = [tuple(o) for o in near_offsets()]
    for io, o in enumerate(offs):
        # quadrature tolerance: where a kink enters the phi range the inner integral has a
        # (theta - theta0)^1.5 point, which Gauss-Legendre resolves to a few 1e-6 (measured max 1.3e-6)
        np.testing.assert_allclose(g[io], gp[offs.index((o[2], o[1], o[0]))], atol=3e-6)


def test_radial_grid_prefix_and_near_extent():
    a, b = radial_grid(3.0), radial_grid(40.0)
    np.testing.assert_array_equal(a, b[: a.size])
    assert a[0] == 0.0 and a[-1] >= 3.0 and np.all(np.diff(a) > 0)
    assert np.max(np.diff(b)) == pytest.approx(0.05)
    # beyond the near extent the near factors vanish
    ext = near_extent((1.0, 1.0, 1.0))
    assert ext == pytest.approx(3 * np.sqrt(3))
    assert np.all(geometric_factors((1.0, 1.0, 1.0), np.array([ext * 1.0001])) == 0)


def test_shell_mean_of_linear_part():
    """Mean of the closed-form self factor over the shell [0, e] of a unit cube."""
    e = 0.3
    g = shell_mean_geometric_factors((1.0, 1.0, 1.0), np.array([0.0, e]), n_nodes=4)
    mean = 1 - 0.75 * e + 2 / (3 * np.pi) * e**2 - e**3 / (16 * np.pi)
    assert g[0, 0] == pytest.approx(mean, abs=1e-8)


def test_geometry_table_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIMETRY_CACHE_DIR", str(tmp_path))
    calls = []

    def fake(shape, u):  # the computation itself is tested above; here only the caching
        calls.append(shape)
        return np.full((len(near_offsets()), u.size - 1), 0.5)

    monkeypatch.setattr(_vsv, "shell_mean_geometric_factors", fake)
    _vsv.geometry_table.cache_clear()
    shape = (1.0, 1.0, 1.5)
    g1 = _vsv.geometry_table(shape)
    assert len(list((tmp_path / "geometry").glob("*.npz"))) == 1
    _vsv.geometry_table.cache_clear()
    g2 = _vsv.geometry_table(shape)  # from disk
    _vsv.geometry_table(shape)  # from memory
    assert len(calls) == 1
    np.testing.assert_array_equal(g1, g2)
    assert not g2.flags.writeable
    _vsv.geometry_table.cache_clear()


# ---------------------------------------------------------------------------------------
# cylinder -> spherical shells
# ---------------------------------------------------------------------------------------


def test_sphere_surface_fraction_matches_volume_derivative():
    """Surface fraction = dV/drho / (4 pi rho^2), V from the exact ring-slab-sphere volume."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        r1 = rng.uniform(0, 1)
        r2 = r1 + rng.uniform(0.05, 1)
        z1 = rng.uniform(-1, 1)
        z2 = z1 + rng.uniform(0.05, 1)
        rho = rng.uniform(0.1, 2.0)
        eps = 1e-6
        dv = (
            ring_slab_sphere_volume(r1, r2, z1, z2, rho + eps)
            - ring_slab_sphere_volume(r1, r2, z1, z2, rho - eps)
        ) / (2 * eps)
        f = sphere_surface_fraction(r1, r2, z1, z2, rho)
        assert f == pytest.approx(dv / (4 * np.pi * rho**2), abs=1e-6)


def _synthetic_bins():
    """A 100 keV-like radial energy distribution (energy per unit radius), integrated over
    the r-z bins of a basis run through 4000 thin shells (exact bin volumes)."""
    from dosimetry.kernels.build import scoring_grid

    rb, zb = scoring_grid("electron", 0.1)
    big_r = rb[24] / 1.2
    # the core of the cylinder (the distribution ends at 1.05 R_CSDA)
    rb = rb[:28]
    zb = zb[np.abs(zb) <= rb[-1] + 1e-12]

    def per_radius(r):
        x = r / big_r
        return np.where(x < 1.05, (0.6 + 3 * x) * np.clip(1.05 - x, 0, None) ** 1.5, 0.0)

    fe = np.linspace(0, 1.1 * big_r, 1501)
    fm = 0.5 * (fe[1:] + fe[:-1])
    fine = per_radius(fm) * np.diff(fe)
    fine /= fine.sum()
    rr1, zz1 = np.meshgrid(rb[:-1], zb[:-1], indexing="ij")
    rr2, zz2 = np.meshgrid(rb[1:], zb[1:], indexing="ij")
    vol = ring_slab_sphere_volume(
        rr1.ravel()[:, None], rr2.ravel()[:, None], zz1.ravel()[:, None], zz2.ravel()[:, None], fe
    )
    bins = np.diff(vol, axis=1) @ (fine / np.diff(4 / 3 * np.pi * fe**3))
    edges = np.concatenate([rb, [np.hypot(rb[-1], zb[-1])]])
    true_cum = np.interp(edges, fe, np.concatenate([[0], np.cumsum(fine)]))
    return bins.reshape(rr1.shape), rb, zb, edges, true_cum


def test_cylinder_to_shells_recovers_a_known_distribution():
    """Energy-conserving, and the innermost shells right: a uniform-density model within
    shells put +13 % in the first shell of this distribution; the uniform-in-radius model
    is within 1 %."""
    bins, rb, zb, edges, true_cum = _synthetic_bins()
    shells, unc, _ = cylinder_to_shells(bins, np.zeros_like(bins), rb, zb, edges)
    assert shells.sum() == pytest.approx(bins.sum(), rel=1e-12)  # conservation
    true_shells = np.diff(true_cum)
    np.testing.assert_allclose(shells[:12], true_shells[:12], rtol=0.01)
    np.testing.assert_allclose(np.cumsum(shells), true_cum[1:], atol=1e-3)


def test_shell_bin_weights_columns_sum_to_one_inside_the_cylinder():
    rb = np.linspace(0, 1, 6)
    zb = np.linspace(-1, 1, 9)
    edges = np.linspace(0, 1, 5)
    a = shell_bin_weights(rb, zb, edges)
    np.testing.assert_allclose(a.sum(axis=0), 1.0, atol=1e-12)
