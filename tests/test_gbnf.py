"""GBNF -> Lark translation (structgen.grammar.gbnf)."""

from __future__ import annotations

import itertools
import random
import re

import lark
import pytest

from grammar_samples import SAMPLES
from structgen.errors import GrammarError, Unsupported
from structgen.grammar.gbnf import gbnf_to_lark, is_gbnf
from test_grammars_lark import GRAMMARS, GreedyEarley, grammar_text, lark_accepts


def compile_gbnf(text: str) -> lark.Lark:
    return lark.Lark(gbnf_to_lark(text), parser="earley", lexer="dynamic", start="start")


# A JSON grammar (RFC 8259) written for these tests.
JSON_GBNF = r"""
# JSON text, RFC 8259.
root ::= sp element sp

element ::= obj | arr | str | num | "true" | "false" | "null"

obj ::= "{" sp ( pair ( sp "," sp pair )* sp )? "}"
pair ::= str sp ":" sp element
arr ::= "[" sp ( element ( sp "," sp element )* sp )? "]"

str ::= "\"" str-char* "\""
str-char ::= [^"\\\x00-\x1F]          # anything but quote, backslash, C0 controls
           | "\\" ( ["\\/bfnrt] | "u" hex{4} )
hex ::= [0-9a-fA-F]

num ::= "-"? int-part frac-part? exp-part?
int-part ::= "0" | [1-9] [0-9]*
frac-part ::= "." [0-9]+
exp-part ::= [eE] [+-]? [0-9]+

sp ::= [ \t\n\r]*
"""

# Arithmetic with precedence, written for these tests.
ARITH_GBNF = r"""
root   ::= ws expr ws
expr   ::= term ( ws [-+] ws term )*
term   ::= factor ( ws [*/%] ws factor )*
factor ::= "-" ws factor
         | power
power  ::= atom ( ws "^" ws factor )?
atom   ::= number | call | var | "(" ws expr ws ")"
call   ::= var "(" ws ( expr ( ws "," ws expr )* )? ws ")"
var    ::= [a-zA-Z_] [a-zA-Z0-9_]*
number ::= [0-9]+ ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
ws     ::= [ \t]*
"""


# ---------------------------------------------------------------------------
# whole grammars


@pytest.fixture(scope="module")
def json_parser():
    return compile_gbnf(JSON_GBNF)


def test_json_output_shape():
    out = gbnf_to_lark(JSON_GBNF)
    assert out.splitlines()[2] == "start: root"
    assert "%ignore" not in out
    assert "str__char:" in out and "int__part:" in out
    # every terminal matches exactly one character
    parser = compile_gbnf(JSON_GBNF)
    for t in parser.terminals:
        assert (t.pattern.min_width, t.pattern.max_width) == (1, 1), t


@pytest.mark.parametrize("text", SAMPLES["json"]["valid"])
def test_json_valid(json_parser, text):
    assert lark_accepts(json_parser, text)


@pytest.mark.parametrize("text", SAMPLES["json"]["invalid"])
def test_json_invalid(json_parser, text):
    assert not lark_accepts(json_parser, text)


def test_json_under_greedy_lexing(json_parser):
    model = GreedyEarley(json_parser)
    for text in SAMPLES["json"]["valid"][:6]:
        assert model.accepts(text), text
    for text in SAMPLES["json"]["invalid"]:
        assert not model.accepts(text), text


ARITH_VALID = ["1", "x", "-x ^ 2", "1 + 2 * 3 - 4 / 5 % 6", "f()", "max(a, b, 1.5e-3)",
               "((a))", "2 ^ -1", "  sqrt(x*x + y*y)\t", "--1", "f(g(h(1)), 2)", "a_1 - 3E+7"]
ARITH_INVALID = ["", "1 +", "(1", "1)", "f(,)", "f(1,)", "1 2", "*3", "2 ^", "1.", ".5",
                 "a b", "1\n+ 2"]


@pytest.mark.parametrize("text", ARITH_VALID)
def test_arith_valid(text):
    assert lark_accepts(_arith(), text)


