"""The Matcher API and bitmask helpers on toy vocabularies."""

from __future__ import annotations

import numpy as np
import pytest

import structgen
from structgen import (
    ConfigurationError,
    GrammarError,
    StructgenError,
    Vocabulary,
    allocate_token_bitmask,
    apply_token_bitmask_inplace,
    compile_grammar,
)

TOKENS = ["a", "b", "ab", "ba", "(", ")", "()", "((", "))", " ", "x"]
PARENS = """
start: item*
item: "(" start ")" | "a" | "b"
"""


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.from_strings(TOKENS)


@pytest.fixture(scope="module")
def compiled(vocab):
    return compile_grammar(PARENS, vocab)


def ids(vocab, *toks):
    return [TOKENS.index(t) for t in toks]


def allowed(m, vocab):
    bm = allocate_token_bitmask(1, vocab.size)
    m.fill_next_token_bitmask(bm)
    return {t for t in range(vocab.size) if (int(bm[0, t >> 5]) >> (t & 31)) & 1}


def test_exports_resolve():
    for name in structgen.__all__:
        assert getattr(structgen, name) is not None, name
    assert issubclass(GrammarError, StructgenError) and issubclass(GrammarError, ValueError)


def test_bitmask_layout_and_apply(vocab, compiled):
    bm = allocate_token_bitmask(2, vocab.size)
    assert bm.shape == (2, 1) and bm.dtype == np.int32 and (bm == -1).all()
    m = compiled.matcher()
    m.accept_token(TOKENS.index("("))
    m.fill_next_token_bitmask(bm, 1)
    logits = np.zeros((2, vocab.size + 3), np.float32)  # wider than the vocabulary: padding
    apply_token_bitmask_inplace(logits, bm, vocab_size=vocab.size)
    allowed_row = {t for t in range(vocab.size) if logits[1, t] == 0}
    assert allowed_row == set(ids(vocab, "a", "b", "ab", "ba", "(", ")", "()", "(("))
    assert np.isneginf(logits[:, vocab.size:]).all()
    assert (logits[0, : vocab.size] == 0).all()


def test_torch_bitmask_and_apply(vocab, compiled):
    import torch
    bm = allocate_token_bitmask(1, vocab.size, backend="torch")
    m = compiled.matcher()
    m.fill_next_token_bitmask(bm)
    logits = torch.zeros(1, vocab.size)
    apply_token_bitmask_inplace(logits, bm)
    got = {t for t in range(vocab.size) if logits[0, t] == 0}
    want = set(ids(vocab, "a", "b", "ab", "ba", "(", "()", "((")) | set(vocab.eos_ids)
    assert got == want
    # numpy kernel and torch path agree on random masks
    rng = np.random.default_rng(0)
    words = rng.integers(-2**31, 2**31 - 1, size=(3, 5), dtype=np.int64).astype(np.int32)
    a = np.zeros((3, 150), np.float32)
    apply_token_bitmask_inplace(a, words, vocab_size=140)
    b = torch.zeros(3, 150)
    apply_token_bitmask_inplace(b, torch.from_numpy(words), vocab_size=140)
    assert np.array_equal(np.isneginf(a), torch.isneginf(b).numpy())


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_apply_kernels_agree(backend):
    from structgen.mask.kernels import get_kernels

    rng = np.random.default_rng(1)
    words = rng.integers(-2**31, 2**31 - 1, size=(4, 7), dtype=np.int64).astype(np.int32)
    words[0] = -1
    logits = rng.normal(size=(4, 230)).astype(np.float32)
    ref = logits.copy()
    get_kernels(backend).apply_bitmask(logits, words, 200)
    for b in range(4):
        for t in range(230):
            ok = t < 200 and (int(words[b, t >> 5]) >> (t & 31)) & 1
            assert (logits[b, t] == ref[b, t]) if ok else np.isneginf(logits[b, t])


