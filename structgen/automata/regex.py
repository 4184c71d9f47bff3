"""Python ``re`` regexes lowered to byte-level DFAs with exact UTF-8.

:func:`regex_to_dfa` compiles a pattern to a :class:`ByteDFA` over the UTF-8
bytes of the strings it matches, with *fullmatch* semantics (the whole input
must match).  Pipeline:

1. ``re.compile`` validates the syntax, so invalid patterns are reported with
   Python's own message and position (:class:`RegexError`).
2. A small scanner rewrites the text into the subset interegular parses
   (``\\uXXXX``/``\\N{..}``/octal escapes, literal ``{``, ``[]..]``, verbose
   mode, named groups, comments), rejects constructs that have no exact DFA
   (lookarounds, backreferences, conditionals, word boundaries, atomic groups,
   possessive quantifiers; :class:`Unsupported`), drops ``^``/``\\A`` that can
   only match at the start and ``$``/``\\Z`` that can only match at the end
   (both are no-ops under fullmatch; anywhere else they are unsupported), and
   bounds counted repeats (:class:`BudgetExceeded`).
3. It is parsed into interegular's AST (by ``_ScannedParser``, which reads exactly the
   scanner's output language and gives the AST ``interegular.parse_pattern`` gives,
   in a third to a half of the time; other text goes to interegular); we walk it ourselves (instead of
   ``Pattern.to_fsm``) and build a byte NFA: every character set becomes the
   well-formed UTF-8 byte-range sequences of its code points (the classic
   utf8-ranges split), so overlong forms, surrogates (U+D800..U+DFFF) and code
   points above U+10FFFF can never be produced.  Suffix chains into the same
   target are shared.
4. Subset construction over byte classes (bounded by ``max_states``), then trim,
   Hopcroft minimisation, coarsest byte classes, BFS numbering (``ops``).

Semantics, decided and documented:

* ``\\d \\w \\s`` (and ``\\D \\W \\S``) are **ASCII**, as interegular parses them:
  ``[0-9]``, ``[a-zA-Z0-9_]``, ``[ \\t\\n\\r\\f\\v]`` -- i.e. Python's behaviour with
  ``re.ASCII``; Python's default would include other Unicode digits/letters.
* ``.`` is any code point except ``\\n`` (any code point with ``re.S``/``(?s)``).
  A negated class ``[^...]`` is any code point not listed (``\\n`` included).
* ``(?i)``/``re.I`` follows Python's Unicode case-insensitive matching (simple
  lowercase mapping plus ``re``'s extra equivalences such as ``s``/``ſ``,
  ``k``/``K``); with ``re.A`` (global flag or ``(?a)``) only ASCII letters fold.
  A scoped ``(?a:...)`` is accepted but does not restrict folding.
* Lazy quantifiers (``*?``...) are treated as greedy: under fullmatch the set of
  matched strings is the same.
* ``re.M`` is accepted; it has no effect because ``^``/``$`` are only allowed where
  they are no-ops.  ``(?x)``/``re.X`` (also scoped ``(?x:...)``) is handled by the
  scanner.
* Character classes ``[...]`` and ``\\d``-style escapes are resolved by the scanner
  (Python's rules: ``[]a]``, ``[a-]``, ``[\\W\\D]`` ...) and reach interegular as
  one private-use placeholder character each; interegular parses the structure.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from array import array

import numpy as np

from ..errors import BudgetExceeded, ConfigurationError, RegexError, Unsupported
from . import charset, ops
from .fsm import ByteDFA
from .kernels import get_kernels

try:  # interegular is a hard dependency, but keep import errors readable
    import interegular
    from interegular import patterns as _ip
except ImportError as exc:  # pragma: no cover
    raise ImportError("structgen.automata.regex needs the 'interegular' package") from exc

__all__ = [
    "DEFAULT_MAX_STATES",
    "MAX_REPEAT",
    "literal_dfa",
    "regex_to_dfa",
    "trusted_regex_to_dfa",
]

DEFAULT_MAX_STATES = 100_000
#: Largest count allowed in a counted repeat ``{m,n}`` (checked before parsing).
MAX_REPEAT = 10_000
_ALLOWED_FLAGS = int(re.I | re.M | re.S | re.X | re.A | re.U)

_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_OCT = frozenset("01234567")
_VERBOSE_WS = frozenset(" \t\n\r\v\f")
_REPEAT_RE = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")


# --------------------------------------------------------------------------- public API


def regex_to_dfa(pattern: str, *, max_states: int = DEFAULT_MAX_STATES, flags: int = 0,
                 max_repeat: int = MAX_REPEAT) -> ByteDFA:
    """Minimal byte-level DFA matching exactly the UTF-8 encodings of the strings
    ``s`` with ``re.fullmatch(pattern, s, flags)`` (modulo the ASCII ``\\d\\w\\s``
    convention documented in the module docstring).

    Raises :class:`RegexError` (invalid syntax, with line/column),
    :class:`Unsupported` (valid but not regular / not handled) and
    :class:`BudgetExceeded` (more than ``max_states`` DFA states, a counted repeat
    above ``max_repeat``, or an NFA too large to build).  Results are cached; the
    returned arrays are read-only."""
    if not isinstance(pattern, str):
        raise ConfigurationError(f"pattern must be str, not {type(pattern).__name__}")
    try:
        iflags = int(flags)
    except (TypeError, ValueError):
        raise ConfigurationError(f"flags must be an int / re.RegexFlag, got {flags!r}") from None
    if iflags & ~_ALLOWED_FLAGS:
        raise ConfigurationError(f"unsupported regex flags {re.RegexFlag(iflags & ~_ALLOWED_FLAGS)!r}; "
                                 "allowed: re.I, re.M, re.S, re.X, re.A, re.U")
    if int(max_states) < 1 or int(max_repeat) < 0:
        raise ConfigurationError("max_states must be >= 1 and max_repeat >= 0")
    return _regex_to_dfa_cached(pattern, int(max_states), iflags, int(max_repeat))


def literal_dfa(data: bytes) -> ByteDFA:
    """DFA accepting exactly the byte string ``data``, in normal form.  A chain is
    minimal and trimmed, and its normal form is the chain itself (states in order, a
    class per byte of ``data`` and one for every other byte, numbered by smallest
    byte), so it is written directly: 4-7 us for a key instead of 8-12 (the key chains
    built before) or 16-36 (the general construction); schemas have thousands of keys.
    With a NUL byte the other bytes' class is not class 0: built generally."""
    data = bytes(data)
    n = len(data)
    if 0 in data:
        trans = np.full((n + 1, 256), -1, np.int64)
        trans[np.arange(n), np.frombuffer(data, np.uint8)] = np.arange(1, n + 1)
        acc = np.zeros(n + 1, bool)
        acc[n] = True
        return ops.from_table(trans, acc, 0)
    used = sorted(set(data))
    width = len(used) + 1
    col = bytearray(256)
    for i, b in enumerate(used):
        col[b] = i + 1
    flat = array("i", [-1]) * ((n + 1) * width)
    for i, c in enumerate(data.translate(col)):
        flat[i * width + c] = i + 1
    trans = np.frombuffer(flat, np.int32).reshape(n + 1, width)
    trans.setflags(write=False)
    accepting = _CHAIN_ACCEPTING.get(n)
    if accepting is None:
        accepting = np.frombuffer(bytes(n) + b"\x01", np.bool_)  # read-only
        if n <= 256:
            _CHAIN_ACCEPTING[n] = accepting
    return ByteDFA(trans=trans, classes=np.frombuffer(bytes(col), np.uint8), accepting=accepting, start=0)


