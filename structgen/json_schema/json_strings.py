"""JSON string literals as byte DFAs: quoting/escaping a content DFA, finite
sets of literals, character-count chains.

A *body* DFA accepts the UTF-8 bytes of decoded string contents (what a
``pattern`` or ``maxLength`` talks about).  :func:`encode_body` turns it into a
DFA over JSON text: every accepted content string becomes *all* of its JSON
encodings -- raw UTF-8 where JSON allows it, ``\\n``-style short escapes,
``\\u00e9`` escapes in either hex case and UTF-16 surrogate pairs for
characters above U+FFFF.  (Lone surrogate escapes such as ``"\\ud800"`` decode to
no Unicode scalar value and are never produced.)

The ``\\u`` escapes are built without enumerating code points: after ``\\u`` and
k hex digits, the only thing that matters is the function "remaining digits ->
body state", and the UTF-8 bytes of the code point are decided by
fixed digit groups (e.g. for U+0800..U+FFFF: byte 1 by the first digit, byte 2 by
digit 2 and the top bits of digit 3, byte 3 by the rest).  Each layer of that
decision tree is one vectorised table over all body states, hash-consed so equal
futures share a state; minimisation does the rest.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from ..automata import charset, ops
from ..automata.finite import trie
from ..automata.fsm import ByteDFA
from ..automata.regex import literal_dfa, regex_to_dfa
from ..errors import BudgetExceeded

__all__ = ["ANY_CHAR", "ANY_STRING", "encode_body", "encoded_length_chain", "quoted", "quoted_literals"]

ANY_CHAR = charset.ranges_dfa(charset.ANY)  # one code point, any
ANY_STRING = regex_to_dfa(r"(?s:.*)")

_HEX = [(ord(c), v) for v, c in enumerate("0123456789abcdef")] + [(ord(c), 10 + v) for v, c in enumerate("ABCDEF")]
_ESC = [(ord('"'), 0x22), (ord("\\"), 0x5C), (ord("/"), 0x2F), (ord("b"), 0x08), (ord("f"), 0x0C),
        (ord("n"), 0x0A), (ord("r"), 0x0D), (ord("t"), 0x09)]
_MUST_ESCAPE = list(range(0x20)) + [0x22, 0x5C]


class _Layers:
    """Hash-consed layers of escape states, numbered after the body states."""

    def __init__(self, first_id: int):
        self.next = first_id
        self.layers: list[tuple[int, np.ndarray, object]] = []

    def cons(self, rows: np.ndarray, kind) -> np.ndarray:
        """A state per distinct live row of ``rows[..., :]`` (a row of -1 is dead: id -1),
        numbered by first occurrence (one kernel call: a layer's numpy steps around the
        numbering cost ~4x the numbering itself).  The numbering does not reach a
        minimised result; a large one (not minimised) keeps it."""
        rows = np.asarray(rows)
        ids, uniq = ops.number_live_rows(rows.reshape(-1, rows.shape[-1]), self.next)
        if len(uniq):
            self.layers.append((self.next, uniq, kind))
            self.next += len(uniq)
        return ids.reshape(rows.shape[:-1])


def encode_body(body: ByteDFA, *, quoted: bool = True, max_states: int = 400_000,
                minimal: bool | None = None, canonical: bool = False) -> ByteDFA:
    """JSON-encoded form of a body DFA (see module docstring), with the
    surrounding double quotes when ``quoted``.  ``canonical``: printable ASCII
    characters other than ``"`` and backslash are only written raw (no ``\u0041``),
    the spellings every standard serializer produces."""
    S = body.num_states
    if quoted and canonical and minimal is None and _plain_body(body):
        return _quote_plain(body)
    T = np.empty((S + 1, 256), np.int64)  # row S: the dead state (index -1 wraps to it)
    ops.expand(body, out=T[:S])
    T[S] = -1
    L = _Layers(S)
    h = np.arange(16)
    # A body without multi-byte characters leaves every layer below that reads bytes
    # >= 0x80 dead; cons numbers live rows only, so skipping them changes no state id
    # (and saves the S x 256 work: a 48k-state format union took 1.4 s).
    multibyte = bool((T[:S, 0x80:] >= 0).any())

    def dead(*shape):
        return np.full((S + 1, *shape), -1, np.int64)

    # after \u + 3 digits (continuation byte pending low 2 bits): x, pend -> 16 targets
    LAST = L.cons(T[:, 0x80:0xC0].reshape(S + 1, 4, 16), "hex") if multibyte else dead(4)
    # 3-byte sequences, after the lead byte: digit 2 and 3 choose byte 2
    b2 = 0x80 + 4 * h[:, None] + (h[None, :] >> 2)  # [h2, h3]
    MID = L.cons(LAST[T[:, b2], (h & 3)[None, None, :]], "hex") if multibyte else dead(16)  # (S+1, 16 h2)
    H3B = L.cons(MID, "hex") if multibyte else dead()  # after \u X with X in 1..C,E,F: (S+1,)
    ascii_rows = T[:, 0:128].copy()
    if canonical:  # \u0020..\u007e only as raw characters
        ascii_rows[:, 0x20:0x7F] = -1
    A = L.cons(ascii_rows.reshape(S + 1, 8, 16), "hex")  # \u00[0-7]: ASCII
    b1 = 0xC0 + 4 * h[:8, None] + (h[None, :] >> 2)  # [h2 0..7, h3]
    Z2 = L.cons(LAST[T[:, b1], (h & 3)[None, None, :]], "hex") if multibyte else dead(8)  # \u0[1-7]: 2-byte
    z0 = np.empty((S + 1, 16), np.int64)
    z0[:, :8] = A
    z0[:, 8:] = LAST[T[:, 0xC0 + (h[8:] >> 2)], (h[8:] & 3)[None, :]]
    Z0 = L.cons(z0, "hex")  # \u00
    z = np.empty((S + 1, 16), np.int64)
    z[:, 0] = Z0
    z[:, 1:8] = Z2[:, 1:8]
    z[:, 8:] = MID[T[:, 0xE0]][:, 8:]
    Z = L.cons(z, "hex")  # \u0
    HS = dead(4)
    if multibyte:
        # surrogate pairs: \uD[89AB]xx\uD[C-F]xx
        LS3 = L.cons(LAST[T[:, (0x80 + 16 * np.arange(4)[:, None, None] + 4 * np.arange(4)[None, :, None]
                                + (h[None, None, :] >> 2))], (h & 3)[None, None, None, :]], "hex")  # (S+1, p, c)
        lsc = np.full((S + 1, 4, 16), -1, np.int64)
        lsc[:, :, 12:] = LS3
        LSC = L.cons(lsc, "hex")  # after \uD (low surrogate), (S+1, p)
        LSD = L.cons(LSC[..., None], ("chain", (ord("D"), ord("d"))))
        LSU = L.cons(LSD[..., None], ("chain", (ord("u"),)))
        LS = L.cons(LSU[..., None], ("chain", (ord("\\"),)))
        # high surrogates: only the states with a 4-byte sequence (the others' rows are dead: as above)
        has4 = np.flatnonzero((T[:, 0xF0:0xF5] >= 0).any(axis=1))
        if len(has4):
            u = 0x40 + np.arange(1024)
            s1 = T[has4][:, 0xF0 | (u >> 8)]
            s2 = T[s1, (0x80 | ((u >> 2) & 0x3F))[None, :]]
            HS2 = L.cons(LS[s2, (u & 3)[None, :]].reshape(len(has4), 64, 16), "hex")
            HS[has4] = L.cons(HS2.reshape(len(has4), 4, 16), "hex")
    d = np.empty((S + 1, 16), np.int64)
    d[:, :8] = MID[T[:, 0xED]][:, :8]
    d[:, 8:12] = HS
    d[:, 12:] = -1
    D = L.cons(d, "hex")
    uu = np.empty((S + 1, 16), np.int64)
    for x in range(16):
        uu[:, x] = Z if x == 0 else (D if x == 13 else H3B[T[:, 0xE0 + x]])
    U = L.cons(uu, "hex")
    esc = np.empty((S + 1, 9), np.int64)
    for k, (_, target) in enumerate(_ESC):
        esc[:, k] = T[:, target]
    esc[:, 8] = U
    ESC = L.cons(esc, "esc")

    N = L.next + (2 if quoted else 0)
    if N > max_states:
        raise BudgetExceeded(f"JSON-quoted string DFA needs {N} states (max {max_states})")
    # The table has one column per group of bytes that no row tells apart (same body
    # class, same role in escapes), not 256: large bodies make N large.
    col, reps = _byte_groups(np.asarray(body.classes))
    tbl = np.full((N, len(reps)), -1, np.int32)
    tbl[:S] = T[:S][:, reps]
    tbl[:S, col[_MUST_ESCAPE]] = -1
    tbl[:S, col[0x5C]] = ESC[:S]
    hex_cols = col[[byte for byte, _ in _HEX]]
    hex_vals = np.array([v for _, v in _HEX])
    for start, uniq, kind in L.layers:
        rows = slice(start, start + len(uniq))
        if kind == "hex":
            tbl[rows][:, hex_cols] = uniq[:, hex_vals]  # a slice is a view: writes into tbl
        elif kind == "esc":
            for k, (byte, _) in enumerate(_ESC):
                tbl[rows, col[byte]] = uniq[:, k]
            tbl[rows, col[ord("u")]] = uniq[:, 8]
        else:
            for byte in kind[1]:
                tbl[rows, col[byte]] = uniq[:, 0]
    acc = np.zeros(N, bool)
    if quoted:
        q0, fin = N - 2, N - 1
        tbl[q0, col[0x22]] = body.start
        accepting = np.flatnonzero(np.asarray(body.accepting, bool))
        tbl[accepting, col[0x22]] = fin
        acc[fin] = True
        start = q0
    else:
        acc[:S] = np.asarray(body.accepting, bool)
        start = body.start
    if minimal is None:
        minimal = N <= 1500
    if not minimal:  # every built state is co-reachable; some escape states may be unreachable (harmless)
        return ops.from_trimmed_table(tbl, acc, start, byte_class=col)
    return ops.from_table(tbl, acc, start, byte_class=col)


# printable ASCII but '"', '/' and '\\': with canonical escapes, each has one spelling (itself)
_PLAIN_BYTES = np.zeros(256, bool)
_PLAIN_BYTES[0x20:0x7F] = True
_PLAIN_BYTES[[0x22, 0x2F, 0x5C]] = False
_NOT_PLAIN_BYTES = ~_PLAIN_BYTES
_PLAIN = re.compile("[" + re.escape(bytes(np.flatnonzero(_PLAIN_BYTES).tolist()).decode()) + "]*")  # as strings


def _plain_body(body: ByteDFA) -> bool:
    """Whether ``body`` only reads printable ASCII bytes with one canonical spelling."""
    used = (np.asarray(body.trans) >= 0).any(axis=0)  # per class
    return not (used[np.asarray(body.classes)] & _NOT_PLAIN_BYTES).any()  # per byte


def _quote_plain(body: ByteDFA) -> ByteDFA:
    """:func:`encode_body` (quoted, canonical) of a :func:`_plain_body`: every string
    has one spelling, itself, so the result is ``"`` + body + ``"`` -- built directly
    and minimised: the general construction with ``minimal=True`` gives the same DFA
    (it adds no escape state for such a body), at any size (the general one's tables
    grow with 1,024 columns per body state: the hostname format's 23,811 states took
    1.3 s and a 340 MB peak)."""
    S, C = body.trans.shape
    tbl = np.full((S + 2, C + 1), -1, np.int32)  # column C: the quote; rows S, S + 1: open, close
    tbl[:S, :C] = body.trans
    tbl[np.flatnonzero(np.asarray(body.accepting, bool)), C] = S + 1
    tbl[S, C] = body.start
    acc = np.zeros(S + 2, bool)
    acc[S + 1] = True
    classes = np.asarray(body.classes, np.uint8).copy()
    classes[0x22] = C
    return ops.from_table(tbl, acc, S, byte_class=classes)


#: Bytes with a role of their own in escape sequences; every control byte shares one role.
_SPECIAL = sorted({b for b, _ in _HEX} | {b for b, _ in _ESC} | {ord("u"), ord("D"), ord("d"), 0x22, 0x5C})


def _byte_groups(body_classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Byte -> column of encode_body's table, and a representative byte per column
    (columns in order of smallest byte)."""
    role = np.zeros(256, np.int64)
    role[:0x20] = 1
    role[_SPECIAL] = 2 + np.arange(len(_SPECIAL))
    key = np.asarray(body_classes, np.int64) * 512 + role
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[np.asarray(inverse).reshape(-1)].astype(np.uint8), first[order]


