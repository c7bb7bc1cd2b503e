"""Doctest collection: skip modules whose optional dependency is missing. Session start: compile
(or load from numba's cache) the lilypad kernels once, before tests start dashboard servers in
subprocesses that would otherwise compile them concurrently."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("torch") is None:
    collect_ignore.append("fpcore/_torch.py")


def pytest_sessionstart(session):
    import fpcore

    fpcore.jacobian_spectrum(fpcore.Network([20, 20]), n_points=20)
    fpcore.jacobian_spectrum(fpcore.Network([20, 20, 20], "gelu", sigma_w2=2.0), n_points=40)
