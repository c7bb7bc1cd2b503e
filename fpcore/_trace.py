"""The lilypad chain of one target, recorded for teaching and testing, and Newton basins."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._edges import upper_edge
from ._equation import Equation, build_equation
from ._lilypad import _Rational, solve
from ._network import Network, _check_gram

__all__ = ["LilypadTrace", "lilypad_trace", "newton_basins"]

from ._basins import newton_basins  # noqa: E402,F401  (compiled, in its own module; re-exported here)

_Z_RADIUS_BISECT = 60


@dataclass(frozen=True)
class LilypadTrace:
    """The chain of lilypads the solver walked to reach ``M(x + i0)``.

    Attributes
    ----------
    target : complex
        ``x + 0j``.
    centres : ndarray of complex, shape (K,)
        Lilypad centres ``z_k``, from far above the real axis down to the target.
    solutions : ndarray of complex, shape (K,)
        ``m_k``, the (Newton) solution held at ``z_k``.
    radii : ndarray of float, shape (K,)
        Certified radius of each lilypad in the z-plane: for every ``z`` within ``radii[k]`` of
        ``z_k``, ``m_k`` passes the Kantorovich test (rational equations; for verified equations
        it is the distance to the next centre).
    m_radii : ndarray of float, shape (K,)
        Radius ``2 eta`` of the Kantorovich ball in the m-plane of the step that produced ``m_k``
        (``nan`` for the start).
    rejected : ndarray of complex
        Proposals that failed the test; ``rejected_from[i]`` is the lilypad they were tried from.
    newton : tuple of ndarray
        Newton iterates ``m`` of each step (the last one includes the final polishing).
    certified : bool
        Kantorovich-certified at every step (rational equations).
    verified : bool
        Certified, or verified a posteriori (residual and sign checks).
    m, G : complex
        ``M`` and the Cauchy transform ``G = (1 + M)/z`` at the target.
    density : float
        ``-Im G / pi``.
    """

    target: complex
    centres: np.ndarray
    solutions: np.ndarray
    radii: np.ndarray
    m_radii: np.ndarray
    rejected: np.ndarray
    rejected_from: np.ndarray
    newton: tuple
    certified: bool
    verified: bool
    m: complex
    G: complex
    density: float
    network: Network
    gram: str

    def __len__(self) -> int:
        return int(self.centres.size)


def _z_radius(ev: _Rational, z: complex, m: complex) -> float:
    """Largest ``R`` such that ``m`` passes the Kantorovich test for all ``|z' - z| <= R``.

    Worst case over the disc by the triangle inequality: with ``z' = z + delta``,
    ``rho' = rho (1 + delta/z)``, so ``|f(z')| <= |f| + |rho||delta|/|z|`` and
    ``|f'(z')| >= |f'| - |rho||Q'/Q||delta|/|z|``; ``K`` grows through ``|z'| <= |z| + |delta|``
    and through the larger ball radius. Bisection on ``|delta|``.
    """
    st = ev.at(np.array([m]))
    lqp, LQ, LP, distp, distn, logPr = st[:6]
    az = abs(z)
    rho = z * np.exp(lqp[0])
    f0 = abs(rho - 1.0)
    fp0 = abs(rho * LQ[0] - LP[0])
    arho, aLQ = abs(rho), abs(LQ[0])

    def ok(R: float) -> bool:
        num = f0 + arho * R / az
        den = fp0 - arho * aLQ * R / az
        if den <= 0:
            return False
        eta = num / den
        r = 2.0 * eta
        d = distp[0] + r
        s1 = float(np.sum(ev.ep / d))
        K = math.exp(float(np.sum(ev.ep * np.log1p(r / distp[0])))) * max(s1 * s1 - float(np.sum(ev.ep / d**2)), 0.0)
        if ev.q_curved:
            dn = distn[0] + r
            s2 = float(np.sum(ev.en / dn))
            K += math.exp(math.log(az + R) + float(np.sum(ev.en * np.log(dn))) - float(logPr[0])) * max(
                s2 * s2 - float(np.sum(ev.en / dn**2)), 0.0
            )
        return eta * K <= 0.5 * den

    if not ok(0.0):
        return 0.0
    lo, hi = 0.0, az
    if ok(hi):
        return hi
    for _ in range(_Z_RADIUS_BISECT):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def lilypad_trace(net: Network, x: float, gram: str = "JtJ") -> LilypadTrace:
    """Record the lilypad chain that solves ``M^{-1}(m) = x + i0``.

    The same algorithm as :func:`jacobian_spectrum` run on one point, with every accepted and
    rejected step kept, so the dashboard can animate exactly what the solver did.

    Parameters
    ----------
    net : Network
    x : float
        Target on the positive real axis.
    gram : {"JtJ", "JJt"}

    Examples
    --------
    >>> import fpcore
    >>> tr = fpcore.lilypad_trace(fpcore.Network([200] * 4, "relu"), 1.0)
    >>> tr.certified, bool(tr.centres[-1] == 1.0), tr.density > 0
    (True, True, True)
    """
    _check_gram(gram)
    if not isinstance(net, Network):
        raise ValueError(f"net must be an fpcore.Network, got {type(net).__name__}")
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"x must be a positive float, got {x!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"x must be a positive float, got {x!r}")
    eq = build_equation(net, gram)
    try:
        scale = upper_edge(eq)
    except (RuntimeError, ValueError):
        scale = eq.mean
    r = solve(eq, np.array([complex(x)]), scale=max(scale, x), record=True)
    tr = r.trace
    centres = np.array(tr["centres"], dtype=complex)
    sols = np.array(tr["solutions"], dtype=complex)
    if eq.rational:
        ev = _Rational(eq)
        radii = np.array([_z_radius(ev, c, s) for c, s in zip(centres, sols)])
    else:
        radii = np.append(np.abs(np.diff(centres)), 0.0)
    m = complex(r.m[0])
    G = (1.0 + m) / x
    return LilypadTrace(
        target=complex(x),
        centres=centres,
        solutions=sols,
        radii=radii,
        m_radii=2.0 * np.array(tr["eta"], dtype=float),
        rejected=np.array(tr["rejected"], dtype=complex),
        rejected_from=np.array(tr["rejected_from"], dtype=int),
        newton=tuple(np.asarray(a, dtype=complex) for a in tr["newton"]),
        certified=bool(r.certified[0]),
        verified=bool(r.verified[0]),
        m=m,
        G=G,
        density=max(-G.imag / math.pi, 0.0),
        network=net,
        gram=gram,
    )
