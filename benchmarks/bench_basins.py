"""Basin frame time of the lilypad view: compiled ``newton_basins`` at 256 x 256 pixels.

For each network, the lilypad chain toward the median of its spectrum is recorded once; every
frame of the chain is then drawn as the dashboard draws it (``dashboard.basins.compute_frame``:
window probe + 256 x 256 frame, preview blocks of 4, colouring) and, for comparison, as the full
image (Newton from every pixel, one thread). Prints medians and maxima over the frames (ms), the
CPU time of the dashboard frame and the ratio full / dashboard. Run:

    python benchmarks/bench_basins.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    # compile / load the kernels outside the timings
    basins_of_equation(B._equation(CASES[0][1], "JtJ"), 1 + 1j, np.zeros(2), np.zeros(2))
    basins_of_equation(B._equation(CASES[3][1], "JtJ"), 1 + 1j, np.zeros(2), np.zeros(2))
    print(f"cores: {os.cpu_count()}, pixels {B.BASIN_PIXELS} x {B.BASIN_PIXELS}, threads {B.THREADS}, "
          f"max_iter {B.MAX_ITER}, atoms {B.ATOMS}")  # fmt: skip
    head = f"{'network':18s} {'frames':>6s} {'dash med':>9s} {'dash max':>9s} {'cpu med':>8s} {'full med':>9s} {'full/dash':>9s}"
    print(head)
    print("-" * len(head))
    for name, net in CASES:
        s = fpcore.jacobian_spectrum(net, n_points=60)
        x = float(s.quantile(0.5))
        if x <= 0:
            x = 0.5 * float(s.lambda_max)
        tr = fpcore.lilypad_trace(net, x)
        eq = B._equation(net, "JtJ")
        dash, cpu, full = [], [], []
        for k in range(len(tr.centres)):
            best, best_cpu = np.inf, np.inf
            for _ in range(args.repeats):
                B._frame_cached.cache_clear()
                t0, c0 = time.perf_counter(), time.process_time()
                B.compute_frame(net, "JtJ", tr, k)
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            dash.append(best)
            cpu.append(best_cpu)
            centre, half = B.basin_window(net, "JtJ", tr, k)
            re = np.linspace(centre.real - half, centre.real + half, B.BASIN_PIXELS)
            im = np.linspace(centre.imag - half, centre.imag + half, B.BASIN_PIXELS)
            t0 = time.perf_counter()
            basins_of_equation(eq, complex(tr.centres[k]), re, im, B.MAX_ITER)
            full.append(time.perf_counter() - t0)
        d, f = np.median(dash), np.median(full)
        print(f"{name:18s} {len(dash):6d} {1e3 * d:9.1f} {1e3 * max(dash):9.1f} {1e3 * np.median(cpu):8.1f} "
              f"{1e3 * f:9.1f} {f / d:9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
