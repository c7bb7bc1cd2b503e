"""Newton lilypads: certified continuation for ``M^{-1}(m) = z`` (MATH.md section 4).

For a target ``t`` the chain starts at ``z_0 = t + i Y`` (``Y`` large, where ``m ~ mean / z`` is a
certified start) and walks straight to ``t``. A proposed step ``z_k -> z_{k+1}`` is accepted only
if the current ``m_k`` is a certified Newton start for ``f_{z_{k+1}}`` (Kantorovich test,
:func:`kantorovich`); otherwise the step is halved. Every loop has a bound; a point that runs out
of budget is flagged, never silently wrong.

Rational equations (Bernoulli ``D^2`` laws: linear, ReLU, hard-tanh, with Gaussian or orthogonal
weights) are certified by Kantorovich. Equations with non-rational ``D^2`` factors (leaky ReLU,
smooth activations) are solved by the same continuation and verified a posteriori (residual
``<= 1e-10`` and ``Im M <= 0``); points that fail both are counted as uncertified.

The equation is normalised as ``f(m) = rho(m) - 1`` with
``rho = z Q(m) prod u^n / (C P(m))``, where ``P`` and ``Q`` collect the factors with positive and
negative exponents: the Kantorovich ratio ``eta K / |f'|`` is invariant under this scaling, and
every product is evaluated through logarithms, so deep networks neither overflow nor underflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import _fastchain, _gaps
from ._activations import N_SHORT
from ._equation import Equation

__all__ = ["kantorovich", "solve", "SolveResult", "TOL_VERIFY"]

MAX_ROUNDS = 400  # accepted + rejected proposals per point
MAX_NEWTON = 40  # Newton iterations at the target
INNER_NEWTON = 60  # Newton iterations for each u_g
TOL_VERIFY = 1e-10  # residuals of a verified solution, and Im M <= TOL_VERIFY |M| (contour rules give
# psi to about 1e-11: on the real axis off the support, e.g. the moments' contour point -R, M is real
# and its computed Im may be +1e-12 |M|, which a 1e-12 test refused; issue #10, study SiLU nets)
_EPS = np.finfo(float).eps


def _log_terms(eq: Equation, m: np.ndarray):
    """``log P``, ``log Q`` (complex) and ``P'/P``, ``Q'/Q`` at ``m`` (shape (n,))."""
    d = m[:, None] - eq.roots.astype(complex)
    # log|d| + i arg(d): numpy's complex log is several times slower.
    ld = np.log(np.abs(d)) + 1j * np.angle(d)
    inv = 1.0 / d
    ep, en = eq.ep, eq.en
    logP = ld @ ep + eq.log_c
    logQ = ld @ en
    return logP, logQ, inv @ ep, inv @ en


def _u_terms(eq: Equation, m: np.ndarray, u: np.ndarray | None, max_iter: int = INNER_NEWTON):
    """Solve ``psi_g(u_g) = k_g m`` for each group from the warm start ``u``.

    Returns ``u`` (n, G), ``sum_g n_g log u_g``, ``sum_g n_g u_g'/u_g`` and the worst relative
    inner residual per point.
    """
    n = m.shape[0]
    G = len(eq.ugroups)
    if u is None:
        u = np.empty((n, G), dtype=complex)
        for g, grp in enumerate(eq.ugroups):
            u[:, g] = grp.k * m / grp.law.mean
    else:
        u = u.copy()
    slog = np.zeros(n, dtype=complex)
    sder = np.zeros(n, dtype=complex)
    worst = np.zeros(n)
    Vc, Wc = eq.packed_complex
    for g, grp in enumerate(eq.ugroups):
        w = grp.k * m
        ug = u[:, g]
        for _ in range(max_iter):
            ps, dps = grp.psi(ug, Vc[g], Wc[g])
            step = (ps - w) / dps
            ug = ug - step
            if np.all(np.abs(step) <= 4 * _EPS * np.abs(ug)):
                break
        ps, dps = grp.psi(ug, Vc[g], Wc[g])
        worst = np.maximum(worst, np.abs(ps - w) / np.maximum(np.abs(w), 1e-300))
        u[:, g] = ug
        slog += grp.n * np.log(ug)
        sder += grp.n * grp.k / (dps * ug)
    return u, slog, sder, worst


def _residual(eq, z, m, u):
    """``f = rho - 1`` and ``f'`` at ``(z, m)``, plus ``u`` and inner residuals."""
    logP, logQ, LP, LQ = _log_terms(eq, m)
    if eq.ugroups:
        u, slog, sder, inner = _u_terms(eq, m, u)
        lr = np.log(z) + logQ + slog - logP
        LQ = LQ + sder
    else:
        lr = np.log(z) + logQ - logP
        inner = None
    rho = np.exp(np.minimum(lr.real, 700.0) + 1j * lr.imag)
    return rho - 1.0, rho * LQ - LP, rho, logP, u, inner


_EPS = float(np.finfo(float).eps)


def _residual_ok(eq: Equation, t: np.ndarray, m: np.ndarray, fabs: np.ndarray) -> np.ndarray:
    """The a-posteriori residual test of a rational equation's solution: ``|f| <= TOL_VERIFY``,
    or ``|f|`` within ``TOL_VERIFY + |f'(m)| eps |m|``, what rounding ``m`` to a double moves ``f``
    by. Near a root ``a_j`` of the equation's product that floor exceeds ``TOL_VERIFY``: a square
    linear net of two layers at ``x ~ 1e-18 lambda_max`` has ``m`` within ``1.2e-6`` of ``-1``
    (exponent 3), and the double nearest to the root leaves ``|f| ~ 1.2e-10``."""
    fabs = np.asarray(fabs, dtype=float)
    ok = fabs <= TOL_VERIFY
    near = ~ok & np.isfinite(fabs)
    if np.any(near):
        _, fp, *_ = _residual(eq, t[near], m[near], None)
        ok[near] = fabs[near] <= TOL_VERIFY + np.abs(fp) * _EPS * np.abs(m[near])
    return ok


@dataclass
class SolveResult:
    """Raw output of :func:`solve` (internal)."""

    m: np.ndarray
    u: np.ndarray | None
    certified: np.ndarray
    verified: np.ndarray
    n_lilypads: int = 0
    n_newton: int = 0
    n_rejected: int = 0
    trace: dict | None = field(default=None)
    short: np.ndarray | None = None  # where (m, u) solve the equation with the laws' short rules
    # (solve_cluster) the shared point of its walks, ``(z, m, u)`` with ``Im z > 0``, reached from
    # far above: a start for walks to other targets near it (the grid's first point)
    start: tuple | None = None


def _far_shift(eq: Equation) -> float:
    """``s_1 = -mean sum_j e_j / a_j`` of :func:`far_start` (0 for non-rational equations)."""
    nz = eq.roots != 0
    return -eq.mean * float(np.sum(eq.exps[nz] / eq.roots[nz])) if eq.rational else 0.0


def far_start(eq: Equation, z):
    """Two-term far-field solution ``m = mean / (z - s_1)``, ``s_1 = -mean sum_j e_j / a_j``
    (from ``M^{-1}(m) = (mean/m)(1 + c_1 m + O(m^2))``): error ``O(|z|^-3)``."""
    return eq.mean / (z - _far_shift(eq))


def _start_height(eq: Equation, x: np.ndarray, scale: float) -> float:
    """A height ``Y`` at which :func:`far_start` is a certified start for all ``z = x + iY``."""
    Y = max(0.5 * scale, 1e-300)
    xs = np.array([x.min(), x.max(), 0.0])
    if not eq.rational and _fastchain._HAVE_NUMBA:
        _, _, k, n = eq.packed
        V, W = eq.packed_complex
        Y = _fastchain.start_height_general(xs, float(scale), float(eq.mean), eq.roots.astype(float),
                                            eq.exps.astype(float), float(eq.log_c), V, W, k, n,
                                            np.array([g.law.mean for g in eq.ugroups]))
        if Y > 0.0:
            return Y
        raise RuntimeError("lilypads: no certified start found (Y grew past its bound)")
    for _ in range(2000):
        z = xs + 1j * Y
        m0 = far_start(eq, z)
        if eq.rational:
            ok, _, _ = kantorovich(eq, z, m0)
        else:
            f, fp, *_ = _residual(eq, z, m0, None)
            ok = np.abs(f / fp) <= 1e-3 * np.abs(m0)
        if np.all(ok):
            return Y
        Y *= 2.0
    raise RuntimeError("lilypads: no certified start found (Y grew past its bound)")


_E1 = math.e - 1.0


def _wrap(g):
    """``g`` shifted by a multiple of ``2 pi i`` into ``|Im g| <= pi``: every branch of
    ``log(z / M^{-1}(m))`` has the same derivative and its zeros are solutions, so the Newton map
    and the Kantorovich test may use whichever branch is nearest to zero at the start."""
    return g - 2j * np.pi * np.round(g.imag / (2 * np.pi))


def _arg(w):
    """Argument with the cut along the positive imaginary axis: values in (-3 pi/2, pi/2]."""
    a = np.angle(w)
    return np.where(a > 0.5 * np.pi, a - 2.0 * np.pi, a)


