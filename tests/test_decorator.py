"""``@structured``: decoration-time checks (options, annotations, the schema compiled once
over the default tokenizer without loading the model), prompt rendering, and a round trip
with the real default model returning a validated pydantic object."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import os
import subprocess
import sys
import textwrap
from typing import Literal, Optional, Union

import pytest
from pydantic import BaseModel, Field

import structgen.json_schema
from structgen.api import StructuredTypeError, schema_for, structured
from structgen.api.options import CONSTRAINT_KEYWORDS, GENERATE_OPTIONS
from structgen.errors import ConfigurationError, Unsupported
from structgen.mask.engine import CompiledGrammar


class Person(BaseModel):
    name: str = Field(description="the person's full name", max_length=40)
    age: int = Field(description="age in years", ge=0, le=130)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    x: int
    y: int


# --- decoration time -----------------------------------------------------------------

def test_bare_and_configured_forms_and_prompt_rendering():
    @structured(schema_in_prompt=True)
    def extract(text: str, lang: str = "en") -> Person:
        """Extract the person ({lang}): {text}"""

    assert extract.return_type is Person
    assert extract.schema["properties"]["age"]["maximum"] == 130  # Field constraints flow in
    assert extract.schema["properties"]["name"]["description"] == "the person's full name"
    p = extract.render_prompt("Ada, 36")
    assert p.startswith("Extract the person (en): Ada, 36")
    assert json.dumps(extract.schema) in p
    assert extract.json_options == {"additional_properties": "forbid", "whitespace": "compact"}
    assert isinstance(extract.compiled, CompiledGrammar)
    assert extract.__name__ == "extract" and "Extract the person" in extract.__doc__

    @structured(prompt="Pick a color for {thing}.", max_new_tokens=8, temperature=0.5)
    def color(thing: str) -> Color:
        ...

    assert color.render_prompt(thing="grass") == "Pick a color for grass."
    assert color.schema["enum"] == ["red", "green"]  # top-level $ref inlined
    assert color.options["max_new_tokens"] == 8 and color.options["temperature"] == 0.5


@pytest.mark.parametrize("tp,check", [
    (int, {"type": "integer"}),
    (list[str], {"type": "array", "items": {"type": "string"}}),
    (Literal["a", "b"], {"enum": ["a", "b"]}),
    (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    (Point, {"type": "object", "required": ["x", "y"]}),
    (Optional[Person], {}),
    (bool, {"type": "boolean"}),
    (float, {"type": "number"}),
])
def test_supported_return_types_give_bare_value_schemas(tp, check):
    s = schema_for(tp)
    for k, v in check.items():
        assert s[k] == v or (isinstance(v, list) and sorted(map(str, s[k])) == sorted(map(str, v)))


def test_typed_dict_from_typing_extensions():
    from typing_extensions import TypedDict

    class Movie(TypedDict):
        title: str
        year: int

    @structured
    def movie(q: str) -> Movie:
        """Movie: {q}"""

    assert movie.schema["required"] == ["title", "year"]


def test_unsupported_annotations_fail_at_decoration_time():
    with pytest.raises(StructuredTypeError, match="add a return annotation"):
        @structured
        def no_annotation(x: str):
            """{x}"""

    with pytest.raises(StructuredTypeError, match="None"):
        @structured
        def returns_none(x: str) -> None:
            """{x}"""

    class Opaque:
        pass

    with pytest.raises(StructuredTypeError, match="cannot be turned into a JSON Schema.*pydantic model"):
        @structured
        def opaque(x: str) -> Opaque:
            """{x}"""

    with pytest.raises(StructuredTypeError, match="no prompt"):
        @structured
        def no_doc(x: str) -> int:
            pass

    with pytest.raises(StructuredTypeError, match="no parameter 'y'"):
        @structured
        def bad_field(x: str) -> int:
            """{y}"""

    with pytest.raises(StructuredTypeError, match="named fields"):
        @structured(prompt="{} and {}")
        def positional(x: str) -> int:
            ...

    with pytest.raises(StructuredTypeError, match="together"):
        structured(model=object())(lambda x: x)

    with pytest.raises(ConfigurationError, match="regex= is not an option"):
        @structured(regex="a")
        def bad_option(x: str) -> int:
            """{x}"""

    with pytest.raises(StructuredTypeError, match="decorates a function"):
        structured(object())  # e.g. a model passed positionally


def test_unknown_options_and_bad_values_fail_at_decoration_time():
    """Before the function is even seen: ``@structured(max_new_token=8)`` fails on the line of the decorator."""
    with pytest.raises(ConfigurationError, match="unknown option 'max_new_token'; did you mean 'max_new_tokens'"):
        structured(max_new_token=8)
    with pytest.raises(ConfigurationError, match="unknown option 'colour'"):
        structured(colour="red")
    for bad, match in [(dict(max_new_tokens=0), "max_new_tokens=0"), (dict(temperature=-1), "temperature=-1"),
                       (dict(top_p=0), "top_p=0"), (dict(top_k=1.5), "top_k=1.5"), (dict(seed="1"), "seed='1'"),
                       (dict(fast_forward="yes"), "fast_forward='yes'"), (dict(max_time=0), "max_time=0"),
                       (dict(json_options=["compact"]), "json_options="), (dict(draft="nope"), "draft='nope'"),
                       (dict(layerskip_layers=0), "layerskip_layers=0")]:
        with pytest.raises(ConfigurationError, match=match):
            structured(**bad)
    # options the JSON Schema compiler does not know fail when the schema is compiled: still at decoration
    with pytest.raises(ConfigurationError, match="no_such_option"):
        @structured(json_options={"no_such_option": 1})
        def f(x: str) -> int:
            """{x}"""
    structured(top_p=0.9, top_k=40, seed=1, chat=False, fast_forward=False, max_time=5.0,
               draft=["grammar", "prompt"], layerskip_layers=2)  # all accepted


def test_the_options_table_covers_generates_keywords():
    """A keyword added to generate() must be added to GENERATE_OPTIONS (with a value check)."""
    from structgen.integrations.generate import generate

    keywords = {n for n, p in inspect.signature(generate).parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert keywords - set(CONSTRAINT_KEYWORDS) == set(GENERATE_OPTIONS)


def test_unsupported_schema_fails_at_decoration_time():
    with pytest.raises(Unsupported, match="uniqueItems"):
        @structured
        def tags(text: str) -> set[str]:  # uniqueItems over open strings: no finite automaton
            """Tags of: {text}"""


def test_schema_compiled_once_at_decoration(monkeypatch):
    """The compiled constraint is made when decorating and handed to every call."""
    import structgen.integrations.generate as g

    compiled_calls = []
    real_compile = structgen.json_schema.compile_json_schema

    def counting_compile(schema, vocab, **kw):
        compiled_calls.append((schema, kw))
        return real_compile(schema, vocab, **kw)

    monkeypatch.setattr(structgen.json_schema, "compile_json_schema", counting_compile)

    @structured(json_options={"whitespace": "flexible"})
    def extract(text: str) -> Person:
        """Extract: {text}"""

    assert len(compiled_calls) == 1
    assert compiled_calls[0] == (extract.schema, {"additional_properties": "forbid", "whitespace": "flexible"})
    seen = []

    def fake_generate(model, tokenizer, prompt, *, schema, **kw):
        seen.append((schema, prompt, kw))
        return g.GenerationResult(text='{"name": "Ada", "age": 36}', token_ids=[])

    monkeypatch.setattr(g, "generate", fake_generate)
    monkeypatch.setattr("structgen.api.decorator._default_model", lambda: (_FakeModel(extract.compiled.vocab.size), None))
    monkeypatch.setattr("structgen.api.decorator._vocabulary", lambda tok, size: extract.compiled.vocab)
    assert extract("Ada, 36") == Person(name="Ada", age=36)
    assert extract("Ada, 36") == Person(name="Ada", age=36)
    assert len(compiled_calls) == 1  # not recompiled per call
    assert [s for s, _, _ in seen] == [extract.compiled] * 2
    assert seen[0][1] == "Extract: Ada, 36" and seen[0][2]["max_new_tokens"] == 256


class _FakeModel:
    def __init__(self, vocab_size):
        self.config = type("Config", (), {"vocab_size": vocab_size})()


def test_decoration_with_the_default_model_loads_the_tokenizer_only():
    """A fresh process: decorating compiles over SmolLM2's vocabulary without importing torch
    or loading weights, from the converted checkpoint's tokenizer.json.  On a machine that
    has not converted the GGUF yet (the first suite run on it, where this test can come
    before the generation tests), it is converted here first: the GGUF fallback reads the
    tokenizer through transformers, which imports torch."""
    from structgen.models import default_model_dir, load_default_model

    if not os.path.isfile(os.path.join(default_model_dir(), "config.json")):
        load_default_model()  # once per machine (~40 s); the smollm2 tests need it anyway
    code = textwrap.dedent("""
        import sys, time
        from pydantic import BaseModel
        from structgen.api import structured
        from structgen.api import decorator

        class Person(BaseModel):
            name: str
            age: int

        t = time.perf_counter()
        @structured
        def extract(text: str) -> Person:
            \"\"\"Extract: {text}\"\"\"
        print(extract.compiled.vocab.size, "torch" in sys.modules, "pair" in decorator._DEFAULT,
              round(time.perf_counter() - t, 2))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    size, torch_loaded, model_loaded, seconds = out.stdout.split()
    assert (size, torch_loaded, model_loaded) == ("49152", "False", "False"), out.stdout
    print(f"decoration with the default tokenizer: {seconds} s")