def test_accept_rollback_fork_validate(vocab, compiled):
    m = compiled.matcher()
    assert m.can_terminate()  # item* accepts the empty output
    seq = ids(vocab, "((", "a", ")", "b", ")")
    assert m.validate_tokens(seq) == 5 and m.num_accepted == 0
    assert m.validate_tokens(ids(vocab, "(", ")", ")")) == 2
    assert not m.accept_token(TOKENS.index(")")) and m.num_accepted == 0
    assert m.accept_tokens(seq)
    assert m.can_terminate()
    f = m.fork()
    m.rollback(2)
    assert not m.can_terminate() and f.can_terminate()
    assert allowed(m, vocab) == set(ids(vocab, "a", "b", "ab", "ba", "(", ")", "()", "(("))
    assert not m.accept_tokens(ids(vocab, "b", "x"))  # all or nothing
    assert m.num_accepted == 3
    with pytest.raises(ConfigurationError):
        m.rollback(4)
    m.reset()
    assert m.num_accepted == 0


def test_eos_termination(vocab, compiled):
    m = compiled.matcher()
    eos = next(iter(vocab.eos_ids))
    assert m.accept_token(TOKENS.index("("))
    assert not m.accept_token(eos)
    assert m.accept_token(TOKENS.index(")"))
    assert m.accept_token(eos) and m.is_terminated()
    assert allowed(m, vocab) == {eos}  # after termination only EOS
    assert not m.accept_token(TOKENS.index("a"))
    m.rollback(1)
    assert not m.is_terminated()


def test_jump_forward():
    vocab = Vocabulary.from_strings(["{", "}", '"name"', ":", "1", "x", " ", '"'])
    c = compile_grammar('start: "{" "\\"name\\"" ":" VALUE "}"\nVALUE: /[0-9]+/', vocab)
    m = c.matcher()
    assert m.find_jump_forward_string() == '{"name":'
    assert m.forced_tokens() == [0]  # then both '"name"' and '"' are allowed
    assert m.accept_token(0) and m.accept_token(7) and m.forced_tokens() == []
    m.rollback(2)
    assert m.accept_string('{"name":1')
    assert m.find_jump_forward_string() == ""  # another digit or "}"


def test_grammar_errors_have_location():
    vocab = Vocabulary.from_strings(["a"])
    with pytest.raises(GrammarError) as e:
        compile_grammar('start: "a" ]', vocab)
    assert e.value.line == 1 and e.value.column == 12 and "^" in str(e.value)
    with pytest.raises(GrammarError) as e:
        compile_grammar('start: "a" b\n', vocab)
    assert "b" in str(e.value) and e.value.line == 1
    with pytest.raises(GrammarError, match="no finite string"):
        compile_grammar('start: "a" start', vocab)


def test_vocab_padding_ids_never_allowed():
    vocab = Vocabulary([b"a", b"b", None], [2], special_ids=[2], size=40)
    c = compile_grammar('start: ("a" | "b")*', vocab)
    m = c.matcher()
    assert allowed(m, vocab) == {0, 1, 2}


def test_gbnf_grammar_compiles_to_the_same_engine():
    vocab = Vocabulary.byte_level()
    gbnf = r'''
root   ::= "[" ws ( item ( "," ws item )* )? ws "]"
item   ::= [0-9]+ | "\"" [a-z]{1,3} "\""
ws     ::= " "?
'''
    c = compile_grammar(gbnf, vocab)
    for text, ok in [('[1, "ab",22]', True), ("[]", True), ('[ "abcd"]', False), ("[1,]", False)]:
        m = c.matcher()
        assert (m.accept_string(text) and m.can_terminate()) == ok, text


def test_regex_budget_and_unsupported_errors():
    from structgen import BudgetExceeded, RegexError, Unsupported, compile_regex

    vocab = Vocabulary.byte_level()
    with pytest.raises(Unsupported, match="lookahead"):
        compile_regex(r"a(?=b)", vocab)
    with pytest.raises(Unsupported, match="backreference"):
        compile_regex(r"(a)\1", vocab)
    with pytest.raises(RegexError) as e:
        compile_regex(r"ab(c", vocab)
    assert e.value.column is not None and "^" in str(e.value)
    with pytest.raises(BudgetExceeded):
        compile_regex(r"a{1000000}", vocab)
    with pytest.raises(Unsupported):
        compile_grammar('start: A\nA: /a(?<=a)b/', vocab)
