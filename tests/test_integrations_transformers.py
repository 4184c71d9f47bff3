"""StructgenLogitsProcessor / StructgenStoppingCriteria inside ``model.generate``:
mechanics with a tiny random Llama over the real GPT-2 vocabulary.

Validity is checked by replaying every generated row through a fresh matcher:
every token must be accepted (a prefix of a valid output; ``model.generate``
has no budget-safe closing), and rows that stopped early must be complete."""

from __future__ import annotations

import re

import pytest

import torch
from models_fixture import tiny_llama_for
from tokenizers_fixture import gpt2

from structgen import compile_grammar, compile_regex, load_grammar
from structgen.integrations.transformers import (
    StructgenLogitsProcessor,
    StructgenStoppingCriteria,
    encode_bytes,
    vocabulary_for,
)
from structgen.vocab.tokenize import greedy_tokenize

pytestmark = pytest.mark.hf


DATE = r"\d{4}-\d{2}-\d{2}"
ANSWER = r"(yes|no|maybe)"


@pytest.fixture(scope="module")
def setup():
    tok = gpt2()
    tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model = tiny_llama_for(tok, 0)
    vocab = vocabulary_for(tok, model.config.vocab_size)
    constraints = {
        "date": compile_regex(DATE, vocab),
        "json": compile_grammar(load_grammar("json"), vocab),
        "answer": compile_regex(ANSWER, vocab),
    }
    return tok, model, vocab, constraints


def _check_row(compiled, ids, eos, *, must_finish: bool):
    """Replay ``ids`` (generated part, padding included) through a matcher."""
    m = compiled.matcher()
    ids = list(ids)
    for k, t in enumerate(ids):
        if t in eos:
            assert m.can_terminate(), f"EOS before the output is complete: {ids[:k]}"
            return
        assert m.accept_token(t), f"token {t} at {k} not allowed"
    if must_finish:
        assert m.can_terminate()


def _generate(model, tok, prompts, constraints, **kw):
    batch = tok(prompts, return_tensors="pt", padding=True)
    proc = StructgenLogitsProcessor(constraints, pad_token_id=tok.pad_token_id)
    out = model.generate(**batch, logits_processor=[proc], stopping_criteria=[StructgenStoppingCriteria(proc)],
                         pad_token_id=tok.pad_token_id, **kw)
    return out[:, batch["input_ids"].shape[1]:], proc


PROMPTS = ["a", "bb bb", "ccc ccc ccc ccc"]  # different lengths: left padding


