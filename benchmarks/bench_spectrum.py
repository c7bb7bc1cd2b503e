"""Benchmark of the spectrum engine: median time over repeated runs, solver work, and the speed
ratio against network Monte Carlo at width 1000 on the same architecture (with the KS distance
between the two).

    python benchmarks/bench_spectrum.py [--repeats 15] [--quick]

Prints one table per section; nothing is asserted (speed is measured here, not in tests).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import fpcore  # noqa: E402

CASES = [
    ("linear", 1.0),
    ("relu", 2.0),
]
# Smooth activations (joint Newton on (m, u_1..u_L), verified a posteriori): q0 = 1, so every
# layer has its own law of D^2 (the non-stationary case), and at a fixed point (one law; tanh at
# sigma_w2 = 1 without bias has none above 0).
SMOOTH = [
    ("tanh", 1.0, 0.0, 1.0),
    ("tanh", 1.5, 0.05, "fixed_point"),
    ("gelu", 2.0, 0.0, 1.0),
]
SMOOTH_DEPTHS = [5, 20, 100]
DEPTHS = [1, 5, 20, 100, 500]


def ks_resolved(spec, ev, floor: float = 1e-12) -> float:
    """KS distance over ``x >= floor * lambda_max`` only. Deep nets put much of their mass far
    below what a double-precision product of matrices resolves (a Fuss-Catalan law of depth 100
    has F(1e-14 lambda_max) ~ 0.7), so the plain KS distance there measures the Monte Carlo's
    round-off, not the law; above the floor both CDFs are well defined."""
    ev = np.sort(np.asarray(ev, dtype=float))
    t = ev[ev >= floor * spec.lambda_max]
    if t.size == 0:
        return float("nan")
    F = spec.cdf(t)
    hi = np.searchsorted(ev, t, side="right") / ev.size
    lo = np.searchsorted(ev, t, side="left") / ev.size
    Fm = spec.cdf(np.nextafter(t, -np.inf))
    return float(max(np.max(np.abs(F - hi)), np.max(np.abs(Fm - lo))))


def median_ms(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), out


def first_call() -> None:
    """First ``jacobian_spectrum`` call in a fresh interpreter (imports excluded), with an empty
    numba cache (compiles) and then with the cache that run wrote (loads machine code)."""
    import subprocess
    import sys
    import tempfile

    print()
    print("## First call in a fresh process (depth 20, 1000 points)")
    print(f"{'network':<10}{'empty numba cache':>20}{'warm numba cache':>20}")
    for label, net in (("relu", "fpcore.Network([1000] * 21, 'relu', sigma_w2=2.0)"),
                       ("gelu", "fpcore.Network([1000] * 21, 'gelu', sigma_w2=2.0)")):
        code = (f"import time, fpcore; net = {net}; "
                "t = time.perf_counter(); fpcore.jacobian_spectrum(net, n_points=1000); "
                "print(time.perf_counter() - t)")
        row = []
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            for _ in range(2):
                out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
                row.append(1e3 * float(out.stdout.strip()))
        print(f"{label:<10}{row[0]:>17.0f} ms{row[1]:>17.0f} ms")


def smooth_table(args) -> None:
    print()
    reps = 3 if args.quick else args.repeats
    print(f"## Smooth activations (width 1000, square, 1000 grid points; median of {reps}, 5 at depth 100)")
    print(f"{'activation':<11}{'q0':>12}{'depth':>6}{'median ms':>11}{'laws':>6}{'lilypads':>10}{'newton':>9}"
          f"{'uncert.':>8}")
    for act, sw, sb, q0 in SMOOTH:
        for L in ([5, 20] if args.quick else SMOOTH_DEPTHS):
            net = fpcore.Network([1000] * (L + 1), act, sigma_w2=sw, sigma_b2=sb, q0=q0)
            ms, s = median_ms(lambda: fpcore.jacobian_spectrum(net, n_points=1000), reps if L < 100 else min(reps, 5))
            st = s.stats
            print(f"{act:<11}{str(q0):>12}{L:>6}{ms:>11.1f}{len(s._eq.ugroups):>6}{st.n_lilypads:>10}"
                  f"{st.n_newton_steps:>9}{st.n_uncertified:>8}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="fewer depths and repeats")
    ap.add_argument("--no-smooth", action="store_true", help="skip the smooth-activation table (slow at depth 100)")
    ap.add_argument("--smooth-only", action="store_true", help="only the smooth-activation table")
    args = ap.parse_args()
    depths = [1, 5, 20] if args.quick else DEPTHS
    reps = 3 if args.quick else args.repeats

    if args.smooth_only:
        smooth_table(args)
        return
    print("## Spectrum engine (width 1000, square, 1000 grid points)")
    print(f"{'activation':<11}{'depth':>6}{'n_points':>9}{'median ms':>11}{'lilypads':>10}{'newton':>9}{'rejected':>10}{'uncert.':>8}")
    rows = []
    for act, sw in CASES:
        for L in depths:
            net = fpcore.Network([1000] * (L + 1), act, sigma_w2=sw)
            ms, s = median_ms(lambda: fpcore.jacobian_spectrum(net, n_points=1000), reps)
            st = s.stats
            rows.append((act, L, ms))
            print(f"{act:<11}{L:>6}{st.n_points:>9}{ms:>11.2f}{st.n_lilypads:>10}{st.n_newton_steps:>9}"
                  f"{st.n_rejected:>10}{st.n_uncertified:>8}")

    first_call()
    if not args.no_smooth:
        smooth_table(args)

    print()
    print("## Scaling in the number of points (ReLU, depth 20)")
    print(f"{'n_points':>9}{'median ms':>11}{'ms / 1000 pts':>15}")
    net = fpcore.Network([1000] * 21, "relu", sigma_w2=2.0)
    for n in ([250, 1000, 4000] if not args.quick else [250, 1000]):
        ms, _ = median_ms(lambda: fpcore.jacobian_spectrum(net, n_points=n), reps)
        print(f"{n:>9}{ms:>11.2f}{1000 * ms / n:>15.2f}")

    print()
    print("## Against network Monte Carlo at width 1000 (one network, same architecture)")
    print(f"{'activation':<11}{'depth':>6}{'solver ms':>11}{'MC ms':>10}{'MC/solver':>11}{'KS':>8}{'KS x>1e-12 lmax':>17}")
    for act, sw in CASES:
        for L in ([1, 5, 20] if args.quick else [1, 5, 20, 100]):
            net = fpcore.Network([1000] * (L + 1), act, sigma_w2=sw)
            ms, s = median_ms(lambda: fpcore.jacobian_spectrum(net, n_points=1000), reps)
            t0 = time.perf_counter()
            ev = fpcore.sample_jacobian_eigenvalues(net, seed=0)
            mc = 1e3 * (time.perf_counter() - t0)
            print(f"{act:<11}{L:>6}{ms:>11.2f}{mc:>10.0f}{mc / ms:>11.0f}{fpcore.ks_distance(s, ev):>8.4f}"
                  f"{ks_resolved(s, ev):>17.4f}")


if __name__ == "__main__":
    main()
