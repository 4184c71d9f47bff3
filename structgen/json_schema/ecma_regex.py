"""ECMA-262 regular expressions (JSON Schema ``pattern``) -> byte DFAs.

JSON Schema patterns are ECMA-262 regexes applied with *search* semantics (a
match anywhere in the string, unless anchored).  We parse the ECMA syntax
ourselves and emit an explicit Python-``re`` pattern for
:func:`structgen.automata.regex.regex_to_dfa`:

* every character class (``[...]``, ``\\d``, ``\\w``, ``\\s``, ``.``, ``\\p{..}``)
  becomes an explicit set of code-point ranges, so Python's and ECMA's class
  semantics never get mixed: ``\\d`` = ``[0-9]``, ``\\w`` = ``[A-Za-z0-9_]``,
  ``\\s`` = ECMA WhiteSpace + LineTerminator (incl. U+00A0, U+FEFF, U+2028...),
  ``.`` = any code point but ``\\n \\r \\u2028 \\u2029``, ``[^]`` = anything;
* matching is on code points (the ``u`` flag view); ``\\uD83D\\uDE00`` pairs are
  combined into one code point;
* ``^``/``$`` are start/end of the string (no multiline); an alternative that
  does not start with ``^`` gets ``.*`` in front, one that does not end with ``$``
  gets ``.*`` behind;
* lookarounds, backreferences and ``\\b``/``\\B`` raise :class:`Unsupported`
  (they are not regular, or not expressible on their own).
"""

from __future__ import annotations

import functools

from ..automata import charset
from ..automata.fsm import ByteDFA
from ..automata.regex import regex_to_dfa, trusted_regex_to_dfa
from ..errors import BudgetExceeded, RegexError, Unsupported

__all__ = ["pattern_dfa", "translate", "EcmaRegexError"]

MAX_CP = charset.MAX_CODEPOINT


class EcmaRegexError(RegexError):
    """An ECMA-262 pattern that does not parse."""


DIGIT = charset.ASCII_DIGIT
WORD = charset.ASCII_WORD
SPACE = charset.normalize([(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
               (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)])
DOT = charset.complement([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)])
_CLASS_ESC = {"d": DIGIT, "D": charset.complement(DIGIT), "w": WORD, "W": charset.complement(WORD),
              "s": SPACE, "S": charset.complement(SPACE)}
_CTRL = {"t": 9, "n": 10, "v": 11, "f": 12, "r": 13}

_GC_ALIASES = {
    "letter": "L", "cased_letter": "LC", "uppercase_letter": "Lu", "lowercase_letter": "Ll",
    "titlecase_letter": "Lt", "modifier_letter": "Lm", "other_letter": "Lo", "mark": "M",
    "nonspacing_mark": "Mn", "spacing_mark": "Mc", "enclosing_mark": "Me", "number": "N",
    "decimal_number": "Nd", "digit": "Nd", "letter_number": "Nl", "other_number": "No",
    "punctuation": "P", "punct": "P", "connector_punctuation": "Pc", "dash_punctuation": "Pd",
    "open_punctuation": "Ps", "close_punctuation": "Pe", "initial_punctuation": "Pi",
    "final_punctuation": "Pf", "other_punctuation": "Po", "symbol": "S", "math_symbol": "Sm",
    "currency_symbol": "Sc", "modifier_symbol": "Sk", "other_symbol": "So", "separator": "Z",
    "space_separator": "Zs", "line_separator": "Zl", "paragraph_separator": "Zp", "other": "C",
    "control": "Cc", "cntrl": "Cc", "format": "Cf", "surrogate": "Cs", "private_use": "Co",
    "unassigned": "Cn",
}


def _property_ranges(name: str, where: str) -> tuple:
    key = name
    if "=" in key:
        prop, _, val = key.partition("=")
        if prop not in ("General_Category", "gc"):
            raise Unsupported("pattern \\p{%s}" % name, "only General_Category properties are supported",
                              where=where)
        key = val
    table = charset.general_categories()
    if key in table:
        return table[key]
    alias = _GC_ALIASES.get(key.lower())
    if alias and alias in table:
        return table[alias]
    if key in ("Any",):
        return charset.ANY
    if key in ("ASCII",):
        return ((0, 0x7F),)
    raise Unsupported("pattern \\p{%s}" % name, "unknown or unsupported Unicode property", where=where)


