"""structgen's own generation loop (``structgen.integrations.generate``): mechanics
with a tiny random Llama over the real GPT-2 vocabulary (fast, distribution-blind).
Real-model checks are in test_generate_smollm2.py."""

from __future__ import annotations

import json
import re

import pytest

import torch
from models_fixture import tiny_llama_for
from tokenizers_fixture import gpt2

from structgen import compile_regex
from structgen.errors import ConfigurationError
from structgen.integrations.generate import GenerationStream, generate
from structgen.integrations.kvcache import crop_cache, forward_keywords, new_cache
from structgen.integrations.transformers import vocabulary_for
from structgen.mask.completion import shortest_completion

pytestmark = pytest.mark.hf


@pytest.fixture(scope="module")
def tm():
    tok = gpt2()
    return tiny_llama_for(tok, 0), tok


def _valid_json(text: str):
    return json.loads(text)


def test_regex_and_result_fields(tm):
    model, tok = tm
    r = generate(model, tok, "Date:", regex=r"\d{4}-\d{2}-\d{2}", max_new_tokens=20)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", r.text)
    assert r.finish_reason == "complete" and not r.closed_by_budget
    assert tok.decode(r.token_ids) == r.text
    assert r.value is None and r.error is None and r.prompt == "Date:"


@pytest.mark.parametrize("n", [8, 11, 14, 20])
def test_budget_safe_closing_always_valid_json(tm, n):
    model, tok = tm
    prompts = ["JSON please:", "x", "some longer prompt here"]
    for seed in (0, 1):
        rs = generate(model, tok, prompts, grammar="json", max_new_tokens=n, temperature=1.0, seed=seed)
        for r in rs:
            _valid_json(r.text)
            assert len(r.token_ids) <= n
            assert r.finish_reason in ("eos", "complete", "budget", "length")
            if r.finish_reason == "budget":
                assert r.closed_by_budget


def test_budget_safe_off_can_cut_outputs_short(tm):
    model, tok = tm
    r = generate(model, tok, "x", regex=r"[a-z]{30}", max_new_tokens=3, budget_safe=False)
    assert len(r.token_ids) == 3 and r.finish_reason == "length" and not r.closed_by_budget


def test_budget_too_small_raises_before_generating(tm):
    model, tok = tm
    with pytest.raises(ConfigurationError, match="max_new_tokens=2 cannot hold"):
        generate(model, tok, "x", regex=r"abcdefghij[0-9]{10}", max_new_tokens=2)
    # exactly enough: the output is forced all the way
    r = generate(model, tok, "x", regex=r"[0-9]{5}", max_new_tokens=5)
    assert re.fullmatch(r"[0-9]{5}", r.text)


def test_shortest_completion(tm):
    _, tok = tm
    vocab = vocabulary_for(tok)
    from structgen import compile_grammar, load_grammar

    c = compile_grammar(load_grammar("json"), vocab)
    m = c.matcher()
    assert m.accept_string('{"a": [1, {"b": "x')
    tail = shortest_completion(c, m.state)
    assert tail == b'"}]}'
    json.loads('{"a": [1, {"b": "x' + tail.decode())
    assert shortest_completion(c, c.initial_state) == b"0"


def test_completion_past_the_search_limit_is_greedy_but_valid(tm):
    _, tok = tm
    from structgen.json_schema import compile_json_schema
    from structgen.mask.completion import greedy_completion

    schema = {"type": "object", "additionalProperties": False, "required": ["zeta", "omega"],
              "properties": {**{f"opt{i}": {"type": ["string", "array", "number"]} for i in range(12)},
                             "omega": {"enum": ["x"]}, "zeta": {"type": "string", "minLength": 2}}}
    import jsonschema

    c = compile_json_schema(schema, vocabulary_for(tok))
    assert shortest_completion(c, c.initial_state, max_states=3) is None  # breadth-first search gives up at once
    tail = greedy_completion(c, c.initial_state)  # what the matcher falls back to
    assert tail is not None and c.matcher().completion_bytes() == tail
    jsonschema.validate(json.loads(tail), schema)  # a valid completion, closers preferred
    small = compile_json_schema({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}},
                                vocabulary_for(tok))
    full = shortest_completion(small, small.initial_state)
    assert full == b'{"a":""}' or full == b'{"a": ""}'
    assert len(greedy_completion(small, small.initial_state)) >= len(full)