_CHAIN_ACCEPTING: dict[int, np.ndarray] = {}


# --------------------------------------------------------------------------- code-point sets

_Ranges = charset.Ranges


@functools.lru_cache(maxsize=4096)
def _chars_to_ranges(chars: frozenset) -> _Ranges:
    for c in chars:
        if len(c) != 1:  # interegular only builds single characters; be defensive
            raise Unsupported("character set", f"multi-character member {c!r}")
    return charset.from_codepoints(ord(c) for c in chars)


# --------------------------------------------------------------------------- text scanner

# ASCII categories (see module docstring): \d \w \s
_CAT_S: _Ranges = ((0x09, 0x0D), (0x20, 0x20))
_CATEGORIES = {
    "d": charset.ASCII_DIGIT, "D": charset.complement(charset.ASCII_DIGIT),
    "w": charset.ASCII_WORD, "W": charset.complement(charset.ASCII_WORD),
    "s": _CAT_S, "S": charset.complement(_CAT_S),
}
_CONTROL_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
#: Character classes reach interegular as one placeholder literal each, taken from
#: Supplementary Private Use Area-A; the set itself is resolved by us (exact
#: Python semantics, no giant frozensets).
_PLACEHOLDER_BASE = 0xF0000


class _Retry(Exception):
    """A placeholder collided with a literal of the pattern; rescan avoiding ``cp``."""

    def __init__(self, cp: int):
        super().__init__(cp)
        self.cp = cp


class _Frame:
    __slots__ = ("verbose", "start_ok", "start_anchor", "end_anchor", "pos")

    def __init__(self, verbose: bool, start_ok: bool, pos: int):
        self.verbose, self.start_ok, self.pos = verbose, start_ok, pos
        self.start_anchor = False
        self.end_anchor = False


