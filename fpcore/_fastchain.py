"""Compiled lilypad chains for rational equations (numba), one grid point after another.

The vectorised solver of :mod:`fpcore._lilypad` pays numpy's per-call overhead on every round of
its walks (about 17 rounds at depth 20, 34 at depth 1). Here each point is a scalar loop in
compiled code: the first point of a support interval walks down from far above, every other
point walks along the real axis from its solved left neighbour (MATH.md section 4: neighbouring
grid points are certified starts for each other). A point whose walk fails is reported and
redone by the vectorised solver.

Every accepted step passes the Kantorovich test of the log-form Newton map

    g(m) = log z - log C - sum_j e_j log(m - a_j),   g'(m) = -sum_j e_j / (m - a_j),

with ``eta = |g / g'|`` and ``K = sum_j |e_j| / (|m - a_j| - 2 eta)^2 >= sup |g''|`` on
``B(m, 2 eta)``: certified when ``eta K <= |g'| / 2``. The logarithms take their cuts straight up
from each root (arguments in ``(-3 pi/2, pi/2]``), and the ball must keep clear of them, so one
branch of ``g`` (shifted by the ``2 pi i k`` nearest to 0 at the centre) is analytic on the ball;
Newton then runs to ``|dm| <= 4 eps |m|`` (or to the rounding floor of ``g``) inside it.

Non-rational equations (leaky ReLU, smooth activations; Gaussian weights) are solved along the
sorted grid in one sweep (:func:`grid_general`): the first point of each support interval walks
down from far above (:func:`vertical_general`), every next point starts from the cubic (or
quadratic, or secant) prediction through its left neighbours and must converge by a contracting
Newton run close to it; a point that fails walks from its left neighbour, then from far above; a point next to a
gap (``M`` real there) walks from it through the upper half-plane, then from far above. Each accepted point passes the a-posteriori checks of
``_gchain``. Long laws of ``D^2`` (GELU, SiLU) are swept with their 40-point Gauss rules.

The support edges of non-rational equations (:func:`log_inverse_real`), the start height, the
CDF's tail mass and the Gauss rules themselves are compiled here too.

Compiled with ``cache=True``: the first call in a fresh environment compiles (a few seconds),
later processes load the cached machine code (``benchmarks/bench_spectrum.py`` prints both).
The cache of every kernel is keyed to the sources of all kernel modules (:data:`_KERNEL_MODULES`),
not only its own file: kernels call each other across files, and a kernel compiled against an
older callee gave other results than a fresh compile.
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np

try:  # numba is a dependency; without it the vectorised solver does all the work
    import numba

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only in environments without numba
    _HAVE_NUMBA = False

_TWO_PI = 2.0 * math.pi
_EPS4 = 4.0 * np.finfo(float).eps
_FLOOR = 1e-8  # Newton steps below this (relative) are in the quadratic regime
_STALL = 1e3  # joint Newton: steps that stop contracting below _STALL * tol are the rounding floor
_RES_FLOOR = 16.0  # residuals within this many times the floats' floor near m (_mfloor) are zero


# The modules whose compiled kernels call each other (or read each other's constants). numba's
# on-disk cache (``cache=True``) checks only the source of the function's own file: a kernel of
# _gaps.py cached before an edit of _fastchain._grid_point kept the old _grid_point compiled into
# it, so a process loading that cache computed other spectra than one compiling afresh (leaky ReLU,
# orthogonal, L = 2: 2808 Newton steps and other bits instead of 2778). Every cached kernel's
# stamp therefore also holds a digest of all these files (:func:`_stamped`): an edit of any of
# them recompiles all kernels. A module with kernels, or whose names a kernel uses, belongs here
# (tests/test_determinism.py checks it).
_KERNEL_MODULES = ("_fastchain", "_gaps", "_lawkernels", "_basins")


def _kernel_digest(directory: str | None = None) -> str:
    """SHA-256 of the sources of :data:`_KERNEL_MODULES` (in ``directory``, default this package)."""
    d = os.path.dirname(os.path.abspath(__file__)) if directory is None else directory
    h = hashlib.sha256()
    for name in _KERNEL_MODULES:
        h.update(name.encode() + b"\0")
        try:
            with open(os.path.join(d, name + ".py"), "rb") as f:
                h.update(f.read())
        except OSError:  # pragma: no cover - sources not on disk (zip import): numba caches nothing then
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


_KERNEL_DIGEST = _kernel_digest() if _HAVE_NUMBA else ""


def _stamped(disp):
    """``disp`` (a numba dispatcher with ``cache=True``) with :data:`_KERNEL_DIGEST` added to the
    source stamp its cache index is written with and checked against: a cache written from other
    sources of the kernel modules is not loaded (see :data:`_KERNEL_MODULES`)."""
    cache_file = getattr(getattr(disp, "_cache", None), "_cache_file", None)
    stamp = getattr(cache_file, "_source_stamp", None)
    if stamp is not None:
        cache_file._source_stamp = (stamp, _KERNEL_DIGEST)
    return disp


def _jit(fn):
    # numpy's error model: a division by zero gives inf/nan (caught by the callers' finiteness
    # checks) instead of raising inside compiled code -- a float division only: numba raises
    # ZeroDivisionError on a complex division by zero under either model (see _gwalk)
    return _stamped(numba.njit(cache=True, nogil=True, error_model="numpy")(fn)) if _HAVE_NUMBA else fn


def _jit_fast(fn):
    """:func:`_jit` with reassociated sums (no assumption on NaN/inf): inner loops over atoms."""
    if not _HAVE_NUMBA:
        return fn
    return _stamped(numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract", "arcp"})(fn))


@_jit
def _mag(x):
    """``|x|`` by one square root where ``|x|^2`` is safely inside the float range (libm's
    ``hypot``, which ``abs`` calls, elsewhere: several times slower)."""
    d = x.real * x.real + x.imag * x.imag
    if d > 1e-290 and d < 1e290:
        return math.sqrt(d)
    return abs(x)


@_jit
def _g(z, m, a, e, log_c):
    """``g``, ``g'``, the distance to the nearest root and to the nearest cut."""
    s = 0.0 + 0.0j
    gp = 0.0 + 0.0j
    dmin = np.inf
    cut = np.inf
    for j in range(a.size):
        d = m - a[j]
        ad = abs(d)
        if ad == 0.0:  # numba raises on complex division by zero: report a failed test instead
            return complex(np.nan, np.nan), complex(np.nan, np.nan), 0.0, 0.0
        ang = math.atan2(d.imag, d.real)
        if ang > 0.5 * math.pi:
            ang -= _TWO_PI
        s += e[j] * complex(math.log(ad), ang)
        gp -= e[j] / d
        dmin = min(dmin, ad)
        cut = min(cut, ad if m.imag <= 0.0 else abs(m.real - a[j]))
    g = complex(math.log(abs(z)), math.atan2(z.imag, z.real)) - log_c - s
    return g, gp, dmin, cut


@_jit
def _lip_bound(m, r, a, e):
    r"""A bound of ``|g''(w)| = |sum_j e_j / (w - a_j)^2|`` on the ball ``|w - m| <= r`` (every root
    outside it; ``d_j = |m - a_j| - r > 0``): the smallest of three, each summing the same terms
    grouped differently.

    * term by term: ``sum_j |e_j| / d_j^2``;
    * neighbouring roots of opposite exponents (``e_{j+1} = -e_j``, taken in pairs in their order:
      tapered nets, each factor ``m - a`` of a layer's law next to the ``(m - b)^{-1}`` of its
      width change) relative to each other, ``e (1 / (w - a)^2 - 1 / (w - b)^2) = e (b - a)
      (2 w - a - b) / ((w - a)^2 (w - b)^2)``, at most ``|e| |a - b| (2 (|m - b| + r) + |a - b|) /
      (d_a^2 d_b^2)`` (the smaller of that and the two plain terms);
    * relative to the root ``c`` of largest ``|e| > 1`` (deep hard-tanh nets: 50 roots near ``-1``
      with exponents ``+1`` and ``-1`` itself with ``-49``): for any set ``C`` of roots,
      ``sum_C e_j / (w - a_j)^2 = E_C / (w - c)^2 + sum_C e_j (a_j - c) (2 w - a_j - c) /
      ((w - a_j)^2 (w - c)^2)`` (``E_C = sum_C e_j``), so with ``D = |m - c| - r`` the terms of
      ``C`` cost ``|E_C| / D^2 + sum_C |e_j| |a_j - c| (2 (|m - c| + r) + |a_j - c|) / (d_j^2 D^2)``;
      ``C`` takes each root whose relative term is below its plain one.

    Where such roots nearly cancel the plain sum is some ``L`` times ``|g''|`` and the lilypads
    as much smaller (hard-tanh, orthogonal, ``L = 50``: 2751 lilypads on the square net's grid
    and 7254 on the tapered one's, 1065 and 1148 with this bound)."""
    ad, adc, ic = _lip_prep(m, a, e)
    return _lip_eval(ad, adc, ic, r, e)


@_jit
def _lip_prep(m, a, e):
    """What :func:`_lip_bound` needs of the centre ``m`` (for many radii, :func:`_disk_gamma`):
    ``|m - a_j|``, the gaps ``|a_{j-1} - a_j|`` (first slot ``|a_j - c|`` after them: see
    :func:`_lip_eval`), and the index ``ic`` of the root of largest ``|e| > 1`` (-1: none)."""
    J = a.size
    ic = -1
    emax = 1.0
    for j in range(J):
        if abs(e[j]) > emax:
            emax = abs(e[j])
            ic = j
    ad = np.empty(J)
    adc = np.empty(2 * J)
    for j in range(J):
        ad[j] = abs(m - a[j])
        adc[j] = abs(a[j] - a[j - 1]) if j > 0 else 0.0
        adc[J + j] = abs(a[j] - a[ic]) if ic >= 0 else 0.0
    return ad, adc, ic


@_jit
def _lip_eval(ad, adc, ic, r, e):
    """:func:`_lip_bound` from :func:`_lip_prep`'s distances (real arithmetic only)."""
    J = ad.size
    Dc = ad[ic] if ic >= 0 else 0.0
    D = Dc - r
    centre = ic >= 0 and D > 0.0
    plain = 0.0
    paired = 0.0
    EC = 0.0
    rel = 0.0
    rest = 0.0
    pend = False  # the previous root is still unpaired: its plain term, distance, exponent
    pp = 0.0
    pd = 0.0
    pe = 0.0
    for j in range(J):
        d = ad[j] - r
        pj = abs(e[j]) / (d * d)
        plain += pj
        if pend and e[j] == -pe:
            dab = adc[j]
            paired += min(pp + pj, abs(pe) * dab * (2.0 * (ad[j] + r) + dab) / (pd * pd * d * d))
            pend = False
        else:
            if pend:
                paired += pp
            pend = True
            pp, pd, pe = pj, d, e[j]
        if centre:
            dc = adc[J + j]
            rj = abs(e[j]) * dc * (2.0 * (Dc + r) + dc) / (d * d * D * D)
            if rj < pj:
                EC += e[j]
                rel += rj
            else:
                rest += pj
    if pend:
        paired += pp
    K = min(plain, paired)
    if centre:
        K = min(K, abs(EC) / (D * D) + rel + rest)
    return K


@_jit
def _test_g(z, m, a, e, log_c):
    """Kantorovich test of the log-form Newton map at ``z`` from ``m``: (ok, branch shift, ``g``
    on that branch, ``g'``) -- ``g / g'`` is the first Newton step."""
    g, gp, dmin, cut = _g(z, m, a, e, log_c)
    k = math.floor(g.imag / _TWO_PI + 0.5)
    g = g - 1j * _TWO_PI * k
    agp = abs(gp)
    if not (agp > 0.0) or not math.isfinite(agp):
        return False, k, g, gp
    eta = abs(g) / agp
    r = 2.0 * eta
    if not (r < cut) or not (r < dmin):
        return False, k, g, gp
    K = _lip_bound(m, r, a, e)
    return eta * K <= 0.5 * agp, k, g, gp


@_jit
def _test(z, m, a, e, log_c):
    """Kantorovich test of the log-form Newton map at ``z`` from ``m``: (ok, branch shift)."""
    ok, k, g, gp = _test_g(z, m, a, e, log_c)
    return ok, k


@_jit
def _certified_newton(z, m, k, g, gp, a, e, log_c, max_iter):
    """:func:`_newton` after a passed test whose ``g``, ``g'`` at ``m`` give the first step (the
    same arithmetic as its first iteration, without evaluating ``g`` twice)."""
    dm = g / gp
    m = m - dm
    adm = abs(dm)
    if adm <= _EPS4 * abs(m):
        return m, 1
    m, used = _newton(z, m, k, a, e, log_c, max_iter - 1, adm)
    return m, used + 1


@_jit
def _newton(z, m, k, a, e, log_c, max_iter, prev):
    """Newton on the branch ``g - 2 pi i k`` (inside a certified ball) after a step of size ``prev``
    (``inf``: none yet); returns m, iterations.

    Stops at ``|dm| <= 4 eps |m|``, or at the rounding floor of ``g`` (a sum of ``L`` logarithms
    can keep ``|dm|`` above ``4 eps |m|``): once a step of at most ``1e-8 |m|`` is not followed by
    one at least twice shorter -- in the certified ball Newton converges quadratically, so such a
    step is rounding noise."""
    for it in range(max_iter):
        g, gp, dmin, cut = _g(z, m, a, e, log_c)
        if not (abs(gp) > 0.0):
            return m, max_iter
        dm = (g - 1j * _TWO_PI * k) / gp
        m = m - dm
        adm = abs(dm)
        if adm <= _EPS4 * abs(m) or (prev <= _FLOOR * abs(m) and adm > 0.5 * prev):
            return m, it + 1
        prev = adm
    return m, max_iter


@_jit
def _propose(z, t, h):
    """The next proposal of a walk from ``z`` to ``t`` with step ``h``: (point, step, final)."""
    dist = abs(t - z)
    step = min(h, dist)
    final = step >= dist
    return (t if final else z + (t - z) * (step / dist)), step, final


@_jit
def _resize(ok, step, t):
    """The walks' step rule: doubled after an accepted proposal, quartered after a rejected one;
    (new step, give up) -- the walk gives up below ``1e-15 |t|``."""
    if ok:
        return 2.0 * step, False
    h = step / 4.0
    return h, h <= 1e-15 * max(abs(t), 1e-300)


@_jit
def _disk_gamma(m, a, e, log_c, exact):
    """The lilypad of ``m``: every ``z'`` with ``|g(z')| <= gamma`` passes :func:`_test_g` from
    ``m`` (``eta K(eta)`` grows with ``eta = |g| / |g'|``). Closed form from
    ``sum |e_j| / (d_j - r)^2 <= S_2 / (1 - r/d)^2`` (``d`` the distance to the nearest root or cut,
    a lower bound), or, with ``exact``, the largest admissible ``eta`` by bisection on the exact
    bound of the test. Returns gamma and ``|g|`` at the centre (for ``z``: see :func:`_walk`)."""
    dmin = np.inf
    cut = np.inf
    S2 = 0.0
    gp = 0.0 + 0.0j
    for j in range(a.size):
        d = m - a[j]
        ad = abs(d)
        if ad == 0.0:
            return 0.0
        gp -= e[j] / d
        S2 += abs(e[j]) / (ad * ad)
        dmin = min(dmin, ad)
        cut = min(cut, ad if m.imag <= 0.0 else abs(m.real - a[j]))
    agp = abs(gp)
    d = min(dmin, cut)
    if not (agp > 0.0) or not (S2 > 0.0) or not (d > 0.0):
        return 0.0
    A = agp / (d * S2)
    rho = ((2.0 * A + 1.0) - math.sqrt(4.0 * A + 1.0)) / (2.0 * A) if A > 1e-8 else A
    lo = 0.999 * rho * d / 2.0
    if exact:
        hi = 0.5 * d
        ad, adc, ic = _lip_prep(m, a, e)
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            r = 2.0 * mid
            K = _lip_eval(ad, adc, ic, r, e)
            if r < d and mid * K <= 0.5 * agp:
                lo = mid
            else:
                hi = mid
    return lo * agp


@_jit
def _disk_radius(z, m, a, e, log_c, exact):
    """Radius of the certified disk around ``z`` for the start ``m`` (as
    ``_lilypad._Rational.disk_radius``): ``g(z') = g(z) + log(z'/z)`` and
    ``|log(1 + x)| <= -log(1 - |x|)`` give ``R = |z| (1 - exp(|g(z)| - gamma))``."""
    gamma = _disk_gamma(m, a, e, log_c, exact)
    g, gp, dmin, cut = _g(z, m, a, e, log_c)
    g = g - 1j * _TWO_PI * math.floor(g.imag / _TWO_PI + 0.5)
    ag = abs(g)
    if not (gamma > ag):
        return 0.0
    return -abs(z) * math.expm1(ag - gamma)


@_jit
def _walk(z, m, t, a, e, log_c, max_rounds, counts, worst):
    """Certified walk from a solution ``m`` at ``z`` to the target ``t`` (step doubled after an
    accepted proposal, quartered after a rejected one). Every accepted step stays inside the
    current lilypad (:func:`_disk_radius`: the disk around ``z`` on which ``m`` is a certified
    start), so that the chain's disks contain the next centres; ``worst[0]`` keeps the largest
    step / radius. counts: lilypads, Newton, rejected."""
    h = abs(t - z)
    R_lb = -1.0  # the current centre's radii (closed form, exact), computed on demand
    R_ex = -1.0
    for _ in range(max_rounds):
        if t == z:
            return m, True
        zn, step, final = _propose(z, t, h)
        ok, k, g, gp = _test_g(zn, m, a, e, log_c)
        if ok:
            if R_lb < 0.0:
                R_lb = _disk_radius(z, m, a, e, log_c, False)
            R = R_lb
            if step > R_lb:
                if R_ex < 0.0:
                    R_ex = max(_disk_radius(z, m, a, e, log_c, True), R_lb)
                R = R_ex
                if step > R_ex:  # the test passes out there, but outside the lilypad: stop at its rim
                    step = R_ex * (1.0 - 1e-9)
                    final = False
                    zn = z + (t - z) * (step / abs(t - z))
                    ok, k, g, gp = _test_g(zn, m, a, e, log_c)
            if ok and step > 0.0:
                worst[0] = max(worst[0], step / R)
            ok = ok and step > 0.0
        if ok:
            m, used = _certified_newton(zn, m, k, g, gp, a, e, log_c, 60)
            counts[0] += 1
            counts[1] += used
            z = zn
            R_lb = -1.0
            R_ex = -1.0
            if final:
                return m, True
        else:
            counts[2] += 1
        h, stuck = _resize(ok, step, t)
        if stuck:
            return m, False
    return m, False


