"""Masks equal brute-force oracles on small vocabularies (both kernel backends)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from oracles import cfg_viable, regex_complete, regex_viable
from regex_strategies import regexes
from structgen.automata.regex import literal_dfa
from structgen.errors import GrammarError
from structgen.grammar.ir import Grammar, Terminal, term_symbol
from structgen.mask.engine import CompiledGrammar
from structgen.compile import compile_regex
from structgen.vocab import Vocabulary

BACKENDS = ["numba", "reference"]
CFG_TOKENS = ["a", "b", "c", "ab", "ba", "bc", "ca", "abc", "cab", "aa", "bb", "cc", "aab", "cba"]
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def allowed_set(matcher, vocab):
    m = matcher.next_token_mask()
    return {t for t in range(vocab.size) if (int(m[t >> 5]) >> (t & 31)) & 1}


def check_walk(compiled, vocab, viable, complete, seed, steps=8):
    """Random walk through allowed tokens; at every step the mask must equal the oracle."""
    rng = random.Random(seed)
    m = compiled.matcher()
    text = ""
    eos = next(iter(vocab.eos_ids))
    for _ in range(steps):
        got = allowed_set(m, vocab)
        want = {t for t in range(vocab.size) if vocab.token_bytes[t] is not None
                and viable(text + vocab.token_bytes[t].decode())}
        if complete(text):
            want.add(eos)
        assert got == want, (text, sorted(got ^ want))
        for t in range(vocab.size):  # accept_token agrees with the mask
            if t != eos:
                assert m.fork().accept_token(t) == (t in got)
        choices = sorted(got - {eos})
        if not choices:
            break
        t = rng.choice(choices)
        assert m.accept_token(t)
        text += vocab.token_bytes[t].decode()


@st.composite
def random_cfgs(draw):
    k = draw(st.integers(1, 3))
    names = ["S0"] + [f"N{i}" for i in range(1, k)]
    symbols = names + ["a", "b", "c"]
    rules = []
    for name in names:
        for _ in range(draw(st.integers(1, 3))):
            rules.append((name, tuple(draw(st.lists(st.sampled_from(symbols), max_size=3)))))
    return rules


def ir_from_rules(rules):
    terms = ["a", "b", "c"]
    names = list(dict.fromkeys(lhs for lhs, _ in rules))
    terminals = [Terminal(t.upper(), literal_dfa(t.encode()), t) for t in terms]
    ir_rules = [(names.index(lhs), tuple(term_symbol(terms.index(s)) if s in terms else names.index(s)
                                         for s in rhs)) for lhs, rhs in rules]
    return Grammar(terminals, names, ir_rules, 0)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(rules=random_cfgs(), seed=st.integers(0, 1000))
def test_cfg_masks_match_bar_hillel_oracle(backend, rules, seed):
    vocab = Vocabulary.from_strings(CFG_TOKENS)
    if not cfg_viable(rules, "S0", ""):
        with pytest.raises(GrammarError):
            CompiledGrammar(ir_from_rules(rules), vocab, kernels=backend)
        return
    compiled = CompiledGrammar(ir_from_rules(rules), vocab, kernels=backend)
    check_walk(compiled, vocab, lambda s: cfg_viable(rules, "S0", s),
               lambda s: cfg_viable(rules, "S0", s, complete=True), seed)


REGEX_TOKENS = ["a", "b", "c", "0", "1", "ab", "bc", "a1", "10", "01", "abc", "cc", "-", "a-", "ö", "öa",
                "é", "aé", "x", " ", " a", "  "]


REGEX_ATOMS = ["a", "b", "c", "[ab]", "[0-9]", "[^a]", "ö", "é", "-", " ", "x", "\\d", "."]
RANDOM_REGEXES = regexes(REGEX_ATOMS, kinds=["atom", "cat", "alt", "star", "plus", "opt", "count"])


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(pattern=RANDOM_REGEXES, seed=st.integers(0, 1000))
def test_regex_masks_match_partial_match_oracle(backend, pattern, seed):
    vocab = Vocabulary.from_strings(REGEX_TOKENS)
    compiled = compile_regex(pattern, vocab, kernels=backend)
    check_walk(compiled, vocab, lambda s: regex_viable(pattern, s),
               lambda s: regex_complete(pattern, s), seed)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernels_agree_on_full_byte_vocabulary(backend):
    """The 256-byte vocabulary: the mask is exactly the byte-level viability of the regex."""
    vocab = Vocabulary.byte_level()
    pattern = r'"(?:[^"\\]|\\.)*"'
    c = compile_regex(pattern, vocab, kernels=backend)
    m = c.matcher()
    assert allowed_set(m, vocab) == {ord('"')}
    assert m.accept_token(ord('"'))
    allowed = allowed_set(m, vocab)
    # any byte that can start a UTF-8 char other than newline (Python's `.`) ... but not a bare continuation byte
    assert ord('"') in allowed and ord("\\") in allowed and 0x80 not in allowed and 0xC3 in allowed
    assert m.accept_token(0xC3) and allowed_set(m, vocab) == set(range(0x80, 0xC0))