class _Scanner:
    """Rewrite a Python-valid pattern into the small dialect we feed interegular.

    The output contains only: ASCII letters/digits, ``\\xHH`` escapes, literal
    non-ASCII characters, placeholders for character sets, ``.``, ``|``, groups
    ``(`` ``(?:`` ``(?flags-flags:`` ``)`` and quantifiers.  ``classes`` maps each
    placeholder code point to ``(literal ranges, category ranges, negated)``."""

    def __init__(self, text: str, flags: int, max_repeat: int, reserved: set[int]):
        self.p = text
        self.n = len(text)
        self.i = 0
        self.out: list[str] = []
        self.max_repeat = max_repeat
        self.global_flags = flags
        self.verbose = bool(flags & re.X)
        self.stack: list[_Frame] = []
        self.top = _Frame(self.verbose, True, 0)
        self.at_start = True  # current position can only be the string start
        self.pending_end: int | None = None  # position of a '$' not yet followed by anything
        self.reserved = reserved
        self.emitted: set[int] = set()
        self.classes: dict[int, tuple] = {}
        self.class_memo: dict[tuple, int] = {}
        self.next_ph = _PLACEHOLDER_BASE

    # -- helpers ---------------------------------------------------------------------
    def where(self, pos: int) -> str:
        line = self.p.count("\n", 0, pos) + 1
        col = pos - (self.p.rfind("\n", 0, pos) + 1) + 1
        return f"column {col}" if line == 1 else f"line {line}, column {col}"

    def unsupported(self, construct: str, detail: str, pos: int):
        raise Unsupported(construct, detail, where=self.where(pos))

    @property
    def frame(self) -> _Frame:
        return self.stack[-1] if self.stack else self.top

    def char(self, cp: int) -> str:
        """A code point written so interegular reads it as that literal character."""
        if cp in self.classes:
            raise _Retry(cp)
        ch = chr(cp)
        if ch in _ASCII_ALNUM:
            return ch
        if cp < 0x100:
            return f"\\x{cp:02x}"
        self.emitted.add(cp)
        return ch

    def placeholder(self, lits, cats, negated: bool) -> str:
        spec = (charset.normalize(lits), charset.normalize(cats), negated)
        cp = self.class_memo.get(spec)
        if cp is None:
            cp = self.next_ph
            while cp in self.reserved or cp in self.emitted:
                cp += 1
            self.next_ph = cp + 1
            self.class_memo[spec] = cp
            self.classes[cp] = spec
        return chr(cp)

    def consume(self) -> None:
        if self.pending_end is not None:
            self.unsupported("anchor", "'$' / '\\Z' followed by more pattern (only allowed at the end)",
                             self.pending_end)
        self.at_start = False

    def skip_verbose(self, j: int) -> int:
        while j < self.n:
            c = self.p[j]
            if c in _VERBOSE_WS:
                j += 1
            elif c == "#":
                k = self.p.find("\n", j)
                j = self.n if k < 0 else k + 1
            else:
                break
        return j

    def quantifier_max(self, j: int):
        """If a quantifier starts at ``j``: its max count (None = unbounded); else -1."""
        if self.verbose:
            j = self.skip_verbose(j)
        if j >= self.n:
            return -1
        c = self.p[j]
        if c in "*+":
            return None
        if c == "?":
            return 1
        if c == "{":
            m = _REPEAT_RE.match(self.p, j)
            if m and m.group(0) != "{}":
                lo, comma, hi = m.groups()
                if comma is None:
                    return int(lo or 0)
                return int(hi) if hi else None
        return -1

    def decode_escape(self, j: int, in_class: bool):
        """Escape at ``p[j] == '\\\\'`` -> ``(kind, value, end)``.

        kind: ``"lit"`` (value = code point), ``"cat"`` (value = ranges), or one of
        ``"backref"``, ``"boundary"``, ``"start"``, ``"end"`` (outside classes only)."""
        p = self.p
        c = p[j + 1]
        if c == "x":
            return "lit", int(p[j + 2:j + 4], 16), j + 4
        if c == "u":
            return "lit", int(p[j + 2:j + 6], 16), j + 6
        if c == "U":
            return "lit", int(p[j + 2:j + 10], 16), j + 10
        if c == "N":
            k = p.index("}", j + 3)
            return "lit", ord(unicodedata.lookup(p[j + 3:k])), k + 1
        if c in _OCT and (c == "0" or in_class):
            k = j + 2  # up to two more octal digits
            while k < min(j + 4, self.n) and p[k] in _OCT:
                k += 1
            return "lit", int(p[j + 1:k], 8), k
        if c in "123456789":
            if c in _OCT and j + 3 < self.n and p[j + 2] in _OCT and p[j + 3] in _OCT:
                return "lit", int(p[j + 1:j + 4], 8), j + 4
            return "backref", None, j + 2
        if c in _CATEGORIES:
            return "cat", _CATEGORIES[c], j + 2
        if c in _CONTROL_ESCAPES:
            return "lit", _CONTROL_ESCAPES[c], j + 2
        if c == "b":
            return ("lit", 8, j + 2) if in_class else ("boundary", None, j + 2)
        if c == "B":
            return "boundary", None, j + 2
        if c == "A":
            return "start", None, j + 2
        if c == "Z":
            return "end", None, j + 2
        return "lit", ord(c), j + 2  # escaped punctuation / whitespace / non-ASCII

    # -- main loop -------------------------------------------------------------------
    def run(self) -> str:
        p, n = self.p, self.n
        while self.i < n:
            i = self.i
            c = p[i]
            if self.verbose and (c in _VERBOSE_WS or c == "#"):
                self.i = self.skip_verbose(i)
                continue
            if c == "\\":
                self.escape(i)
            elif c == "[":
                self.char_class(i)
            elif c == "(":
                self.open_group(i)
            elif c == ")":
                self.close_group(i)
            elif c == "|":
                fr = self.frame
                if self.pending_end is not None:
                    fr.end_anchor = True
                    self.pending_end = None
                self.at_start = fr.start_ok
                self.out.append("|")
                self.i = i + 1
            elif c in "*+?":
                self.quantifier(i, i + 1, c)
            elif c == "{":
                m = _REPEAT_RE.match(p, i)
                if m and m.group(0) != "{}":
                    lo, comma, hi = m.groups()
                    lo_n = int(lo) if lo else 0
                    hi_n = (int(hi) if hi else None) if comma else lo_n
                    for v in (lo_n, hi_n):
                        if v is not None and v > self.max_repeat:
                            raise BudgetExceeded(
                                f"counted repeat {m.group(0)} at {self.where(i)} exceeds "
                                f"max_repeat={self.max_repeat}")
                    text = f"{{{lo_n}}}" if not comma else f"{{{lo_n},{'' if hi_n is None else hi_n}}}"
                    self.quantifier(i, m.end(), text)
                else:  # Python reads a '{' that does not start a valid repeat literally
                    self.consume()
                    self.out.append(self.char(ord("{")))
                    self.i = i + 1
            elif c == "^":
                self.start_anchor(i, "^")
                self.i = i + 1
            elif c == "$":
                if self.pending_end is None:
                    self.pending_end = i
                self.i = i + 1
            elif c == ".":
                self.consume()
                self.out.append(".")
                self.i = i + 1
            else:
                self.consume()
                self.out.append(self.char(ord(c)))
                self.i = i + 1
        return "".join(self.out)

    def start_anchor(self, i: int, text: str) -> None:
        if not self.at_start:
            self.unsupported("anchor", f"'{text}' is only supported at the start of the pattern", i)
        self.frame.start_anchor = True

    def quantifier(self, i: int, end: int, text: str) -> None:
        self.out.append(text)
        j = end
        if j < self.n and self.p[j] == "?":  # lazy: same language under fullmatch
            self.out.append("?")
            j += 1
        elif j < self.n and self.p[j] == "+":
            self.unsupported("possessive quantifier", "it changes which strings match", i)
        self.i = j

    def escape(self, i: int) -> None:
        kind, val, end = self.decode_escape(i, False)
        if kind == "start":
            self.start_anchor(i, "\\A")
        elif kind == "end":
            if self.pending_end is None:
                self.pending_end = i
        elif kind == "boundary":
            self.unsupported("word boundary", f"'{self.p[i:end]}'", i)
        elif kind == "backref":
            self.unsupported("backreference", f"'{self.p[i:i + 3]}'", i)
        elif kind == "cat":
            self.consume()
            self.out.append(self.placeholder((), val, False))
        else:
            self.consume()
            self.out.append(self.char(val))
        self.i = end

    def class_item(self, j: int):
        if self.p[j] == "\\":
            kind, val, end = self.decode_escape(j, True)
            return kind, val, end
        return "lit", ord(self.p[j]), j + 1

    def char_class(self, i: int) -> None:
        p = self.p
        self.consume()
        j = i + 1
        negated = p[j] == "^"
        if negated:
            j += 1
        lits: list[tuple[int, int]] = []
        cats: list[tuple[int, int]] = []
        first = True
        while True:
            if p[j] == "]" and not first:
                j += 1
                break
            first = False
            kind, val, j = self.class_item(j)
            if p[j] == "-":
                if p[j + 1] == "]":  # trailing '-' is literal
                    (cats.extend(val) if kind == "cat" else lits.append((val, val)))
                    lits.append((0x2D, 0x2D))
                    j += 2
                    break
                kind2, val2, j = self.class_item(j + 1)
                if kind != "lit" or kind2 != "lit":  # pragma: no cover - re.compile rejects it
                    self.unsupported("character range", "category as range endpoint", i)
                lits.append((val, val2))
            elif kind == "cat":
                cats.extend(val)
            else:
                lits.append((val, val))
        self.out.append(self.placeholder(lits, cats, negated))
        self.i = j

    def open_group(self, i: int) -> None:
        p = self.p
        if p.startswith("(?", i):
            c = p[i + 2]
            if c in "=!":
                self.unsupported("lookahead", f"'(?{c}...)'", i)
            if c == "<" and p[i + 3] in "=!":
                self.unsupported("lookbehind", f"'(?<{p[i + 3]}...)'", i)
            if c == "(":
                self.unsupported("conditional", "'(?(id)yes|no)'", i)
            if c == ">":
                self.unsupported("atomic group", "'(?>...)'", i)
            if c == "P" and p[i + 3] == "=":
                self.unsupported("backreference", "'(?P=name)'", i)
            if c == "#":  # comment: ends at the first ')'
                self.i = p.index(")", i) + 1
                return
            if c == ":":
                return self.push("(?:", i, i + 3, self.verbose)
            if c == "P" or c == "<":  # (?P<name>...) / (?<name>...)
                return self.push("(?:", i, p.index(">", i) + 1, self.verbose)
            # inline flags
            j = i + 2
            while p[j] in "aiLmsux":
                j += 1
            added = p[i + 2:j]
            removed = ""
            if p[j] == "-":
                k = j + 1
                while p[k] in "imsx":
                    k += 1
                removed = p[j + 1:k]
                j = k
            if p[j] == ")":  # global flags (re only accepts them at the start)
                for f in added:
                    self.global_flags |= int({"a": re.A, "i": re.I, "L": 0, "m": re.M, "s": re.S,
                                              "u": re.U, "x": re.X}[f])
                if "x" in added:
                    self.verbose = True
                    self.top.verbose = True
                self.i = j + 1
                return
            verbose = (self.verbose or "x" in added) and "x" not in removed
            add = "".join(f for f in added if f in "ims")
            rem = "".join(f for f in removed if f in "ims")
            return self.push(f"(?{add}{'-' + rem if rem else ''}:", i, j + 1, verbose)
        self.push("(", i, i + 1, self.verbose)

    def push(self, text: str, i: int, end: int, verbose: bool) -> None:
        if self.pending_end is not None:
            self.consume()  # raises: a group after '$'
        self.stack.append(_Frame(self.verbose, self.at_start, i))
        self.verbose = verbose
        self.out.append(text)
        self.i = end

    def close_group(self, i: int) -> None:
        fr = self.stack.pop()
        if self.pending_end is not None:
            fr.end_anchor = True
        self.verbose = fr.verbose
        self.out.append(")")
        self.i = i + 1
        qmax = self.quantifier_max(i + 1)
        repeated = qmax is None or qmax > 1
        if fr.start_anchor:
            if repeated:
                self.unsupported("anchor", "'^' inside a repeated group", fr.pos)
            self.frame.start_anchor = True
        self.at_start = False
        self.pending_end = None
        if fr.end_anchor:
            if repeated:
                self.unsupported("anchor", "'$' inside a repeated group", fr.pos)
            self.pending_end = fr.pos