class _Rational:
    """Kantorovich test and Newton step for a rational equation, split by what depends on ``m``.

    ``at(m)`` evaluates the factors at the current solutions once; ``test(state, z)`` then checks
    any proposal ``z`` for those starts at the cost of a few vector operations.
    """

    def __init__(self, eq: Equation):
        pos = eq.exps > 0
        self.ap, self.ep = eq.roots[pos].astype(complex), eq.exps[pos]
        self.an, self.en = eq.roots[~pos].astype(complex), -eq.exps[~pos]
        self.log_c = eq.log_c
        # Q'' vanishes when Q has degree <= 1 (Gaussian weights: Q(m) = m).
        self.q_curved = self.en.sum() > 1
        self.aap, self.aan = np.abs(self.ap.real), np.abs(self.an.real)
        # all roots, and |e_k| |a_j - a_k| for the log(m - a_j) coordinate (zero for k = j)
        self.A = np.concatenate([self.ap, self.an])
        self.absw = np.concatenate([self.ep, self.en])
        self.W = self.absw[None, :] * np.abs(self.A[:, None] - self.A[None, :])
        npos = self.ap.size
        self.ep_all = np.concatenate([self.ep, np.zeros(self.an.size)])
        self.en_all = np.concatenate([np.zeros(npos), self.en])
        self.sw = self.en_all - self.ep_all  # signed exponents of log(z / M^{-1})
        self.sw2 = self.ep_all - self.en_all  # g'' = sum (e_p / d^2) - sum (e_n / d^2)
        self._cols = np.arange(self.A.size)
        # Factors cancel at infinity (degree 0): keep the sharper curvature bound there.
        self.third = float(eq.exps.sum()) == 0.0

    def at(self, m):
        # Complex logarithms are slow in numpy: sum log|d| and arg(d) separately. The arguments
        # use the branch cut pointing straight up from each root (arg in (-3pi/2, pi/2]): the
        # solutions live in the closed lower half-plane, real axis included, so the logarithms
        # are analytic on every ball that keeps clear of the roots themselves.
        d = m[:, None] - self.A  # all roots: the ones of P first, then those of Q
        ad = np.abs(d)
        la = np.log(ad)
        logPr = la @ self.ep_all + self.log_c
        lqp = (la @ self.sw - self.log_c) + 1j * (_arg(d) @ self.sw)
        inv = 1.0 / d
        np_ = self.ap.size
        adp, adn = ad[:, :np_], ad[:, np_:]
        # distance from m to the cuts {a_j + i t, t >= 0}
        cut = ad.min(axis=1)
        up = m.imag > 0
        if np.any(up):
            cut[up] = np.min(np.abs(m.real[up, None] - self.A.real), axis=1)
        # |g''(m)|, only used (by test and max_step) when self.third; a placeholder otherwise
        g2 = np.abs((inv * inv) @ self.sw2) if self.third else np.zeros_like(cut)
        # the coordinates ell = log(m - a_j), one per root a_j (see max_step): delta_j = |m - a_j|,
        # the distance to the other roots, and S_j = delta_j sum_k |e_k| |a_j - a_k| / d_k^2
        if ad.shape[1] > 1:
            j1 = np.argmin(ad, axis=1)
            d2 = np.partition(ad, 1, axis=1)[:, 1]
            dnz = np.where(self._cols == j1[:, None], d2[:, None], cut[:, None])
        else:
            dnz = np.full_like(ad, np.inf)
        Sl = ad * ((1.0 / (ad * ad)) @ self.W.T)
        return (lqp, inv @ self.en_all, inv @ self.ep_all, adp, adn, logPr, cut, g2, ad, Sl, dnz)

    def light(self, m):
        """``log Q - log P``, ``Q'/Q`` and ``P'/P`` only (what a Newton step needs)."""
        dp = m[:, None] - self.ap
        dn = m[:, None] - self.an
        lqp = (np.log(np.abs(dn)) @ self.en - np.log(np.abs(dp)) @ self.ep - self.log_c) + 1j * (
            _arg(dn) @ self.en - _arg(dp) @ self.ep
        )
        return lqp, (1.0 / dn) @ self.en, (1.0 / dp) @ self.ep

    def max_step(self, st, z0, dirn, dist):
        """Longest step ``s <= dist`` from ``z0`` along ``dirn`` for which the log-form test
        certifies the state's ``m`` (closed form, no trial proposals).

        With ``d_j = |m - a_j|``, ``d = min d_j`` and ``r = 2 eta``, both curvature bounds of
        :meth:`test` are dominated by expressions in ``d`` alone:
        ``sum e_j/(d_j - r)^2 <= S2 / (1 - r/d)^2`` (``S2 = sum e_j / d_j^2``), so
        ``eta K <= |g'|/2`` holds for ``rho = r/d`` with ``rho/(1 - rho)^2 <= |g'| / (d S2)``: the
        largest admissible ``eta`` in closed form. Then ``g(z) = g(z0) + log(z/z0)`` and
        ``|log(1+x) - x| <= |x|^2 / (2 (1 - |x|))`` give the longest step with ``|g| <= eta |g'|``.
        """
        lqp, LQ, LP, adp, adn, logPr, cut, g2, am, Sl, dnz = st
        Asel = self.A[np.argmin(am, axis=1)]  # nearest root unless a better one is found
        agp = np.abs(LQ - LP)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # ell = log(m - a_j) form around each root a_j (delta = |m - a_j|, d the
            # distance to the other roots, kappa = delta/d): |G''| <= S e^r / (1 - delta (e^r - 1)
            # / d)^2 on the ell-ball of radius r, G' = (m - a_j) g'. For r <= 1, e^r <= 1 + c r
            # with c = e - 1, so with x = 2 c eta the test eta K <= |G'|/2 follows from
            # x (1 + x) / (1 - kappa x)^2 <= B = c |G'| / S: a quadratic, solved in closed form;
            # the root whose coordinate allows the longest step is used.
            agl = am * agp[:, None]  # |G'_j|, shape (n, roots)
            kap = am / dnz
            B = _E1 * agl / Sl
            x = 2 * B / ((1 + 2 * B * kap) + np.sqrt(1 + 4 * B * kap + 4 * B))
            x = np.minimum(np.where(np.isfinite(x), x, 0.0), _E1)  # r <= 1
            gl = 0.999 * x / (2 * _E1) * agl
            jbest = np.argmax(gl, axis=1)  # the root whose coordinate allows the longest step
            gamma_l = gl[np.arange(gl.shape[0]), jbest]
            Asel = self.A[jbest]
            S2 = (1.0 / adp**2) @ self.ep + (1.0 / adn**2) @ self.en
            A = agp / (cut * S2)
            rho = np.where(A > 1e-8, ((2 * A + 1) - np.sqrt(4 * A + 1)) / (2 * A), A)
            eta = 0.999 * rho * cut / 2.0
            if self.third:
                # the second bound, |g''(m)| + r sup|g'''|, solved by bisection on eta
                S3 = (1.0 / adp**3) @ self.ep + (1.0 / adn**3) @ self.en
                lo, hi = np.zeros_like(eta), 0.5 * cut
                for _ in range(40):
                    mid = 0.5 * (lo + hi)
                    r = 2 * mid
                    ok = mid * (g2 + 2 * r * S3 / (1 - r / cut) ** 3) <= 0.5 * agp
                    lo = np.where(ok, mid, lo)
                    hi = np.where(ok, hi, mid)
                eta = np.maximum(eta, 0.999 * lo)
            gamma = np.maximum(eta * agp, gamma_l)
            kind = np.where(gamma_l > eta * agp, 2, 1)
            # what :meth:`test` certifies (its ell form takes the nearest root): the lilypad
            rows_ = np.arange(gl.shape[0])
            gamma_test = np.maximum(eta * agp, gl[rows_, np.argmin(am, axis=1)])
            g0 = _wrap(np.log(np.abs(z0)) + 1j * np.angle(z0) + lqp)
            u = dirn / z0

            def fits(sv):
                w = 1.0 + sv * u
                return np.abs(g0 + np.log(np.abs(w)) + 1j * np.angle(w)) <= gamma

            # |g(z0 + s dirn)| = |g0 + log(1 + s u)| <= gamma. Linearised, |g0 + s u| = gamma
            # is a quadratic in s; the exact condition is then checked and s shrunk until it
            # holds (the admissible set along the ray is an interval from 0).
            au = np.abs(u)
            b = (np.conj(g0) * u).real
            ag0 = np.abs(g0)
            disc = b * b - au * au * (ag0 * ag0 - gamma * gamma)
            s = np.where((disc >= 0) & (gamma > ag0), (-b + np.sqrt(np.maximum(disc, 0.0))) / (au * au), 0.0)
            s = np.minimum(np.where(np.isfinite(s), s, 0.0), dist)
            bad = ~fits(s)
            for _ in range(40):
                if not np.any(bad):
                    break
                s = np.where(bad, 0.8 * s, s)
                bad &= ~fits(s)
            s = np.where(bad, 0.0, s)
            s = np.where(np.isfinite(s) & (s > 0), s, 0.0)
        return np.minimum(s, dist), kind, Asel, np.where(np.isfinite(gamma_test), gamma_test, 0.0)

    def disk_radius(self, st, z, gamma, need=None):
        """Radius of the certified lilypad: the largest ``R`` such that the state's ``m`` passes
        the Kantorovich test (:meth:`test`) for every ``z'`` with ``|z' - z| <= R``.

        Log forms (``gamma`` from :meth:`max_step`, its closed form of the log and nearest-root
        ``log(m - a)`` certificates: every ``z'`` with ``|g(z')| <= gamma`` passes :meth:`test`): ``g(z + delta) = g(z) + log(1 + delta/z)`` and ``|log(1 + x)| <= -log(1 - |x|)``
        give ``R = |z| (1 - exp(|g(z)| - gamma))``. Polynomial form: ``|f(z')| <= |f| + |rho| R/|z|``
        and ``|f'(z')| >= |f'| - |rho| |Q'/Q| R/|z|`` (``rho(z') = rho (1 + delta/z)``), the
        curvature bound taken at the larger ball, by bisection on ``R`` (only where ``need``
        exceeds the log-form radius). The larger of the two.
        """
        lqp, LQ, LP, distp, distn, logPr = st[:6]
        z = np.asarray(z, dtype=complex)
        az = np.abs(z)
        with np.errstate(all="ignore"):
            g = _wrap(np.log(az) + 1j * np.angle(z) + lqp)
            R = np.where(gamma > np.abs(g), -az * np.expm1(np.abs(g) - gamma), 0.0)
            R = np.where(np.isfinite(R), R, 0.0)
            rows = np.flatnonzero(R < (need if need is not None else np.inf))
            if rows.size == 0:
                return R
            lq, azr = lqp[rows], az[rows]
            rho = z[rows] * np.exp(np.minimum(lq.real, 700.0 - np.log(azr)) + 1j * lq.imag)
            f0 = np.abs(rho - 1.0)
            fp0 = np.abs(rho * LQ[rows] - LP[rows])
            arho, aLQ = np.abs(rho), np.abs(LQ[rows])
            dp, dn = distp[rows], distn[rows]
            lpr = logPr[rows]

            def ok(Rv):
                num = f0 + arho * Rv / azr
                den = fp0 - arho * aLQ * Rv / azr
                eta = num / den
                r = (2.0 * eta)[:, None]
                d = dp + r
                s1 = (1.0 / d) @ self.ep
                K = np.exp(np.log1p(r / dp) @ self.ep) * np.maximum(s1 * s1 - (1.0 / d**2) @ self.ep, 0.0)
                if self.q_curved:
                    dnr = dn + r
                    s2 = (1.0 / dnr) @ self.en
                    K = K + np.exp(np.log(azr + Rv) + np.log(dnr) @ self.en - lpr) * np.maximum(
                        s2 * s2 - (1.0 / dnr**2) @ self.en, 0.0)
                return (den > 0) & (eta * K <= 0.5 * den) & np.isfinite(eta)

            lo = np.zeros(rows.size)
            hi = azr.copy()
            good0 = ok(lo)
            top = ok(hi)
            lo = np.where(top, hi, lo)
            for _ in range(_Z_RADIUS_BISECT):
                mid = 0.5 * (lo + hi)
                okm = ok(mid)
                lo = np.where(okm, mid, lo)
                hi = np.where(okm, hi, mid)
            Rp = np.where(good0, lo, 0.0)
            R[rows] = np.maximum(R[rows], Rp)
        return R

    def test(self, st, z):
        """Certify Newton from the state's ``m`` for ``f_z``; returns ok, theta, Newton step, eta.

        Two certificates, each a Kantorovich test of its own Newton map:

        * log form ``g = log z + log Q - log P`` (products become sums, so a factor of
          multiplicity ``e`` costs ``e/d^2`` in ``|g''|`` instead of ``e^2/d^2`` in ``|f''|``:
          steps an order of magnitude longer for deep nets). ``g`` is analytic off the
          upward cuts from the roots; the ball must avoid them, and on it
          ``|g''| <= sum |e_j| / (d_j - r)^2``.
        * polynomial form ``f = rho - 1`` (``rho = z Q / (C P)``), bound of MATH.md section 4;
          it needs no branch of the logarithm.
        """
        lqp, LQ, LP, distp, distn, logPr, cut, g2, dall, Sl, dnz = st
        Aall = self.A
        if z.ndim == 1:
            ok, theta, step, eta, kind = self.test(st, z[:, None])
            return ok[:, 0], theta[:, 0], step[:, 0], eta[:, 0], kind[:, 0]
        # the log(m - a) coordinate around the nearest root
        jnear = np.argmin(dall, axis=1)
        am = dall[np.arange(dall.shape[0]), jnear]
        Asel = Aall[jnear]
        lqp2, LQ2, LP2, cut2 = lqp[:, None], LQ[:, None], LP[:, None], cut[:, None]
        az = np.abs(z)
        g = _wrap(np.log(az) + 1j * np.angle(z) + lqp2)
        gp = LQ2 - LP2
        agp = np.abs(gp)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            eta_g = np.abs(g) / agp
            r = (2.0 * eta_g)[..., None]
            ip = 1.0 / (distp[:, None, :] - r)
            in_ = 1.0 / (distn[:, None, :] - r)
            # Two bounds on the curvature over the ball: term by term, or its value at m plus
            # r times a bound on the third derivative (keeps the cancellations between
            # factors, which matter where |m| is large).
            Kg = (ip * ip) @ self.ep + (in_ * in_) @ self.en
            if self.third:
                Kg = np.minimum(Kg, g2[:, None] + 2.0 * r[..., 0] * ((ip**3) @ self.ep + (in_**3) @ self.en))
            theta = eta_g * Kg / agp
            ok = (theta <= 0.5) & (2.0 * eta_g < cut2)
        step = g / gp
        eta = eta_g
        kind = np.where(ok, 1, 0)
        # ell = log(m - a_j) form around the nearest root (third certificate): Newton on
        # G(ell) = g(a_j + e^ell), G' = (m - a_j) g'; per-root curvature bound on the ell-ball.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            am2 = am[:, None]
            agl = am2 * agp
            eta_l = np.abs(g) / agl
            r = 2.0 * eta_l
            shift = am2 * np.expm1(r)
            dall = np.concatenate([distp, distn], axis=1)[:, None, :] - shift[..., None]
            jsel = np.argmin(np.abs(self.A[None, :] - Asel[:, None]), axis=1)
            Wj = self.W[jsel][:, None, :]
            Kl = am2 * np.exp(r) * np.sum(np.where(Wj > 0, Wj / dall**2, 0.0), axis=-1)
            pos = np.all(np.where(Wj > 0, dall, 1.0) > 0, axis=-1)
            ok_l = (eta_l * Kl <= 0.5 * agl) & pos & ~ok
        ok |= ok_l
        kind = np.where(ok_l, 2, kind)
        theta = np.where(ok_l, eta_l * Kl / agl, theta)
        eta = np.where(ok_l, eta_l, eta)
        # The polynomial-form certificate where the log form fails (near the cuts, or where
        # the log form's curvature bound is the looser of the two).
        rows = np.flatnonzero(~ok.all(axis=1))
        if rows.size:
            zr = z[rows]
            azr = az[rows]
            lq, LQr, LPr, lp_r = lqp[rows, None], LQ[rows, None], LP[rows, None], logPr[rows, None]
            dp, dn0 = distp[rows, None, :], distn[rows, None, :]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                rho = zr * np.exp(np.minimum(lq.real, 700.0 - np.log(azr)) + 1j * lq.imag)
                f = rho - 1.0
                fp = rho * LQr - LPr
                afp = np.abs(fp)
                eta_f = np.abs(f) / afp
                r = (2.0 * eta_f)[..., None]
                inv = 1.0 / (dp + r)
                s1 = inv @ self.ep
                K = np.exp(np.log1p(r / dp) @ self.ep) * np.maximum(s1 * s1 - (inv * inv) @ self.ep, 0.0)
                if self.q_curved:
                    dnr = dn0 + r
                    invn = 1.0 / dnr
                    s2 = invn @ self.en
                    K = K + np.exp(np.log(azr) + np.log(dnr) @ self.en - lp_r) * np.maximum(
                        s2 * s2 - (invn * invn) @ self.en, 0.0
                    )
                theta_f = eta_f * K / afp
            ok_f = (theta_f <= 0.5) | (f == 0)
            use_f = ok_f & ~ok[rows]
            kind[rows] = np.where(use_f, 0, kind[rows])
            ok[rows] |= ok_f
            theta[rows] = np.where(use_f, theta_f, theta[rows])
            step[rows] = np.where(use_f, f / fp, step[rows])
            eta[rows] = np.where(use_f, eta_f, eta[rows])
        return ok, theta, step, eta, kind


def kantorovich(eq: Equation, z: np.ndarray, m: np.ndarray):
    """Kantorovich test for Newton on ``f_z`` started at ``m`` (rational equations).

    With ``eta = |f/f'|(m)`` and ``K >= sup |f''|`` on ``B(m, 2 eta)``, Newton converges to the
    unique root in that ball when ``eta K / |f'(m)| <= 1/2``. ``K`` is bounded in product form:
    ``|P''| <= |C| prod d_i ((sum 1/d_i)^2 - sum 1/d_i^2)`` with ``d_i = |m - a_i| + 2 eta``
    (MATH.md section 4), the same for ``Q``, and ``|f''| <= |z| |Q''| + |C P''|``; all of it is
    divided by ``|C P(m)|`` and evaluated through logarithms.

    Returns
    -------
    ok : bool ndarray
    theta : float ndarray
        ``eta K / |f'|`` (certified when ``<= 1/2``).
    eta : float ndarray
        Newton step length; ``2 eta`` is the radius of the certified ball.
    """
    ev = _Rational(eq)
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    m = np.atleast_1d(np.asarray(m, dtype=complex))
    ok, theta, _, eta, _ = ev.test(ev.at(m), z)
    return ok, theta, eta


def _polish(ev: "_Rational", t, m, kind, iters: int = MAX_NEWTON):
    """Newton at the targets until ``|dm| <= 4 eps |m|`` per point: the log-form map
    ``m <- m - g/g'`` (kind 1), the polynomial-form map ``m <- m - f/f'`` (kind 0) or the
    ``log(m - a)`` form ``m <- a + (m - a) exp(-g / ((m - a) g'))`` around the nearest root (kind 2)."""
    m = m.copy()
    act = np.arange(m.shape[0])
    prev = np.full(m.shape[0], np.inf)
    lt = np.log(np.abs(t)) + 1j * np.angle(t)
    used = 0
    path = [m.copy()]
    for _ in range(iters):
        if act.size == 0:
            break
        lqp, LQ, LP = ev.light(m[act])
        g = _wrap(lt[act] + lqp)
        k = kind[act]
        gp = LQ - LP
        step = g / gp
        if np.any(k == 0):
            rho = np.exp(g)
            step = np.where(k == 0, (rho - 1.0) / (rho * LQ - LP), step)
        if np.any(k == 2):
            ma = m[act]
            dm = ma - ev.A[np.argmin(np.abs(ma[:, None] - ev.A[None, :]), axis=1)]
            step = np.where(k == 2, dm * -np.expm1(-g / (dm * gp)), step)
        step = np.where(np.isfinite(step), step, 0.0)
        m[act] -= step
        used += act.size
        path.append(m.copy())
        # Stop at 4 eps, or once round-off stalls the quadratic decrease near that level.
        a_step = np.abs(step)
        scale = np.maximum(np.abs(m[act]), 1e-300)
        go = (a_step > 4 * _EPS * scale) & ~((a_step > 0.5 * prev[act]) & (a_step < 1e-11 * scale))
        prev[act] = a_step
        act = act[go]
    return m, used, path


_Z_RADIUS_BISECT = 50  # bisection steps of the polynomial-form lilypad radius
_N_PROPOSALS = 24  # fallback proposals dist * 2^-k, k = 0..23
_SHORT = 0.05  # a closed-form step shorter than this fraction of the way triggers the fallback
_GROW = 2.0 ** np.arange(1, _N_PROPOSALS + 1, dtype=float)  # or s * 2^k


def _chain(ev: _Rational, z: np.ndarray, m: np.ndarray, t: np.ndarray, record: bool, max_rounds: int):
    """Walk each start ``(z, m)`` (``m`` a certified Newton start for ``z``) straight to its
    target ``t`` by certified lilypads. Returns the final iterates (unpolished), which Newton map
    certified the last step, failure flags, counts and the recorded chain of point 0."""
    n = t.shape[0]
    z = z.copy()
    m = m.copy()
    idx = np.arange(n)
    ta = t.copy()
    out_m = np.empty(n, dtype=complex)
    out_log = np.ones(n, dtype=np.int8)
    failed = np.zeros(n, dtype=bool)
    n_lily, n_newton, n_rej = 0, 0, 0
    mult = 2.0 ** -np.arange(_N_PROPOSALS, dtype=float)
    tr = None
    if record:
        tr = dict(centres=[z[0]], solutions=[m[0]], eta=[np.nan], rejected=[], rejected_from=[],
                  newton=[np.array([m[0]])], radii=[])
    for _ in range(max_rounds):
        if idx.size == 0:
            break
        dist = np.abs(ta - z)
        with np.errstate(invalid="ignore", divide="ignore"):
            dirn = np.where(dist > 0, (ta - z) / dist, 0.0)
        st = ev.at(m)
        # The longest certified step, in closed form (log-form Kantorovich test).
        s, logform, Asel, gamma = ev.max_step(st, z, dirn, dist)
        # Where that step is short (near a root of M^{-1}, or where the polynomial form's
        # bound is the sharper one) also test longer proposals with both certificates:
        # s * 2^k, or dist * 2^-k when the closed form allows nothing.
        short = np.flatnonzero(s < _SHORT * dist)
        if short.size:
            base = np.where(s[short, None] > 0, s[short, None] * _GROW[:6], dist[short, None] * mult[::4])
            lens = np.minimum(base, dist[short, None])
            props = z[short, None] + dirn[short, None] * lens
            props = np.where(lens >= dist[short, None], ta[short, None], props)
            ok, _, _, _, lf = ev.test(tuple(v[short] for v in st), props)
            cand = np.where(ok, lens, 0.0)
            j = np.argmax(cand, axis=1)
            rows = np.arange(short.size)
            better = cand[rows, j] > s[short]
            s[short[better]] = cand[rows, j][better]
            logform[short[better]] = lf[rows, j][better]
        # Each step stays inside the lilypad: the disk around z in which m is a certified start
        # (the proposals above may pass the test further out, in a direction the disk does not
        # reach), so that the recorded disks contain the next centre.
        radius = ev.disk_radius(st, z, gamma, need=s)
        s = np.minimum(s, radius * (1.0 - 1e-9))  # (1 - 1e-9: |z + dirn s - z| rounds up)
        final = s >= dist
        znew = np.where(final, ta, z + dirn * s)
        moved = s > 0
        # One Newton step with the certified map.
        lqp, LQ, LP = st[0], st[1], st[2]
        g = _wrap(np.log(np.abs(znew)) + 1j * np.angle(znew) + lqp)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gp = LQ - LP
            nstep = g / gp
            if np.any(logform == 0):
                rho = np.exp(np.minimum(g.real, 700.0) + 1j * g.imag)
                nstep = np.where(logform == 0, (rho - 1.0) / (rho * LQ - LP), nstep)
            if np.any(logform == 2):
                dm = m - Asel
                nstep = np.where(logform == 2, dm * -np.expm1(-g / (dm * gp)), nstep)
        nstep = np.where(np.isfinite(nstep) & moved, nstep, 0.0)
        if record:
            if moved[0]:
                if not final[0]:
                    # show the step twice as long, which the test refuses
                    zr = z[0] + dirn[0] * min(2 * s[0], dist[0])
                    if not ev.test(tuple(v[:1] for v in st), np.array([zr]))[0][0]:
                        tr["rejected"].append(zr)
                        tr["rejected_from"].append(len(tr["centres"]) - 1)
                tr["radii"].append(float(radius[0]))
                tr["centres"].append(znew[0])
                tr["solutions"].append(m[0] - nstep[0])
                tr["eta"].append(float(np.abs(nstep[0])))
                tr["newton"].append(np.array([m[0], m[0] - nstep[0]]))
        nacc = int(moved.sum())
        n_lily += nacc
        n_newton += nacc
        n_rej += int((~moved).sum())
        m = m - nstep
        z = np.where(moved, znew, z)
        bad = ~moved
        leave = final | bad
        if np.any(leave):
            out_m[idx[leave]] = m[leave]
            out_log[idx[leave]] = logform[leave]
            failed[idx[bad]] = True
            keep = ~leave
            idx, ta, z, m = idx[keep], ta[keep], z[keep], m[keep]
    if idx.size:
        out_m[idx] = m
        failed[idx] = True
    return out_m, out_log, failed, n_lily, n_newton, n_rej, tr


_ANCHOR_STRIDE = 16
_FAST_MAX_ATOMS = 80  # compiled joint Newton only for short D^2 laws (see _solve_general)
_FALLBACK_ROUNDS = 80


