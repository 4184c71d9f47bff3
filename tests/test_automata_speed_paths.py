"""Shortcuts taken for compile speed against the general constructions they
replace: the drop_sinks kernel twins, memoised products, plain quoted literals."""

import re

import numpy as np
import pytest

from structgen.automata import ops
from structgen.automata.kernels import get_kernels
from structgen.json_schema import json_strings


def _sink_table(rng, S, C):
    t = rng.integers(0, S, (S, C)).astype(np.int32)
    t[rng.random((S, C)) < rng.random()] = -1
    t[rng.random(S) < 0.3] = -1  # edgeless rows: sinks unless accepting
    return t, rng.random(S) < 0.3 * rng.random()


@pytest.mark.parametrize("seed", range(3))
def test_drop_sinks_numba_matches_reference(seed):
    kn, kr = get_kernels("numba"), get_kernels("reference")
    rng = np.random.default_rng(seed)
    for _ in range(400):
        t, acc = _sink_table(rng, int(rng.integers(1, 30)), int(rng.integers(1, 5)))
        (xn, an), (xr, ar) = kn.drop_sinks(t, acc), kr.drop_sinks(t, acc)
        assert xn.shape == xr.shape and (xn == xr).all() and (an == ar).all()
        # no edge left into a non-accepting edgeless state, except state 0
        for s in range(1, len(xn)):
            assert an[s] or (xn[s] >= 0).any()


def test_memoised_product_is_the_product():
    a = json_strings.quoted(None, canonical=True)
    b = json_strings.quoted_literals(["id", "name", "na"], canonical=True)
    first = ops.product(a, b, "diff", minimal=False, max_states=400_000, sinks_only=True)
    assert ops.product(a, b, "diff", minimal=False, max_states=400_000, sinks_only=True) is first
    ops._PRODUCTS.clear()
    again = ops.product(a, b, "diff", minimal=False, max_states=400_000, sinks_only=True)
    assert again is not first and ops.dfa_key(again) == ops.dfa_key(first)
    for s, ok in ((b'"id"', False), (b'"idx"', True), (b'"n"', True), (b'"na"', False), (b'"nam"', True)):
        assert first.matches(s) == ok
    assert ops.dfa_key(ops.minimize(first)) == ops.dfa_key(ops.difference(a, b))


def test_plain_literals_equal_the_general_construction(monkeypatch):
    rng = np.random.default_rng(5)
    alpha = list(" !#$%&'()*+,-.0123456789:;<=>?@AZaz[]^_`{|}~")
    sets = [[""], ["a"], ["ab", "a", ""], ["x" * 40]]
    for _ in range(300):
        sets.append(["".join(rng.choice(alpha, int(rng.integers(0, 6)))) for _ in range(int(rng.integers(1, 6)))])
    fast = [json_strings._quoted_literals(s, None, True) for s in sets]
    monkeypatch.setattr(json_strings, "_PLAIN", re.compile("(?!)"))  # the general path only
    for s, f in zip(sets, fast):
        assert ops.dfa_key(json_strings._quoted_literals(s, None, True)) == ops.dfa_key(f), s
    for bad in ['a"b', "a/b", "a\\b", "é", "\x1f", "\x7f"]:
        assert not json_strings._PLAIN.fullmatch(bad)


def test_numeric_enum_dfa_equals_the_union_regex():
    from decimal import Decimal

    from structgen.automata.regex import regex_to_dfa
    from structgen.json_schema import numbers as num

    rng = np.random.default_rng(11)
    sets = [(Decimal(0),), (Decimal(0), Decimal(1), Decimal(-1), Decimal(10), Decimal("0.1")),
            (Decimal("1E+300"), Decimal(10) ** 40 + 1, Decimal(10) ** 40), (Decimal("-0.000001"), Decimal("-1E-30")),
            (Decimal("123456789012345678901234567890"), Decimal("0.12345678901234567890123")),
            tuple(Decimal(i) for i in range(195, 215))]
    for _ in range(25):
        sets.append(tuple(Decimal(int(rng.integers(-10 ** 6, 10 ** 6))).scaleb(-int(rng.integers(0, 6)))
                          for _ in range(int(rng.integers(1, 8)))))
    for vals in sets:
        vals = tuple(sorted(set(v.normalize() if v != 0 else Decimal(0) for v in vals)))
        want = regex_to_dfa("|".join(num._point_regex(v) for v in vals), max_states=num.MAX_STATES)
        assert ops.dfa_key(num._points_cached.__wrapped__(vals)) == ops.dfa_key(want), vals


def test_quoting_a_plain_body_equals_the_general_encoding():
    from structgen.automata.regex import regex_to_dfa

    for p in ["[a-z]+", "abc", "[0-9]{2,4}", "(foo|bar)*", "", "x?", "[ -!#-.0-\\[\\]-~]*", "a{3}-[0-9]{1,3}",
              "[a-z]{1,300}", "[a-z]/", 'a"b', "é", "(?s:.*)", "[a-z]{1,1600}"]:  # 1600: above the size
        # from which the general construction stops minimising by default (the direct one still does)
        body = regex_to_dfa(p)
        fast = json_strings.encode_body(body, quoted=True, canonical=True)
        general = json_strings.encode_body(body, quoted=True, canonical=True, minimal=True)  # no shortcut
        assert ops.dfa_key(fast) == ops.dfa_key(general), p
    assert not json_strings._plain_body(regex_to_dfa("a/b")) and json_strings._plain_body(regex_to_dfa("a-b"))