class _NotScanned(Exception):
    """Text the scanner does not write: parsed by interegular instead."""


_SCANNED_FLAGS = frozenset("aiLmsux")


class _ScannedParser:
    """interegular's AST of the scanner's output, parsed directly (interegular's own
    parser, a backtracking combinator parser, was the largest part of a first-time
    pattern).  The scanner writes a small language: literals (ASCII letters and
    digits, ``\\xHH``, code points from U+0100 on, class placeholders among them),
    ``.``, ``|``, groups ``(`` ``(?:`` ``(?flags-flags:`` ``)``, and the quantifiers
    ``* + ? {n} {n,} {n,m}``, each maybe lazy.  The result equals what
    ``interegular.parse_pattern`` returns for such text (the tests compare them);
    anything else raises :class:`_NotScanned` and goes to interegular."""

    def __init__(self, text: str):
        self.t, self.i, self.n = text, 0, len(text)

    def parse(self):
        p = self.pattern()
        if self.i != self.n:
            raise _NotScanned
        return p.simplify()  # as interegular.parse_pattern does (unwraps single nested groups)

    def pattern(self):
        options = [self.conc()]
        while self.i < self.n and self.t[self.i] == "|":
            self.i += 1
            options.append(self.conc())
        return _ip.Pattern(tuple(options))

    def conc(self):
        parts = []
        t, n = self.t, self.n
        while self.i < n and t[self.i] not in "|)":
            parts.append(self.obj())
        return _ip._Concatenation(tuple(parts))

    def obj(self):
        t, i = self.t, self.i
        c = t[i]
        if c == "(":
            if t.startswith("(?", i):
                j = i + 2
                k = j
                while k < self.n and t[k] in _SCANNED_FLAGS:
                    k += 1
                added, removed = t[j:k], ""
                if k < self.n and t[k] == "-":
                    m = k + 1
                    while m < self.n and t[m] in _SCANNED_FLAGS:
                        m += 1
                    removed, k = t[k + 1:m], m
                    if not removed:
                        raise _NotScanned
                if k >= self.n or t[k] != ":":
                    raise _NotScanned
                self.i = k + 1
                p = self.pattern()
                if added or removed:
                    p = p.with_flags(_ip._get_flags(added), _ip._get_flags(removed))
            else:
                self.i = i + 1
                p = self.pattern()
            if self.i >= self.n or t[self.i] != ")":
                raise _NotScanned
            self.i += 1
            return self.repetition(p)
        if c == "\\":
            if t[i + 1:i + 2] != "x" or len(t) < i + 4:
                raise _NotScanned
            node = _ip._CharGroup(frozenset({chr(int(t[i + 2:i + 4], 16))}), False)
            self.i = i + 4
        elif c == ".":
            node = _ip._DOT
            self.i = i + 1
        elif c in _ASCII_ALNUM or ord(c) >= 0x100:
            node = _ip._CharGroup(frozenset({c}), False)
            self.i = i + 1
        else:
            raise _NotScanned
        return self.repetition(self.repetition(node))  # interegular's atom and obj both read one

    def repetition(self, base):
        t, i = self.t, self.i
        if i >= self.n:
            return base
        c = t[i]
        if c == "*":
            lo, hi, i = 0, None, i + 1
        elif c == "+":
            lo, hi, i = 1, None, i + 1
        elif c == "?":
            lo, hi, i = 0, 1, i + 1
        elif c == "{":
            m = _REPEAT_RE.match(t, i)  # the scanner wrote it: ASCII digits
            if m is None:
                raise _NotScanned
            lo = int(m.group(1) or 0)
            hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            i = m.end()
        else:
            return base
        if i < self.n and t[i] == "?":  # lazy
            i += 1
        self.i = i
        return _ip._Repeated(base, lo, hi)


