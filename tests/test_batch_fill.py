"""Batched fill equals row-by-row fill, for mixed constraints and any thread count."""

from __future__ import annotations

import random

import numpy as np
import pytest

from structgen import Vocabulary, allocate_token_bitmask, compile_grammar, compile_json_schema, compile_regex, load_grammar
from structgen.errors import ConfigurationError
from structgen.mask.batch import fill_next_token_bitmask_batch


def _advance(m, rng: random.Random, steps: int) -> list[int]:
    vocab = m.compiled.vocab
    taken = []
    for _ in range(steps):
        ids = np.flatnonzero(np.unpackbits(m.next_token_mask().view(np.uint8), bitorder="little"))
        ids = [int(i) for i in ids if int(i) not in vocab.eos_ids]
        if not ids:
            break
        taken.append(rng.choice(ids))
        assert m.accept_token(taken[-1])
    return taken


TAKEN: dict[int, list[int]] = {}  # tokens each matcher accepted (Matcher has __slots__)


def _matchers(vocab, seed: int, n: int):
    rng = random.Random(seed)
    constraints = [
        compile_grammar(load_grammar("json"), vocab),
        compile_regex(r"[a-z]{2,8}@[a-z]+\.(com|org)", vocab),
        compile_json_schema({"type": "object", "properties": {"id": {"type": "integer"},
                                                              "tags": {"type": "array", "items": {"type": "string"}}}}, vocab),
        compile_grammar(load_grammar("arithmetic"), vocab),
    ]
    out = []
    for i in range(n):
        m = constraints[i % len(constraints)].matcher()
        TAKEN[id(m)] = _advance(m, rng, rng.randint(0, 12))
        out.append(m)
    return out


def _row_by_row(matchers, width):
    want = allocate_token_bitmask(len(matchers), width)
    for i, m in enumerate(matchers):
        m.fill_next_token_bitmask(want, i)
    return want


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_batch_equals_row_by_row_byte_vocab(threads):
    vocab = Vocabulary.byte_level()
    matchers = _matchers(vocab, seed=threads, n=13)
    want = _row_by_row(matchers, vocab.size)
    got = allocate_token_bitmask(len(matchers), vocab.size)
    got[:] = 0
    fill_next_token_bitmask_batch(matchers, got, threads=threads)
    assert np.array_equal(got, want)


@pytest.mark.hf
def test_batch_cold_masks_in_parallel_equal_row_by_row_gpt2():
    """Fresh constraints (every mask cold) filled on 4 threads; then the same rows warm."""
    from tokenizers_fixture import gpt2

    vocab = Vocabulary.from_tokenizer(gpt2())
    matchers = _matchers(vocab, seed=3, n=12)
    fresh = []
    for m in matchers:  # same states on new constraints: no mask cached yet
        f = type(m.compiled)(m.compiled.grammar, vocab).matcher()
        assert all(f.accept_token(t) for t in TAKEN[id(m)])
        fresh.append(f)
    got = allocate_token_bitmask(len(fresh), vocab.size)
    fill_next_token_bitmask_batch(fresh, got, threads=4)
    assert np.array_equal(got, _row_by_row(fresh, vocab.size))
    got2 = allocate_token_bitmask(len(matchers), vocab.size)
    fill_next_token_bitmask_batch(matchers, got2, threads=4)
    assert np.array_equal(got2, _row_by_row(matchers, vocab.size))


def test_batch_indices_and_torch():
    import torch
    vocab = Vocabulary.byte_level()
    matchers = _matchers(vocab, seed=1, n=3)
    want = _row_by_row(matchers, vocab.size)
    got = allocate_token_bitmask(5, vocab.size, backend="torch")
    fill_next_token_bitmask_batch(matchers, got, threads=2, indices=[4, 0, 2])
    arr = got.numpy()
    assert np.array_equal(arr[[4, 0, 2]], want)
    assert (arr[[1, 3]] == -1).all()  # untouched rows keep "all allowed"
    assert got.dtype == torch.int32


def test_batch_errors():
    vocab = Vocabulary.byte_level()
    matchers = _matchers(vocab, seed=0, n=2)
    with pytest.raises(ConfigurationError):
        fill_next_token_bitmask_batch(matchers, allocate_token_bitmask(2, 32 * 3))
    with pytest.raises(ConfigurationError):
        fill_next_token_bitmask_batch(matchers, allocate_token_bitmask(2, vocab.size), indices=[0])
    with pytest.raises(ConfigurationError):
        fill_next_token_bitmask_batch(matchers, allocate_token_bitmask(2, vocab.size), threads=0)
    with pytest.raises(ConfigurationError):
        fill_next_token_bitmask_batch(matchers, allocate_token_bitmask(2, vocab.size).astype(np.int64))
