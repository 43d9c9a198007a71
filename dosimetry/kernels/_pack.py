"""Pack raw r-z Monte Carlo runs into the spherical-shell basis shipped with the package.

Used by ``python -m dosimetry.kernels.build pack``; needs only NumPy.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ring_slab_sphere_volume", "cylinder_to_shells", "pack"]

_GL_X = np.array([-1.0, 1.0]) / np.sqrt(3.0)  # 2-point Gauss-Legendre: exact for cubics


def ring_slab_sphere_volume(
    r1: np.ndarray, r2: np.ndarray, z1: np.ndarray, z2: np.ndarray, rho: np.ndarray
) -> np.ndarray:
    """Volume of the ring r1<r<r2, slab z1<z<z2 that lies inside the sphere of radius rho.

    All arguments broadcast. V = pi * int_{z1}^{z2} [clip(rho^2 - z^2, r1^2, r2^2) - r1^2] dz;
    the integrand is piecewise quadratic in z with breakpoints where rho^2 - z^2 crosses
    r1^2 or r2^2, so splitting there and using 2-point Gauss-Legendre on each piece is exact.
    """
    r1, r2, z1, z2, rho = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (r1, r2, z1, z2, rho))
    )
    r1s, r2s, rhos = r1**2, r2**2, rho**2
    b1 = np.sqrt(np.maximum(rhos - r1s, 0.0))
    b2 = np.sqrt(np.maximum(rhos - r2s, 0.0))
    pts = np.stack([z1, z2, -b1, -b2, b2, b1], axis=-1)
    pts = np.clip(pts, z1[..., None], z2[..., None])
    pts.sort(axis=-1)
    total = np.zeros(r1.shape)
    for k in range(pts.shape[-1] - 1):
        a, b = pts[..., k], pts[..., k + 1]
        half, mid = 0.5 * (b - a), 0.5 * (a + b)
        for x in _GL_X:
            z = mid + half * x
            val = np.clip(rhos - z * z, r1s, r2s) - r1s
            total += half * val
    return np.pi * total


_GL8_X, _GL8_W = np.polynomial.legendre.leggauss(8)


def sphere_surface_fraction(
    r1: np.ndarray, r2: np.ndarray, z1: np.ndarray, z2: np.ndarray, rho: np.ndarray
) -> np.ndarray:
    """Fraction of the sphere of radius rho (centre at the origin) inside r1<r<r2, z1<z<z2.

    On the sphere, z = rho mu and r = rho sqrt(1 - mu^2) with mu uniform on [-1, 1]; the
    ring is |mu| in [sqrt(1 - r2^2/rho^2), sqrt(1 - r1^2/rho^2)], the slab mu in
    [z1/rho, z2/rho]; the fraction is half the length of the intersection. All arguments
    broadcast.
    """
    r1, r2, z1, z2, rho = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (r1, r2, z1, z2, rho))
    )
    safe = np.where(rho > 0, rho, 1.0)
    a = np.sqrt(np.clip(1.0 - (r2 / safe) ** 2, 0.0, None))
    b = np.sqrt(np.clip(1.0 - (r1 / safe) ** 2, 0.0, None))
    lo = np.clip(z1 / safe, -1.0, 1.0)
    hi = np.clip(z2 / safe, -1.0, 1.0)
    pos = np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0.0, None)
    neg = np.clip(np.minimum(-a, hi) - np.maximum(-b, lo), 0.0, None)
    return np.where(rho > 0, 0.5 * (pos + neg), 0.0)


def shell_bin_weights(r_b: np.ndarray, z_b: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Matrix ``A`` (n_bins, n_shells): fraction of the energy of each spherical shell that
    falls in each ring x slab bin, for energy spread uniformly in radius inside the shell.

    Uniform energy per unit radius (not per unit volume) is the shape of a point source's
    dose near the source, where the energy density grows as 1/r^2; a uniform-density model
    misplaces energy between the innermost shells. ``A[b, k]`` is the mean over the shell of
    :func:`sphere_surface_fraction`, integrated with 8-point Gauss-Legendre between the
    radii where the integrand has kinks (r = r1, r2, |z1|, |z2| and the bin corners).
    """
    r_b, z_b, edges = (np.asarray(x, dtype=float) for x in (r_b, z_b, edges))
    rr1, zz1 = np.meshgrid(r_b[:-1], z_b[:-1], indexing="ij")
    rr2, zz2 = np.meshgrid(r_b[1:], z_b[1:], indexing="ij")
    r1a, r2a, z1a, z2a = rr1.ravel(), rr2.ravel(), zz1.ravel(), zz2.ravel()
    n_b, n_s = r1a.size, edges.size - 1
    # only the (bin, shell) pairs that can overlap: nearest and farthest point of each bin
    zmin_a = np.where(z1a * z2a < 0, 0.0, np.minimum(np.abs(z1a), np.abs(z2a)))
    zmax_a = np.maximum(np.abs(z1a), np.abs(z2a))
    k0 = np.clip(np.searchsorted(edges, np.hypot(r1a, zmin_a), side="right") - 1, 0, n_s - 1)
    k1 = np.clip(np.searchsorted(edges, np.hypot(r2a, zmax_a), side="left") - 1, 0, n_s - 1)
    counts = np.maximum(k1 - k0 + 1, 0)
    ib = np.repeat(np.arange(n_b), counts)
    ks = np.concatenate([np.arange(a, b + 1) for a, b in zip(k0, k1, strict=True)])
    r1, r2, z1, z2 = (v[ib][:, None] for v in (r1a, r2a, z1a, z2a))
    e0, e1 = edges[ks][:, None], edges[ks + 1][:, None]
    za, zb = np.abs(z1), np.abs(z2)
    zmin = zmin_a[ib][:, None]
    cands = [r1, r2, za, zb, np.hypot(r1, zmin), np.hypot(r2, zmin)]
    cands += [np.hypot(r1, za), np.hypot(r1, zb), np.hypot(r2, za), np.hypot(r2, zb)]
    pts = np.concatenate([e0, e1] + [np.clip(c, e0, e1) for c in cands], axis=-1)
    pts.sort(axis=-1)
    total = np.zeros(ib.size)
    for k in range(pts.shape[-1] - 1):
        a, b = pts[:, k : k + 1], pts[:, k + 1 : k + 2]
        half, mid = 0.5 * (b - a), 0.5 * (a + b)
        rho = mid + half * _GL8_X[None, :]
        f = sphere_surface_fraction(r1, r2, z1, z2, rho)
        total += half[:, 0] * (f @ _GL8_W)
    out = np.zeros((n_b, n_s))
    out[ib, ks] = total / (e1[:, 0] - e0[:, 0])
    return out