def _minus_sentinels(a: int, b: int):
    if b < SENT_START or a > SENT_END:
        return [(a, b)]
    out = []
    if a < SENT_START:
        out.append((a, SENT_START - 1))
    if b > SENT_END:
        out.append((SENT_END + 1, b))
    return out


def _cp_text(cp: int) -> str:
    return "\\U%08x" % cp


def _class_text(ranges) -> str:
    ranges = charset.normalize(ranges)
    if not ranges:
        return "[^\\x00-\\U0010ffff]"  # the empty set
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _cp_text(ranges[0][0])
    parts = []
    for a, b in ranges:
        parts.append(_cp_text(a) if a == b else f"{_cp_text(a)}-{_cp_text(b)}")
    return "[" + "".join(parts) + "]"


#: noncharacters standing for "start of string" / "end of string" when anchors
#: appear in the middle of a pattern (e.g. ``(^a|b$)``)
SENT_START, SENT_END = 0xFDD0, 0xFDD1


class _Anchors(Exception):
    """An anchor in a position the plain translation cannot express."""


class _Parser:
    def __init__(self, src: str, where: str, sentinels: bool = False):
        self.s = src
        self.i = 0
        self.where = where
        self.ngroups = src.count("(")
        self.sentinels = sentinels

    def cls(self, ranges) -> str:
        if self.sentinels:
            ranges = charset.normalize([r for a, b in charset.normalize(ranges) for r in _minus_sentinels(a, b)])
        return _class_text(ranges)

    def err(self, msg: str):
        raise EcmaRegexError(f"invalid ECMA-262 pattern {self.s!r}: {msg} (offset {self.i})")

    def unsupported(self, construct: str, detail: str = ""):
        raise Unsupported(f"pattern {construct}", detail or f"in {self.s!r}", where=self.where)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    # ------------------------------------------------------------------ structure
    def top(self) -> list[tuple[bool, str, bool]]:
        """Top-level alternatives as (anchored_start, python_text, anchored_end).
        Lookaheads right after a leading '^' are collected in ``self.lookaheads``
        as (negative, pattern text, alternative index)."""
        alts = []
        self._alts_done = alts
        self.lookaheads = []
        while True:
            alts.append(self.alternative(top=True))
            if self.peek() == "|":
                self.i += 1
                continue
            if self.i < len(self.s):
                if self.peek() == ")":
                    self.err("unbalanced ')'")
                self.err("unexpected character")
            return alts

    def disjunction(self) -> str:
        alts = [self.alternative(top=False)[1]]
        while self.peek() == "|":
            self.i += 1
            alts.append(self.alternative(top=False)[1])
        return "|".join(alts)

    def _group_end(self, i: int) -> int:
        """Index of the ')' closing the group opened at ``i``."""
        depth = 0
        in_class = False
        while i < len(self.s):
            c = self.s[i]
            if c == "\\":
                i += 2
                continue
            if in_class:
                if c == "]":
                    in_class = False
            elif c == "[":
                in_class = True
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        self.err("missing ')'")

    def alternative(self, top: bool):
        parts: list[str] = []
        a_start = a_end = False
        self.lookaheads = getattr(self, "lookaheads", [])
        while self.i < len(self.s) and self.peek() not in "|)":
            c = self.peek()
            if (top and a_start and not parts and not self.sentinels
                    and (self.s.startswith("(?=", self.i) or self.s.startswith("(?!", self.i))):
                end = self._group_end(self.i)
                self.lookaheads.append((self.s[self.i + 2] == "!", self.s[self.i + 3:end], len(self._alts_done)))
                self.i = end + 1
                continue
            if c == "^":
                self.i += 1
                if self.sentinels:
                    parts.append(_cp_text(SENT_START))
                    continue
                if top and not parts:
                    a_start = True
                    continue
                raise _Anchors()
            if c == "$":
                self.i += 1
                if self.sentinels:
                    parts.append(_cp_text(SENT_END))
                    continue
                rest_empty = self.i >= len(self.s) or self.peek() == "|"
                while self.peek() == "$":
                    self.i += 1
                    rest_empty = self.i >= len(self.s) or self.peek() == "|"
                if top and rest_empty:
                    a_end = True
                    continue
                raise _Anchors()
            atom = self.atom()
            if atom is None:
                continue
            parts.append(atom + self.quantifier())
        return a_start, "".join(parts), a_end

    def quantifier(self) -> str:
        c = self.peek()
        q = ""
        if c in ("*", "+", "?"):
            self.i += 1
            q = c
        elif c == "{":
            j = self.i + 1
            k = j
            while k < len(self.s) and self.s[k].isdigit():
                k += 1
            if k == j:
                return ""  # literal '{' (Annex B)
            lo = self.s[j:k]
            hi = lo
            if k < len(self.s) and self.s[k] == ",":
                k += 1
                m = k
                while k < len(self.s) and self.s[k].isdigit():
                    k += 1
                hi = self.s[m:k]
            if k >= len(self.s) or self.s[k] != "}":
                return ""  # literal
            self.i = k + 1
            if hi and int(hi) < int(lo):
                self.err("numbers out of order in {} quantifier")
            q = "{%s,%s}" % (lo, hi) if hi != lo else "{%s}" % lo
        else:
            return ""
        if self.peek() == "?":
            self.i += 1  # lazy: same language
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self._is_quant_at(self.i)):
            self.err("nothing to repeat")
        return q

    def _is_quant_at(self, i: int) -> bool:
        j = i + 1
        k = j
        while k < len(self.s) and self.s[k].isdigit():
            k += 1
        if k == j:
            return False
        if k < len(self.s) and self.s[k] == ",":
            k += 1
            while k < len(self.s) and self.s[k].isdigit():
                k += 1
        return k < len(self.s) and self.s[k] == "}"

    def atom(self) -> str | None:
        c = self.peek()
        if c == "(":
            self.i += 1
            if self.s.startswith("?:", self.i):
                self.i += 2
            elif self.s.startswith("?=", self.i) or self.s.startswith("?!", self.i):
                self.unsupported("lookahead", f"lookaheads are not regular-expressible here ({self.s!r})")
            elif self.s.startswith("?<=", self.i) or self.s.startswith("?<!", self.i):
                self.unsupported("lookbehind", f"in {self.s!r}")
            elif self.s.startswith("?<", self.i):
                end = self.s.find(">", self.i)
                if end < 0:
                    self.err("unterminated group name")
                self.i = end + 1
            elif self.peek() == "?":
                self.err("invalid group")
            inner = self.disjunction()
            if self.peek() != ")":
                self.err("missing ')'")
            self.i += 1
            return "(?:" + inner + ")"
        if c in ("*", "+", "?"):
            self.err("nothing to repeat")
        if c == "{" and self._is_quant_at(self.i):
            self.err("nothing to repeat")
        if c == ".":
            self.i += 1
            return self.cls(DOT)
        if c == "[":
            return self.cls(self.char_class())
        if c == "\\":
            return self.escape()
        self.i += 1
        cp = ord(c)
        if 0xD800 <= cp <= 0xDBFF and 0xDC00 <= ord(self.peek() or "\0") <= 0xDFFF:
            cp = 0x10000 + ((cp - 0xD800) << 10) + (ord(self.peek()) - 0xDC00)
            self.i += 1
        return _cp_text(cp)

    # ------------------------------------------------------------------ escapes
    def _hex(self, n: int) -> int | None:
        t = self.s[self.i:self.i + n]
        if len(t) == n and all(ch in "0123456789abcdefABCDEF" for ch in t):
            self.i += n
            return int(t, 16)
        return None

    def _unicode_escape(self) -> int | None:
        """After '\\u'.  Returns a code point or None (then 'u' is literal)."""
        if self.peek() == "{":
            end = self.s.find("}", self.i)
            body = self.s[self.i + 1:end] if end > 0 else ""
            if body and all(ch in "0123456789abcdefABCDEF" for ch in body) and int(body, 16) <= MAX_CP:
                self.i = end + 1
                return int(body, 16)
            return None
        v = self._hex(4)
        if v is None:
            return None
        if 0xD800 <= v <= 0xDBFF and self.s.startswith("\\u", self.i):
            save = self.i
            self.i += 2
            lo = self._hex(4)
            if lo is not None and 0xDC00 <= lo <= 0xDFFF:
                return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
            self.i = save
        return v

    def escape_value(self, in_class: bool):
        """Parse after a backslash.  Returns ('cp', int) or ('set', ranges)."""
        self.i += 1
        c = self.peek()
        if not c:
            self.err("pattern ends with a backslash")
        self.i += 1
        if c in _CLASS_ESC:
            return "set", _CLASS_ESC[c]
        if c in _CTRL:
            return "cp", _CTRL[c]
        if c == "b":
            if in_class:
                return "cp", 8
            self.unsupported("word boundary \\b", f"in {self.s!r}")
        if c == "B":
            if in_class:
                return "cp", ord("B")
            self.unsupported("\\B", f"in {self.s!r}")
        if c == "c":
            x = self.peek()
            if x and x.isascii() and x.isalpha():
                self.i += 1
                return "cp", ord(x) % 32
            self.i -= 1
            return "cp", ord("\\")
        if c == "0" and not self.peek().isdigit():
            return "cp", 0
        if c.isdigit():
            if in_class:  # legacy octal inside classes
                j = self.i - 1
                k = j
                while k < len(self.s) and k < j + 3 and self.s[k] in "01234567":
                    k += 1
                if k > j:
                    self.i = k
                    return "cp", int(self.s[j:k], 8) & 0xFF
                return "cp", ord(c)
            self.unsupported("backreference", f"\\{c} in {self.s!r}")
        if c == "k" and self.peek() == "<":
            self.unsupported("backreference", f"\\k<...> in {self.s!r}")
        if c == "x":
            v = self._hex(2)
            return "cp", v if v is not None else ord("x")
        if c == "u":
            v = self._unicode_escape()
            return "cp", v if v is not None else ord("u")
        if c in ("p", "P") and self.peek() == "{":
            end = self.s.find("}", self.i)
            if end < 0:
                self.err("unterminated \\p{")
            name = self.s[self.i + 1:end]
            self.i = end + 1
            rs = _property_ranges(name, self.where)
            return "set", (rs if c == "p" else charset.complement(rs))
        return "cp", ord(c)  # identity escape

    def escape(self) -> str:
        kind, v = self.escape_value(in_class=False)
        return self.cls(v) if kind == "set" else _cp_text(v)

    def char_class(self) -> tuple:
        self.i += 1  # '['
        neg = False
        if self.peek() == "^":
            neg = True
            self.i += 1
        ranges: list = []
        first = True
        while True:
            c = self.peek()
            if not c:
                self.err("unterminated character class")
            if c == "]":
                self.i += 1
                break
            first = False
            kind, lo = self._class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                save = self.i
                self.i += 1
                kind2, hi = self._class_atom()
                if kind == "cp" and kind2 == "cp":
                    if hi < lo:
                        self.err("range out of order in character class")
                    ranges.append((lo, hi))
                    continue
                # Annex B: a class escape in a range makes '-' literal
                self.i = save
            if kind == "cp":
                ranges.append((lo, lo))
            else:
                ranges.extend(lo)
        del first
        return charset.complement(ranges) if neg else charset.normalize(ranges)

    def _class_atom(self):
        c = self.peek()
        if c == "\\":
            return self.escape_value(in_class=True)
        self.i += 1
        cp = ord(c)
        if 0xD800 <= cp <= 0xDBFF and 0xDC00 <= ord(self.peek() or "\0") <= 0xDFFF:
            cp = 0x10000 + ((cp - 0xD800) << 10) + (ord(self.peek()) - 0xDC00)
            self.i += 1
        return "cp", cp


