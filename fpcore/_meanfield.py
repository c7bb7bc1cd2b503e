"""Mean-field signal propagation: ``q_l``, ``chi_l`` and the laws of ``D_l^2`` (MATH.md section 1)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._activations import Activation, D2Law
from ._network import Network

__all__ = ["MeanField", "mean_field", "fixed_point"]

_FP_MAX_ITER = 10_000


def fixed_point(activation: Activation, sigma_w2: float, sigma_b2: float, q_start: float = 1.0) -> float:
    """Fixed point ``q*`` of ``q -> sigma_w2 E[phi(sqrt(q) Z)^2] + sigma_b2``.

    Found by bounded fixed-point iteration from ``q_start``. For activations whose derivative law
    does not depend on ``q`` (linear, ReLU, leaky ReLU) a map without a finite positive fixed point
    (``sigma_b2 = 0``) makes ``q*`` irrelevant to the spectrum: ``q_start`` is returned.

    Raises
    ------
    ValueError
        If the iteration does not converge to a finite positive value.

    Examples
    --------
    >>> from fpcore import get_activation
    >>> round(fixed_point(get_activation("relu"), 1.0, 0.5), 12)
    1.0
    """
    q = float(q_start)
    # The map is increasing in q, so plain iteration is monotone: it converges or leaves (0, 1e12).
    for _ in range(_FP_MAX_ITER):
        q_new = float(sigma_w2 * activation.second_moment(q) + sigma_b2)
        if q_new < 1e-300:
            return 1e-300  # q* = 0 (ordered phase without bias): D^2 = phi'(0)^2 almost surely
        if not math.isfinite(q_new) or q_new > 1e12:
            break
        if abs(q_new - q) <= 1e-13 * max(q, 1e-300):
            return q_new
        q = q_new
    # No convergence within the bound (e.g. linear growth for ReLU with sigma_w2 = 2, sigma_b2 > 0).
    if not activation.d2_depends_on_q:
        return float(q_start)
    raise ValueError(
        f"q0='fixed_point': no finite positive fixed point for activation={activation.name!r}, "
        f"sigma_w2={sigma_w2!r}, sigma_b2={sigma_b2!r}"
    )


@dataclass(frozen=True)
class MeanField:
    """Per-layer mean-field quantities of a :class:`Network`.

    Attributes
    ----------
    q : ndarray, shape (L,)
        Pre-activation variance ``q_l`` of each layer.
    chi : ndarray, shape (L,)
        ``chi_l = sigma_{w,l}^2 E[phi_l'(sqrt(q_l) Z)^2]``.
    laws : tuple of D2Law
        Law of ``D_l^2`` used by the spectrum.
    """

    q: np.ndarray
    chi: np.ndarray
    laws: tuple[D2Law, ...]

    @property
    def mean_d2(self) -> np.ndarray:
        """``E[D_l^2]`` per layer."""
        return np.array([law.mean for law in self.laws])


def mean_field(net: Network) -> MeanField:
    """Run the mean-field recursion of ``net``.

    Examples
    --------
    >>> from fpcore import Network
    >>> mf = mean_field(Network([10, 10, 10], activation="relu", sigma_w2=2.0, q0=1.0))
    >>> mf.q.tolist(), mf.chi.tolist()
    ([2.0, 2.0], [1.0, 1.0])
    """
    L = net.depth
    q = np.empty(L)
    if net.q0 == "fixed_point":
        # The input sits at the FIRST layer's fixed point q*; the later layers follow the
        # recursion from there (they stay at q* when they repeat the first layer's parameters,
        # and move to wherever the recursion takes them otherwise: a real network's input
        # cannot put every layer at its own fixed point). The sampler draws x_0 so that q_1 = q*.
        q[0] = fixed_point(net.activations[0], net.sigma_w2[0], net.sigma_b2[0])
    else:
        # x_0 ~ N(0, q0 I): q_1 = sigma_w^2 q0 + sigma_b^2 (input is not passed through phi).
        q[0] = net.sigma_w2[0] * net.q0 + net.sigma_b2[0]
    first = (net.activations[0], net.sigma_w2[0], net.sigma_b2[0])
    for l in range(1, L):
        q[l] = net.sigma_w2[l] * float(net.activations[l - 1].second_moment(q[l - 1])) + net.sigma_b2[l]
        same = (net.activations[l - 1], net.sigma_w2[l], net.sigma_b2[l]) == first
        if net.q0 == "fixed_point" and same and q[l - 1] == q[0] and abs(q[l] - q[0]) <= 1e-12 * q[0]:
            # exactly at q* (no drift from rounding). Only where q[0] IS a fixed point: for a
            # q-independent first layer without one (leaky ReLU, sigma_w2 (1 + a^2) / 2 > 1,
            # fixed_point returns its start) the recursion moves on, as in a real network
            q[l] = q[0]
        if 0.0 <= q[l] < 1e-300:
            # deep ordered nets without bias: q decays geometrically to 0 and underflows; the law
            # of D^2 is then its q -> 0 limit, which q = 1e-300 gives (as fixed_point's q* = 0)
            q[l] = 1e-300
    if not np.all(np.isfinite(q)) or np.any(q <= 0):
        bad = int(np.flatnonzero(~np.isfinite(q) | (q <= 0))[0])
        raise ValueError(
            f"mean field: the pre-activation variance left (0, inf) at layer {bad + 1} of {L} "
            f"(q = {q[bad]!r}, previous {q[bad - 1] if bad else net.q0!r}); check sigma_w2/sigma_b2"
        )
    laws = tuple(net.activations[l].d2_law(float(q[l])) for l in range(L))
    # (one vectorised expectation per activation, not one per layer: 1000 calls at L = 1000;
    # gaussian_expectation picks its panels from the largest q, so q above 1e4 apart)
    chi = np.empty(L)
    acts = list(net.activations)
    sw = np.asarray(net.sigma_w2, dtype=float)
    for act in {id(a): a for a in acts}.values():  # (by identity: every layer gets its own)
        mine = np.array([a is act for a in acts])
        for sel in (mine & (q <= 1e4), mine & ~(q <= 1e4)):
            if np.any(sel):
                chi[sel] = sw[sel] * np.asarray(act.d2_moment(q[sel]), dtype=float)
    return MeanField(q=q, chi=chi, laws=laws)
