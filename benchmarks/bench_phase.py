"""Time of :func:`fpcore.phase_diagram` on a 200 x 200 grid, against a per-cell baseline.

The baseline solves each cell on its own, as a loop over :func:`fpcore._meanfield.fixed_point`
and ``Activation.d2_moment`` would, on a 20 x 20 subgrid of the same range; its time is scaled
to 40 000 cells. Budget (issue 3): a 200 x 200 grid in well under a second.

Usage::

    python benchmarks/bench_phase.py              # 5 repeats
    python benchmarks/bench_phase.py --repeats 9

Prints a table: activation, median / min time of the grid (s), per-cell baseline extrapolated to
the grid (s), and the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fpcore
from fpcore._meanfield import fixed_point
from fpcore._phase import phase_diagram

SW = np.linspace(0.5, 4.0, 200)
SB = np.linspace(0.0, 0.5, 200)
CASES = ("tanh", "erf", "hard_tanh", "relu", "gelu")


def _baseline(name: str) -> float:
    """Seconds per cell of a scalar loop (fixed point, then chi_1), on a 20 x 20 subgrid."""
    act = fpcore.get_activation(name)
    sw, sb = SW[::10], SB[::10]
    t0 = time.perf_counter()
    for b in sb:
        for w in sw:
            try:
                q = fixed_point(act, float(w), float(b))
                float(w * act.d2_moment(q))
            except ValueError:
                pass  # no finite fixed point
    return (time.perf_counter() - t0) / (sw.size * sb.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'activation':<11} {'median s':>9} {'min s':>8} {'per-cell loop s':>16} {'speed-up':>9}")
    for name in CASES:
        phase_diagram(name, SW[:4], SB[:4])  # first-call costs out of the timing
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            phase_diagram(name, SW, SB)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        base = _baseline(name) * SW.size * SB.size
        print(f"{name:<11} {med:>9.3f} {min(times):>8.3f} {base:>16.2f} {base / med:>8.0f}x")


if __name__ == "__main__":
    main()