@functools.lru_cache(maxsize=None)
def _enc_char(canonical: bool = False) -> ByteDFA:
    return encode_body(ANY_CHAR, quoted=False, canonical=canonical)


#: the longest length bound whose chain is cut from a shared table (the emitter's direct strings
#: go up to 128 characters, its chunks to 64)
CUT_MAX = 128


@functools.lru_cache(maxsize=None)
def _chain_cutter(canonical: bool) -> ops.ChainCutter:
    return ops.ChainCutter(_enc_char(canonical), CUT_MAX)


@functools.lru_cache(maxsize=256)
def encoded_length_chain(lo: int, hi: int | None, canonical: bool = False) -> ByteDFA:
    """Unquoted JSON encodings of strings of ``lo..hi`` characters (``hi`` None:
    unbounded); minimal when ``hi`` is a number."""
    if hi is not None and 1 <= hi <= CUT_MAX and lo <= hi:
        # renumbered breadth-first as every normalised DFA (kept in copy order, the
        # MaskBench fills of a fresh process were ~10 % slower: ab_compare, twice)
        return ops.renumber(_chain_cutter(canonical).chain(lo, hi))
    return ops.repeat_chain(_enc_char(canonical), lo, hi)


def quoted(body_or_none: ByteDFA | None, lo: int = 0, hi: int | None = None, canonical: bool = False) -> ByteDFA:
    """DFA of the JSON string literals whose content is in ``body`` (None: any)
    and has ``lo..hi`` characters."""
    if body_or_none is None:
        if lo == 0 and hi is None:
            return _any_quoted(canonical)
        return _quoted_len(lo, hi, canonical)
    q = _quote_cached(body_or_none, canonical)
    if lo == 0 and hi is None:
        return q
    return ops.intersect(q, _quoted_len(lo, hi, canonical))