@_jit
def _walk_inverted(z, m, t, b, eb, log_cb, max_rounds, counts, worst):
    """:func:`_walk` along the real axis in the coordinate ``w = 1 / conj(m)``: for real ``z``,
    ``M^{-1}(m) = z`` iff ``M^{-1}(1 / w) = z``, again a product ``C' prod (w - b_j)^{e_j}`` (roots
    ``b``), and ``Im w <= 0`` keeps ``w`` clear of the cuts as ``m`` is. Near an edge where ``|m|``
    grows without bound (``M^{-1}(infinity)`` finite), ``w`` has an ordinary square-root edge."""
    w, good = _walk(z, 1.0 / m.conjugate(), t, b, eb, log_cb, max_rounds, counts, worst)
    return 1.0 / w.conjugate(), good


@_jit
def grid_chain(x, groups, Y, mean, s1, a, e, log_c, b, eb, log_cb, max_rounds):
    """Solve ``M(x_i + i0)`` along a sorted grid (``groups``: one label per support interval).

    Each point walks from its left neighbour in ``m``, or, where that fails, in ``w = 1 / conj(m)``
    (``b``, ``eb``, ``log_cb``: the inverted product, :func:`_walk_inverted`); ``w`` is tried
    first where ``|m| > 1`` at the previous point. Returns the solutions, a certified mask, the
    counts (lilypads, Newton steps, rejected) and the largest step / lilypad radius (at most 1:
    every next centre lies in the current certified disk).
    """
    n = x.size
    out = np.empty(n, dtype=np.complex128)
    ok = np.zeros(n, dtype=np.bool_)
    counts = np.zeros(3, dtype=np.int64)
    worst = np.zeros(1)
    for i in range(n):
        t = complex(x[i], 0.0)
        if i > 0 and groups[i] == groups[i - 1] and ok[i - 1]:
            z = complex(x[i - 1], 0.0)
            good = False
            # large |m| (an edge where M^{-1}(m) tends to a finite limit as m -> infinity): w first
            inverted = abs(out[i - 1]) > 1.0
            for attempt in range(2):
                if inverted:
                    m, good = _walk_inverted(z, out[i - 1], t, b, eb, log_cb, max_rounds, counts, worst)
                else:
                    m, good = _walk(z, out[i - 1], t, a, e, log_c, max_rounds, counts, worst)
                if good:
                    break
                inverted = not inverted
            if good:
                out[i] = m
                ok[i] = True
                continue
        # from far above: m = mean / (z - s1) is a certified start at height Y
        z0 = complex(x[i], Y)
        m0 = mean / (z0 - s1)
        good0, k, g, gp = _test_g(z0, m0, a, e, log_c)
        out[i] = m0
        if not good0:
            continue
        m0, used = _certified_newton(z0, m0, k, g, gp, a, e, log_c, 60)
        counts[0] += 1
        counts[1] += used
        m, good = _walk(z0, m0, t, a, e, log_c, max_rounds, counts, worst)
        out[i] = m
        ok[i] = good
    return out, ok, counts, worst[0]


@_jit
def near_chain(z0, m0, t, a, e, log_c, b, eb, log_cb, max_rounds):
    """Certified walks along the real axis from known solutions ``m0`` at ``z0`` to the targets
    ``t`` (all real; ``fpcore._lilypad.solve_near``), in ``m`` or in ``w = 1 / conj(m)`` as
    :func:`grid_chain` walks from a grid neighbour (``w`` first where ``|m0| > 1``: near an edge
    where ``|M|`` grows without bound, ``M^{-1}`` at ``m = infinity``, the lilypads in ``m``
    shrink to some 1 / |m|^2 of the distance to the edge, in ``w`` they stay a fixed share of it).
    Returns the solutions, the arrived mask and the counts (lilypads, Newton, rejected)."""
    n = t.size
    out = np.empty(n, dtype=np.complex128)
    ok = np.zeros(n, dtype=np.bool_)
    counts = np.zeros(3, dtype=np.int64)
    worst = np.zeros(1)
    for i in range(n):
        inverted = abs(m0[i]) > 1.0
        m = m0[i]
        good = False
        for attempt in range(2):
            if inverted:
                m, good = _walk_inverted(z0[i], m0[i], t[i], b, eb, log_cb, max_rounds, counts, worst)
            else:
                m, good = _walk(z0[i], m0[i], t[i], a, e, log_c, max_rounds, counts, worst)
            if good:
                break
            inverted = not inverted
        out[i] = m
        ok[i] = good
    return out, ok, counts


@_jit
def residual_abs(t, m, a, e, log_c):
    """``|f|`` of :func:`fpcore._lilypad._residual` (``f = z Q(m) / (C P(m)) - 1``, evaluated
    through logarithms with principal arguments) at each target ``t_i`` and solution ``m_i``."""
    out = np.empty(t.size)
    for i in range(t.size):
        z = t[i]
        lr = complex(math.log(abs(z)), math.atan2(z.imag, z.real)) - log_c
        for j in range(a.size):
            d = m[i] - a[j]
            lr -= e[j] * complex(math.log(abs(d)), math.atan2(d.imag, d.real))
        re = min(lr.real, 700.0)
        rho = math.exp(re) * complex(math.cos(lr.imag), math.sin(lr.imag))
        out[i] = abs(rho - 1.0)
    return out


@_jit
def start_height(xs, scale, mean, s1, a, e, log_c):
    """Smallest ``Y = scale/2 * 2^k`` at which ``mean / (z - s1)`` passes the test at every
    ``z = x + i Y``, ``x`` in ``xs`` (0 if none is found within 2000 doublings)."""
    Y = max(0.5 * scale, 1e-300)
    for _ in range(2000):
        good = True
        for x in xs:
            z = complex(x, Y)
            ok, k = _test(z, mean / (z - s1), a, e, log_c)
            if not ok:
                good = False
                break
        if good:
            return Y
        Y *= 2.0
    return 0.0


@_jit
def _slope(m, a, e):
    s = 0.0
    for j in range(a.size):
        s += e[j] / (m - a[j])
    return s


@_jit
def critical_points(lo, hi, a, e):
    """Zeros of ``d/dm log|M^{-1}|`` in each bracket ``[lo_i, hi_i]`` (a sign change), by bisection
    to ``1e-15`` relative."""
    out = np.empty(lo.size)
    for i in range(lo.size):
        l, h = lo[i], hi[i]
        sl = _slope(l, a, e)
        for _ in range(200):
            mid = 0.5 * (l + h)
            if mid <= l or mid >= h or h - l <= 1e-15 * max(abs(mid), 1e-300):
                break
            sm = _slope(mid, a, e)
            if (sm > 0.0) == (sl > 0.0):
                l, sl = mid, sm
            else:
                h = mid
        out[i] = 0.5 * (l + h)
    return out


@_jit
def _log_inverse_sign(m, a, e, log_c):
    """``log|M^{-1}(m)|`` and the sign of ``M^{-1}(m)`` for real ``m`` (rational equations)."""
    v = log_c
    sg = 1.0
    for j in range(a.size):
        d = m - a[j]
        v += e[j] * math.log(abs(d))
        if d < 0.0 and abs(e[j]) % 2.0 != 0.0:
            sg = -sg
        elif d == 0.0:
            sg = np.nan
    return v, sg


@_jit
def scan_critical(a, e, log_c, n_bounded, n_unbounded, which):
    """Every critical point of ``log|M^{-1}|`` on the real line where ``M^{-1} > 0``.

    Each interval between consecutive roots ``a`` (sorted increasing) is scanned for sign changes
    of the slope on ``n_bounded`` points that cluster at both ends (``tanh`` spacing over
    ``[-14, 14]``), each unbounded one on ``n_unbounded`` points ``exp(-40 .. 40)`` away from
    its root; each sign change is refined by bisection (:func:`critical_points`).

    ``which`` lists the intervals to scan by their index ``j``: ``(a_{j-1}, a_j)``, ``0`` left of
    every root, ``a.size`` right of every root. Returns the critical points, ``log M^{-1}`` there
    and the index of their interval.
    """
    nr = a.size
    cap = (nr + 1) * max(n_bounded, n_unbounded)
    mc = np.empty(cap)
    vc = np.empty(cap)
    ic = np.empty(cap, dtype=np.int64)
    cnt = 0
    lo1 = np.empty(1)
    hi1 = np.empty(1)
    for j in which:
        if nr == 0:
            break
        n = n_unbounded if (j == 0 or j == nr) else n_bounded
        # M^{-1} keeps its sign between two roots: skip the intervals where it is negative
        inner = a[0] - 1.0 if j == 0 else (a[nr - 1] + 1.0 if j == nr else 0.5 * (a[j - 1] + a[j]))
        if not (_log_inverse_sign(inner, a, e, log_c)[1] > 0.0):
            continue
        prev_m = 0.0
        prev_s = np.nan
        for k in range(n):
            if j == 0:
                m = a[0] - math.exp(40.0 - 80.0 * k / (n - 1))
            elif j == nr:
                m = a[nr - 1] + math.exp(-40.0 + 80.0 * k / (n - 1))
            else:
                lo, hi = a[j - 1], a[j]
                s = -14.0 + 28.0 * k / (n - 1)
                m = lo + (hi - lo) * 0.5 * (1.0 + math.tanh(s))
                if not (m > lo and m < hi):
                    continue
            sl = _slope(m, a, e)
            if math.isfinite(sl) and math.isfinite(prev_s) and np.sign(sl) != np.sign(prev_s):
                lo1[0] = prev_m
                hi1[0] = m
                c = critical_points(lo1, hi1, a, e)[0]
                vcv, sgc = _log_inverse_sign(c, a, e, log_c)
                if sgc > 0.0 and math.isfinite(vcv):
                    mc[cnt] = c
                    vc[cnt] = vcv
                    ic[cnt] = j
                    cnt += 1
            prev_m, prev_s = m, sl
    return mc[:cnt], vc[:cnt], ic[:cnt]


# -- non-rational equations: joint Newton on (m, u_1, ..., u_G), verified a posteriori ---------
@_jit
def _cut_arg(w):
    ang = math.atan2(w.imag, w.real)
    if ang > 0.5 * math.pi:
        ang -= _TWO_PI
    return ang


@_jit_fast
def _psi_sums_real(ur, ui, v, w):
    """``sum_k w_k v_k / (1 - u v_k)`` and ``sum_k w_k v_k / (1 - u v_k)^2`` in real arithmetic
    (one real division per atom; reassociated sums vectorise). Zero-weight padding atoms add 0."""
    s_r = 0.0
    s_i = 0.0
    d_r = 0.0
    d_i = 0.0
    for k in range(v.size):
        vk = v[k]
        qr = 1.0 - ur * vk
        qi = -ui * vk
        inv = 1.0 / (qr * qr + qi * qi)
        c = w[k] * vk * inv
        rr = qr * c  # w v / q = w v conj(q) / |q|^2
        ri = -qi * c
        s_r += rr
        s_i += ri
        d_r += (rr * qr + ri * qi) * inv  # (w v / q) / q
        d_i += (ri * qr - rr * qi) * inv
    return complex(s_r, s_i), complex(d_r, d_i)


@_jit_fast
def _psi_sums_complex(ur, ui, v, w):
    """:func:`_psi_sums_real` for complex atoms and weights (contour rules of continuous laws)."""
    s_r = 0.0
    s_i = 0.0
    d_r = 0.0
    d_i = 0.0
    for k in range(v.size):
        vr = v[k].real
        vi = v[k].imag
        wr = w[k].real
        wi = w[k].imag
        qr = 1.0 - ur * vr + ui * vi
        qi = -(ur * vi + ui * vr)
        inv = 1.0 / (qr * qr + qi * qi)
        cr = (wr * vr - wi * vi) * inv
        ci = (wr * vi + wi * vr) * inv
        rr = cr * qr + ci * qi
        ri = ci * qr - cr * qi
        s_r += rr
        s_i += ri
        d_r += (rr * qr + ri * qi) * inv
        d_i += (ri * qr - rr * qi) * inv
    return complex(s_r, s_i), complex(d_r, d_i)


@_jit_fast
def _psi_sums_packed(ur, ui, p, kn):
    """:func:`_psi_sums_complex` for a law packed by :func:`_pack_laws` (rows ``Re v``, ``Im v``,
    ``Re wv``, ``Im wv``): four contiguous real rows vectorise where interleaved complex atoms
    do not, and ``w v`` is formed once per law instead of at every evaluation. Only the first
    ``kn`` atoms (the law's own, without the zero padding to the longest law of the equation)."""
    vr_ = p[0]
    vi_ = p[1]
    wr_ = p[2]
    wi_ = p[3]
    s_r = 0.0
    s_i = 0.0
    d_r = 0.0
    d_i = 0.0
    for k in range(kn):
        vr = vr_[k]
        vi = vi_[k]
        qr = 1.0 - ur * vr + ui * vi
        qi = -(ur * vi + ui * vr)
        inv = 1.0 / (qr * qr + qi * qi)
        cr = wr_[k] * inv
        ci = wi_[k] * inv
        rr = cr * qr + ci * qi
        ri = ci * qr - cr * qi
        s_r += rr
        s_i += ri
        d_r += (rr * qr + ri * qi) * inv
        d_i += (ri * qr - rr * qi) * inv
    return complex(s_r, s_i), complex(d_r, d_i)


def _pack_laws(V, W):
    """The laws ``(V, W)`` (one row per group) as the sweep's sums read them: complex atoms packed
    into one real array ``(G, 4, K)`` of rows ``Re v``, ``Im v``, ``Re wv``, ``Im wv``, returned
    with the number of atoms of each law (up to its last non-zero weight, :func:`live_sizes`) in
    place of ``W`` (:func:`_psi_sums` and :func:`_psi_terms` read the pair: the zero padding to
    the longest law, a quarter of the atoms of tanh's contour rules, is not summed); real atoms and
    packed laws as they are."""
    if V.ndim == 3 or not np.iscomplexobj(V):
        return V, W
    P = np.empty((V.shape[0], 4, V.shape[1]))
    WV = W * V
    P[:, 0], P[:, 1], P[:, 2], P[:, 3] = V.real, V.imag, WV.real, WV.imag
    return P, live_sizes(W)


def _psi_sums(ur, ui, v, w):
    """``sum_k w_k v_k / (1 - u v_k)`` and ``sum_k w_k v_k / (1 - u v_k)^2``: real atoms, complex
    ones or a packed law with its number of atoms ``w`` (chosen at compile time)."""
    if v.ndim == 2:
        return _psi_sums_packed(ur, ui, v, w)
    if np.iscomplexobj(v):
        return _psi_sums_complex(ur, ui, v, w)
    return _psi_sums_real(ur, ui, v, w)


@_jit
def _psi_terms_atoms(u, v, w):
    """``sum_k |w_k v_k u / (1 - u v_k)|`` over the atoms with ``1 - u v_k != 0`` (the size of the
    terms of ``psi(u)``, for its rounding error)."""
    # |w v u / q| as |w v| / |q| |u|: magnitudes by one square root each (_mag), no complex
    # division (the stall floor, _schur_floor, sums one term per atom, and libm's hypot behind
    # abs made the largest share of the time of the walks of the smooth nets' upper edges)
    t = 0.0
    au = _mag(u)
    for k in range(v.size):
        q = 1.0 - u * v[k]
        if q != 0.0:
            t += _mag(w[k] * v[k] + 0j) / _mag(q) * au
    return t


@_jit
def _psi_terms_packed(u, p, kn):
    """:func:`_psi_terms_atoms` for a packed law (:func:`_pack_laws`) of ``kn`` atoms."""
    t = 0.0
    au = _mag(u)
    for k in range(kn):
        q = 1.0 - u * complex(p[0, k], p[1, k])
        if q != 0.0:
            t += _mag(complex(p[2, k], p[3, k])) / _mag(q) * au
    return t


def _psi_terms(u, v, w):
    """:func:`_psi_terms_atoms` for atoms or a packed law (chosen at compile time)."""
    if v.ndim == 2:
        return _psi_terms_packed(u, v, w)
    return _psi_terms_atoms(u, v, w)


if _HAVE_NUMBA:
    from numba.extending import overload

    @overload(_psi_sums, jit_options={"cache": True})
    def _psi_sums_overload(ur, ui, v, w):
        if v.ndim == 2:
            return lambda ur, ui, v, w: _psi_sums_packed(ur, ui, v, w)
        if isinstance(v.dtype, numba.types.Complex):
            return lambda ur, ui, v, w: _psi_sums_complex(ur, ui, v, w)
        return lambda ur, ui, v, w: _psi_sums_real(ur, ui, v, w)

    @overload(_psi_terms, jit_options={"cache": True})
    def _psi_terms_overload(u, v, w):
        if v.ndim == 2:
            return lambda u, v, w: _psi_terms_packed(u, v, w)
        return lambda u, v, w: _psi_terms_atoms(u, v, w)

    @overload(_pack_laws, jit_options={"cache": True})
    def _pack_laws_overload(V, W):
        if V.ndim == 3 or not isinstance(V.dtype, numba.types.Complex):
            return lambda V, W: (V, W)

        def pack(V, W):
            G, K = V.shape
            P = np.empty((G, 4, K))
            for g in range(G):
                for k in range(K):
                    wv = W[g, k] * V[g, k]
                    P[g, 0, k] = V[g, k].real
                    P[g, 1, k] = V[g, k].imag
                    P[g, 2, k] = wv.real
                    P[g, 3, k] = wv.imag
            return P, live_sizes(W)
        return pack


@_jit
def _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps):
    """``r_0 = log z - log M^{-1}(m, u)`` and ``dr_0/dm`` (partial); fills ``r_g = psi_g(u_g) -
    k_g m`` and ``psi_g'(u_g)``."""
    r0 = complex(math.log(abs(z)), math.atan2(z.imag, z.real)) - log_c
    gp = 0.0 + 0.0j
    nan = complex(np.nan, np.nan)
    if m == 0.0:
        return nan, nan
    # The factors m^{-e_0} and u_g^{n_g} nearly cancel (u_g ~ k_g m / E[D_g^2]): summed apart,
    # their logs (each ~ n_g |log |m||) leave a rounding residue that grows with the depth and
    # exceeds the 1e-10 acceptance of a step near L = 1000. Summed as n_g log(u_g / m) plus
    # (sum_g n_g - e_0) log m, each term is O(1) (same branches: arg u_g - arg m, each cut as before).
    lam = math.log(abs(m))
    am = _cut_arg(m)
    e0 = 0.0
    for j in range(a.size):
        d = m - a[j]
        if d == 0.0:  # numba raises on complex division by zero: return NaN (a failed step)
            return nan, nan
        if a[j] == 0.0:
            e0 += e[j]
        else:
            r0 -= e[j] * complex(math.log(abs(d)), _cut_arg(d))
        gp -= e[j] / d
    ntot = 0.0
    aab = abs(m)
    for g in range(kk.size):
        ug = u[g]
        if ug == 0.0:
            return nan, nan
        rat = abs(ug) / aab
        lr = math.log(rat) if 0.0 < rat < np.inf else math.log(abs(ug)) - lam  # (float range)
        r0 += nn[g] * complex(lr, _cut_arg(ug) - am)
        ntot += nn[g]
        s, sd = _psi_sums(ug.real, ug.imag, V[g], W[g])
        rg[g] = ug * s - kk[g] * m
        dps[g] = sd
    r0 += (ntot - e0) * complex(lam, am)
    return r0, gp


