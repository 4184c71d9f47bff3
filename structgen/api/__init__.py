"""High-level API: ``@structured`` turns a typed Python function into an LLM call.

    from structgen.api import structured
"""

from __future__ import annotations

from .decorator import structured
from .types import OutputValidationError, StructuredTypeError, schema_for

__all__ = ["structured", "schema_for", "StructuredTypeError", "OutputValidationError"]