@pytest.mark.parametrize("mode", ["greedy", "sample", "beams"])
def test_per_row_constraints_in_one_batch(setup, mode):
    tok, model, _, cs = setup
    kw = {"greedy": dict(do_sample=False),
          "sample": dict(do_sample=True, temperature=1.3, top_k=40, top_p=0.95),
          "beams": dict(num_beams=3, do_sample=False, num_return_sequences=2)}[mode]
    torch.manual_seed(1)
    order = [cs["date"], cs["json"], cs["answer"]]
    gen, _ = _generate(model, tok, PROMPTS, order, max_new_tokens=14, **kw)
    per = len(gen) // len(order)
    assert len(gen) == per * len(order)
    texts = tok.batch_decode(gen, skip_special_tokens=True)
    for r, row in enumerate(gen.tolist()):
        c = order[r // per]
        _check_row(c, row, {tok.eos_token_id}, must_finish=c is not cs["json"])
    for r in range(per):
        assert re.fullmatch(DATE, texts[r])
        assert re.fullmatch(ANSWER, texts[2 * per + r])


def test_mask_comes_before_the_sampling_warpers(setup):
    """User processors run before temperature/top-k/top-p in transformers' generate: with
    top_k=1, sampling must pick the best *allowed* token, i.e. equal constrained greedy."""
    tok, model, _, cs = setup
    greedy, _ = _generate(model, tok, PROMPTS, cs["json"], max_new_tokens=10, do_sample=False)
    top1, _ = _generate(model, tok, PROMPTS, cs["json"], max_new_tokens=10, do_sample=True, top_k=1,
                        temperature=0.5)
    assert torch.equal(greedy, top1)
    for row in top1.tolist():
        _check_row(cs["json"], row, {tok.eos_token_id}, must_finish=False)


def test_beam_search_outputs_are_valid(setup):
    tok, model, _, cs = setup
    gen, _ = _generate(model, tok, ["x", "yy"], cs["json"], max_new_tokens=10, num_beams=3,
                       num_return_sequences=3, do_sample=False)
    assert gen.shape[0] == 6
    for row in gen.tolist():
        _check_row(cs["json"], row, {tok.eos_token_id}, must_finish=False)


def test_assisted_decoding_outputs_are_valid(setup):
    tok, model, _, cs = setup
    assistant = tiny_llama_for(tok, 1)  # disagrees with the target: candidates get rejected
    for c, n in ((cs["date"], 12), (cs["json"], 10)):
        batch = tok(["hello there"], return_tensors="pt")
        proc = StructgenLogitsProcessor(c)
        out = model.generate(**batch, logits_processor=[proc], stopping_criteria=[StructgenStoppingCriteria(proc)],
                             assistant_model=assistant, max_new_tokens=n, do_sample=False,
                             pad_token_id=tok.pad_token_id)
        row = out[0, batch["input_ids"].shape[1]:].tolist()
        _check_row(c, row, {tok.eos_token_id}, must_finish=c is cs["date"])
        # same as plain greedy: assisted decoding is exact
        proc2 = StructgenLogitsProcessor(c)
        ref = model.generate(**batch, logits_processor=[proc2], stopping_criteria=[StructgenStoppingCriteria(proc2)],
                             max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
        assert ref[0, batch["input_ids"].shape[1]:].tolist() == row


def test_left_padding_does_not_change_a_row(setup):
    tok, model, _, cs = setup
    alone, _ = _generate(model, tok, ["a"], [cs["json"]], max_new_tokens=8, do_sample=False)
    padded, _ = _generate(model, tok, ["a", "ccc ccc ccc ccc"], [cs["json"], cs["json"]],
                          max_new_tokens=8, do_sample=False)
    n = alone.shape[1]
    assert padded[0, :n].tolist() == alone[0].tolist()


def test_state_comes_from_input_ids_rollback_and_permutation(setup):
    tok, _, vocab, cs = setup
    c = cs["json"]
    a = encode_bytes(tok, vocab, b'{"a": [1, 2]}')
    b = encode_bytes(tok, vocab, b'"hello world, again"')
    prompt = [11, 12, 13]

    def mask(proc, gen_rows):
        x = torch.tensor([prompt + g for g in gen_rows])
        return torch.isfinite(proc(x, torch.zeros(len(gen_rows), vocab.size)))

    proc = StructgenLogitsProcessor(c)
    mask(proc, [[], []])  # the first call fixes the prompt length
    long_ = mask(proc, [a[:6], b[:6]])
    short = mask(proc, [a[:3], b[:3]])  # rollback: shorter prefixes after longer ones
    swapped = mask(proc, [b[:3], a[:3]])  # beams permuted
    fresh = StructgenLogitsProcessor(c)
    mask(fresh, [[], []])
    assert torch.equal(short, mask(fresh, [a[:3], b[:3]]))
    assert torch.equal(long_, mask(fresh, [a[:6], b[:6]]))
    assert torch.equal(swapped[0], short[1]) and torch.equal(swapped[1], short[0])
    assert not torch.equal(short[0], short[1])
    threaded = StructgenLogitsProcessor([c, compile_grammar(load_grammar("json"), vocab)], threads=2)
    mask(threaded, [[], []])  # rows of two constraints filled on two threads: the same masks
    assert torch.equal(mask(threaded, [a[:6], b[:6]])[0], long_[0])
    on_processes = StructgenLogitsProcessor(c, processes=2)  # rows filled in two processes: the same masks
    mask(on_processes, [[], []])
    assert torch.equal(mask(on_processes, [a[:6], b[:6]]), long_)
    assert torch.equal(mask(on_processes, [b[:3], a[:3]]), swapped)
    m = c.matcher()
    assert m.accept_tokens(a[:3])
    allowed = torch.from_numpy(m.next_token_mask().view("int32").copy()).unsqueeze(-1)  # masks are read-only
    bits = ((allowed >> torch.arange(32, dtype=torch.int32)) & 1).bool().flatten()[:vocab.size]
    assert torch.equal(short[0], bits)


def test_finished_and_rejected_rows_allow_only_eos_and_pad(setup):
    tok, _, vocab, cs = setup
    eos = tok.eos_token_id
    proc = StructgenLogitsProcessor(cs["answer"], pad_token_id=7)
    yes = encode_bytes(tok, vocab, b"yes")
    bad = encode_bytes(tok, vocab, b"nope")
    prompt = [1, 2]
    proc(torch.tensor([prompt]), torch.zeros(1, vocab.size))
    x = torch.tensor([prompt + yes + [eos, eos], prompt + bad + [eos] * (len(yes) + 2 - len(bad))])
    out = proc(x, torch.zeros(2, vocab.size))
    for r in range(2):
        assert set(torch.isfinite(out[r]).nonzero().flatten().tolist()) == {eos, 7}
    stop = StructgenStoppingCriteria(proc)(x)
    assert stop.tolist() == [True, False]  # finished: yes; rejected prefixes are not "finished"
    done = StructgenStoppingCriteria(proc)(torch.tensor([prompt + yes]))
    assert done.tolist() == [True]  # complete and nothing may follow


def test_unconstrained_rows_and_shape_errors(setup):
    tok, _, vocab, cs = setup
    proc = StructgenLogitsProcessor([None, cs["date"]])
    scores = torch.randn(4, vocab.size)  # two rows per prompt (num_return_sequences=2)
    out = proc(torch.tensor([[5]] * 4), scores.clone())
    assert torch.equal(out[:2], scores[:2])
    assert not torch.isfinite(out[2:]).all()
    with pytest.raises(Exception, match="cannot be split"):
        proc(torch.tensor([[5, 6]] * 3), torch.zeros(3, vocab.size))


def test_encode_bytes_is_exact(setup):
    tok, _, vocab, _ = setup
    for data in (b'{"name": "J\xc3\xb6rg"}', b"\xe2\x82", b"<|endoftext|>x", b"  \n\t1"):
        ids = encode_bytes(tok, vocab, data)
        assert vocab.decode(ids) == data
        assert vocab.decode(greedy_tokenize(vocab.byte_index, data)) == data
    assert vocabulary_for(tok, vocab.size) is vocab


def test_processor_reuse_across_generate_calls(setup):
    tok, model, _, cs = setup
    batch1 = tok(["a", "bb bb"], return_tensors="pt", padding=True)
    batch2 = tok(["something else entirely", "x"], return_tensors="pt", padding=True)
    proc = StructgenLogitsProcessor(cs["date"])
    kw = dict(logits_processor=[proc], stopping_criteria=[StructgenStoppingCriteria(proc)], max_new_tokens=12,
              do_sample=False, pad_token_id=tok.pad_token_id)
    model.generate(**batch1, **kw)
    out = model.generate(**batch2, **kw)  # new prompts: the processor starts over
    for text in tok.batch_decode(out[:, batch2["input_ids"].shape[1]:], skip_special_tokens=True):
        assert re.fullmatch(DATE, text)