_QUOTE_CACHE: dict = {}


def _quote_cached(body: ByteDFA, canonical: bool) -> ByteDFA:
    key = (ops.dfa_key(body), canonical)
    hit = _QUOTE_CACHE.get(key)
    if hit is None:
        if len(_QUOTE_CACHE) > 4096:
            _QUOTE_CACHE.clear()
        hit = _QUOTE_CACHE[key] = encode_body(body, quoted=True, canonical=canonical)
    return hit


@functools.lru_cache(maxsize=None)
def _any_quoted(canonical: bool = False) -> ByteDFA:
    return encode_body(ANY_STRING, quoted=True, canonical=canonical)


@functools.lru_cache(maxsize=256)
def _quoted_len(lo: int, hi: int | None, canonical: bool = False) -> ByteDFA:
    """``"`` + :func:`encoded_length_chain` + ``"``, written as one table: between
    characters (the chain's accepting states) a raw quote can only end the string,
    so the quote byte's column holds its chain transitions (after a backslash) plus
    the closing ones (the generic concatenation explores the product state by state
    in Python)."""
    chain = encoded_length_chain(lo, hi, canonical)
    S, C = chain.trans.shape
    quote = int(chain.classes[0x22])
    ends = np.asarray(chain.accepting, bool)
    assert not (chain.trans[ends, quote] >= 0).any()  # between characters a quote is no character
    # A bounded chain is minimal (see ops.ChainCutter) and so is the quoted one when the
    # quote byte is alone in its class: it keeps its column and gains the opening and
    # closing transitions (renumbered, not minimised).  Otherwise the quote byte gets a
    # column of its own, a copy of its class's, and the result is minimised (large chains
    # are near-minimal already: not past 5,000 states).
    direct = hi is not None and lo <= hi and np.count_nonzero(np.asarray(chain.classes) == quote) == 1
    col = quote if direct else C
    # state 0: before the opening quote, S + 1: after the closing one
    table = np.full((S + 2, C + (not direct)), -1, np.int32)
    table[1:S + 1, :C] = np.where(chain.trans >= 0, chain.trans + 1, -1)
    if not direct:
        table[1:S + 1, col] = table[1:S + 1, quote]
    table[0, col] = chain.start + 1
    table[1:S + 1, col][ends] = S + 1
    accepting = np.zeros(S + 2, bool)
    accepting[S + 1] = True
    if direct:
        return ops.renumber(ops.trimmed_dfa(table, chain.classes, accepting, 0))
    byte_class = np.array(chain.classes, np.uint8)
    byte_class[0x22] = C
    return ops.from_table(table, accepting, 0, minimal=S + 2 <= 5000, byte_class=byte_class)