def test_batch_left_padding_matches_single_prompts(tm):
    model, tok = tm
    prompts = ["a", "a much longer prompt, with more tokens in it", "mid length"]
    batch = generate(model, tok, prompts, grammar="json", max_new_tokens=12)
    for p, b in zip(prompts, batch):
        single = generate(model, tok, p, grammar="json", max_new_tokens=12)
        assert single.token_ids == b.token_ids
        _valid_json(b.text)


@pytest.mark.parametrize("fast_forward", ["verify", "inject"])
def test_fast_forward_feeds_forced_text(tm, fast_forward):
    model, tok = tm
    pattern = r'\{"name": "[a-z]{1,8}", "address": \{"city": "[a-z]{1,8}"\}\}'
    prompts = ["x", "yy yy"]  # rows feed different numbers of drafts: right padding, rejected drafts
    rs = generate(model, tok, prompts, regex=pattern, max_new_tokens=60, fast_forward=fast_forward)
    offs = generate(model, tok, prompts, regex=pattern, max_new_tokens=60, fast_forward=False)
    for r, off in zip(rs, offs):
        assert re.fullmatch(pattern, r.text)
        assert r.forced_tokens > 0 and off.forced_tokens == 0
        if fast_forward == "verify":  # exact: the same greedy output as without fast-forward
            assert off.token_ids == r.token_ids


def test_constrained_greedy_equals_unconstrained_when_allowed():
    tok = gpt2()
    model = tiny_llama_for(tok, 3, init=1.0)  # peaked logits: no argmax near-ties
    for prompt in ("The", "Once upon a time"):
        free = generate(model, tok, prompt, max_new_tokens=16)
        data = tok.decode(free.token_ids).encode()
        assert free.text.encode() == data
        # (?s).* allows everything; the exact text forces it (drafts get verified)
        for pattern, budget in ((r"(?s).*", 16), (re.escape(free.text), 24)):
            r = generate(model, tok, prompt, regex=pattern, max_new_tokens=budget)
            assert r.token_ids == free.token_ids, pattern
            assert r.text == free.text


def test_streaming_yields_the_same_text(tm):
    model, tok = tm
    ref = generate(model, tok, ["p1", "prompt two"], grammar="json", max_new_tokens=15, temperature=0.8, seed=7)
    got = {0: "", 1: ""}

    def cb(i, delta):
        got[i] += delta

    again = generate(model, tok, ["p1", "prompt two"], grammar="json", max_new_tokens=15, temperature=0.8,
                     seed=7, stream=cb)
    assert [r.text for r in again] == [r.text for r in ref] == [got[0], got[1]]
    one = generate(model, tok, "p1", grammar="json", max_new_tokens=15, temperature=0.8, seed=7)
    s = generate(model, tok, "p1", grammar="json", max_new_tokens=15, temperature=0.8, seed=7, stream=True)
    assert isinstance(s, GenerationStream)
    assert "".join(s) == one.text == s.result.text


def test_seeded_sampling_is_reproducible_and_top_k_one_is_greedy(tm):
    model, tok = tm
    a = generate(model, tok, "x", grammar="json", max_new_tokens=12, temperature=1.0, seed=3)
    b = generate(model, tok, "x", grammar="json", max_new_tokens=12, temperature=1.0, seed=3)
    assert a.token_ids == b.token_ids
    g = generate(model, tok, "x", grammar="json", max_new_tokens=12)
    k1 = generate(model, tok, "x", grammar="json", max_new_tokens=12, temperature=0.7, top_k=1, seed=5)
    assert g.token_ids == k1.token_ids


def test_prompt_healing(tm):
    model, tok = tm
    vocab = vocabulary_for(tok)
    # "http:" ends in ":" which is a proper prefix of "://" tokens in GPT-2's vocabulary
    r = generate(model, tok, "Visit http:", regex=r"//[a-z]{2,6}\.com", max_new_tokens=12,
                 heal_prompt=True, chat=False)
    assert r.healed == ":"
    assert re.fullmatch(r"//[a-z]{2,6}\.com", r.text)
    full = vocab.decode(r.token_ids)
    assert full == (r.healed + r.text).encode()
    free = generate(model, tok, "Visit http:", max_new_tokens=4, heal_prompt=True, chat=False)
    assert free.healed == ":" and vocab.decode(free.token_ids).startswith(b":")