def test_ecma_alternatives_sharing_their_unanchored_ends_keep_the_language():
    from structgen.json_schema.ecma_regex import pattern_dfa

    for alts in (["^dev", "alpha", "beta", "rc", "RC", "stable$"], ["a", "^b", "c$", "d", "^e$"],
                 ["en", "de", "ru", "pt", "nl", "fr", "it"]):
        whole = pattern_dfa("|".join(alts))
        each = ops.union_all([pattern_dfa(a) for a in alts])
        assert ops.dfa_key(whole) == ops.dfa_key(each), alts


@pytest.mark.parametrize("lo, hi", [(0, 0), (0, 3), (2, 2), (5, None), (0, None), (3, 40), (1, None)])
def test_repeated_characters_equal_the_counted_regex(lo, hi):
    """ops.repeat_chain (what a string length bound compiles to) gives the minimal
    DFA of the counted regex, and its trimmed form the same language."""
    from structgen.automata.regex import regex_to_dfa

    unit = regex_to_dfa("(?s:.)")
    want = regex_to_dfa("(?s:.{%d,%s})" % (lo, "" if hi is None else hi), max_repeat=10_000)
    assert ops.dfa_key(ops.repeat_chain(unit, lo, hi, minimal=True)) == ops.dfa_key(want)
    assert ops.dfa_key(ops.minimize(ops.repeat_chain(unit, lo, hi))) == ops.dfa_key(want)
    with pytest.raises(ValueError, match="one accepting state"):
        ops.repeat_chain(regex_to_dfa("(?s:.)+"), lo, hi)


@pytest.mark.parametrize("canonical", [True, False])
def test_cut_length_chains_are_minimal_repeat_chains(canonical):
    """Bounded length chains cut from one shared table (ops.ChainCutter) are the
    minimal DFA of repeat_chain's language, state for state, for every bound the
    cutter serves; bounds past it and unbounded ones come from repeat_chain."""
    unit = json_strings._enc_char(canonical)
    cutter = json_strings._chain_cutter(canonical)
    for lo, hi in [(0, 1), (1, 1), (0, 2), (2, 5), (0, 63), (1, 63), (64, 64), (0, 128), (128, 128)]:
        got = cutter.chain(lo, hi)
        want = ops.repeat_chain(unit, lo, hi, minimal=True)
        assert ops.dfa_key(ops.minimize(got)) == ops.dfa_key(want), (lo, hi)
        assert got.num_states == want.num_states, (lo, hi)
        assert ops.dfa_key(json_strings.encoded_length_chain.__wrapped__(lo, hi, canonical)) == ops.dfa_key(want)
        for text, ok in ((b"a" * lo, True), (b"a" * hi, True), (b"\\u00e9" * hi, True), (b"a" * (hi + 1), False),
                         (b"a" * max(lo - 1, 0), lo == 0)):
            assert got.matches(text) == ok, (lo, hi, text)
    for bad in ((0, 0), (0, 129), (3, 2)):
        with pytest.raises(ValueError, match="cuts chains"):
            cutter.chain(*bad)


@pytest.mark.parametrize("canonical", [True, False])
def test_quoted_length_chains_equal_the_generic_concatenation(canonical):
    """_quoted_len writes quote + length chain + quote as one table: the same DFA as
    the generic concatenation, minimised."""
    from structgen.automata.regex import literal_dfa

    quote = literal_dfa(b'"')
    for lo, hi in [(0, 0), (0, 1), (1, 1), (3, 7), (2, None), (0, None), (10, 40), (0, 128), (4, 3)]:
        chain = json_strings.encoded_length_chain(lo, hi, canonical)
        want = ops.minimize(ops.concat(ops.concat(quote, chain), quote))
        got = json_strings._quoted_len.__wrapped__(lo, hi, canonical)
        assert ops.dfa_key(got) == ops.dfa_key(want), (lo, hi)  # minimal as built, renumbered
        for text, ok in ((b'"' + b"a" * lo + b'"', True), (b'"' + b'\\"' * lo + b'"', True),
                         (b'"' + b"a" * (lo + 1), False)):
            assert got.matches(text) == (ok and (hi is None or lo <= hi)), (lo, hi, text)