def _level_schedule(groups: np.ndarray):
    """Order in which a sorted real grid is solved (MATH.md section 4: neighbouring grid points
    are good certified starts for each other).

    Anchors, every ``_ANCHOR_STRIDE``-th point of each group (one support interval) and its last
    point, walk down from far above; then, level by level with halving strides, each remaining
    point walks along the real axis from its left neighbour, solved at a coarser level.

    Returns
    -------
    anchors : ndarray of int
    levels : list of (todo, neighbour) index arrays
    """
    n = groups.size
    pos = np.arange(n)
    first = np.r_[True, groups[1:] != groups[:-1]]
    last = np.r_[groups[1:] != groups[:-1], True]
    rel = pos - np.maximum.accumulate(np.where(first, pos, 0))
    anchors = np.flatnonzero((rel % _ANCHOR_STRIDE == 0) | last)
    solved = np.zeros(n, dtype=bool)
    solved[anchors] = True
    levels = []
    stride = _ANCHOR_STRIDE // 2
    while stride >= 1:
        todo = np.flatnonzero(~solved & (rel % stride == 0))
        if todo.size:
            levels.append((todo, todo - stride))
            solved[todo] = True
        stride //= 2
    return anchors, levels


def _guess_and_certify(ev: "_Rational", t, groups, m, known):
    """Newton from guesses interpolated (in ``log x``) between the known points of each group,
    then a chain certificate: point ``i`` is certified when the Kantorovich test from the
    solution at a neighbour ``i -/+ 1`` passes at ``t_i`` and the solution found at ``t_i`` lies in
    the certified ball, all the way back to a known point. Returns the solutions, the
    certified mask and the Newton steps used."""
    n = t.size
    idx = np.arange(n)
    lx = np.log(t.real)
    left = np.maximum.accumulate(np.where(known, idx, -1))
    right = np.minimum.accumulate(np.where(known, idx, n)[::-1])[::-1]
    li, ri = np.clip(left, 0, n - 1), np.clip(right, 0, n - 1)
    ok = ~known & (left >= 0) & (right < n) & (groups[li] == groups) & (groups[ri] == groups)
    out = m.copy()
    if not np.any(ok):
        return out, np.zeros(n, dtype=bool), 0
    w = (lx[ok] - lx[li[ok]]) / (lx[ri[ok]] - lx[li[ok]])
    g0 = (1 - w) * m[li[ok]] + w * m[ri[ok]]
    mg, used, _ = _polish(ev, t[ok], g0, np.ones(g0.size, dtype=np.int8))
    out[ok] = mg
    # pair tests between consecutive points of a group: forward (from i-1) and backward (from i+1)
    same = np.r_[False, groups[1:] == groups[:-1]]  # i and i-1 in one group
    i_f = np.flatnonzero(same)

    def links(src, dst):
        """The test from the solution at ``src`` certifies the one found at ``dst``."""
        st = ev.at(out[src])
        okt, _, _, eta, kind = ev.test(st, t[dst].astype(complex))
        a = ev.A[np.argmin(st[8], axis=1)]  # the root of the log(m - a) coordinate
        with np.errstate(divide="ignore", invalid="ignore"):
            dist_m = np.where(kind == 2, np.abs(np.log((out[dst] - a) / (out[src] - a))), np.abs(out[dst] - out[src]))
        inside = dist_m <= 2 * eta * (1 + 1e-9) + 4 * _EPS * np.abs(out[dst])
        return okt & inside & np.isfinite(out[dst])

    def propagate(pair, kn):
        # certified iff the last known point at or before i comes after the last broken link
        brk = ~pair & ~kn
        last_known = np.maximum.accumulate(np.where(kn, idx, -1))
        last_break = np.maximum.accumulate(np.where(brk, idx, -1))
        return (last_known >= 0) & (last_known > last_break)

    pair_f = np.zeros(n, dtype=bool)
    pair_f[i_f] = links(i_f - 1, i_f)
    cert = propagate(pair_f, known)
    if not np.all(cert | ~ok):
        # backward links, from the right neighbour, where the forward chain broke
        pair_b = np.zeros(n, dtype=bool)
        pair_b[i_f - 1] = links(i_f, i_f - 1)
        cert |= propagate(pair_b[::-1], known[::-1])[::-1]
    cert &= ~known
    return out, cert, used


def _inverted(eq: Equation) -> tuple[np.ndarray, np.ndarray, float]:
    """``M^{-1}(1 / w) = C' prod_j (w - b_j)^{e_j}``: roots ``b_j = 1 / a_j`` (``a_j != 0``) with the
    same exponents and ``w = 0`` with exponent ``-sum_j e_j``; ``log C' = log C + sum e_j log(-a_j)``
    (from ``1/w - a_j = (-a_j)(w - 1/a_j) / w``; every ``a_j <= 0``)."""
    nz = eq.roots != 0.0
    a, e = eq.roots[nz].astype(float), eq.exps[nz].astype(float)
    b, eb = 1.0 / a, e
    deg = float(eq.exps.sum())
    if deg != 0.0:
        b, eb = np.append(b, 0.0), np.append(eb, -deg)
    return np.ascontiguousarray(b), np.ascontiguousarray(eb), float(eq.log_c + np.sum(e * np.log(-a)))


def _solve_rational(eq: Equation, t: np.ndarray, scale: float, record: bool, max_rounds: int,
                    groups: np.ndarray | None = None) -> SolveResult:
    """Vertical chains from far above each target; with ``groups`` (labels of sorted real targets
    on one support interval each), only every ``_ANCHOR_STRIDE``-th point walks down and the
    others are reached along the real axis from an already solved neighbour (MATH.md section 4:
    neighbouring grid points are good certified starts for each other), level by level."""
    n = t.shape[0]
    ev = _Rational(eq)
    fast = not record and _fastchain._HAVE_NUMBA and bool(np.all(t.imag == 0))
    Y = 0.0
    if fast:
        s1 = _far_shift(eq)
        A, E = eq.roots.astype(float), eq.exps.astype(float)
        xs = np.array([t.real.min(), t.real.max(), 0.0])
        Y = _fastchain.start_height(xs, float(scale), float(eq.mean), s1, A, E, float(eq.log_c))
    if Y == 0.0:
        fast = False
        Y = _start_height(eq, t.real, scale)
    counts = np.zeros(3, dtype=np.int64)

    def vertical(sel):
        z0 = t[sel] + 1j * Y
        res = _chain(ev, z0, far_start(eq, z0), t[sel], record, max_rounds)  # certified at z0
        counts[:] += (sel.size + res[3], res[4], res[5])
        return res

    if fast:
        # compiled chains along the grid (without groups: each target from far above); what
        # they leave walks down vectorised
        labels = np.arange(n) if groups is None else groups
        B, EB, log_cb = _inverted(eq)
        out_m, ok, cnt, _ = _fastchain.grid_chain(
            np.ascontiguousarray(t.real), np.ascontiguousarray(labels, dtype=np.int64), float(Y), float(eq.mean),
            s1, A, E, float(eq.log_c), B, EB, log_cb, max_rounds)
        counts[:] += cnt
        failed = ~ok
        if np.any(failed):
            sel = np.flatnonzero(failed)
            mv, lv, fv, *_ = vertical(sel)
            mp, used, _ = _polish(ev, t[sel], mv, lv)
            counts[1] += used
            out_m[sel], failed[sel] = mp, fv
        f = _fastchain.residual_abs(t, out_m, A, E, float(eq.log_c))
        certified = ~failed & _residual_ok(eq, t, out_m, f)
        n_lily, n_newton, n_rej = (int(c) for c in counts)
        return SolveResult(m=out_m, u=None, certified=certified, verified=certified.copy(), n_lilypads=n_lily,
                           n_newton=n_newton, n_rejected=n_rej, trace=None)
    if groups is None or n < 4 * _ANCHOR_STRIDE:
        out_m, out_log, failed, _, _, _, tr = vertical(np.arange(n))
    else:
        tr = None
        out_m = np.empty(n, dtype=complex)
        out_log = np.ones(n, dtype=np.int8)
        failed = np.zeros(n, dtype=bool)
        anchors, levels = _level_schedule(groups)
        m_a, l_a, f_a, *_ = vertical(anchors)
        ma, used, _ = _polish(ev, t[anchors], m_a, l_a)
        counts[1] += used
        out_m[anchors], out_log[anchors], failed[anchors] = ma, l_a, f_a
        known = np.zeros(n, dtype=bool)
        known[anchors] = ~f_a
        # Fast path: guess every other point from the anchors, Newton, then certify it by an
        # unbroken chain of Kantorovich tests between consecutive grid points (one batched
        # test per direction); only what that leaves uncertified walks level by level.
        guess_m, cert, used = _guess_and_certify(ev, t, groups, out_m, known)
        counts[1] += used
        todo_mask = ~known & ~cert
        out_m = np.where(known, out_m, guess_m)
        if np.any(todo_mask):
            done = known | cert
            for todo, nb in levels:
                sel = todo_mask[todo]
                if not np.any(sel):
                    continue
                todo, nb = todo[sel], nb[sel]
                res = _chain(ev, t[nb], out_m[nb], t[todo], False, max_rounds)
                counts[:] += (res[3], res[4], res[5])
                mt, lt, ft = res[0], res[1], res[2]
                if np.any(ft):  # a point the horizontal walk cannot reach walks down instead
                    mv, lv, fv, *_ = vertical(todo[ft])
                    mt[ft], lt[ft], ft[ft] = mv, lv, fv
                mp, used, _ = _polish(ev, t[todo], mt, lt)
                counts[1] += used
                out_m[todo], out_log[todo], failed[todo] = mp, lt, ft | failed[nb] | ~done[nb]
                done[todo] = ~failed[todo]
    n_lily, n_newton, n_rej = (int(c) for c in counts)
    if groups is None or n < 4 * _ANCHOR_STRIDE:
        # Polish at the targets with the Newton map whose convergence the last step certified.
        m, used, path = _polish(ev, t, out_m, out_log)
        n_newton += used
    else:
        m = out_m  # polished level by level
    if record:
        tr["newton"][-1] = np.concatenate([tr["newton"][-1], np.array([p[0] for p in path[1:]])])
        tr["solutions"][-1] = m[0]
    f, *_ = _residual(eq, t, m, None)
    certified = ~failed & _residual_ok(eq, t, m, np.abs(f))
    return SolveResult(m=m, u=None, certified=certified, verified=certified.copy(), n_lilypads=n_lily,
                       n_newton=n_newton, n_rejected=n_rej, trace=tr)


def solve_near(eq: Equation, targets, scale: float, z0, m0, u0=None, max_rounds: int = MAX_ROUNDS,
               fallback: bool = True) -> SolveResult:
    """Solve at ``targets`` starting from known solutions ``(z0, m0[, u0])`` nearby (grid points
    of the same support interval): one horizontal walk each (at most ``max_rounds`` proposals),
    certified (rational) or verified like every other step; targets the walk cannot reach walk
    down from far above instead (``fallback=False``: they are returned unverified)."""
    t = np.atleast_1d(np.asarray(targets, dtype=complex))
    z0 = np.atleast_1d(np.asarray(z0, dtype=complex))
    m0 = np.atleast_1d(np.asarray(m0, dtype=complex))
    scale = max(scale, abs(eq.mean))
    if eq.rational:
        ev = _Rational(eq)
        if _fastchain._HAVE_NUMBA and not np.any(t.imag) and not np.any(z0.imag):
            # compiled, in m or in w = 1 / conj(m) as the grid sweep (near an edge where |M|
            # grows without bound the lilypads in m shrink to ~ 1 / |m|^2 of the distance: orthogonal
            # ReLU [1000] * 3, x = 4 - 1e-5, 400 vectorised lilypads, 1.7 s, and no arrival)
            B, EB, log_cb = _inverted(eq)
            mt, ok, cnt = _fastchain.near_chain(z0, m0.astype(complex), t, eq.roots.astype(float),
                                                eq.exps.astype(float), float(eq.log_c), B, EB, log_cb,
                                                int(max_rounds))
            ft, kt = ~ok, np.ones(t.size, dtype=np.int8)
            nl, nn, nr = (int(c) for c in cnt)
        else:
            mt, kt, ft, nl, nn, nr, _ = _chain(ev, z0, m0, t, False, max_rounds)
        if fallback and np.any(ft):
            r = solve(eq, t[ft], scale)
            mt[ft], kt[ft] = r.m, 1
            ft[ft] = ~r.certified
            kt[ft] = 1
        m, used, _ = _polish(ev, t, mt, kt)
        f, *_ = _residual(eq, t, m, None)
        cert = ~ft & _residual_ok(eq, t, m, np.abs(f))
        return SolveResult(m=m, u=None, certified=cert, verified=cert.copy(), n_lilypads=nl,
                           n_newton=nn + used, n_rejected=nr)
    u0 = np.asarray(u0)

    def run(sel, short):
        ev = _General(eq, short)
        ts = t[sel]
        if _compiled_walks(eq, ev, ts):
            # the same walk compiled, one point after the other (many laws of hundreds of complex
            # atoms each: the vectorised residual costs n G K per proposal)
            args = _general_args(eq, ev)
            mt, ut, ok, cnt = _fastchain.walk_general(
                np.ascontiguousarray(z0[sel]), np.ascontiguousarray(m0[sel]),
                np.ascontiguousarray(u0[sel], dtype=complex), np.ascontiguousarray(ts), _NEAR_FIRST_STEP, *args,
                max_rounds, ev.tol)
            ft = ~ok
            nl, nn, nr = (int(c) for c in cnt)
        else:
            mt, ut, ft, nl, nn, nr, _ = _gchain(ev, z0[sel], m0[sel], u0[sel], ts, False, max_rounds)
        if fallback and np.any(ft):
            r = _solve_general_rules(eq, ts[ft], scale, False, MAX_ROUNDS, None, short)
            mt[ft], ut[ft] = r.m, r.u
        if _compiled_walks(eq, ev, ts):
            res, inner = _fastchain.residuals_general(np.ascontiguousarray(ts), mt, np.ascontiguousarray(ut),
                                                      *_general_args(eq, ev))
        else:
            _, _, _, res, inner, _, _ = ev.newton(ts, mt, ut, 0)
        ver = (res <= TOL_VERIFY) & (inner <= TOL_VERIFY) & (mt.imag <= TOL_VERIFY * np.abs(mt))
        if not fallback:
            ver &= ~ft
        return SolveResult(m=mt, u=ut, certified=np.zeros(ts.size, dtype=bool), verified=ver,
                           n_lilypads=nl, n_newton=nn, n_rejected=nr)

    if _long_laws(eq):
        return _lump_guard(eq, _short_first(eq, t, run))
    if _contour_short(eq) and _compiled_walks(eq, _General(eq), t):
        if eq.smooth_path:
            # as the grid sweep: walks with the short real rules, kept where they stand for the
            # contour rules at the solution, the other targets walked again with the contour rules
            r = _contour_short_first(eq, t, run)
        else:
            r = run(np.ones(t.size, dtype=bool), False)
            r.short = np.zeros(t.size, dtype=bool)
        # where the short rules stand for the contour rules at a contour solution too (to
        # _CONTOUR_SHORT_TOL in psi and in the tail mass), the CDF's tail mass is taken from them
        # (some 40 real atoms per law instead of hundreds of complex ones)
        rest = np.flatnonzero(~r.short & r.verified & (np.abs(r.m.imag) > 1e-9 * np.abs(r.m)))
        if rest.size:
            r.short[rest] = _contour_short_ok(eq, r.m[rest], r.u[rest])
        return _lump_guard(eq, r)
    return _lump_guard(eq, run(np.ones(t.size, dtype=bool), False))


# first step of a compiled walk from a nearby solution, as a share of the distance (the grid
# sweep's walks from the left neighbour take the whole distance first too; a rejected step is
# quartered)
_NEAR_FIRST_STEP = 1.0


def _general_args(eq: Equation, ev: "_General") -> tuple:
    """The equation as the compiled general kernels take it (the rules of ``ev``)."""
    return (eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c), np.ascontiguousarray(ev.V),
            np.ascontiguousarray(ev.W), ev.k, ev.n)


def _compiled_walks(eq: Equation, ev: "_General", t: np.ndarray) -> bool:
    """Whether walks to the targets ``t`` run compiled (:func:`_fastchain.walk_general`,
    :func:`_fastchain.vertical_general_complex`): numba is there, the rules of ``ev`` are short or
    contour rules, and the grid itself is swept compiled for this equation (Gaussian weights,
    every law a contour rule, or contour rules and real atoms mixed: :func:`_mixed_compiled`)
    -- or the targets lie off the real axis (the moments' contour), where no roots crowd. (The
    compiled walk is :func:`_gchain`'s, with the same acceptance checks: the CDF between grid
    points of a mixed net equals the vectorised walks' to 1e-13, ``tests/test_mixed_compiled.py``;
    ``ks_distance`` against 2000 eigenvalues took 14 s there.)"""
    if not _fastchain._HAVE_NUMBA or not eq.ugroups:
        return False
    if not (ev.V.shape[1] <= _FAST_MAX_ATOMS or np.iscomplexobj(ev.V)):
        return False
    if np.all((t.imag > 0) | (t.real < 0)):
        return True
    return bool(eq.smooth_path or (_ORTHO_COMPILED and _all_contour(eq)) or _mixed_compiled(eq))


def _all_contour(eq: Equation) -> bool:
    """Whether every law of ``D^2`` is a contour rule (its poles off the real axis) or an exact
    law of two atoms (leaky ReLU: no crowd of roots near the real axis, whatever the weights), so
    that orthogonal nets are swept compiled (:func:`_solve_general_rules`). Mixed activation lists
    (GELU, SELU, leaky ReLU, ... in one net) are such equations, and so are plain leaky ReLU nets
    (no contour rule at all: they took the vectorised continuation, 0.2-10 s a spectrum, for the
    same ``F`` to 1e-14, ``tests/test_leaky_compiled.py``)."""
    return all(
        (eq.uses_contour and g.law.has_contour and g.law.cvalues is not None)
        or (g.law.kind == "discrete" and g.values.size <= 2)
        for g in eq.ugroups)


