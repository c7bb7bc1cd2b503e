"""Basin frame time of the lilypad view: compiled ``newton_basins`` at 256 x 256 pixels.

For each network, the lilypad chain toward the median of its spectrum is recorded once; every
frame of the chain is then drawn as the dashboard draws it (``dashboard.basins.compute_frame``:
window probe + 256 x 256 frame, preview blocks of 4, colouring; nothing cached) and, for
comparison, as the full image (Newton from every pixel, one thread). Prints medians and maxima
over the frames (ms), the CPU time of the dashboard frame and the ratio full / dashboard.

``--baseline DIR`` (a checkout of an older commit) first runs this same script against the checkout ``DIR``
(its ``fpcore`` and ``dashboard``; numba's cache for it under a temporary directory) in a
subprocess, then here, and prints the ratio baseline / this of the dashboard frame's median per
network, and of its CPU time (all threads; less sensitive to other processes than the wall
time): both in the same run, one after the other, on the same machine load (printed); then, per
network, the median, least and largest of the per-frame CPU ratios (baseline / this, frame by
frame: a few slow frames no longer hide behind the median). Run:

    python benchmarks/bench_basins.py [--repeats 3] [--baseline DIR] [--no-full] [--cases ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.environ.get("BENCH_BASINS_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import fpcore  # noqa: E402
from dashboard import basins as B  # noqa: E402
from fpcore._basins import basins_of_equation  # noqa: E402

CASES = [
    ("ReLU L=10", fpcore.Network([400] * 11, "relu", sigma_w2=2.0)),
    ("ReLU L=50", fpcore.Network([400] * 51, "relu", sigma_w2=2.0)),
    ("leaky ReLU L=10", fpcore.Network([400] * 11, "leaky_relu:0.2", sigma_w2=2.0)),
    ("tanh L=10", fpcore.Network([400] * 11, "tanh", sigma_w2=1.0)),
    ("tanh L=10 q*", fpcore.Network([400] * 11, "tanh", sigma_w2=1.5, sigma_b2=0.05, q0="fixed_point")),
    ("GELU L=10", fpcore.Network([400] * 11, "gelu", sigma_w2=2.0)),
]


def measure(repeats: int, names: list[str] | None = None, full: bool = True) -> dict:
    """``{network: (frames, dash median, dash max, cpu median, full median, dash p90, cpu per frame)}``
    in seconds."""
    basins_of_equation(B._equation(CASES[0][1], "JtJ"), 1 + 1j, np.zeros(2), np.zeros(2))  # compile / load
    basins_of_equation(B._equation(CASES[3][1], "JtJ"), 1 + 1j, np.zeros(2), np.zeros(2))
    out = {}
    for name, net in CASES:
        if names and name not in names:
            continue
        s = fpcore.jacobian_spectrum(net, n_points=60)
        x = float(s.quantile(0.5))
        if x <= 0:
            x = 0.5 * float(s.lambda_max)
        tr = fpcore.lilypad_trace(net, x)
        eq = B._equation(net, "JtJ")
        dash, cpu, fulls = [], [], []
        for k in range(len(tr.centres)):
            best, best_cpu = np.inf, np.inf
            for _ in range(repeats):
                B._frame_cached.cache_clear()
                t0, c0 = time.perf_counter(), time.process_time()
                B.compute_frame(net, "JtJ", tr, k)
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            dash.append(best)
            cpu.append(best_cpu)
            if full:
                centre, half = B.basin_window(net, "JtJ", tr, k)
                re = np.linspace(centre.real - half, centre.real + half, B.BASIN_PIXELS)
                im = np.linspace(centre.imag - half, centre.imag + half, B.BASIN_PIXELS)
                t0 = time.perf_counter()
                basins_of_equation(eq, complex(tr.centres[k]), re, im, B.MAX_ITER)
                fulls.append(time.perf_counter() - t0)
        out[name] = (len(dash), float(np.median(dash)), float(max(dash)), float(np.median(cpu)),
                     float(np.median(fulls)) if fulls else float("nan"), float(np.percentile(dash, 90)),
                     [float(c) for c in cpu])  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", help="a checkout to time first with this same script (e.g. /work/main)")
    ap.add_argument("--cases", nargs="*", choices=[c[0] for c in CASES], help="networks (default: all)")
    ap.add_argument("--no-full", action="store_true", help="skip the full image (Newton from every pixel)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # (the baseline subprocess)
    args = ap.parse_args()
    base = None
    if args.baseline:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, BENCH_BASINS_ROOT=os.path.abspath(args.baseline), NUMBA_CACHE_DIR=cache,
                       PYTHONPATH=os.path.abspath(args.baseline))  # fmt: skip
            cmd = [sys.executable, os.path.abspath(__file__), "--json", "--repeats", str(args.repeats)]
            if args.cases:
                cmd += ["--cases", *args.cases]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            base = json.loads(res.stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(measure(args.repeats, args.cases, full=False)))
        return
    res = measure(args.repeats, args.cases, full=not args.no_full)
    load = os.getloadavg()
    print(f"cores: {os.cpu_count()}, load average {load[0]:.1f} {load[1]:.1f}, pixels {B.BASIN_PIXELS} x "
          f"{B.BASIN_PIXELS}, threads {B.THREADS}, max_iter {B.MAX_ITER}, atoms {B.ATOMS}")  # fmt: skip
    head = (f"{'network':18s} {'frames':>6s} {'dash med':>9s} {'dash p90':>9s} {'dash max':>9s} {'cpu med':>8s} "
            f"{'full med':>9s} "
            f"{'full/dash':>9s}" + (f" {'base med':>9s} {'base/dash':>9s} {'base cpu':>9s} {'cpu ratio':>9s}" if base
                                    else ""))  # fmt: skip
    print(head)
    print("-" * len(head))
    frame_ratios = {}
    for name, (n, d, dmax, c, f, *rest) in res.items():
        p90 = f"{1e3 * rest[0]:9.1f}" if rest else f"{'':9s}"
        line = f"{name:18s} {n:6d} {1e3 * d:9.1f} {p90} {1e3 * dmax:9.1f} {1e3 * c:8.1f} {1e3 * f:9.1f} {f / d:9.2f}"
        if base and name in base:
            bd, bc = base[name][1], base[name][3]
            line += f" {1e3 * bd:9.1f} {bd / d:9.2f} {1e3 * bc:9.1f} {bc / c:9.2f}"
            if len(base[name]) > 6 and len(rest) > 1 and len(base[name][6]) == len(rest[1]):
                frame_ratios[name] = np.array(base[name][6]) / np.maximum(np.array(rest[1]), 1e-9)
        print(line)
    if frame_ratios:  # (the same frames in both runs: the chain is recorded by each run's fpcore)
        print(f"\n{'network':18s} CPU ratio base / this per frame: {'median':>7s} {'min':>6s} {'max':>6s}")
        for name, r in frame_ratios.items():
            print(f"{name:18s} {'':33s} {np.median(r):7.2f} {r.min():6.2f} {r.max():6.2f}")
    if base:
        print(f"\nbase: the same script against {args.baseline} (dashboard frame only), run just before")


if __name__ == "__main__":
    main()
