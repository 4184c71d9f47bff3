"""``structgen.integrations.lm.TransformersLM`` (the BatchLM adapter with a KV cache)
and the samplers on a tiny random Llama over the real GPT-2 vocabulary."""

from __future__ import annotations

import re

import numpy as np
import pytest

import torch
from models_fixture import tiny_llama_for
from tokenizers_fixture import gpt2

from structgen import compile_regex
from structgen.integrations.lm import TransformersLM
from structgen.integrations.transformers import vocabulary_for
from structgen.sampling import AWRS, ASAp, smc

pytestmark = pytest.mark.hf


@pytest.fixture(scope="module")
def tm():
    tok = gpt2()
    return tiny_llama_for(tok, 0), tok


def reference(model, prefix):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prefix])).logits[0, -1].double()
    return torch.log_softmax(logits, -1).numpy()


def test_cached_logprobs_equal_a_fresh_forward_through_growth_and_reorder(tm):
    model, tok = tm
    lm = TransformersLM(model)
    rows = [tok.encode("Hello there"), tok.encode("A"), tok.encode("one two three four")]
    rng = np.random.default_rng(0)
    for step in range(5):
        out = lm.logprobs(rows)
        for r, lp in zip(rows, out):
            np.testing.assert_allclose(lp, reference(model, r), atol=2e-4)
        if step == 1:  # resampling: duplicate row 2, drop row 1
            lm.reorder([2, 0, 2])
            rows = [rows[2], rows[0], list(rows[2])]
        if step == 3:  # ragged growth: one row gains two tokens
            rows[0] = rows[0] + [int(rng.integers(1000))]
        rows = [r + [int(rng.integers(1000))] for r in rows]
    assert lm.forward_calls == 5
    # a call that does not extend the cache recomputes, still exactly
    other = [tok.encode("fresh start")]
    np.testing.assert_allclose(lm.logprobs(other)[0], reference(model, other[0]), atol=2e-4)


def test_smc_and_asap_on_a_real_vocabulary(tm):
    model, tok = tm
    vocab = vocabulary_for(tok, model.config.vocab_size)
    compiled = compile_regex(r"(yes|no), [0-9]{2}", vocab)
    lm = TransformersLM(model, temperature=1.0)
    prompt = tok.encode("Answer:")
    sampler = AWRS()
    res = smc(lm, compiled.matcher(), n_particles=4, rng=np.random.default_rng(0), max_tokens=12,
              prompt=prompt, token_sampler=sampler)
    texts = [tok.decode(p) for p, f in zip(res.particles, res.finished) if f]
    assert texts and all(re.fullmatch(r"(yes|no), [0-9]{2}", t) for t in texts)
    assert np.isfinite(res.log_ml) and res.n_checks > 0
    assert res.n_steps == lm.forward_calls  # one batched forward per step
    asap = ASAp(max_tokens=12, batch_size=4)
    samples = asap.sample(lm, compiled.matcher, 4, np.random.default_rng(1), prompt=prompt)
    assert all(re.fullmatch(r"(yes|no), [0-9]{2}", tok.decode(s.tokens)) for s in samples if s.finished)
    assert asap.num_nodes > 1


def test_one_prompt_for_many_particles_is_prefilled_once(tm):
    model, _ = tm
    lm = TransformersLM(model)
    prompt = [11, 12, 13, 14]
    many = lm.logprobs([prompt] * 4)
    assert lm.tokens_fed == len(prompt)  # not 4 x len(prompt)
    single = TransformersLM(model).logprobs([prompt])
    assert np.allclose(many, np.repeat(single, 4, axis=0), atol=1e-5)
    nxt = lm.logprobs([prompt + [t] for t in (1, 2, 3, 4)])
    fresh = TransformersLM(model).logprobs([prompt + [3]])
    assert np.allclose(nxt[2], fresh[0], atol=1e-4)
