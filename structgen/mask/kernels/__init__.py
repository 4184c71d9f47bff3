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


def get_kernels(backend: Backend = "auto") -> ModuleType:
    if backend == "auto":
        backend = os.environ.get("STRUCTGEN_KERNELS", "numba")  # type: ignore[assignment]
    if backend not in _MODULES:
        raise ConfigurationError(f"kernel backend must be one of {sorted(_MODULES)}, got {backend!r}")
    return importlib.import_module(_MODULES[backend], __name__)
