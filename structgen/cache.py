"""The user-level disk cache (compiled grammar IR, converted models).

Location: ``$STRUCTGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/structgen``, else
``~/.cache/structgen``.  ``STRUCTGEN_DISK_CACHE=0`` turns it off.  Entries are
keyed by a digest of their inputs *and* of the source of the code that built
them, so editing a compiler never serves stale results."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def cache_dir() -> Path:
    root = os.environ.get("STRUCTGEN_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "structgen")
    return Path(root)


def enabled() -> bool:
    return os.environ.get("STRUCTGEN_DISK_CACHE", "1") not in ("0", "false", "no")


@lru_cache(maxsize=None)
def code_digest(*modules: str) -> str:
    """Digest of the source files of the given modules (by dotted name)."""
    import importlib

    h = hashlib.sha256()
    for name in modules:
        mod = importlib.import_module(name)
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


def disk_cached(kind: str, key: str, build: Callable[[], T]) -> T:
    """``build()``, memoised on disk under ``kind/<digest of key>.pkl``."""
    if not enabled():
        return build()
    path = cache_dir() / kind / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".pkl")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass
    value = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # atomic: concurrent writers never leave a torn file
    except OSError:
        pass  # a read-only or full disk only costs speed
    return value
