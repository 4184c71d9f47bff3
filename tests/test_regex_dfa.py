"""Regex -> byte DFA lowering (structgen.automata.regex) and DFA operations (ops).

Semantics under test (see structgen/automata/regex.py): fullmatch, Python ``re``
syntax, ``\\d \\w \\s`` as with ``re.ASCII`` (so those patterns are checked
against ``re`` with ``re.ASCII``), exact UTF-8 (no surrogates, no overlongs).
"""

from __future__ import annotations

import re
import time
from collections import deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from regex_strategies import regexes

from structgen.automata import ops
from structgen.automata.fsm import ByteDFA
from structgen.automata.kernels import get_kernels
from structgen.automata.charset import utf8_sequences
from structgen.automata.regex import literal_dfa, regex_to_dfa
from structgen.errors import BudgetExceeded, ConfigurationError, RegexError, Unsupported

SETTINGS = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

# (pattern, flags for the reference `re` call).  re.A marks patterns using \d \w \s.
PATTERNS: list[tuple[str, int]] = [
    ("abc", 0),
    ("", 0),
    ("a|b|cd", 0),
    ("[a-z]+", 0),
    ("[^a]", 0),
    ("[^a]*", 0),
    (r'[^"\\]*', 0),
    (r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"', 0),
    (r"\d+", re.A),
    (r"\w+\s\w*", re.A),
    (r"\D\W\S", re.A),
    (r"[^\W\d]+", re.A),
    (r"\d{1,3}(\.\d{1,3}){3}", re.A),
    (r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}", 0),
    (".", 0),
    (".*x", 0),
    ("(?s).", 0),
    ("(?s:.)a", 0),
    ("(ab|a)*b?", 0),
    ("a{2,4}", 0),
    ("x{,3}y{2}", 0),
    ("(a*)*b", 0),
    ("(?:a|)+c", 0),
    ("ö+", 0),
    ("[α-ω]+", 0),
    ("😀+|🎉", 0),
    ("[😀-🙏]{2}", 0),
    ("[\u0100-\U0010ffff]", 0),
    ("[\x00-\x7f]*[\u0800-\uffff]", 0),
    (r"\u00e9\N{EM DASH}\x41\0\101", 0),
    ("(?i)abc", 0),
    ("(?i)[a-z]+", 0),
    ("(?i)[^k]s", 0),
    ("(?i)ß|straße", 0),
    ("(?i:ö)x", 0),
    ("(?i)[ä-ö]i", 0),
    ("^ab$", 0),
    (r"(^a|^b)c$", 0),
    (r"\Aab\Z", 0),
    ("(?x) a b  # comment\n [ ]c", 0),
    ("[]a-]+", 0),
    ("a{}", 0),
    ("a(?#comment)*", 0),
    (r"[\b]", 0),
    (r"(?P<name>ab)+?c*?", 0),
    (r"[\s\S]", re.A),
]

PATTERN_IDS = [repr(p) for p, _ in PATTERNS]

# characters that exercise the patterns above: case variants with odd folds, multi-byte chars
INTERESTING = list("abcdkKsSxyzABC019 _-.@\"\\/\n\t\x00\x1féöÖßẞıİiIαβωΩ") + [
    "\u212a", "\u017f", "\u2014", "\u0800", "\uffff", "\U0001f600", "\U0001f64f", "\U0001f389",
    "\U0010ffff", "\u0100", "\x7f", "\x80",
]
TEXT = st.text(st.sampled_from(INTERESTING) | st.characters(codec="utf-8"), max_size=10)


def _dfa(pattern: str) -> ByteDFA:
    dfa = regex_to_dfa(pattern)
    assert_normalized(dfa)
    return dfa


# ------------------------------------------------------------------ structural helpers


def assert_normalized(dfa: ByteDFA) -> None:
    """start 0, trimmed, coarsest classes, BFS numbering, sane dtypes."""
    trans, classes, acc = dfa.trans, dfa.classes, dfa.accepting
    S, C = trans.shape
    assert dfa.start == 0
    assert trans.dtype == np.int32 and classes.dtype == np.uint8 and acc.dtype == bool
    assert classes.shape == (256,) and acc.shape == (S,)
    assert set(np.unique(classes).tolist()) == set(range(C))
    assert trans.min() >= -1 and trans.max() < S
    if ops.is_empty(dfa):
        assert S == 1 and not acc.any() and (trans == -1).all()
        return
    # coarsest: no two classes have identical columns
    assert len({trans[:, c].tobytes() for c in range(C)}) == C
    # BFS numbering from 0 implies reachability
    order = [0]
    seen = {0}
    for s in order:
        for t in trans[s].tolist():
            if t >= 0 and t not in seen:
                seen.add(t)
                order.append(t)
    assert order == list(range(S))
    # co-reachability
    live = set(np.flatnonzero(acc).tolist())
    changed = True
    while changed:
        changed = False
        for s in range(S):
            if s not in live and any(t in live for t in trans[s].tolist() if t >= 0):
                live.add(s)
                changed = True
    assert len(live) == S


def assert_minimal(dfa: ByteDFA) -> None:
    """Naive Moore refinement (independent of ops' Hopcroft): no two states equivalent."""
    trans, acc = dfa.trans, dfa.accepting
    S = trans.shape[0]
    block = [int(a) for a in acc]
    while True:
        sig = {}
        new = []
        for s in range(S):
            key = (block[s], tuple(block[t] if t >= 0 else -1 for t in trans[s].tolist()))
            new.append(sig.setdefault(key, len(sig)))
        if len(sig) == len(set(block)):
            break
        block = new
    assert len(set(block)) == S


def shortest_completion(dfa: ByteDFA, state: int) -> bytes | None:
    """Shortest byte string leading from ``state`` to acceptance (BFS over class representatives)."""
    rep = {}
    for b in range(256):
        rep.setdefault(int(dfa.classes[b]), b)
    prev = {state: None}
    q = deque([state])
    while q:
        s = q.popleft()
        if dfa.accepting[s]:
            out = []
            while prev[s] is not None:
                s, b = prev[s]
                out.append(b)
            return bytes(reversed(out))
        for c, t in enumerate(dfa.trans[s].tolist()):
            if t >= 0 and t not in prev:
                prev[t] = (s, rep[c])
                q.append(t)
    return None


def count_by_length(dfa: ByteDFA, max_len: int) -> list[int]:
    """Exact number of accepted byte strings of each length 0..max_len (Python ints)."""
    sizes = np.bincount(dfa.classes, minlength=dfa.trans.shape[1]).tolist()
    rows = dfa.trans.tolist()
    vec = {dfa.start: 1}
    out = []
    for _ in range(max_len + 1):
        out.append(sum(n for s, n in vec.items() if dfa.accepting[s]))
        nxt: dict[int, int] = {}
        for s, n in vec.items():
            for c, t in enumerate(rows[s]):
                if t >= 0:
                    nxt[t] = nxt.get(t, 0) + n * sizes[c]
        vec = nxt
    return out


# ------------------------------------------------------------------ differential tests vs re


@pytest.mark.parametrize("pattern,flags", PATTERNS, ids=PATTERN_IDS)
def test_random_text_agrees_with_re(pattern, flags):
    dfa = _dfa(pattern)
    rx = re.compile(pattern, flags)

    @SETTINGS
    @given(TEXT)
    def check(s):
        data = s.encode("utf-8")
        assert dfa.matches(data) == (rx.fullmatch(s) is not None), s
        # every viable byte prefix has a completion that re accepts
        for k in range(len(data) + 1):
            state = dfa.walk(data[:k])
            if state < 0:
                break
            tail = shortest_completion(dfa, state)
            assert tail is not None
            word = (data[:k] + tail).decode("utf-8")  # raises on malformed UTF-8
            assert rx.fullmatch(word), (s, k, word)

    check()


# hypothesis' from_regex is very slow on classes spanning most of Unicode
SAMPLED = [(p, f) for p, f in PATTERNS if p != "[\u0100-\U0010ffff]"]


@pytest.mark.parametrize("pattern,flags", SAMPLED, ids=[repr(p) for p, _ in SAMPLED])
def test_sampled_matches_are_accepted(pattern, flags):
    dfa = _dfa(pattern)
    rx = re.compile(pattern, flags)

    @SETTINGS
    @given(st.from_regex(rx, fullmatch=True))
    def check(s):
        assert rx.fullmatch(s)
        data = s.encode("utf-8")
        assert dfa.matches(data), s
        for k in range(len(data) + 1):  # every prefix of a match is viable
            assert dfa.is_prefix(data[:k]), (s, k)

    check()


def test_ascii_classes_are_documented_ascii():
    # interegular's (and our) \d \w \s are ASCII, unlike Python's default Unicode classes
    assert not regex_to_dfa(r"\d").matches("٣".encode())
    assert not regex_to_dfa(r"\w").matches("é".encode())
    assert not regex_to_dfa(r"\s").matches("\u00a0".encode())
    assert regex_to_dfa(r"\D").matches("٣".encode())
    assert regex_to_dfa(r"[^\d]").matches("٣".encode())


def test_case_insensitive_follows_python():
    dfa = regex_to_dfa("(?i)[a-z]+")
    for s in ["abc", "ABC", "\u212a", "\u017f", "ſK"]:  # Kelvin sign, long s fold like re
        assert dfa.matches(s.encode()) == bool(re.fullmatch("(?i)[a-z]+", s))
    assert regex_to_dfa("(?i)[a-z]+", flags=re.A).matches(b"aB")
    assert not regex_to_dfa("(?i)[a-z]+", flags=re.A).matches("\u212a".encode())
    assert regex_to_dfa("x(?i:y)z").matches(b"xYz") and not regex_to_dfa("x(?i:y)z").matches(b"xYZ")
    assert regex_to_dfa("(?i)a(?-i:b)").matches(b"Ab") and not regex_to_dfa("(?i)a(?-i:b)").matches(b"AB")
    assert regex_to_dfa("abc", flags=re.I).matches(b"aBc")


def test_flags_argument():
    assert regex_to_dfa(".", flags=re.S).matches(b"\n")
    assert not regex_to_dfa(".").matches(b"\n")
    assert regex_to_dfa("a b # c", flags=re.X).matches(b"ab")
    assert regex_to_dfa("(?x: a b )c d").matches(b"abc d")
    with pytest.raises(ConfigurationError):
        regex_to_dfa("a", flags=re.DEBUG)


# ------------------------------------------------------------------ UTF-8 safety


def utf8_reference(*, star: bool, exclude: bytes = b"") -> ByteDFA:
    """Well-formed UTF-8 (Unicode Table 3-7), one code point (or any number with ``star``)."""
    S, A, T1, T2, T3, E0, ED, F0, F4 = range(9)
    t = np.full((9, 256), -1, np.int64)
    end = S if star else A
    t[S, 0x00:0x80] = end
    t[S, 0xC2:0xE0] = T1
    t[S, 0xE0] = E0
    t[S, 0xE1:0xED] = T2
    t[S, 0xED] = ED
    t[S, 0xEE:0xF0] = T2
    t[S, 0xF0] = F0
    t[S, 0xF1:0xF4] = T3
    t[S, 0xF4] = F4
    t[T1, 0x80:0xC0] = end
    t[T2, 0x80:0xC0] = T1
    t[T3, 0x80:0xC0] = T2
    t[E0, 0xA0:0xC0] = T1
    t[ED, 0x80:0xA0] = T1
    t[F0, 0x90:0xC0] = T2
    t[F4, 0x80:0x90] = T2
    for b in exclude:
        t[S, b] = -1
    acc = np.zeros(9, bool)
    acc[S if star else A] = True
    return ops.from_table(t, acc, 0)


@pytest.mark.parametrize("pattern,star,exclude", [
    (".", False, b"\n"), ("(?s).", False, b""), ("[^a]", False, b"a"), (r"[\s\S]", False, b""),
    (".*", True, b"\n"), ("(?s).*", True, b""), ("[^a]*", True, b"a"), ("[^\"\\\\]*", True, b"\"\\"),
])
def test_utf8_language_is_exact(pattern, star, exclude):
    dfa = _dfa(pattern)
    ref = utf8_reference(star=star, exclude=exclude)
    assert ops.is_empty(ops.difference(dfa, ref))
    assert ops.is_empty(ops.difference(ref, dfa))
    # both are canonical minimal DFAs, so the tables are identical
    assert np.array_equal(dfa.trans, ref.trans) and np.array_equal(dfa.classes, ref.classes)


def test_dot_counts_exact():
    # accepted strings per byte length: 1-byte, 2-byte, 3-byte (no surrogates), 4-byte (<= U+10FFFF)
    cases = [
        (".", [127, 1920, 61440, 1048576]),  # Python's '.' excludes only '\n'
        ("(?s).", [128, 1920, 61440, 1048576]),
        ("[^a]", [127, 1920, 61440, 1048576]),
        ("[^\u00e9\U0001f600]", [128, 1919, 61440, 1048575]),
    ]
    for pattern, per_len in cases:
        counts = count_by_length(regex_to_dfa(pattern), 7)
        assert counts == [0, *per_len, 0, 0, 0], pattern
    assert sum([128, 1920, 61440, 1048576]) == 0x110000 - 0x800 == 1_112_064


def test_dot_star_counts_match_utf8_recurrence():
    def reference(max_len, per_len):
        f = [1]
        for n in range(1, max_len + 1):
            f.append(sum(per_len[k] * f[n - k] for k in per_len if k <= n))
        return f

    per = {1: 128, 2: 1920, 3: 61440, 4: 1048576}
    assert count_by_length(regex_to_dfa("(?s).*"), 10) == reference(10, per)
    assert count_by_length(regex_to_dfa(".*"), 10) == reference(10, {**per, 1: 127})
    assert count_by_length(regex_to_dfa("[^a]*"), 10) == reference(10, {**per, 1: 127})


def test_every_code_point_accepted_by_dot():
    cps = np.concatenate([np.arange(0, 0xD800), np.arange(0xE000, 0x110000)])
    data = np.frombuffer("".join(map(chr, cps.tolist())).encode("utf-8"), np.uint8)
    lens = np.select([cps < 0x80, cps < 0x800, cps < 0x10000], [1, 2, 3], 4)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
    for pattern in ["(?s).", "[^a]", "."]:
        dfa = regex_to_dfa(pattern)
        state = np.zeros(cps.size, np.int64)
        for k in range(4):
            active = (k < lens) & (state >= 0)
            byte = data[np.minimum(offs + k, data.size - 1)]
            nxt = dfa.trans[np.maximum(state, 0), dfa.classes[byte]]
            state = np.where(active, nxt, state)
        ok = (state >= 0) & dfa.accepting[np.maximum(state, 0)]
        expected = np.ones(cps.size, bool)
        if pattern == "[^a]":
            expected[cps == ord("a")] = False
        if pattern == ".":
            expected[cps == 10] = False
        assert np.array_equal(ok, expected), pattern


@pytest.mark.parametrize("bad", [
    b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\x80",
])
def test_malformed_utf8_rejected(bad):
    for pattern in ["(?s).", "(?s).*", "[^a]*", "[\u0080-\U0010ffff]+"]:
        dfa = regex_to_dfa(pattern)
        assert not dfa.matches(bad)
        assert not dfa.is_prefix(bad)


def test_two_byte_strings_exhaustive():
    dfa = regex_to_dfa("(?s).")
    for b1 in range(256):
        for b2 in range(256):
            data = bytes((b1, b2))
            try:
                ok = len(data.decode("utf-8")) == 1
            except UnicodeDecodeError:
                ok = False
            assert dfa.matches(data) == ok


def test_utf8_sequences_cover_exactly():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lo = int(rng.integers(0, 0x110000))
        hi = min(0x10FFFF, lo + int(rng.choice([0, 5, 100, 3000, 70000, 0x10FFFF])))
        seqs = utf8_sequences([(lo, hi)])
        for cp in {lo, hi, (lo + hi) // 2, max(lo, 0xD7FF), min(hi, 0xE000)}:
            if not lo <= cp <= hi or 0xD800 <= cp <= 0xDFFF:
                continue
            enc = chr(cp).encode()
            assert sum(len(s) == len(enc) and all(a <= b <= c for b, (a, c) in zip(enc, s)) for s in seqs) == 1
        for s in seqs:  # corners of every piece decode to code points inside the range
            for pick in (0, 1):
                data = bytes(r[pick] for r in s)
                cp = ord(data.decode("utf-8"))
                assert lo <= cp <= hi and not 0xD800 <= cp <= 0xDFFF


# ------------------------------------------------------------------ minimality / canonical form


@pytest.mark.parametrize("a,b", [
    ("a|a", "a"), ("(a*)*", "a*"), ("(a|b)*", "[ab]*"), ("a+a*", "a+"), ("(ab)*a", "a(ba)*"),
    (r"[0-9]", r"\d"), ("x{2,3}", "xxx?"), ("(?i)a", "[aA]"), ("[^\\x00-\\x7f]", "[\\x80-\\U0010ffff]"),
    ("(?s).", "[\\s\\S]"), ("^abc$", "abc"), ("(a|b|c)+", "[a-c][a-c]*"), ("é|e\u0301", "e\u0301|é"),
])
def test_equivalent_patterns_have_identical_minimal_dfas(a, b):
    da, db = _dfa(a), _dfa(b)
    assert da.num_states == db.num_states
    assert np.array_equal(da.trans, db.trans)
    assert np.array_equal(da.classes, db.classes)
    assert np.array_equal(da.accepting, db.accepting)


@pytest.mark.parametrize("pattern,flags", PATTERNS, ids=PATTERN_IDS)
def test_pattern_dfas_are_minimal(pattern, flags):
    dfa = _dfa(pattern)
    if dfa.num_states <= 400:
        assert_minimal(dfa)


def test_known_state_counts():
    assert regex_to_dfa("abc").num_states == 4
    assert regex_to_dfa("[a-z]{0,200}").num_states == 201
    assert regex_to_dfa("(a|b)*a(a|b){3}").num_states == 16  # classic 2^(n+1) blow-up, minimal
    assert regex_to_dfa("").num_states == 1 and regex_to_dfa("").matches(b"")


def test_cache_returns_same_object_and_readonly():
    a = regex_to_dfa("[a-z]+x")
    assert regex_to_dfa("[a-z]+x") is a
    assert regex_to_dfa("[a-z]+x", max_states=500) is not a
    with pytest.raises(ValueError):
        a.trans[0, 0] = 5


# ------------------------------------------------------------------ errors and budgets


@pytest.mark.parametrize("pattern,construct", [
    (r"(?=a)", "lookahead"), (r"a(?!b)", "lookahead"), (r"(?<=a)b", "lookbehind"), (r"(?<!a)b", "lookbehind"),
    (r"(a)\1", "backreference"), (r"(?P<n>a)(?P=n)", "backreference"), (r"(a)?(?(1)b|c)", "conditional"),
    (r"\bfoo", "word boundary"), (r"a\B", "word boundary"), ("a^b", "anchor"), ("a$b", "anchor"),
    ("(a$)*", "anchor"), ("(^a)+", "anchor"), ("a$\n", "anchor"), ("(?>a)", "atomic group"),
    ("a*+", "possessive quantifier"), ("a{2}+", "possessive quantifier"),
])
def test_unsupported_constructs(pattern, construct):
    with pytest.raises(Unsupported) as info:
        regex_to_dfa(pattern)
    assert info.value.construct == construct
    assert "column" in str(info.value)


@pytest.mark.parametrize("pattern,column,fragment", [
    ("a{2,1}", 3, "min repeat greater than max repeat"), ("[z-a]", 2, "bad character range"),
    ("(", 1, "missing )"), ("a)", 2, "unbalanced parenthesis"), ("*a", 1, "nothing to repeat"),
    (r"\p{L}", 1, "bad escape"), ("x(?i)y", 2, "global flags"), ("ab[c", 3, "unterminated character set"),
])
def test_syntax_errors(pattern, column, fragment):
    with pytest.raises(RegexError) as info:
        regex_to_dfa(pattern)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.line == 1 and err.column == column
    assert fragment in str(err) and "^" in err.context


@pytest.mark.parametrize("pattern,kwargs", [
    ("a{1000000}", {}), ("(a|b){50000}", {}), ("x{10001}", {}), ("((a{10}){10}){10000}", {}),
    ("(a{100}){1000}", {"max_states": 20_000}), ("(a|b)*a(a|b){20}", {"max_states": 20_000}),
    ("[ab]{0,50}c{20}", {"max_states": 30}), ("a{5}", {"max_repeat": 4}),
])
def test_budget_exceeded_is_fast(pattern, kwargs):
    t0 = time.perf_counter()
    with pytest.raises(BudgetExceeded) as info:
        regex_to_dfa(pattern, **kwargs)
    assert time.perf_counter() - t0 < 2.0
    assert "max_" in str(info.value)


def test_compile_times_are_reasonable():
    t0 = time.perf_counter()
    for p in [r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"', r"\d{1,3}(\.\d{1,3}){3}",
              "[a-z]{0,200}", r"[\x00-\U0010ffff]*", "a{3000}"]:
        regex_to_dfa(p, max_states=99_999)  # bypass the cache entry of other tests
    assert time.perf_counter() - t0 < 5.0


# ------------------------------------------------------------------ ops


WORDS = [bytes(b"abc"[i] for i in w) for n in range(6) for w in np.ndindex(*([3] * n))]


def _lang(dfa: ByteDFA, extra=()):
    return {w for w in [*WORDS, *extra] if dfa.matches(w)}


@pytest.mark.parametrize("a,b", [
    ("[ab]*", "[bc]*"), ("(ab)*", "a*b*"), ("a.*", ".*c"), ("(abc)+", "a[bc]*"), ("", "a*"), ("a", "b"),
])
def test_products_agree_with_sets(a, b):
    da, db = regex_to_dfa(a), regex_to_dfa(b)
    la, lb = _lang(da), _lang(db)
    for op, expect in [(ops.intersect, la & lb), (ops.union, la | lb), (ops.difference, la - lb)]:
        res = op(da, db)
        assert_normalized(res)
        if not ops.is_empty(res):
            assert_minimal(res)
        assert _lang(res) == expect
    comp = ops.complement_within(db, da)
    assert _lang(comp) == la - lb


def test_products_canonical():
    res = ops.intersect(regex_to_dfa("[ab]*"), regex_to_dfa("[bc]*"))
    ref = regex_to_dfa("b*")
    assert np.array_equal(res.trans, ref.trans) and np.array_equal(res.classes, ref.classes)
    u = ops.union(regex_to_dfa("ab"), regex_to_dfa("ac"))
    assert np.array_equal(u.trans, regex_to_dfa("a[bc]").trans)
    empty = ops.intersect(regex_to_dfa("a+"), regex_to_dfa("b+"))
    assert ops.is_empty(empty) and not empty.matches(b"") and empty.num_states == 1
    assert not ops.is_empty(regex_to_dfa(""))


def test_products_multibyte():
    a, b = regex_to_dfa("[α-ω]+"), regex_to_dfa("[β-ψ😀]*")
    i = ops.intersect(a, b)
    assert i.matches("βψ".encode()) and not i.matches("α".encode()) and not i.matches("😀".encode())
    d = ops.difference(regex_to_dfa("(?s).*"), regex_to_dfa(".*"))
    assert d.matches(b"\n") and d.matches("é\né".encode()) and not d.matches("é".encode())


def test_literal_dfa():
    for data in [b"", b"abc", b"aaa", "é😀".encode(), bytes(range(256))]:
        d = literal_dfa(data)
        assert_normalized(d)
        assert d.num_states == len(data) + 1
        assert d.matches(data)
        assert all(d.is_prefix(data[:k]) for k in range(len(data) + 1))
        assert not d.matches(data + b"a") and (not data or not d.matches(data[:-1]))
    assert np.array_equal(literal_dfa("é".encode()).trans, regex_to_dfa("é").trans)
    rng = np.random.default_rng(5)  # the direct chain is the normal form the general construction gives
    for n in [0, 1, 2, 5, 12, 40] * 8:
        data = bytes(rng.integers(0 if n % 3 == 0 else 1, 256, n).tolist())
        d = literal_dfa(data)
        assert not any(a.flags.writeable for a in (d.trans, d.classes, d.accepting))
        assert ops.dfa_key(d) == ops.dfa_key(ops.normalize(d)), data


def test_minimize_and_trim_handbuilt():
    # two copies of an "a then b" branch, an unreachable state and a dead end
    t = np.full((7, 256), -1, np.int64)
    t[0, ord("x")] = 1
    t[0, ord("y")] = 2
    t[1, ord("a")] = 3
    t[2, ord("a")] = 4
    t[3, ord("b")] = 5
    t[4, ord("b")] = 5
    t[0, ord("z")] = 6  # 6 is a dead end (non-accepting, no edges)
    t[6, ord("q")] = 6
    acc = np.zeros(7, bool)
    acc[5] = True
    # a raw ByteDFA with one class per byte (class index == byte)
    raw = ByteDFA(trans=t.astype(np.int32), classes=np.arange(256, dtype=np.uint8), accepting=acc)
    trimmed = ops.trim(raw)
    assert_normalized(trimmed)
    assert trimmed.num_states == 6
    m = ops.minimize(raw)
    assert_normalized(m)
    assert_minimal(m)
    assert m.num_states == 4
    ref = regex_to_dfa("[xy]ab")
    assert np.array_equal(m.trans, ref.trans) and np.array_equal(m.classes, ref.classes)
    assert not ops.is_empty(raw)


def test_compact_classes_roundtrip():
    rng = np.random.default_rng(1)
    base = rng.integers(-1, 5, size=(5, 7))
    byte_map = rng.integers(0, 7, size=256)
    t256 = base[:, byte_map]
    trans, classes = ops.compact_classes(t256)
    assert np.array_equal(trans[:, classes], t256)
    assert classes[0] == 0 and trans.shape[1] == len({t256[:, b].tobytes() for b in range(256)})
    first = [int(np.flatnonzero(classes == c)[0]) for c in range(trans.shape[1])]
    assert first == sorted(first)


def test_minimize_random_dfas_canonical():
    rng = np.random.default_rng(3)
    for _ in range(150):
        S, C = int(rng.integers(1, 25)), int(rng.integers(1, 5))
        trans = rng.integers(-1, S, size=(S, C)).astype(np.int32)
        trans[rng.random((S, C)) < 0.3] = -1
        acc = rng.random(S) < 0.3
        classes = rng.integers(0, C, size=256).astype(np.uint8)
        classes[:C] = np.arange(C)  # every class used
        raw = ByteDFA(trans=trans, classes=classes, accepting=acc, start=int(rng.integers(0, S)))
        m = ops.minimize(raw)
        assert_normalized(m)
        if ops.is_empty(raw):
            assert ops.is_empty(m)
            continue
        assert_minimal(m)
        # same language as the raw DFA (products accept untrimmed operands)
        assert ops.is_empty(ops.difference(raw, m)) and ops.is_empty(ops.difference(m, raw))
        # canonical: a renumbered copy minimises to the identical table
        perm = rng.permutation(S)
        inv = np.argsort(perm)
        t2 = np.where(trans[inv] >= 0, perm[np.maximum(trans[inv], 0)], -1).astype(np.int32)
        m2 = ops.minimize(ByteDFA(trans=t2, classes=classes, accepting=acc[inv], start=int(perm[raw.start])))
        assert np.array_equal(m.trans, m2.trans) and np.array_equal(m.classes, m2.classes)
        assert np.array_equal(m.accepting, m2.accepting)


# ------------------------------------------------------------------ subset construction twins


def _subset_inputs(pattern: str, flags: int = 0):
    """The arrays regex._determinize hands to the subset_table kernel for ``pattern``."""
    from structgen.automata import regex as rx

    captured = {}

    class Capture:
        def subset_table(self, *args):
            captured["args"] = args
            return get_kernels("reference").subset_table(*args)

    real = rx.get_kernels
    rx.get_kernels = Capture
    try:
        rx._build(pattern, 100_000, flags, rx.MAX_REPEAT)
    finally:
        rx.get_kernels = real
    return captured["args"]


@pytest.mark.parametrize("pattern,flags", PATTERNS + [
    (r"(?:[0-9A-Fa-f]{1,4}:){6}(?:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]"
     r"|2[0-4]\d|1?\d?\d)){3})", 0),
    (r"(?s:.*)(?:abc|a.{3}d)(?s:.*)", 0), (r"[^\x00-\x7f]{2,5}|é+ß", 0), ("(a|ab)(c|bcd)(d*)", 0),
], ids=lambda v: repr(v)[:40] if isinstance(v, str) else None)
def test_subset_construction_numba_equals_reference(pattern, flags):
    kn, kr = get_kernels("numba"), get_kernels("reference")
    args = _subset_inputs(pattern, flags)
    t_n, a_n, over_n = kn.subset_table(*args)
    t_r, a_r, over_r = kr.subset_table(*args)
    assert not over_n and not over_r
    assert t_n.dtype == t_r.dtype == np.int32 and t_n.shape == t_r.shape  # same states in the same order
    assert np.array_equal(t_n, t_r) and np.array_equal(a_n, a_r)
    *rest, max_states = args
    if t_r.shape[0] > 1:  # one state short of the table: both report the overflow
        assert kn.subset_table(*rest, t_r.shape[0] - 1)[2] and kr.subset_table(*rest, t_r.shape[0] - 1)[2]


# ------------------------------------------------------------------ the scanned-text parser


_PARSER_EXTRA = [  # scoped flags, lazy and counted repeats, escapes, classes, nesting, empty branches
    ("(?i:ab)c*?|x{2,}", 0), ("(?s:.)+(?-i:q)", re.I), ("(?:a|)(b|c){0,3}?d{4}e{1,}", 0), ("[^a-c]é\\.\\{x\\}", 0),
    ("((a)|b)?", 0), ("\\d\\s[\\w-]", re.A), ("a|(?:)|", 0), ("😀{2}[😀-😃]", 0),
]


@pytest.mark.parametrize("pattern,flags", PATTERNS + _PARSER_EXTRA, ids=lambda v: repr(v)[:40] if isinstance(v, str) else None)
def test_scanned_text_parses_as_interegular_parses_it(pattern, flags):
    """The direct parser of the scanner's output gives interegular's very AST."""
    _assert_scanned_text_parses_as_interegular(pattern, flags)


def _assert_scanned_text_parses_as_interegular(pattern, flags):
    import interegular

    from structgen.automata import regex as rx

    text = rx._scan(pattern, flags, rx.MAX_REPEAT).text
    assert rx._ScannedParser(text).parse() == interegular.parse_pattern(text), text


@settings(max_examples=150, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(regexes(["a", "b", "[0-9]", ".", "é", "\\.", "x{2}", "(?i:k)", "[^a]"],
               kinds=["atom", "cat", "alt", "star", "plus", "opt", "count"], max_depth=3))
def test_random_scanned_text_parses_as_interegular_parses_it(pattern):
    _assert_scanned_text_parses_as_interegular(pattern, 0)


def test_text_the_scanner_does_not_write_goes_to_interegular():
    import interegular

    from structgen.automata import regex as rx

    for text in ["[ab]", "a{", "(?=a)b", "a)", "\\d"]:
        with pytest.raises(rx._NotScanned):
            rx._ScannedParser(text).parse()
    assert rx._parse_scanned("[ab]c") == interegular.parse_pattern("[ab]c")
    assert rx._ScannedParser("a**").parse() == interegular.parse_pattern("a**")  # a repeat of a repeat, as it reads