@pytest.mark.parametrize("text", ARITH_INVALID)
def test_arith_invalid(text):
    assert not lark_accepts(_arith(), text)


_ARITH = []


def _arith():
    if not _ARITH:
        _ARITH.append(compile_gbnf(ARITH_GBNF))
    return _ARITH[0]


# ---------------------------------------------------------------------------
# constructs, checked against Python's re on every short string


def _strings(alphabet: str, n: int):
    for k in range(n + 1):
        for tup in itertools.product(alphabet, repeat=k):
            yield "".join(tup)


def _agree(gbnf: str, regex: str, alphabet: str = "ab-", n: int = 4):
    parser = compile_gbnf(gbnf)
    rx = re.compile(regex, re.S)
    for s in _strings(alphabet, n):
        want = rx.fullmatch(s) is not None
        assert lark_accepts(parser, s) == want, (gbnf, regex, s, want)


@pytest.mark.parametrize("gbnf,regex", [
    ('root ::= "a"{3}', "a{3}"),
    ('root ::= "a"{2,}', "a{2,}"),
    ('root ::= "a"{0,2} "b"', "a{0,2}b"),
    ('root ::= ("a" | "b"){1,3}', "[ab]{1,3}"),
    ('root ::= "ab"{2}', "(?:ab){2}"),
    ('root ::= "a"{0} "b"', "b"),
    ('root ::= "a"{0,} "b"{1,}', "a*b+"),
    ('root ::= "a" { 1 , 2 }', "a{1,2}"),
    ('root ::= "a"+? "b"', "a*b"),
    ('root ::= ("a"? "b"?)*', "[ab]*"),
    ('root ::= "a"?{2}', "a{0,2}"),
    ('root ::= ("a"{2})* "b"?', "(?:aa)*b?"),
    ('root ::= [^a]', "[^a]"),
    ('root ::= [a-b-]+', "[-ab]+"),
    ('root ::= [-a]', "[-a]"),
    ('root ::= . .', "(?s:..)"),
    ('root ::= "" | "a"', "a?"),
    ('root ::= "a" | ""', "a?"),
    ('root ::= () "a"', "a"),
    ('root ::= "a" |\n  "b"', "a|b"),
    ('root ::= x "a"\nx ::= | "b"', "b?a"),
    ('root ::= "a" |\nunused ::= "b"', "a?"),
    ('root ::= "a"\n    | "b"\n    "-"', "a|b-"),
])
def test_constructs(gbnf, regex):
    _agree(gbnf, regex)


def _random_expr(rng: random.Random, depth: int, refs: list[str]):
    """(gbnf, python regex) for a random expression over the alphabet 'ab-'."""
    kinds = ["lit", "class", "any", "group", "rep"] + (["ref"] if refs else [])
    kind = rng.choice(kinds if depth > 0 else ["lit", "class"] + (["ref"] if refs else []))
    if kind == "lit":
        s = "".join(rng.choice("ab-") for _ in range(rng.randint(0, 2)))
        return '"' + s + '"', re.escape(s)
    if kind == "class":
        chars = rng.sample("ab-", rng.randint(1, 2))
        neg = rng.random() < 0.3
        body = "".join(c if c != "-" else "\\-" for c in chars)
        pybody = "".join(re.escape(c) for c in chars)
        return f"[{'^' if neg else ''}{body}]", f"[{'^' if neg else ''}{pybody}]"
    if kind == "any":
        return ".", "."
    if kind == "ref":
        name = rng.choice(refs)
        return name, f"(?:{_HELPERS[name][1]})"
    if kind == "group":
        alts = []
        for _ in range(rng.randint(1, 3)):
            items = [_random_expr(rng, depth - 1, refs) for _ in range(rng.randint(1, 2))]
            alts.append(items)
        g = "( " + " | ".join(" ".join(i[0] for i in items) for items in alts) + " )"
        r = "(?:" + "|".join("".join(f"(?:{i[1]})" for i in items) for items in alts) + ")"
        return g, r
    inner_g, inner_r = _random_expr(rng, depth - 1, refs)
    op = rng.choice(["*", "+", "?", "{2}", "{1,}", "{0,2}", "{1,2}"])
    rop = {"{1,}": "+"}.get(op, op)
    return f"({inner_g}){op}", f"(?:{inner_r}){rop}"


