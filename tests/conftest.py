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

# Property tests: random examples on a developer's machine (to find new failures), a fixed
# derandomised sequence under CI=true (a landing must not depend on the draw). Failures found
# locally become explicit regression tests; the standing adversarial script
# (benchmarks/adversarial.py) explores the architecture space beyond them.
try:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is a test extra
    pass