def _gaps_on_sheets(eq: Equation, ev: "_General") -> bool:
    """Whether every law of ``D^2`` is exact atoms swept as such (real ``V``: leaky ReLU), so that
    the grid follows the gaps on their real sheets (:func:`fpcore._gaps.grid_discrete`)."""
    return (_GAPS_ON_SHEETS and not np.iscomplexobj(ev.V)
            and all(g.law.kind == "discrete" for g in eq.ugroups))


_GAPS_ON_SHEETS = True  # (tests switch it off to compare with grid_general's chains from far above)


def solve(eq: Equation, targets, scale: float, record: bool = False, max_rounds: int = MAX_ROUNDS,
          groups: np.ndarray | None = None, certify: bool = True, start: tuple | None = None) -> SolveResult:
    """Solve ``M(t)`` for every target ``t`` (``Im t >= 0``) by lilypad continuation.

    ``scale`` is a size of the spectrum (``lambda_max``) used to place the starting points.
    With ``record=True`` (one target) the chain is returned in ``trace``: the recorded path is
    the same algorithm as the fast one. ``certify=False`` skips the joint certificate of a
    non-rational grid (:func:`_certify_grid`): its points are then verified, none certified.
    ``start``: a solution ``(z, m, u)`` in the upper half-plane near the first target of a
    non-rational grid (:attr:`SolveResult.start` of :func:`solve_cluster`), from which the
    compiled sweep walks to that target instead of from far above (where it can).
    """
    t = np.atleast_1d(np.asarray(targets, dtype=complex))
    if eq.rational:
        return _solve_rational(eq, t, max(scale, abs(eq.mean)), record, max_rounds, groups)
    return _lump_guard(eq, _solve_general(eq, t, max(scale, abs(eq.mean)), record, max_rounds, groups, certify,
                                          start))


def solve_cluster(eq: Equation, targets, scale: float) -> SolveResult:
    """:func:`solve` for a few real targets close together (``max t - min t << max t``: the two
    checks below a lower edge of :func:`fpcore._spectrum._support_intervals`): one vertical walk
    from far above to ``min t + i max t``, then a walk from there to each target, instead of one
    walk from far above per target. The walks are the compiled ones of :func:`solve` (same
    acceptance checks; Gaussian weights, laws of few atoms or contour rules) and a point they
    reach goes through the same a-posteriori checks (sheet, lumped tails); what they do not reach
    is solved by :func:`solve`, and so is everything else (long laws, which :func:`solve` takes
    with their short rules first). The walks from far above cross every scale between ``Y`` and
    ``max t`` (some 36 octaves below the edge of a tapered tanh net at ``L = 50``, 40 ms for two
    points; GELU, expanding, ``L = 10``: 65 ms): this way they do so once (18 ms; 29 ms). Same
    roots as :func:`solve` (within its Newton tolerance); no certificate (as :func:`solve` off a
    grid). :attr:`SolveResult.start` is the shared point (a start for :func:`solve_from`)."""
    t = np.atleast_1d(np.asarray(targets, dtype=complex))
    if not _walks_compiled(eq, t):
        return solve(eq, t, scale)
    scale = max(scale, abs(eq.mean))
    got = _cluster_walks(eq, t, scale)
    if got is None:
        return solve(eq, t, scale)
    return _walked(eq, t, scale, *got)


def solve_from(eq: Equation, targets, start: tuple, scale: float) -> SolveResult:
    """:func:`solve` for real targets near a solution ``start = (z, m, u)`` in the upper
    half-plane that a walk from far above reached (:attr:`SolveResult.start` of
    :func:`solve_cluster`): a walk from there to each target, as :func:`solve_cluster` walks
    from its shared point (the path stays in the upper half-plane, where ``M`` is analytic, as
    the walk from far above does, and crosses only the scales between ``start`` and the target:
    the check below the lowest support piece of a tapered sigmoid net at ``L = 50``, 1e-73 below
    its top edge, walked some 240 octaves down from far above, 30 ms). The same a-posteriori
    checks; what the walks do not reach is solved by :func:`solve`. No certificate."""
    t = np.atleast_1d(np.asarray(targets, dtype=complex))
    z0, m0, u0 = start
    if not _walks_compiled(eq, t) or not z0.imag > 0:
        return solve(eq, t, scale)
    ev = _General(eq)
    if not (ev.V.shape[1] <= _FAST_MAX_ATOMS or np.iscomplexobj(ev.V)):
        return solve(eq, t, scale)
    m, u, ok, counts = _walks_from(eq, ev, complex(z0), complex(m0), np.asarray(u0, dtype=complex), t)
    return _walked(eq, t, max(scale, abs(eq.mean)), m, u, ok, counts, start)


def _walks_compiled(eq: Equation, t: np.ndarray) -> bool:
    """Whether :func:`solve_cluster` and :func:`solve_from` walk compiled (else :func:`solve`)."""
    return not (eq.rational or not _fastchain._HAVE_NUMBA or not eq.smooth_path or np.any(t.imag != 0)
                or _long_laws(eq))


def _walked(eq: Equation, t: np.ndarray, scale: float, m, u, ok, counts, start) -> SolveResult:
    """The result of the walks of :func:`solve_cluster` / :func:`solve_from` (lumped tails
    checked), the targets they did not reach solved by :func:`solve`."""
    r = _lump_guard(eq, SolveResult(m=m, u=u, certified=np.zeros(t.size, dtype=bool), verified=ok,
                                    n_lilypads=int(counts[0]), n_newton=int(counts[1]), n_rejected=int(counts[2]),
                                    start=start))
    if not np.all(r.verified):
        bad = np.flatnonzero(~r.verified)
        r2 = solve(eq, t[bad], scale)
        r.m[bad], r.u[bad], r.verified[bad] = r2.m, r2.u, r2.verified
        r.n_lilypads += r2.n_lilypads
        r.n_newton += r2.n_newton
        r.n_rejected += r2.n_rejected
    return r


def _cluster_walks(eq: Equation, t: np.ndarray, scale: float):
    """The walks of :func:`solve_cluster`: ``(m, u, reached and checked, counts, start)`` (``start``
    the shared point ``(z, m, u)`` reached from far above, ``None`` where that walk failed), or
    ``None`` where :func:`solve` would not walk compiled (laws of many real atoms)."""
    ev = _General(eq)
    if not (ev.V.shape[1] <= _FAST_MAX_ATOMS or np.iscomplexobj(ev.V)):
        return None
    Y = _start_height(eq, t.real, scale)
    args = (eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c))
    V, W = _fastchain._pack_laws(ev.V, ev.W)
    top = np.array([complex(float(t.real.min()), float(np.max(np.abs(t))))])
    m1, u1, ok1, c1 = _fastchain.vertical_general_complex(top, float(Y), float(eq.mean), *args, V, W, ev.k, ev.n,
                                                          ev.mu, MAX_ROUNDS, ev.tol)
    m, u, ok, c2 = _walks_from(eq, ev, complex(top[0]), complex(m1[0]), u1[0], t)
    ok &= bool(ok1[0])
    start = (complex(top[0]), complex(m1[0]), u1[0].copy()) if bool(ok1[0]) else None
    return m, u, ok, c1 + c2, start


def _walks_from(eq: Equation, ev: "_General", z0: complex, m0: complex, u0: np.ndarray, t: np.ndarray):
    """Compiled walks from the solution ``(m0, u0)`` at ``z0`` to each real target (first step a
    quarter of the way), each reached point checked for the physical sheet: ``(m, u, reached and
    checked, counts)``."""
    args = (eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c))
    V, W = _fastchain._pack_laws(ev.V, ev.W)
    n = t.size
    m, u, ok, c = _fastchain.walk_general(np.full(n, z0), np.full(n, m0), np.repeat(u0[None, :], n, axis=0), t,
                                          0.25, *args, V, W, ev.k, ev.n, MAX_ROUNDS, ev.tol)
    if np.any(ok):
        sel = np.flatnonzero(ok)
        ok[sel] = physical_sheet(ev, t[sel], m[sel], u[sel])
    return m, u, ok, c


def _lump_guard(eq: Equation, r: SolveResult) -> SolveResult:
    """``r`` with the points where the lumped tails do not stand for the law unverified
    (:func:`lumps_ok`)."""
    if r.u is not None and eq.uses_contour:
        ok = lumps_ok(eq, r.u)
        r.verified &= ok
        r.certified &= ok
    return r


_LUMP_TOL = 1e-6  # the CDF error allowed from the lumped tails where |u| v_lump is small
_LUMP_MASS_TOL = 1e-9  # the CDF error allowed from the lumped tails wherever u lies (rank bound)


def lump_cdf_bound(eq: Equation) -> float:
    """A bound on ``sup_x |F - F_lumped|`` that holds at every ``x``, whatever the lumped tails
    do there: moving the values of a fraction ``t_g`` of the entries of ``D_l^2`` anywhere is a
    change of rank at most ``t_g N_l`` of ``J``, so (singular-value interlacing) the counting
    function of ``J^T J`` / ``J J^T`` moves by at most that much and ``F`` by
    ``sum_g n_g t_g N_l / dim = sum_g n_g t_g / k_g`` (``k_g = dim / N_l``)."""
    _, ms = eq.lumps
    if not np.any(ms > 0):
        return 0.0
    n = np.array([float(g.n) for g in eq.ugroups])
    k = np.array([g.k for g in eq.ugroups], dtype=float)
    return float(np.sum(n * ms / k))


def lumps_ok(eq: Equation, u: np.ndarray) -> np.ndarray:
    """Where the contour rules' lumped tails (:attr:`Equation.lumps`) stand for their part of
    the law at the solution's ``u``. Everywhere when they are too light to move ``F`` by more
    than :data:`_LUMP_MASS_TOL` (:func:`lump_cdf_bound`, a rigorous bound); else where
    ``|u_g| v_lump`` is small: replacing values in ``(0, v_lump]`` by their mean changes
    ``E[log(1 - u_g D^2)]`` by at most ``mass_g 2 a / (1 - a)``, ``a = |u_g| v_lump``, and the
    CDF's tail mass by ``n_g / k_g`` times that; points where that exceeds ``1e-6`` are not
    verified. Far below the grid of a saturating net at large ``q`` (sigmoid at ``q = 94``: the
    law of ``D^2`` reaches ``1e-76``, 3 % of it below the lump's ``1e-19``) the solutions verified
    the lumped equation, and the CDF was 0 at ``1e-21`` against a Monte Carlo 0.005 with no
    warning."""
    vl, ms = eq.lumps
    if not np.any(ms > 0) or lump_cdf_bound(eq) <= _LUMP_MASS_TOL:
        return np.ones(u.shape[0], dtype=bool)
    n = np.array([float(g.n) for g in eq.ugroups])
    k = np.array([g.k for g in eq.ugroups], dtype=float)
    a = np.abs(u) * vl
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(a < 1.0, n / k * ms * 2.0 * a / (1.0 - a), np.inf)
    err = np.where(ms > 0, err, 0.0)
    return np.all(err <= _LUMP_TOL, axis=1)


def _general_log_residual(eq: Equation, z, m, u):
    """Log-form residual ``g = log(z / M^{-1}(m))`` and ``g'`` with the ``u_g`` re-solved at ``m``."""
    d = m[:, None] - eq.roots.astype(complex)
    ad = np.abs(d)
    lqp = (np.log(ad) @ eq.en - np.log(ad) @ eq.ep - eq.log_c) + 1j * (_arg(d) @ eq.en - _arg(d) @ eq.ep)
    inv = 1.0 / d
    gp = inv @ eq.en - inv @ eq.ep
    u, _, sder, inner = _u_terms(eq, m, u)
    lu = np.log(np.abs(u)) + 1j * _arg(u)
    nvec = np.array([grp.n for grp in eq.ugroups], dtype=float)
    g = np.log(np.abs(z)) + 1j * np.angle(z) + lqp + lu @ nvec
    return g, gp + sder, u, inner


class _General:
    """Joint Newton on ``(m, u_1, ..., u_G)`` for equations with non-rational ``D^2`` factors.

    Residuals ``r_g = psi_g(u_g) - k_g m`` and ``r_0 = log z - log M^{-1}(m, u)``; the Jacobian is
    an arrow matrix (each ``r_g`` involves only ``m`` and ``u_g``), so one Newton step is ``O(G)``
    via the Schur complement on ``m`` (MATH.md section 3).
    """

    def __init__(self, eq: Equation, short: bool = False):
        """``short``: each law replaced by its short Gauss rule (:attr:`Equation.packed_short`)."""
        self.eq = eq
        V, W, self.k, self.n = eq.packed
        self.V, self.W = eq.packed_short if short else eq.packed_complex
        self.vmax = V.max(axis=1)  # the full laws' largest atoms (the Gauss error bound's interval)
        G = len(eq.ugroups)
        self.mu = np.array([g.law.mean for g in eq.ugroups])
        self.roots = eq.roots.astype(complex)
        # Newton's convergence floor: r_0 sums G logarithms, whose rounding grows with G
        self.tol = 1e-13 * max(1.0, math.sqrt(G))

    def start_u(self, m):
        return self.k * m[:, None] / self.mu

    def residual(self, z, m, u):
        d = m[:, None] - self.roots
        ad = np.abs(d)
        eq = self.eq
        la = np.log(ad)
        ar = _arg(d)
        r0 = (np.log(np.abs(z)) + la @ eq.en - la @ eq.ep - eq.log_c) + 1j * (
            np.angle(z) + ar @ eq.en - ar @ eq.ep
        )
        r0 = r0 + (np.log(np.abs(u)) + 1j * _arg(u)) @ self.n
        inv = 1.0 / d
        gp = inv @ eq.en - inv @ eq.ep
        t = 1.0 - u[:, :, None] * self.V
        rv = self.V / t
        psi = np.sum(self.W * rv, axis=2) * u
        dpsi = np.sum(self.W * rv / t, axis=2)
        rg = psi - self.k * m[:, None]
        return r0, gp, rg, dpsi

    def newton(self, z, m, u, iters, tol=None):
        """Joint Newton; returns m, u, converged, |r_0| beyond ``_fastchain._RES_FLOOR`` times its
        floor (:meth:`floor`: the floats near ``m`` hold no point with a smaller residual), max
        relative |r_g|, steps, iterates of m.

        Converged means a step below ``tol`` relative (default ``1e-13 sqrt(G)``: ``r_0`` sums
        ``G`` logarithms, whose rounding sets the floor of the Newton steps for deep nets with
        one law per layer), or steps that stopped contracting below ``_fastchain._STALL * tol``
        plus that floor (the spacing of the floats near ``m``, as in ``_fastchain._gnewton``)."""
        if tol is None:
            tol = self.tol
        n = m.shape[0]
        conv = np.zeros(n, dtype=bool)
        path = [m.copy()]
        used = 0
        prev = np.full(n, np.inf)
        with np.errstate(all="ignore"):
            for _ in range(iters):
                r0, gp, rg, a = self.residual(z, m, u)
                c = self.n / (u * a)
                dm = -(r0 - np.sum(c * rg, axis=1)) / (gp + c @ self.k)
                du = (self.k * dm[:, None] - rg) / a
                bad = ~(np.isfinite(dm) & np.all(np.isfinite(du), axis=1))
                dm = np.where(bad, 0.0, dm)
                du = np.where(bad[:, None], 0.0, du)
                size = np.maximum(np.abs(dm) / np.abs(m), np.max(np.abs(du) / np.abs(u), axis=1))
                m = m + dm
                u = u + du
                used += 1
                path.append(m.copy())
                now = ~bad & (np.abs(dm) <= tol * np.abs(m)) & np.all(np.abs(du) <= tol * np.abs(u), axis=1)
                # or steps that stopped contracting at the floats' floor near m (_fastchain._gnewton)
                fl = _fastchain._RES_FLOOR * self.floor(m)
                conv = now | (~bad & (fl >= tol) & (size <= _fastchain._STALL * tol + fl) & (size > 0.5 * prev))
                prev = size
                if np.all(conv | bad):
                    break
            r0, gp, rg, a = self.residual(z, m, u)
            inner = np.max(np.abs(rg) / np.maximum(np.abs(self.k * m[:, None]), 1e-300), axis=1)
            res = np.maximum(np.abs(r0) - _fastchain._RES_FLOOR * self.floor(m), 0.0)
        return m, u, conv, res, inner, used, path

    def floor(self, m):
        """The change of ``r_0`` when ``m`` moves by one rounding unit (``_fastchain._mfloor``)."""
        eq = self.eq
        with np.errstate(all="ignore"):
            f = _EPS * (np.abs(m)[:, None] / np.abs(m[:, None] - self.roots)) @ np.abs(eq.exps.astype(float))
        return np.where(np.isfinite(f), f, np.inf)


