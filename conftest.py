"""Doctest collection: skip modules whose optional dependency is missing."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("torch") is None:
    collect_ignore.append("fpcore/_torch.py")
