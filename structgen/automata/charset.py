"""Code-point range algebra shared by the regex front-ends.

A *character set* is a tuple of ``(lo, hi)`` code-point ranges, sorted,
disjoint and non-adjacent (:func:`normalize` makes one).  Both regex dialects
(Python ``re`` in :mod:`structgen.automata.regex`, ECMA-262 in
:mod:`structgen.json_schema.ecma_regex`) resolve their classes to such sets with
the functions here, and every set is lowered to bytes the same way: as the
well-formed UTF-8 byte-range sequences of its code points
(:func:`utf8_sequences`), so overlong forms, surrogates and code points above
U+10FFFF are never produced.
"""

from __future__ import annotations

import bisect
import functools
import unicodedata

import numpy as np

from . import ops
from .fsm import ByteDFA

__all__ = [
    "ANY",
    "ASCII_DIGIT",
    "ASCII_WORD",
    "MAX_CODEPOINT",
    "Ranges",
    "case_fold",
    "complement",
    "from_codepoints",
    "general_categories",
    "normalize",
    "ranges_dfa",
    "utf8_sequences",
]

MAX_CODEPOINT = 0x10FFFF
SURROGATE_LO, SURROGATE_HI = 0xD800, 0xDFFF

Ranges = tuple  # tuple[tuple[int, int], ...], sorted, disjoint, non-adjacent

ANY: Ranges = ((0, MAX_CODEPOINT),)
ASCII_DIGIT: Ranges = ((0x30, 0x39),)
ASCII_WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))


# --------------------------------------------------------------------------- set algebra


