"""Time the library calls of the adversarial check on chosen draws of ``adversarial.py``.

Per draw (same sequence as ``python benchmarks/adversarial.py --seed S --n N``, default spread):
``jacobian_spectrum`` with 300 points (first call), with 1000 points (second call), ``cdf`` on the
check's fine grid, ``quantile`` of its 16 probabilities, ``variance``; certified / verified /
uncertified of the 1000-point grid. Monte Carlo is not timed here (``adversarial.py`` does it).
Nothing is asserted.

Usage::

    python benchmarks/bench_adversarial_draws.py --seed 3 --only 33,56,26,135
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adversarial as adv  # noqa: E402

import fpcore  # noqa: E402


def draws(seed: int, n: int, only: set[int], spread: float = 0.6, min_width: int = 1000) -> dict:
    """``{index: (net, gram)}`` of the draws in ``only`` (the sequence of :func:`adversarial.run`)."""
    rng = np.random.default_rng(seed)
    names = list(fpcore.ACTIVATIONS)
    out, n_drawn = {}, 0
    while n_drawn < n and len(out) < len(only):
        try:
            net, gram, _ = adv.draw_network(rng, names, min_width, 30, spread)
            fpcore.mean_field(net)
        except ValueError:
            continue
        except Exception:  # noqa: BLE001 - counted as a draw, as in adversarial.run
            n_drawn += 1
            continue
        if n_drawn in only:
            out[n_drawn] = (net, gram)
        n_drawn += 1
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--only", required=True, help="comma-separated draw indices")
    ap.add_argument("--spread", type=float, default=0.6)
    a = ap.parse_args(argv)
    only = [int(v) for v in a.only.split(",") if v]
    nets = draws(a.seed, a.n, set(only), a.spread)
    warnings.simplefilter("ignore")
    fpcore.jacobian_spectrum(fpcore.Network([50, 50, 50], ["gelu", "tanh"], sigma_w2=1.5), n_points=50).cdf([0.5])
    print(f"{'draw':>5} {'L':>3} {'sp300 s':>8} {'sp1000 s':>9} {'cdf s':>7} {'quant s':>8} {'var s':>7}  cert/verif/uncert")
    for k in only:
        if k not in nets:
            continue
        net, gram = nets[k]
        t0 = time.perf_counter()
        s = fpcore.jacobian_spectrum(net, gram=gram, n_points=300)
        t1 = time.perf_counter()
        fpcore.jacobian_spectrum(net, gram=gram, n_points=1000)
        t2 = time.perf_counter()
        s2 = fpcore.jacobian_spectrum(net, gram=gram, n_points=1000)
        t3 = time.perf_counter()
        s.cdf(adv._fine_grid(s, 600))
        t4 = time.perf_counter()
        s.quantile(adv._QUANTILE_P)
        t5 = time.perf_counter()
        try:
            s.variance
        except ValueError:
            pass
        t6 = time.perf_counter()
        st = s2.stats
        print(f"{k:5d} {net.depth:3d} {t1 - t0:8.2f} {t3 - t2:9.2f} {t4 - t3:7.2f} {t5 - t4:8.2f} {t6 - t5:7.2f}  "
              f"{st.n_certified}/{st.n_verified}/{st.n_uncertified}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
