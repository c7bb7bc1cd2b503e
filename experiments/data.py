"""Classification tasks that need no download.

* ``"digits"``: scikit-learn's bundled handwritten digits (1797 samples, 8x8 images = 64 features,
  10 classes). Fixed stratified split: 70 % train (1257), 30 % test (540), ``random_state=0``.
* ``"mnist1d"``: the MNIST-1D task (Greydanus 2020; 40 features, 10 classes), *generated offline*
  with the ``mnist1d`` package's own generator (``mnist1d.data.make_dataset`` with its default
  arguments, seed 42: 4000 train, 1000 test). The package's ``get_dataset`` would try to download a
  pickle first; we never call it.

Both are standardised per feature with the training set's mean and standard deviation (features
that are constant on the training set, e.g. the always-blank corner pixels of digits, become 0).
The input variance ``q0`` that the FP metrics use is measured on the standardised training inputs,
``q0 = mean(x_i^2)`` over samples and features, so the analysed network sees the data's scale.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Task", "TASKS", "load_task"]

TASKS = ("digits", "mnist1d")


@dataclass(frozen=True)
class Task:
    """A standardised classification data set with a fixed train/test split."""

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    n_classes: int
    description: str = field(default="", repr=False)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def q0(self) -> float:
        """Mean squared input entry on the training set (the ``q0`` of the analysed network)."""
        return float(np.mean(self.x_train.astype(np.float64) ** 2))


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)  # constant features map to 0 instead of NaN
    return ((x_train - mu) / sd).astype(np.float32), ((x_test - mu) / sd).astype(np.float32)


def _digits() -> Task:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    x_tr, x_te = _standardise(x_tr, x_te)
    return Task(
        "digits",
        x_tr,
        y_tr.astype(np.int64),
        x_te,
        y_te.astype(np.int64),
        10,
        "scikit-learn digits, 64 features, 10 classes, stratified 70/30 split (random_state=0), standardised",
    )


def _mnist1d() -> Task:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("task 'mnist1d' needs the 'mnist1d' package: pip install mnist1d") from exc
    import random

    # The generator reseeds the global RNGs: keep the caller's streams untouched.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x_tr, x_te = _standardise(np.asarray(d["x"], float), np.asarray(d["x_test"], float))
    return Task(
        "mnist1d",
        x_tr,
        np.asarray(d["y"], np.int64),
        x_te,
        np.asarray(d["y_test"], np.int64),
        10,
        "MNIST-1D generated offline (mnist1d.data.make_dataset, default args, seed 42), 40 features, "
        "10 classes, 4000/1000 split, standardised",
    )


@functools.lru_cache(maxsize=None)
def load_task(name: str) -> Task:
    """Load a task by name (cached per process).

    Examples
    --------
    >>> t = load_task("digits")
    >>> t.x_train.shape, t.x_test.shape, t.n_classes
    ((1257, 64), (540, 64), 10)
    """
    if name == "digits":
        return _digits()
    if name == "mnist1d":
        return _mnist1d()
    raise ValueError(f"unknown task {name!r}; choose one of {TASKS}")