class _Joint:
    r"""Kantorovich test for the joint system in ``x = (l, lambda_1, ..., lambda_G)``,
    ``m = e^l``, ``u_g = e^{lambda_g}`` (MATH.md sections 3-4).

    Residuals (each on the branch nearest 0 at the centre; their zeros are the solutions):
    ``r_0 = log z - log C - e_0 l - sum_j e_j log(e^l - a_j) + sum_g n_g lambda_g``
    (``log(z / M^{-1}(m, u))``; ``e_0`` the exponent of the root ``a = 0``, other ``a_j < 0``) and
    ``r_g = lambda_g + log Phi_g(u_g) - log k_g - l`` (``psi_g(u) = u Phi_g(u) = k_g m``,
    ``Phi_g(u) = sum_i w_i v_i / (1 - u v_i)`` over the atoms of the law of ``D^2`` as the solver
    represents it: real atoms, or the complex atoms of a contour rule). Logarithmic coordinates
    make the factors ``m^{e_0}`` and ``u_g^{n_g}`` and the far field (``psi ~ E[D^2] u``) exactly
    linear, so the curvature bounds below are small wherever the equation is tame.

    The Jacobian is an arrow matrix: ``dr_0/dl = s_0 = -e_0 - sum_j e_j m / (m - a_j)``,
    ``dr_0/dlambda_g = n_g``, ``dr_g/dl = -1``, ``dr_g/dlambda_g = G_g = 1 + u Phi_g'(u) / Phi_g``;
    ``A = F'(x_0)^{-1}`` applies in ``O(G)`` through ``s = s_0 + sum_g n_g / G_g``:
    ``(A y)_0 = (y_0 - sum_g n_g y_g / G_g) / s``, ``(A y)_g = (y_g + (A y)_0) / G_g``.
    Norm ``||x|| = max(|l|, max_g |lambda_g| / tau_g)``, ``tau_g = 1 / |G_g|``.

    On the ball of radius ``R`` (``|l - l_0| <= R``, ``|lambda_g - lambda_{g,0}| <= rho_g =
    tau_g R``) the mean-value inequality bounds the change of ``F'``:
    ``|d^2 r_0 / dl^2| <= K_0 = |m_0| e^R sum_j |e_j a_j| / (|m_0 - a_j| - |m_0| (e^R - 1))^2``;
    with ``x_i = u v_i``, ``beta_i = |1 - x_{i,0}| - |x_{i,0}| (e^rho - 1)`` and
    ``gamma_i = |1 + x_{i,0}| + |x_{i,0}| (e^rho - 1)``, ``|u Phi'| <= B_1 = sum_i |w_i v_i| |x_{i,0}|
    e^rho / beta_i^2``, ``|(u d/du)^2 Phi| <= B_2 = sum_i |w_i v_i| |x_{i,0}| e^rho gamma_i /
    beta_i^3``, ``|Phi| >= p = |Phi(u_0)| - B_1 rho``, so ``|dG_g / dlambda_g| <= H_g = B_2 / p +
    (B_1 / p)^2`` (every ``beta_i``, ``p`` and denominator positive: the ball avoids every pole
    and zero). ``dG_g / dlambda_g = d^2 log psi_g / dlambda_g^2`` is also bounded from ``psi = u
    Phi`` itself: the same sums without the factor ``|x_{i,0}|`` (``S_1``, ``S_2``; ``|psi| >= |u|
    (|Phi(u_0)| - S_1 rho)``), ``H_g = S_2 / p' + (S_1 / p')^2``, ``p' = |Phi(u_0)| - S_1 rho``; the
    smaller of the two holds. Where ``u D^2 >> 1`` for most of the law (``x -> 0`` with no atom at
    0: ``psi_g -> -1``, ``G_g -> 0``, orthogonal tanh: ``|G_g| ~ 2e-5``) the ``Phi`` bound misses
    the cancellation of ``Q_2 / Phi`` against ``(Q_1 / Phi)^2`` and is ``1 / |G_g|`` times too large. Pushing unit vectors through ``A (F'(x) - F'(y))`` gives the affine Lipschitz
    constant ``omega = (K_0 + sum_g n_g tau_g Y_g) / |s| + max_g Y_g``, ``Y_g = H_g tau_g^2``.

    Kantorovich (affine-covariant form): with ``alpha = ||A F(x_0)||`` and ``omega`` valid on
    ``B(x_0, 2 alpha)``, ``h = alpha omega <= 1/2`` proves a unique root in that ball, the limit of
    Newton from ``x_0``. For a segment of targets ``[z_a, z_b]`` only ``r_0`` moves, by
    ``log(z / z_b)``, and ``||A e_0|| = 1 / |s|``: ``alpha`` grows by ``sup |log(z / z_b)| / |s|``
    and the test then holds for every ``z`` of the segment, so the root moves continuously inside
    the ball (one branch). The same holds from the other end (``alpha`` at ``z_a`` plus
    ``sup |log(z / z_a)| / |s|``), and the smaller of the two bounds is used: where the centre
    solves the equation at ``z_a`` (links, chain steps) the first counts the segment twice. ``alpha`` also carries a bound of the rounding of ``F(x_0)``; the rest
    is floating point (no interval arithmetic), as in the rational test. What is certified is the
    root of the equation with the law's rule as represented, not the quadrature error of that
    rule (with ``short``, the laws' short real rules, which stand for the contour rules to
    ``_CONTOUR_SHORT_TOL`` at the points certified with them, :func:`_contour_short_ok`).
    """

    def __init__(self, eq: Equation, short: bool = False):
        """``short``: the laws' short real rules (:attr:`Equation.packed_short`) instead of the
        solver's rules."""
        self.ev = _General(eq, short)
        self.eq = eq
        self.V, self.W = self.ev.V, self.ev.W
        self.aV = np.abs(self.V)
        self.cW = 2.0 * np.abs(self.W) * self.aV ** 2
        live = np.abs(self.W) > 0
        self.aV_live = np.where(live, self.aV, 0.0)
        self.live = live
        self.k, self.n = self.ev.k, self.ev.n
        self.logk = np.log(self.k)
        # (the compiled test: an atom of weight 0 as v = 0, so that its loops need no branch)
        self.Vc = np.ascontiguousarray(np.where(live, self.V, 0.0), dtype=complex)
        self.WVc = np.ascontiguousarray(np.where(live, self.W * self.V, 0.0), dtype=complex)
        self.aVc = np.ascontiguousarray(np.abs(self.Vc), dtype=float)
        self.aWVc = np.abs(self.WVc)
        nz = (eq.exps != 0) & (eq.roots != 0)
        self.a = eq.roots[nz].astype(complex)
        self.e = eq.exps[nz].astype(float)
        self.ae = np.abs(self.e)
        self.e0 = float(np.sum(eq.exps[eq.roots == 0]))  # the root at 0: e_0 log m, linear in log m

    def dist(self, x_m, x_u, y_m, y_u, tau):
        """``||x - y||`` in the test's weighted norm of ``(log m, log u)`` (``tau`` from the test at
        ``y``)."""
        if _fastchain._HAVE_NUMBA:
            c = np.ascontiguousarray
            return _fastchain.joint_dist(c(x_m, dtype=complex), c(x_u, dtype=complex), c(y_m, dtype=complex),
                                         c(y_u, dtype=complex), c(tau, dtype=float))
        return self.dist_numpy(x_m, x_u, y_m, y_u, tau)

    @staticmethod
    def dist_numpy(x_m, x_u, y_m, y_u, tau):
        """:meth:`dist` in numpy (the path without numba; tests compare the two)."""
        with np.errstate(all="ignore"):
            d = np.maximum(np.abs(np.log(x_m / y_m)), np.max(np.abs(np.log(x_u / y_u)) / tau, axis=1))
        return np.where(np.isfinite(d), d, np.inf)

    def test(self, z_from, z_to, m, u):
        """Certify Newton from ``(m, u)`` for every target on the segment ``[z_from, z_to]``.

        Returns ``ok``, the ball radius ``R = 2 alpha`` (weighted norm of ``(log m, log u)``),
        ``tau`` (n, G) and ``theta = alpha omega`` (certified when ``<= 1/2``)."""
        z_to = np.asarray(z_to, dtype=complex)
        z_from = np.asarray(z_from, dtype=complex)
        if _fastchain._HAVE_NUMBA:
            return _fastchain.joint_test(
                np.ascontiguousarray(np.broadcast_to(z_from, m.shape)), np.ascontiguousarray(np.broadcast_to(z_to, m.shape)),
                np.ascontiguousarray(m, dtype=complex), np.ascontiguousarray(u, dtype=complex), self.Vc, self.WVc,
                self.aVc, self.aWVc, self.live, self.k, self.n, self.a, self.e, self.e0, float(self.eq.log_c))
        with np.errstate(all="ignore"):
            am = np.abs(m)
            lm = np.log(am) + 1j * np.angle(m)
            d = m[:, None] - self.a
            ad = np.abs(d)
            la = np.log(ad)
            lu = np.log(np.abs(u)) + 1j * np.angle(u)
            # r_0 without log z (added at either end of the segment below)
            r0c = (-la @ self.e - self.e0 * lm.real - self.eq.log_c + lu.real @ self.n) + 1j * (
                -_arg(d) @ self.e - self.e0 * lm.imag + lu.imag @ self.n)
            err0c = 8 * _EPS * (np.pi + (np.abs(la) + np.pi) @ self.ae
                                + abs(self.e0) * np.abs(lm) + abs(self.eq.log_c) + np.abs(lu) @ self.n)
            s0 = -self.e0 - (m[:, None] / d) @ self.e
            x = u[:, :, None] * self.V
            om = 1.0 - x
            terms = self.W * self.V / om  # psi(u) = u Phi(u), Phi = sum w v / (1 - x), x = u v
            Phi = np.sum(terms, axis=2)
            Q1 = np.sum(terms * x / om, axis=2)  # u Phi'(u)
            lPhi = np.log(np.abs(Phi)) + 1j * np.angle(Phi)
            rg = _wrap(lu + lPhi - self.logk - lm[:, None])
            errg = 8 * _EPS * (np.pi + np.abs(lu) + np.abs(lPhi) + np.sum(np.abs(terms), axis=2) / np.abs(Phi)
                               + np.abs(self.logk) + np.abs(lm)[:, None])
            Gp = 1.0 + Q1 / Phi  # d log psi / d log u
            s = s0 + np.sum(self.n / Gp, axis=1)
            as_ = np.abs(s)
            tau = 1.0 / np.abs(Gp)
            nG = self.n * tau

            def alpha_from(z, zo):
                """``||A F_w(x_0)||`` for every ``w`` of the segment ``[z, zo]``: the Newton step
                at ``z`` plus ``sup |log(w / z)| / |s|`` (``_fastchain._joint_alpha``)."""
                az = np.abs(z)
                r0 = _wrap(r0c + np.log(az) + 1j * np.angle(z))
                err0 = err0c + 8 * _EPS * np.abs(np.log(az))
                v0 = -(r0 - np.sum(self.n * rg / Gp, axis=1)) / s
                vg = (v0[:, None] - rg) / Gp
                al = np.maximum(np.abs(v0), np.max(np.abs(vg) / tau, axis=1))
                al = al + (err0 + np.sum(nG * errg, axis=1)) / as_ + np.max(errg, axis=1)
                frac = np.abs(zo - z) / az  # the segment: |log(1 + x)| <= -log(1 - |x|)
                seg = np.where(frac < 1.0, -np.log1p(-np.minimum(frac, 1.0)), np.inf)
                return al + seg / as_

            # either end gives a bound, the smaller holds (from z_from, where the centre solves
            # the equation, the segment counts once)
            alpha = np.where(z_from == z_to, alpha_from(z_to, z_from),
                             np.minimum(alpha_from(z_to, z_from), alpha_from(z_from, z_to)))
            R = 2.0 * alpha
            # row 0: d^2/dl^2 log(e^l - a) = -a e^l / (e^l - a)^2 on |l - l_0| <= R
            grow = am * np.expm1(R)
            den = ad - grow[:, None]
            K0 = np.sum(np.abs(self.a) * self.ae / den ** 2, axis=1) * am * np.exp(R)
            # rows g: log psi(u_0 e^xi), |xi| <= rho_g
            rho = (tau * R[:, None])[:, :, None]
            ax = np.abs(x)
            X = ax * np.exp(rho)
            dx = ax * np.expm1(rho)
            beta = np.abs(om) - dx
            gam = np.abs(1.0 + x) + dx
            awv = np.abs(self.W * self.V)
            # d^2/dl^2 log Phi(u_0 e^xi) = Q2/Phi - (Q1/Phi)^2, Q2 = (u d/du)^2 Phi
            B1 = np.sum(awv * X / beta ** 2, axis=2)
            B2 = np.sum(awv * X * gam / beta ** 3, axis=2)
            pl = np.abs(Phi) - B1 * rho[:, :, 0]
            H = B2 / pl + (B1 / pl) ** 2
            # the same from psi = u Phi (the smaller bound holds; see _fastchain._joint_omega)
            E = np.exp(rho)
            S1 = np.sum(awv * E / beta ** 2, axis=2)
            S2 = np.sum(awv * E * gam / beta ** 3, axis=2)
            ps = np.abs(Phi) - S1 * rho[:, :, 0]
            H = np.where(pl > 0, H, np.inf)
            H = np.where(ps > 0, np.minimum(H, S2 / ps + (S1 / ps) ** 2), H)
            # two positive real atoms (leaky ReLU): the sharper bound of _fastchain._two_atom_h
            aWVc = np.abs(self.W * self.V)
            for g in range(H.shape[1]):
                for p in range(H.shape[0]):
                    H[p, g] = min(H[p, g], _fastchain._two_atom_h(complex(u[p, g]), float(rho[p, g, 0]),
                                                                  self.Vc[g], aWVc[g], self.live[g]))
            pl = np.where(np.isfinite(H), 1.0, -1.0)  # (the ball clear of every zero: one bound held)
            Yg = H * tau ** 2
            V0 = (K0 + np.sum(nG * Yg, axis=1)) / as_
            omega = V0 + np.max(Yg, axis=1)
            clear = (np.all(den > 0, axis=1) & np.all(H < np.inf, axis=1)
                     & np.all(np.where(self.live, beta > 0, True), axis=(1, 2)))
            ok = clear & (alpha * omega <= 0.5) & np.isfinite(alpha) & np.isfinite(omega) & (am > 0)
            theta = np.where(clear, alpha * omega, np.inf)
        return ok, np.where(ok, R, 0.0), tau, theta

    def walk(self, z0, m0, u0, t, max_rounds, theta=None):
        """Certified steps from the solutions ``(m0, u0)`` at ``z0`` straight to ``t`` (compiled):
        the final ``(m, u)``, the last step's ball (centre ``m``, ``u``, radius, tau), arrived.
        ``theta``: the test's ``theta`` on each whole segment from its start, where known (it
        sizes the first step)."""
        eq, ev = self.eq, self.ev
        t = np.asarray(t)
        theta = np.full(t.shape, np.inf) if theta is None else np.where(np.isfinite(theta), theta, np.inf)
        m, u, pm, pu, pR, ptau, done = _fastchain.joint_walk(
            np.ascontiguousarray(z0, dtype=complex), np.ascontiguousarray(m0, dtype=complex),
            np.ascontiguousarray(u0, dtype=complex), np.ascontiguousarray(t, dtype=complex),
            eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c), ev.V, ev.W, ev.k, ev.n, self.Vc,
            self.WVc, self.aVc, self.aWVc, self.live, self.a, self.e, self.e0, int(max_rounds), float(ev.tol),
            np.ascontiguousarray(theta, dtype=float))
        return m, u, pm, pu, pR, ptau, done

    def mid(self, tm, m0, u0, m1, u1):
        """Joint Newton at the midpoints ``tm`` of links from the geometric mean of their two
        ends' solutions (compiled): ``m``, ``u`` and whether it converged."""
        ev, eq = self.ev, self.eq
        return _fastchain.joint_mid(np.ascontiguousarray(tm, dtype=complex), np.ascontiguousarray(m0, dtype=complex),
                                    np.ascontiguousarray(u0, dtype=complex), np.ascontiguousarray(m1, dtype=complex),
                                    np.ascontiguousarray(u1, dtype=complex), eq.roots.astype(float),
                                    eq.exps.astype(float), float(eq.log_c), ev.V, ev.W, ev.k, ev.n, float(ev.tol))

    def vertical(self, t, mean, Y, max_rounds=MAX_ROUNDS, branch=True):
        """A certified chain from ``t + i Y`` straight down to each real ``t``: the first start is
        the far field ``m = mean / z``, ``u_g = k_g m / E[D_g^2]``; every step passes :meth:`test`
        on its segment and the next solution (joint Newton) lies inside the certified ball.
        Returns the final ``(m, u)``, the last ball (centre, radius, tau) and success flags."""
        n = t.size
        ev = self.ev
        if _fastchain._HAVE_NUMBA:
            eq = self.eq
            m, u, pm, pu, pR, ptau, done = _fastchain.joint_vertical(
                np.ascontiguousarray(t, dtype=float), float(Y), float(mean), eq.roots.astype(float),
                eq.exps.astype(float), float(eq.log_c), ev.V, ev.W, ev.k, ev.n, ev.mu, self.Vc, self.WVc,
                self.aVc, self.aWVc, self.live, self.a, self.e, self.e0, int(max_rounds), float(ev.tol),
                bool(branch))
            return m, u, (pm, pu, pR, ptau), done
        z = t + 1j * Y
        ok = np.zeros(n, dtype=bool)
        m = mean / z
        u = ev.start_u(m)
        for _ in range(60):  # the far start: raise Y until it is certified
            okf, R, tau, _ = self.test(z, z, m, u)
            mn, un, conv, *_ = ev.newton(z, m, u, MAX_NEWTON)
            inside = self.dist(mn, un, m, u, tau) <= R
            ok = okf & conv & inside
            if np.all(ok):
                break
            z = np.where(ok, z, t + 1j * (z.imag * 4.0))
            m = np.where(ok, m, mean / z)
            u = np.where(ok[:, None], u, ev.start_u(m))
        m, u = mn, un
        live = ok.copy()
        done = np.zeros(n, dtype=bool)
        h = np.abs(t - z) / 4.0
        prev_m, prev_u = m.copy(), u.copy()
        prevR = np.zeros(n)
        prev_tau = np.ones_like(u.real)
        for _ in range(max_rounds):
            act = np.flatnonzero(live & ~done)
            if act.size == 0:
                break
            dist = np.abs(t[act] - z[act])
            step = np.minimum(h[act], dist)
            final = step >= dist
            with np.errstate(invalid="ignore", divide="ignore"):
                znew = np.where(final, t[act], z[act] + (t[act] - z[act]) * (step / dist))
            okt, R, tau, th = self.test(z[act], znew, m[act], u[act])
            mn, un, conv, *_ = ev.newton(znew, m[act], u[act], MAX_NEWTON)
            good = okt & conv & (self.dist(mn, un, m[act], u[act], tau) <= R)
            ga = act[good]
            prev_m[ga], prev_u[ga], prevR[ga], prev_tau[ga] = m[ga], u[ga], R[good], tau[good]
            m[ga], u[ga], z[ga] = mn[good], un[good], znew[good]
            # alpha grows about linearly with the step and omega hardly moves: aim at theta = 0.3
            with np.errstate(divide="ignore", invalid="ignore"):
                fac = np.where(np.isfinite(th) & (th > 0), 0.3 / th, 0.25)
            h[act] = step * np.where(good, np.clip(fac, 1.0, 4.0), np.clip(fac, 0.05, 0.5))
            done[act[good & final]] = True
            live[act[~good & (h[act] <= 1e-14 * np.maximum(np.abs(t[act]), 1e-300))]] = False
        return m, u, (prev_m, prev_u, prevR, prev_tau), done


