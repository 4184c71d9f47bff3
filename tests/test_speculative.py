"""Speculative decoding under a constraint is exact: for every draft source the
distribution of outputs equals masked decoding's, computed by enumeration on a
tiny Llama over a toy vocabulary (chi-squared), and greedy outputs are identical
token for token.  Plus the verification rule alone, and the classic bug of mixing
raw and masked probabilities."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from models_fixture import tiny_llama

from structgen import Vocabulary, compile_regex
from structgen.integrations.drafters import DraftModel, layerskip_model
from structgen.integrations.loop import Drafting, Sequence, run
from structgen.sampling.drafts import GrammarDrafts, PromptLookupDrafts, SourceStats
from structgen.sampling.speculative import verify_draft
from structgen.sampling.warpers import TokenSampler, apply_mask, warped_probs
from structgen.testing import chi2_test
from structgen.vocab.tokenize import greedy_tokenize

TOKENS = ["x", "a", "b", "ab", "ba", "c", "bc", "xa", "q"]
PATTERN = r"x(a|b){1,3}c"
PROMPT = [8, 0, 1, 2, 5, 8, 0, 3]  # q x a b c q x ab: n-grams prompt lookup can copy


@pytest.fixture(scope="module")
def setup():
    vocab = Vocabulary.from_strings(TOKENS)
    model = tiny_llama(vocab.size, vocab.size - 1, seed=3, hidden_size=32, heads=2, init=0.6)
    return vocab, model, compile_regex(PATTERN, vocab)


def exact_masked(model, compiled, temperature: float = 1.0) -> dict[tuple[int, ...], float]:
    """P(output) under masked decoding, by enumerating every allowed continuation."""
    out: dict[tuple[int, ...], float] = {}

    def visit(matcher, prefix: list[int], prob: float):
        if matcher.must_terminate():
            out[tuple(prefix)] = out.get(tuple(prefix), 0.0) + prob
            return
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([PROMPT + prefix])).logits[0, -1].numpy()
        p = warped_probs(apply_mask(logits, matcher.next_token_mask()), temperature=temperature)
        for t in np.flatnonzero(p > 0):
            t = int(t)
            if t in compiled.vocab.eos_ids:
                out[tuple(prefix)] = out.get(tuple(prefix), 0.0) + prob * p[t]
                continue
            m = matcher.fork()
            assert m.accept_token(t)
            visit(m, prefix + [t], prob * p[t])

    visit(compiled.matcher(), [], 1.0)
    return out


def sample(vocab, model, compiled, n: int, sources: list[str], *, temperature: float = 1.0, seed: int = 0):
    encode = lambda data: greedy_tokenize(vocab.byte_index, data)  # noqa: E731
    eos = frozenset(vocab.eos_ids)
    rows = [Sequence(i, "", list(PROMPT), compiled.matcher(), vocab, encode, 12, eos,
                     lookup=PromptLookupDrafts(PROMPT) if "prompt" in sources else None)
            for i in range(n)]
    drafting = Drafting(grammar=GrammarDrafts(encode) if "grammar" in sources else None,
                        prompt="prompt" in sources,
                        draft_model=DraftModel(layerskip_model(model, 1), "layerskip") if "layerskip" in sources
                        else None)
    drafting.stats["model"].warmup = 10 ** 9  # keep the source on: exactness, not speed, is tested here
    drafting.stats["prompt"].warmup = 10 ** 9
    for _ in run(model, rows, TokenSampler(temperature, seed=seed), "verify", vocab.size - 1, drafting=drafting):
        pass
    return rows


def chi2_pvalue(counts: dict, exact: dict) -> float:
    return chi2_test(counts, exact)[2]


@pytest.mark.parametrize("sources", [[], ["grammar"], ["prompt"], ["layerskip"], ["grammar", "prompt", "layerskip"]])
def test_output_distribution_equals_masked_decoding(setup, sources):
    vocab, model, compiled = setup
    exact = exact_masked(model, compiled)
    assert math.isclose(sum(exact.values()), 1.0, rel_tol=1e-9)
    n = 1500
    rows = sample(vocab, model, compiled, n, sources, seed=len(sources) * 7 + 1)
    counts: dict = {}
    for r in rows:
        assert r.finish in ("complete", "eos")
        counts[tuple(r.out_ids)] = counts.get(tuple(r.out_ids), 0) + 1
    assert chi2_pvalue(counts, exact) > 0.01
    proposed = sum(sum(r.stats["draft_tokens_proposed"].values()) for r in rows)
    if sources:
        assert proposed > 0, "the draft sources proposed nothing: the test would not test them"
    if "layerskip" in sources:
        assert rows[0].stats["draft_forward_passes"] > 0


def test_temperature_is_applied_to_both_distributions(setup):
    vocab, model, compiled = setup
    exact = exact_masked(model, compiled, temperature=0.6)
    n = 1500
    rows = sample(vocab, model, compiled, n, ["grammar", "layerskip"], temperature=0.6, seed=11)
    counts: dict = {}
    for r in rows:
        counts[tuple(r.out_ids)] = counts.get(tuple(r.out_ids), 0) + 1
    assert chi2_pvalue(counts, exact) > 0.01


def test_greedy_outputs_are_identical(setup):
    vocab, model, compiled = setup
    base = [r.out_ids for r in sample(vocab, model, compiled, 3, [], temperature=0)]
    for sources in (["grammar"], ["prompt"], ["layerskip"], ["grammar", "prompt", "layerskip"]):
        assert [r.out_ids for r in sample(vocab, model, compiled, 3, sources, temperature=0)] == base


def test_verify_draft_is_exact_and_the_raw_mix_is_not():
    """verify_draft(p, x ~ q, q) returns exactly p; using raw (unmasked) q in the ratio
    while the draft was drawn from the masked q -- the classic bug -- does not."""
    rng = np.random.default_rng(0)
    V = 6
    raw_p, raw_q = rng.dirichlet(np.ones(V)), rng.dirichlet(np.ones(V))
    mask = np.array([1, 1, 0, 1, 0, 1], dtype=bool)
    p = np.where(mask, raw_p, 0) / raw_p[mask].sum()
    q = np.where(mask, raw_q, 0) / raw_q[mask].sum()
    n = 40_000
    good, bad = np.zeros(V), np.zeros(V)
    for _ in range(n):
        x = int(rng.choice(V, p=q))
        good[verify_draft(p, x, rng, q)[0]] += 1
        bad[verify_draft(p, x, rng, raw_q)[0]] += 1  # ratio and residual with the raw draft distribution
    probs = {t: float(p[t]) for t in range(V)}
    assert chi2_test(dict(enumerate(good)), probs)[2] > 0.01
    assert chi2_test(dict(enumerate(bad)), probs)[2] < 1e-6
    # a one-hot draft (q=None): accepted with probability p(x), else a draw from p without x
    onehot = np.zeros(V)
    for _ in range(n):
        onehot[verify_draft(p, 3, rng)[0]] += 1
    assert chi2_test(dict(enumerate(onehot)), probs)[2] > 0.01


def test_prompt_lookup_proposes_only_what_the_constraint_accepts():
    vocab = Vocabulary.from_strings(TOKENS)
    c = compile_regex(PATTERN, vocab)
    lookup = PromptLookupDrafts(PROMPT, max_ngram=2)
    m = c.matcher()
    assert m.accept_token(0)  # "x"; the prompt continues "x" with "a b c q" and "ab"
    draft = lookup.propose(m, [0])
    assert draft == [3]  # the most recent "x" is followed by "ab", and the prompt ends there
    m.accept_token(1)
    assert lookup.propose(m, [0, 1]) == [2, 5]  # "x a" -> "b c", cut before "q" (not allowed)
    assert all(m.fork().accept_tokens(d) for d in [lookup.propose(m, [0, 1])])


def test_source_stats_switch_a_bad_source_off():
    st = SourceStats("model", cost=0.5, warmup=10)
    for _ in range(10):
        st.record(4, 0)
    assert not st.enabled and st.length == 1
    good = SourceStats("prompt", warmup=10)
    for _ in range(10):
        good.record(4, 4)
    assert good.enabled and good.length == good.max_len


def test_layerskip_shares_weights_and_runs_fewer_layers(setup):
    _, model, _ = setup
    draft = layerskip_model(model, 1)
    assert len(draft.model.layers) == 1 and len(model.model.layers) == 2
    assert draft.model.layers[0] is model.model.layers[0] and draft.lm_head is model.lm_head
    assert model.config.num_hidden_layers == 2
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        assert not torch.allclose(draft(input_ids=ids).logits, model(input_ids=ids).logits)
    with pytest.raises(Exception, match="layers"):
        layerskip_model(model, 2)


def test_all_enumerated_outputs_match_the_pattern(setup):
    import re

    vocab, model, compiled = setup
    for ids in itertools.islice(exact_masked(model, compiled), 50):
        assert re.fullmatch(PATTERN, vocab.decode(ids).decode())