@functools.lru_cache(maxsize=65536)
def _char_encodings(cp: int, canonical: bool = False) -> tuple:
    """Every JSON spelling of one code point, as sequences of alternative-byte sets
    (hex digits may be written in either case)."""
    def hexsets(v: int) -> list[bytes]:
        out = []
        for ch in "%04x" % v:
            out.append(bytes({ord(ch), ord(ch.upper())}))
        return out

    encs: list = []
    if cp >= 0x20 and cp not in (0x22, 0x5C):
        encs.append([bytes([b]) for b in chr(cp).encode("utf-8")])
    short = {0x22: b'"', 0x5C: b"\\", 0x2F: b"/", 0x08: b"b", 0x0C: b"f", 0x0A: b"n", 0x0D: b"r", 0x09: b"t"}
    if cp in short:
        encs.append([b"\\", short[cp]])
    if canonical and 0x20 <= cp <= 0x7E:
        pass  # printable ASCII: raw (or its short escape) only
    elif cp < 0x10000:
        encs.append([b"\\", b"u"] + hexsets(cp))
    else:
        v = cp - 0x10000
        hi, lo = 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)
        encs.append([b"\\", b"u"] + hexsets(hi) + [b"\\", b"u"] + hexsets(lo))
    return tuple((tuple(enc), tuple(bytes(min(a) for a in enc[:k + 1]) for k in range(len(enc))))
                 for enc in encs)