@_jit
def _mfloor(m, a, e):
    """The change of ``r_0 = log z - log M^{-1}(m, u)`` when ``m`` moves by one rounding unit:
    ``eps sum_j |e_j| |m| / |m - a_j|``. Near a root ``a_j`` (``M(x) -> -1`` as ``x -> 0`` in nets
    with no atom at 0: ``|m + 1|`` reaches ``1e-8``) it exceeds any fixed tolerance: the floats
    near ``m`` do not hold a point with a smaller residual."""
    s = 0.0
    am = abs(m)
    for j in range(a.size):
        d = abs(m - a[j])
        if d > 0.0:
            s += abs(e[j]) * am / d
        elif e[j] != 0.0:
            return np.inf
    return 2.220446049250313e-16 * s


@_jit
def _schur_floor(m, u, den, V, W, kk, nn, dps):
    """The relative size of a joint Newton step made of rounding alone: one ulp of each ``u_g``
    moves ``r_g = psi_g(u_g) - k_g m`` by ``eps |u_g psi_g'(u_g)|`` (plus the rounding of
    ``psi_g``'s own terms), and the Schur complement ``den`` carries that into ``dm``. Next to an
    inverse-square-root edge (orthogonal leaky ReLU, square L = 2, near its top edge 4: ``M`` ~
    30, ``u_g`` within 0.02 of the pole of ``psi_g`` and ``den`` a cancellation) that is ``1e-12``
    of ``m``, above ``tol``, and Newton stalls there on a solution whose residuals are ``1e-15``."""
    eps = 2.220446049250313e-16
    G = kk.size
    noise0 = 0.0
    nrg = np.empty(G)
    for g in range(G):
        t = abs(u[g] * dps[g]) + _psi_terms(u[g], V[g], W[g])
        nrg[g] = eps * t
        noise0 += nn[g] * nrg[g] / abs(u[g] * dps[g])
    dm = noise0 / max(abs(den), 1e-300)
    fl = dm / max(abs(m), 1e-300)
    for g in range(G):
        fl = max(fl, (kk[g] * dm + nrg[g]) / max(abs(dps[g] * u[g]), 1e-300))
    return fl


_RES_ACCEPT = 1e-10  # the walks' and the sweep's a-posteriori bound on |r_0| and the inner residuals


@_jit
def _checked_residuals(z, m, u, r0, mr, same, a, e, log_c, V, W, kk, nn, rg, dps):
    """``|r_0|`` beyond its floor and the worst relative inner residual after a converged Newton
    run ending at ``(m, u)``, given ``r_0`` and ``r_g`` (in ``rg``) of its last evaluated iterate
    ``mr``. When that iterate is ``(m, u)`` itself (``same``: a run stopped at the rounding floor)
    they are those of ``m``; when ``m`` is one step of at most ``tol`` beyond ``mr`` and ``mr``'s
    residuals already pass ``_RES_ACCEPT``, they stand for ``m``'s (Newton from ``mr`` only shrinks
    them: quadratically, from ``|r| ~ tol`` to ``tol^2``), which saves one evaluation of every law
    per point (of the two or three a predicted grid point takes). Otherwise ``m`` is evaluated."""
    G = kk.size
    res = max(abs(r0) - _RES_FLOOR * _mfloor(mr, a, e), 0.0)
    inner = 0.0
    for g in range(G):
        inner = max(inner, abs(rg[g]) / max(abs(kk[g] * mr), 1e-300))
    if same or (res <= _RES_ACCEPT and inner <= _RES_ACCEPT):
        return res, inner
    r0, gp = _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
    if not (math.isfinite(r0.real) and math.isfinite(r0.imag)):
        return np.inf, np.inf
    inner = 0.0
    for g in range(G):
        inner = max(inner, abs(rg[g]) / max(abs(kk[g] * m), 1e-300))
    return max(abs(r0) - _RES_FLOOR * _mfloor(m, a, e), 0.0), inner


@_jit
def _gnewton(z, m, u, iters, tol, a, e, log_c, V, W, kk, nn, rg, dps):
    """Joint Newton (arrow Jacobian, Schur complement on m). Returns m, converged, the residual
    ``|r_0|`` beyond ``_RES_FLOOR`` times its floor (:func:`_mfloor`), the worst relative inner
    residual and the iterations used; ``u`` is updated in place. Converged: a step below
    ``tol`` relative, or steps that stopped contracting below ``_STALL`` times ``tol`` plus that
    floor (the floats' floor near ``m``)."""
    G = kk.size
    conv = False
    used = 0
    prev = np.inf
    r0 = 0j
    mr = m
    for _ in range(iters):
        r0, gp = _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
        mr = m
        if not (math.isfinite(r0.real) and math.isfinite(gp.real)):
            break
        num = r0
        den = gp
        bad = False
        for g in range(G):
            if u[g] * dps[g] == 0.0:
                bad = True
                break
            c = nn[g] / (u[g] * dps[g])
            num -= c * rg[g]
            den += c * kk[g]
        if bad or den == 0.0:
            break
        dm = -num / den
        if not (math.isfinite(dm.real) and math.isfinite(dm.imag)):
            break
        size = abs(dm) / max(abs(m), 1e-300)
        m = m + dm
        small = abs(dm) <= tol * abs(m)
        for g in range(G):
            du = (kk[g] * dm - rg[g]) / dps[g]
            u[g] = u[g] + du
            if not (abs(du) <= tol * abs(u[g])):
                small = False
            size = max(size, abs(du) / max(abs(u[g]), 1e-300))
        used += 1
        fl = _RES_FLOOR * _mfloor(m, a, e)
        if not small and size > 0.5 * prev and not (fl >= tol and size <= _STALL * tol + fl):
            # (only where the steps stalled: the bound loops over every atom)
            fl = max(fl, _RES_FLOOR * _schur_floor(m, u, den, V, W, kk, nn, dps))
        if small or (fl >= tol and size <= _STALL * tol + fl and size > 0.5 * prev):
            # (the second: the steps stopped contracting at the floor set by the spacing of the
            # floats near m: where m nears a root a_j of M^{-1} (|m - a_j| ~ 1e-5, orthogonal
            # tanh near x = 0) a change of m by one ulp moves log(m - a_j), hence u_g, by
            # ulp / |m - a_j|, above tol; the residuals then decide, as after any convergence.
            # Only where that floor exceeds tol: elsewhere steps that stall above tol are slow
            # convergence, not rounding (next to an atom of an orthogonal leaky ReLU net's J J^T,
            # such stalled points in a gap were taken as a support piece carrying 0.15 of mass:
            # F = 1.3 at the atom, adversarial seed 7 [36])
            conv = True
            break
        prev = size
    if conv and math.isfinite(r0.imag):
        res, inner = _checked_residuals(z, m, u, r0, mr, False, a, e, log_c, V, W, kk, nn, rg, dps)
        if not math.isfinite(res):  # (M^{-1} not finite at m: as below)
            return m, False, np.inf, np.inf, used
        return m, True, res, inner, used
    r0, gp = _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
    if not (math.isfinite(r0.real) and math.isfinite(r0.imag)):
        return m, False, np.inf, np.inf, used
    inner = 0.0
    for g in range(G):
        inner = max(inner, abs(rg[g]) / max(abs(kk[g] * m), 1e-300))
    return m, conv, max(abs(r0) - _RES_FLOOR * _mfloor(m, a, e), 0.0), inner, used


@_jit
def _gwalk(z, m, u, t, h, a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds, tol, counts, iters):
    """Walk ``(m, u)`` at ``z`` to ``t`` as the vectorised solver does (``_gchain``): a step is
    accepted when joint Newton (``iters`` iterations) from the current solution converges at the new
    point to residuals ``<= 1e-10`` with ``Im m <= 0`` and stays near the current ``m``; the step
    is doubled after an accepted proposal and quartered after a rejected one. ``u`` is updated in
    place. From the second accepted step on, Newton starts from the secant through the last two
    solutions of the walk (linear in ``z``) instead of the current one: its first step is then
    the secant's error, ``O(h^2)``, not the move, ``O(h)`` (the walks from far above into a gap
    next to an edge took some 9 Newton iterations per lilypad)."""
    G = kk.size
    up = np.empty(G, dtype=np.complex128)
    zp = z
    mp = m
    have_prev = False
    for _ in range(max_rounds):
        zn, step, final = _propose(z, t, h)
        m0 = m
        for g in range(G):
            un[g] = u[g]
        if have_prev:
            r = (zn - z) / (z - zp)
            mq = m + r * (m - mp)
            if math.isfinite(mq.real) and math.isfinite(mq.imag):
                m0 = mq
                for g in range(G):
                    un[g] = u[g] + r * (u[g] - up[g])
        mn, conv, res, inner, used = _gnewton(zn, m0, un, iters, tol, a, e, log_c, V, W, kk, nn, rg, dps)
        counts[1] += used
        ok = conv and res <= _RES_ACCEPT and inner <= _RES_ACCEPT and mn.imag <= 1e-10 * abs(mn)
        ok = ok and abs(mn - m) <= 0.5 * (abs(m) + abs(mn))
        if ok:
            counts[0] += 1
            zp = z
            mp = m
            for g in range(G):
                up[g] = u[g]
            have_prev = True
            m = mn
            for g in range(G):
                u[g] = un[g]
            z = zn
            if final:
                return m, True
            if z == zp:
                # The step fell below the rounding unit of z: the proposal is z itself, and
                # Newton there accepts the current solution. _resize gives up below 1e-15 |t|,
                # far below that unit when the walk stalls far above a target near 0 (ELU,
                # tapered, sigma_b2 = 1e-4: stuck at z = 5.9e-27 i walking down to t = 0,
                # steps of 6e-43): the walk cannot move on, and the next secant would divide
                # by z - zp = 0 (numba raises on a complex division by zero whatever the
                # error model). Stuck: the point is not verified.
                return m, False
        else:
            counts[2] += 1
        h, stuck = _resize(ok, step, t)
        if stuck:
            return m, False
    return m, False


@_jit
def _walk_buffers(n, G):
    """The outputs of the joint walks over ``n`` targets with ``G`` law groups (``m``, ``u``
    (n, G), the verified mask, the counts: lilypads, Newton steps, rejected) and their scratch
    arrays (inner residuals, psi', next u, u)."""
    c = np.complex128
    return (np.empty(n, dtype=c), np.zeros((n, G), dtype=c), np.zeros(n, dtype=np.bool_),
            np.zeros(3, dtype=np.int64), np.empty(G, dtype=c), np.empty(G, dtype=c), np.empty(G, dtype=c),
            np.empty(G, dtype=c))


@_jit
def vertical_general(x, Y, mean, a, e, log_c, V, W, kk, nn, mu, max_rounds, tol):
    """Each target ``x_i + i0`` from far above: joint Newton at ``x_i + i Y`` from
    ``m = mean / z``, ``u_g = k_g m / E[D_g^2]``, then a vertical walk. Returns ``m``, ``u``
    (n, G), a verified mask and the counts (lilypads, Newton steps, rejected). The real targets
    of :func:`vertical_general_complex` (``complex(x, 0) + i Y`` is ``complex(x, Y)`` exactly)."""
    t = np.empty(x.size, dtype=np.complex128)
    for i in range(x.size):
        t[i] = complex(x[i], 0.0)
    return vertical_general_complex(t, Y, mean, a, e, log_c, V, W, kk, nn, mu, max_rounds, tol)


@_jit
def _rel_step(dm, m, du, u):
    """Size of a joint Newton step relative to ``(m, u)``: ``max(|dm|/|m|, max_g |du_g|/|u_g|)``."""
    s = abs(dm) / max(abs(m), 1e-300)
    for g in range(u.size):
        s = max(s, abs(du[g]) / max(abs(u[g]), 1e-300))
    return s


@_jit
def _gcorrect(z, m, u, iters, tol, a, e, log_c, V, W, kk, nn, rg, dps, du):
    """Joint Newton from a predicted ``(m, u)`` that must contract from its first step (each step
    at most half the previous one, relative to ``(m, u)``: Newton inside its basin).
    Returns m, accepted, |r_0|, worst inner residual, iterations, size of the total correction."""
    G = kk.size
    m0 = m
    prev = np.inf
    used = 0
    conv = False
    r0 = 0j
    mr = m
    same = False
    for _ in range(iters):
        r0, gp = _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
        mr = m
        if not (math.isfinite(r0.real) and math.isfinite(r0.imag) and math.isfinite(gp.real)):
            return m, False, np.inf, np.inf, used, np.inf
        num = r0
        den = gp
        for g in range(G):
            if u[g] * dps[g] == 0.0:
                return m, False, np.inf, np.inf, used, np.inf
            c = nn[g] / (u[g] * dps[g])
            num -= c * rg[g]
            den += c * kk[g]
        if den == 0.0:
            return m, False, np.inf, np.inf, used, np.inf
        dm = -num / den
        for g in range(G):
            du[g] = (kk[g] * dm - rg[g]) / dps[g]
        size = _rel_step(dm, m, du, u)
        used += 1
        if not (size <= 0.5 * prev):
            # rounding noise at the convergence floor (_gnewton): the residuals decide
            if (size <= _STALL * tol + _RES_FLOOR * _mfloor(m, a, e)
                    or size <= _STALL * tol + _RES_FLOOR * _schur_floor(m, u, den, V, W, kk, nn, dps)):
                conv = True
                same = True
                break
            return m, False, np.inf, np.inf, used, np.inf
        prev = size
        m = m + dm
        for g in range(G):
            u[g] = u[g] + du[g]
        if size <= tol:
            conv = True
            break
    if not conv:
        return m, False, np.inf, np.inf, used, np.inf
    res, inner = _checked_residuals(z, m, u, r0, mr, same, a, e, log_c, V, W, kk, nn, rg, dps)
    return m, True, res, inner, used, abs(m - m0) / max(abs(m), 1e-300)


_DETOUR_ROUNDS = 64  # proposals per leg of grid_general's up-over-down walk (then: from far above)


@_jit
def _gap_detour(xa, ma, ua, xb, u, a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds, tol, counts):
    """``(m, u)`` at ``xb + i0`` from the solution ``(ma, ua)`` at ``xa + i0`` (``xa < xb``; a
    point of a gap, where ``M`` is real and analytic across the real axis, or any point whose walk
    along the axis failed): a walk up to
    ``xb + i d`` (``d = xb - xa``), then straight down to ``xb`` (as :func:`vertical_general`'s
    descent); both legs in the upper half-plane, where ``M`` is analytic, so the root followed is
    the continuation of ``M`` (the one a walk from far above reaches). ``u`` is updated in place;
    (m, arrived)."""
    G = kk.size
    d = xb - xa
    for g in range(G):
        u[g] = ua[g]
    za = complex(xa, 0.0)
    zb = complex(xb, d)
    m, good = _gwalk(za, ma, u, zb, abs(zb - za), a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds, tol,
                     counts, 8)
    if not good:
        return m, False
    return _gwalk(zb, m, u, complex(xb, 0.0), d, a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds, tol,
                  counts, 8)


@_jit
def _recip(w, fallback):
    """``1 / w``, the grid sweep's prediction of ``u_g`` from an extrapolation ``w`` of the
    neighbours' ``1 / u_g`` (``fallback``, the extrapolation of ``u_g`` itself, where ``w`` is 0).
    Where ``k_g M`` nears ``-1`` (``M`` passes a root ``-N_g / N_0`` of ``M^{-1}``: orthogonal nets
    narrowing to their last layers, the tail below the bulk) ``u_g`` grows like a pole and ``1 /
    u_g`` stays smooth: orthogonal tanh tapered at L = 50, the secant's Newton contracted from
    the prediction at 744 of 781 support points instead of 660 (sigmoid: 605 of 616 instead of
    566), each failure costing a walk of 7 to 2000 Newton steps; square nets the same."""
    if w == 0.0 or not (math.isfinite(w.real) and math.isfinite(w.imag)):
        return fallback
    return 1.0 / w