def _certify_grid(eq: Equation, t: np.ndarray, groups: np.ndarray, m: np.ndarray, u: np.ndarray,
                  ok: np.ndarray, Y: float, min_size: int = 8, max_rounds: int = 2000,
                  link_rounds: int = 48, short: np.ndarray | None = None) -> np.ndarray:
    """:func:`_certify_rule` for the whole grid. With ``short`` (the points whose ``(m, u)`` solve
    the equation with the laws' short rules, which stand for the contour rules there) those points
    are certified for the equation with the short rules (cheap: 40 atoms), and the others (near 0
    or an edge) for the equation with the contour rules, together with the band of grid points
    that joins them to the middle of their support interval: vertical chains with the contour
    rules succeed there, not near 0. No link joins points of the two equations. ``max_rounds``
    bounds each anchor's vertical chain: with orthogonal weights the certified steps toward the
    real axis are short (tanh, 400 x 11: every chain of 300 steps stopped short, all of 1000 arrive).
    ``link_rounds`` bounds the certified steps of a link too long for one test: near ``x = 0`` of
    deep orthogonal nets (``m -> -1``, ``u_g ~ 1/x``) a link of the grid's 3.5 % step has ``theta``
    about 5 at ``L = 50`` (about ``L / 10``), some 16 steps at ``theta = 0.3`` (the chains now aim at 0.45, and
    a link's first step is sized from its single test's ``theta``); with 12
    rounds 382 of 1000 points of orthogonal sigmoid (square, ``L = 50``) stayed verified, with 48
    14 (and the call got faster: fewer vertical chains from far above)."""
    if short is None or np.count_nonzero(ok & ~short) > _SPLIT_MAX * np.count_nonzero(ok):
        # (many points need the contour rules, e.g. shallow nets: the split gains little and its
        # two chains lose links the single one has)
        return _certify_rule(eq, _Joint(eq), t, groups, m, u, ok, Y, min_size, max_rounds, link_rounds)
    cert = _certify_rule(eq, _Joint(eq, short=True), t, groups, m, u, ok & short, Y, min_size, max_rounds,
                         link_rounds)
    need = ok & ~short
    if not np.any(need):
        return cert
    # The points that need the contour rules (near 0, or an edge) are reached by links from a
    # vertical chain in the middle of their support interval, where those succeed: through the
    # _CHAIN_DENSE grid points next to them, then every _CHAIN_JUMP-th (a link over a longer
    # segment, or certified steps between its ends). First from an anchor _NEAR_REACH grid points
    # past them (a band of some 100 points instead of half the grid: GELU, square, L = 10, 44
    # points need the contour rules, the band to the middle held 501); where that leaves one of
    # them uncertified, from the middle as before.
    need_idx = np.flatnonzero(need)
    cert_c = np.zeros(t.size, dtype=bool)
    tried = None
    for reach in (_NEAR_REACH, None):
        sel, hint = _contour_band(t.size, groups, need, reach)
        P = np.flatnonzero(sel & ok)
        if P.size == 0 or (tried is not None and np.array_equal(P, tried)):
            continue
        tried = P
        cP = _certify_rule(eq, _Joint(eq), t[P], groups[P], m[P], u[P], np.ones(P.size, dtype=bool), Y, min_size,
                           max_rounds, link_rounds, anchor_hint=np.flatnonzero(np.isin(P, hint)))
        cert_c[P[cP]] = True  # (the band's own points too: certified for the contour rules' equation)
        if np.all(cert_c[need_idx]):
            break
    return cert | cert_c