def _parse_scanned(text: str):
    try:
        return _ScannedParser(text).parse()
    except _NotScanned:
        return interegular.parse_pattern(text)


def _scan(pattern: str, flags: int, max_repeat: int) -> _Scanner:
    reserved = {ord(c) for c in pattern if ord(c) >= _PLACEHOLDER_BASE}
    for _ in range(64):
        sc = _Scanner(pattern, flags, max_repeat, reserved)
        try:
            sc.text = sc.run()
            return sc
        except _Retry as r:
            reserved.add(r.cp)
    raise Unsupported("regex construct", "too many private-use characters in the pattern")  # pragma: no cover


# --------------------------------------------------------------------------- NFA construction


class _NFA:
    """Byte NFA: ``edges[q]`` = [(byte_lo, byte_hi, target)], ``eps[q]`` = [target]."""

    def __init__(self, max_nodes: int, max_repeat: int, ascii_fold: bool, classes: dict[int, tuple]):
        self.edges: list[list[tuple[int, int, int]]] = []
        self.eps: list[list[int]] = []
        self.memo: dict = {}
        self.max_nodes = max_nodes
        self.max_repeat = max_repeat
        self.ascii_fold = ascii_fold
        self.classes = classes

    def new(self) -> int:
        q = len(self.edges)
        if q >= self.max_nodes:
            raise BudgetExceeded(f"regex NFA exceeds {self.max_nodes} states "
                                 "(raise max_states, or reduce counted repeats)")
        self.edges.append([])
        self.eps.append([])
        return q

    def add_ranges(self, src: int, dst: int, ranges: _Ranges) -> None:
        for seq in charset.utf8_sequences(ranges):
            nxt = dst
            for k in range(len(seq) - 1, 0, -1):
                key = (dst, seq[k:])
                node = self.memo.get(key)
                if node is None:
                    node = self.new()
                    self.edges[node].append((seq[k][0], seq[k][1], nxt))
                    self.memo[key] = node
                nxt = node
            self.edges[src].append((seq[0][0], seq[0][1], nxt))

    # -- AST walk ----------------------------------------------------------------------
    def charset(self, node, flags) -> _Ranges:
        icase = bool(flags & _ip.REFlags.CASE_INSENSITIVE)
        if not node.negated and len(node.chars) == 1:
            spec = self.classes.get(ord(next(iter(node.chars))))
            if spec is not None:
                return _class_ranges(spec, icase, self.ascii_fold)
        return _charset_ranges(node.chars, node.negated, icase, self.ascii_fold)

    def build(self, node, src: int, flags) -> int:
        if isinstance(node, _ip.Pattern):
            flags = _ip._combine_flags(flags, node.added_flags, node.removed_flags)
            if len(node.options) == 1:
                return self.build(node.options[0], src, flags)
            end = self.new()
            for opt in node.options:
                self.eps[self.build(opt, src, flags)].append(end)
            return end
        if isinstance(node, _ip._Concatenation):
            cur = src
            for part in node.parts:
                cur = self.build(part, cur, flags)
            return cur
        if isinstance(node, _ip._Repeated):
            lo, hi = node.min, node.max
            for v in (lo, hi):
                if v is not None and v > self.max_repeat:
                    raise BudgetExceeded(f"counted repeat {{{lo},{hi}}} exceeds max_repeat={self.max_repeat}")
            if hi is not None and hi < lo:  # pragma: no cover - re.compile rejects it first
                raise RegexError("min repeat greater than max repeat")
            cur = src
            for _ in range(lo):
                cur = self.build(node.base, cur, flags)
            if hi is None:
                head = self.new()
                self.eps[cur].append(head)
                self.eps[self.build(node.base, head, flags)].append(head)
                return head
            if hi == lo:
                return cur
            end = self.new()
            for _ in range(hi - lo):
                self.eps[cur].append(end)
                cur = self.build(node.base, cur, flags)
            self.eps[cur].append(end)
            return end
        if isinstance(node, _ip._CharGroup):
            dst = self.new()
            self.add_ranges(src, dst, self.charset(node, flags))
            return dst
        if node is _ip._DOT or type(node).__name__ == "__DotCls":
            dst = self.new()
            dotall = bool(flags & _ip.REFlags.SINGLE_LINE)
            self.add_ranges(src, dst, charset.ANY if dotall else _DOT_RANGES)
            return dst
        if node is _ip._EMPTY or type(node).__name__ == "__EmptyCls":
            return src
        if isinstance(node, _ip._NonCapturing):  # pragma: no cover - scanner rejects first
            raise Unsupported("lookbehind" if node.backwards else "lookahead")
        raise Unsupported("regex construct", f"unknown interegular node {type(node).__name__}")