def translate(pattern: str, *, where: str = "", search: bool = True) -> str:
    """Python-``re`` text whose fullmatch language is the set of strings the
    ECMA pattern matches (``search``: anywhere; else as a full match).  Patterns
    with anchors inside groups come back in *sentinel form*: the language of
    ``START + s + END`` for the strings ``s`` (see :func:`pattern_dfa`)."""
    kind, text, _ = _translation(pattern, search, where)
    if kind == "lookaheads":
        raise Unsupported("pattern lookahead", "only directly after a leading '^' (compiled by pattern_dfa)",
                          where=where)
    return text


_TRANSLATIONS: dict = {}


def _translation(pattern: str, search: bool, where: str) -> tuple:
    """The pattern parsed once (schemas repeat patterns; a long one costs ~0.3 ms a
    parse): ``("plain", text, None)``, ``("sentinel", text, None)`` (see
    :func:`translate`) or ``("lookaheads", alternatives, lookaheads)`` (see
    :func:`_with_lookaheads`).  Kept per (pattern, search); a pattern that does not
    parse raises, naming ``where``, every time."""
    key = (pattern, search)
    hit = _TRANSLATIONS.get(key)
    if hit is None:
        hit = _translate(pattern, where, search)
        if len(_TRANSLATIONS) > 4096:
            _TRANSLATIONS.clear()
        _TRANSLATIONS[key] = hit
    return hit