def cylinder_to_shells(
    edep: np.ndarray,
    rel_unc: np.ndarray,
    r_bounds: np.ndarray,
    z_bounds: np.ndarray,
    edges: np.ndarray,
    iterations: int = 400,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Energy per spherical shell from energy per ring x slab bin (point source at 0).

    Maximum-likelihood EM: the model is ``bins = A @ shells`` with ``A`` from
    :func:`shell_bin_weights` (energy uniform in radius within each shell); each
    iteration shares every bin's scored energy among the shells it overlaps in proportion
    to ``A`` x the current shell energy. Every iteration conserves the total energy and
    keeps values non-negative; unlike spreading each bin's energy evenly over its volume,
    which pushes energy outward, the fixed point is the spherically symmetric distribution
    that reproduces the scored bins.

    Returns
    -------
    shell_energy, shell_rel_unc, max_rel_misfit
        Energy per shell (same unit as ``edep``), its relative statistical uncertainty
        (propagated from the bins through the final sharing weights) and the largest
        relative difference between re-projected and scored bin energies where bins hold
        more than 1e-3 of the total.

    References
    ----------
    Shepp LA, Vardi Y. Maximum likelihood reconstruction for emission tomography.
    IEEE Trans Med Imaging 1982;1:113-122.
    """
    e = np.asarray(edep, dtype=float).ravel()
    sig = np.abs(np.asarray(rel_unc, dtype=float).ravel() * e)
    a = shell_bin_weights(np.asarray(r_bounds, float), np.asarray(z_bounds, float), edges)
    sens = a.sum(axis=0)
    ok = sens > 1e-12
    c = np.where(ok, e.sum() / max(int(ok.sum()), 1), 0.0)
    for _ in range(iterations):
        proj = a @ c
        ratio = np.divide(e, proj, out=np.zeros_like(e), where=proj > 0)
        c = np.where(ok, c * (a.T @ ratio) / np.where(ok, sens, 1.0), 0.0)
    proj = a @ c
    share = np.divide(a * c[None, :], proj[:, None], out=np.zeros_like(a), where=proj[:, None] > 0)
    shell_e = share.T @ e  # energy-conserving final sharing
    shell_sig = np.sqrt((share**2).T @ sig**2)
    shell_unc = np.divide(shell_sig, shell_e, out=np.ones_like(shell_e), where=shell_e > 0)
    big = e > 1e-3 * e.sum()
    misfit = float(np.max(np.abs(proj[big] - e[big]) / e[big])) if big.any() else 0.0
    return shell_e, shell_unc, misfit


def pack(raw: Path, out: Path) -> None:
    """Convert every raw run in ``raw`` into ``out/basis.npz`` + ``out/manifest.json``."""
    raw, out = Path(raw), Path(out)
    info = json.loads((raw / "manifest.json").read_text())
    settings = info["settings"]
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    runs: dict[str, Any] = {}
    for particle in ("electron", "positron", "photon"):
        files = sorted(
            raw.glob(f"{particle}_*MeV.npz"), key=lambda p: float(p.stem.split("_")[1][:-3])
        )
        if not files:  # run sets of other media need not hold every particle
            continue
        energies, edges_l, shells, uncs, hist, inph, misfits = [], [], [], [], [], [], []
        for f in files:
            d = np.load(f)
            r_b, z_b = d["r_bounds_cm"], d["z_bounds_cm"]
            corner = float(np.hypot(r_b[-1], max(abs(z_b[0]), abs(z_b[-1]))))
            edges = np.concatenate([r_b, [corner]])
            se, su, mf = cylinder_to_shells(d["edep_mev"], d["rel_unc"], r_b, z_b, edges)
            energies.append(float(d["energy_mev"]))
            edges_l.append(edges)
            shells.append(se)
            uncs.append(su)
            hist.append(int(d["histories"]))
            inph.append(float(d["energy_fraction_in_phantom"]))
            misfits.append(mf)
        n_s = max(len(x) for x in shells)
        if any(len(x) != n_s for x in shells):
            raise RuntimeError(f"{particle}: runs have different numbers of shells")
        arrays[f"{particle}_energy_mev"] = np.array(energies)
        arrays[f"{particle}_edges_cm"] = np.array(edges_l)
        arrays[f"{particle}_shell_mev"] = np.array(shells)
        arrays[f"{particle}_shell_rel_unc"] = np.array(uncs).astype(np.float32)
        arrays[f"{particle}_histories"] = np.array(hist)
        arrays[f"{particle}_in_phantom"] = np.array(inph)
        runs[particle] = {
            "energies_mev": energies,
            "histories": hist,
            "max_reprojection_misfit": max(misfits),
        }
    target = out / "basis.npz"
    np.savez_compressed(target, **arrays)  # type: ignore[arg-type]
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    from ._dpk import BASIS_VERSION

    medium = f"{settings['medium']} at {settings['density_g_per_cm3']} g/cm3"
    manifest = {
        "basis_version": BASIS_VERSION
        if settings["medium"] == "H2O521ICRU"
        else settings["basis_version"],
        "mc_run_set": settings["basis_version"],
        "description": (
            f"Monoenergetic point-source dose-point kernels in {medium}: energy (MeV per "
            "emitted particle) absorbed in spherical shells around an isotropic point source "
            f"of {', '.join(runs)} (positrons: annihilation photons included)."
        ),
        "code": {"name": "ompmc", "version": info.get("ompmc_version"), "licence": "GPL-3.0"},
        "settings": settings,
        "runs": runs,
        "conversion": (
            "r-z cylinder bins -> spherical shells by MLEM (400 iterations), energy-conserving; "
            "model: energy uniform in radius within each shell (shell_bin_weights)"
        ),
        "arrays": {
            "<p>_energy_mev": "kinetic energy of the emitted particle (MeV)",
            "<p>_edges_cm": "shell edges (cm), per energy",
            "<p>_shell_mev": "energy absorbed per emitted particle in each shell (MeV)",
            "<p>_shell_rel_unc": "relative statistical uncertainty (1 sd) per shell",
            "<p>_histories": "histories per energy",
            "<p>_in_phantom": (
                "fraction of the particle's energy (positrons: + 1.022 MeV) absorbed in the "
                f"phantom ({2 * settings['phantom_radius_cm']:g} cm across)"
            ),
        },
        "sha256": digest,
        "packed": _dt.date.today().isoformat(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