_DOT_RANGES: _Ranges = charset.complement(((0x0A, 0x0A),))


@functools.lru_cache(maxsize=4096)
def _class_ranges(spec: tuple, icase: bool, ascii_fold: bool) -> _Ranges:
    """Ranges of a scanned class: literals and ranges fold under IGNORECASE, the
    ASCII categories do not (as in Python); negation applies last."""
    lits, cats, negated = spec
    if icase:
        lits = charset.case_fold(lits, ascii_fold)
    ranges = charset.normalize(lits + cats)
    return charset.complement(ranges) if negated else ranges


@functools.lru_cache(maxsize=4096)
def _charset_ranges(chars: frozenset, negated: bool, icase: bool, ascii_fold: bool) -> _Ranges:
    ranges = _chars_to_ranges(chars)
    if icase:
        ranges = charset.case_fold(ranges, ascii_fold)
    if negated:
        ranges = charset.complement(ranges)
    return ranges


def _estimate(node, limit: int, max_repeat: int) -> int:
    """Rough NFA size of ``node`` (leaves x repeat counts), stopping once over ``limit``."""
    if isinstance(node, _ip.Pattern):
        total = 0
        for o in node.options:
            total += _estimate(o, limit, max_repeat) + 1
            if total > limit:
                break
        return total
    if isinstance(node, _ip._Concatenation):
        total = 0
        for part in node.parts:
            if isinstance(part, _ip._NonCapturing):
                raise Unsupported("lookbehind" if part.backwards else "lookahead")
            total += _estimate(part, limit, max_repeat)
            if total > limit:
                break
        return total
    if isinstance(node, _ip._Repeated):
        for v in (node.min, node.max):
            if v is not None and v > max_repeat:
                raise BudgetExceeded(f"counted repeat {{{node.min},{node.max}}} exceeds max_repeat={max_repeat}")
        copies = max(node.min, node.max if node.max is not None else node.min + 1, 1)
        return _estimate(node.base, limit, max_repeat) * copies + 1
    return 1