@_jit
def _gap_step(t, s, m1, m2, u1, u2, u, du, rg, dps, counts, a, e, log_c, V, W, kk, nn, tol):
    """One step of :func:`_gap_along` to ``t = x + i0``: the secant ``m1 + s (m1 - m2)`` (and so
    for ``u``) from the solutions ``(m2, u2)``, ``(m1, u1)`` at the two previous abscissae (``s``:
    the ratio of the steps in ``log x``), corrected by joint Newton that contracts from its first
    step (:func:`_gcorrect`). Accepted when the result is real, passes the a-posteriori checks,
    lies within half of the predicted move from the prediction and below ``m1`` (``M(x) =
    int t / (x - t) dmu(t)`` decreases on every gap) and ``M^{-1}`` decreases there (``d log
    M^{-1} / dm < 0``: the physical real root; the other real root that meets it at the gap's
    edge has the opposite slope). ``u`` holds the ``u_g`` found; (m, good)."""
    G = kk.size
    move = s * abs(m1 - m2)
    mp = m1 + s * (m1 - m2)
    for g in range(G):
        u[g] = _recip(1.0 / u1[g] + s * (1.0 / u1[g] - 1.0 / u2[g]), u1[g] + s * (u1[g] - u2[g]))
    m, conv, res, inner, used, corr = _gcorrect(t, mp, u, 6, tol, a, e, log_c, V, W, kk, nn, rg, dps, du)
    counts[1] += used
    good = conv and res <= 1e-10 and inner <= 1e-10 and m.imag <= 1e-10 * abs(m) and -m.imag <= 1e-9 * abs(m)
    good = good and corr * abs(m) <= 0.5 * move + 1e-12 * abs(m) and m.real < m1.real
    if good:
        # the slope of log M^{-1} along the joint equation (the Schur complement of the Newton
        # step, d r_0 / dm with r_0 = log z - log M^{-1}): positive on the physical root
        r0, gp = _gres(t, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
        den = gp
        for g in range(G):
            if u[g] * dps[g] == 0.0:
                return m, False
            den += nn[g] / (u[g] * dps[g]) * kk[g]
        good = math.isfinite(den.real) and den.real > 0.0 and abs(den.imag) <= 1e-6 * den.real
    if good:
        counts[0] += 1
    else:
        counts[2] += 1
    return m, good


@_jit
def _gap_along(i, x, groups, out, outu, ok, u, du, rg, dps, counts, a, e, log_c, V, W, kk, nn, tol):
    """``(m, good)`` at ``x_i + i0`` continued along the real axis inside a gap, where ``M`` is
    real: :func:`_gap_step` from the two left neighbours' solutions (both in the gap). Past a
    gap's edge no real root is near the prediction and the caller's up-over-down walk decides.
    ``u`` holds the ``u_g`` found. (Orthogonal smooth nets of depth 50 narrowing to their last
    layer: some 500 of the 1000 grid points lie below the bulk where ``|Im M| / |M| < 1e-9``, a
    gap to the sweep, below a lower edge that the real scan of :func:`fpcore._edges.lower_edge`
    cannot see; each took 5 to 1700 Newton steps up, over and down or from far above, with 50
    laws of some 1900 complex atoms each (SiLU and GELU, tapered). Where the roots of the
    contour rules' equation crowd (``|u_g|`` in the hundreds) Newton from the secant does not
    contract and the walks decide as before; shorter steps along the axis did not help there.)"""
    if not (i > 1 and groups[i - 1] == groups[i] and groups[i - 2] == groups[i] and ok[i - 1] and ok[i - 2]
            and x[i] > x[i - 1] > x[i - 2] > 0.0):
        return 0j, False
    if not (-out[i - 1].imag <= 1e-9 * abs(out[i - 1]) and -out[i - 2].imag <= 1e-9 * abs(out[i - 2])):
        return 0j, False
    s0, s1, s2 = math.log(x[i]), math.log(x[i - 1]), math.log(x[i - 2])
    return _gap_step(complex(x[i], 0.0), (s0 - s1) / (s1 - s2), out[i - 1], out[i - 2], outu[i - 1], outu[i - 2],
                     u, du, rg, dps, counts, a, e, log_c, V, W, kk, nn, tol)


@_jit
def _grid_point(i, x, groups, out, outu, ok, u, du, one, rg, dps, un, counts, Y, mean, a, e, log_c, V, W, kk, nn, mu,
                max_rounds, tol):
    """``(m, good)`` at ``x_i + i0`` for :func:`grid_general` (and ``_gaps.grid_discrete``'s support
    points), given the solutions ``out``, ``outu``, ``ok`` at the points before it: the prediction
    from the left neighbours, the walk from the left neighbour, the up-over-down walk, then the
    walk from far above (see :func:`grid_general`). ``u`` holds the ``u_g`` found."""
    G = kk.size
    t = complex(x[i], 0.0)
    good = False
    m = 0.0 + 0.0j
    # continue along the real axis only from inside the support: in a gap M(x + i0) is real,
    # and at the gap's edge the real root the walk would follow meets the complex one
    have1 = i > 0 and groups[i - 1] == groups[i] and ok[i - 1] and -out[i - 1].imag > 1e-9 * abs(out[i - 1])
    have2 = have1 and i > 1 and groups[i - 2] == groups[i] and ok[i - 2]
    if have2:
        s0, s1, s2 = math.log(x[i]), math.log(x[i - 1]), math.log(x[i - 2])
        s = (s0 - s1) / (s1 - s2)
        move = s * abs(out[i - 1] - out[i - 2])
        # the cubic through four left neighbours inside the support first (or the quadratic
        # through three), then the secant. The cubic's error is some 30 times the quadratic's
        # smaller (median 1e-8 against 4e-7 relative in u, SiLU and tanh nets): below the 5e-7
        # from which one Newton step lands within tol, so most points take two evaluations of
        # the laws instead of three
        have3 = (i > 2 and groups[i - 3] == groups[i] and ok[i - 3] and -out[i - 2].imag > 1e-9 * abs(out[i - 2])
                 and -out[i - 3].imag > 1e-9 * abs(out[i - 3]))
        have4 = have3 and i > 3 and groups[i - 4] == groups[i] and ok[i - 4] and -out[i - 4].imag > 1e-9 * abs(
            out[i - 4])
        for order in range(2 if have3 else 1):
            if have4 and order == 0:
                s3 = math.log(x[i - 3])
                s4 = math.log(x[i - 4])
                l1 = (s0 - s2) * (s0 - s3) * (s0 - s4) / ((s1 - s2) * (s1 - s3) * (s1 - s4))
                l2 = (s0 - s1) * (s0 - s3) * (s0 - s4) / ((s2 - s1) * (s2 - s3) * (s2 - s4))
                l3 = (s0 - s1) * (s0 - s2) * (s0 - s4) / ((s3 - s1) * (s3 - s2) * (s3 - s4))
                l4 = (s0 - s1) * (s0 - s2) * (s0 - s3) / ((s4 - s1) * (s4 - s2) * (s4 - s3))
                mp = l1 * out[i - 1] + l2 * out[i - 2] + l3 * out[i - 3] + l4 * out[i - 4]
                for g in range(G):
                    u[g] = _recip(l1 / outu[i - 1, g] + l2 / outu[i - 2, g] + l3 / outu[i - 3, g]
                                  + l4 / outu[i - 4, g],
                                  l1 * outu[i - 1, g] + l2 * outu[i - 2, g] + l3 * outu[i - 3, g] + l4 * outu[i - 4, g])
            elif have3 and order == 0:
                s3 = math.log(x[i - 3])
                l1 = (s0 - s2) * (s0 - s3) / ((s1 - s2) * (s1 - s3))
                l2 = (s0 - s1) * (s0 - s3) / ((s2 - s1) * (s2 - s3))
                l3 = (s0 - s1) * (s0 - s2) / ((s3 - s1) * (s3 - s2))
                mp = l1 * out[i - 1] + l2 * out[i - 2] + l3 * out[i - 3]
                for g in range(G):
                    u[g] = _recip(l1 / outu[i - 1, g] + l2 / outu[i - 2, g] + l3 / outu[i - 3, g],
                                  l1 * outu[i - 1, g] + l2 * outu[i - 2, g] + l3 * outu[i - 3, g])
            else:
                mp = out[i - 1] + s * (out[i - 1] - out[i - 2])
                for g in range(G):
                    u[g] = _recip(1.0 / outu[i - 1, g] + s * (1.0 / outu[i - 1, g] - 1.0 / outu[i - 2, g]),
                                  outu[i - 1, g] + s * (outu[i - 1, g] - outu[i - 2, g]))
            m, conv, res, inner, used, corr = _gcorrect(t, mp, u, 6, tol, a, e, log_c, V, W, kk, nn, rg, dps,
                                                        du)
            counts[1] += used
            good = conv and res <= _RES_ACCEPT and inner <= _RES_ACCEPT and m.imag <= 1e-10 * abs(m)
            good = good and corr * abs(m) <= 0.5 * move + 1e-12 * abs(m) and -m.imag > 1e-9 * abs(m)
            if good:
                break
        if good:
            counts[0] += 1
        else:
            counts[2] += 1
    if not good and have1:
        for g in range(G):
            u[g] = outu[i - 1, g]
        z = complex(x[i - 1], 0.0)
        m, good = _gwalk(z, out[i - 1], u, t, abs(t - z), a, e, log_c, V, W, kk, nn, rg, dps, un,
                         max_rounds, tol, counts, 8)
        # leaving the support (M turns real) happens at an edge, where Im M vanishes like a
        # square root; a real M here may also be a real root met on the way: decide from above
        good = good and -m.imag > 1e-9 * abs(m)
    if not good and not have1:
        m, good = _gap_along(i, x, groups, out, outu, ok, u, du, rg, dps, counts, a, e, log_c, V, W, kk, nn, tol)
    if not good and i > 0 and groups[i - 1] == groups[i] and ok[i - 1] and x[i] > x[i - 1]:
        # up, over and down: from the left neighbour's solution to x_i + i d (d = x_i - x_{i-1})
        # and straight down to x_i (:func:`_gap_detour`). The path leaves the real axis at once,
        # so it crosses no edge of a gap there (where a walk along the axis may follow a real
        # root), and M is analytic above it: the same branch as a walk from far above, for far
        # fewer Newton steps: orthogonal GELU 100-125-156, 224 gap points below the edge at
        # 2.5e-4 took 455 Newton steps each from far above; orthogonal sigmoid near x = 0,
        # where Im M / |M| < 1e-9 inside the support over six decades, some 40 times fewer.
        # Each leg at most _DETOUR_ROUNDS proposals; where it fails the walk from far above follows.
        m, good = _gap_detour(x[i - 1], out[i - 1], outu[i - 1], x[i], u, a, e, log_c, V, W, kk, nn, rg,
                              dps, un, min(max_rounds, _DETOUR_ROUNDS), tol, counts)
    if not good:
        one[0] = x[i]
        mv, uv, okv, cnt = vertical_general(one, Y, mean, a, e, log_c, V, W, kk, nn, mu, max_rounds, tol)
        for c in range(counts.size):
            counts[c] += cnt[c]
        m = mv[0]
        for g in range(G):
            u[g] = uv[0, g]
        good = okv[0]
    return m, good


@_jit
def _walk_first(x0, z0, m0, u0, u, a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds, tol, counts):
    """The grid's first point ``x0 + i0`` walked from a start ``(z0, m0, u0)`` in the upper
    half-plane (:func:`_gwalk`, first step a quarter of the way, as :func:`walk_general`):
    ``(m, reached)``, ``u`` filled; not reached where ``Im z0 <= 0`` (no start)."""
    if not (z0.imag > 0.0):
        return 0j, False
    for g in range(kk.size):
        u[g] = u0[g]
    t0 = complex(x0, 0.0)
    return _gwalk(z0, m0, u, t0, 0.25 * abs(t0 - z0), a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds, tol,
                  counts, 8)


@_jit
def grid_general(x, groups, Y, mean, a, e, log_c, V, W, kk, nn, mu, max_rounds, tol, z0=0j, m0=0j, u0=None):
    """Solve ``(m, u)`` at ``x_i + i0`` along a sorted grid, one point after the other.

    The first point of each group (support interval) walks down from far above as in
    :func:`vertical_general`. Each next point starts from the cubic prediction (in ``log x``)
    through its four solved left neighbours (the quadratic through three, the secant through two
    where fewer lie in the support, and the secant after a failed cubic or quadratic) and is
    accepted when Newton contracts from the first
    step (:func:`_gcorrect`), the residuals pass the a-posteriori checks and the correction stays
    below half of the predicted move (so the solution continues the neighbours' branch).
    Otherwise it walks from its left neighbour (:func:`_gwalk`), and failing that, up from its
    left neighbour to ``x_i + i (x_i - x_{i-1})`` and down to ``x_i`` (:func:`_gap_detour`), then
    from far above. A point whose left neighbour lies in a gap (``M`` real there) never walks
    along the axis. One point: :func:`_grid_point` (which ``_gaps.grid_discrete`` shares).
    With a start ``(z0, m0, u0)`` (``Im z0 > 0``: a solution in the upper half-plane near the
    first point, reached from far above, as :func:`fpcore._lilypad.solve_cluster` leaves one just
    below a lower edge) the first point walks from there (:func:`_gwalk`, as
    :func:`walk_general`; the path stays in the upper half-plane, where ``M`` is analytic, as the
    walk from far above does) instead of from far above; where that walk fails, as before.
    Returns ``m``, ``u`` (n, G), a verified mask and the counts (lilypads, Newton, rejected)."""
    n = x.size
    G = kk.size
    out, outu, ok, counts, rg, dps, un, u = _walk_buffers(n, G)
    du = np.empty(G, dtype=np.complex128)
    one = np.empty(1)
    Vp, Wp = _pack_laws(V, W)  # (contour rules: packed once per sweep)
    for i in range(n):
        good = False
        if i == 0 and u0 is not None:
            m, good = _walk_first(x[0], z0, m0, u0, u, a, e, log_c, Vp, Wp, kk, nn, rg, dps, un, max_rounds, tol,
                                  counts)
        if not good:
            m, good = _grid_point(i, x, groups, out, outu, ok, u, du, one, rg, dps, un, counts, Y, mean, a, e, log_c,
                                  Vp, Wp, kk, nn, mu, max_rounds, tol)
        out[i] = m
        for g in range(G):
            outu[i, g] = u[g]
        ok[i] = good
    return out, outu, ok, counts


# -- real line: edges of non-rational equations (critical values of M^{-1}) -----------------
@_jit_fast
def _psi_real(u, v, w):
    """``psi(u) = sum_k w_k u v_k / (1 - u v_k)`` and ``psi'(u)`` for real ``u``."""
    s = 0.0
    d = 0.0
    for k in range(v.size):
        r = 1.0 / (1.0 - u * v[k])
        c = w[k] * v[k] * r
        s += c
        d += c * r
    return u * s, d


@_jit
def _u_real(wv, v, w, vmax, vmin, p, S, mu1, guess):
    """Real ``u`` with ``psi(u) = wv`` on the branch through 0 (as ``_edges._u_real_vec``), from
    ``guess`` when it lies in the bracket:
    ``(0, 1/vmax) -> (0, inf)``, ``(-inf, 0) -> (-p, 0)``, ``(1/vmin, inf) -> (-inf, -p)`` when
    every atom is positive; safeguarded Newton in a bracket (NaN where no branch exists)."""
    if wv >= 0.0:
        lo, hi = 0.0, 1.0 / vmax
    elif wv > -p:
        lo, hi = -1.0 - 2.0 * S / (wv + p), 0.0
        for _ in range(1100):
            if not (abs(lo) < 1e150) or _psi_real(lo, v, w)[0] <= wv:
                break
            lo *= 2.0
    elif vmin > 0.0:
        lo, hi = 1.0 / vmin, 2.0 / vmin + 2.0 * S / (-p - wv)
        for _ in range(1100):
            if not (abs(hi) < 1e150) or _psi_real(hi, v, w)[0] >= wv:
                break
            hi *= 2.0
    else:
        return np.nan, np.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and abs(lo) < 1e150 and abs(hi) < 1e150):
        return np.nan, np.nan
    u = wv / mu1  # psi(u) ~ u E[D^2] near 0
    if -p < wv < -0.5 * p:
        u = -S / (wv + p)  # psi(u) ~ -p + S / (-u) as u -> -inf
    if lo < guess < hi:  # e.g. the solution at the previous point of a sorted scan
        u = guess
    u = min(max(u, lo), hi)
    if not (lo < u < hi):
        u = 0.5 * (lo + hi)
    f, df = _psi_real(u, v, w)
    for _ in range(80):
        f, df = _psi_real(u, v, w)
        f -= wv
        if abs(f) <= 1e-15 * max(abs(wv), 1e-300):
            break
        if f < 0.0:
            lo = u
        else:
            hi = u
        un = u - f / df
        if not (math.isfinite(un) and lo <= un <= hi):
            un = 0.5 * (lo + hi)
        if abs(un - u) <= 1e-14 * max(abs(u), 1e-300) or hi - lo <= 1e-14 * abs(hi):
            break
        u = un
    f, df = _psi_real(u, v, w)
    return u, df


@_jit
def _rational_real(m, a, e, log_c):
    """The rational factors' part of ``log|M^{-1}(m)|``, of its derivative in ``m`` and of the sign
    of ``M^{-1}(m)``, for real ``m`` (``+-inf`` at a root or pole ``a_j``)."""
    v = log_c
    sl = 0.0
    sg = 1.0
    for j in range(a.size):
        d = m - a[j]
        v += e[j] * math.log(abs(d)) if d != 0.0 else (-np.inf if e[j] > 0 else np.inf)
        sl += e[j] / d if d != 0.0 else np.inf
        if d < 0.0 and int(abs(e[j])) % 2 == 1:
            sg = -sg
    return v, sl, sg


@_jit
def log_inverse_real(ms, a, e, log_c, V, W, kk, nn, vmax, vmin, p, S, mu1, kn):
    """``log|M^{-1}(m)|``, its derivative in ``m`` and the sign of ``M^{-1}(m)`` for real ``m``,
    with each ``u_g`` real (:func:`_u_real`; also returned, (n, G)); NaN where a ``u_g`` has no
    real branch. Law ``g`` is summed over its first ``kn[g]`` atoms (:func:`live_sizes`: not the
    zero padding to the longest law, two thirds of the atoms of GELU's laws at ``L = 50``)."""
    n = ms.size
    val = np.empty(n)
    slope = np.empty(n)
    sign = np.empty(n)
    U = np.empty((n, kk.size))
    for i in range(n):
        m = ms[i]
        v, sl, sg = _rational_real(m, a, e, log_c)
        for g in range(kk.size):
            ug, dps = _u_real(m * kk[g], V[g, :kn[g]], W[g, :kn[g]], vmax[g], vmin[g], p[g], S[g], mu1[g],
                              U[i - 1, g] if i > 0 else np.nan)
            U[i, g] = ug
            v -= nn[g] * math.log(abs(ug))
            sl -= nn[g] * kk[g] / (dps * ug)
            if ug < 0.0 and int(nn[g]) % 2 == 1:
                sg = -sg
        val[i] = v
        slope[i] = sl
        sign[i] = sg
    return val, slope, sign, U


@_jit
def _far_start_ok_general(z, mean, a, e, log_c, V, W, kk, nn, mu, K):
    """Whether Newton's first step from ``m = mean / z`` (each ``u_g`` solved at that ``m``) is
    below ``1e-3 |m|`` (the test of ``_lilypad._start_height`` for non-rational equations)."""
    m = mean / z
    lr = complex(math.log(abs(z)), math.atan2(z.imag, z.real)) - log_c
    LP = 0.0 + 0.0j
    LQ = 0.0 + 0.0j
    for j in range(a.size):
        d = m - a[j]
        if d == 0.0:  # numba raises on complex division by zero
            return False
        lr -= e[j] * complex(math.log(abs(d)), _cut_arg(d))
        if e[j] > 0:
            LP += e[j] / d
        else:
            LQ -= e[j] / d
    for g in range(kk.size):
        w = kk[g] * m
        ug = w / mu[g]
        Vg, Wg = V[g, :K[g]], W[g, :K[g]]  # (without the padding to the longest law)
        for _ in range(60):
            s, sd = _psi_sums(ug.real, ug.imag, Vg, Wg)
            if sd == 0.0:
                return False
            step = (ug * s - w) / sd
            ug = ug - step
            if not (abs(step) > 4.0 * 2.220446049250313e-16 * abs(ug)):
                break
        s, sd = _psi_sums(ug.real, ug.imag, Vg, Wg)
        if sd * ug == 0.0:
            return False
        lr += nn[g] * complex(math.log(abs(ug)), _cut_arg(ug))
        LQ += nn[g] * kk[g] / (sd * ug)
    r = math.exp(min(lr.real, 700.0))
    rho = complex(r * math.cos(lr.imag), r * math.sin(lr.imag))
    return abs(rho - 1.0) <= 1e-3 * abs(m) * abs(rho * LQ - LP)


@_jit
def start_height_general(xs, scale, mean, a, e, log_c, V, W, kk, nn, mu):
    """:func:`start_height` for non-rational equations (:func:`_far_start_ok_general` at every
    ``z = x + i Y``)."""
    Y = max(0.5 * scale, 1e-300)
    K = live_sizes(W)
    for _ in range(2000):
        bad = 0
        for x in xs:
            bad += not _far_start_ok_general(complex(x, Y), mean, a, e, log_c, V, W, kk, nn, mu, K)
        if bad == 0:
            return Y
        Y *= 2.0
    return 0.0


