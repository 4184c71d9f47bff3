"""The automata toolkit: products in every mode, concatenation, finite
languages and the code-point range algebra, each checked against brute force
(Python ``re`` over every short string of a small alphabet)."""

from __future__ import annotations

import itertools
import random
import re

import numpy as np
import pytest

from structgen.automata import charset, finite, ops
from structgen.automata.kernels import get_kernels
from structgen.automata.regex import regex_to_dfa
from structgen.errors import BudgetExceeded

ALPHABET = "ab\u00e9"
WORDS = ["".join(w) for n in range(5) for w in itertools.product(ALPHABET, repeat=n)]
ATOMS = ["a", "b", "\u00e9", "[ab]", "[^a]", "."]


def random_regex(rng: random.Random, depth: int = 3) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(ATOMS)
    kind = rng.choice(["cat", "alt", "star", "opt", "rep"])
    a = random_regex(rng, depth - 1)
    if kind == "cat":
        return a + random_regex(rng, depth - 1)
    if kind == "alt":
        return f"(?:{a}|{random_regex(rng, depth - 1)})"
    if kind == "star":
        return f"(?:{a})*"
    if kind == "opt":
        return f"(?:{a})?"
    return f"(?:{a}){{1,2}}"


def language(pattern: str) -> set[str]:
    rx = re.compile(pattern, re.S)
    return {w for w in WORDS if rx.fullmatch(w)}


def accepted(dfa) -> set[str]:
    return {w for w in WORDS if dfa.matches(w.encode())}


PAIRS = [(random_regex(random.Random(seed)), random_regex(random.Random(1000 + seed))) for seed in range(40)]


@pytest.mark.parametrize("pa,pb", PAIRS)
def test_product_modes_match_set_operations(pa, pb):
    a, b = regex_to_dfa(pa, flags=re.S), regex_to_dfa(pb, flags=re.S)
    la, lb = language(pa), language(pb)
    expected = {"and": la & lb, "or": la | lb, "diff": la - lb, "xor": la ^ lb}
    for mode, want in expected.items():
        for minimal in (True, False):
            got = ops.product(a, b, mode, minimal=minimal)
            assert accepted(got) == want, (mode, minimal)
            if ops.is_empty(got):
                continue
            assert got.num_states == ops.trim(got).num_states  # trimmed
            if minimal:  # canonical: equal to a minimisation of itself
                assert np.array_equal(ops.minimize(got).trans, got.trans)
    assert accepted(ops.intersect(a, b)) == la & lb
    assert accepted(ops.union(a, b)) == la | lb
    assert accepted(ops.difference(a, b)) == la - lb
    assert accepted(ops.complement_within(b, a)) == la - lb


def test_product_sinks_only_removes_the_finite_set():
    universe = regex_to_dfa("(?s:.*)")
    excluded = regex_to_dfa("ab|a|\u00e9\u00e9")
    got = ops.product(universe, excluded, "diff", minimal=False, sinks_only=True)
    assert accepted(got) == set(WORDS) - {"ab", "a", "\u00e9\u00e9"}


def test_product_rejects_unknown_modes_and_enforces_budget():
    a = regex_to_dfa("[a-z]{0,40}")
    with pytest.raises(ValueError, match="mode"):
        ops.product(a, a, "minus")
    with pytest.raises(BudgetExceeded):
        ops.product(regex_to_dfa("(?:[ab]*a[ab]{12})"), regex_to_dfa("[ab]*b[ab]{12}"), "and", max_states=200)


@pytest.mark.parametrize("pa,pb", PAIRS[:20])
def test_concat_matches_brute_force(pa, pb):
    a, b = regex_to_dfa(pa, flags=re.S), regex_to_dfa(pb, flags=re.S)
    want = language(f"(?:{pa})(?:{pb})")
    assert accepted(ops.concat(a, b)) == want


