"""The engine on real tokenizers: shipped grammars and regexes, replayed token by token."""

from __future__ import annotations

import random

import numpy as np
import pytest

from oracles import regex_complete, regex_viable
from structgen import Vocabulary, compile_grammar, compile_regex, load_grammar

pytestmark = pytest.mark.hf

TOKENIZERS = ["gpt2", "deepseek", "mistral"]


@pytest.fixture(scope="module", params=TOKENIZERS)
def tokvocab(request):
    from structgen.vocab.known import load_tokenizer

    tok = load_tokenizer(request.param)  # a missing package fails: scripts/setup.sh installs them all
    return request.param, tok, Vocabulary.from_tokenizer(tok)


_NO_PREFIX = {}


def encode(tok, vocab, text):
    """The tokenizer's own ids for ``text``; SentencePiece's dummy prefix space is
    turned off, since the constrained stream is the tokens' bytes."""
    if vocab.prefix_space:
        if tok.name_or_path not in _NO_PREFIX:
            _NO_PREFIX[tok.name_or_path] = type(tok).from_pretrained(tok.name_or_path, add_prefix_space=False)
        tok = _NO_PREFIX[tok.name_or_path]
    ids = tok.encode(text, add_special_tokens=False)
    assert vocab.decode(ids) == text.encode()
    return ids


def replay(compiled, ids):
    """Index of the first blocked token (len(ids) if none) and whether EOS is then allowed."""
    m = compiled.matcher()
    for i, t in enumerate(ids):
        allowed = m.is_token_allowed(t)
        assert allowed == m.fork().accept_token(t)  # mask and accept agree
        if not allowed:
            return i, False
        m.accept_token(t)
    return len(ids), m.can_terminate()


GRAMMARS = ["json", "sql_select", "arithmetic", "minilang", "csv"]


@pytest.mark.parametrize("name", GRAMMARS)
def test_shipped_grammar_samples(tokvocab, name):
    from grammar_samples import SAMPLES

    _, tok, vocab = tokvocab
    compiled = compile_grammar(load_grammar(name), vocab)
    for text in SAMPLES[name]["valid"]:
        ids = encode(tok, vocab, text)
        n, eos = replay(compiled, ids)
        assert n == len(ids), f"valid {name} text blocked at token {n}: {text!r}"
        assert eos, f"EOS not allowed after valid {name} text {text!r}"
    for text in SAMPLES[name]["invalid"]:
        ids = encode(tok, vocab, text)
        n, eos = replay(compiled, ids)
        assert n < len(ids) or not eos, f"invalid {name} text accepted: {text!r}"


# the full V-token sweep only on the smaller vocabularies (deepseek's 129k would take minutes)
@pytest.mark.parametrize("tokvocab", ["gpt2", "mistral"], indirect=True)
def test_mask_equals_accept_for_every_token(tokvocab):
    """At several JSON states, each of the V bits equals what accept_token says (two code paths)."""
    name, tok, vocab = tokvocab
    compiled = compile_grammar(load_grammar("json"), vocab)
    ids = encode(tok, vocab, '{"key": [1, -2.5e3, "v\\u00e9", true, null], "x": {}}')
    m = compiled.matcher()
    rng = random.Random(0)
    for pos in sorted(rng.sample(range(len(ids)), 4)) + [len(ids)]:
        while m.num_accepted < pos:
            assert m.accept_token(ids[m.num_accepted])
        mask = m.next_token_mask()
        bits = np.unpackbits(mask.view(np.uint8), bitorder="little")[: vocab.size].astype(bool)
        special = {i for i, b in enumerate(vocab.token_bytes) if b is None}
        for t in range(vocab.size):
            if t in special and t not in vocab.eos_ids:
                assert not bits[t]
                continue
            assert bits[t] == m.fork().accept_token(t), (pos, t, vocab.token_bytes[t])


REGEXES = {
    r"[a-z]+@[a-z]+\.(com|org)": ["ada@example.com", "b@c.org"],
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z": ["2026-11-22T21:02:00Z"],
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}": ["123e4567-e89b-12d3-a456-426614174000"],
    r"(Mr|Ms|Dr)\. [A-Z][a-zé]+( [A-Z][a-z]+)?": ["Dr. Zoé Zola", "Ms. Ada Lovelace"],
    r'"(?:[^"\\]|\\.)*"': ['"héllo \\"wörld\\" ✓"', '""'],
    r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?": ["-12.5e-3", "0", "42"],
}


@pytest.mark.parametrize("pattern", list(REGEXES))
def test_regex_masks_match_oracle_on_real_vocab(tokvocab, pattern):
    """Along each sample, the mask over every whole-UTF-8 token equals regex partial matching."""
    _, tok, vocab = tokvocab
    compiled = compile_regex(pattern, vocab)
    texts = {t: b.decode() for t, b in enumerate(vocab.token_bytes) if b and _utf8(b)}
    for sample in REGEXES[pattern]:
        ids = encode(tok, vocab, sample)
        m = compiled.matcher()
        for step in range(len(ids) + 1):
            raw = vocab.decode(ids[:step])
            mask = m.next_token_mask()
            bits = np.unpackbits(mask.view(np.uint8), bitorder="little")
            if _utf8(raw):  # the oracle works on whole characters
                prefix = raw.decode()
                if step in (0, len(ids) // 2, len(ids)):
                    for t, s in texts.items():
                        assert bool(bits[t]) == regex_viable(pattern, prefix + s), (prefix, s)
                assert any(bool(bits[e]) for e in vocab.eos_ids) == regex_complete(pattern, prefix)
            if step < len(ids):
                assert m.accept_token(ids[step])


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
