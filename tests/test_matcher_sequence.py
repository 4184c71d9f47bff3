"""Matcher as the one per-sequence state: O(1) forks that share history, the
required prefix (prompt healing), model EOS ids, cheap checks and completions.
Every mask is compared with a brute force over ``accept_token`` on forks."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from structgen import ConfigurationError, Vocabulary, compile_grammar, compile_regex, load_grammar

TOKENS = ["{", "}", '"', "a", "b", "ab", '"a', 'a"', ":", ",", " ", "1", "12", "[", "]", '{"', '":', "x"]


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.from_strings(TOKENS)


@pytest.fixture(scope="module")
def json_c(vocab):
    return compile_grammar(load_grammar("json"), vocab)


def mask_ids(m) -> set[int]:
    words = m.next_token_mask()
    return {t for t in range(32 * len(words)) if (int(words[t >> 5]) >> (t & 31)) & 1}


def brute_ids(m, vocab) -> set[int]:
    return {t for t in range(vocab.size) if m.fork().accept_token(t)}


def test_fork_is_independent_and_shares_history(vocab, json_c):
    m = json_c.matcher()
    assert m.accept_tokens([TOKENS.index(t) for t in ['{"', "a", '":']])
    f = m.fork()
    assert f.num_accepted == m.num_accepted == 3
    assert f.accept_token(TOKENS.index("1"))
    assert m.num_accepted == 3 and f.num_accepted == 4
    f.rollback(2)
    assert f.num_accepted == 2 and f.state != m.state
    m.reset()
    assert m.num_accepted == 0 and f.num_accepted == 2
    with pytest.raises(ConfigurationError):
        f.rollback(3)


def test_check_token_equals_mask_on_random_walks(vocab, json_c):
    rng = random.Random(0)
    for _ in range(20):
        m = json_c.matcher()
        for _ in range(12):
            allowed = brute_ids(m, vocab)
            assert mask_ids(m) == allowed
            assert {t for t in range(vocab.size) if m.check_token(t)} == allowed
            text = [t for t in allowed if t not in vocab.eos_ids]
            if not text:
                break
            assert m.accept_token(rng.choice(text))


@pytest.mark.parametrize("prefix", [b'{"', b'a', b"x{", b'ab:'])
def test_required_prefix_mask_is_exact(vocab, json_c, prefix):
    """With a required prefix (healed prompt bytes) the language is prefix + L: masks
    equal the brute force, EOS waits for the prefix, and what follows it parses."""
    m = json_c.matcher(prefix=prefix)
    assert m.pending_prefix == prefix and not m.can_terminate()
    rng = random.Random(len(prefix))
    out = b""
    for _ in range(30):
        allowed = brute_ids(m, vocab)
        assert mask_ids(m) == allowed, out
        if m.can_terminate():
            break
        text = sorted(t for t in allowed if t not in vocab.eos_ids)
        closers = [t for t in text if vocab.token_bytes[t] in (b"}", b'"', b"1")]
        t = rng.choice(closers or text) if len(out) > len(prefix) + 4 else rng.choice(text)
        assert m.accept_token(t)
        out += vocab.token_bytes[t]
    assert out.startswith(prefix)
    tail = m.completion_bytes()
    json.loads(out[len(prefix):] + tail)


def test_accept_string_through_the_prefix(json_c):
    m = json_c.matcher(prefix=b'ab{')
    assert not m.accept_string(b'ax')
    assert m.accept_string(b'a')
    assert m.pending_prefix == b'b{'
    assert not m.accept_string(b'b{}')  # the prefix is not part of the JSON: "}" starts no value
    assert m.accept_string(b'b{{"a": 1}')
    assert m.pending_prefix == b"" and m.can_terminate()


def test_model_eos_ids(vocab):
    c = compile_regex("ab", vocab)
    extra = TOKENS.index("x")  # a model whose EOS is another id
    m = c.matcher(eos_ids=[extra])
    assert m.accept_tokens([TOKENS.index("ab")])
    assert mask_ids(m) == {extra}
    assert not m.check_token(next(iter(vocab.eos_ids)))
    assert m.accept_token(extra) and m.is_terminated()
    assert mask_ids(m) == {extra}
    with pytest.raises(Exception):
        c.matcher(eos_ids=[vocab.size + 5])


def test_must_terminate_and_completions(vocab):
    c = compile_regex("a(b|bb)?", vocab)
    m = c.matcher()
    assert m.completion_tokens() == [TOKENS.index("a")]
    assert m.fits(1) and not m.fits(0)
    assert m.accept_token(TOKENS.index("a"))
    assert m.can_terminate() and not m.must_terminate()
    assert m.completion_tokens() == []
    assert m.accept_token(TOKENS.index("b"))
    assert m.accept_token(TOKENS.index("b"))
    assert m.must_terminate()


def test_masks_are_read_only(vocab, json_c):
    m = json_c.matcher(prefix=b"{")
    for words in (m.next_token_mask(), json_c.matcher().next_token_mask()):
        with pytest.raises(ValueError):
            words[:] = 0
    assert np.any(json_c.matcher().next_token_mask())