def test_concat_glued_path_keeps_states():
    a, b = regex_to_dfa("ab"), regex_to_dfa("c*")
    got = ops.concat(a, b)  # no accepting state of `a` has an edge: tables are glued
    assert got.num_states == a.num_states + b.num_states
    assert got.matches(b"ab") and got.matches(b"abccc") and not got.matches(b"a")
    # accepting states with edges, none on a byte `b` starts with: still glued, still exact
    a, b = regex_to_dfa("a[0-9]*"), regex_to_dfa("x[a-z]*|")
    got = ops.concat(a, b)
    rx = re.compile("a[0-9]*(?:x[a-z]*|)")
    words = ["".join(w) for n in range(5) for w in itertools.product("a0x", repeat=n)]
    assert {w for w in words if got.matches(w.encode())} == {w for w in words if rx.fullmatch(w)}
    assert got.num_states <= a.num_states + b.num_states


def test_union_all_and_finite_languages():
    rng = random.Random(7)
    pats = [random_regex(rng, 2) for _ in range(9)]
    got = ops.union_all([regex_to_dfa(p, flags=re.S) for p in pats] + [ops.empty_dfa()])
    assert accepted(got) == set().union(*(language(p) for p in pats))
    assert ops.is_empty(ops.union_all([]))

    words = ["", "a", "ab", "\u00e9t\u00e9", "abc"]
    d = finite.strings_dfa(words)
    assert sorted(finite.enumerate_strings(d, 10)) == sorted(w.encode() for w in words)
    assert finite.enumerate_strings(d, 3) is None  # more members than the limit
    assert finite.max_length(d) == len("\u00e9t\u00e9".encode())
    assert finite.max_length(regex_to_dfa("a*")) is None
    assert finite.max_length(ops.empty_dfa()) == -1


def test_from_edges_and_trimmed_table_are_read_only():
    d = ops.from_edges([{97: 1}, {98: 2}, {}], [False, False, True])
    assert d.matches(b"ab") and not d.matches(b"a")
    t = ops.from_trimmed_table(ops.expand(d), d.accepting, d.start)
    assert np.array_equal(ops.expand(t), ops.expand(d))
    for arr in (d.trans, d.classes, d.accepting, t.trans):
        with pytest.raises(ValueError):
            arr[0] = 0
    assert ops.dfa_key(regex_to_dfa("ab")) == ops.dfa_key(ops.minimize(d))


# --------------------------------------------------------------------------- code-point ranges


def _random_ranges(rng: random.Random) -> list[tuple[int, int]]:
    out = []
    for _ in range(rng.randint(0, 5)):
        lo = rng.choice([0, 0x41, 0x7F, 0x80, 0x7FF, 0xD7FF, 0xDFFF, 0xFFFF, 0x10000, rng.randint(0, 0x10FFFF)])
        out.append((lo, min(0x10FFFF, lo + rng.choice([0, 1, 30, 5000, 0x10FFFF]))))
    return out


@pytest.mark.parametrize("seed", range(30))
def test_range_algebra_against_sets(seed):
    rng = random.Random(seed)
    ranges = _random_ranges(rng)
    norm = charset.normalize(ranges)
    assert all(a <= b for a, b in norm) and all(b + 1 < c for (_, b), (c, _) in zip(norm, norm[1:]))
    probes = {rng.randint(0, 0x10FFFF) for _ in range(300)} | {x for r in ranges for x in r} | {0, 0x10FFFF}

    def inside(rs, cp):
        return any(a <= cp <= b for a, b in rs)

    comp = charset.complement(ranges)
    for cp in probes:
        assert inside(norm, cp) == inside(ranges, cp)
        assert inside(comp, cp) != inside(ranges, cp)
    assert charset.complement(comp) == norm
    # the byte DFA of one code point of the set
    dfa = charset.ranges_dfa(norm)
    for cp in probes:
        if 0xD800 <= cp <= 0xDFFF:
            continue
        assert dfa.matches(chr(cp).encode()) == inside(norm, cp), hex(cp)
    assert not dfa.matches(b"\xed\xa0\x80")  # an encoded surrogate is never accepted


