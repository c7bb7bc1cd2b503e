"""Which fpcore computed a result: package version, git commit and a hash of its source files.

Every metrics file of a sweep stores :func:`fpcore_provenance`; the exported tables carry it in
``fpcore_version``, ``fpcore_commit`` and ``fpcore_source`` columns on every row, and ``metrics_source``, a hash of the code that turns
a spectrum into the recorded metrics (``experiments/metrics.py`` and ``architectures.py``). A
cached metrics file whose ``fpcore_source`` or ``metrics_source`` differs from the running code's
is stale and is recomputed (:func:`is_current`). The source hash covers the ``.py`` files of the ``fpcore`` package actually
imported, so it changes with any edit of the core (committed or not) and with nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

__all__ = ["fpcore_provenance", "is_current", "PROVENANCE_COLUMNS"]

PROVENANCE_COLUMNS = ("fpcore_version", "fpcore_commit", "fpcore_source", "metrics_source")


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("fpcore")
    except Exception:  # noqa: BLE001 - not installed as a distribution: read pyproject.toml
        pass
    import fpcore

    pyproject = Path(fpcore.__file__).resolve().parents[1] / "pyproject.toml"
    try:
        for line in pyproject.read_text().splitlines():
            if line.strip().startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def source_hash(package_dir: Path) -> str:
    """sha1 (first 12 hex digits) of the package's ``.py`` files, names and contents, sorted."""
    h = hashlib.sha1()
    for f in sorted(Path(package_dir).rglob("*.py")):
        h.update(str(f.relative_to(package_dir)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _git_commit(package_dir: Path) -> str:
    """``HEAD`` of the repository holding the package, ``+dirty`` when its files differ from it;
    ``"unknown"`` outside a git checkout."""
    try:
        root = package_dir.parent
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", package_dir.name],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except Exception:  # noqa: BLE001 - no git, not a checkout, a timeout: the hash still identifies it
        return "unknown"


@functools.lru_cache(maxsize=1)
def fpcore_provenance() -> dict:
    """``{"fpcore_version", "fpcore_commit", "fpcore_source"}`` of the imported fpcore.

    Examples
    --------
    >>> p = fpcore_provenance()
    >>> sorted(p) == sorted(PROVENANCE_COLUMNS), len(p["fpcore_source"])
    (True, 12)
    """
    import fpcore

    pkg = Path(fpcore.__file__).resolve().parent
    here = Path(__file__).resolve().parent
    h = hashlib.sha1()
    for name in ("metrics.py", "architectures.py"):
        h.update((here / name).read_bytes())
    return dict(
        fpcore_version=_package_version(),
        fpcore_commit=_git_commit(pkg),
        fpcore_source=source_hash(pkg),
        metrics_source=h.hexdigest()[:12],
    )


def is_current(record: dict, current: dict | None = None) -> bool:
    """Whether a cached metrics record was computed by the running fpcore and metrics code (same
    source hashes). Records without provenance (written before it existed) are stale.
    """
    current = current or fpcore_provenance()
    prov = record.get("provenance") or {}
    return all(prov.get(k) == current[k] for k in ("fpcore_source", "metrics_source"))