def _translate(pattern: str, where: str, search: bool) -> tuple:
    try:
        p = _Parser(pattern, where)
        alts = p.top()
    except _Anchors:
        text = _Parser(pattern, where, sentinels=True).top()[0][1]
        return "sentinel", "(?s:.*)(?:" + text + ")(?s:.*)", None
    if p.lookaheads:
        return "lookaheads", alts, tuple(p.lookaheads)
    # alternatives with the same unanchored ends share them (.*(?:a|b).* rather than
    # .*a.*|.*b.*: the same language, and every .* copy would be alive at once while
    # determinising, each with its own UTF-8 decoding states)
    groups: dict[tuple, list] = {}
    for a_start, text, a_end in alts:
        pre = "" if (a_start or not search) else "(?s:.*)"
        post = "" if (a_end or not search) else "(?s:.*)"
        groups.setdefault((pre, post), []).append(text)
    out = [pre + "(?:" + "|".join(texts) + ")" + post for (pre, post), texts in groups.items()]
    return "plain", out[0] if len(out) == 1 else "(?:" + "|".join(out) + ")", None


@functools.lru_cache(maxsize=2048)
def _pattern_dfa(pattern: str, search: bool, max_states: int) -> ByteDFA:
    """The DFA of a pattern :func:`_translation` parsed already (plain or sentinel form)."""
    kind, text, _ = _translation(pattern, search, "")
    if kind == "plain":
        return trusted_regex_to_dfa(text, max_states=max_states)
    import numpy as np

    from ..automata import ops
    d = trusted_regex_to_dfa(text, max_states=max_states)
    q0 = d.walk(chr(SENT_START).encode())
    end = chr(SENT_END).encode()
    acc = np.array([d.walk(end, q) >= 0 and bool(d.accepting[d.walk(end, q)]) for q in range(d.num_states)])
    shifted = ByteDFA(d.trans, d.classes, acc, max(q0, 0))
    plain = regex_to_dfa("[^\ufdd0\ufdd1]*")
    if q0 < 0:
        return ops.empty_dfa()
    return ops.intersect(shifted, plain)


