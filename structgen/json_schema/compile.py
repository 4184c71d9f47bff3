"""Entry points: JSON Schema (dict, JSON text, pydantic model or type) -> grammar / compiled constraint."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field, fields, replace

from ..errors import BudgetExceeded, ConfigurationError, GrammarError
from ..grammar.ir import Grammar, prune_unproductive
from ..report import CompileReport
from .emit import Emitter
from .evaluate import Evaluator
from .registry import D4, D6, D7, D2019, D2020, DEFAULT, Registry, SchemaError

__all__ = ["JsonSchemaOptions", "compile_json_schema", "schema_to_grammar", "normalize_schema", "SchemaError"]

_DRAFT_ALIASES = {
    "2020-12+legacy": DEFAULT, "default": DEFAULT,
    "4": D4, "draft-04": D4, "draft4": D4, "6": D6, "draft-06": D6, "draft6": D6,
    "7": D7, "draft-07": D7, "draft7": D7, "2019-09": D2019, "2020-12": D2020,
}


@dataclass(frozen=True)
class JsonSchemaOptions:
    """Every option of the JSON Schema compiler, validated when constructed.

    See ``docs/json_schema_support.md`` for their meaning."""

    whitespace: str = "flexible"  # "compact" | "canonical" | "flexible" | "pretty"
    max_whitespace: int = 24  # per gap, for "flexible" / "pretty"
    escapes: str = "canonical"  # "canonical" | "all": JSON spellings of string characters accepted
    property_order: str = "schema"  # "any" (exact, up to max_any_order declared keys) | "schema"
    max_any_order: int = 8  # declared keys above which "any" falls back to schema order
    additional_properties: str = "schema"  # "schema" | "forbid"
    format_assertion: bool = True
    lenient: bool = False
    max_recursion_depth: int | None = None  # max nesting of objects/arrays (None: unbounded recursion)
    huge_bound: int = 1_000_000  # max* bounds >= this are treated as unbounded (reported)
    max_unique_domain: int = 10
    default_draft: str = "2020-12+legacy"
    registry: dict | None = field(default=None, compare=False, repr=False)
    max_terminals: int = 20_000
    max_rules: int = 500_000
    time_budget_s: float | None = 60.0

    def __post_init__(self):
        def bad(name, value, expected):
            raise ConfigurationError(f"JSON Schema option {name}={value!r}: expected {expected}")

        if self.whitespace not in ("compact", "canonical", "flexible", "pretty"):
            bad("whitespace", self.whitespace, '"compact", "canonical", "flexible" or "pretty"')
        if self.escapes not in ("canonical", "all"):
            bad("escapes", self.escapes, '"canonical" or "all"')
        if self.property_order not in ("schema", "any"):
            bad("property_order", self.property_order, '"schema" or "any"')
        if self.additional_properties not in ("schema", "forbid"):
            bad("additional_properties", self.additional_properties, '"schema" or "forbid"')
        for name in ("max_whitespace", "max_any_order", "huge_bound", "max_unique_domain", "max_terminals",
                     "max_rules"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                bad(name, v, "a non-negative int")
        if self.max_recursion_depth is not None and (isinstance(self.max_recursion_depth, bool) or
                                                     not isinstance(self.max_recursion_depth, int) or
                                                     self.max_recursion_depth < 0):
            bad("max_recursion_depth", self.max_recursion_depth, "None or a non-negative int")
        if self.time_budget_s is not None and (not isinstance(self.time_budget_s, (int, float)) or
                                               self.time_budget_s <= 0):
            bad("time_budget_s", self.time_budget_s, "None or a positive number")
        for name in ("format_assertion", "lenient"):
            if not isinstance(getattr(self, name), bool):
                bad(name, getattr(self, name), "a bool")
        if str(self.default_draft) not in _DRAFT_ALIASES:
            bad("default_draft", self.default_draft, " / ".join(sorted(_DRAFT_ALIASES)))
        if self.registry is not None and not isinstance(self.registry, dict):
            bad("registry", type(self.registry).__name__, "a dict {uri: schema}")

    @classmethod
    def make(cls, options: "JsonSchemaOptions | None" = None, **kwargs) -> "JsonSchemaOptions":
        key = None
        if options is None and "registry" not in kwargs:
            # few distinct keyword sets recur (every compile passes some): building and
            # validating the options twice (defaults, then replace) was ~25 us of each compile
            key = tuple((k, v.__class__, v) for k, v in kwargs.items())  # the class: True == 1, 1.0 == 1
            try:
                hit = _MADE.get(key)
            except TypeError:  # an unhashable value: made (and rejected) below
                key = None
            else:
                if hit is not None:
                    return hit
        if kwargs:
            names = _option_names()
            unknown = sorted(set(kwargs) - names)
            if unknown:
                raise ConfigurationError(f"unknown JSON Schema option(s) {unknown}; valid: {sorted(names)}")
        base = options if options is not None else cls()
        if not isinstance(base, cls):
            raise ConfigurationError(f"options must be JsonSchemaOptions, not {type(base).__name__}")
        made = replace(base, **kwargs) if kwargs else base
        if key is not None:
            if len(_MADE) >= 256:
                _MADE.clear()
            _MADE[key] = made
        return made


#: JsonSchemaOptions.make's results by keyword items (in call order; frozen, so shared)
_MADE: dict = {}


@functools.lru_cache(maxsize=1)
def _option_names() -> frozenset:
    return frozenset(f.name for f in fields(JsonSchemaOptions))


def normalize_schema(schema):
    """``schema`` as a JSON value (dict or bool): parses JSON text, asks pydantic for models and types."""
    if isinstance(schema, (dict, bool)):
        return schema
    if isinstance(schema, (bytes, bytearray)):
        schema = bytes(schema).decode("utf-8")
    if isinstance(schema, str):
        try:
            value = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"schema text is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") \
                from None
        except RecursionError:
            raise BudgetExceeded("schema text is nested too deeply to parse") from None
        if not isinstance(value, (dict, bool)):
            raise SchemaError(f"a schema must be a JSON object or boolean, got {type(value).__name__}")
        return value
    try:
        import pydantic
    except ImportError:  # pragma: no cover
        pydantic = None
    if pydantic is not None:
        if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
            return schema.model_json_schema()
        try:
            return pydantic.TypeAdapter(schema).json_schema()
        except Exception as exc:  # noqa: BLE001 - pydantic raises many kinds for non-types
            raise SchemaError(f"cannot use {schema!r} as a schema: not a dict, JSON text, boolean, pydantic "
                              f"model or type pydantic understands ({type(exc).__name__}: {exc})") from None
    raise SchemaError(f"a schema must be a dict, JSON text or boolean, got {type(schema).__name__}")


def schema_to_grammar(schema, *, options: JsonSchemaOptions | None = None, **kwargs) -> Grammar:
    """The grammar IR of ``schema`` (see :func:`compile_json_schema`).  ``grammar.meta``
    holds ``report`` (a :class:`~structgen.report.CompileReport` of the dropped, relaxed or
    ignored keywords) and ``compile_s``."""
    opt = JsonSchemaOptions.make(options, **kwargs)
    t0 = time.perf_counter()
    value = normalize_schema(schema)
    report: list = []
    try:
        reg = Registry(value, default_draft=_DRAFT_ALIASES[str(opt.default_draft)], external=opt.registry)
        ev = Evaluator(reg, opt, report)
        em = Emitter(ev, opt)
        start = em.value(ev.ref(reg.root, ()))
        grammar = em.finish(start)
    except RecursionError:
        raise BudgetExceeded("schema nesting is too deep to compile (Python recursion limit)") from None
    grammar.source = "json_schema"
    grammar.meta["report"] = CompileReport.from_entries(report)
    grammar.meta["compile_s"] = time.perf_counter() - t0
    try:
        return prune_unproductive(grammar)  # marked pruned: the engine does not prune it again
    except GrammarError:
        raise SchemaError("the schema accepts no JSON value (its language is empty)") from None


def compile_json_schema(schema, vocab, *, options: JsonSchemaOptions | None = None, kernels: str = "auto",
                        cache_bytes: int | None = None, **kwargs):
    """Compile a JSON Schema to a :class:`~structgen.mask.engine.CompiledGrammar` over ``vocab``.

    ``schema``: a dict/bool, JSON text, a pydantic model class or any type
    ``pydantic.TypeAdapter`` accepts.  Options: :class:`JsonSchemaOptions` fields as
    keywords (or ``options=``).  The result carries ``report`` (a
    :class:`~structgen.report.CompileReport`): the keywords that were dropped (lenient
    mode), relaxed (``huge_bound``) or ignored (unknown formats).

    This package only produces the grammar IR (:func:`schema_to_grammar`); the
    constraint is built by the vocabulary's default ``GrammarCompiler`` (this entry
    point is kept for callers of ``structgen.json_schema.compile_json_schema``)."""
    from ..compile import compile_json_schema as compile_with_default_compiler

    if cache_bytes is not None:
        kwargs["cache_bytes"] = cache_bytes
    return compile_with_default_compiler(schema, vocab, options=options, kernels=kernels, **kwargs)