_HELPERS = {
    "two-a": ('"aa"', "aa"),
    "dash-or-b": ('[-b]', "[-b]"),
}


@pytest.mark.parametrize("seed", range(60))
def test_random_expressions_match_python_re(seed):
    rng = random.Random(seed)
    refs = list(_HELPERS)
    g, r = _random_expr(rng, 3, refs)
    helpers = "\n".join(f"{name} ::= {body}" for name, (body, _) in _HELPERS.items())
    _agree(f"root ::= {g}\n{helpers}\n", r, n=4)


# ---------------------------------------------------------------------------
# escapes, comments, layout, names


def test_escapes_in_literals():
    p = compile_gbnf(r'root ::= "\n\t\r\"\\\x41\u00e9\U0001F600\[\]/"')
    assert lark_accepts(p, '\n\t\r"\\A\u00e9\U0001f600[]/')
    assert not lark_accepts(p, '\n\t\r"\\A\u00e9\U0001f600[]')


def test_escapes_in_classes():
    p = compile_gbnf(r'root ::= [\]\[\\\-^"'"'"r'\x00-\x08\u00e0-\u00ff\U0001F600]+')
    for ch in ']["\\-^\'\x00\x05\x08\u00e0\u00ff\U0001f600':
        assert lark_accepts(p, ch), repr(ch)
    for ch in "a\t\x09\u00dfz/":
        assert not lark_accepts(p, ch), repr(ch)


def test_negated_class_includes_newline_and_unicode():
    p = compile_gbnf(r'root ::= "\"" [^"\\]* "\""')
    assert lark_accepts(p, '"line\nbreak \u4e2d\U0001f600"')
    assert not lark_accepts(p, '"a"b"')


def test_dot_is_any_character():
    p = compile_gbnf('root ::= "<" . ">"')
    for ch in ["a", "\n", "\x00", "\u00e9", "\U0001f600", ">"]:
        assert lark_accepts(p, f"<{ch}>")
    assert not lark_accepts(p, "<>") and not lark_accepts(p, "<ab>")


def test_comments():
    text = (
        "# leading comment\n"
        "root ::= item+ # trailing comment\n"
        "   # comment inside a rule\n"
        '   "#" [#]     # literal and class containing #\n'
        "\n"
        "item ::= \"x\" # another\n"
        "# final comment without newline"
    )
    p = compile_gbnf(text)
    assert lark_accepts(p, "xx##")
    assert not lark_accepts(p, "xx#")


def test_multiline_layout():
    text = (
        "root ::=\n"
        "    greeting\n"
        "    ( \" \"\n"
        "      name )?\n"
        "greeting ::= \"hi\"\n"
        "           | \"hello\" |\n"
        "  \"hey\"\n"
        "name\n"
        "  ::= [a-z]+\n"
    )
    # A rule head must be on one line: "name" alone is followed by a newline.
    err = _error(text)
    assert "expected '::='" in str(err) and (err.line, err.column) == (8, 5)
    text = text.replace("name\n  ::=", "name ::=")
    p = compile_gbnf(text)
    for ok in ["hi", "hello", "hey", "hi bob"]:
        assert lark_accepts(p, ok), ok
    for bad in ["hi ", "bob", "hellohey"]:
        assert not lark_accepts(p, bad), bad


def test_crlf_line_endings():
    p = compile_gbnf('root ::= a b\r\na ::= "a"\r\nb ::= "b"\r\n')
    assert lark_accepts(p, "ab")


