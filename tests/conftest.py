"""Shared test configuration.

BLAS is limited to one thread: the Monte Carlo tests multiply many ~1000 x 1000 matrices and
multithreaded BLAS thrashes on the 2-core CI machines when other work runs beside it.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn; optional here
    pass