def _with_lookaheads(alts, lookaheads, where: str, search: bool, max_states: int):
    """``^(?=X)(?!Y)rest`` alternatives: rest intersected with / minus ``X.*``."""
    from ..automata import ops

    out = None
    for k, (a_start, text, a_end) in enumerate(alts):
        pre = "" if (a_start or not search) else "(?s:.*)"
        post = "" if (a_end or not search) else "(?s:.*)"
        d = trusted_regex_to_dfa(pre + "(?:" + text + ")" + post, max_states=max_states)
        for neg, inner, idx in lookaheads:
            if idx != k:
                continue
            q = _Parser(inner, where)
            la_alts = q.top()
            if q.lookaheads:
                raise Unsupported("pattern lookahead", "nested lookaheads", where=where)
            la_text = "|".join("(?:" + t + ")" + ("" if e else "(?s:.*)") for _, t, e in la_alts)
            la = trusted_regex_to_dfa(la_text, max_states=max_states)
            d = ops.difference(d, la) if neg else ops.intersect(d, la)
        out = d if out is None else ops.union(out, d)
    return out


def pattern_dfa(pattern: str, *, where: str = "", search: bool = True, max_states: int = 20_000) -> ByteDFA:
    """Body DFA (UTF-8 bytes of the decoded string) of an ECMA-262 ``pattern``."""
    kind, alts, lookaheads = _translation(pattern, search, where)  # raises with the pointer if unsupported
    if kind == "lookaheads":
        return _with_lookaheads(alts, lookaheads, where, search, max_states)
    try:
        return _pattern_dfa(pattern, search, max_states)
    except BudgetExceeded as exc:
        raise BudgetExceeded(f"pattern {pattern!r} at {where or '#'}: {exc}") from None
    except Unsupported as exc:
        raise Unsupported(f"pattern ({exc.construct})", f"{pattern!r}", where=where) from None
