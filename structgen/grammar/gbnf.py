r"""Translate llama.cpp GBNF grammars into Lark grammars.

GBNF is a character-level BNF: ``name ::= alternatives``, string literals
``"..."``, character classes ``[a-z]`` / ``[^"\\]``, ``.`` (any character),
grouping ``( )``, alternation ``|``, repetition ``* + ? {m} {m,} {m,n}`` and
``#`` comments.  It has no lexer: every literal and class matches characters
directly.

How the translation keeps those semantics exact
-----------------------------------------------
structgen runs a *greedy* contextual lexer in front of its Earley parser: a
lexeme grows while the next byte keeps some acceptable terminal alive.  If
literals were kept as multi-character terminals, greedy lexing could disagree
with GBNF's character-level reading whenever one acceptable terminal is a proper
prefix of another (``"a" "b"`` vs ``"ab"``, or a literal running into a class).
To rule that out, the translation makes **every terminal match exactly one
character**:

* a literal ``"abc"`` becomes the sequence of one-character anonymous
  terminals ``"a" "b" "c"`` (the empty literal ``""`` becomes nothing);
* a class becomes a one-character regex terminal, e.g. ``/[a-z]/`` or
  ``/[^\x00-\x1f\x22\\]/``.  Lark itself evaluates ``\xNN``, ``\uNNNN`` and
  ``\UNNNNNNNN`` in string and regex literals, so what ``to_regexp()`` hands on
  (and interegular later compiles) holds raw characters; that is why characters
  special inside a class (``\ ] [ ^ - /``) are escaped with a backslash and
  quotes are written ``\x22``/``\x27`` (they would otherwise trip Lark's own
  quote handling), never ``\x5c`` and the like;
* ``.`` becomes ``/(?s:.)/`` (any code point, newline included).

A one-character lexeme can never be extended, so the lexer never has a choice
to make and Earley sees exactly the character sequence GBNF would.  Where two
terminals accept the same character (``"a"`` and ``/[a-z]/``) both reach the
parser, which is right for Earley; it also means the output must be used with
Earley (structgen's runtime, or ``lark.Lark(..., parser="earley",
lexer="dynamic")``), not with lark's basic lexer.  There is no ``%ignore``:
GBNF whitespace is explicit.

Other details:

* ``start: root`` is emitted first.  GBNF rule names (letters, digits, ``-``,
  also ``_`` here) become lowercase Lark names with ``-`` replaced by ``__``;
  names that would start with a digit or ``_`` get an ``r`` prefix, and clashes
  (``a-b`` vs ``a__b``, ``Value`` vs ``value``, a GBNF rule called ``start``)
  get a ``_2``, ``_3``... suffix.
* ``{m}``, ``{m,n}`` become Lark's ``~ m`` / ``~ m..n``; ``{m,}`` becomes
  ``x ~ m x*``; stacked ``* + ?`` are folded (``x+?`` is ``x*``).
* A rule or top-level alternative may continue on following lines when those
  lines are indented or start with ``|``, when the previous line ends with
  ``|`` or ``::=``, or inside parentheses; a new rule starts at ``name ::=``.
* Errors raise :class:`structgen.errors.GrammarError` with 1-based line and
  column (and a caret context): syntax errors, undefined rules (named), a rule
  defined twice, a missing ``root``.  llama.cpp's token syntax (``<...>``,
  ``!<...>``) raises :class:`structgen.errors.Unsupported`.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from structgen.errors import GrammarError, Unsupported

__all__ = ["gbnf_to_lark", "is_gbnf"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_RULE_HEAD = re.compile(r"[ \t]*([A-Za-z0-9_-]+)[ \t]*::=")
_HEAD_LINE = re.compile(r"^[ \t]*[A-Za-z0-9_-]+[ \t]*::=", re.M)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_MAX_CODEPOINT = 0x10FFFF


def is_gbnf(text: str) -> bool:
    """Heuristic: does ``text`` look like GBNF (a line of the form ``name ::= ...``)?"""
    return bool(_HEAD_LINE.search(text))


# ---------------------------------------------------------------------------
# AST


@dataclass
class _Lit:
    text: str


@dataclass
class _Class:
    ranges: list[tuple[int, int]]
    negated: bool


@dataclass
class _Any:
    pass


@dataclass
class _Ref:
    name: str
    line: int
    column: int


@dataclass
class _Alt:
    seqs: list[list]


@dataclass
class _Rep:
    node: object
    lo: int
    hi: int | None  # None: unbounded


@dataclass
class _Rule:
    name: str
    body: _Alt
    line: int
    column: int
    refs: list[_Ref] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.rules: dict[str, _Rule] = {}
        self._refs: list[_Ref] = []

    # -- positions and errors ------------------------------------------------

    def _loc(self, pos: int) -> tuple[int, int]:
        i = bisect.bisect_right(self._line_starts, pos) - 1
        return i + 1, pos - self._line_starts[i] + 1

    def _error(self, message: str, pos: int | None = None) -> GrammarError:
        line, column = self._loc(self.pos if pos is None else pos)
        return GrammarError(message, text=self.text, line=line, column=column)

    def _peek(self, k: int = 0) -> str:
        p = self.pos + k
        return self.text[p] if p < len(self.text) else ""

    def _describe(self, pos: int) -> str:
        if pos >= len(self.text):
            return "end of input"
        c = self.text[pos]
        return "end of line" if c in "\r\n" else repr(c)

    # -- whitespace --------------------------------------------------------------

    def _skip_inline(self) -> None:
        """Spaces, tabs, CRs and a comment up to (not including) the newline."""
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if c in " \t\r":
                self.pos += 1
            elif c == "#":
                while self.pos < n and text[self.pos] != "\n":
                    self.pos += 1
            else:
                break

    def _skip_all(self) -> None:
        """Whitespace, comments and newlines."""
        while True:
            self._skip_inline()
            if self._peek() == "\n":
                self.pos += 1
            else:
                return

    def _ws(self, nested: bool) -> None:
        """Skip insignificant space.  Outside parentheses a newline ends the
        current rule unless the next content line continues it (indented, or
        starting with '|') and is not a new ``name ::=`` head."""
        if nested:
            self._skip_all()
            return
        while True:
            self._skip_inline()
            if self._peek() != "\n":
                return
            # Find the next line with content.
            p = self.pos
            text, n = self.text, len(self.text)
            while True:
                p += 1  # past '\n'
                q = p
                while q < n and text[q] in " \t\r":
                    q += 1
                if q < n and text[q] == "#":
                    while q < n and text[q] != "\n":
                        q += 1
                if q >= n:
                    return  # only blanks and comments remain: the rule ends
                if text[q] == "\n":
                    p = q
                    continue
                break
            if _RULE_HEAD.match(text, p):
                return
            if text[p] in " \t" or text[q] == "|":
                self.pos = q
                continue
            return

    def _at_rule_head(self) -> bool:
        return _RULE_HEAD.match(self.text, self.pos) is not None

    # -- grammar -----------------------------------------------------------------

    def parse(self) -> dict[str, _Rule]:
        if self.text.startswith("\ufeff"):
            self.pos = 1
        while True:
            self._skip_all()
            if self.pos >= len(self.text):
                break
            self._rule()
        return self.rules

    def _name(self) -> str:
        start = self.pos
        while self._peek() and self._peek() in _NAME_CHARS:
            self.pos += 1
        return self.text[start:self.pos]

    def _rule(self) -> None:
        start = self.pos
        name = self._name()
        if not name:
            raise self._error(f"expected a rule name, found {self._describe(self.pos)}")
        line, column = self._loc(start)
        self._skip_inline()
        if not self.text.startswith("::=", self.pos):
            raise self._error(f"expected '::=' after rule name '{name}', "
                              f"found {self._describe(self.pos)}")
        if name in self.rules:
            first = self.rules[name]
            raise GrammarError(f"rule '{name}' is defined twice (first at line {first.line})",
                               text=self.text, line=line, column=column)
        self.pos += 3
        self._skip_all()
        if self.pos >= len(self.text) or self._at_rule_head():
            raise self._error(f"rule '{name}' has an empty definition "
                              '(write "" for the empty string)', start)
        refs_before = len(self._refs)
        body = self._alternates(nested=False)
        self._skip_inline()
        line_start = self.text.rfind("\n", 0, self.pos) + 1
        at_line_start = not self.text[line_start:self.pos].strip(" \t\r")
        if self.pos < len(self.text) and self._peek() != "\n" and not (
                at_line_start and self._at_rule_head()):  # after a trailing '|'
            if self._at_rule_head():
                raise self._error("a new rule must start on a new line")
            raise self._error(f"unexpected {self._describe(self.pos)}")
        rule = _Rule(name, body, line, column, self._refs[refs_before:])
        self.rules[name] = rule

    def _alternates(self, nested: bool) -> _Alt:
        seqs = [self._sequence(nested)]
        while self._peek() == "|":
            self.pos += 1
            self._skip_all()
            seqs.append(self._sequence(nested))
        return _Alt(seqs)

    def _sequence(self, nested: bool) -> list:
        items: list = []
        while True:
            self._ws(nested)
            c = self._peek()
            start = self.pos
            if c == '"':
                node = self._literal()
            elif c == "[":
                node = self._char_class()
            elif c == ".":
                self.pos += 1
                node = _Any()
            elif c == "(":
                self.pos += 1
                self._skip_all()
                node = self._alternates(nested=True)
                self._skip_all()
                if self._peek() != ")":
                    raise self._error(f"expected ')' to close the group opened at line "
                                      f"{self._loc(start)[0]}, column {self._loc(start)[1]}, "
                                      f"found {self._describe(self.pos)}")
                self.pos += 1
            elif c and c in _NAME_CHARS:
                if self._at_rule_head():
                    break
                name = self._name()
                line, column = self._loc(start)
                node = _Ref(name, line, column)
                self._refs.append(node)
            elif c in ("*", "+", "?", "{"):
                raise self._error(f"repetition operator {c!r} has nothing to repeat")
            elif c in ("<", "!"):
                line, column = self._loc(start)
                raise Unsupported("GBNF token reference",
                                  "llama.cpp token syntax (<token>, !<token>) is not supported",
                                  where=f"line {line}, column {column}")
            else:
                break
            items.append(self._postfix(node, nested))
        return items

    def _postfix(self, node, nested: bool):
        while True:
            save = self.pos
            self._ws(nested)
            c = self._peek()
            if c == "*":
                self.pos += 1
                node = _repeat(node, 0, None)
            elif c == "+":
                self.pos += 1
                node = _repeat(node, 1, None)
            elif c == "?":
                self.pos += 1
                node = _repeat(node, 0, 1)
            elif c == "{":
                lo, hi = self._braces()
                node = _repeat(node, lo, hi)
            else:
                self.pos = save
                return node

    def _int(self) -> int:
        start = self.pos
        while self._peek().isdigit() and self._peek().isascii():
            self.pos += 1
        if start == self.pos:
            raise self._error(f"expected a number in repetition count, "
                              f"found {self._describe(self.pos)}")
        return int(self.text[start:self.pos])

    def _braces(self) -> tuple[int, int | None]:
        open_pos = self.pos
        self.pos += 1
        self._skip_inline()
        lo = self._int()
        self._skip_inline()
        hi: int | None = lo
        if self._peek() == ",":
            self.pos += 1
            self._skip_inline()
            hi = None if self._peek() == "}" else self._int()
            self._skip_inline()
        if self._peek() != "}":
            raise self._error(f"expected '}}' to close the repetition count, "
                              f"found {self._describe(self.pos)}")
        self.pos += 1
        if hi is not None and hi < lo:
            raise self._error(f"repetition count {{{lo},{hi}}}: maximum is below minimum",
                              open_pos)
        return lo, hi

    # -- literals and classes ----------------------------------------------------

    def _char(self, what: str, open_pos: int) -> str:
        """One (possibly escaped) character inside a literal or class."""
        c = self._peek()
        if c == "" or c in "\r\n":
            raise self._error(f"unterminated {what}", open_pos)
        if c != "\\":
            self.pos += 1
            return c
        esc_pos = self.pos
        self.pos += 1
        e = self._peek()
        if e == "" or e in "\r\n":
            raise self._error(f"unterminated {what}", open_pos)
        self.pos += 1
        if e in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[e]
        digits = {"x": 2, "u": 4, "U": 8}.get(e)
        if digits is not None:
            hexs = self.text[self.pos:self.pos + digits]
            if len(hexs) != digits or not all(h in "0123456789abcdefABCDEF" for h in hexs):
                raise self._error(f"escape \\{e} needs exactly {digits} hex digits", esc_pos)
            self.pos += digits
            cp = int(hexs, 16)
            if cp > _MAX_CODEPOINT:
                raise self._error(f"escape \\{e}{hexs} is beyond U+10FFFF", esc_pos)
            if 0xD800 <= cp <= 0xDFFF:
                raise self._error(f"escape \\{e}{hexs} is a surrogate, not a character", esc_pos)
            return chr(cp)
        if e.isascii() and not e.isalnum():
            return e  # \\ \" \[ \] \- \^ \/ ...
        raise self._error(f"unknown escape '\\{e}'", esc_pos)

    def _literal(self) -> _Lit:
        open_pos = self.pos
        self.pos += 1
        chars = []
        while self._peek() != '"':
            chars.append(self._char("string literal", open_pos))
        self.pos += 1
        return _Lit("".join(chars))

    def _char_class(self) -> _Class:
        open_pos = self.pos
        self.pos += 1
        negated = self._peek() == "^"
        if negated:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        while self._peek() != "]":
            start = self.pos
            lo = self._char("character class", open_pos)
            hi = lo
            if self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.pos += 1
                hi = self._char("character class", open_pos)
                if ord(hi) < ord(lo):
                    raise self._error(f"invalid range {lo!r}-{hi!r} in character class", start)
            ranges.append((ord(lo), ord(hi)))
        self.pos += 1
        if not ranges and not negated:
            raise self._error("empty character class [] matches nothing", open_pos)
        return _Class(ranges, negated)


def _repeat(node, lo: int, hi: int | None):
    simple = {(0, None), (1, None), (0, 1)}
    if isinstance(node, _Rep) and (node.lo, node.hi) in simple and (lo, hi) in simple:
        new_lo = node.lo * lo
        new_hi = 1 if (node.hi == 1 and hi == 1) else None
        return _Rep(node.node, new_lo, new_hi)
    return _Rep(node, lo, hi)


# ---------------------------------------------------------------------------
# Emitter


def _escape_cp(cp: int) -> str:
    """A Python-style escape; Lark evaluates these to the raw character."""
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _visible(cp: int) -> bool:
    ch = chr(cp)
    return cp >= 0xA0 and ch.isprintable() and not ch.isspace()


def _class_char(cp: int) -> str:
    """One character inside ``/[...]/`` in Lark source.

    Lark evaluates ``\\xNN``/``\\uNNNN`` escapes in regex literals *before* the
    regex engine sees them, so characters special inside a class are escaped
    with a backslash instead (``\\]``, ``\\-``...), never with ``\\xNN``."""
    ch = chr(cp)
    if cp < 0x80:
        if ch.isalnum():
            return ch
        if ch in "\\]^-[/":
            return "\\" + ch
        if ch in "\"'":  # quotes: dodge Lark's own quote handling in eval_escaping
            return _escape_cp(cp)
        if 0x20 <= cp < 0x7F:
            return ch
        return _escape_cp(cp)
    return ch if _visible(cp) else _escape_cp(cp)


def _char_terminal(ch: str) -> str:
    """A Lark string literal matching exactly ``ch``."""
    cp = ord(ch)
    if ch == '"':
        return '"\\""'
    if ch == "\\":
        return '"\\\\"'
    if 0x20 <= cp < 0x7F or _visible(cp):
        return f'"{ch}"'
    return f'"{_escape_cp(cp)}"'


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def _class_terminal(node: _Class) -> str:
    if not node.ranges:  # [^] : any character
        return "/(?s:.)/"
    parts = []
    for lo, hi in _merge(node.ranges):
        if lo == hi:
            parts.append(_class_char(lo))
        elif hi == lo + 1:
            parts.append(_class_char(lo) + _class_char(hi))
        else:
            parts.append(f"{_class_char(lo)}-{_class_char(hi)}")
    return f"/[{'^' if node.negated else ''}{''.join(parts)}]/"


class _Emitter:
    def __init__(self, names: dict[str, str]):
        self.names = names

    def atom(self, node) -> str | None:
        """A single Lark atom (safe to put a postfix on), or None for epsilon."""
        if isinstance(node, _Lit):
            if not node.text:
                return None
            terms = [_char_terminal(c) for c in node.text]
            return terms[0] if len(terms) == 1 else "(" + " ".join(terms) + ")"
        if isinstance(node, _Class):
            return _class_terminal(node)
        if isinstance(node, _Any):
            return "/(?s:.)/"
        if isinstance(node, _Ref):
            return self.names[node.name]
        if isinstance(node, _Alt):
            if len(node.seqs) == 1:
                nodes = node.seqs[0]
                if len(nodes) == 1:
                    return self.atom(nodes[0])
                text = self.seq(nodes)
                return "(" + text + ")" if text else None
            alts = [self.seq(s) for s in node.seqs]
            if not any(alts):
                return None
            return "(" + " | ".join(alts) + ")"
        if isinstance(node, _Rep):
            text = self.rep(node)
            return None if text is None else "(" + text + ")"
        raise AssertionError(node)

    def rep(self, node: _Rep) -> str | None:
        inner = self.atom(node.node)
        if inner is None:
            return None
        lo, hi = node.lo, node.hi
        if hi is None:
            if lo == 0:
                return f"{inner}*"
            if lo == 1:
                return f"{inner}+"
            return f"{inner} ~ {lo} {inner}*"
        if hi == 0:
            return None
        if (lo, hi) == (0, 1):
            return f"{inner}?"
        if lo == hi:
            return inner if lo == 1 else f"{inner} ~ {lo}"
        return f"{inner} ~ {lo}..{hi}"

    def piece(self, node) -> str | None:
        """Text for ``node`` as one element of a sequence (may be several atoms)."""
        if isinstance(node, _Lit):
            return " ".join(_char_terminal(c) for c in node.text) or None
        if isinstance(node, _Rep):
            return self.rep(node)
        if isinstance(node, _Alt) and len(node.seqs) == 1:
            return self.seq(node.seqs[0]) or None
        return self.atom(node)

    def seq(self, items: list) -> str:
        return " ".join(s for s in (self.piece(n) for n in items) if s)


def _lark_names(rule_names: list[str]) -> dict[str, str]:
    used = {"start"}
    out: dict[str, str] = {}
    order = (["root"] if "root" in rule_names else []) + [n for n in rule_names if n != "root"]
    for name in order:
        base = name.lower().replace("-", "__")
        if not base[0].isalpha():
            base = "r" + base
        candidate, k = base, 2
        while candidate in used:
            candidate, k = f"{base}_{k}", k + 1
        used.add(candidate)
        out[name] = candidate
    return out


def gbnf_to_lark(text: str) -> str:
    """Translate GBNF ``text`` into an equivalent Lark grammar whose start rule is
    ``start: root``.  See the module docstring for the exactness argument."""
    parser = _Parser(text)
    rules = parser.parse()
    if "root" not in rules:
        raise GrammarError("GBNF grammar has no 'root' rule", text=text)
    for rule in rules.values():
        for ref in rule.refs:
            if ref.name not in rules:
                raise GrammarError(f"undefined rule '{ref.name}' (referenced in '{rule.name}')",
                                   text=text, line=ref.line, column=ref.column)
    names = _lark_names(list(rules))
    emitter = _Emitter(names)
    out = ["// Translated from GBNF by structgen.grammar.gbnf; use with an Earley parser.",
           "", "start: root", ""]
    for name in ["root"] + [n for n in rules if n != "root"]:
        alts = [emitter.seq(seq) for seq in rules[name].body.seqs]
        head = f"{names[name]}: "
        out.append(head + alts[0])
        out.extend(" " * (len(head) - 2) + "| " + alt for alt in alts[1:])
    return "\n".join(line.rstrip() for line in out) + "\n"