# --------------------------------------------------------------------------- determinisation


def _determinize(nfa: _NFA, start: int, final: int, max_states: int):
    """Subset construction over byte classes (the kernel ``subset_table``, numba
    unless ``STRUCTGEN_KERNELS=reference``).  Returns ``(trans, accepting, class_of)``:
    one column per class, ``class_of`` maps bytes to columns; None for an empty language."""
    src_lens = [len(es) for es in nfa.edges]
    flat = [e for es in nfa.edges for e in es]
    e = np.array(flat, np.int64).reshape(len(flat), 3)
    # byte classes: the cuts at every edge boundary
    cuts = np.unique(np.concatenate((e[:, 0], e[:, 1] + 1, [0, 256])))
    class_of = np.searchsorted(cuts, np.arange(256), side="right") - 1
    e_ptr = np.zeros(len(src_lens) + 1, np.int64)
    np.cumsum(src_lens, out=e_ptr[1:])
    eps_ptr = np.zeros(len(nfa.eps) + 1, np.int64)
    np.cumsum([len(x) for x in nfa.eps], out=eps_ptr[1:])
    eps_tgt = np.array([r for x in nfa.eps for r in x], np.int64)
    important = np.diff(e_ptr) > 0
    important[final] = True
    trans, accepting, overflow = get_kernels().subset_table(
        e_ptr, np.ascontiguousarray(e[:, 0]), np.ascontiguousarray(e[:, 1]), np.ascontiguousarray(e[:, 2]),
        eps_ptr, eps_tgt, important, class_of, len(cuts) - 1, start, final, max_states)
    if overflow:
        raise BudgetExceeded(f"regex DFA exceeds max_states={max_states} during determinisation")
    if trans.shape[0] == 0:
        return None
    return trans, accepting, class_of


