"""The server's warm-up compiles every kernel signature the page uses (issue 13: the first page,
and the first move of any slider, as fast as the tenth).

Run in a fresh interpreter (the test process has compiled other signatures already): the
warm-up, then the page's computations (spectrum, certificate, details, lilypad chain, a basin
frame) for every activation on a tapered and on a square orthogonal net, and for a J J^T view;
any numba dispatcher of fpcore that gains a signature after the warm-up would compile inside a
user's request. (Found this way: a tapered tanh MLP's first move to σ_w² 1.05 compiled four
kernels, 2.9 s on a cold cache; a leaky ReLU net 27 kernels, 10 s.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(900)  # (a cold numba cache compiles the warm-up's kernels first)

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, logging, sys, warnings
    warnings.simplefilter("ignore")
    import numba
    import fpcore
    from dashboard import state
    from dashboard.basins import compute_frame
    from dashboard.presets import default_sigma_w2

    def signatures():
        out = {}
        for name, mod in list(sys.modules.items()):
            if name.startswith(("fpcore", "dashboard")):
                for attr, v in vars(mod).items():
                    if isinstance(v, numba.core.registry.CPUDispatcher):
                        out[name + "." + attr] = {str(s) for s in v.signatures}
        return out

    state._warm_up_nets(logging.getLogger())
    before = signatures()
    nets = []
    for act in fpcore.ACTIVATIONS:
        sw = default_sigma_w2(act)
        nets.append((fpcore.Network([300, 200, 120, 80, 40, 10], act, sigma_w2=sw), "JtJ"))
        nets.append((fpcore.Network([100] * 7, act, sigma_w2=sw, sigma_b2=0.05, init="orthogonal"), "JtJ"))
    nets.append((fpcore.Network([300, 200, 120, 80, 40, 10], "leaky_relu", sigma_w2=2.0), "JJt"))
    new = {}
    for net, gram in nets:
        r = state.compute_spectrum(net, gram, 250, certify=False)
        state.certify_computed(r.computed)
        r.computed.prepare()
        r.computed.left_of(state.log_axis_start(r.spectrum), 1e-12)
        trace = state.compute_trace(net, r.mode_log, gram)
        compute_frame(net, gram, trace, min(1, len(trace.centres) - 1))
        after = signatures()
        for k, v in after.items():
            if v - before.get(k, set()):
                new.setdefault(k, []).append(f"{net!r} {gram}")
        before = after
    print(json.dumps({"nets": len(nets), "new": new}))
    """
)


def test_no_kernel_compiles_after_the_warm_up():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=880)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["nets"] == 2 * len(__import__("fpcore").ACTIVATIONS) + 1
    assert result["new"] == {}, f"kernels compiled after the warm-up: {result['new']}"