_LITERALS_CACHE: dict = {}


def quoted_literals(strings, suffix: ByteDFA | None = None, canonical: bool = False) -> ByteDFA:
    """Quoted JSON spellings of a finite set of strings (every escape form), optionally
    followed by ``suffix`` -- built directly as a trie, no minimisation.  Without a
    suffix the result is cached per (strings in order, canonical): schemas share keys."""
    if suffix is not None:
        return _quoted_literals(strings, suffix, canonical)
    key = (tuple(strings), canonical)
    hit = _LITERALS_CACHE.get(key)
    if hit is None:
        if len(_LITERALS_CACHE) > 16384:
            _LITERALS_CACHE.clear()
        hit = _LITERALS_CACHE[key] = _quoted_literals(key[0], None, canonical)
    return hit


def quoted_literal_bytes(string: str, canonical: bool) -> bytes | None:
    """The one quoted spelling of ``string`` (``quoted_literals((string,), canonical=...)``
    accepts it alone) if it has only one: canonical escapes and only plain characters."""
    return b'"' + string.encode() + b'"' if canonical and _PLAIN.fullmatch(string) else None


def _plain_literals(strings) -> ByteDFA:
    """:func:`_quoted_literals` (canonical, no suffix) of strings of :data:`_PLAIN_BYTES`
    characters: each character is its own byte, so the trie of the strings is the
    automaton.  Same states, numbering and classes as the general construction
    (quote, trie nodes, closing quote), written as edge lists at once."""
    if len(strings) == 1:  # a chain: quote, the characters, quote
        return literal_dfa(b'"' + strings[0].encode() + b'"')
    nodes, final = trie(strings)
    fin = len(nodes) + 1
    src, byt, dst = [0], [0x22], [1]
    for n, children in enumerate(nodes):
        for ch, child in children.items():
            src.append(n + 1)
            byt.append(ord(ch))
            dst.append(child + 1)
        if final[n]:
            src.append(n + 1)
            byt.append(0x22)
            dst.append(fin)
    acc = np.zeros(fin + 1, bool)
    acc[fin] = True
    return ops.from_edge_lists(src, byt, dst, acc, 0)


