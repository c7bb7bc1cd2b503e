"""Results do not depend on process history: not on what ran before in the process, and not on
whether numba compiled the kernels afresh or loaded them from its on-disk cache.

numba's cache (``cache=True``) checks only the source file of the function itself; a kernel that
calls a kernel of another file keeps the callee it was compiled with. A cache of fpcore/_gaps.py
written before an edit of ``_fastchain._grid_point`` gave leaky ReLU (orthogonal, L = 2) 2808 Newton
steps and other densities where a fresh compile gave 2778. fpcore stamps every cached kernel
with a digest of all kernel modules (``_fastchain._KERNEL_MODULES``); these tests check the stamp,
that the list of modules is closed, and the results themselves.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import fpcore
from fpcore import _fastchain

PKG = pathlib.Path(fpcore.__file__).resolve().parent
ROOT = PKG.parent
JIT_DECORATORS = {"_jit", "_jit_fast", "_jit_sum"}


def _jit_enabled() -> bool:
    if not _fastchain._HAVE_NUMBA:
        return False
    import numba

    return not numba.config.DISABLE_JIT


needs_numba = pytest.mark.skipif(not _jit_enabled(), reason="numba not installed or its JIT disabled")


def _decorator_names(fn: ast.FunctionDef) -> set[str]:
    out = set()
    for d in fn.decorator_list:
        d = d.func if isinstance(d, ast.Call) else d
        out.add(d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", ""))
    return out


def _kernels(tree: ast.Module) -> list[ast.FunctionDef]:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and _decorator_names(n) & JIT_DECORATORS]


def test_kernel_modules_are_closed():
    """Every module with compiled kernels is in ``_KERNEL_MODULES``, and a kernel uses no name
    imported from a module outside it (its cache would not see that module's edits)."""
    listed = set(_fastchain._KERNEL_MODULES)
    for path in sorted(PKG.glob("*.py")):
        tree = ast.parse(path.read_text())
        kernels = _kernels(tree)
        uses_njit = "njit(" in path.read_text()
        if kernels or uses_njit:
            assert path.stem in listed, f"{path.name} compiles kernels but is not in _KERNEL_MODULES"
        if not kernels:
            continue
        foreign = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module not in listed:
                for a in node.names:
                    foreign[a.asname or a.name] = node.module
            elif isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
                for a in node.names:  # from . import _x
                    if a.name not in listed:
                        foreign[a.asname or a.name] = a.name
        for fn in kernels:
            used = {n.id for stmt in fn.body for n in ast.walk(stmt) if isinstance(n, ast.Name)}
            bad = sorted(used & set(foreign))
            assert not bad, f"kernel {path.stem}.{fn.name} uses {bad} from outside _KERNEL_MODULES"


def test_digest_covers_every_kernel_module(tmp_path):
    for name in _fastchain._KERNEL_MODULES:
        shutil.copy(PKG / f"{name}.py", tmp_path / f"{name}.py")
    base = _fastchain._kernel_digest(str(tmp_path))
    assert base == _fastchain._KERNEL_DIGEST
    for name in _fastchain._KERNEL_MODULES:
        p = tmp_path / f"{name}.py"
        text = p.read_text()
        p.write_text(text + "\n# edited\n")
        assert _fastchain._kernel_digest(str(tmp_path)) != base, name
        p.write_text(text)
    assert _fastchain._kernel_digest(str(tmp_path)) == base


@needs_numba
def test_every_cached_kernel_carries_the_digest():
    from numba.core.registry import CPUDispatcher

    seen = 0
    for name in _fastchain._KERNEL_MODULES:
        mod = importlib.import_module(f"fpcore.{name}")
        for attr, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod.__name__:
                stamp = obj._cache._cache_file._source_stamp
                assert isinstance(stamp, tuple) and stamp[1] == _fastchain._KERNEL_DIGEST, f"{name}.{attr}"
                seen += 1
    assert seen > 50


# -- the results ----------------------------------------------------------------------------------
CELLS = {
    # (widths, activation, sigma_w2, sigma_b2, init): bench_matrix cells, 1000 points
    "leaky_relu orthogonal square L=2": ([1000] * 3, "leaky_relu", 2.0, 0.0, "orthogonal"),
    # the cell where 991 certified / 9 verified vs 1000 / 0 was seen between two processes
    "tanh orthogonal bottleneck L=10": ([1000] * 5 + [250] + [1000] * 5, "tanh", 1.05, 1e-4, "orthogonal"),
}
FRESH = "tanh orthogonal bottleneck L=10"  # compiling the kernels it needs: ~50 s

_SCRIPT = r"""
import hashlib, json, sys, warnings
import fpcore
out = {}
for key, (w, act, sw, sb, init) in json.loads(sys.argv[1]).items():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = fpcore.jacobian_spectrum(fpcore.Network(w, act, sigma_w2=sw, sigma_b2=sb, init=init), n_points=1000)
    st = s.stats
    h = hashlib.sha256()
    for a in (s.x, s.density, s._cdf_grid, s._m_grid):
        h.update(a.tobytes())
    out[key] = [st.n_certified, st.n_verified, st.n_uncertified, st.n_newton_steps, h.hexdigest()]
print(json.dumps(out))
"""


def _fingerprint(s) -> list:
    st = s.stats
    h = hashlib.sha256()
    for a in (s.x, s.density, s._cdf_grid, s._m_grid):
        h.update(a.tobytes())
    return [st.n_certified, st.n_verified, st.n_uncertified, st.n_newton_steps, h.hexdigest()]


def _here(cells) -> dict:
    import warnings

    out = {}
    for key, (w, act, sw, sb, init) in cells.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = fpcore.jacobian_spectrum(fpcore.Network(w, act, sigma_w2=sw, sigma_b2=sb, init=init), n_points=1000)
        out[key] = _fingerprint(s)
    return out


def test_same_result_after_other_spectra():
    """The same call after other spectra, and after the law cache is emptied, is bitwise the same."""
    from fpcore import _activations

    first = _here(CELLS)
    for w, act, sw, sb in (([300, 200, 300], "gelu", 2.0, 0.0), ([400] * 4, "sigmoid", 1.0, 0.0),
                           ([500, 250, 500], "tanh", 1.5, 0.0)):
        for init in ("gaussian", "orthogonal"):
            fpcore.jacobian_spectrum(fpcore.Network(w, act, sigma_w2=sw, sigma_b2=sb, init=init), n_points=200)
    assert _here(dict(reversed(list(CELLS.items())))) == first
    _activations._LAW_CACHE.clear()
    assert _here(CELLS) == first


@pytest.mark.slow
@needs_numba
def test_fresh_compile_and_cache_agree(tmp_path):
    """A process that compiles the kernels afresh (empty NUMBA_CACHE_DIR), one that loads them from
    that cache, and this process give the same counts and bitwise the same arrays."""
    cells = {FRESH: CELLS[FRESH]}
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")

    def run():
        r = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(cells)], env=env, capture_output=True,
                           text=True, timeout=600, check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])

    fresh = run()
    assert any((tmp_path / "numba").rglob("*.nbc")), "nothing was cached"
    cached = run()
    assert fresh == cached
    assert fresh == _here(cells)
    assert fresh[FRESH][:3] == [1000, 0, 0]