def test_given_model_compiles_over_its_tokenizer_and_logits_width():
    from tokenizers_fixture import gpt2

    tok = gpt2()

    @structured(model=_FakeModel(50304), tokenizer=tok)  # logits padded past the tokenizer's 50257 ids
    def n(text: str) -> int:
        """{text}"""

    assert n.compiled.vocab.size == 50304
    assert n.compiled.matcher().accept_string("42")


# --- a real model -----------------------------------------------------------------------

def _real_model():
    import torch

    from structgen.api.decorator import _default_model

    return torch, _default_model()


@pytest.fixture(scope="module")
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_generate.py: spinning threads on a shared 2-core box
    yield
    torch.set_num_threads(n)


@pytest.mark.hf
def test_round_trip_returns_a_validated_pydantic_object(one_thread):
    _, (model, tok) = _real_model()

    @structured(model=model, tokenizer=tok, max_new_tokens=48)
    def extract(text: str) -> Person:
        """Extract the person mentioned in this text as JSON: {text}"""

    person = extract("Ada Lovelace was a mathematician who died at the age of 36.")
    assert isinstance(person, Person)
    assert 0 <= person.age <= 130 and len(person.name) <= 40
    assert "Lovelace" in person.name  # SmolLM2 gets this one right with compact, forced keys
    res = extract.generate("Alan Turing was 41 years old.")
    assert isinstance(res.value, Person) and Person.model_validate_json(res.text) == res.value

    @structured(max_new_tokens=12)  # the default model: compiled over its tokenizer.json alone
    def count(text: str) -> list[int]:
        """List the numbers in: {text}"""

    compiled = count.compiled
    nums = count("1, 2 and 3")
    assert isinstance(nums, list) and all(isinstance(n, int) for n in nums)
    assert count.compiled is compiled  # the loaded model's vocabulary has the same fingerprint
