"""The fast lexer paths against plain constructions: the array-built product
lexer against a byte-by-byte product over tuples of live components."""

from __future__ import annotations

import random

import numpy as np
import pytest

from structgen import Vocabulary, compile_grammar, compile_json_schema
from structgen.errors import BudgetExceeded
from structgen.mask.kernels import get_kernels
from structgen.mask.lexer import _PRODUCTS, LexerFactory, _canonical

BACKENDS = ["numba", "reference"]

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 5},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "tags": {"type": "array", "items": {"enum": ["a", "ab", "abc"]}},
        "flag": {"type": "boolean"},
        "nothing": {"type": "null"},
    },
}
GRAMMAR = r"""
start: (WORD | NUMBER | STRING | OP | KEYWORD)*
KEYWORD: "if" | "iff" | "while"
WORD: /[a-z]+/
NUMBER: /-?(0|[1-9][0-9]*)(\.[0-9]+)?/
STRING: /"([^"\\]|\\.)*"/
OP: "+" | "++" | "+=" | "=" | "=="
%ignore /[ \t\n]+/
"""


def _plain_lexer(terminals, mask):
    """The product over all 256 bytes, states as tuples of live (terminal, state) pairs."""
    ids = [t for t in range(len(terminals)) if mask >> t & 1]
    dfas = [terminals[j].dfa for j in ids]
    start = tuple((p, d.start) for p, d in enumerate(dfas))
    index, queue, table = {}, [start], []
    for st in queue:
        out = []
        for b in range(256):
            nk = tuple((p, int(dfas[p].trans[q, dfas[p].classes[b]])) for p, q in st)
            nk = tuple((p, q) for p, q in nk if q >= 0)
            if not nk:
                out.append(-1)
                continue
            if nk not in index:
                index[nk] = len(queue)
                queue.append(nk)
            out.append(index[nk])
        table.append(out)
    acc = [sum(1 << ids[p] for p, q in st if dfas[p].accepting[q]) for st in queue]
    return _canonical(mask, np.array(table, np.int32), np.arange(256, dtype=np.uint8), acc)


def _grammars():
    vocab = Vocabulary.from_strings(["a", "b", "{", "}", '"', "1", " "])
    return [compile_json_schema(SCHEMA, vocab).grammar, compile_grammar(GRAMMAR, vocab).grammar]


def _equivalent(a, b) -> bool:
    """Same lexer up to state numbering: a walk over pairs of states from the starts,
    every byte, the same deaths and the same accepting terminal sets."""
    seen, todo = {(0, 0)}, [(0, 0)]
    while todo:
        s, t = todo.pop()
        if a.terms_at(s) != b.terms_at(t):
            return False
        for byte in range(256):
            x, y = a.step(s, byte), b.step(t, byte)
            if (x < 0) != (y < 0):
                return False
            if x >= 0 and (x, y) not in seen:
                seen.add((x, y))
                todo.append((x, y))
    return True


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", [0, 1])
def test_product_lexer_equals_plain_product(which, backend):
    grammar = _grammars()[which]
    terms = grammar.terminals
    shared = LexerFactory(terms, kernels=get_kernels(backend))  # projects subsets of built products
    rng = random.Random(5 + which)
    masks = [(1 << len(terms)) - 1] + [rng.getrandbits(len(terms)) for _ in range(25)]
    projected = 0
    _PRODUCTS.clear()  # products of earlier tests would be found before any projection
    for mask in masks:
        lex = shared.build(mask)
        built = LexerFactory(terms, kernels=get_kernels(backend)).build(mask)  # a fresh factory: no superset
        want = _plain_lexer(terms, mask)
        # one terminal keeps its own DFA's numbering: compare canonical forms
        got = _canonical(mask, built.trans, built.classes, list(built.acc_terms))
        assert got.walk_key == want.walk_key, mask
        assert np.array_equal(got.trans, want.trans) and np.array_equal(got.classes, want.classes)
        assert got.acc_terms == want.acc_terms
        projected += lex.walk_key != built.walk_key
        assert _equivalent(lex, want), mask
    assert projected > 5  # most random subsets were read off the full set's product