def test_ranges_dfa_equals_regex_lowering():
    for pattern, ranges in [("(?s:.)", charset.ANY), (r"\d", charset.ASCII_DIGIT), (r"\w", charset.ASCII_WORD),
                            ("[^\n]", charset.complement([(10, 10)])), ("[\u00e0-\u0800\U0001f600]",
                                                                      ((0xE0, 0x800), (0x1F600, 0x1F600)))]:
        a, b = regex_to_dfa(pattern), charset.ranges_dfa(ranges)
        assert np.array_equal(a.trans, b.trans) and np.array_equal(a.classes, b.classes), pattern


def test_case_fold_follows_python_re():
    rng = random.Random(3)
    for _ in range(40):
        lo = rng.choice([0x41, 0x61, 0xC0, 0x370, 0x400, 0x1E00, 0x2126, 0x212A, rng.randint(0, 0x2FFF)])
        hi = lo + rng.randint(0, 40)
        folded = charset.case_fold(charset.normalize([(lo, hi)]))
        rx = re.compile("[%s-%s]" % (re.escape(chr(lo)), re.escape(chr(hi))), re.I)
        for cp in range(max(0, lo - 300), hi + 300):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            assert any(a <= cp <= b for a, b in folded) == bool(rx.fullmatch(chr(cp))), (hex(lo), hex(cp))
    ascii_folded = charset.case_fold(((0x61, 0x61),), ascii_only=True)
    assert ascii_folded == ((0x41, 0x41), (0x61, 0x61))


def test_general_categories_partition_code_points():
    cats = charset.general_categories()
    two = [v for k, v in cats.items() if len(k) == 2 and k != "LC"]
    assert sum(b - a + 1 for rs in two for a, b in rs) == 0x110000
    assert any(a <= 0x30 and 0x39 <= b for a, b in cats["Nd"])
    assert cats["L"] == charset.normalize([r for k in ("Lu", "Ll", "Lt", "Lm", "Lo") for r in cats[k]])


# --------------------------------------------------------------------------- kernels: numba vs reference twins


def _random_table(rng: np.random.Generator, S: int, C: int):
    t = rng.integers(0, S, (S, C)).astype(np.int32)
    t[rng.random((S, C)) < rng.random()] = -1
    if rng.random() < 0.5:  # few distinct targets: many equivalent states to merge
        t = np.minimum(t, int(rng.integers(0, S))).astype(np.int32)
    return t, rng.random(S) < rng.random()


def _moore_classes(trans: np.ndarray, accepting: np.ndarray) -> int:
    """Number of Myhill-Nerode classes among the states of a complete table, by Moore refinement."""
    S = trans.shape[0]
    t = np.vstack([np.where(trans < 0, S, trans), np.full((1, trans.shape[1]), S)])
    block = np.append(accepting, False).astype(np.int64)
    while True:
        sig = np.column_stack([block, block[t]])
        _, new = np.unique(sig, axis=0, return_inverse=True)
        new = np.asarray(new).reshape(-1)
        if new.max() == block.max():
            return len(set(new[:S].tolist()))
        block = new