# -- short rules for long D^2 laws ----------------------------------------------------------
@_jit
def gauss_rule(values, weights, n, passes=0):
    """:func:`_gauss_rule_once` with the plain recurrence, checked: its moments of
    ``t / max(values)`` up to degree ``2n - 1`` must match the law's to ``1e-12`` (relative to the
    mass); otherwise (the recurrence lost orthogonality, e.g. for a law packed near one value)
    Lanczos with full reorthogonalisation."""
    x, w = _gauss_rule_once(values, weights, n, passes)
    if passes >= 2:
        return x, w
    top = values.max()
    total = weights.sum()
    nk = min(2 * n, 2 * x.size)
    # every moment's sum runs over the atoms in their order, as a loop over moments per atom
    # did; atoms outer, moments inner, four atoms at a time: the four power chains are
    # independent (a loop over atoms per moment waited on one long chain of additions)
    a = _power_sums(values, weights, top, nk)
    b = _power_sums(x, w, top, nk)
    worst = 0.0
    for k in range(nk):
        worst = max(worst, abs(a[k] - b[k]))
    if worst <= 1e-12 * total:
        return x, w
    return _gauss_rule_once(values, weights, n, 2)


@_jit
def _power_sums(t, w, top, nk):
    """``sum_i w_i (t_i / top)^k`` for ``k < nk``, each sum in the order of the atoms and each
    power as repeated products (``p <- p (t_i / top)``)."""
    a = np.zeros(nk)
    m = t.size
    i = 0
    while i + 4 <= m:
        r0, r1, r2, r3 = t[i] / top, t[i + 1] / top, t[i + 2] / top, t[i + 3] / top
        w0, w1, w2, w3 = w[i], w[i + 1], w[i + 2], w[i + 3]
        p0 = p1 = p2 = p3 = 1.0
        for k in range(nk):
            a[k] = (((a[k] + w0 * p0) + w1 * p1) + w2 * p2) + w3 * p3
            p0 *= r0
            p1 *= r1
            p2 *= r2
            p3 *= r3
        i += 4
    while i < m:
        r0 = t[i] / top
        w0 = w[i]
        p0 = 1.0
        for k in range(nk):
            a[k] += w0 * p0
            p0 *= r0
        i += 1
    return a


@_jit
def _gauss_rule_once(values, weights, n, passes):
    """The ``n``-point Gauss rule of the discrete law ``(values, weights)``: recurrence
    coefficients by Lanczos on ``diag(values)``, with ``passes`` rounds of full
    reorthogonalisation (0: the plain Stieltjes recurrence), then Golub-Welsch
    (:func:`_gw_ql`). Returns nodes and weights."""
    K = values.size
    total = weights.sum()
    # (uninitialised: row j + 1 is written before it is read; zeroing n K floats cost a tenth
    # of the plain recurrence for laws of thousands of atoms)
    Q = np.empty((n, K))
    alpha = np.zeros(n)
    beta = np.zeros(n)
    for k in range(K):
        Q[0, k] = math.sqrt(weights[k] / total)
    size = n
    v = np.empty(K)
    vmax = values.max()
    for j in range(n):
        s = 0.0
        if passes == 0:
            # the plain three-term recurrence (Stieltjes), its passes over the atoms fused: the
            # same operations in the same order as one loop per step (v = t q_j, alpha, the
            # recurrence, the norm), with the sums' chains of additions the only waits
            for k in range(K):
                t = values[k] * Q[j, k]
                v[k] = t
                s += Q[j, k] * t
            alpha[j] = s
            b = 0.0
            if j > 0:
                bj = beta[j - 1]
                for k in range(K):
                    t = v[k] - s * Q[j, k]
                    t = t - bj * Q[j - 1, k]
                    v[k] = t
                    b += t * t
            else:
                for k in range(K):
                    t = v[k] - s * Q[j, k]
                    v[k] = t
                    b += t * t
        else:
            for k in range(K):
                v[k] = values[k] * Q[j, k]
            for k in range(K):
                s += Q[j, k] * v[k]
            alpha[j] = s
            for _ in range(passes):
                for i in range(j + 1):
                    c = 0.0
                    for k in range(K):
                        c += Q[i, k] * v[k]
                    for k in range(K):
                        v[k] -= c * Q[i, k]
            b = 0.0
            for k in range(K):
                b += v[k] * v[k]
        if j + 1 < n:
            b = math.sqrt(b)
            beta[j] = b
            if b <= 1e-14 * vmax:
                size = j + 1
                break
            for k in range(K):
                Q[j + 1, k] = v[k] / b
    off = np.zeros(size)
    off[: size - 1] = beta[: size - 1]
    lam, z = _gw_ql(alpha[:size].copy(), off)
    w = np.empty(size)
    for j in range(size):
        lam[j] = max(lam[j], 0.0)
        w[j] = z[j] * z[j] * total
    return lam, w


@_jit
def _gw_ql(d, e):
    """Eigenvalues of the symmetric tridiagonal matrix (diagonal ``d``, off-diagonal ``e[:-1]``)
    and the first components of its eigenvectors, by implicit QL with Wilkinson shifts (Golub and
    Welsch's ``gausq2``), sorted increasingly. Returns (eigenvalues, first components)."""
    n = d.size
    z = np.zeros(n)
    z[0] = 1.0
    eps = 2.220446049250313e-16
    for l in range(n):
        for _ in range(60):
            mm = l
            while mm < n - 1:
                if abs(e[mm]) <= eps * (abs(d[mm]) + abs(d[mm + 1])):
                    break
                mm += 1
            if mm == l:
                break
            p = d[l]
            g = (d[l + 1] - p) / (2.0 * e[l])
            r = math.sqrt(g * g + 1.0)
            g = d[mm] - p + e[l] / (g + (r if g >= 0.0 else -r))
            sn = 1.0
            c = 1.0
            p = 0.0
            for i in range(mm - 1, l - 1, -1):
                f = sn * e[i]
                b = c * e[i]
                if abs(f) >= abs(g):
                    c = g / f
                    r = math.sqrt(c * c + 1.0)
                    e[i + 1] = f * r
                    sn = 1.0 / r
                    c = c * sn
                else:
                    sn = f / g
                    r = math.sqrt(sn * sn + 1.0)
                    e[i + 1] = g * r
                    c = 1.0 / r
                    sn = sn * c
                g = d[i + 1] - p
                r = (d[i] - g) * sn + 2.0 * c * b
                p = sn * r
                d[i + 1] = g + p
                g = c * r - b
                f = z[i + 1]
                z[i + 1] = sn * z[i] + c * f
                z[i] = c * z[i] - sn * f
            d[l] = d[l] - p
            e[l] = g
            e[mm] = 0.0
    for i in range(1, n):  # insertion sort (n <= 40; numba's argsort costs seconds to compile)
        di, zi = d[i], z[i]
        j = i - 1
        while j >= 0 and d[j] > di:
            d[j + 1] = d[j]
            z[j + 1] = z[j]
            j -= 1
        d[j + 1] = di
        z[j + 1] = zi
    return d, z


# -- the CDF's tail mass ---------------------------------------------------------------------
@_jit
def _arg_lower(w):
    a = math.atan2(w.imag, w.real)
    if a > 0.0:
        return 0.0 if w.real > 0.0 else -math.pi
    return a


@_jit_fast
def _atan01(t):
    """``atan(t)`` for ``0 <= t <= 1`` (Cephes' rational approximation, double precision)."""
    big = t > 0.66
    x = (t - 1.0) / (t + 1.0) if big else t
    z = x * x
    p = (((-8.750608600031904122785e-1 * z - 1.615753718733365076637e1) * z - 7.500855792314704667340e1) * z
         - 1.228866684490136173410e2) * z - 6.485021904942025371773e1
    q = ((((z + 2.485846490142306297962e1) * z + 1.650270098316988542046e2) * z + 4.328810604912902668951e2) * z
         + 4.853903996359136964868e2) * z + 1.945506571482613964425e2
    r = x * (z * p / q) + x
    return r + (0.25 * math.pi + 0.5 * 6.123233995736765886130e-17) if big else r


@_jit_fast
def _log_potential_arg(ur, ui, v, w):
    """``Im sum_k w_k log(1 - u v_k)``: for real atoms ``sum_k w_k arg(1 - u v_k)`` with arguments
    in ``[0, pi]`` (``Im(1 - u v_k) >= 0`` on the physical branch, ``Im u <= 0``; the limit from
    above on the real axis), atan in-line; for complex atoms (a contour rule: ``Im v_k <= 0``)
    the analytic continuation, arguments in ``(-pi/2, 3 pi/2)``."""
    s = 0.0
    for k in range(v.size):
        vr = v[k].real
        vi = v[k].imag
        x = 1.0 - ur * vr + ui * vi
        y = -(ur * vi + ui * vr)
        if vi != 0.0 or w[k].imag != 0.0:
            # atan2(y, x) in-line (as below, then the lower half-plane), continued to (-pi/2, 3 pi/2)
            ax = abs(x)
            ay = abs(y)
            swap = ay > ax
            num = ax if swap else ay
            den = ay if swap else ax
            ang = _atan01(num / den) if den > 0.0 else 0.0
            if swap:
                ang = 0.5 * math.pi - ang
            if x < 0.0:
                ang = math.pi - ang
            if y < 0.0 and ang > 0.5 * math.pi:
                ang = 2.0 * math.pi - ang  # arguments in (-pi, -pi/2) continued by 2 pi
            elif y < 0.0:
                ang = -ang
            s += w[k].real * ang + w[k].imag * 0.5 * math.log(x * x + y * y)
            continue
        if y < 0.0:  # the other half-plane: the limit from above is 0 or pi
            y = 0.0
        ax = abs(x)
        swap = y > ax
        num = ax if swap else y
        den = y if swap else ax
        t = num / den if den > 0.0 else 0.0
        ang = _atan01(t)
        if swap:
            ang = 0.5 * math.pi - ang
        if x < 0.0:
            ang = math.pi - ang
        s += w[k].real * ang
    return s


_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of log 2 (e * _LN2_HI exact for |e| < 2^11)
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951


@_jit_fast
def _lp_angles(ur, ui, vr, vi, wr, cplx, r2):
    """The argument part of :func:`_log_potential_arg` with no branch (selects only, so the loop
    vectorises): ``sum_k wr_k arg(1 - u v_k)`` with the same conventions (real atoms: ``y``
    clamped at 0, arguments in ``[0, pi]``; complex atoms, ``cplx[k] = 1.0``: continued to
    ``(-pi/2, 3 pi/2)``); fills ``r2[k] = |1 - u v_k|^2`` (1 for real atoms, whose weight has no
    imaginary part) and returns the sum."""
    s = 0.0
    for k in range(vr.size):
        x = 1.0 - ur * vr[k] + ui * vi[k]
        y0 = -(ur * vi[k] + ui * vr[k])
        c = cplx[k] > 0.5
        y = y0 if (c or y0 > 0.0) else 0.0
        ax = abs(x)
        ay = abs(y)
        swap = ay > ax
        num = ax if swap else ay
        den = ay if swap else ax
        t = num / (den if den > 0.0 else 1.0)
        ang = _atan01(t)
        ang = 0.5 * math.pi - ang if swap else ang
        ang = math.pi - ang if x < 0.0 else ang
        ang = (2.0 * math.pi - ang if ang > 0.5 * math.pi else -ang) if y < 0.0 else ang
        s += wr[k] * ang
        r2[k] = (x * x + y * y) if c else 1.0
    return s