def test_projected_lexers_give_the_masks_of_built_ones():
    """An object with many optional keys: each position's lexer is read off the first
    position's product; masks equal those of lexers built from scratch."""
    props = {f"key{i}": {"type": ["integer", "boolean"]} for i in range(12)}
    vocab = Vocabulary.from_strings(['{"', '"', "key", "1", "0", "2", ",", '":', "}", "true", " ", "k", "ey1"])
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    a, b = compile_json_schema(schema, vocab), compile_json_schema(schema, vocab, kernels="reference")
    text = '{"key0":1,"key2":true,"key3":0,"key7":12,"key11":false}'
    ma, mb = a.matcher(), b.matcher()
    for ch in text:
        b._lexer_factory._projectable.clear()  # b builds every lexer from scratch
        assert np.array_equal(ma.next_token_mask(), mb.next_token_mask()), ch
        assert ma.accept_string(ch) and mb.accept_string(ch)
    multi = sum(1 for m in a._lexers if bin(m).count("1") > 1)
    assert len(a._lexer_factory._projectable) < multi  # some lexers were projections


@pytest.mark.parametrize("backend", BACKENDS)
def test_product_lexer_budget_is_enforced(backend):
    grammar = _grammars()[1]
    mask = (1 << len(grammar.terminals)) - 1
    kernels = get_kernels(backend)
    full = LexerFactory(grammar.terminals, kernels=kernels).build(mask)
    n = full.trans.shape[0]
    assert LexerFactory(grammar.terminals, max_states=n, kernels=kernels).build(mask).walk_key == full.walk_key
    with pytest.raises(BudgetExceeded):
        LexerFactory(grammar.terminals, max_states=n - 1, kernels=kernels).build(mask)


def test_lexer_product_twins_agree_on_random_tables():
    """numba and pure-Python ``lexer_product`` on random stacks of component DFAs,
    including too-small outputs (-1: states, -2: pool of live components), states
    of one live component (the kernel's direct map) and returns to the start set."""
    rng = np.random.default_rng(21)
    nb, ref = get_kernels("numba"), get_kernels("reference")
    codes, singles = set(), 0
    for _ in range(80):
        k, n_cls = int(rng.integers(1, 4)), int(rng.integers(1, 5))
        sizes = rng.integers(1, 5, size=k)
        comp_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        width = int(rng.integers(1, 4))
        table = np.concatenate([rng.integers(-1, int(q), size=(int(q), width)) for q in sizes]).astype(np.int32)
        own = rng.integers(0, width, size=(k, n_cls)).astype(np.int32)
        start = (comp_off + rng.integers(0, sizes)).astype(np.int32)
        cap, pool = int(rng.integers(1, 10)), int(rng.integers(1, 40))
        outs = []
        for kern in (nb, ref):
            trans, offsets = np.full((cap, n_cls), -7, np.int32), np.full(cap + 1, -7, np.int32)
            comp, rws = np.full(pool, -7, np.int32), np.full(pool, -7, np.int32)
            n = kern.lexer_product(table, own, comp_off, start, trans, offsets, comp, rws,
                                   np.full(128, -1, np.int32), np.full(len(table), -1, np.int32))
            used = int(offsets[n]) if n > 0 else 0
            outs.append((n, trans[:max(n, 0)].copy(), offsets[:max(n + 1, 0)].copy(), comp[:used].copy(),
                         rws[:used].copy()))
        codes.add(min(outs[0][0], 0))
        assert outs[0][0] == outs[1][0]
        if outs[0][0] > 0:
            for a, b in zip(outs[0][1:], outs[1][1:]):
                assert np.array_equal(a, b)
            singles += int((np.diff(outs[0][2]) == 1).sum())
    assert codes == {-2, -1, 0} and singles > 50  # every outcome and path was exercised