@pytest.mark.parametrize("seed", range(4))
def test_kernels_numba_matches_reference(seed):
    kn = get_kernels("numba")
    kr = get_kernels("reference")
    rng = np.random.default_rng(seed)
    for _ in range(300):
        S, C = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        t, acc = _random_table(rng, S, C)
        st = int(rng.integers(0, S))
        for name in ("trim_table", "minimize_table"):
            x, y = getattr(kn, name)(t, acc, st), getattr(kr, name)(t, acc, st)
            assert x[0].shape == y[0].shape and (x[0] == y[0]).all() and (x[1] == y[1]).all()
        assert kn.reaches_accepting(t, acc, st) == kr.reaches_accepting(t, acc, st)
        bn, br = kn.hopcroft(t, acc), kr.hopcroft(t, acc)  # same partition, maybe other block ids
        assert len({(p, q) for p, q in zip(bn.tolist(), br.tolist())}) == len(set(bn.tolist())) == len(set(br.tolist()))
        if not (t < 0).any():
            assert len(set(bn.tolist())) == _moore_classes(t, acc)
        rows = t[rng.integers(0, S, 3 * S)]  # repeated rows, some of -1 only
        rows[rng.random(3 * S) < 0.2] = -1
        first_id = int(rng.integers(0, 50))
        x, y = kn.number_live_rows(rows, first_id), kr.number_live_rows(rows, first_id)
        assert x[0].dtype == y[0].dtype == np.int64 and (x[0] == y[0]).all()
        assert x[1].dtype == y[1].dtype == np.int32 and x[1].shape == y[1].shape and (x[1] == y[1]).all()
        t256 = t[:, rng.integers(0, C, 256)]
        x, y = kn.compact_classes(t256), kr.compact_classes(t256)
        assert x[0].shape == y[0].shape and (x[0] == y[0]).all() and (x[1] == y[1]).all()
        S2 = int(rng.integers(1, 20))
        t2, _ = _random_table(rng, S2, C)
        ta = np.vstack([np.where(t < 0, S, t), np.full((1, C), S)]).astype(np.int32)
        tb = np.vstack([np.where(t2 < 0, S2, t2), np.full((1, C), S2)]).astype(np.int32)
        for mode in range(4):
            cap = int(rng.integers(1, 100))
            y = kr.product_bfs(ta, tb, st, 0, mode, cap)
            for bfs in (kn.product_bfs, kn._product_bfs_direct, kn._product_bfs_hashed):  # both pair indexes
                x = bfs(ta, tb, st, 0, mode, cap)
                assert all(u.shape == v.shape and (u == v).all() for u, v in zip(x, y))
        for minimal in (False, True):
            bc = rng.integers(0, C, 256).astype(np.uint8)
            bc[:C] = np.arange(C)  # every column used
            x, y = kn.finish(t, bc, acc, st, minimal), kr.finish(t, bc, acc, st, minimal)
            assert all(u.shape == v.shape and (u == v).all() for u, v in zip(x, y))
        ca, cb = rng.integers(0, C, 256).astype(np.uint8), rng.integers(0, C, 256).astype(np.uint8)
        ca[rng.integers(0, 256)] = C - 1  # every class of a used
        cb[:C] = np.arange(C)
        for mode in range(4):
            cap = int(rng.integers(1, 100))
            x = kn.product_table(t, ca, acc, st, t2[:, :C], cb, acc[:S2] if S2 <= S else np.ones(S2, bool), 0, mode, cap)
            y = kr.product_table(t, ca, acc, st, t2[:, :C], cb, acc[:S2] if S2 <= S else np.ones(S2, bool), 0, mode, cap)
            assert all(u.shape == v.shape and (u == v).all() for u, v in zip(x, y))


def test_ops_agree_under_both_kernel_backends(monkeypatch):
    rng = random.Random(7)
    pats = [random_regex(rng) for _ in range(12)]
    results = {}
    for backend in ("numba", "reference"):
        monkeypatch.setattr(ops, "_KERNELS", get_kernels(backend))
        dfas = [regex_to_dfa(p) for p in pats]
        out = []
        for a, b in zip(dfas, dfas[1:]):
            for mode in ops.PRODUCT_MODES:
                out.append(ops.dfa_key(ops.product(a, b, mode)))
                out.append(ops.dfa_key(ops.product(a, b, mode, minimal=False)))
            out.append(ops.dfa_key(ops.concat(a, b)))
            out.append(ops.is_empty(ops.intersect(a, b)))
        results[backend] = out
    assert results["numba"] == results["reference"]


def test_narrow_tables_through_byte_class_equal_wide_ones():
    rng = np.random.default_rng(3)
    for _ in range(50):
        S, K = int(rng.integers(1, 30)), int(rng.integers(1, 8))
        t, acc = _random_table(rng, S, K)
        bc = rng.integers(0, K, 256).astype(np.uint8)
        bc[:K] = np.arange(K)
        for minimal in (False, True):
            x = ops.from_table(t, acc, 0, minimal=minimal, byte_class=bc)
            assert ops.dfa_key(x) == ops.dfa_key(ops.from_table(t[:, bc], acc, 0, minimal=minimal))
        x = ops.from_trimmed_table(t, acc, 0, byte_class=bc)
        assert ops.dfa_key(x) == ops.dfa_key(ops.from_trimmed_table(t[:, bc], acc, 0))