def normalize(ranges) -> Ranges:
    """Sorted, merged ranges; empty ranges (``lo > hi``) are dropped."""
    out: list[list[int]] = []
    for lo, hi in sorted((int(a), int(b)) for a, b in ranges if a <= b):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def complement(ranges) -> Ranges:
    """Every code point 0..U+10FFFF not in ``ranges``."""
    out = []
    nxt = 0
    for lo, hi in normalize(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_CODEPOINT:
        out.append((nxt, MAX_CODEPOINT))
    return tuple(out)


def from_codepoints(cps) -> Ranges:
    """The set of the given code points (any iterable of ints)."""
    out: list[list[int]] = []
    for cp in sorted(set(cps)):
        if out and cp == out[-1][1] + 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return tuple((a, b) for a, b in out)


# --------------------------------------------------------------------------- case folding


@functools.lru_cache(maxsize=2)
def _case_table(ascii_only: bool):
    """``(sorted cased code points, {cp: tuple of its case-equivalents})``.

    Python ``re`` (Unicode, IGNORECASE) matches ``ch`` against ``c`` iff
    ``tolower(ch) == tolower(c)`` or they are linked by ``re``'s extra-case table."""
    if ascii_only:
        groups = [(ord(c), ord(c.upper())) for c in "abcdefghijklmnopqrstuvwxyz"]
    else:
        try:
            import _sre
            tolower = _sre.unicode_tolower
        except (ImportError, AttributeError):  # pragma: no cover
            def tolower(cp):
                low = chr(cp).lower()
                return ord(low) if len(low) == 1 else cp
        try:
            from re._casefix import _EXTRA_CASES as extra
        except ImportError:  # pragma: no cover - older Pythons
            try:
                from sre_compile import _ignorecase_fixes as extra  # type: ignore
            except ImportError:
                extra = {}
        by_key: dict[int, list[int]] = {}
        for cp in range(MAX_CODEPOINT + 1):
            if SURROGATE_LO <= cp <= SURROGATE_HI:
                continue
            k = tolower(cp)
            if k != cp:
                by_key.setdefault(k, []).append(cp)
        for k, members in by_key.items():
            if tolower(k) == k:
                members.append(k)
        # union-find over keys to merge the extra equivalences
        parent: dict[int, int] = {}

        def find(x):
            while parent.get(x, x) != x:
                parent[x] = parent.get(parent[x], parent[x])
                x = parent[x]
            return x

        for k, others in extra.items():
            for o in others:
                a, b = find(k), find(o)
                if a != b:
                    parent[a] = b
        merged: dict[int, set[int]] = {}
        for k in set(by_key) | set(parent) | set(extra):
            root = find(k)
            members = set(by_key.get(k, ()))
            if tolower(k) == k:
                members.add(k)
            merged.setdefault(root, set()).update(members)
        groups = [tuple(g) for g in merged.values() if len(g) > 1]
    equiv: dict[int, tuple[int, ...]] = {}
    for g in groups:
        g = tuple(sorted(set(g)))
        for cp in g:
            equiv[cp] = tuple(sorted(set(equiv.get(cp, ())) | set(g)))
    return sorted(equiv), equiv


def case_fold(ranges: Ranges, ascii_only: bool = False) -> Ranges:
    """``ranges`` closed under Python ``re``'s IGNORECASE equivalence (only ASCII
    letters with ``ascii_only``, as ``re.A`` does)."""
    cased, equiv = _case_table(ascii_only)
    extra = []
    for lo, hi in ranges:
        i = bisect.bisect_left(cased, lo)
        j = bisect.bisect_right(cased, hi)
        for cp in cased[i:j]:
            extra.extend((e, e) for e in equiv[cp])
    if not extra:
        return ranges
    return normalize(list(ranges) + extra)


# --------------------------------------------------------------------------- Unicode properties


@functools.lru_cache(maxsize=1)
def general_categories() -> dict[str, Ranges]:
    """``{category: ranges}`` for every two-letter General_Category of this
    Python's Unicode database, plus the one-letter majors and ``LC``."""
    cats: dict[str, list] = {}
    prev, start = None, 0
    for cp in range(MAX_CODEPOINT + 2):
        c = unicodedata.category(chr(cp)) if cp <= MAX_CODEPOINT else None
        if c != prev:
            if prev is not None:
                cats.setdefault(prev, []).append((start, cp - 1))
            prev, start = c, cp
    out = {k: normalize(v) for k, v in cats.items()}
    for major in "LMNPSZC":
        out[major] = normalize([r for k, v in out.items() if len(k) == 2 and k[0] == major for r in v])
    out["LC"] = normalize(list(out.get("Lu", ())) + list(out.get("Ll", ())) + list(out.get("Lt", ())))
    return out


# --------------------------------------------------------------------------- UTF-8 lowering


def _encode(cp: int, n: int) -> tuple[int, ...]:
    if n == 1:
        return (cp,)
    if n == 2:
        return (0xC0 | cp >> 6, 0x80 | cp & 0x3F)
    if n == 3:
        return (0xE0 | cp >> 12, 0x80 | cp >> 6 & 0x3F, 0x80 | cp & 0x3F)
    return (0xF0 | cp >> 18, 0x80 | cp >> 12 & 0x3F, 0x80 | cp >> 6 & 0x3F, 0x80 | cp & 0x3F)


_LEN_SPANS = ((0x0, 0x7F, 1), (0x80, 0x7FF, 2), (0x800, 0xFFFF, 3), (0x10000, MAX_CODEPOINT, 4))


def _split_same_len(lo: int, hi: int, n: int, out: list) -> None:
    """Split [lo, hi] (all n-byte code points) into pieces whose encodings form a
    cartesian product of byte ranges, appending the byte-range tuples to ``out``."""
    for i in range(1, n):
        m = (1 << (6 * i)) - 1
        if lo & ~m != hi & ~m:
            if lo & m:
                _split_same_len(lo, lo | m, n, out)
                _split_same_len((lo | m) + 1, hi, n, out)
                return
            if hi & m != m:
                _split_same_len(lo, (hi & ~m) - 1, n, out)
                _split_same_len(hi & ~m, hi, n, out)
                return
    out.append(tuple(zip(_encode(lo, n), _encode(hi, n))))


@functools.lru_cache(maxsize=4096)
def _utf8_range(lo: int, hi: int) -> tuple:
    out: list = []
    pieces = []
    if lo <= SURROGATE_HI and hi >= SURROGATE_LO:  # cut out surrogates
        if lo < SURROGATE_LO:
            pieces.append((lo, SURROGATE_LO - 1))
        if hi > SURROGATE_HI:
            pieces.append((SURROGATE_HI + 1, hi))
    else:
        pieces.append((lo, hi))
    for a, b in pieces:
        for s, e, n in _LEN_SPANS:
            x, y = max(a, s), min(b, e)
            if x <= y:
                _split_same_len(x, y, n, out)
    return tuple(out)


def utf8_sequences(ranges) -> list[tuple[tuple[int, int], ...]]:
    """UTF-8 byte-range sequences for a set of code-point ranges ``[(lo, hi), ...]``.

    Each sequence is a tuple of ``(byte_lo, byte_hi)``; the byte strings matched by
    the sequences are exactly the well-formed UTF-8 encodings of the non-surrogate
    code points in ``ranges``, and distinct sequences match disjoint strings."""
    out = []
    for lo, hi in ranges:
        out.extend(_utf8_range(int(lo), int(hi)))
    return out


@functools.lru_cache(maxsize=256)
def ranges_dfa(ranges: Ranges) -> ByteDFA:
    """Minimal byte DFA of the UTF-8 encodings of *one* code point in ``ranges``.

    Built directly from :func:`utf8_sequences`: a state is the set of sequence
    suffixes still to read, so sequences sharing a lead byte are merged."""
    start = frozenset(utf8_sequences(normalize(ranges)))
    ids = {start: 0}
    todo = [start]
    rows: list[np.ndarray] = []
    accepting: list[bool] = []
    k = 0
    while k < len(todo):
        suffixes = todo[k]
        k += 1
        accepting.append(() in suffixes)
        row = np.full(256, -1, np.int64)
        nexts: dict[int, set] = {}
        for seq in suffixes:
            if seq:
                (lo, hi), rest = seq[0], seq[1:]
                for b in range(lo, hi + 1):
                    nexts.setdefault(b, set()).add(rest)
        for b, rest in nexts.items():
            key = frozenset(rest)
            j = ids.get(key)
            if j is None:
                j = ids[key] = len(todo)
                todo.append(key)
            row[b] = j
        rows.append(row)
    return ops.from_table(np.stack(rows), np.array(accepting, bool), 0)
