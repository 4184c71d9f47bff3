"""Kernel backends: ``numba`` (default) and ``reference`` (pure Python twins).

``STRUCTGEN_KERNELS=reference`` selects the twins process-wide (debugging)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Literal

from ...errors import ConfigurationError

Backend = Literal["auto", "numba", "reference"]
_MODULES = {"numba": ".numba_cpu", "reference": ".reference"}

# A lexer's ``loops`` entry not computed yet (see ``walk_trie``; the byte classes use bits 0-6).
LOOPS_UNKNOWN = 0x80


_LOADED: dict[str, ModuleType] = {}


def get_kernels(backend: Backend = "auto") -> ModuleType:
    if backend == "auto":
        backend = os.environ.get("STRUCTGEN_KERNELS", "numba")  # type: ignore[assignment]
    module = _LOADED.get(backend)
    if module is None:  # import_module costs microseconds even when loaded: every compile asks
        if backend not in _MODULES:
            raise ConfigurationError(f"kernel backend must be one of {sorted(_MODULES)}, got {backend!r}")
        module = _LOADED[backend] = importlib.import_module(_MODULES[backend], __name__)
    return module
