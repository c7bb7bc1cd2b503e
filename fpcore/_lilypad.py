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

from dataclasses import dataclass, field

import numpy as np

from ._equation import Equation

__all__ = ["kantorovich", "solve", "SolveResult", "TOL_VERIFY"]

MAX_ROUNDS = 400  # accepted + rejected proposals per point
MAX_NEWTON = 40  # Newton iterations at the target
INNER_NEWTON = 60  # Newton iterations for each u_g
TOL_VERIFY = 1e-10
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
    for g, grp in enumerate(eq.ugroups):
        w = grp.k * m
        ug = u[:, g]
        for _ in range(max_iter):
            ps, dps = grp.psi(ug)
            step = (ps - w) / dps
            ug = ug - step
            if np.all(np.abs(step) <= 4 * _EPS * np.abs(ug)):
                break
        ps, dps = grp.psi(ug)
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


def _newton(eq, z, m, u, iters, tol=None):
    """Newton on ``rho - 1`` for up to ``iters`` steps; with ``tol``, each point stops once
    ``|dm| <= tol |m|``. Returns m, u, the number of steps taken and the iterates."""
    m = m.copy()
    u = None if u is None else u.copy()
    act = np.arange(m.shape[0])
    used = 0
    path = [m.copy()]
    for _ in range(iters):
        if act.size == 0:
            break
        f, fp, _, _, ua, _ = _residual(eq, z[act], m[act], None if u is None else u[act])
        step = f / fp
        step = np.where(np.isfinite(step), step, 0.0)
        m[act] = m[act] - step
        if u is not None:
            u[act] = ua
        used += act.size
        path.append(m.copy())
        if tol is not None:
            act = act[np.abs(step) > tol * np.maximum(np.abs(m[act]), 1e-300)]
    return m, u, used, path


def _start_height(eq: Equation, x: np.ndarray, scale: float) -> float:
    """A height ``Y`` at which ``m = mean / z`` is a certified start for all ``z = x + iY``."""
    Y = max(4.0 * scale, 1.0)
    xs = np.array([x.min(), x.max(), 0.0])
    for _ in range(80):
        z = xs + 1j * Y
        m0 = eq.mean / z
        if eq.rational:
            ok, _, _ = kantorovich(eq, z, m0)
        else:
            f, fp, *_ = _residual(eq, z, m0, None)
            ok = np.abs(f / fp) <= 1e-3 * np.abs(m0)
        if np.all(ok):
            return Y
        Y *= 2.0
    raise RuntimeError("lilypads: no certified start found (Y grew past its bound)")


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

    def at(self, m):
        # Complex logarithms are slow in numpy: sum log|d| and arg(d) separately. The arguments
        # use the branch cut pointing straight up from each root (arg in (-3pi/2, pi/2]): the
        # solutions live in the closed lower half-plane, real axis included, so the logarithms
        # are analytic on every ball that keeps clear of the roots themselves.
        dp = m[:, None] - self.ap
        dn = m[:, None] - self.an
        adp, adn = np.abs(dp), np.abs(dn)
        logPr = np.log(adp) @ self.ep + self.log_c
        lqp = (np.log(adn) @ self.en - logPr) + 1j * (_arg(dn) @ self.en - _arg(dp) @ self.ep)
        # distance from m to the cuts {a_j + i t, t >= 0}
        cut = np.minimum(np.min(adp, axis=1, initial=np.inf), np.min(adn, axis=1, initial=np.inf))
        up = m.imag > 0
        if np.any(up):
            re = m.real[up, None]
            cut[up] = np.minimum(np.min(np.abs(re - self.ap.real), axis=1, initial=np.inf),
                                 np.min(np.abs(re - self.an.real), axis=1, initial=np.inf))
        ip, in_ = 1.0 / dp, 1.0 / dn
        g2 = np.abs((ip * ip) @ self.ep - (in_ * in_) @ self.en)  # second derivative of g at m
        return (lqp, in_ @ self.en, ip @ self.ep, adp, adn, logPr, cut, g2)

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
        lqp, LQ, LP, distp, distn, logPr, cut, g2 = st
        if z.ndim == 1:
            ok, theta, step, eta, logform = self.test(st, z[:, None])
            return ok[:, 0], theta[:, 0], step[:, 0], eta[:, 0], logform[:, 0]
        lqp2, LQ2, LP2, cut2 = lqp[:, None], LQ[:, None], LP[:, None], cut[:, None]
        az = np.abs(z)
        g = np.log(az) + 1j * np.angle(z) + lqp2
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
            Kg = np.minimum((ip * ip) @ self.ep + (in_ * in_) @ self.en,
                            g2[:, None] + 2.0 * r[..., 0] * ((ip**3) @ self.ep + (in_**3) @ self.en))
            theta = eta_g * Kg / agp
            ok = (theta <= 0.5) & (2.0 * eta_g < cut2)
        step = g / gp
        eta = eta_g
        logform = ok.copy()
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
            ok[rows] |= ok_f
            theta[rows] = np.where(use_f, theta_f, theta[rows])
            step[rows] = np.where(use_f, f / fp, step[rows])
            eta[rows] = np.where(use_f, eta_f, eta[rows])
        return ok, theta, step, eta, logform


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