@pytest.mark.hf
def test_bounded_string_states_use_a_bounded_slice_and_stay_exact():
    """Inside a string with a length budget no state loops; the bounded JSON string
    slices cover it while 16 (then 8) characters fit, and masks equal unsliced ones."""
    from tokenizers_fixture import gpt2

    from structgen.mask.engine import CompiledGrammar
    from structgen.mask.slicer import Slicer

    vocab = Vocabulary.from_tokenizer(gpt2())
    schema = {"type": "object", "properties": {"s": {"type": "string", "maxLength": 30}}, "required": ["s"]}
    grammar = compile_json_schema(schema, vocab).grammar
    sliced = CompiledGrammar(grammar, vocab, kernels="numba")
    plain = CompiledGrammar(grammar, vocab, kernels="numba")
    plain._slicer = Slicer(vocab, plain._k, patterns=())
    chosen = []
    for n in (0, 5, 13, 14, 20, 22, 23, 27, 30):
        text = '{"s": "' + "é" * (n // 2) + "x" * (n - n // 2)
        m, ref = sliced.matcher(), plain.matcher()  # each constraint reads its own rows
        assert m.accept_string(text) and ref.accept_string(text)
        row, s = m.state
        part = sliced._slicer.choose(sliced.lexer(row), s)
        chosen.append(part and part.name)
        assert np.array_equal(m.next_token_mask(), ref.next_token_mask()), n
    assert chosen == ["json_string_16"] * 4 + ["json_string_8"] * 2 + [None] * 3, chosen


def test_slice_cover_first_only_twins_agree():
    rng = np.random.default_rng(4)
    nb, ref = get_kernels("numba"), get_kernels("reference")
    pat_next = rng.integers(-1, 3, size=(4, 3, 256)).astype(np.int32)
    byte_classes = np.tile(np.arange(256, dtype=np.uint8), (4, 1))  # a class per byte
    for n in range(30):
        n_s, n_c = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        trans = rng.integers(-1, n_s, size=(n_s, n_c)).astype(np.int32)
        trans[:, 0] = rng.integers(0, n_s, size=n_s)  # some states never die on class 0
        classes = rng.integers(0, n_c, size=256).astype(np.uint8)
        # every other lexer is a projection: live components per state, a filter
        live = rng.integers(0, 4, size=n_s).astype(np.uint64)
        allowed = np.uint64(n % 2 * int(rng.integers(1, 4)))
        for s in range(n_s):
            got = [[k.slice_cover(trans, classes, live, allowed, s, pat_next, byte_classes, np.zeros(4, np.int32),
                                  64, np.zeros(n_s * 3, np.uint8), np.empty(64, np.int32), np.empty(64, np.int32),
                                  np.zeros(4, np.uint64), first) for k in (nb, ref)] for first in (False, True)]
            assert got[0][0] == got[0][1] and got[1][0] == got[1][1]
            every, first = got[0][0], got[1][0]
            assert first == (every & -every)  # the lowest covered pattern only


@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_products_map_accepting_terminals_per_grammar(backend):
    """Equal terminal DFAs at other indices in another grammar reuse the product;
    its accepting sets name that grammar's terminals."""
    vocab = Vocabulary.from_strings(["a", "b"])
    g1 = compile_grammar('start: (IF | NAME | NUM)*\nIF: "if"\nNAME: /[a-z]+/\nNUM: /[0-9]+/', vocab).grammar
    g2 = compile_grammar('start: (NUM | WORD | ALPHA | KW)*\nNUM: /[0-9]+/\nWORD: /[a-z]+/\n'
                         'ALPHA: /[a-z]/\nKW: "if"', vocab).grammar
    kernels = get_kernels(backend)
    for g in (g1, g2, g1):
        terms = g.terminals
        mask = sum(1 << j for j, t in enumerate(terms) if t.name in ("IF", "NAME", "KW", "WORD"))
        got = LexerFactory(terms, kernels=kernels).build(mask)
        want = _plain_lexer(terms, mask)
        assert _canonical(mask, got.trans, got.classes, list(got.acc_terms)).walk_key == want.walk_key
        assert got.acc_terms == want.acc_terms


@pytest.mark.parametrize("which", [0, 1])
def test_lexer_arrays_have_one_kernel_type(which):
    """Every lexer hands the kernels writeable arrays of fixed dtypes: a read-only or
    other-typed array is another numba signature, loaded (ms) in the middle of a mask."""
    grammar = _grammars()[which]
    terms = grammar.terminals
    factory = LexerFactory(terms)
    masks = [1 << j for j in range(len(terms))] + [(1 << len(terms)) - 1, 0b11, 0b101]
    for mask in masks:
        lex = factory.build(mask)
        arrays = [(lex.trans, np.int32), (lex.classes, np.uint8), (lex.accepting, np.bool_), (lex.acc_class, np.int32)]
        if lex.live is not None:  # a projection's (the kernels' other specialization: None)
            arrays.append((lex.live, np.uint64))
        for arr, dtype in arrays:
            assert arr.dtype == dtype and arr.flags.writeable and arr.flags.c_contiguous, (mask, arr.dtype)
        assert isinstance(lex.filter, np.uint64) and (lex.live is None) == (not lex.allowed)


def test_row_ids_twins_agree_on_random_matrices():
    """numba and pure-Python ``row_ids`` (first-occurrence numbering of distinct rows)."""
    rng = np.random.default_rng(8)
    nb, ref = get_kernels("numba"), get_kernels("reference")
    for _ in range(60):
        n, w = int(rng.integers(0, 40)), int(rng.integers(0, 6))
        rows = rng.integers(-2, 3, size=(n, w)).astype(np.int32)
        outs = []
        for k in (nb, ref):
            ids, first = np.full(n, -7, np.int32), np.full(n, -7, np.int64)
            m = k.row_ids(rows, ids, first, np.full(1 << (2 * max(n, 1) - 1).bit_length(), -1, np.int32))
            outs.append((m, ids.copy(), first[:m].copy()))
        assert outs[0][0] == outs[1][0]
        assert np.array_equal(outs[0][1], outs[1][1]) and np.array_equal(outs[0][2], outs[1][2])
        m, ids, first = outs[0]
        assert np.array_equal(rows[first][ids], rows) and (n == 0 or first[0] == 0)
        assert len({tuple(r) for r in rows.tolist()}) == m


def test_narrow_classes_twins_agree_on_random_patterns():
    """numba and pure-Python ``narrow_classes`` (a projection's accepting classes) on
    random superset states, patterns and allowed sets: the classes number the distinct
    narrowed patterns in ascending order, every state gets its pattern's class, and
    ``first`` names a superset pattern that narrows to each."""
    from structgen.mask.kernels import numba_cpu, reference

    rng = np.random.default_rng(11)
    for _ in range(40):
        n_states, n_pat = int(rng.integers(1, 30)), int(rng.integers(1, 6))
        which = rng.integers(0, n_pat, n_states).astype(np.int32)
        patterns = rng.integers(0, 16, n_pat).astype(np.uint64)
        allowed = np.uint64(rng.integers(1, 16))
        results = []
        for k in (numba_cpu, reference):
            acc_class, accepting, first = k.narrow_classes(which, patterns, allowed)
            narrowed = (patterns & allowed).tolist()
            values = sorted(set(narrowed))
            assert first.tolist() == [narrowed.index(v) for v in values]  # the first pattern narrowing to each
            want = [values.index(int(patterns[which[s]] & allowed)) for s in range(n_states)]
            assert acc_class.tolist() == want
            assert accepting.tolist() == [values[c] != 0 for c in want]
            results.append((acc_class.tolist(), accepting.tolist(), first.tolist()))
        assert results[0] == results[1]


def test_projections_read_the_superset_table_through_their_filter():
    """A projection shares its superset product's table; stepping it, its rows and
    ``extends`` cut exactly the transitions into states where no allowed terminal
    lives, and its materialized table is equivalent to the plain product of its set."""
    grammar = _grammars()[1]
    terms = grammar.terminals
    full = (1 << len(terms)) - 1
    _PRODUCTS.clear()
    factory = LexerFactory(terms)
    sup = factory.build(full)
    rng = random.Random(3)
    seen = 0
    for _ in range(20):
        mask = rng.getrandbits(len(terms)) & full
        if bin(mask).count("1") < 2:
            continue
        lex = factory.build(mask)
        if not lex.allowed:
            continue
        seen += 1
        assert lex.trans is sup.trans and lex.nbytes < sup.trans.nbytes
        for s in range(lex.trans.shape[0]):
            row = lex.row(s)
            for c in range(lex.trans.shape[1]):
                t = int(sup.trans[s, c])
                alive = t >= 0 and bool(int(lex.live[t]) & lex.allowed)
                assert (row[c] >= 0) == alive and (not alive or row[c] == t)
            assert lex.extends(s) == bool((row >= 0).any())
            assert all(lex.step(s, b) == int(row[lex.classes[b]]) for b in range(256))
        plain = _plain_lexer(terms, mask)
        assert _equivalent(lex, plain) and _equivalent(lex.materialized(), plain), mask
    assert seen >= 3


def test_single_lexer_twins_agree():
    """numba and pure-Python ``single_lexer``: the DFA behind a new start state 0."""
    from structgen.mask.kernels import numba_cpu, reference

    rng = np.random.default_rng(13)
    for _ in range(40):
        n_states, n_cls = int(rng.integers(1, 20)), int(rng.integers(1, 6))
        trans = rng.integers(-1, n_states, (n_states, n_cls)).astype(np.int32)
        trans.setflags(write=False)
        accepting = rng.integers(0, 2, n_states).astype(bool)
        accepting.setflags(write=False)
        start = int(rng.integers(0, n_states))
        got = [k.single_lexer(trans, start, accepting) for k in (numba_cpu, reference)]
        for a, b in zip(*got):
            assert np.array_equal(a, b)
        out, acc, has_out = got[0]
        assert np.array_equal(out[1:], np.where(trans >= 0, trans + 1, -1))
        assert np.array_equal(out[0], out[start + 1]) and not acc[0] and np.array_equal(acc[1:], accepting)
        assert np.array_equal(has_out, (out >= 0).any(axis=1))


def test_literal_tables_twins_agree_and_equal_the_literal_dfa():
    """``literal_tables`` (numba and pure Python) makes from the bytes alone the arrays
    of ``literal_dfa`` of them, writeable (one numba signature with the other tables)."""
    from structgen.automata.regex import literal_dfa
    from structgen.mask.kernels import numba_cpu, reference

    rng = random.Random(21)
    for _ in range(60):
        body = "".join(rng.choice("ab~ xyz09_.") for _ in range(rng.randint(0, 30)))
        data = b'"' + body.encode() + b'"'
        d = literal_dfa(data)
        tables = [k.literal_tables(np.frombuffer(data, np.uint8)) for k in (numba_cpu, reference)]
        for a, b, c in zip(*tables, (d.trans, d.classes, d.accepting)):
            assert np.array_equal(a, b) and a.dtype == b.dtype and np.array_equal(a, c), body
            assert a.flags.writeable and b.flags.writeable


@pytest.mark.parametrize("backend", BACKENDS)
def test_key_lexers_from_literals_equal_those_from_the_key_dfas(backend):
    """A schema's keys carry their one spelling (canonical escapes; none with every
    escape accepted); lexers of keys (alone, or in products with other terminals) are
    made from it, never building the keys' DFAs, and equal those made from the DFAs."""
    from structgen.grammar.ir import LazyTerminal, Terminal

    vocab = Vocabulary.from_strings(["a", "b", backend])  # a vocabulary per test: no compile cache hit
    kernels = get_kernels(backend)
    terms = compile_json_schema(SCHEMA, vocab).grammar.terminals
    keys = [j for j, t in enumerate(terms) if isinstance(t, LazyTerminal)]
    assert len(keys) == len(SCHEMA["properties"])
    assert all(terms[j].literal == b'"' + terms[j].source.encode() + b'"' and not terms[j].built for j in keys)
    plain = [Terminal(t.name, t._build(), t.source) if j in keys else t for j, t in enumerate(terms)]
    _PRODUCTS.clear()
    factory = LexerFactory(terms, kernels=kernels)
    for j in keys:
        got, want = factory.build(1 << j), LexerFactory(plain, kernels=kernels).build(1 << j)
        assert np.array_equal(got.trans, want.trans) and np.array_equal(got.classes, want.classes)
        assert got.acc_terms == want.acc_terms and got.walk_key != want.walk_key  # another key: no sharing
    assert not any(terms[j].built for j in keys)
    rbrace = next(j for j, t in enumerate(terms) if t.name.startswith("RBRACE"))
    for mask in ((1 << keys[0]) | (1 << keys[1]), sum(1 << j for j in keys) | 1 << rbrace):
        got, want = LexerFactory(terms, kernels=kernels).build(mask), LexerFactory(plain, kernels=kernels).build(mask)
        assert np.array_equal(got.trans, want.trans) and np.array_equal(got.classes, want.classes)
        assert got.acc_terms == want.acc_terms and _equivalent(got, _plain_lexer(plain, mask))
    assert not any(terms[j].built for j in keys)
    every = compile_json_schema(SCHEMA, vocab, escapes="all").grammar.terminals
    assert all(t.literal is None for t in every if isinstance(t, LazyTerminal))


def test_product_components_twins_agree():
    """numba and pure-Python ``product_components`` on random pools of up to 130
    components (bitmasks of one to three uint64 words)."""
    from structgen.mask.kernels import numba_cpu, reference

    rng = np.random.default_rng(12)
    for _ in range(30):
        n, k = int(rng.integers(1, 20)), int(rng.integers(1, 131))
        sizes = rng.integers(0, 4, n)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        comp = rng.integers(0, k, int(offsets[-1])).astype(np.int32)
        rows = rng.integers(0, 50, int(offsets[-1])).astype(np.int32)
        acc_all = rng.random(50) < 0.4
        out = []
        for kern in (numba_cpu, reference):
            live, acc = np.empty((n, (k + 63) // 64), np.uint64), np.empty((n, (k + 63) // 64), np.uint64)
            kern.product_components(offsets, comp, rows, acc_all, live, acc)
            out.append((live.tolist(), acc.tolist()))
        assert out[0] == out[1]
        for s in range(n):
            pairs = range(offsets[s], offsets[s + 1])
            assert sum(v << (64 * w) for w, v in enumerate(out[0][0][s])) == sum({1 << int(comp[i]) for i in pairs})


@pytest.mark.parametrize("which", [0, 1])
def test_canonical_product_twins_agree(which):
    """numba and pure-Python ``canonical_product`` give identical products (tables,
    classes, components, pattern numbering) for random terminal sets, and both
    report a budget they pass."""
    from structgen.mask.kernels import numba_cpu, reference

    terms = _grammars()[which].terminals
    rng = random.Random(17 + which)
    masks = [(1 << len(terms)) - 1] + [rng.getrandbits(len(terms)) | 3 for _ in range(15)]
    for mask in masks:
        ids = [j for j in range(len(terms)) if mask >> j & 1]
        out = []
        for kern, cap in ((numba_cpu, 2), (reference, 2), (numba_cpu, 1024)):
            components = LexerFactory(terms, kernels=kern)._components(ids)
            got = kern.canonical_product(*components, cap, 10_000)
            out.append([x.tolist() if isinstance(x, np.ndarray) else x for x in got])
            n = got[0]
            over = kern.canonical_product(*components, 1, n - 1)
            assert over[0] == -1 or n == 1
        assert out[0] == out[1] == out[2], mask


@pytest.mark.parametrize("backend", BACKENDS)
def test_products_of_more_than_64_terminals_equal_plain_products(backend):
    """Component bitmasks span several words past 64 terminals: the product of 70
    overlapping keywords (and a subset) against the plain product."""
    words = [f"k{i}" for i in range(60)] + [f"k{i}z" for i in range(10)] + ["k", "kk"]
    rules = "\n".join(f"W{i}: \"{w}\"" for i, w in enumerate(words))
    grammar = compile_grammar("start: (" + " | ".join(f"W{i}" for i in range(len(words))) + ")*\n" + rules,
                              Vocabulary.from_strings(["k", "1", "z"])).grammar
    terms = grammar.terminals
    assert len(terms) > 64
    _PRODUCTS.clear()
    for mask in ((1 << len(terms)) - 1, (1 << len(terms)) - 1 - (1 << 3) - (1 << 65)):
        built = LexerFactory(terms, kernels=get_kernels(backend)).build(mask)
        got = _canonical(mask, built.trans, built.classes, list(built.acc_terms))
        want = _plain_lexer(terms, mask)
        assert np.array_equal(got.trans, want.trans) and np.array_equal(got.classes, want.classes)
        assert got.acc_terms == want.acc_terms