# --------------------------------------------------------------------------- driver


def _regex_error(pattern: str, err: re.error) -> RegexError:
    line = getattr(err, "lineno", None)
    col = getattr(err, "colno", None)
    msg = getattr(err, "msg", str(err))
    return RegexError(f"invalid regex: {msg}", text=pattern, line=line, column=col)


def _map_interegular_unsupported(exc: Exception) -> Unsupported:
    msg = str(exc)
    low = msg.lower()
    if "reference" in low:
        return Unsupported("backreference", msg)
    if "conditional" in low:
        return Unsupported("conditional", msg)
    if "lookback" in low or "lookbehind" in low:
        return Unsupported("lookbehind", msg)
    if "\\b" in low:
        return Unsupported("word boundary", msg)
    return Unsupported("regex construct", msg)


def trusted_regex_to_dfa(pattern: str, *, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA:
    """:func:`regex_to_dfa` (no flags) for pattern text that structgen writes itself and
    that is valid by construction (the ECMA-262 translation): skips the ``re.compile``
    check, which costs milliseconds on the large code-point classes such text holds."""
    return _trusted_cached(pattern, int(max_states))


@functools.lru_cache(maxsize=512)
def _trusted_cached(pattern: str, max_states: int) -> ByteDFA:
    return _build(pattern, max_states, 0, MAX_REPEAT)


@functools.lru_cache(maxsize=512)
def _regex_to_dfa_cached(pattern: str, max_states: int, flags: int, max_repeat: int) -> ByteDFA:
    try:
        re.compile(pattern, flags)
    except re.error as err:
        raise _regex_error(pattern, err) from None
    except ValueError as err:  # e.g. incompatible flags (re.A | re.U)
        raise ConfigurationError(f"invalid regex flags: {err}") from None
    except (OverflowError, RecursionError) as err:
        raise BudgetExceeded(f"pattern too large for re.compile: {err}") from None
    return _build(pattern, max_states, flags, max_repeat)


def _build(pattern: str, max_states: int, flags: int, max_repeat: int) -> ByteDFA:
    """Steps 2-4 of the module docstring for a pattern ``re`` accepts."""
    try:
        scan = _scan(pattern, flags, max_repeat)
    except (IndexError, ValueError) as err:  # pragma: no cover - scanner bug on a valid pattern
        raise Unsupported("regex construct", f"could not rewrite pattern ({err})") from None
    text, gflags = scan.text, scan.global_flags

    try:
        ast = _parse_scanned(text)
    except _ip.Unsupported as err:
        raise _map_interegular_unsupported(err) from None
    except _ip.InvalidSyntax as err:  # valid for Python, but interegular cannot parse it
        raise Unsupported("regex construct", f"interegular cannot parse {text!r}: {err}") from None
    except RecursionError:
        raise BudgetExceeded("regex nesting too deep") from None

    max_nodes = max(4 * max_states, 10_000)
    try:
        if _estimate(ast, max_nodes, max_repeat) > max_nodes:
            raise BudgetExceeded(f"regex expands to more than {max_nodes} NFA states "
                                 f"(max_states={max_states}); reduce counted repeats")
        init = _ip.REFlags(0)
        if gflags & re.I:
            init |= _ip.REFlags.CASE_INSENSITIVE
        if gflags & re.S:
            init |= _ip.REFlags.SINGLE_LINE
        nfa = _NFA(max_nodes, max_repeat, bool(gflags & re.A), scan.classes)
        start = nfa.new()
        final = nfa.build(ast, start, init)
        res = _determinize(nfa, start, final, max_states)
    except RecursionError:
        raise BudgetExceeded("regex nesting too deep") from None
    if res is None:
        return ops.empty_dfa()
    trans, accepting, class_of = res
    return ops.from_table(trans, accepting, 0, byte_class=class_of)