def _polish(ev: "_Rational", t, m, logform, iters: int = MAX_NEWTON):
    """Newton at the targets until ``|dm| <= 4 eps |m|`` per point: the log-form map
    ``m <- m - g/g'`` where ``logform``, else the polynomial-form map ``m <- m - f/f'``."""
    m = m.copy()
    act = np.arange(m.shape[0])
    prev = np.full(m.shape[0], np.inf)
    used = 0
    path = [m.copy()]
    for _ in range(iters):
        if act.size == 0:
            break
        lqp, LQ, LP = ev.at(m[act])[:3]
        ta = t[act]
        g = np.log(np.abs(ta)) + 1j * np.angle(ta) + lqp
        rho = np.exp(g)
        step = np.where(logform[act], g / (LQ - LP), (rho - 1.0) / (rho * LQ - LP))
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


_N_PROPOSALS = 12  # step lengths tried at once per round: h * 2^(j - 3), j = 0..7


def _solve_rational(eq: Equation, t: np.ndarray, scale: float, record: bool, max_rounds: int) -> SolveResult:
    n = t.shape[0]
    ev = _Rational(eq)
    Y = _start_height(eq, t.real, scale)
    z = t + 1j * Y
    m = eq.mean / z  # certified start at z (choice of Y)
    h = np.abs(t - z) / 4.0
    idx = np.arange(n)
    ta = t.copy()
    out_m = np.empty(n, dtype=complex)
    out_log = np.zeros(n, dtype=bool)
    failed = np.zeros(n, dtype=bool)
    n_lily, n_newton, n_rej = n, 0, 0
    mult = 2.0 ** ((np.arange(_N_PROPOSALS) - 8.0) / 2)
    tr = None
    if record:
        tr = dict(centres=[z[0]], solutions=[m[0]], eta=[np.nan], rejected=[], rejected_from=[],
                  newton=[np.array([m[0]])])
    for _ in range(max_rounds):
        if idx.size == 0:
            break
        # Proposals along the segment to the target, longest first; all tested in one batch
        # from the same start, the longest certified one is taken (the others count as rejected).
        dist = np.abs(ta - z)
        steps = np.minimum(h[:, None] * mult, dist[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            dirn = (ta - z) / dist
        znew = z[:, None] + dirn[:, None] * steps
        fin = steps >= dist[:, None]
        znew = np.where(fin, ta[:, None], znew)
        ok, theta, nstep, eta, logform = ev.test(ev.at(m), znew)
        # index of the longest certified proposal (-1: none)
        j = _N_PROPOSALS - 1 - np.argmax(ok[:, ::-1], axis=1)
        anyok = ok.any(axis=1)
        rows = np.arange(idx.size)
        jj = np.where(anyok, j, 0)
        acc_step = nstep[rows, jj]
        zacc = znew[rows, jj]
        final = fin[rows, jj] & anyok
        kind = logform[rows, jj]
        if record:
            big = np.flatnonzero(~ok[0] & (np.arange(_N_PROPOSALS) > (j[0] if anyok[0] else -1)) & (steps[0] > (steps[0, j[0]] if anyok[0] else 0)))
            for jb in big:
                if steps[0, jb] > (steps[0, jb - 1] if jb > 0 else 0):
                    tr["rejected"].append(znew[0, jb])
                    tr["rejected_from"].append(len(tr["centres"]) - 1)
            if anyok[0]:
                tr["centres"].append(zacc[0])
                tr["solutions"].append(m[0] - acc_step[0])
                tr["eta"].append(float(eta[0, jj[0]]))
                tr["newton"].append(np.array([m[0], m[0] - acc_step[0]]))
        nacc = int(anyok.sum())
        n_lily += nacc
        n_newton += nacc
        n_rej += int(np.sum(~ok & (np.arange(_N_PROPOSALS) > np.where(anyok, j, -1)[:, None])))
        m = np.where(anyok, m - acc_step, m)
        z = np.where(anyok, zacc, z)
        h = np.where(anyok, steps[rows, jj], h / 2.0 ** (_N_PROPOSALS - 2))
        bad = ~anyok & (h <= 1e-15 * np.maximum(np.abs(ta), 1e-300))
        leave = final | bad
        if np.any(leave):
            out_m[idx[leave]] = m[leave]
            out_log[idx[leave]] = kind[leave]
            failed[idx[bad]] = True
            keep = ~leave
            idx, ta, z, m, h = idx[keep], ta[keep], z[keep], m[keep], h[keep]
    if idx.size:
        out_m[idx] = m
        failed[idx] = True
    # Polish at the targets with the Newton map whose convergence the last test certified.
    m, used, path = _polish(ev, t, out_m, out_log)
    n_newton += used
    if record:
        tr["newton"][-1] = np.concatenate([tr["newton"][-1], np.array([p[0] for p in path[1:]])])
        tr["solutions"][-1] = m[0]
    f, *_ = _residual(eq, t, m, None)
    certified = ~failed & (np.abs(f) <= TOL_VERIFY)
    return SolveResult(m=m, u=None, certified=certified, verified=certified.copy(), n_lilypads=int(n_lily),
                       n_newton=int(n_newton), n_rejected=int(n_rej), trace=tr)


def solve(eq: Equation, targets, scale: float, record: bool = False, max_rounds: int = MAX_ROUNDS) -> SolveResult:
    """Solve ``M(t)`` for every target ``t`` (``Im t >= 0``) by lilypad continuation.

    ``scale`` is a size of the spectrum (``lambda_max``) used to place the starting points.
    With ``record=True`` (one target) the chain is returned in ``trace``: the recorded path is
    the same algorithm as the fast one.
    """
    t = np.atleast_1d(np.asarray(targets, dtype=complex))
    if eq.rational:
        return _solve_rational(eq, t, max(scale, abs(eq.mean)), record, max_rounds)
    return _solve_general(eq, t, max(scale, abs(eq.mean)), record, max_rounds)


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

    def __init__(self, eq: Equation):
        self.eq = eq
        K = max(len(g.values) for g in eq.ugroups)
        G = len(eq.ugroups)
        self.V = np.zeros((G, K))
        self.W = np.zeros((G, K))
        for i, g in enumerate(eq.ugroups):
            self.V[i, : len(g.values)] = g.values
            self.W[i, : len(g.values)] = g.weights
        self.k = np.array([g.k for g in eq.ugroups])
        self.n = np.array([float(g.n) for g in eq.ugroups])
        self.mu = np.array([g.law.mean for g in eq.ugroups])
        self.roots = eq.roots.astype(complex)

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

    def newton(self, z, m, u, iters, tol=1e-13):
        """Joint Newton; returns m, u, converged, |r_0|, max relative |r_g|, steps, iterates of m."""
        n = m.shape[0]
        conv = np.zeros(n, dtype=bool)
        path = [m.copy()]
        used = 0
        with np.errstate(all="ignore"):
            for _ in range(iters):
                r0, gp, rg, a = self.residual(z, m, u)
                c = self.n / (u * a)
                dm = -(r0 - np.sum(c * rg, axis=1)) / (gp + c @ self.k)
                du = (self.k * dm[:, None] - rg) / a
                bad = ~(np.isfinite(dm) & np.all(np.isfinite(du), axis=1))
                dm = np.where(bad, 0.0, dm)
                du = np.where(bad[:, None], 0.0, du)
                m = m + dm
                u = u + du
                used += 1
                path.append(m.copy())
                conv = ~bad & (np.abs(dm) <= tol * np.abs(m)) & np.all(np.abs(du) <= tol * np.abs(u), axis=1)
                if np.all(conv | bad):
                    break
            r0, gp, rg, a = self.residual(z, m, u)
            inner = np.max(np.abs(rg) / np.maximum(np.abs(self.k * m[:, None]), 1e-300), axis=1)
        return m, u, conv, np.abs(r0), inner, used, path


def _solve_general(eq: Equation, t: np.ndarray, scale: float, record: bool, max_rounds: int) -> SolveResult:
    """Continuation for equations with non-rational ``D^2`` factors, verified a posteriori.

    Same chain as the rational solver (start far above the target, walk straight to it), but a
    step is accepted when joint Newton from the previous solution converges at the new point to a
    residual ``<= 1e-10`` on the physical side (``Im m <= 0``) close to where it started.
    """
    n = t.shape[0]
    ev = _General(eq)
    Y = _start_height(eq, t.real, scale)
    z = t + 1j * Y
    m = eq.mean / z
    m, u, conv, res, inner, used, _ = ev.newton(z, m, ev.start_u(m), 12)
    n_newton = used * n
    h = np.abs(t - z) / 4.0
    idx = np.arange(n)
    ta = t.copy()
    out_m = np.empty(n, dtype=complex)
    out_u = np.empty((n, len(eq.ugroups)), dtype=complex)
    failed = np.zeros(n, dtype=bool)
    n_lily, n_rej = n, 0
    tr = None
    if record:
        tr = dict(centres=[z[0]], solutions=[m[0]], eta=[np.nan], rejected=[], rejected_from=[],
                  newton=[np.array([m[0]])])
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
        ok = conv & (res <= TOL_VERIFY) & (inn <= TOL_VERIFY) & (mn.imag <= 1e-12 * np.abs(mn))
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
    _, _, _, res, inner, _, _ = ev.newton(t, out_m, out_u, 0)
    verified = ~failed & (res <= TOL_VERIFY) & (inner <= TOL_VERIFY) & (out_m.imag <= 1e-12 * np.abs(out_m))
    return SolveResult(m=out_m, u=out_u, certified=np.zeros(n, dtype=bool), verified=verified,
                       n_lilypads=int(n_lily), n_newton=int(n_newton), n_rejected=int(n_rej), trace=tr)
