"""DFA kernel backends: ``numba`` (default) and ``reference`` (pure Python twins).

``STRUCTGEN_KERNELS=reference`` selects the twins process-wide, as for the mask
kernels.  Imported lazily so that building small automata does not import numba."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from ..errors import ConfigurationError

_MODULES = {"numba": ".kernels_numba", "reference": ".kernels_reference"}


def backend_name(backend: str = "auto") -> str:
    """The backend ``backend`` names ("auto": ``STRUCTGEN_KERNELS``, default numba),
    checked, without importing it."""
    if backend == "auto":
        backend = os.environ.get("STRUCTGEN_KERNELS", "numba")
    if backend not in _MODULES:
        raise ConfigurationError(f"kernel backend must be one of {sorted(_MODULES)}, got {backend!r}")
    return backend


def get_kernels(backend: str = "auto") -> ModuleType:
    return importlib.import_module(_MODULES[backend_name(backend)], __package__)
