"""``@structured``: a typed Python function becomes a constrained LLM call.

::

    from pydantic import BaseModel, Field
    from structgen.api import structured

    class Person(BaseModel):
        name: str = Field(description="full name", max_length=40)
        age: int = Field(ge=0, le=130)

    @structured
    def extract(text: str) -> Person:
        \"\"\"Extract the person mentioned in this text: {text}\"\"\"

    extract("Ada Lovelace was 36.")   # -> Person(name='Ada Lovelace', age=36)

How a call works:

1. The prompt template -- ``prompt=`` or else the docstring (``inspect.getdoc``)
   -- is formatted with the call's arguments (``str.format`` with the bound
   parameters, defaults applied: ``{text}``, ``{item.name}``, ``{xs[0]}``).
2. The return annotation becomes a JSON Schema with
   ``pydantic.TypeAdapter(T).json_schema()``: field descriptions and
   constraints (``Field(ge=..., max_length=..., pattern=...)``) flow into it.
   ``schema_in_prompt=True`` also appends the schema to the prompt (off by
   default: SmolLM2-135M tends to copy the schema's descriptions into the values,
   while the forced keys alone steer it well).
3. Generation is constrained to the schema (``structgen.json_schema``) with
   :data:`DEFAULT_JSON_OPTIONS` (compact JSON, no undeclared keys), with
   budget-safe closing, so the text is always complete JSON.
4. The text is parsed with ``TypeAdapter(T).validate_json``; a value pydantic
   rejects although it fits the schema (a check JSON Schema cannot express)
   raises :class:`~structgen.api.types.OutputValidationError`, which carries
   the :class:`~structgen.integrations.generate.GenerationResult`.

Non-object return types (``int``, ``list[str]``, ``Literal["a", "b"]``,
``Enum``, unions) are constrained as the **bare JSON value** -- ``42``,
``["x", "y"]``, ``"a"`` -- not wrapped in an object.

Everything is checked at decoration time, so a mistake surfaces when the module
is imported, not at the first call: unknown options (:class:`~structgen.errors.ConfigurationError`
naming them) and out-of-range values (``max_new_tokens=0``), a missing or
``None`` return annotation, a type pydantic cannot express as JSON Schema
(:class:`~structgen.api.types.StructuredTypeError`), a missing template,
template fields that are not parameters, ``model=`` without ``tokenizer=``, and
a schema the compiler rejects (``Unsupported`` naming the keyword).  The schema
is compiled once, at decoration, over the tokenizer's vocabulary: ``tokenizer=``,
or without ``model=`` the default model's tokenizer alone (its weights are
loaded on the first call, never at decoration).

The wrapped function also has ``.generate(*args, **kw)`` (the full
``GenerationResult``, ``.value`` validated), ``.render_prompt(*args, **kw)``,
``.schema``, ``.compiled`` and ``.return_type``.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import string
import sys
import typing
from typing import Any, Callable

from ..errors import StructgenError
from .options import check_options
from .types import OutputValidationError, StructuredTypeError, normalize_schema, type_adapter

__all__ = ["structured", "DEFAULT_JSON_OPTIONS"]

#: The default model, loaded on the first call of a function decorated without ``model=``
#: (``"pair"``), and its vocabulary, built from the tokenizer alone at decoration (``"vocab"``).
_DEFAULT: dict = {}

#: JSON Schema compiler options used by ``@structured`` (``json_options=`` updates them):
#: no keys beyond the declared ones (pydantic would ignore them anyway) and no optional
#: whitespace, so that keys and punctuation are forced and fast-forwarded.
DEFAULT_JSON_OPTIONS = {"additional_properties": "forbid", "whitespace": "compact"}


def _default_model():
    if "pair" not in _DEFAULT:
        from ..models import load_default_model

        _DEFAULT["pair"] = load_default_model()
    return _DEFAULT["pair"]


def _default_vocabulary():
    """The default model's vocabulary from its tokenizer alone -- no weights, no torch: the
    converted checkpoint's ``tokenizer.json`` when it exists (~1 s), else the GGUF's tokenizer.
    Its EOS ids come from the special tokens, as for the model's own tokenizer (the first call
    checks the fingerprints match)."""
    if "vocab" not in _DEFAULT:
        from ..models import default_model_dir
        from ..vocab import Vocabulary

        target = default_model_dir()
        config = os.path.join(target, "config.json")
        if os.path.isfile(config):
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(os.path.join(target, "tokenizer.json"))
            with open(config, encoding="utf-8") as f:
                vocab_size = json.load(f).get("vocab_size")
        else:
            from ..vocab.known import load_tokenizer

            tok, vocab_size = load_tokenizer("smollm2"), None
        _DEFAULT["vocab"] = Vocabulary.from_tokenizer(tok, vocab_size=vocab_size)
    return _DEFAULT["vocab"]


def _vocabulary(tokenizer, vocab_size):
    from ..integrations.transformers import vocabulary_for  # one Vocabulary per tokenizer, shared with generate

    return vocabulary_for(tokenizer, vocab_size)


def structured(fn: Callable | None = None, *, model=None, tokenizer=None, prompt: str | None = None,
               max_new_tokens: int = 256, temperature: float = 0.0, system: str | None = None,
               schema_in_prompt: bool = False, json_options: dict | None = None, **generate_options):
    """Decorator, bare (``@structured``) or configured (``@structured(model=..., tokenizer=...,
    prompt=..., max_new_tokens=..., temperature=...)``).  Extra keyword arguments go to
    :func:`structgen.integrations.generate.generate` (``top_p``, ``seed``, ``chat`` ...);
    an unknown one raises :class:`~structgen.errors.ConfigurationError` naming it.
    ``json_options`` update :data:`DEFAULT_JSON_OPTIONS` (options of ``compile_json_schema``).
    The schema is compiled here, once (see the module docstring)."""
    caller = sys._getframe(1).f_locals  # resolves string annotations of locally defined types
    check_options(dict(generate_options, max_new_tokens=max_new_tokens, temperature=temperature,
                       system=system, json_options=json_options), "@structured")

    def wrap(f: Callable) -> "_StructuredFunction":
        return _StructuredFunction(f, model=model, tokenizer=tokenizer, prompt=prompt,
                                   max_new_tokens=max_new_tokens, temperature=temperature, system=system,
                                   schema_in_prompt=schema_in_prompt, options=generate_options,
                                   json_options=json_options, localns=caller)

    if fn is not None:
        if not inspect.isroutine(fn):  # a model passed positionally is callable too
            raise StructuredTypeError(f"@structured decorates a function, got {type(fn).__name__}; "
                                      "pass options by keyword: @structured(model=..., tokenizer=...)")
        return wrap(fn)
    return wrap


class _StructuredFunction:
    def __init__(self, fn: Callable, *, model, tokenizer, prompt, max_new_tokens, temperature, system,
                 schema_in_prompt, options, json_options, localns):
        functools.update_wrapper(self, fn)
        self.fn = fn
        name = getattr(fn, "__qualname__", repr(fn))
        if (model is None) != (tokenizer is None):
            raise StructuredTypeError(
                f"@structured on {name}: pass model= and tokenizer= together (or neither, for the default model)")
        self.model, self.tokenizer = model, tokenizer
        self.signature = inspect.signature(fn)
        self.return_type = _return_type(fn, name, localns)
        self.adapter = type_adapter(self.return_type, where=f"the return type of {name}")
        self.schema = normalize_schema(self.adapter.json_schema())
        template = prompt if prompt is not None else inspect.getdoc(fn)
        if not template or not template.strip():
            raise StructuredTypeError(
                f"@structured on {name}: no prompt; write the prompt as the docstring "
                "(\"\"\"Summarise: {text}\"\"\") or pass @structured(prompt=...)")
        _check_template(template, self.signature, name)
        self.template = template
        self.system = system
        self.schema_in_prompt = schema_in_prompt
        self.json_options = {**DEFAULT_JSON_OPTIONS, **(json_options or {})}
        self.options = dict(options, max_new_tokens=max_new_tokens, temperature=temperature)
        if model is not None:  # torch is loaded already: share generate's Vocabulary
            vocab = _vocabulary(tokenizer, getattr(getattr(model, "config", None), "vocab_size", None))
        else:
            vocab = _default_vocabulary()
        self.compiled = self._compile(vocab, name=name)

    def _compile(self, vocab, *, name: str):
        from ..json_schema import compile_json_schema

        try:
            return compile_json_schema(self.schema, vocab, **self.json_options)
        except StructgenError as e:  # Unsupported / SchemaError / bad json_options: at import time
            if hasattr(e, "add_note"):
                e.add_note(f"while compiling the return type of @structured {name}")
            raise

    def _model_and_constraint(self):
        """``(model, tokenizer, compiled)`` for a call; the default model's weights load here."""
        if self.model is not None:
            return self.model, self.tokenizer, self.compiled
        model, tokenizer = _default_model()
        vocab = _vocabulary(tokenizer, getattr(model.config, "vocab_size", None))
        if vocab.fingerprint != self.compiled.vocab.fingerprint:  # the checkpoint's tokenizer differs (rare)
            self.compiled = self._compile(vocab, name=self.fn.__qualname__)
        return model, tokenizer, self.compiled

    def __repr__(self) -> str:
        return f"<structured {self.fn.__qualname__} -> {_type_name(self.return_type)}>"

    def render_prompt(self, *args, **kwargs) -> str:
        """The prompt text for these arguments (before the chat template)."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        text = self.template.format(**bound.arguments)
        if self.schema_in_prompt:
            text += ("\n\nAnswer with JSON only, matching this JSON Schema:\n"
                     + json.dumps(self.schema, ensure_ascii=False))
        return text

    def generate(self, *args, **kwargs):
        """The full ``GenerationResult`` (``.value`` validated); raises ``OutputValidationError``."""
        from ..integrations.generate import generate

        model, tokenizer, compiled = self._model_and_constraint()
        result = generate(model, tokenizer, self.render_prompt(*args, **kwargs), schema=compiled,
                          system=self.system, **self.options)
        try:
            result.value = self.adapter.validate_json(result.text)
            result.error = None
        except Exception as e:  # noqa: BLE001 - pydantic.ValidationError and JSON errors
            raise OutputValidationError(
                f"{self.fn.__qualname__}: the output does not validate as {_type_name(self.return_type)}: "
                f"{e}\noutput: {result.text!r}", result) from e
        return result

    def __call__(self, *args, **kwargs):
        return self.generate(*args, **kwargs).value

    def __get__(self, obj, objtype=None):  # methods: bind like a function
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)


def _return_type(fn: Callable, name: str, localns: dict) -> Any:
    raw = getattr(fn, "__annotations__", {})
    if "return" not in raw:
        raise StructuredTypeError(
            f"@structured on {name}: add a return annotation naming what the model must produce, "
            f"e.g. `def {getattr(fn, '__name__', 'f')}(...) -> MyModel:` (a pydantic model, dataclass, "
            "list[str], Literal[...], int, ...)")
    try:
        hints = typing.get_type_hints(fn, localns=localns, include_extras=True)
    except Exception as e:  # noqa: BLE001 - NameError for unresolvable forward references, ...
        raise StructuredTypeError(
            f"@structured on {name}: cannot resolve the annotations ({e}); define the return type "
            "before the function (or at module level)") from e
    return hints["return"]


def _check_template(template: str, sig: inspect.Signature, name: str) -> None:
    params = set(sig.parameters)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise StructuredTypeError(f"@structured on {name}: the prompt template is not a valid format "
                                  f"string ({e}); double literal braces: {{{{ and }}}}") from e
    for f in fields:
        root = f.split(".")[0].split("[")[0]
        if root == "" or root.isdigit():
            raise StructuredTypeError(f"@structured on {name}: use named fields in the prompt template "
                                      f"({{param}}), not positional ones ({{{f}}})")
        if root not in params:
            raise StructuredTypeError(
                f"@structured on {name}: the prompt template uses {{{f}}} but the function has no "
                f"parameter {root!r} (parameters: {', '.join(sorted(params)) or 'none'}); literal braces "
                "must be doubled: {{ and }}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)