def test_shipped_format_tables_are_the_formats_built_from_their_regexes(tmp_path, monkeypatch):
    """format_tables.npz holds exactly what build_format_dfa gives for every format;
    a spec whose digest no longer matches, or a missing file, falls back to a build."""
    from structgen.json_schema import formats

    assert formats.FORMAT_TABLES.is_file()
    for name, spec in formats.FORMATS.items():
        stored = formats._stored_dfa(name)
        assert stored is not None, f"{name}: no stored table (rewrite with formats.write_format_tables())"
        assert ops.dfa_key(stored) == ops.dfa_key(formats.build_format_dfa(spec)), name
    changed = formats.FormatSpec("uuid", formats.UUID + "x", False)
    monkeypatch.setitem(formats.FORMATS, "uuid", changed)
    assert formats._stored_dfa("uuid") is None  # a stale table is never used
    monkeypatch.setattr(formats, "FORMAT_TABLES", tmp_path / "missing.npz")
    formats._tables.cache_clear()
    try:
        assert formats._tables() is None and formats._stored_dfa("date") is None
    finally:
        monkeypatch.undo()
        formats._tables.cache_clear()


@pytest.mark.parametrize("canonical", [False, True])
def test_encoded_ascii_body_accepts_exactly_the_json_spellings_of_its_strings(canonical):
    """An ASCII-only body skips the multi-byte escape layers (they would be dead): every
    JSON spelling of a string up to two characters is accepted iff the string is in the
    body (canonical: printable ASCII never as \\u escapes)."""
    import itertools

    from structgen.automata.regex import regex_to_dfa

    pattern = '[a"\\\\/\\x01]{0,2}'
    enc = json_strings.encode_body(regex_to_dfa(pattern), quoted=True, canonical=canonical)
    short = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\x08": "\\b", "\x0c": "\\f", "\n": "\\n", "\r": "\\r",
             "\t": "\\t"}

    def spellings(c):
        out = []
        if c not in '"\\' and ord(c) >= 0x20:
            out.append((c, True))
        if c in short:
            out.append((short[c], True))
        printable = 0x20 <= ord(c) < 0x7F  # canonical: never \u-escaped (quote and backslash: short forms)
        for form in ("\\u%04x", "\\u%04X"):
            out.append((form % ord(c), not (canonical and printable)))
        return out

    checked = 0
    for n in range(3):
        for chars in itertools.product(['a', '"', "\\", "/", "\x01", "b", "é"], repeat=n):
            s = "".join(chars)
            want = re.fullmatch(pattern, s) is not None
            for parts in itertools.product(*[spellings(c) for c in chars]):
                text = '"' + "".join(p for p, _ in parts) + '"'
                ok = want and all(allowed for _, allowed in parts)
                assert enc.matches(text.encode()) == ok, (text, canonical)
                checked += 1
    assert checked > 400


def test_ecma_patterns_parsed_once_keep_errors_and_modes_apart():
    """pattern_dfa keeps each pattern's parse (per search mode): a pattern that does not
    parse raises every time, naming the place of that call, and a kept parse serves
    the same language as a fresh one."""
    from structgen.errors import Unsupported
    from structgen.json_schema import ecma_regex

    for where in ("#/a/pattern", "#/b/pattern"):
        with pytest.raises(Unsupported) as err:
            ecma_regex.pattern_dfa("(?<=x)y", where=where)
        assert where in str(err.value)
    p = "^(?!ab)[a-c]{2}|x$"
    search, full = ecma_regex.pattern_dfa(p), ecma_regex.pattern_dfa(p, search=False)
    assert search.matches(b"bcz") and not full.matches(b"bcz") and not search.matches(b"abz")
    assert search.matches(b"zzx") and not full.matches(b"zzx") and full.matches(b"x")
    ecma_regex._TRANSLATIONS.clear()
    ecma_regex._pattern_dfa.cache_clear()
    assert ops.dfa_key(ecma_regex.pattern_dfa(p)) == ops.dfa_key(search)


@pytest.mark.parametrize("schema", [
    {},
    {"type": "object", "properties": {"a": {"type": "string"}}},
    {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
    # "any object" emitted before any value: the template's memo entry is there, so emitted directly
    {"type": "object", "properties": {"a": {"type": "object"}, "b": {}, "c": {"type": "array"}}},
    {"type": "object", "properties": {"a": {"enum": ["x", 1]}}, "additionalProperties": {"type": "integer"},
     "patternProperties": {"^p": {}}},
])
@pytest.mark.parametrize("whitespace", ["flexible", "compact"])
def test_any_value_replayed_from_its_template_is_the_emitted_grammar(schema, whitespace, monkeypatch):
    """Replaying "any JSON value" (emit._AnyValue) gives the grammar direct emission gives:
    same terminals (automata and names), same rules, same start; nonterminal names aside."""
    from structgen.json_schema import emit
    from structgen.json_schema.compile import schema_to_grammar

    def grammar(replays):
        monkeypatch.setattr(emit.Emitter, "replays", replays)
        return schema_to_grammar(schema, whitespace=whitespace)
    direct, replayed = grammar(False), grammar(True)
    assert replayed.rules == direct.rules and replayed.start == direct.start
    assert len(replayed.nonterminals) == len(direct.nonterminals)
    assert [(t.name, ops.dfa_key(t.dfa)) for t in replayed.terminals] == \
           [(t.name, ops.dfa_key(t.dfa)) for t in direct.terminals]
    assert replayed.meta["nullable"][1] == direct.meta["nullable"][1]