def test_name_mangling_and_collisions():
    text = (
        "root ::= a-b a__b Value value start 1st\n"
        'a-b ::= "1"\n'
        'a__b ::= "2"\n'
        'Value ::= "3"\n'
        'value ::= "4"\n'
        'start ::= "5"\n'
        '1st ::= "6"\n'
    )
    out = gbnf_to_lark(text)
    heads = [line.split(":")[0] for line in out.splitlines() if re.match(r"[a-z_0-9]+:", line)]
    assert heads[0] == "start" and len(heads) == len(set(heads)) == 8
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", h) for h in heads)
    assert lark_accepts(compile_gbnf(text), "123456")


def test_left_recursion_is_fine_for_earley():
    p = compile_gbnf('root ::= list\nlist ::= list "," item | item\nitem ::= [0-9]+\n')
    assert lark_accepts(p, "1,22,333") and not lark_accepts(p, "1,,2")


def test_is_gbnf():
    assert is_gbnf(JSON_GBNF) and is_gbnf(ARITH_GBNF)
    assert is_gbnf('root::="a"')
    for name in GRAMMARS:
        assert not is_gbnf(grammar_text(name)), name
    assert not is_gbnf('start: "::=" NAME\nNAME: /[a-z]+/\n')


def test_output_is_deterministic():
    assert gbnf_to_lark(JSON_GBNF) == gbnf_to_lark(JSON_GBNF)


# ---------------------------------------------------------------------------
# errors


def _error(text: str) -> GrammarError:
    with pytest.raises(GrammarError) as info:
        gbnf_to_lark(text)
    return info.value