@_jit_fast
def _wlog_sum(r2, wi, bits, mbits):
    """``sum_k wi_k log(r2_k) / 2`` for normal positive finite ``r2`` with no call (so the loops
    vectorise): ``r2 = f 2^e``, ``f`` in ``[1/sqrt 2, sqrt 2)`` from the bits, ``log f = 2 atanh s``,
    ``s = (f - 1) / (f + 1)``, ``|s| <= 0.1716``, by its series to ``s^21`` (the next term is below
    ``1e-19``), ``e log 2`` with fdlibm's split of ``log 2``: a few ulps, as ``math.log``."""
    n = r2.size
    b = r2.view(np.int64)
    bad = 0
    for k in range(n):
        bk = b[k]
        ex = bk >> 52  # (r2 >= 0: no sign bit)
        bad += 1 if (ex == 0 or ex >= 2047) else 0  # zero, subnormal, inf or nan
        bits[k] = ex - 1023
        mbits[k] = (bk & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000
    if bad > 0:
        return np.nan
    f = mbits.view(np.float64)
    s = 0.0
    for k in range(n):
        fk = f[k]
        big = fk > _SQRT2
        fk = 0.5 * fk if big else fk
        e = float(bits[k] + (1 if big else 0))
        t = (fk - 1.0) / (fk + 1.0)
        z = t * t
        p = 1.0 / 21.0
        p = p * z + 1.0 / 19.0
        p = p * z + 1.0 / 17.0
        p = p * z + 1.0 / 15.0
        p = p * z + 1.0 / 13.0
        p = p * z + 1.0 / 11.0
        p = p * z + 1.0 / 9.0
        p = p * z + 1.0 / 7.0
        p = p * z + 1.0 / 5.0
        p = p * z + 1.0 / 3.0
        lg = e * _LN2_HI + (e * _LN2_LO + 2.0 * t * z * p + 2.0 * t)
        s += wi[k] * lg
    return 0.5 * s


@_jit
def _split_rules(V, W):
    """Real and imaginary parts of zero-padded (G, K) rules for :func:`_log_potential_fast`, the
    mask of complex atoms (``Im v != 0`` or ``Im w != 0``) and work buffers."""
    G, K = V.shape
    vr = np.ascontiguousarray(V.real)
    vi = np.ascontiguousarray(V.imag)
    wr = np.ascontiguousarray(W.real)
    wi = np.ascontiguousarray(W.imag)
    cplx = np.zeros((G, K))
    for g in range(G):
        for k in range(K):
            cplx[g, k] = 1.0 if (vi[g, k] != 0.0 or wi[g, k] != 0.0) else 0.0
    return vr, vi, wr, wi, cplx, np.empty(K), np.empty(K, dtype=np.int64), np.empty(K, dtype=np.int64)


_LP_SHORT = 64  # rows of at most this many atoms: the one-pass kernel (the two passes' set-up costs more)


@_jit
def _log_potential_fast(ur, ui, vr, vi, wr, wi, cplx, V, W, r2, bits, mbits):
    """:func:`_log_potential_arg` in two vectorised passes (:func:`_lp_angles`, :func:`_wlog_sum`;
    rows of :func:`_split_rules`); where some ``|1 - u v_k|^2`` is not a normal float (``u`` on an
    atom's pole), and for short rows, the scalar kernel as before. The same sum to a few ulps
    per atom (``tests/test_physical_sheet.py`` compares them)."""
    n = vr.size
    if n <= _LP_SHORT:
        return _log_potential_arg(ur, ui, V, W)
    s = _lp_angles(ur, ui, vr, vi, wr, cplx, r2[:n])
    # (the real atoms' r2 are 1 and their wi 0; a zero, subnormal, inf or nan r2 gives nan)
    s2 = _wlog_sum(r2[:n], wi, bits[:n], mbits[:n])
    if not math.isfinite(s2):
        return _log_potential_arg(ur, ui, V, W)
    return s + s2


@_jit
def live_sizes(W):
    """Atoms of each row of zero-padded (G, K) weights, up to its last non-zero weight (the
    padding's terms are exactly 0 in every sum over atoms: skipping them changes the sums by
    rounding at most, as the fastmath kernels reassociate)."""
    G, K = W.shape
    out = np.zeros(G, dtype=np.int64)
    for g in range(G):
        k = K
        while k > 0 and W[g, k - 1] == 0.0:
            k -= 1
        out[g] = k
    return out


@_jit
def real_rows(cplx, K):
    """Whether row ``g`` of :func:`_split_rules`' mask has no complex atom among its first
    ``K[g]``."""
    G = cplx.shape[0]
    out = np.ones(G, dtype=np.bool_)
    for g in range(G):
        for k in range(K[g]):
            if cplx[g, k] > 0.5:
                out[g] = False
                break
    return out


@_jit
def _log_potential_short(ur, ui, vr, vi, wr, cplx, V, W, r2, real):
    """:func:`_log_potential_arg` for a row of at most :data:`_LP_SHORT` atoms; a row of real atoms
    and real weights (``real``) by :func:`_lp_angles` alone, whose branch-free loop vectorises
    (the same per-atom arguments; the sum in another order, to rounding)."""
    if real:
        return _lp_angles(ur, ui, vr, vi, wr, cplx, r2)
    return _log_potential_arg(ur, ui, V, W)


@_jit
def _roots_arg(mi, a, e):
    """The rational factors' share of ``pi mu((x, inf))`` at ``m = M(x + i0)``."""
    im = 0.0
    for j in range(a.size):
        im += e[j] * (mi.imag + (1.0 + a[j]) * _arg_lower(mi - a[j]))
    return im


@_jit
def tail_mass(m, u, a, e, V, W, kk, nn):
    """``mu((x, inf))`` from ``m = M(x + i0)`` and the ``u_g`` (``_spectrum._tail_mass``)."""
    n = m.size
    out = np.empty(n)
    K = live_sizes(W)  # (one law of 1800 contour atoms pads every other row to 1800)
    vr, vi, wr, wi, cplx, r2, bits, mbits = _split_rules(V, W)
    real = real_rows(cplx, K)
    for i in range(n):
        im = _roots_arg(m[i], a, e)
        for g in range(kk.size):
            ug = u[i, g]
            k = K[g]
            if k <= _LP_SHORT:
                lp = _log_potential_short(ug.real, ug.imag, vr[g, :k], vi[g, :k], wr[g, :k], cplx[g, :k], V[g, :k],
                                          W[g, :k], r2[:k], real[g])
            else:
                lp = _log_potential_fast(ug.real, ug.imag, vr[g, :k], vi[g, :k], wr[g, :k], wi[g, :k], cplx[g, :k],
                                         V[g, :k], W[g, :k], r2, bits, mbits)
            im -= nn[g] * (_arg_lower(ug) - lp / kk[g])
        out[i] = im / math.pi
    return out


@_jit
def _ellipse_index(u, vmax, rhos):
    """The largest ``j`` with ``rhos[j] <= rho``, ``E_rho`` the Bernstein ellipse (foci 0 and
    ``vmax``) through ``t = 1/u``; -1 when there is none (``u`` near the law's cut)."""
    s = 2.0 / (u * vmax) - 1.0
    w = np.sqrt(s * s - 1.0)
    rho = max(abs(s + w), abs(s - w))
    j = -1
    for l in range(rhos.size):
        if rhos[l] <= rho:
            j = l
    return j


@_jit
def tail_mass_mixed(m, u, a, e, V, W, Vs, Ws, check, vmax, rhos, e_psi, kk, nn, tol):
    """:func:`tail_mass` at solutions ``(m, u)`` of the equation with the laws ``(V, W)``, taking
    group ``g``'s log potential from its short real rule ``(Vs[g], Ws[g])`` where ``check[g]`` and,
    at ``u[i, g]``, the two rules' ``n_g E[log(1 - u D^2)] / k_g`` differ by at most ``tol``
    (:func:`_lp_bound` from the table ``rhos``, ``e_psi`` of :attr:`D2Law.short_check`, as
    :func:`short_rule_ok`); the group's own rule elsewhere. Each group then adds at most
    ``tol / pi`` to the error of the tail mass. Returns the tail masses and, per point, the
    number of groups taken from the short rules."""
    n = m.size
    out = np.empty(n)
    used = np.zeros(n, dtype=np.int64)
    K = live_sizes(W)
    Ks = live_sizes(Ws)
    vr, vi, wr, wi, cplx, r2, bits, mbits = _split_rules(V, W)
    svr, svi, swr, _, scplx, sr2, _, _ = _split_rules(Vs, Ws)
    sreal = real_rows(scplx, Ks)
    for i in range(n):
        im = _roots_arg(m[i], a, e)
        for g in range(kk.size):
            ug = u[i, g]
            short = False
            if check[g] and ug * vmax[g] != 0.0:  # (_ellipse_index divides by the product)
                jj = _ellipse_index(ug, vmax[g], rhos[g])
                short = jj >= 0 and nn[g] * _lp_bound(ug, vmax[g], rhos[g], e_psi[g], jj) <= tol * kk[g]
            if short:
                ks = Ks[g]
                if ks <= _LP_SHORT:
                    lp = _log_potential_short(ug.real, ug.imag, svr[g, :ks], svi[g, :ks], swr[g, :ks], scplx[g, :ks],
                                              Vs[g, :ks], Ws[g, :ks], sr2[:ks], sreal[g])
                else:
                    lp = _log_potential_arg(ug.real, ug.imag, Vs[g, :ks], Ws[g, :ks])
                used[i] += 1
            else:
                k = K[g]
                lp = _log_potential_fast(ug.real, ug.imag, vr[g, :k], vi[g, :k], wr[g, :k], wi[g, :k], cplx[g, :k],
                                         V[g, :k], W[g, :k], r2, bits, mbits)
            im -= nn[g] * (_arg_lower(ug) - lp / kk[g])
        out[i] = im / math.pi
    return out, used


# -- where a short Gauss rule stands for its law -------------------------------------------
@_jit
def _gauss_error(u, vmax, n, lim):
    """Bound on ``|psi_n(u) - psi(u)|`` for the ``n``-point Gauss rule ``psi_n`` of a law on
    ``[0, vmax]`` of mass 1, ``psi(u) = E[u D^2 / (1 - u D^2)]``: the first bound at most
    ``lim``, else the smallest (see :func:`fpcore._activations.gauss_error_bound`).

    With ``s = 2 t / vmax - 1`` the integrand's pole ``t = 1/u`` lies on the Bernstein ellipse
    ``E_rho``. On ``E_r``, ``1 < r < rho``, the integrand is at most
    ``M = (a_r + 1) / (a_rho - a_r)`` (``a``: semi-major axes; confocal ellipses are at least
    ``a_rho - a_r`` apart), so the error is at most ``4 M r^(1 - 2n) / (r - 1)``: twice the best
    polynomial approximation of degree ``2n - 1``. Tried at ``r = rho^theta`` for a few
    ``theta``; ``inf`` on the cut (``rho = 1``), 0 at ``u = 0``."""
    uv = u * vmax
    if uv == 0.0:
        # the pole at infinity (rho infinite, as below): the limit 0. Not divided: numba raises
        # ZeroDivisionError on a complex division by zero whatever the error model (u = 0,
        # vmax = 0, or the product underflowing)
        return 0.0
    s = 2.0 / uv - 1.0
    w = np.sqrt(s * s - 1.0)
    rho = max(abs(s + w), abs(s - w))
    if not (rho > 1.0):
        return np.inf
    if not math.isfinite(rho):
        return 0.0
    a_rho = 0.5 * (rho + 1.0 / rho)
    best = np.inf
    for theta in (0.5, 0.7, 0.8, 0.9, 0.95):
        r = rho**theta
        a_r = 0.5 * (r + 1.0 / r)
        b = 4.0 * (a_r + 1.0) / (a_rho - a_r) * math.exp((1.0 - 2.0 * n) * math.log(r)) / (r - 1.0)
        if b >= 0.0 and b < best:  # (b is 0 on underflow)
            best = b
            if b <= lim:
                break
    return best


@_jit
def gauss_error_flat(u, vmax, n):
    """:func:`_gauss_error` (the smallest bound) for each pair ``(u_i, vmax_i)``."""
    out = np.empty(u.size)
    for i in range(u.size):
        out[i] = _gauss_error(complex(u[i]), vmax[i], n, 0.0)
    return out


@_jit
def gauss_error_ok(U, vmax, kk, m, n, tol):
    """Whether the Gauss error bound at ``U[i, g]`` is at most ``tol |k_g m_i|`` for every group
    ``g`` of point ``i``."""
    npts, G = U.shape
    out = np.zeros(npts, dtype=np.bool_)
    for i in range(npts):
        good = True
        for g in range(G):
            lim = tol * abs(kk[g] * m[i])
            if not (_gauss_error(complex(U[i, g]), vmax[g], n, lim) <= lim):
                good = False
                break
        out[i] = good
    return out


@_jit
def _lp_bound(u, vmax, rhos, e_psi, j0):
    """Bound on ``|lp_s(u) - lp_c(u)|``, ``lp = sum w log(1 - u v)``, from the table of
    :func:`fpcore._lawkernels.short_rule_errors` (``u`` outside ``E_rhos[j0]`` in ``t = 1/u``): ``d lp / du = -Phi``
    and ``lp(0) = 0``, so the difference is the integral of ``Phi_c - Phi_s`` along the segment
    from 0 to ``u``. On it ``t`` runs out along the ray from the focus 0 (outside an ellipse it
    stays outside: the ellipses are convex around 0), crossing ``E_rho_j`` at ``|t| = r_j =
    A_j (1 - e_j^2) / (1 - e_j cos arg t)`` (semi-major axis ``A_j``, eccentricity ``e_j``); between
    two crossings ``|Phi_c - Phi_s|`` is at most the inner ellipse's entry."""
    L = rhos.size
    au = abs(u)
    cphi = u.real / au  # cos arg t = cos(-arg u)
    prev = au
    b = 0.0
    for j in range(j0 + 1, L):
        a = 0.25 * vmax * (rhos[j] + 1.0 / rhos[j])
        e = 0.5 * vmax / a
        inv = min((1.0 - e * cphi) / (a * (1.0 - e * e)), prev)
        b += e_psi[j - 1] * (prev - inv)
        prev = inv
    return b + e_psi[L - 1] * prev


@_jit
def short_rule_ok(U, kk, nn, m, vmax, rhos, e_psi, tol, exact):
    """Whether, at every group ``g`` of point ``i``, ``U[i, g]`` lies outside an ellipse of
    :func:`fpcore._lawkernels.short_rule_errors`' table where the short rule's ``psi`` is within ``tol |k_g m_i|``
    and its ``n_g lp / k_g`` within ``tol`` of the contour rule's (:func:`_lp_bound`; ``rhos``
    increasing, errors non-increasing; one row per group). Groups with ``exact[g]`` (their short
    rule is their rule) pass."""
    npts, G = U.shape
    out = np.zeros(npts, dtype=np.bool_)
    L = rhos.shape[1]
    for i in range(npts):
        good = True
        for g in range(G):
            u = U[i, g]
            if u * vmax[g] == 0.0 or exact[g]:  # (u = 0, or the product underflowing: error 0)
                continue
            s = 2.0 / (u * vmax[g]) - 1.0
            w = np.sqrt(s * s - 1.0)
            rho = max(abs(s + w), abs(s - w))
            j = -1
            for l in range(L):
                if rhos[g, l] <= rho:
                    j = l
            if j < 0 or not (abs(u) * e_psi[g, j] <= tol * abs(kk[g] * m[i])
                             and nn[g] * _lp_bound(u, vmax[g], rhos[g], e_psi[g], j) <= tol * kk[g]):
                good = False
                break
        out[i] = good
    return out


@_jit
def _arg_up(w):
    a = math.atan2(w.imag, w.real)
    return a - _TWO_PI if a > 0.5 * math.pi else a


@_jit
def _wrap_c(g):
    return g - 1j * _TWO_PI * np.round(g.imag / _TWO_PI)


@_jit
def _joint_point(zf, zt, m, u, V, WV, aV, aWV, live, k, n, a, e, e0, log_c, Phi, Gp, rg, errg, lu, a1m, a1p, tau,
                 ok, Rk, th):
    """One centre ``(m, u)`` of :func:`joint_test` and the segments ``[zf[k], zt[k]]``: the sums at
    the centre once, ``omega`` on the largest ball asked for (valid on every smaller one), again
    on a smaller ball only where that fails. Fills ``tau``, ``ok``, ``Rk`` and ``th``."""
    P = zt.size
    alpha = np.full(P, np.inf)
    am, as_, Rmax = _joint_centre(zf, zt, m, u, V, WV, aWV, k, n, a, e, e0, log_c, Phi, Gp, rg, errg, lu, a1m,
                                  a1p, tau, ok, Rk, th, alpha)
    if Rmax > 0.0:
        _joint_finish(Rmax, alpha, m, am, u, V, aV, aWV, live, n, a, e, Phi, a1m, a1p, tau, as_, ok, Rk, th)


@_jit
def _joint_finish(Rmax, alpha, m, am, u, V, aV, aWV, live, n, a, e, Phi, a1m, a1p, tau, as_, ok, Rk, th):
    """The omega stage of :func:`_joint_point`: ``omega`` on the ball of radius ``Rmax`` for every
    segment, on a segment's own ball where that fails."""
    om = _joint_omega(Rmax, m, am, u, V, aV, aWV, live, n, a, e, Phi, a1m, a1p, tau, as_)
    for q in range(alpha.size):
        if not np.isfinite(alpha[q]):
            continue
        t_ = alpha[q] * om
        if not (t_ <= 0.5) and 2.0 * alpha[q] < Rmax:  # the smaller ball's own omega
            t_ = alpha[q] * _joint_omega(2.0 * alpha[q], m, am, u, V, aV, aWV, live, n, a, e, Phi, a1m, a1p, tau,
                                             as_)
        th[q] = t_
        if t_ <= 0.5:
            ok[q] = True
            Rk[q] = 2.0 * alpha[q]


@_jit
def _joint_centre(zf, zt, m, u, V, WV, aWV, k, n, a, e, e0, log_c, Phi, Gp, rg, errg, lu, a1m, a1p, tau, ok, Rk,
                  th, alpha):
    """The sums at the centre ``(m, u)`` for :func:`_joint_point` (``Phi``, ``Gp``, ``tau``,
    ``a1m``, ``a1p`` filled) and the bound ``alpha[q]`` of each segment (``inf`` where none);
    ``ok``, ``Rk``, ``th`` reset. Returns ``|m|``, ``|s|`` and the largest ball ``2 alpha``
    (0 where there is none)."""
    G = V.shape[0]
    J = a.shape[0]
    eps8 = 8.0 * 2.220446049250313e-16
    P = zt.size
    for q in range(P):
        ok[q] = False
        Rk[q] = 0.0
        th[q] = np.inf
        alpha[q] = np.inf
    mp = m
    am = abs(mp)
    if not (am > 0.0) or not np.isfinite(am):
        return am, 0.0, 0.0
    lm = complex(math.log(am), math.atan2(mp.imag, mp.real))
    r0 = -e0 * lm - log_c
    err0 = abs(e0) * abs(lm) + abs(log_c)
    s0 = complex(-e0, 0.0)
    for j in range(J):
        d = mp - a[j]
        ad = abs(d)
        r0 -= e[j] * complex(math.log(ad), _arg_up(d))
        err0 += abs(e[j]) * (abs(math.log(ad)) + math.pi)
        s0 -= e[j] * mp / d
    bad = False
    for g in range(G):
        ug = u[g]
        aug = abs(ug)
        if not (aug > 0.0):
            bad = True
            break
        lu[g] = complex(math.log(aug), math.atan2(ug.imag, ug.real))
        r0 += n[g] * lu[g]
        err0 += n[g] * abs(lu[g])
        kg = _row_len(aWV[g])
        phr, phi, qr, qi, sa = _joint_centre_row(ug, V[g, :kg], WV[g, :kg], aWV[g, :kg], a1m[g], a1p[g])
        ph = complex(phr, phi)
        Phi[g] = ph
        aph = abs(ph)
        if not (aph > 0.0):
            bad = True
            break
        lph = complex(math.log(aph), math.atan2(phi, phr))
        rg[g] = _wrap_c(lu[g] + lph - math.log(k[g]) - lm)
        errg[g] = eps8 * (math.pi + abs(lu[g]) + abs(lph) + sa / aph + abs(math.log(k[g])) + abs(lm))
        Gp[g] = 1.0 + complex(qr, qi) / ph
    if bad:
        return am, 0.0, 0.0
    err0 *= eps8
    s = s0
    for g in range(G):
        s += n[g] / Gp[g]
    as_ = abs(s)
    acc = 0j
    for g in range(G):
        acc += n[g] * rg[g] / Gp[g]
    rnd = err0
    emax = 0.0
    for g in range(G):
        tg = 1.0 / abs(Gp[g])
        tau[g] = tg
        rnd += n[g] * tg * errg[g]
        emax = max(emax, errg[g])
    Rmax = 0.0
    for q in range(P):
        al = _joint_alpha(zt[q], zf[q], r0, acc, s, as_, rg, Gp, rnd, emax, eps8)
        if zf[q] != zt[q]:
            # the same bound from the other end: the smaller one holds. Where the centre solves
            # the equation at zf (every link and chain step) the first counts the segment twice
            # (the Newton step toward zt is already about |log(zt / zf)| / |s|), this one once
            al = min(al, _joint_alpha(zf[q], zt[q], r0, acc, s, as_, rg, Gp, rnd, emax, eps8))
        if np.isfinite(al):
            alpha[q] = al
            Rmax = max(Rmax, 2.0 * al)
    return am, as_, Rmax


@_jit
def _joint_alpha(z, zo, r0, acc, s, as_, rg, Gp, rnd, emax, eps8):
    """A bound of ``alpha = ||A F_w(x_0)||`` for every target ``w`` of the segment ``[z, zo]``
    (:func:`_joint_point`): the Newton step's norm at ``z`` plus ``sup_w |log(w / z)| / |s|``.

    Proof: only ``r_0`` depends on the target, ``F_w(x_0) = F_z(x_0) + log(w / z) e_0`` (one
    branch of the logarithm on the segment while ``|w - z| < |z|``), and ``||A e_0|| = 1 / |s|``
    (``(A e_0)_0 = 1 / s``, ``(A e_0)_g = 1 / (s G_g)`` of weighted size ``1 / |s|``); on the
    segment ``|log(w / z)| = |log(1 + (w - z) / z)| <= -log(1 - |zo - z| / |z|)``. Both ends
    give a valid bound; ``inf`` where the segment reaches ``|zo - z| >= |z|``. The step's rows
    ``v_g = (v_0 - r_g) / G_g`` weigh ``|v_g| / tau_g = |v_g| |G_g| = |v_0 - r_g|``: taken so,
    without the division and its product (one complex division per group and segment, nine
    segments per centre of :func:`joint_grid`: a fifth of its time at ``L = 50``)."""
    az = abs(z)
    frac = abs(zo - z) / az
    if not (frac < 1.0):
        return np.inf
    lz = complex(math.log(az), math.atan2(z.imag, z.real))
    v0 = -(_wrap_c(r0 + lz) - acc) / s
    al = abs(v0)
    for g in range(Gp.size):
        al = max(al, abs(v0 - rg[g]))
    al += (rnd + eps8 * (abs(math.log(az)) + math.pi)) / as_ + emax
    return al - math.log1p(-frac) / as_


@_jit
def _row_len(aWV):
    """Atoms of a row of ``|w v|`` up to its last non-zero one: the zero padding to the longest
    law (and trailing atoms of weight 0 or at 0) add exactly nothing to the sums of
    :func:`_joint_centre_row` and :func:`_joint_omega_row` (``x = 0`` there: no pole, ``beta = 1``),
    so they are not summed (a quarter of the atoms of tanh's contour rules at ``L = 50``)."""
    k = aWV.size
    while k > 0 and aWV[k - 1] == 0.0:
        k -= 1
    return k


@_jit_fast
def _joint_centre_row(ug, V, WV, aWV, a1m, a1p):
    """The sums of one group at the centre ``u_g`` for :func:`_joint_point`: ``Phi_g`` (real,
    imaginary part), ``u Phi_g'`` (the same), ``sum_i |w_i v_i| / |1 - x_i|``; fills
    ``a1m = |1 - x_i|``, ``a1p = |1 + x_i|^2`` (``x_i = u_g v_i``; the square: its root is taken
    by :func:`_joint_omega_row`, which :func:`joint_grid` calls for few centres). One loop with no
    branch (an atom of weight 0 comes with ``v = 0``: ``x = 0``, nothing added), vectorised."""
    ur = ug.real
    ui = ug.imag
    phr = 0.0
    phi = 0.0
    qr = 0.0
    qi = 0.0
    sa = 0.0
    for i in range(V.size):
        v = V[i]
        xr = ur * v.real - ui * v.imag
        xi = ur * v.imag + ui * v.real
        omr = 1.0 - xr
        q = omr * omr + xi * xi
        iq = 1.0 / q
        ir = omr * iq  # 1 / (1 - x)
        ii = xi * iq
        wv = WV[i]
        tr = wv.real * ir - wv.imag * ii  # w v / (1 - x)
        ti = wv.real * ii + wv.imag * ir
        phr += tr
        phi += ti
        yr = xr * ir - xi * ii  # x / (1 - x)
        yi = xr * ii + xi * ir
        qr += tr * yr - ti * yi
        qi += tr * yi + ti * yr
        aom = math.sqrt(q)
        sa += aWV[i] * aom * iq
        a1m[i] = aom
        pr = 1.0 + xr
        a1p[i] = pr * pr + xi * xi
    return phr, phi, qr, qi, sa


@_jit_fast
def _joint_omega_row(aug, em, er, aV, aWV, a1m, a1p):
    """The sums ``B_1``, ``B_2``, ``S_1``, ``S_2`` of one group for :func:`_joint_omega` (``em =
    e^rho - 1``, ``er = e^rho``; ``a1p`` the squares ``|1 + x_i|^2`` of :func:`_joint_centre_row`)
    and the count of atoms whose ``beta_i`` is not positive (the ball reaches a pole where it is
    not 0). One loop with no branch, vectorised."""
    B1 = 0.0
    B2 = 0.0
    S1 = 0.0
    S2 = 0.0
    bad = 0
    for i in range(aV.size):
        ax = aug * aV[i]
        dx = ax * em
        beta = a1m[i] - dx
        bad += 0 if beta > 0.0 else 1
        ib = 1.0 / beta
        gam = math.sqrt(a1p[i]) + dx
        c = aWV[i] * er * ib * ib
        cg = c * gam * ib
        S1 += c
        S2 += cg
        B1 += c * ax
        B2 += cg * ax
    return B1, B2, S1, S2, bad


@_jit
def _joint_omega(R, mp, am, u, V, aV, aWV, live, n, a, e, Phi, a1m, a1p, tau, as_):
    """The affine Lipschitz constant ``omega`` of the joint test on the ball of radius ``R``
    (``inf`` where the ball reaches a pole). For a law of two positive real atoms (leaky ReLU) the
    bound ``H_g`` is the smaller of the general one and :func:`_two_atom_h`."""
    H = np.empty(aV.shape[0])
    K0 = _joint_bounds(R, mp, am, u, V, aV, aWV, live, Phi, a, e, a1m, a1p, tau, H)
    return _omega_from(K0, H, tau, n, as_)


@_jit
def _omega_from(K0, H, tau, n, as_):
    """``omega = (K_0 + sum_g n_g tau_g Y_g) / |s| + max_g Y_g``, ``Y_g = H_g tau_g^2``, from bounds
    ``K_0``, ``H_g`` that hold on the ball (:func:`_joint_bounds`) and the centre's ``tau``, ``|s|``."""
    if not (K0 < np.inf):
        return np.inf
    sumY = 0.0
    maxY = 0.0
    for g in range(H.size):
        if not (H[g] < np.inf):
            return np.inf
        Yg = H[g] * tau[g] * tau[g]
        sumY += n[g] * tau[g] * Yg
        maxY = max(maxY, Yg)
    return (K0 + sumY) / as_ + maxY


@_jit
def _joint_bounds(R, mp, am, u, V, aV, aWV, live, Phi, a, e, a1m, a1p, tau, Hout):
    """Bounds of the second derivatives on the polydisc ``|log m - log m_0| <= R``, ``|log u_g -
    log u_{g,0}| <= tau_g R`` about the centre ``(m_0, u_0)``: returns ``K_0 >= sup |d^2 r_0 /
    dl^2|`` and fills ``Hout[g] >= sup |dG_g / dlambda_g|`` (``inf`` where the polydisc reaches a
    pole or a zero). They are suprema over a set, so they hold on every polydisc inside it, about
    any centre (:func:`joint_grid` reuses them)."""
    G = aV.shape[0]
    K = aV.shape[1]
    infl = 1.0 + 2.220446049250313e-16 * (2 * K + 16)  # the sums' rounding, in any order (upper bounds)
    grow = am * math.expm1(R)
    K0 = 0.0
    for j in range(a.shape[0]):
        den = abs(mp - a[j]) - grow
        if den <= 0.0:
            return np.inf
        K0 += abs(a[j]) * abs(e[j]) / (den * den)
    K0 *= am * math.exp(R)
    for g in range(G):
        tg = tau[g]
        rho = tg * R
        er = math.exp(rho)
        em = math.expm1(rho)
        kg = _row_len(aWV[g])  # (the atoms _joint_centre_row filled a1m, a1p for)
        B1, B2, S1, S2, nbad = _joint_omega_row(abs(u[g]), em, er, aV[g, :kg], aWV[g, :kg], a1m[g], a1p[g])
        if nbad > 0:
            return np.inf
        B1 *= infl
        B2 *= infl
        S1 *= infl
        S2 *= infl
        # d^2 log psi / dlambda^2 from Phi = psi / u (B: atoms with |x| < 1 weigh |x| less) or
        # from psi = u Phi itself (S: |x| > 1 weigh 1 / |x| less; where u D^2 >> 1 for most of
        # the law, psi ~ -1 and G_g -> 0, the Phi bound misses the cancellation of its two terms
        # by a factor 1 / |G_g|): the same quantity, so the smaller bound holds
        aph = abs(Phi[g])
        pl = aph - B1 * rho
        H = B2 / pl + (B1 / pl) ** 2 if pl > 0.0 else np.inf
        ps = aph - S1 * rho
        if ps > 0.0:
            H = min(H, S2 / ps + (S1 / ps) ** 2)
        H = min(H, _two_atom_h(u[g], rho, V[g], aWV[g], live[g]))
        if not (H < np.inf):
            return np.inf
        Hout[g] = H
    return K0


@_jit
def _two_atom_h(u0, rho, Vg, aWVg, liveg):
    r"""A bound of ``|d^2 log Phi(u_0 e^xi) / d xi^2|`` on ``|xi| <= rho`` for a law of exactly two
    positive real atoms ``v_1, v_2`` with weights ``w_1, w_2 > 0``; ``inf`` for any other law, or
    where the ball reaches a pole or the zero of ``Phi``.

    ``Phi(u) = sum_i w_i v_i / (1 - u v_i) = c (u - zeta) / ((u - 1/v_1) (u - 1/v_2))`` with
    ``zeta = (w_1 v_1 + w_2 v_2) / ((w_1 + w_2) v_1 v_2)``, so ``log Phi(e^lambda)`` is a sum of
    terms ``+- log(e^lambda - r)`` and ``|d^2/dlambda^2 log(e^lambda - r)| = |r e^lambda| /
    |e^lambda - r|^2 <= |r| |u_0| e^rho / (|u_0 - r| - |u_0| (e^rho - 1))^2`` (as ``K_0`` for the
    roots of ``M^{-1}``). The general bound ``B_2 / p + (B_1 / p)^2`` bounds the two parts of
    ``(u d/du)^2 log Phi`` separately; where ``|u| >> 1/v_max`` (leaky ReLU near ``x = 0``:
    ``psi`` saturated by the atom 1) they are each about 1 and cancel, and this bound is some 40
    times smaller."""
    K = Vg.shape[0]
    v1 = 0.0
    v2 = 0.0
    w1 = 0.0
    w2 = 0.0
    cnt = 0
    for i in range(K):
        if not liveg[i]:
            continue
        vi = Vg[i]
        if vi.imag != 0.0 or not (vi.real > 0.0) or cnt == 2:
            return np.inf
        if cnt == 0:
            v1 = vi.real
            w1 = aWVg[i] / v1
        else:
            v2 = vi.real
            w2 = aWVg[i] / v2
        cnt += 1
    if cnt != 2 or v1 == v2:
        return np.inf
    zeta = (w1 * v1 + w2 * v2) / ((w1 + w2) * v1 * v2)
    au = abs(u0)
    grow = au * math.expm1(rho)
    top = au * math.exp(rho)
    H = 0.0
    for r in (zeta, 1.0 / v1, 1.0 / v2):
        den = abs(u0 - r) - grow
        if not (den > 0.0):
            return np.inf
        H += r * top / (den * den)
    return H


@_jit
def joint_test(zf, zt, m, u, V, WV, aV, aWV, live, k, n, a, e, e0, log_c):
    """The joint Kantorovich test of ``fpcore._lilypad._Joint.test``, one point per loop (same
    formulas, no temporaries; ``WV = W V``, ``aV = |V|``, ``aWV = |W V|``). Returns ok, R,
    tau (n, G), theta."""
    npt = m.shape[0]
    G = V.shape[0]
    K = V.shape[1]
    ok = np.zeros(npt, dtype=np.bool_)
    Rout = np.zeros(npt)
    tau = np.zeros((npt, G))
    theta = np.full(npt, np.inf)
    Phi = np.zeros(G, dtype=np.complex128)
    Gp = np.zeros(G, dtype=np.complex128)
    rg = np.zeros(G, dtype=np.complex128)
    errg = np.zeros(G)
    lu = np.zeros(G, dtype=np.complex128)
    a1m = np.zeros((G, K))
    a1p = np.zeros((G, K))
    zf1 = np.zeros(1, dtype=np.complex128)
    zt1 = np.zeros(1, dtype=np.complex128)
    ok1 = np.zeros(1, dtype=np.bool_)
    R1 = np.zeros(1)
    th1 = np.zeros(1)
    for p in range(npt):
        zf1[0] = zf[p]
        zt1[0] = zt[p]
        _joint_point(zf1, zt1, m[p], u[p], V, WV, aV, aWV, live, k, n, a, e, e0, log_c, Phi, Gp, rg, errg, lu,
                     a1m, a1p, tau[p], ok1, R1, th1)
        ok[p], Rout[p], theta[p] = ok1[0], R1[0], th1[0]
    return ok, Rout, tau, theta


_GRID_SUPER = 4.0  # joint_grid: a centre's bounds are taken on a ball this many times its own (first try)
_GRID_SUPER_MAX = 16.0
_GRID_SUPER_MIN = 2.0  # smallest factor tried; below it the next _GRID_PAUSE centres use their own bounds
_GRID_PAUSE = 8


@_jit
def joint_grid(t, m, u, V, WV, aV, aWV, live, k, n, a, e, e0, log_c):
    """:func:`joint_test` on a sorted real grid, five segments per centre ``x_i``: its own target
    (``[t_i, t_i]``), the next (``[t_i, t_{i+1}]``), the previous (``[t_i, t_{i-1}]``), and the
    halves of the last two (``[t_i, (t_i + t_{i+1}) / 2]``, ``[t_i, (t_i + t_{i-1}) / 2]``: the
    two ends of a link meet in the middle, :func:`joint_mid`), all from the same sums at the
    centre. Returns ok (n, 5), R (n, 5), tau (n, G) at the centres.

    The bounds ``K_0``, ``H_g`` of :func:`_joint_bounds` are suprema over a polydisc, so they hold
    on any polydisc inside it whatever its centre: they are computed on a ball ``_GRID_SUPER``
    times the largest one a centre asks for, and the next centres whose own largest ball
    ``{|log(m / m_i)| <= R_i, |log(u_g / u_{i,g})| <= tau_{i,g} R_i}`` lies inside it (``|log(m_i /
    m_c)| + R_i <= R_c``, ``|log(u_{i,g} / u_{c,g})| + tau_{i,g} R_i <= tau_{c,g} R_c``) take
    ``omega`` from them with their own ``tau``, ``|s|`` (:func:`_omega_from`): the test is the same
    Kantorovich test with another valid ``omega``. Where that ``theta`` exceeds 1/2 for a
    segment, the centre's own bounds decide as in :func:`joint_test` (``R = 2 alpha`` is the same
    either way; a segment passes where either ``omega`` passes it). The cost: one pass over the
    atoms per centre instead of two, where the polydiscs hold."""
    npt = m.shape[0]
    G = V.shape[0]
    K = V.shape[1]
    ok = np.zeros((npt, 5), dtype=np.bool_)
    Rout = np.zeros((npt, 5))
    th = np.zeros(5)
    tau = np.zeros((npt, G))
    Phi = np.zeros(G, dtype=np.complex128)
    Gp = np.zeros(G, dtype=np.complex128)
    rg = np.zeros(G, dtype=np.complex128)
    errg = np.zeros(G)
    lu = np.zeros(G, dtype=np.complex128)
    a1m = np.zeros((G, K))
    a1p = np.zeros((G, K))
    zf = np.zeros(5, dtype=np.complex128)
    zt = np.zeros(5, dtype=np.complex128)
    alpha = np.zeros(5)
    # the cached polydisc: centre (mc, uc), radius Rc (l) and tc[g] Rc (lambda_g), its bounds
    Hc = np.zeros(G)
    Hn = np.zeros(G)
    tc = np.zeros(G)
    uc = np.zeros(G, dtype=np.complex128)
    mc = 0j
    Rc = 0.0
    K0c = np.inf
    fac = _GRID_SUPER
    hits = 0
    pause = 0
    for p in range(npt):
        for c in range(5):
            zf[c] = t[p]
        zt[0] = t[p]
        zt[1] = t[min(p + 1, npt - 1)]
        zt[2] = t[max(p - 1, 0)]
        zt[3] = 0.5 * (t[p] + zt[1])
        zt[4] = 0.5 * (t[p] + zt[2])
        mp = m[p]
        am, as_, Rmax = _joint_centre(zf, zt, mp, u[p], V, WV, aWV, k, n, a, e, e0, log_c, Phi, Gp, rg, errg, lu,
                                      a1m, a1p, tau[p], ok[p], Rout[p], th, alpha)
        if not (Rmax > 0.0):
            continue
        inside = K0c < np.inf and abs(np.log(mp / mc)) + Rmax <= Rc
        if inside:
            for g in range(G):
                if not (abs(np.log(u[p, g] / uc[g])) + tau[p, g] * Rmax <= tc[g] * Rc):
                    inside = False
                    break
        failed = False
        if not inside:
            K0c = np.inf
            if pause > 0:
                pause -= 1
            else:
                # a new polydisc about this centre, fac times its largest ball
                K0n = _joint_bounds(fac * Rmax, mp, am, u[p], V, aV, aWV, live, Phi, a, e, a1m, a1p, tau[p], Hn)
                if K0n < np.inf:
                    K0c = K0n
                    mc = mp
                    Rc = fac * Rmax
                    for g in range(G):
                        Hc[g] = Hn[g]
                        tc[g] = tau[p, g]
                        uc[g] = u[p, g]
                    inside = True
                else:
                    failed = True
        if inside:
            om = _omega_from(K0c, Hc, tau[p], n, as_)
            good = True
            for q in range(5):
                if np.isfinite(alpha[q]) and not (alpha[q] * om <= 0.5):
                    good = False
            if good:
                for q in range(5):
                    if np.isfinite(alpha[q]):
                        th[q] = alpha[q] * om
                        ok[p, q] = True
                        Rout[p, q] = 2.0 * alpha[q]
                hits += 1
                if hits >= 8 and fac < _GRID_SUPER_MAX:  # a run of hits: larger polydiscs
                    fac *= 2.0
                    hits = 0
                continue
            K0c = np.inf
            failed = True
        if failed:
            # a polydisc too large (a pole inside, or theta above 1/2): smaller ones; below
            # _GRID_SUPER_MIN the next _GRID_PAUSE centres use their own bounds (each miss costs
            # its pass over the atoms), then polydiscs of _GRID_SUPER again
            hits = 0
            if fac > _GRID_SUPER_MIN:
                fac *= 0.5
            else:
                pause = _GRID_PAUSE
                fac = _GRID_SUPER
        _joint_finish(Rmax, alpha, mp, am, u[p], V, aV, aWV, live, n, a, e, Phi, a1m, a1p, tau[p], as_, ok[p],
                      Rout[p], th)
    return ok, Rout, tau


@_jit
def _abs_log_ratio(x, y):
    """``|log(x / y)|`` (principal branch) as numpy's ``np.abs(np.log(x / y))``, ``inf`` where it
    is not finite (``x`` or ``y`` zero, or not finite; ``nan`` too: :func:`joint_dist` maps every
    non-finite distance to ``inf``). Near ``|x / y| = 1`` the log of the modulus from ``log1p``,
    as C99 ``clog`` (the distances between a grid solution and a chain's centre are small); 0
    where ``x == y`` (the quotient's rounding aside)."""
    if x == 0.0 or y == 0.0:
        return np.inf
    if x == y:
        return 0.0 if math.isfinite(x.real) and math.isfinite(x.imag) else np.inf
    w = x / y
    wr = w.real
    wi = w.imag
    if not (math.isfinite(wr) and math.isfinite(wi)):
        return np.inf
    r2 = wr * wr + wi * wi
    if 0.5 < r2 < 2.0:
        lr = 0.5 * math.log1p((wr - 1.0) * (wr + 1.0) + wi * wi)
    else:
        lr = math.log(math.hypot(wr, wi))
    return math.hypot(lr, math.atan2(wi, wr))


@_jit
def joint_dist(xm, xu, ym, yu, tau):
    """``fpcore._lilypad._Joint.dist`` per row: ``max(|log(x_m / y_m)|, max_g |log(x_u,g /
    y_u,g)| / tau_g)``, ``inf`` where it is not finite (one pass, no (n, G) temporaries)."""
    n = xm.shape[0]
    G = xu.shape[1]
    out = np.empty(n)
    for i in range(n):
        d = _abs_log_ratio(xm[i], ym[i])
        for g in range(G):
            if not (d < np.inf):
                break
            v = _abs_log_ratio(xu[i, g], yu[i, g]) / tau[i, g]
            if not (v <= d):  # (nan: not finite, inf below)
                d = v if v == v else np.inf
        out[i] = d if d < np.inf else np.inf
    return out


@_jit
def joint_mid(tm, m0, u0, m1, u1, a_all, e_all, log_c, Vn, Wn, kk, nn, tol):
    """Joint Newton at each ``tm_i`` from the geometric mean of the two solutions ``(m0_i, u0_i)``,
    ``(m1_i, u1_i)`` (the ends of a link, ``tm`` their midpoint). Returns ``m``, ``u`` (n, G) and
    whether Newton converged."""
    # (the full laws packed once, their zero padding to the longest law not summed: _pack_laws)
    Vp, Wp = _pack_laws(Vn, Wn)
    npt = tm.size
    G = kk.size
    out_m = np.zeros(npt, dtype=np.complex128)
    out_u = np.zeros((npt, G), dtype=np.complex128)
    conv = np.zeros(npt, dtype=np.bool_)
    un = np.zeros(G, dtype=np.complex128)
    rgn = np.zeros(G, dtype=np.complex128)
    dps = np.zeros(G, dtype=np.complex128)
    for p in range(npt):
        m = m0[p] * np.exp(0.5 * np.log(m1[p] / m0[p]))
        good = np.isfinite(m.real) and np.isfinite(m.imag)
        for g in range(G):
            un[g] = u0[p, g] * np.exp(0.5 * np.log(u1[p, g] / u0[p, g]))
            good = good and np.isfinite(un[g].real) and np.isfinite(un[g].imag)
        if not good:
            m = m0[p]
            for g in range(G):
                un[g] = u0[p, g]
        mn, cv, res, inner, used = _gnewton(tm[p], m, un, 40, tol, a_all, e_all, log_c, Vp, Wp, kk, nn, rgn, dps)
        out_m[p] = mn
        for g in range(G):
            out_u[p, g] = un[g]
        conv[p] = cv
    return out_m, out_u, conv


_JOINT_FRAC = 0.5  # largest step of a certified chain, relative to the distance of its end from 0
_JOINT_START = 1.0 / 64.0  # the far start's first height, relative to the solver's start height Y


@_jit
def _joint_dist(m1, u1, m0, u0, tau):
    """Distance of ``(m1, u1)`` from ``(m0, u0)`` in log coordinates, each ``u_g`` scaled by
    ``1 / tau_g`` (infinite where a log is not finite)."""
    d = abs(np.log(m1 / m0))
    for g in range(u0.size):
        d = max(d, abs(np.log(u1[g] / u0[g])) / tau[g])
    return d if np.isfinite(d) else np.inf


# _joint_walk_one's step-size targets: the longer proposal aims at theta = _THETA_LONG with theta
# linear in the step, the shorter at _THETA_SHORT with theta quadratic in it (both must pass the
# same test, theta <= 1/2; these only size the proposals). SiLU, orthogonal, tapered, L = 50: with
# 0.3 for both a link took 8.5 certified steps, with 0.45 6.5 (larger last balls hold more grid
# solutions: 961 of 1000 points certified instead of 932-937, tanh 776 instead of 738)
_THETA_LONG = 0.45
_THETA_SHORT = 0.3


@_jit
def _joint_walk_one(z, m, tp, u, un, a_all, e_all, log_c, Vn, Wn, kk, nn, Vc, WVc, aVc, aWVc, live, a, e, e0,
                    max_rounds, tol, Phi, Gp, rg, errg, lu, a1m, a1p, tau, rgn, dps, zf1, zt1, ok1, R1, th1,
                    pu_row, ptau_row, rec_z, rec_m, rec_u, nrec, theta0):
    """Certified steps from the solution ``(m, u)`` at ``z`` straight to ``tp``: each step passes
    the joint test on its segment and the next joint-Newton solution lies in the certified ball.
    ``u`` is updated in place, the last step's ball centre ``u`` and ``tau`` go to ``pu_row``,
    ``ptau_row``. Returns m, the last ball's centre m and radius, and whether it arrived. Each
    accepted step's end and solution are appended to ``rec_z``, ``rec_m``, ``rec_u`` at
    ``nrec[0]`` while they have room (none: zero-size arrays).

    Step sizes aim at ``theta`` below 1/2: after an accepted step ``theta`` is about linear in the
    step where ``omega`` hardly moves and about quadratic where it grows with the ball, so two ends
    are tested from the same centre at once (the sums at the centre shared; ``omega`` on the
    longer segment's ball holds on the shorter one's): the step grown by ``_THETA_LONG / theta``
    and by the square root of ``_THETA_SHORT / theta``; the longer one that passes (and whose
    Newton solution lies in its ball) is taken. The first step is half the segment, or, where
    ``theta0`` (the whole segment's ``theta`` from ``(m, u)``: a link's single test) is known and
    above 1, sized from it the same way (a link of ``theta0 = 2.7`` otherwise spends its first
    round on half and a quarter of it). A step never reaches past ``_JOINT_FRAC`` times its end's
    distance from 0 (the segment's term of ``alpha`` is infinite from 1 on)."""
    G = kk.size
    h = abs(tp - z) / 2.0
    hn = h / 2.0
    if np.isfinite(theta0) and theta0 > 1.0:
        # the whole segment's theta from this centre is known (a link's single test): theta
        # about linear in the step, the first step aims at it as after an accepted step
        h = abs(tp - z) * min(max(_THETA_LONG / theta0, 1e-3), 0.5)
        hn = abs(tp - z) * min(max(_THETA_SHORT / theta0, 1e-3), 0.5)
        hn = min(hn, 0.5 * h)
    pm = m
    pR = 0.0
    zf2 = np.zeros(2, dtype=np.complex128)
    zt2 = np.zeros(2, dtype=np.complex128)
    ok2 = np.zeros(2, dtype=np.bool_)
    R2 = np.zeros(2)
    th2 = np.zeros(2)
    st2 = np.zeros(2)
    uprev = np.zeros(G, dtype=np.complex128)
    zprev = z
    mprev = m
    have_prev = False
    for _ in range(max_rounds):
        dist = abs(tp - z)
        cap = _JOINT_FRAC * abs(z) / (1.0 + _JOINT_FRAC)
        st2[0] = min(h, dist, cap)
        st2[1] = min(hn, st2[0])
        P = 2 if st2[1] < st2[0] else 1
        for c in range(P):
            zf2[c] = z
            zt2[c] = tp if st2[c] >= dist else z + (tp - z) * (st2[c] / dist)
        _joint_point(zf2[:P], zt2[:P], m, u, Vc, WVc, aVc, aWVc, live, kk, nn, a, e, e0, log_c,
                     Phi, Gp, rg, errg, lu, a1m, a1p, tau, ok2[:P], R2[:P], th2[:P])
        took = -1
        mn = m
        for c in range(P):
            if not ok2[c]:
                continue
            # Newton from the secant prediction (log m, log u linear in z through the last two
            # states: a step fewer), from the centre itself where that fails
            for tries in range(2 if have_prev else 1):
                m1 = m
                for g in range(G):
                    un[g] = u[g]
                if tries == 0 and have_prev:
                    r = (zt2[c] - z) / (z - zprev)
                    m1 = m * np.exp(r * np.log(m / mprev))
                    for g in range(G):
                        un[g] = u[g] * np.exp(r * np.log(u[g] / uprev[g]))
                    okp = np.isfinite(m1.real) and np.isfinite(m1.imag)
                    for g in range(G):
                        okp = okp and np.isfinite(un[g].real) and np.isfinite(un[g].imag)
                    if not okp:
                        continue
                mn, conv, res, inner, used = _gnewton(zt2[c], m1, un, 40, tol, a_all, e_all, log_c, Vn, Wn, kk,
                                                      nn, rgn, dps)
                if conv and _joint_dist(mn, un, m, u, tau) <= R2[c]:
                    took = c
                    break
            if took >= 0:
                break
        if took >= 0:
            pm = m
            pR = R2[took]
            zprev = z
            mprev = m
            have_prev = True
            for g in range(G):
                pu_row[g] = u[g]
                ptau_row[g] = tau[g]
                uprev[g] = u[g]
                u[g] = un[g]
            m = mn
            z = zt2[took]
            step = st2[took]
            if z == zprev and step < dist:
                # The step fell below the rounding unit of z (the proposal is z itself): the
                # chain cannot move on, and the next secant would divide by z - zprev = 0 (numba
                # raises ZeroDivisionError on a complex division by zero whatever the error
                # model; the same stall as in _gwalk). Not arrived.
                return m, pm, pR, False
            k = nrec[0]
            if k < rec_z.size:
                rec_z[k] = z
                rec_m[k] = m
                for g in range(G):
                    rec_u[k, g] = u[g]
                nrec[0] = k + 1
            if step >= dist:
                return m, pm, pR, True
            th = th2[took]
            fac = _THETA_LONG / th if (np.isfinite(th) and th > 0.0) else 4.0
            fac2 = _THETA_SHORT / th if (np.isfinite(th) and th > 0.0) else 4.0
            h = step * min(max(fac, 1.0), 4.0)
            hn = step * min(max(math.sqrt(fac2), 1.0), 4.0)
        else:
            th = th2[P - 1]
            fac = 0.3 / th if (np.isfinite(th) and th > 0.0) else 0.25
            h = st2[P - 1] * min(max(fac, 0.05), 0.5)
            hn = h
            if h <= 1e-14 * max(abs(tp), 1e-300):
                break
    return m, pm, pR, False


@_jit
def _joint_outputs(npt, G):
    """Result arrays of :func:`joint_walk` / :func:`joint_vertical`: final ``m``, ``u``, the last
    ball's centre ``m``, ``u``, radius and tau, and whether each chain arrived."""
    return (np.zeros(npt, dtype=np.complex128), np.zeros((npt, G), dtype=np.complex128),
            np.zeros(npt, dtype=np.complex128), np.zeros((npt, G), dtype=np.complex128),
            np.zeros(npt), np.ones((npt, G)), np.zeros(npt, dtype=np.bool_))


@_jit
def _joint_scratch(G, K):
    """Work arrays of :func:`_joint_walk_one` for ``G`` groups of at most ``K`` atoms."""
    return (np.zeros(G, dtype=np.complex128), np.zeros(G, dtype=np.complex128), np.zeros(G, dtype=np.complex128),
            np.zeros(G), np.zeros(G, dtype=np.complex128), np.zeros((G, K)), np.zeros((G, K)), np.zeros(G),
            np.zeros(G, dtype=np.complex128), np.zeros(G, dtype=np.complex128), np.zeros(G, dtype=np.complex128),
            np.zeros(G, dtype=np.complex128), np.zeros(1, dtype=np.complex128), np.zeros(1, dtype=np.complex128),
            np.zeros(1, dtype=np.bool_), np.zeros(1), np.zeros(1))


@_jit
def joint_walk(z0, m0, u0, t, a_all, e_all, log_c, Vn, Wn, kk, nn, Vc, WVc, aVc, aWVc, live, a, e, e0,
               max_rounds, tol, theta0):
    """:func:`_joint_walk_one` for each start ``(z0, m0, u0)`` and target ``t`` (complex arrays),
    ``theta0`` the joint test's ``theta`` on the whole segment from the start (``inf`` where not
    known). Returns the final ``(m, u)``, the last ball (centre ``m``, ``u``, radius, tau),
    arrived."""
    # (the full laws packed once, their zero padding to the longest law not summed: _pack_laws)
    Vp, Wp = _pack_laws(Vn, Wn)
    npt = t.size
    G = kk.size
    out_m, out_u, pm, pu, pR, ptau, done = _joint_outputs(npt, G)
    (Phi, Gp, rg, errg, lu, a1m, a1p, tau, u, un, rgn, dps, zf1, zt1, ok1, R1,
     th1) = _joint_scratch(G, Vc.shape[1])
    rec_z, rec_m, rec_u, nrec = _joint_record(0, G)
    for p in range(npt):
        for g in range(G):
            u[g] = u0[p, g]
        m, pm[p], pR[p], done[p] = _joint_walk_one(
            z0[p], m0[p], t[p], u, un, a_all, e_all, log_c, Vp, Wp, kk, nn, Vc, WVc, aVc, aWVc, live, a, e, e0,
            max_rounds, tol, Phi, Gp, rg, errg, lu, a1m, a1p, tau, rgn, dps, zf1, zt1, ok1, R1, th1, pu[p], ptau[p],
            rec_z, rec_m, rec_u, nrec, theta0[p])
        out_m[p] = m
        for g in range(G):
            out_u[p, g] = u[g]
    return out_m, out_u, pm, pu, pR, ptau, done


@_jit
def _joint_record(n, G):
    """Room for ``n`` states ``(z, m, u)`` of a certified chain, and their count."""
    return (np.zeros(n, dtype=np.complex128), np.zeros(n, dtype=np.complex128),
            np.zeros((n, G), dtype=np.complex128), np.zeros(1, dtype=np.int64))


_JOINT_BRANCH = 4.0  # a chain branches off the last one where it is this many times higher than the offset


@_jit
def joint_vertical(t, Y, mean, a_all, e_all, log_c, Vn, Wn, kk, nn, mu, Vc, WVc, aVc, aWVc, live, a, e, e0,
                   max_rounds, tol, branch):
    """``fpcore._lilypad._Joint.vertical`` compiled: a certified chain from the far field at
    ``t + i Y / 64`` (raised by 4 until the far start is certified) straight down to each real
    ``t``. Returns the final ``(m, u)``, the last step's ball (centre ``m``, ``u``, radius, tau)
    and whether the chain arrived.

    The targets are taken in increasing order, and each chain's accepted states are kept: the
    next target's chain starts from the lowest of them at least ``_JOINT_BRANCH`` times as high
    as its offset from the target, and walks straight there (a chain's state is the start of the
    rest of that chain, so it starts another as well as the far field does; near ``x = 0`` of an
    orthogonal tanh net, chains to targets ``1e-8`` apart share all but their last decades of
    some 100 steps each). Where the branch does not arrive, the target gets its own chain. Without
    ``branch`` every target gets its own chain."""
    # (the full laws packed once, their zero padding to the longest law not summed: _pack_laws)
    Vp, Wp = _pack_laws(Vn, Wn)
    npt = t.size
    G = kk.size
    out_m, out_u, pm, pu, pR, ptau, done = _joint_outputs(npt, G)
    (Phi, Gp, rg, errg, lu, a1m, a1p, tau, u, un, rgn, dps, zf1, zt1, ok1, R1,
     th1) = _joint_scratch(G, Vc.shape[1])
    rec_z, rec_m, rec_u, nrec = _joint_record(max_rounds + 1, G)
    order = np.argsort(t)
    for p in order:
        tp = t[p]
        tz = complex(tp, 0.0)
        k = -1
        for j in range(nrec[0] if branch else 0):
            if rec_z[j].imag >= _JOINT_BRANCH * abs(tp - rec_z[j].real):
                k = j
        if k >= 0:  # the branch
            for g in range(G):
                u[g] = rec_u[k, g]
            nrec[0] = k + 1
            m, pm[p], pR[p], done[p] = _joint_walk_one(
                rec_z[k], rec_m[k], tz, u, un, a_all, e_all, log_c, Vp, Wp, kk, nn, Vc, WVc, aVc, aWVc, live, a,
                e, e0, max_rounds, tol, Phi, Gp, rg, errg, lu, a1m, a1p, tau, rgn, dps, zf1, zt1, ok1, R1, th1,
                pu[p], ptau[p], rec_z, rec_m, rec_u, nrec, np.inf)
            if done[p]:
                out_m[p] = m
                for g in range(G):
                    out_u[p, g] = u[g]
                continue
        nrec[0] = 0
        z = complex(tp, Y * _JOINT_START)
        started = False
        m = 0j
        for _ in range(60):  # the far start, certified: raise Y until it is
            m = mean / z
            for g in range(G):
                u[g] = kk[g] * m / mu[g]
                un[g] = u[g]
            zf1[0] = z
            zt1[0] = z
            _joint_point(zf1, zt1, m, u, Vc, WVc, aVc, aWVc, live, kk, nn, a, e, e0, log_c,
                         Phi, Gp, rg, errg, lu, a1m, a1p, tau, ok1, R1, th1)
            ok, R, th = ok1[0], R1[0], th1[0]
            mn, conv, res, inner, used = _gnewton(z, m, un, 40, tol, a_all, e_all, log_c, Vp, Wp, kk, nn, rgn, dps)
            if ok and conv and _joint_dist(mn, un, m, u, tau) <= R:
                m = mn
                for g in range(G):
                    u[g] = un[g]
                started = True
                break
            z = complex(tp, 4.0 * z.imag)
        if not started:
            continue
        rec_z[0] = z
        rec_m[0] = m
        for g in range(G):
            rec_u[0, g] = u[g]
        nrec[0] = 1
        m, pm[p], pR[p], done[p] = _joint_walk_one(
            z, m, tz, u, un, a_all, e_all, log_c, Vp, Wp, kk, nn, Vc, WVc, aVc, aWVc, live, a, e, e0, max_rounds,
            tol, Phi, Gp, rg, errg, lu, a1m, a1p, tau, rgn, dps, zf1, zt1, ok1, R1, th1, pu[p], ptau[p], rec_z,
            rec_m, rec_u, nrec, np.inf)
        out_m[p] = m
        for g in range(G):
            out_u[p, g] = u[g]
    return out_m, out_u, pm, pu, pR, ptau, done


# -- off-grid targets of non-rational equations (Spectrum.cdf / quantile, moments' contour) ---
@_jit
def walk_general(z0, m0, u0, t, h_frac, a, e, log_c, V, W, kk, nn, max_rounds, tol):
    """Each start ``(z0_i, m0_i, u0_i)`` walked to its target ``t_i`` by :func:`_gwalk` (the
    compiled form of the vectorised ``_gchain``: same acceptance checks, step doubled / quartered,
    8 Newton iterations per proposal), first step ``h_frac |t_i - z0_i|``. Returns ``m``, ``u``
    (n, G), a reached mask and the counts (lilypads, Newton steps, rejected)."""
    n = t.size
    G = kk.size
    out, outu, ok, counts, rg, dps, un, u = _walk_buffers(n, G)
    for i in range(n):
        for g in range(G):
            u[g] = u0[i, g]
        z = z0[i]
        m, good = _gwalk(z, m0[i], u, t[i], h_frac * abs(t[i] - z), a, e, log_c, V, W, kk, nn, rg, dps, un,
                         max_rounds, tol, counts, 8)
        out[i] = m
        for g in range(G):
            outu[i, g] = u[g]
        ok[i] = good
    return out, outu, ok, counts


@_jit
def vertical_general_complex(t, Y, mean, a, e, log_c, V, W, kk, nn, mu, max_rounds, tol):
    """Each target ``t_i`` (``Im t_i >= 0``) from far above: joint Newton at ``t_i + i Y`` from
    ``m = mean / z``, ``u_g = k_g m / E[D_g^2]``, then a walk straight down to ``t_i`` (8 Newton
    iterations per step as in the vectorised walk; near a square-root edge Newton slows down, the
    Jacobian degenerating there, so a failed walk is retried with 16). Returns ``m``, ``u``
    (n, G), a verified mask and the counts (lilypads, Newton steps, rejected)."""
    n = t.size
    G = kk.size
    out, outu, ok, counts, rg, dps, un, u = _walk_buffers(n, G)
    Vp, Wp = _pack_laws(V, W)
    for i in range(n):
        ti = t[i]
        z0 = ti + 1j * Y
        m, good = 0j, False
        for iters in (8, 16):
            m0 = mean / z0
            for g in range(G):
                u[g] = kk[g] * m0 / mu[g]
            m0, conv, res, inner, used = _gnewton(z0, m0, u, 12, tol, a, e, log_c, Vp, Wp, kk, nn, rg, dps)
            counts[0] += 1
            counts[1] += used
            m, good = _gwalk(z0, m0, u, ti, 0.25 * Y, a, e, log_c, Vp, Wp, kk, nn, rg, dps, un, max_rounds, tol,
                             counts, iters)
            if good:
                break
        out[i] = m
        for g in range(G):
            outu[i, g] = u[g]
        ok[i] = good
    return out, outu, ok, counts


@_jit
def sheet_slopes(t, m, u, a, e, log_c, V, W, kk, nn):
    """``D = d r_0 / dm`` along ``r_g = 0`` (``dr_0/dm + sum_g n_g k_g / (u_g psi_g'(u_g))``, the
    Schur complement of joint Newton) at each ``(t_i, m_i, u_i)``: ``dz / dm = -z D``
    (:func:`fpcore._lilypad.physical_sheet`). NaN where a residual is not finite."""
    n = t.size
    G = kk.size
    out = np.empty(n, dtype=np.complex128)
    rg = np.empty(G, dtype=np.complex128)
    dps = np.empty(G, dtype=np.complex128)
    ui = np.empty(G, dtype=np.complex128)
    for i in range(n):
        for g in range(G):
            ui[g] = u[i, g]
        r0, gp = _gres(t[i], m[i], ui, a, e, log_c, V, W, kk, nn, rg, dps)
        d = gp
        for g in range(G):
            d += nn[g] * kk[g] / (ui[g] * dps[g])
        out[i] = d
    return out


@_jit
def residuals_general(t, m, u, a, e, log_c, V, W, kk, nn):
    """``|r_0|`` (beyond its floor, as in :func:`_gnewton`) and the worst relative inner residual
    ``max_g |psi_g(u_g) - k_g m| / |k_g m|`` at each ``(t_i, m_i, u_i)`` (the vectorised
    ``_General.newton(..., 0)`` checks, compiled)."""
    n = t.size
    G = kk.size
    res = np.empty(n)
    inner = np.empty(n)
    rg = np.empty(G, dtype=np.complex128)
    dps = np.empty(G, dtype=np.complex128)
    ui = np.empty(G, dtype=np.complex128)
    for i in range(n):
        for g in range(G):
            ui[g] = u[i, g]
        r0, gp = _gres(t[i], m[i], ui, a, e, log_c, V, W, kk, nn, rg, dps)
        if not (math.isfinite(r0.real) and math.isfinite(r0.imag)):
            res[i] = np.inf
            inner[i] = np.inf
            continue
        res[i] = max(abs(r0) - _RES_FLOOR * _mfloor(m[i], a, e), 0.0)  # (beyond the floats' floor)
        w = 0.0
        for g in range(G):
            w = max(w, abs(rg[g]) / max(abs(kk[g] * m[i]), 1e-300))
        inner[i] = w
    return res, inner
