"""Python return types -> JSON Schema (through pydantic), and the errors of ``@structured``."""

from __future__ import annotations

import typing
from typing import Any

from ..errors import ConfigurationError, StructgenError

__all__ = ["StructuredTypeError", "OutputValidationError", "schema_for", "type_adapter", "normalize_schema"]


class StructuredTypeError(ConfigurationError, TypeError):
    """A return annotation ``@structured`` cannot turn into a constraint (raised at decoration time)."""


class OutputValidationError(StructgenError, ValueError):
    """The generated JSON does not validate as the return type (``.result`` holds the output)."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


_HINT = ("use a pydantic model, a dataclass, a TypedDict (from typing_extensions before Python 3.12), "
         "list[...]/dict[str, ...]/tuple[...], Literal[...], an Enum, int/float/bool/str, or a union of these")


def type_adapter(tp: Any, where: str = "the return type"):
    """``pydantic.TypeAdapter(tp)`` with its JSON schema checked; raises :class:`StructuredTypeError`
    with a fix-it message when ``tp`` cannot be expressed as JSON Schema."""
    from pydantic import TypeAdapter

    if tp is None or tp is type(None):
        raise StructuredTypeError(f"{where} is None: a structured call must return data; {_HINT}")
    if tp is typing.Any or tp is object:
        pass  # any JSON value: allowed
    try:
        adapter = TypeAdapter(tp)
        adapter.json_schema()
    except Exception as e:  # noqa: BLE001 - pydantic raises several error types here
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StructuredTypeError(
            f"{where} {_name(tp)} cannot be turned into a JSON Schema ({first}); {_HINT}") from e
    return adapter


def schema_for(tp: Any) -> dict:
    """The JSON Schema ``@structured`` constrains to for return type ``tp``: pydantic's
    ``TypeAdapter(tp).json_schema()`` (field descriptions and constraints included);
    a top-level ``$ref`` is inlined.  Non-object types (``int``, ``list[str]``,
    ``Literal[...]``) are constrained as the bare JSON value, not wrapped."""
    return normalize_schema(type_adapter(tp).json_schema())


def normalize_schema(schema) -> dict:
    """A JSON-schema dict from a dict, JSON text, or a pydantic model class; a
    top-level ``$ref`` into ``$defs`` is inlined (pydantic emits one for enums
    and recursive models)."""
    import json

    if isinstance(schema, (str, bytes)):
        try:
            schema = json.loads(schema)
        except ValueError as e:
            raise ConfigurationError(f"schema= is not valid JSON: {e}") from e
    elif isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        schema = schema.model_json_schema()
    if isinstance(schema, bool):
        return {} if schema else {"not": {}}
    if not isinstance(schema, dict):
        raise ConfigurationError(
            f"schema= must be a dict, JSON text or a pydantic model, got {type(schema).__name__}")
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and set(schema) <= {"$ref", "$defs", "description"}:
        defs = schema.get("$defs", {})
        name = ref[len("#/$defs/"):]
        if name in defs and isinstance(defs[name], dict):
            inner = dict(defs[name])
            if "description" in schema:
                inner.setdefault("description", schema["description"])
            if _refers(inner, defs):
                inner["$defs"] = defs
            return inner
    return schema


def _refers(node, defs) -> bool:
    """Does ``node`` (or anything it reaches) use ``$defs``?"""
    import json

    return bool(defs) and "#/$defs/" in json.dumps(node)


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)