def _pos(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    idx = -1
    for _ in range(nth + 1):
        idx = text.index(needle, idx + 1)
    line = text.count("\n", 0, idx) + 1
    col = idx - (text.rfind("\n", 0, idx) + 1) + 1
    return line, col


def test_undefined_rule_names_it_with_location():
    text = 'root ::= item+\nitem ::= "a"\n  | undefined-thing "b"\n'
    err = _error(text)
    assert "undefined-thing" in str(err)
    assert (err.line, err.column) == _pos(text, "undefined-thing") == (3, 5)
    assert err.context.splitlines() == ['    | undefined-thing "b"', "      ^"]
    assert "^" in str(err)


def test_missing_root():
    err = _error('main ::= "a"\n')
    assert "root" in str(err)


@pytest.mark.parametrize("text,needle,fragment", [
    ('root ::= "abc\n', '"abc', "unterminated string"),
    ('root ::= [a-z\n', "[a-z", "unterminated character class"),
    ('root "a"\n', '"a"', "expected '::='"),
    ('root ::= ("a" | "b"\n', "", "expected ')'"),
    ('root ::= "a" )\n', ")", "unexpected ')'"),
    ('root ::= "\\q"\n', "\\q", "unknown escape"),
    ('root ::= "\\x4"\n', "\\x4", "hex digits"),
    ('root ::= "\\U00110000"\n', "\\U", "beyond U+10FFFF"),
    ('root ::= "\\ud800"\n', "\\u", "surrogate"),
    ('root ::= "a"{3,1}\n', "{", "maximum is below minimum"),
    ('root ::= "a"{x}\n', "x", "expected a number"),
    ('root ::= "a"{2\n', "\n", "expected '}'"),
    ('root ::= * "a"\n', "*", "nothing to repeat"),
    ('root ::= [z-a]\n', "z-a", "invalid range"),
    ('root ::= []\n', "[]", "empty character class"),
    ('root ::= "a"\nroot ::= "b"\n', "root", "defined twice"),
    ('root ::= a\na ::=\nb ::= "x"\n', "a ::=", "empty definition"),
    ('root ::= "a" b ::= "c"\n', "b ::=", "new line"),
    ('root ::= "a"\n"b"\n', '"b"', "expected a rule name"),
    ('root ::= "a"\n  \n@x ::= "b"\n', "@", "expected a rule name"),
])
def test_syntax_errors_carry_location(text, needle, fragment):
    err = _error(text)
    assert fragment in str(err)
    if needle == "":  # end of input
        assert err.line is not None
        return
    line, col = _pos(text, needle, 1 if fragment == "defined twice" else 0)
    if needle == "\n":
        line, col = 1, text.index("\n") + 1
    assert (err.line, err.column) == (line, col), (str(err), line, col)
    assert err.context.endswith("^")


def test_token_references_are_unsupported():
    with pytest.raises(Unsupported) as info:
        gbnf_to_lark("root ::= <think> .*\n")
    assert "line 1" in str(info.value)


# ---------------------------------------------------------------------------
# the engine against an independent oracle on random GBNF grammars

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from structgen.testing import GreedyLexerOracle, check_grammar_masks, multibyte_vocabulary  # noqa: E402

GBNF_ALPHABET = "ab-é中"
_GBNF_CLASSES = {"[ab]": "[ab]", "[^a]": "[^a]", "[a-é]": "[a-é]", "[中é-]": "[中é\\-]", ".": "(?s:.)"}


@st.composite
def random_gbnf(draw):
    """(GBNF text, oracle rules, oracle terminals).  The oracle side is built from the
    same random structure with one single-character terminal per literal character
    or class and explicit rules for groups and repeats: no code shared with gbnf.py."""
    rules: list = []
    terminals: dict = {}
    fresh = iter(f"h{i}" for i in range(10_000))

    def term(rx: str) -> str:
        name = next((k for k, v in terminals.items() if v == rx), f"C{len(terminals)}")
        terminals[name] = rx
        return name

    def expr(depth: int, refs: bool = True):  # -> (gbnf text, oracle symbols)
        kind = draw(st.sampled_from(["lit", "class"] + ["ref"] * refs + (["group", "rep"] * 2 if depth else [])))
        if kind == "lit":
            s = "".join(draw(st.lists(st.sampled_from(GBNF_ALPHABET), min_size=1, max_size=2)))
            return f'"{s}"', [term(re.escape(c)) for c in s]
        if kind == "class":
            g = draw(st.sampled_from(sorted(_GBNF_CLASSES)))
            return g, [term(_GBNF_CLASSES[g])]
        if kind == "ref":
            return "item", ["item"]
        if kind == "group":
            alts = [[expr(depth - 1, refs) for _ in range(draw(st.integers(1, 2)))]
                    for _ in range(draw(st.integers(1, 2)))]
            name = next(fresh)
            for alt in alts:
                rules.append((name, tuple(s for _, syms in alt for s in syms)))
            return "( " + " | ".join(" ".join(g for g, _ in alt) for alt in alts) + " )", [name]
        inner, syms = expr(depth - 1, refs)
        op = draw(st.sampled_from(["*", "+", "?", "{2}", "{0,2}"]))
        name, star = next(fresh), next(fresh)
        rules.extend([(star, ()), (star, (*syms, star))])
        body = {"*": [(star,)], "+": [(*syms, star)], "?": [(), tuple(syms)],
                "{2}": [(*syms, *syms)], "{0,2}": [(), tuple(syms), (*syms, *syms)]}[op]
        rules.extend((name, tuple(b)) for b in body)
        return f"({inner}){op}", [name]

    root_text, root_syms = expr(2)
    rules.append(("root", tuple(root_syms)))
    item_text, item_syms = expr(1, refs=False)
    rules.append(("item", tuple(item_syms)))
    return f"root ::= {root_text}\nitem ::= {item_text}\n", rules, terminals


@pytest.mark.parametrize("backend", ["numba", "reference"])
@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(grammar=random_gbnf(), seed=st.integers(0, 10_000))
def test_random_gbnf_grammars_match_the_oracle(backend, grammar, seed):
    from structgen import compile_grammar

    text, rules, terminals = grammar
    vocab = multibyte_vocabulary(GBNF_ALPHABET, seed=seed % 5)
    compiled = compile_grammar(text, vocab, kernels=backend)
    oracle = GreedyLexerOracle(rules, terminals, "root")
    check_grammar_masks(compiled, oracle, alphabet=GBNF_ALPHABET, max_chars=5, seed=seed, steps=6)
