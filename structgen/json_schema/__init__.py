"""JSON Schema -> grammar: the language of a compiled schema is the set of JSON
documents valid under it (see ``docs/json_schema_support.md``)."""

from .compile import JsonSchemaOptions, SchemaError, compile_json_schema, schema_to_grammar
from .support import support_matrix_markdown

__all__ = ["compile_json_schema", "schema_to_grammar", "JsonSchemaOptions", "SchemaError",
           "support_matrix_markdown"]