def test_errors(tm):
    model, tok = tm
    with pytest.raises(ConfigurationError, match="at most one"):
        generate(model, tok, "x", regex="a", grammar="json")
    with pytest.raises(ConfigurationError, match="max_new_tokens"):
        generate(model, tok, "x", regex="a", max_new_tokens=0)
    c = compile_regex("a", vocabulary_for(gpt2(), 50300))
    with pytest.raises(ConfigurationError, match="vocabulary"):
        generate(model, tok, "x", regex=c)


def test_crop_shim(tm):
    model, tok = tm
    cache = new_cache(model)
    with torch.no_grad():
        cache_kw, _ = forward_keywords(model)
        model(input_ids=torch.tensor([[1, 2, 3, 4, 5]]), use_cache=True, **{cache_kw: cache})
    assert cache.get_seq_length() == 5
    crop_cache(cache, 2)
    assert cache.get_seq_length() == 3
    crop_cache(cache, 0)
    assert cache.get_seq_length() == 3


@pytest.mark.parametrize("sampler", ["awrs", "smc", "asap"])
def test_exact_samplers_through_generate(tm, sampler):
    model, tok = tm
    r = generate(model, tok, "x", regex=r"(ab|cd){1,3}", sampler=sampler, temperature=1.0, seed=3,
                 max_new_tokens=12, particles=3, chat=False)
    assert re.fullmatch(r"(ab|cd){1,3}", r.text), r
    assert r.stats["forward_calls"] >= 1
    if sampler == "awrs":
        assert r.log_weight is not None and r.log_weight <= 0 and r.stats["constraint_checks"] >= 1
    if sampler == "smc":
        assert len(r.particles) == 3 and len(r.log_weights) == 3 and r.log_ml <= 0
    again = generate(model, tok, "x", regex=r"(ab|cd){1,3}", sampler=sampler, temperature=1.0, seed=3,
                     max_new_tokens=12, particles=3, chat=False)
    assert again.token_ids == r.token_ids  # seeded


def test_smc_critic_sees_values(tm):
    model, tok = tm
    seen = []

    def critic(value):
        seen.append(value)
        return 0.0 if value["n"] % 2 == 0 else float("-inf")  # a constraint the mask does not express

    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}},
              "required": ["n"], "additionalProperties": False}
    r = generate(model, tok, "x", schema=schema, sampler="smc", particles=4, temperature=1.0, seed=0,
                 max_new_tokens=16, critic=critic, chat=False, json_options={"whitespace": "compact"})
    assert seen and all(isinstance(v, dict) for v in seen)
    finite = [w for w in r.log_weights if w != float("-inf")]
    if finite:
        assert r.value["n"] % 2 == 0


def test_exact_sampler_option_errors(tm):
    model, tok = tm
    with pytest.raises(ConfigurationError, match="top_k"):
        generate(model, tok, "x", regex="a+", sampler="awrs", temperature=1.0, top_k=5)
    with pytest.raises(ConfigurationError, match="temperature"):
        generate(model, tok, "x", regex="a+", sampler="smc")
    with pytest.raises(ConfigurationError, match="draft"):
        generate(model, tok, "x", regex="a+", sampler="awrs", temperature=1.0, draft="prompt")
    with pytest.raises(ConfigurationError, match="sampler"):
        generate(model, tok, "x", regex="a+", sampler="beam")
    with pytest.raises(ConfigurationError, match="constraint"):
        generate(model, tok, "x", sampler="awrs", temperature=1.0)


@pytest.mark.parametrize("draft", [["grammar", "prompt"], ["layerskip"], ["grammar", "prompt", "layerskip"]])
def test_drafts_do_not_change_greedy_outputs(tm, draft):
    model, tok = tm
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6},
                                               "tags": {"type": "array", "items": {"enum": ["red", "blue"]}}},
              "required": ["name", "tags"]}
    prompt = 'Return {"name": "blue", "tags": ["red", "blue"]}'
    base = generate(model, tok, prompt, schema=schema, max_new_tokens=40, draft=[], chat=False)
    r = generate(model, tok, prompt, schema=schema, max_new_tokens=40, draft=draft, chat=False)
    assert r.token_ids == base.token_ids
    assert sum(r.stats["draft_tokens_proposed"].values()) > 0
    assert r.stats["target_forward_passes"] <= base.stats["target_forward_passes"]


def test_negative_seed_is_a_configuration_error(tm):
    model, tok = tm
    with pytest.raises(ConfigurationError, match="seed"):
        generate(model, tok, "x", regex="[0-9]", sampler="smc", temperature=1.0, seed=-1)