def _quoted_literals(strings, suffix: ByteDFA | None, canonical: bool) -> ByteDFA:
    if canonical and suffix is None and strings and all(_PLAIN.fullmatch(s) for s in strings):
        return _plain_literals(strings)
    nodes, final = trie(strings)
    edges: list[dict] = []  # state -> {byte: state}
    q0 = 0
    edges.append({})
    node_state = {}
    for n in range(len(nodes)):
        node_state[n] = len(edges)
        edges.append({})
    edges[q0][0x22] = node_state[0]
    inner: dict = {}
    for n, children in enumerate(nodes):
        src = node_state[n]
        for ch, child in children.items():
            dst = node_state[child]
            for enc, prefixes in _char_encodings(ord(ch), canonical):
                cur = src
                last = len(enc) - 1
                for k, alts in enumerate(enc):
                    if k == last:
                        nxt = dst
                    else:
                        key = (n, prefixes[k])
                        nxt = inner.get(key)
                        if nxt is None:
                            nxt = inner[key] = len(edges)
                            edges.append({})
                    for b in alts:
                        old = edges[cur].get(b)
                        if old is not None and old != nxt:  # pragma: no cover - prefix-free by construction
                            raise AssertionError("non-deterministic literal trie")
                        edges[cur][b] = nxt
                    cur = nxt
    if not any(final):
        return ops.empty_dfa()
    fin = len(edges)
    edges.append({})
    for n, isf in enumerate(final):
        if isf:
            edges[node_state[n]][0x22] = fin
    S = len(edges)
    if suffix is None:
        acc = np.zeros(S, bool)
        acc[fin] = True
        return ops.from_edges(edges, acc, q0)
    ts = ops.expand(suffix)
    for i in range(suffix.num_states):
        row = ts[i]
        nz = np.flatnonzero(row >= 0)
        edges.append(dict(zip(nz.tolist(), (row[nz] + S).tolist())))
    edges[fin] = dict(edges[S + suffix.start])
    acc = np.zeros(len(edges), bool)
    acc[S:] = np.asarray(suffix.accepting, bool)
    acc[fin] = bool(suffix.accepting[suffix.start])
    return ops.from_edges(edges, acc, q0)