def _contour_band(n: int, groups: np.ndarray, need: np.ndarray, reach: int | None) -> tuple[np.ndarray, list]:
    """The grid points certified with the contour rules (:func:`_certify_grid`): in each support
    interval holding points that ``need`` them, those points and the band that joins them to an
    anchor (returned as hints) at most ``reach`` grid points past them, or in the interval's
    middle (``reach`` None, or need points on both sides of it)."""
    sel = np.zeros(n, dtype=bool)
    hint = []
    for gi in np.unique(groups[need]):
        idx = np.flatnonzero(groups == gi)
        mid = idx[idx.size // 2]
        nd = idx[need[idx]]
        if nd[-1] < mid:
            if reach is not None and nd[-1] + reach < mid:
                mid = nd[-1] + reach
                band = np.r_[nd[0]:mid + 1]
            else:
                top = nd[-1] + _CHAIN_DENSE
                band = np.r_[nd[0]:min(top, mid) + 1, top:mid:_CHAIN_JUMP, mid]
        elif nd[0] > mid:
            if reach is not None and nd[0] - reach > mid:
                mid = nd[0] - reach
                band = np.r_[mid:nd[-1] + 1]
            else:
                bot = nd[0] - _CHAIN_DENSE
                band = np.r_[mid, mid + _CHAIN_JUMP:bot:_CHAIN_JUMP, max(bot, mid):nd[-1] + 1]
        else:
            band = idx[(idx >= min(nd[0], mid)) & (idx <= max(nd[-1], mid))]
        sel[band[(band >= idx[0]) & (band <= idx[-1])]] = True
        hint.append(mid)
    return sel, hint


_CHAIN_DENSE = 32
_NEAR_REACH = 64  # grid points from the last point needing the contour rules to the first anchor tried
_LINK_THETA_LONG = 10.0  # links whose single test has a larger theta get _LINK_ROUNDS_FAR steps
_LINK_ROUNDS_FAR = 12
_FAR_LINKS_UP_FRONT = False  # walk every far link before the anchors (tests compare the two)
_ANCHOR_PROBES = 9  # points of a component probed for its best-conditioned anchor
_SPLIT_MAX = 0.1  # largest share of points needing the contour rules for the split
_CHAIN_JUMP = 1  # (every 4th lost links near 0: walks between them fail)


def _certify_rule(eq: Equation, cj: "_Joint", t: np.ndarray, groups: np.ndarray, m: np.ndarray, u: np.ndarray,
                  ok: np.ndarray, Y: float, min_size: int = 8, max_rounds: int = 300,
                  link_rounds: int = 12, anchor_hint: np.ndarray | None = None) -> np.ndarray:
    """Which grid solutions ``(m, u)`` of a non-rational equation are certified (:class:`_Joint`).

    Point ``i`` is certified when (a) the test at its own target from its own ``(m_i, u_i)``
    passes (a unique root ``xi_i`` within ``R_i``), and (b) it is joined, by an unbroken chain of
    links between consecutive grid points of one support interval, to a point reached by a
    certified vertical chain from far above (:meth:`_Joint.vertical`). A link ``j -> i`` passes
    the test on the segment ``[t_j, t_i]`` from ``(m_j, u_j)`` with ``||x_i - x_j|| + R_i <= R``:
    the root continued from ``t_j`` is the only one in that ball, and ``xi_i`` lies in it (where
    one segment is too long, the two halves tested from either end meeting at the midpoint's
    Newton solution, then certified steps between the two points, at most ``link_rounds``). A
    link either way joins the two roots by one continuous curve, so it serves both ways. The
    vertical chains start in the middle of each run of at least ``min_size`` linked points (a
    quarter in where that chain fails), each bounded by ``max_rounds`` steps; what no chain
    reaches stays verified only.
    """
    n = t.size
    tc = t.astype(complex)
    cert = np.zeros(n, dtype=bool)
    good = np.flatnonzero(ok)
    if good.size == 0:
        return cert
    own = np.zeros(n, dtype=bool)
    Rown = np.zeros(n)
    fwd = np.zeros(n, dtype=bool)  # link i-1 -> i
    bwd = np.zeros(n, dtype=bool)  # link i+1 -> i (stored at i)
    i_f = np.zeros(0, dtype=np.int64)  # the points i whose link to i - 1 is tested
    far_links = []  # per direction: (src, dst, positions in i_f, theta) of the links walked last
    if _fastchain._HAVE_NUMBA:
        # the tests at the points to certify only; a link only between grid neighbours
        okk, RR, tau = np.zeros((n, 5), dtype=bool), np.zeros((n, 5)), np.ones((n, u.shape[1]))
        o_, R_, ta_ = _fastchain.joint_grid(np.ascontiguousarray(tc[good]), np.ascontiguousarray(m[good]),
                                            np.ascontiguousarray(u[good]), cj.Vc, cj.WVc, cj.aVc, cj.aWVc, cj.live,
                                            cj.k, cj.n, cj.a, cj.e, cj.e0, float(eq.log_c))
        nxt = np.r_[good[1:] == good[:-1] + 1, False]
        o_[:, 1] &= nxt
        o_[:, 2] &= np.r_[False, nxt[:-1]]
        o_[:, 3] &= nxt
        o_[:, 4] &= np.r_[False, nxt[:-1]]
        okk[good], RR[good], tau[good] = o_, R_, ta_
        own, Rown = okk[:, 0] & ok, np.where(okk[:, 0] & ok, RR[:, 0], 0.0)
        same = np.r_[False, groups[1:] == groups[:-1]] & own & np.r_[False, own[:-1]]  # i, i-1 linkable
        i_f = np.flatnonzero(same)
        if i_f.size:
            # A link either way proves both: the roots in the tested balls form one continuous
            # curve over the segment from the root xi_j at t_j (the own ball of j lies in the
            # link's ball about the same centre, and each holds one root) to xi_i (whose own ball
            # lies in the link's ball). So the link i -> i-1 is tested only where i-1 -> i failed,
            # and one chain of certified steps (forward, then backward where that fails) joins
            # what neither single test did.
            edge = np.zeros(i_f.size, dtype=bool)
            for src, dst, col in ((i_f - 1, i_f, 1), (i_f, i_f - 1, 2)):
                # (the distances only where the test passed and no link is proved yet: row by row
                # the same values, one n x G complex log instead of two at L = 50)
                j = np.flatnonzero(~edge & okk[src, col])
                s_, d_ = src[j], dst[j]
                edge[j] = cj.dist(m[d_], u[d_], m[s_], u[s_], tau[s_]) + Rown[d_] <= RR[s_, col]
            # Or the two halves meet: the tests from x_{i-1} on [t_{i-1}, t_mid] and from x_i on
            # [t_i, t_mid] (t_mid the midpoint) each hold one root at t_mid, and the joint-Newton
            # solution there lies in both balls (as a step of a certified chain), so both are it
            hm = np.flatnonzero(~edge & okk[i_f - 1, 3] & okk[i_f, 4])
            if hm.size:
                a_, b_ = i_f[hm] - 1, i_f[hm]
                mm, um, conv = cj.mid(0.5 * (tc[a_] + tc[b_]), m[a_], u[a_], m[b_], u[b_])
                edge[hm] = conv & (cj.dist(mm, um, m[a_], u[a_], tau[a_]) <= RR[a_, 3]) & (
                    cj.dist(mm, um, m[b_], u[b_], tau[b_]) <= RR[b_, 4])
            for src, dst in ((i_f - 1, i_f), (i_f, i_f - 1)):
                # a link too long for one test: certified steps between the two grid points
                redo = np.flatnonzero(~edge)
                if redo.size:
                    # steps aim at theta = 0.45 (_fastchain._THETA_LONG) and theta is about linear
                    # in the step (that theta sizes the walk's first step): a link whose single
                    # test has theta < _LINK_THETA_LONG gets link_rounds steps now; the others
                    # (theta from 10 to inf: the segment's ball reaches a root of M^{-1} or a pole
                    # of a law, tapered nets at L = 50) only _LINK_ROUNDS_FAR, later, and only
                    # where they can add certified points or spare a vertical chain (below)
                    _, _, _, th_ = cj.test(tc[src[redo]], tc[dst[redo]], m[src[redo]], u[src[redo]])
                    near_ = th_ < _LINK_THETA_LONG
                    part = redo[near_]
                    if part.size:
                        s_, d_ = src[part], dst[part]
                        _, _, pm, pu, pR, ptau, done = cj.walk(tc[s_], m[s_], u[s_], tc[d_], link_rounds, th_[near_])
                        edge[part] = done & (cj.dist(m[d_], u[d_], pm, pu, ptau) + Rown[d_] <= pR)
                    far_links.append((src, dst, redo[~near_], th_[~near_]))
            fwd[i_f] = edge
            bwd[i_f - 1] = edge
    else:
        o, R, _, _ = cj.test(tc[good], tc[good], m[good], u[good])
        own[good], Rown[good] = o, R
        same = np.r_[False, groups[1:] == groups[:-1]] & own & np.r_[False, own[:-1]]
        i_f = np.flatnonzero(same)
        if i_f.size:
            for src, dst, store in ((i_f - 1, i_f, fwd), (i_f, i_f - 1, bwd)):
                o, R, tau, _ = cj.test(tc[src], tc[dst], m[src], u[src])
                store[dst] = o & (cj.dist(m[dst], u[dst], m[src], u[src], tau) + Rown[dst] <= R)
    idx = np.arange(n)

    def spread(anchor):
        """Certified by an anchor through forward links, or backward links."""
        def one(a, link):
            brk = ~link & ~a
            last_a = np.maximum.accumulate(np.where(a, idx, -1))
            last_b = np.maximum.accumulate(np.where(brk, idx, -1))
            return (last_a >= 0) & (last_a >= last_b)
        return one(anchor, fwd) | one(anchor[::-1], bwd[::-1])[::-1]

    anchor = np.zeros(n, dtype=bool)
    tried = np.zeros(n, dtype=bool)  # points whose vertical chains were run

    def components():
        """The components joined both ways (any anchor in one certifies all of it): each point's
        label, each component's size and first point."""
        both = fwd & np.r_[False, bwd[:-1]]  # i-1 <-> i (fwd[i]: i-1 -> i; bwd[i-1]: i -> i-1)
        lab = np.cumsum(~both) - 1
        return lab, np.bincount(lab), np.flatnonzero(~both)

    def anchor_pass(hint):
        """Vertical chains for the components of at least ``min_size`` points that hold no
        certified point and no point tried before (``hint``: points to try first)."""
        nonlocal cert
        # a certified walk from far above costs some hundred steps, so only components of
        # min_size points get one
        lab, size, first = components()
        spent = set(lab[tried].tolist())
        comps = [c for c in range(size.size)
                 if size[c] >= min_size and own[first[c]] and not cert[first[c]] and c not in spent]
        # each component's anchors: of _ANCHOR_PROBES points spread over it, the best conditioned
        # first (smallest theta of its own test, ~ 1/|s|^2): the vertical chain's certified steps
        # scale with it (orthogonal tanh, L = 10: 1100 steps down to x = 8e-9, where u ~ 1e4 x^-1,
        # against about 100 in the bulk)
        ranked = {}
        if comps:
            offs = [np.unique(np.linspace(0, size[c] - 1, _ANCHOR_PROBES).round().astype(np.int64)) for c in comps]
            pts = np.concatenate([first[c] + o for c, o in zip(comps, offs)])
            _, _, _, th = cj.test(tc[pts], tc[pts], m[pts], u[pts])
            th = np.where(own[pts], th, np.inf)
            k = 0
            for c, o in zip(comps, offs):
                order = np.argsort(th[k:k + o.size], kind="stable")
                ranked[c] = [int(pts[k + j]) for j in order if np.isfinite(th[k + j])]
                k += o.size
        cand = [ranked[c][0] for c in comps if ranked[c]]
        if hint is not None:  # the given points first, in place of their components' best points
            hinted = set(lab[hint].tolist())
            cand = [p for p in cand if lab[p] not in hinted] + [int(h) for h in hint]
        for frac in (2, 4):  # the best point of each component, then the next best where that failed
            pick = np.array([p for p in cand if not cert[p]], dtype=int)
            if pick.size == 0:
                break
            if frac == 4:
                nxt = []
                for p in pick:
                    r_ = ranked.get(int(lab[p]), [])
                    alt = [q for q in r_ if q != p]
                    nxt.append(alt[0] if alt else first[lab[p]] + size[lab[p]] // 4)
                pick = np.array(nxt, dtype=int)
            pick = pick[own[pick]]
            if pick.size == 0:
                break
            tried[pick] = True
            mv, uv, (pm, pu, pR, ptau), done = cj.vertical(t[pick], eq.mean, Y, max_rounds)
            # the grid solution at the anchor lies in the ball of the chain's last step
            near = done & (cj.dist(m[pick], u[pick], pm, pu, ptau) + Rown[pick] <= pR)
            redo = np.flatnonzero(~near)
            if redo.size and _fastchain._HAVE_NUMBA:
                # (a chain that branched off another one may end in a ball that misses the grid
                # solution's own ball where its own chain from the far field does not)
                _, _, (pm, pu, pR, ptau), done = cj.vertical(t[pick[redo]], eq.mean, Y, max_rounds, branch=False)
                near[redo] = done & (cj.dist(m[pick[redo]], u[pick[redo]], pm, pu, ptau) + Rown[pick[redo]] <= pR)
            anchor[pick[near]] = True
            cert = spread(anchor) & own

    # The far links (single-test theta >= _LINK_THETA_LONG) are walked only where they can add
    # certified points or spare a vertical chain. Walking them all up front took a tenth of the
    # matrix's time (134 of 1177 such walks arrived), half of it in orthogonal tapered nets at
    # L = 50, inside long runs of points that stayed verified. A far link is walked where it
    # (c) joins two components of min_size points, before their vertical chains (one chain fewer
    #     where it arrives: a walk of some ms against a chain of some ten);
    # (a) joins a certified point to one that is not;
    # (b) may help to form a component of min_size uncertified points, which then gets its chain:
    #     in each segment of uncertified points joined by proved or untried links, every
    #     (min_size - 1)-th link is walked first (a component of min_size points spans
    #     min_size - 1 consecutive links, so it holds one of them), and a failed one splits it.
    # Each (link, direction) is walked at most once, forward first: at most the walks of walking
    # them all up front.
    walked = [np.zeros(i_f.size, dtype=bool) for _ in far_links]
    far_rounds = min(link_rounds, _LINK_ROUNDS_FAR)

    def try_links(mask):
        """Walk the far links at the positions ``mask`` (of ``i_f``) not proved or walked yet."""
        moved = False
        for d, (src, dst, pos, th_) in enumerate(far_links):
            sel_ = mask[pos] & ~walked[d][pos] & ~fwd[i_f[pos]]
            if not np.any(sel_):
                continue
            part = pos[sel_]
            walked[d][part] = True
            moved = True
            s_, d_ = src[part], dst[part]
            _, _, pm, pu, pR, ptau, done = cj.walk(tc[s_], m[s_], u[s_], tc[d_], far_rounds, th_[sel_])
            ok_ = done & (cj.dist(m[d_], u[d_], pm, pu, ptau) + Rown[d_] <= pR)
            fwd[i_f[part[ok_]]] = True
            bwd[i_f[part[ok_]] - 1] = True
        return moved

    if far_links and i_f.size:
        if _FAR_LINKS_UP_FRONT:  # (tests: every far link before the anchors, as up to stop 28)
            try_links(np.ones(i_f.size, dtype=bool))
        lab0, size0, _ = components()  # (c)
        big = size0[lab0] >= min_size
        try_links(big[i_f - 1] & big[i_f] & ~fwd[i_f])
    anchor_pass(anchor_hint)
    if not (far_links and i_f.size):
        return cert
    for _ in range(2 * i_f.size + 2):  # (each round walks at least one (link, direction))
        proved = fwd[i_f]  # (a)
        joins = (cert[i_f - 1] != cert[i_f]) & ~proved
        if np.any(joins) and try_links(joins):
            cert = spread(anchor) & own
            continue
        untried = np.zeros(i_f.size, dtype=bool)  # (b)
        for d, (src, dst, pos, th_) in enumerate(far_links):
            untried[pos[~walked[d][pos]]] = True
        open_ = (proved | untried) & ~cert[i_f] & ~cert[i_f - 1]
        joined = np.zeros(n, dtype=bool)
        joined[i_f[open_]] = True  # (point i joined to i - 1)
        seg = np.cumsum(~joined) - 1
        seg_first = np.flatnonzero(~joined)
        seg_size = np.bincount(seg)
        want = open_ & ~proved & untried & (seg_size[seg[i_f]] >= min_size)
        if not np.any(want):
            break
        offset = i_f - seg_first[seg[i_f]]  # (1 for a segment's first link)
        sample = want & (offset % max(min_size - 1, 1) == 0)
        if not np.any(sample):  # (the sampled links are proved already: each segment's first untried one)
            q = np.flatnonzero(want)
            _, lead = np.unique(seg[i_f[q]], return_index=True)
            sample[q[lead]] = True
        if not try_links(sample):
            break
        cert = spread(anchor) & own
        anchor_pass(None)
    return cert


def _gchain(ev: "_General", z, m, u, t, record: bool, max_rounds: int):
    """Walk each start ``(z, m, u)`` to its target ``t``; a step is accepted when joint Newton
    from the previous solution converges at the new point to a residual ``<= 1e-10`` on the
    physical side (``Im m <= 0``) close to where it started. Returns the final solutions, failure
    flags, counts and the recorded chain of point 0."""
    n = t.shape[0]
    z, m, u = z.copy(), m.copy(), u.copy()
    n_newton = 0
    h = np.abs(t - z) / 4.0
    idx = np.arange(n)
    ta = t.copy()
    out_m = np.empty(n, dtype=complex)
    out_u = np.empty((n, len(ev.eq.ugroups)), dtype=complex)
    failed = np.zeros(n, dtype=bool)
    n_lily, n_rej = 0, 0
    tr = None
    if record:
        tr = dict(centres=[z[0]], solutions=[m[0]], eta=[np.nan], rejected=[], rejected_from=[],
                  newton=[np.array([m[0]])], radii=[])
    for _ in range(max_rounds):
        if idx.size == 0:
            break
        dist = np.abs(ta - z)
        step = np.minimum(h, dist)
        final = step >= dist
        with np.errstate(invalid="ignore", divide="ignore"):
            znew = np.where(final, ta, z + (ta - z) * (step / dist))
        mn, un, conv, res, inn, used, path = ev.newton(znew, m, u, 8)
        n_newton += used * idx.size
        ok = conv & (res <= TOL_VERIFY) & (inn <= TOL_VERIFY) & (mn.imag <= TOL_VERIFY * np.abs(mn))
        ok &= np.abs(mn - m) <= 0.5 * (np.abs(m) + np.abs(mn))
        if record:
            if ok[0]:
                tr["centres"].append(znew[0])
                tr["solutions"].append(mn[0])
                tr["eta"].append(float(np.abs(mn[0] - m[0])))
                tr["newton"].append(np.array([p[0] for p in path]))
            else:
                tr["rejected"].append(znew[0])
                tr["rejected_from"].append(len(tr["centres"]) - 1)
        nacc = int(ok.sum())
        n_lily += nacc
        n_rej += ok.size - nacc
        m = np.where(ok, mn, m)
        u = np.where(ok[:, None], un, u)
        z = np.where(ok, znew, z)
        h = np.where(ok, 2.0 * step, step / 4.0)
        fin = ok & final
        bad = ~ok & (h <= 1e-15 * np.maximum(np.abs(ta), 1e-300))
        leave = fin | bad
        if np.any(leave):
            out_m[idx[leave]] = m[leave]
            out_u[idx[leave]] = u[leave]
            failed[idx[bad]] = True
            keep = ~leave
            idx, ta, z, m, u, h = idx[keep], ta[keep], z[keep], m[keep], u[keep], h[keep]
    if idx.size:
        out_m[idx] = m
        out_u[idx] = u
        failed[idx] = True
    return out_m, out_u, failed, n_lily, n_newton, n_rej, tr


_ORTHO_COMPILED = True


def _long_laws(eq: Equation) -> bool:
    """Whether some law of ``D^2`` is long (refined onto the zeros of ``phi'``) and numba is there
    to bound the error of its short Gauss rule."""
    if eq.uses_contour:
        return False  # contour rules: no short real rule is accurate near the real axis
    return _fastchain._HAVE_NUMBA and max(len(g.values) for g in eq.ugroups) > _FAST_MAX_ATOMS


_CONTOUR_SHORT_TOL = 1e-11


def _contour_short(eq: Equation) -> bool:
    """Whether every law of ``D^2`` whose contour rule is in use has a short real rule checked
    against it (:attr:`D2Law.short_check`: GELU, SiLU, softplus, ELU, SELU), there is at least one,
    and numba is there. (The other laws keep their real atoms in :attr:`Equation.packed_short`:
    GELU at L = 50, whose deep layers have ``q < 1e-4``.)"""
    if not (_fastchain._HAVE_NUMBA and eq.ugroups and eq.uses_contour):
        return False
    inuse = [eq._contour_in_use(g) for g in eq.ugroups]
    return any(inuse) and all(g.law._short_src is not None and g.law.contour_needed
                              for g, c in zip(eq.ugroups, inuse) if c)


def _contour_short_ok(eq: Equation, m: np.ndarray, u: np.ndarray, tol: float = _CONTOUR_SHORT_TOL) -> np.ndarray:
    """Where the short real rules stand for the contour rules at the solution ``(m, u)``: at every
    group ``u_g`` lies outside an ellipse of :attr:`D2Law.short_check` on which the two rules'
    ``psi`` differ by at most ``tol |k_g m|`` and their ``n_g E[log(1 - u D^2)] / k_g`` (the CDF's
    tail mass) by at most ``tol`` (maximum modulus: the largest difference of ``psi`` outside the
    ellipse is on it; that of the log potentials is its integral from ``u = 0``,
    :func:`fpcore._fastchain._lp_bound`)."""
    # (the groups on their real atoms have them in the short rules too: exact)
    _, _, check, vmax, rhos, e_psi = eq.tail_short
    exact = np.array([not eq._contour_in_use(g) for g in eq.ugroups])
    if not np.all(check | exact):
        return np.zeros(len(m), dtype=bool)
    _, _, k, n = eq.packed
    return _fastchain.short_rule_ok(np.ascontiguousarray(u, dtype=complex), k, n, np.ascontiguousarray(m, dtype=complex),
                                    vmax, rhos, e_psi, float(tol), exact)


_PROBE = 16  # grid points probed before a short-rule sweep
_PROBE_MIN = 0.5  # least share of probes where the short rules stand for the contour rules


def _short_rules_pay(eq: Equation, x: np.ndarray, Y: float, ev: "_General", max_rounds: int,
                     counts: np.ndarray) -> bool:
    """Whether a grid sweep with the laws' short rules is worth its cost: at ``_PROBE`` grid points
    (evenly spread over the sorted grid's indices) walks from far above with the short rules,
    and at least ``_PROBE_MIN`` of them where the solution passes :func:`_contour_short_ok`.
    Where the short rules stand for the contour rules at few points (tapered nets at L = 2: 0 to
    30 % of the grid, ``u_g`` near the laws' cut) the points they fail are swept again with the
    contour rules, and the short sweep (with more steps than the contour one: near 0 its
    equation's roots crowd the real axis) cost more than it saved; at about 65 % the two cost
    the same. Only the cost depends on the answer: either way each point keeps a solution of the
    contour rules' equation or one checked to stand for it."""
    if x.size < 4 * _PROBE:
        return True
    sel = np.unique(np.linspace(0, x.size - 1, _PROBE).round().astype(np.int64))
    V, W = eq.packed_short
    m, u, ok, cnt = _fastchain.vertical_general(
        np.ascontiguousarray(x[sel]), float(Y), float(eq.mean), eq.roots.astype(float), eq.exps.astype(float),
        float(eq.log_c), V, W, ev.k, ev.n, ev.mu, max_rounds, ev.tol)
    counts[:] += cnt
    good = ok & (-m.imag > 1e-9 * np.abs(m))
    if np.any(good):
        good[good] = _contour_short_ok(eq, m[good], u[good])
    return np.count_nonzero(good) >= _PROBE_MIN * sel.size


def _short_first(eq: Equation, t: np.ndarray, run, keep=None) -> SolveResult:
    """``run(short)`` with the laws' short Gauss rules, then again with the full laws for the
    targets where ``keep(r)`` is false. By default (long laws) a point is kept where the Gauss
    error bound at the solution's ``u_g`` is below ``1e-12`` relative (``u_g`` away from the cut
    of ``psi_g``). ``SolveResult.short`` marks the points whose ``(m, u)`` solve the equation
    with the short rules. (Targets other than a grid: the runs do not certify.)"""
    r = run(np.ones(t.size, dtype=bool), True)
    if keep is None:
        ev = _General(eq)
        ok = r.verified & _fastchain.gauss_error_ok(np.ascontiguousarray(r.u), ev.vmax, ev.k, r.m, N_SHORT, 1e-12)
    else:
        ok = keep(r)
    if not np.all(ok):
        redo = ~ok
        r2 = run(redo, False)
        r.m[redo], r.u[redo], r.verified[redo], r.certified[redo] = r2.m, r2.u, r2.verified, r2.certified
        r.n_lilypads += r2.n_lilypads
        r.n_newton += r2.n_newton
        r.n_rejected += r2.n_rejected
    r.short = ok
    return r


def _solve_general(eq: Equation, t: np.ndarray, scale: float, record: bool, max_rounds: int,
                   groups: np.ndarray | None = None, certify: bool = True, start: tuple | None = None) -> SolveResult:
    """:func:`_solve_general_rules`; targets other than a grid (complex contours, single real
    points) are solved with the short Gauss rules of long laws first (:func:`_short_first`)."""
    if groups is None and not record and _long_laws(eq):
        return _short_first(eq, t, lambda sel, short: _solve_general_rules(
            eq, t[sel], scale, record, max_rounds, None, short))
    if groups is None and not record and np.any(t.imag != 0) and _contour_short(eq):
        return _contour_short_first(eq, t, lambda sel, short: _solve_general_rules(
            eq, t[sel], scale, record, max_rounds, None, short))
    return _solve_general_rules(eq, t, scale, record, max_rounds, groups, certify=certify, start=start)


def _contour_short_first(eq: Equation, t: np.ndarray, run) -> SolveResult:
    """Complex targets (the moments' contour) of contour-rule laws: :func:`_short_first` with the
    short real Gauss rules, kept where they stand for the contour rules at the solution
    (:func:`_contour_short_ok`, to ``_CONTOUR_SHORT_TOL``) and ``M`` is not real (as on the grid);
    the other targets are solved again with the contour rules. The numpy continuation evaluates
    every atom at every residual, so 40 real atoms instead of some 500 complex ones per law make it
    about ten times cheaper (``moment(2)`` of a GELU net of depth 10: 7.9 s before)."""

    def keep(r):
        ok = r.verified & (np.abs(r.m.imag) > 1e-9 * np.abs(r.m))
        if np.any(ok):
            ok[ok] = _contour_short_ok(eq, r.m[ok], r.u[ok])
        return ok

    return _short_first(eq, t, run, keep)


_REAL_BAND = 1e-9  # |Im M| <= _REAL_BAND |M| at a real target: M real there (a gap), as in the sweep


def physical_sheet(ev: "_General", t: np.ndarray, m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Whether each solution ``(m, u)`` at a real target ``t > 0`` lies on the physical sheet
    (the a-posteriori check of a verified point; complex targets pass).

    On the physical sheet ``Im G(x + i0) <= 0``, so ``Im M = x Im G <= 0`` (MATH.md section 2).
    Where ``M`` is real (``|Im M| <= _REAL_BAND |M|``: a gap, or outside the support) that sign
    cannot tell the sheets apart: there ``M(x) = int t / (x - t) mu(dt)`` is real and
    ``M'(x) = -int t / (x - t)^2 mu(dt) < 0`` (the law lives on ``[0, inf)``), and
    ``M(x + i y) = M(x) + i y M'(x) + O(y^2)`` is the limit from the upper half-plane only if
    ``M`` decreases. Near the edge of a support interval the equation also has a real root on the
    other sheet (``M^{-1}`` real beyond its critical point, where ``M^{-1}`` increases: above
    the largest eigenvalue, the root past ``argmin_{m > 0} M^{-1}``) with residuals as small as
    the physical one's; such a root is refused here. With ``D = d r_0 / dm`` along ``r_g = 0``
    (the Schur complement of joint Newton: ``r_0 = log z - log M^{-1}``, so ``dz / dm = -z D``),
    ``M'(x) = -1 / (x D)``: physical where ``x Re D > 0``. A root with ``Im M > TOL_VERIFY |M|``
    is refused as before."""
    m = np.asarray(m)
    ok = np.ones(m.shape[0], dtype=bool)
    t = np.asarray(t)
    sel = np.flatnonzero((np.imag(t) == 0) & (-m.imag <= _REAL_BAND * np.abs(m)))
    if sel.size == 0:
        return ok
    ms, us, x = m[sel], u[sel], np.real(t[sel]).astype(complex)
    if _fastchain._HAVE_NUMBA:
        eq = ev.eq
        D = _fastchain.sheet_slopes(np.ascontiguousarray(x), np.ascontiguousarray(ms, dtype=complex),
                                    np.ascontiguousarray(us, dtype=complex), eq.roots.astype(float),
                                    eq.exps.astype(float), float(eq.log_c), ev.V, ev.W, ev.k, ev.n)
    else:
        with np.errstate(all="ignore"):
            _, gp, _, a = ev.residual(x, ms, us)
            D = gp + np.sum(ev.n * ev.k / (us * a), axis=1)
    ok[sel] = (x.real * D.real > 0) & np.isfinite(D) & (ms.imag <= TOL_VERIFY * np.abs(ms))
    return ok


_RESCUE_ROUNDS = 1000  # certified steps of a rescue walk (_rescue_from_neighbours)
_RESCUE_PASSES = 8  # rescue passes (each reaches one more point into a run of failed points)
_RESCUE_MAX = 32  # most failed points rescued (the walks cost up to _RESCUE_ROUNDS G K each)


def _rescue_from_neighbours(eq: Equation, x: np.ndarray, groups: np.ndarray, m: np.ndarray, u: np.ndarray,
                            failed: np.ndarray, counts: np.ndarray) -> None:
    """Grid points that no walk of the sweep reached (walks from far above that ran out of
    rounds: tapered orthogonal nets at ``L = 50``, where ``m`` passes close to many roots of
    ``M^{-1}``) walk from a verified grid neighbour of the same support interval along the real
    axis in certified steps (:meth:`_Joint.walk`: each step passes the joint test on its segment
    and the next solution lies in its ball, so the root is continued on one branch, as a link of
    :func:`_certify_rule`). A point that arrives and passes the a-posteriori checks is verified
    (``m``, ``u``, ``failed`` updated in place); at most ``_RESCUE_PASSES`` passes, each of at
    most ``_RESCUE_ROUNDS`` steps per point (the link next to such a point may need hundreds:
    its single test reaches a root of ``M^{-1}``), and only where at most ``_RESCUE_MAX`` points
    failed."""
    if np.count_nonzero(failed) > _RESCUE_MAX:
        return
    cj = None
    for _ in range(_RESCUE_PASSES):
        left = np.r_[False, ~failed[:-1] & (groups[:-1] == groups[1:])]
        right = np.r_[~failed[1:] & (groups[1:] == groups[:-1]), False]
        todo = np.flatnonzero(failed & (left | right))
        if todo.size == 0:
            return
        if cj is None:
            cj = _Joint(eq)
        src = np.where(left[todo], todo - 1, todo + 1)
        tc = x.astype(complex)
        mm, uu, *_, done = cj.walk(tc[src], m[src], u[src], tc[todo], _RESCUE_ROUNDS)
        counts[0] += todo.size
        if not np.any(done):
            return
        sel = todo[done]
        _, _, _, res, inner, _, _ = cj.ev.newton(tc[sel], mm[done], uu[done], 0)
        good = (res <= TOL_VERIFY) & (inner <= TOL_VERIFY) & physical_sheet(cj.ev, tc[sel], mm[done], uu[done])
        m[sel[good]], u[sel[good]] = mm[done][good], uu[done][good]
        failed[sel[good]] = False
        if not np.any(good):
            return


def _solve_general_rules(eq: Equation, t: np.ndarray, scale: float, record: bool, max_rounds: int,
                         groups: np.ndarray | None = None, short_rules: bool = False,
                         certify: bool = True, mixed_compiled: bool = True, start: tuple | None = None) -> SolveResult:
    """Continuation for equations with non-rational ``D^2`` factors, verified a posteriori.

    Vertical chains from far above each target; with ``groups`` (sorted real grid, one label per
    support interval) only anchors walk down and the other points are reached along the real
    axis from a solved neighbour, as in the rational solver. With Gaussian weights and numba the
    grid is one compiled sweep instead (:func:`_fastchain.grid_general`), long laws by their short
    Gauss rules; ``SolveResult.short`` marks the points whose ``u`` solve that shorter equation
    (exact to the Gauss error bound, below ``1e-12`` relative). Orthogonal nets whose laws mix
    real atoms and contour rules (:func:`_mixed_compiled`) are swept compiled too, kept only where
    certified; ``mixed_compiled=False`` is the vectorised continuation they took before.
    ``start`` (:func:`solve`): where the sweep runs on the solver's own laws, its first point
    walks from there.
    """
    n = t.shape[0]
    ev = _General(eq, short_rules)
    Y = _start_height(eq, t.real, scale)
    counts = np.zeros(3, dtype=np.int64)
    G = len(eq.ugroups)
    tr = None

    def vec_vertical(sel, rounds=max_rounds):
        z0 = t[sel] + 1j * Y
        m0 = eq.mean / z0
        m0, u0, _, _, _, used, _ = ev.newton(z0, m0, ev.start_u(m0), 12)
        res = _gchain(ev, z0, m0, u0, t[sel], record, rounds)
        counts[:] += (sel.size + res[3], res[4] + used * sel.size, res[5])
        return res[0], res[1], res[2], res[6]

    def vec_walk(nb, todo):
        res = _gchain(ev, t[nb], out_m[nb], out_u[nb], t[todo], False, max_rounds)
        counts[:] += (res[3], res[4], res[5])
        return res[0], res[1], res[2]

    # Compiled where the Marchenko-Pastur factors keep every u_g away from the cut of psi_g
    # (Gaussian weights): with orthogonal weights and an atomic D^2 law the roots crowd near the
    # real axis and a different order of walks can settle on a neighbouring root that passes the
    # same a-posteriori checks. A sorted grid is one compiled sweep (grid_general: secant
    # predictor, walks from far above at the first point and into gaps); other real targets walk
    # down from far above, compiled for short laws.
    args = (eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c), ev.V, ev.W, ev.k, ev.n)

    def fast_vertical(sel):
        m, u, ok, cnt = _fastchain.vertical_general(
            np.ascontiguousarray(t.real[sel]), float(Y), float(eq.mean), *args, ev.mu, max_rounds, ev.tol)
        counts[:] += cnt
        return m, u, ~ok, None

    # contour rules (complex atoms) stand for their laws up to the real axis, where a short real
    # Gauss rule cannot: with them the sweep runs on the full laws
    short = ev.V.shape[1] <= _FAST_MAX_ATOMS or np.iscomplexobj(ev.V)
    # orthogonal weights: compiled too when every law is a contour rule (its poles lie off the
    # real axis, so walks along the grid do not jump between crowded real-axis roots)
    all_contour = _all_contour(eq)
    # orthogonal weights, laws of real atoms and contour rules mixed (saturated layers): the grid
    # is swept compiled as well and certified; only certified points are kept from that sweep
    # (the certificate joins each to a chain from far above: the physical root, however the sweep
    # found it), the others come from the vectorised continuation (_keep_certified)
    mixed = (mixed_compiled and groups is not None and not record and _mixed_compiled(eq)
             and bool(np.all(t.imag == 0)))
    compiled = (not record and _fastchain._HAVE_NUMBA
                and (eq.smooth_path or (_ORTHO_COMPILED and all_contour) or mixed)
                and bool(np.all(t.imag == 0)))
    grid = compiled and groups is not None  # the whole grid in one compiled sweep (short rules)
    fast = compiled and (short or grid)
    vertical = fast_vertical if compiled and short else vec_vertical
    off_axis = not record and not bool(np.all(t.imag == 0)) and _compiled_walks(eq, ev, t)
    if off_axis:
        # complex targets (the moments' contour): the same vertical walks, compiled
        def vertical(sel):
            m, u, ok, cnt = _fastchain.vertical_general_complex(
                np.ascontiguousarray(t[sel]), float(Y), float(eq.mean), *_general_args(eq, ev), ev.mu, max_rounds,
                ev.tol)
            counts[:] += cnt
            return m, u, ~ok, None
    walk = vec_walk

    short_pts = None
    # Gaussian weights with contour rules (GELU, SiLU, softplus): the sweep runs on the laws'
    # short real Gauss rules, kept where they stand for the contour rules at the point's u_g
    # (_contour_short_ok); the other points are swept again with the contour rules
    contour_short = grid and eq.smooth_path and np.iscomplexobj(ev.V) and _contour_short(eq)
    if contour_short:
        contour_short = _short_rules_pay(eq, t.real, Y, ev, max_rounds, counts)
    if grid:
        # Long laws (refined onto the zeros of phi': GELU, SiLU) are solved with their short
        # Gauss rules; a point keeps that solution where the Gauss error bound at its u_g is below
        # 1e-12 relative (the full laws' residual then passes the checks too); elsewhere (u_g
        # near the cut of psi_g: shallow nets, x near 0) Newton with the full laws polishes it.
        use_short = not short or contour_short
        V, W = eq.packed_short if use_short else (ev.V, ev.W)
        # the first point from a solution near it, where one is given (the walk from far above
        # crosses some 45 octaves down to a lower edge at 2e-11, tapered tanh at L = 50: 22 ms of 190)
        first = () if start is None or use_short else (complex(start[0]), complex(start[1]),
                                                       np.ascontiguousarray(start[2], dtype=complex))
        if not use_short and _gaps_on_sheets(eq, ev):
            # exact atoms (leaky ReLU): the gaps followed on their real sheets (fpcore._gaps)
            m_, u_, ok_, cnt = _gaps.grid_discrete(
                np.ascontiguousarray(t.real), np.ascontiguousarray(groups), float(Y), float(eq.mean),
                *args, ev.mu, max_rounds, ev.tol, *_gaps.discrete_args(ev.V, ev.W), *first)
        elif first:
            m_, u_, ok_, cnt = _fastchain.grid_general(
                np.ascontiguousarray(t.real), np.ascontiguousarray(groups), float(Y), float(eq.mean),
                *args[:3], V, W, *args[5:], ev.mu, max_rounds, ev.tol, *first)
        else:
            m_, u_, ok_, cnt = _fastchain.grid_general(
                np.ascontiguousarray(t.real), np.ascontiguousarray(groups), float(Y), float(eq.mean),
                *args[:3], V, W, *args[5:], ev.mu, max_rounds, ev.tol)
        counts[:] += cnt
        out_m, out_u, failed = m_, u_, ~ok_
        if use_short:
            if contour_short:
                # a real M (a gap of the short rules' equation: near 0 their laws lack the mass
                # the contour rules resolve) is another root of the contour rules' equation, not
                # the physical one: the contour rules' sweep below decides
                short_pts = ok_ & (-out_m.imag > 1e-9 * np.abs(out_m)) & _contour_short_ok(eq, out_m, out_u)
            else:
                short_pts = ok_ & _fastchain.gauss_error_ok(out_u, ev.vmax, ev.k, out_m, N_SHORT, 1e-12)
            redo = np.flatnonzero(~short_pts if contour_short else ok_ & ~short_pts)
            if redo.size and contour_short:
                # the same compiled sweep with the contour rules over these points only (they
                # lie near 0 or an edge, where the short rules' roots may be other branches)
                m_, u_, ok_r, cnt = _fastchain.grid_general(
                    np.ascontiguousarray(t.real[redo]), np.ascontiguousarray(groups[redo]), float(Y),
                    float(eq.mean), *args[:5], *args[5:], ev.mu, max_rounds, ev.tol)
                counts[:] += cnt
                out_m[redo], out_u[redo], failed[redo] = m_, u_, ~ok_r
            elif redo.size:
                mp, up, conv, res, inner, used, _ = ev.newton(t[redo], out_m[redo], out_u[redo], 8)
                counts[1] += used * redo.size
                good = conv & (res <= TOL_VERIFY) & (inner <= TOL_VERIFY) & (mp.imag <= TOL_VERIFY * np.abs(mp))
                good &= np.abs(mp - out_m[redo]) <= 1e-3 * np.abs(out_m[redo])
                # a real M (a gap) is decided from far above, as in the compiled sweep
                good &= -mp.imag > 1e-9 * np.abs(mp)
                out_m[redo], out_u[redo], failed[redo] = mp, up, ~good
    elif groups is None or n < 4 * _ANCHOR_STRIDE:
        out_m, out_u, failed, tr = vertical(np.arange(n))
    else:
        out_m = np.empty(n, dtype=complex)
        out_u = np.empty((n, G), dtype=complex)
        failed = np.zeros(n, dtype=bool)
        anchors, levels = _level_schedule(groups)
        out_m[anchors], out_u[anchors], failed[anchors], _ = vertical(anchors)
        def real(m):
            return -m.imag <= 1e-9 * np.abs(m)

        for todo, nb in levels:
            mt, ut, ft = walk(nb, todo)
            # gaps (M real) are entered and left from far above, never along the real axis: at a
            # gap's edge the real root a horizontal walk may follow meets the complex one; so is a
            # point whose neighbour failed (its start is not verified)
            ft |= real(out_m[nb]) | real(mt) | failed[nb]
            if np.any(ft):  # a point the horizontal walk cannot reach walks down instead
                mv, uv, fv, _ = vertical(todo[ft])
                mt[ft], ut[ft], ft[ft] = mv, uv, fv
            out_m[todo], out_u[todo], failed[todo] = mt, ut, ft
    # the compiled walks check every accepted step themselves; everything else is checked here
    check = np.ones(n, dtype=bool) if not fast else failed.copy()
    if fast and np.any(failed):
        # what the compiled walks leave gets one bounded vectorised try (e.g. at edges): a point
        # that fails there too would otherwise burn every round
        sel = np.flatnonzero(failed)
        if short:
            # the same bounded vertical walks, compiled (many laws of hundreds of complex atoms:
            # the vectorised residual costs n G K per proposal)
            m_, u_, ok_, cnt = _fastchain.vertical_general(
                np.ascontiguousarray(t.real[sel]), float(Y), float(eq.mean), *args, ev.mu,
                min(max_rounds, _FALLBACK_ROUNDS), ev.tol)
            counts[:] += cnt
            out_m[sel], out_u[sel], failed[sel] = m_, u_, ~ok_
        else:
            out_m[sel], out_u[sel], failed[sel], _ = vec_vertical(sel, min(max_rounds, _FALLBACK_ROUNDS))
    if np.any(check):
        if off_axis:
            res, inner = _fastchain.residuals_general(np.ascontiguousarray(t[check]), out_m[check],
                                                      np.ascontiguousarray(out_u[check]), *_general_args(eq, ev))
        else:
            _, _, _, res, inner, _, _ = ev.newton(t[check], out_m[check], out_u[check], 0)
        mc = out_m[check]
        failed[check] |= ~((res <= TOL_VERIFY) & (inner <= TOL_VERIFY) & (mc.imag <= TOL_VERIFY * np.abs(mc)))
    if np.any(~failed):
        # (the compiled walks accept Im M up to 1e-10 |M| too): where M is real at a real target
        # (the grid, the moments' contour at +-R), the sheet
        keep = np.flatnonzero(~failed)
        failed[keep] = ~physical_sheet(ev, t[keep], out_m[keep], out_u[keep])
    if grid and np.any(failed) and np.any(~failed):
        _rescue_from_neighbours(eq, t.real, groups, out_m, out_u, failed, counts)
    verified = ~failed
    n_lily, n_newton, n_rej = (int(c) for c in counts)
    if short_pts is not None:
        short_pts &= ~failed
    certified = np.zeros(n, dtype=bool)
    if (certify or mixed) and groups is not None and not record and bool(np.all(t.imag == 0)):
        certified = _certify_grid(eq, t.real, groups, out_m, out_u, verified, Y,
                                  short=short_pts if contour_short else None)
    if short_pts is None and grid and np.iscomplexobj(ev.V) and _contour_short(eq):
        # swept with the contour rules (orthogonal weights): where the short real rules stand for
        # them at the solution (to _CONTOUR_SHORT_TOL in psi and in the tail mass) the CDF's tail
        # mass is taken from the short rules (some 40 real atoms per law instead of hundreds of
        # complex ones); the certificate above is for the contour rules' equation either way
        short_pts = verified & (-out_m.imag > 1e-9 * np.abs(out_m))
        if np.any(short_pts):
            short_pts[short_pts] = _contour_short_ok(eq, out_m[short_pts], out_u[short_pts])
    r = SolveResult(m=out_m, u=out_u, certified=certified, verified=verified,
                    n_lilypads=n_lily, n_newton=n_newton, n_rejected=n_rej, trace=tr, short=short_pts)
    if mixed:
        r = _keep_certified(r, lambda: _solve_general_rules(eq, t, scale, record, max_rounds, groups, short_rules,
                                                            certify=True, mixed_compiled=False))
        if not certify:
            r.certified = np.zeros(n, dtype=bool)
    return r


def _mixed_compiled(eq: Equation) -> bool:
    """Whether the grid of an orthogonal net is swept compiled although not every law of ``D^2``
    is a contour rule (:func:`_all_contour`): some are, the others real atoms (SiLU or GELU layers
    saturated by a large ``q``, where no contour rule is built: two atoms at 0 and 1, or a Gauss
    rule of up to 40). With crowded real roots a compiled walk may settle on a neighbouring root
    that passes the a-posteriori checks, so the sweep's points are kept only where the joint
    certificate joins them to the physical root (:func:`_keep_certified`); before, such nets took
    the vectorised continuation throughout (82 s for SiLU at depth 100, sigma_w2 = 4, 200 points;
    about 2 s compiled, every point certified)."""
    return bool(_ORTHO_COMPILED and _ORTHO_MIXED and _fastchain._HAVE_NUMBA and eq.ugroups
                and not eq.smooth_path and eq.uses_contour and not _all_contour(eq))


_ORTHO_MIXED = True  # (tests switch it off to compare with the vectorised continuation)


def _keep_certified(r: SolveResult, fallback) -> SolveResult:
    """``r`` (a compiled sweep of a mixed orthogonal equation, certified) where every point is
    certified; otherwise ``fallback()`` (the vectorised continuation over the whole grid, as
    before) with the points ``r`` certified taken from ``r``: a certified point is the root
    continued from far above, which the fallback's point is too where it is right, so no point
    is less certified or verified than the fallback alone would leave it."""
    if np.all(r.certified):
        return r
    keep = r.certified
    f = fallback()
    m = np.where(keep, r.m, f.m)
    u = np.where(keep[:, None], r.u, f.u)
    short = None
    if r.short is not None or f.short is not None:
        rs = r.short if r.short is not None else np.zeros(m.size, dtype=bool)
        fs = f.short if f.short is not None else np.zeros(m.size, dtype=bool)
        short = np.where(keep, rs, fs)
    return SolveResult(m=m, u=u, certified=keep | f.certified, verified=keep | f.verified,
                       n_lilypads=r.n_lilypads + f.n_lilypads, n_newton=r.n_newton + f.n_newton,
                       n_rejected=r.n_rejected + f.n_rejected, short=short)
