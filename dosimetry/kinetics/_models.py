"""Sums-of-exponentials time-activity models with analytic integrals.

A model with ``n`` clearance phases and an optional uptake phase is::

    A(t) = sum_i A_i exp(-l_i t)  -  [uptake] (sum_i A_i) exp(-l_u t)

with amplitudes ``A_i >= 0`` (Bq) and rates ``0 <= l_1 < l_2 < ... < l_n < l_u`` (1/s).
The uptake term makes ``A(0) = 0``; with all ``A_i >= 0`` and ``l_u`` above every
clearance rate the curve is non-negative for all ``t >= 0``. The rates are effective
rates (biological + physical) when the activities are not decay corrected.

Internally the fit uses an ordered parametrisation that keeps the rates sorted and
removes label switching: ``[A_1..A_n, l_1, d_2..d_n, (d_u)]`` with ``l_k = l_1 + d_2 + ...
+ d_k`` and ``l_u = l_n + d_u``, all ``d >= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ExpModel", "EXP_MODELS"]


@dataclass(frozen=True)
class ExpModel:
    """A sum-of-exponentials model: ``n_exp`` clearance phases, optional uptake."""

    name: str
    n_exp: int
    uptake: bool
    description: str

    @property
    def n_params(self) -> int:
        return 2 * self.n_exp + (1 if self.uptake else 0)

    def param_names(self) -> list[str]:
        """Physical parameter names with units, in the order of the physical vector."""
        names: list[str] = []
        for i in range(1, self.n_exp + 1):
            names += [f"A{i}_bq", f"lambda{i}_per_s"]
        if self.uptake:
            names.append("lambda_uptake_per_s")
        return names

    # -- parametrisations ---------------------------------------------------------------
    def transform_matrix(self) -> np.ndarray:
        """Matrix M with physical = M @ internal (the map is linear)."""
        n, k = self.n_exp, self.n_params
        m = np.zeros((k, k))
        for i in range(n):
            m[2 * i, i] = 1.0  # A_i
            # l_i = l_1 + d_2 + ... + d_i; internal rate block starts at index n
            m[2 * i + 1, n : n + i + 1] = 1.0
        if self.uptake:
            m[k - 1, n:k] = 1.0
        return m

    def to_physical(self, internal: np.ndarray) -> np.ndarray:
        return self.transform_matrix() @ np.asarray(internal, dtype=float)

    def to_internal(self, physical: np.ndarray) -> np.ndarray:
        return np.linalg.solve(self.transform_matrix(), np.asarray(physical, dtype=float))

    @staticmethod
    def split(
        physical: np.ndarray, n_exp: int, uptake: bool
    ) -> tuple[np.ndarray, np.ndarray, float]:
        p = np.asarray(physical, dtype=float)
        amps = p[0 : 2 * n_exp : 2]
        rates = p[1 : 2 * n_exp : 2]
        lu = float(p[-1]) if uptake else np.inf
        return amps, rates, lu

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, physical: np.ndarray, t: np.ndarray) -> np.ndarray:
        """A(t) for physical parameters (Bq, 1/s) at times ``t`` (s)."""
        amps, rates, lu = self.split(physical, self.n_exp, self.uptake)
        t = np.asarray(t, dtype=float)
        out = np.zeros_like(t)
        for a, lam in zip(amps, rates, strict=True):
            out = out + a * np.exp(-lam * t)
        if self.uptake:
            out = out - amps.sum() * np.exp(-lu * t)
        return out

    def jacobian(self, physical: np.ndarray, t: np.ndarray) -> np.ndarray:
        """d A(t) / d physical, shape ``(len(t), n_params)``."""
        amps, rates, lu = self.split(physical, self.n_exp, self.uptake)
        t = np.asarray(t, dtype=float)
        jac = np.zeros((t.size, self.n_params))
        eu = np.exp(-lu * t) if self.uptake else np.zeros_like(t)
        for i, (a, lam) in enumerate(zip(amps, rates, strict=True)):
            e = np.exp(-lam * t)
            jac[:, 2 * i] = e - eu
            jac[:, 2 * i + 1] = -a * t * e
        if self.uptake:
            jac[:, -1] = amps.sum() * t * eu
        return jac

    def integral(self, physical: np.ndarray, a_s: float, b_s: float) -> float:
        """Integral of A(t) from ``a_s`` to ``b_s`` (``b_s`` may be ``inf``), in Bq s."""
        return float(self._integral_and_grad(physical, a_s, b_s)[0])

    def integral_gradient(self, physical: np.ndarray, a_s: float, b_s: float) -> np.ndarray:
        """Gradient of :meth:`integral` with respect to the physical parameters."""
        return self._integral_and_grad(physical, a_s, b_s)[1]

    def _integral_and_grad(
        self, physical: np.ndarray, a_s: float, b_s: float
    ) -> tuple[float, np.ndarray]:
        amps, rates, lu = self.split(physical, self.n_exp, self.uptake)
        grad = np.zeros(self.n_params)
        total = 0.0

        def term(lam: float) -> tuple[float, float]:
            """(I, dI/dlam) of integral exp(-lam t) over [a, b]."""
            ea = np.exp(-lam * a_s)
            if np.isinf(b_s):
                if lam <= 0:
                    return np.inf, np.nan
                return ea / lam, -(a_s * ea) / lam - ea / lam**2
            eb = np.exp(-lam * b_s)
            if lam == 0:
                return b_s - a_s, -(b_s**2 - a_s**2) / 2.0
            val = (ea - eb) / lam
            return val, (-a_s * ea + b_s * eb) / lam - val / lam

        iu, diu = term(lu) if self.uptake else (0.0, 0.0)
        for i, (a, lam) in enumerate(zip(amps, rates, strict=True)):
            ii, dii = term(float(lam))
            total += a * ii - (a * iu if self.uptake else 0.0)
            grad[2 * i] = ii - iu
            grad[2 * i + 1] = a * dii
        if self.uptake:
            grad[-1] = -amps.sum() * diu
        return float(total), grad


#: Named by the number of exponential terms: ``"biexp-uptake"`` is one clearance phase and
#: one uptake phase, ``A (exp(-l1 t) - exp(-lu t))``.
EXP_MODELS: dict[str, ExpModel] = {
    m.name: m
    for m in (
        ExpModel("mono", 1, False, "A1 exp(-l1 t)"),
        ExpModel("biexp-uptake", 1, True, "A1 (exp(-l1 t) - exp(-lu t))"),
        ExpModel("biexp", 2, False, "A1 exp(-l1 t) + A2 exp(-l2 t)"),
        ExpModel(
            "triexp-uptake",
            2,
            True,
            "A1 exp(-l1 t) + A2 exp(-l2 t) - (A1 + A2) exp(-lu t)",
        ),
        ExpModel("triexp", 3, False, "A1 exp(-l1 t) + A2 exp(-l2 t) + A3 exp(-l3 t)"),
    )
}
