"""Operations on :class:`ByteDFA`: trimming, minimisation, products.

Every function here returns a *normalised* DFA (the exceptions say so:
:func:`from_trimmed_table`, :func:`from_edges`, non-minimal :func:`product`
and the glued case of :func:`concat` keep the caller's state numbering):

* trimmed (every state reachable from the start and co-reachable to an
  accepting state), except the canonical empty-language DFA (see
  :func:`empty_dfa`), which is a single non-accepting state with no
  transitions;
* byte classes compacted to the coarsest partition of 0..255 the table
  respects, numbered by their smallest byte (the class of byte 0 is 0);
* states numbered in breadth-first order from ``start = 0``, exploring classes
  in increasing order.

:func:`minimize` additionally merges equivalent states, so two DFAs for the same
language have *identical* tables after :func:`minimize` (the normal form is
canonical).  Arrays of returned DFAs are marked read-only because results may be
shared through caches.

The per-state loops (class compaction, trimming, Hopcroft's minimisation, the
product's breadth-first construction) are kernels: numba by default, with pure
Python + numpy twins in kernels_reference.py (see kernels.py).
"""

from __future__ import annotations

import numpy as np

from ..errors import BudgetExceeded
from .fsm import ByteDFA
from .kernels import get_kernels

__all__ = [
    "ChainCutter",
    "PRODUCT_MODES",
    "alphabet_columns",
    "compact_classes",
    "complement_within",
    "concat",
    "dfa_key",
    "difference",
    "empty_dfa",
    "expand",
    "explore",
    "from_edge_lists",
    "from_edges",
    "from_table",
    "from_trimmed_table",
    "intersect",
    "is_empty",
    "load_kernels",
    "minimize",
    "normalize",
    "product",
    "readonly",
    "renumber",
    "trim",
    "trimmed_dfa",
    "union",
    "union_all",
]

#: Default bound on the number of states a product construction may create.
DEFAULT_PRODUCT_STATES = 1_000_000


# --------------------------------------------------------------------------- helpers


def _frozen(a, dtype) -> np.ndarray:
    """A read-only contiguous copy-if-needed of ``a`` (results may be shared through caches)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    a.setflags(write=False)
    return a


def _make(trans: np.ndarray, classes: np.ndarray, accepting: np.ndarray) -> ByteDFA:
    return ByteDFA(trans=_frozen(trans, np.int32), classes=_frozen(classes, np.uint8),
                   accepting=_frozen(accepting, bool), start=0)


def empty_dfa() -> ByteDFA:
    """The canonical DFA of the empty language: one non-accepting state, no edges.

    It is the only normalised DFA that is not trimmed (its start state cannot
    reach an accepting state); test for it with :func:`is_empty`."""
    return _make(np.full((1, 1), -1, np.int32), np.zeros(256, np.uint8), np.zeros(1, bool))


def expand(dfa: ByteDFA, out: np.ndarray | None = None) -> np.ndarray:
    """The ``S x 256`` int64 table of ``dfa`` (one column per byte, -1 = dead), written
    into ``out`` (an int64 ``S x 256`` array or view) when given."""
    return np.take(np.asarray(dfa.trans, np.int64), np.asarray(dfa.classes, np.intp), axis=1, out=out)


def dfa_key(dfa: ByteDFA) -> tuple:
    """Hashable value identifying ``dfa``'s exact table (equal keys: same automaton).

    Kept on the DFA when its arrays are read-only (as every DFA built here is):
    callers key caches by it many times, and the bytes keep their hash."""
    key = dfa.__dict__.get("_key")
    if key is None:
        key = (dfa.start, dfa.trans.shape, dfa.trans.tobytes(), dfa.classes.tobytes(), dfa.accepting.tobytes())
        if not (dfa.trans.flags.writeable or dfa.classes.flags.writeable or dfa.accepting.flags.writeable):
            dfa.__dict__["_key"] = key  # frozen dataclass: bypass its __setattr__
    return key


_KERNELS = None


def _k():
    """The kernel module (numba unless ``STRUCTGEN_KERNELS=reference``), loaded on first use."""
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = get_kernels()
    return _KERNELS


def load_kernels() -> None:
    """Call each DFA kernel that Python calls directly once, through the functions that
    call it (so with their argument types): numba reads a kernel from its disk cache on
    its first call (5-20 ms each), which would otherwise land in the first request
    that needs it (the compiler calls this when the first compiler is made)."""
    a = from_edge_lists([0], [0x61], [1], np.array([False, True]))
    b = from_edge_lists([0, 0], [0x61, 0x62], [1, 1], np.array([False, True]))
    renumber(a)  # trim_table
    is_empty(b)  # reaches_accepting
    normalize(b)  # finish
    compact_classes(np.full((1, 256), -1))
    number_live_rows(np.zeros((1, 1), np.int32), 0)
    _product(b, a, "diff", False, 16, True)  # product_table, drop_sinks, compact_bytes (not memoised)


def compact_classes(trans256: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coarsest byte partition respected by an ``S x 256`` table.

    Returns ``(trans, classes)`` with ``trans`` of shape ``S x C`` and
    ``classes`` a ``uint8[256]`` map; two bytes share a class iff their columns
    are identical.  Classes are numbered by their smallest byte."""
    trans256 = np.asarray(trans256)
    if trans256.ndim != 2 or trans256.shape[1] != 256:
        raise ValueError(f"expected an S x 256 table, got shape {trans256.shape}")
    if trans256.shape[0] == 0:
        return np.zeros((0, 1), np.int32), np.zeros(256, np.uint8)
    return _k().compact_classes(readonly(trans256, np.int32))


def number_live_rows(rows: np.ndarray, first_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Number the distinct rows of the ``int32[n, w]`` matrix ``rows`` that have an entry
    >= 0 ``first_id, first_id + 1, ...`` by first occurrence, rows of -1 only -1:
    (every row's number, int64; the numbered rows, int32, in number order)."""
    return _k().number_live_rows(np.ascontiguousarray(rows, np.int32), int(first_id))


def readonly(a, dtype) -> np.ndarray:
    """``a`` as a read-only contiguous array of ``dtype`` (a view when it already is one):
    kernels see one array type, so numba loads one signature per kernel."""
    a = np.ascontiguousarray(a, dtype)
    if a.flags.writeable:
        a = a.view()
        a.setflags(write=False)
    return a


_ALL_BYTES = _frozen(np.arange(256), np.uint8)


def _finish(table: np.ndarray, accepting: np.ndarray, start: int, *, minimal: bool,
            byte_class: np.ndarray = _ALL_BYTES) -> ByteDFA:
    """Normalised DFA of ``table[:, byte_class]`` (an ``S x 256`` table by default)."""
    trans, classes, accepting = _k().finish(readonly(table, np.int32), readonly(byte_class, np.uint8),
                                            readonly(accepting, np.bool_), int(start), bool(minimal))
    if trans.shape[0] == 0:
        return empty_dfa()
    return _make(trans, classes, accepting)


def from_table(trans256: np.ndarray, accepting: np.ndarray, start: int = 0, *, minimal: bool = True,
               byte_class: np.ndarray | None = None) -> ByteDFA:
    """Normalised DFA from an ``S x 256`` table (-1 = dead), accepting mask and start.

    ``byte_class``: the table is ``S x K`` and byte ``b`` reads its column
    ``byte_class[b]`` (a narrower table for callers that build one)."""
    trans256 = np.asarray(trans256)
    accepting = np.asarray(accepting, dtype=bool)
    width = 256 if byte_class is None else int(np.max(byte_class)) + 1
    if trans256.ndim != 2 or trans256.shape[1] != width or accepting.shape != (trans256.shape[0],):
        raise ValueError("from_table needs an S x 256 table (S x K with byte_class) and an S-long accepting mask")
    if byte_class is None:
        return _finish(trans256, accepting, start, minimal=minimal)
    return _finish(trans256, accepting, start, minimal=minimal, byte_class=byte_class)


def from_trimmed_table(trans256: np.ndarray, accepting: np.ndarray, start: int = 0, *,
                       byte_class: np.ndarray | None = None) -> ByteDFA:
    """DFA from an ``S x 256`` table the caller knows to be trimmed (every state
    reachable and co-reachable): byte classes are compacted, states keep their
    numbers, nothing is minimised.  For large tables built trimmed by construction.
    ``byte_class`` as for :func:`from_table`."""
    if byte_class is None:
        trans, classes = compact_classes(np.asarray(trans256))
    else:
        trans, classes = _k().compact_bytes(readonly(trans256, np.int32), readonly(byte_class, np.uint8))
    return ByteDFA(trans=_frozen(trans, np.int32), classes=_frozen(classes, np.uint8),
                   accepting=_frozen(accepting, bool), start=int(start))


def from_edges(edges: list[dict], accepting, start: int = 0) -> ByteDFA:
    """DFA from per-state ``{byte: target}`` dicts that are already trimmed; one
    byte class per byte used (cheaper than compacting for trie-shaped automata)."""
    src = [i for i, e in enumerate(edges) for _ in range(len(e))]  # all edges at once, not a write per state
    byt = [b for e in edges for b in e]
    dst = [t for e in edges for t in e.values()]
    return from_edge_lists(src, byt, dst, accepting, start)


def from_edge_lists(src: list, byt: list, dst: list, accepting, start: int = 0) -> ByteDFA:
    """:func:`from_edges` with the edges as three parallel lists (state, byte,
    target); the states are ``0 .. len(accepting) - 1``."""
    used = sorted(set(byt))
    col = bytearray(256)  # small Python loops: cheaper than numpy calls at trie sizes
    for i, b in enumerate(used):
        col[b] = i + 1
    classes = np.frombuffer(bytes(col), np.uint8)  # read-only already
    trans = np.full((len(accepting), len(used) + 1), -1, np.int32)
    if src:
        trans[src, [col[b] for b in byt]] = dst
    return ByteDFA(trans=_frozen(trans, np.int32), classes=classes, accepting=_frozen(accepting, bool),
                   start=int(start))


def _unit_end(unit: ByteDFA) -> int:
    """The one accepting state of a chain unit, which has no outgoing edge and is not
    the start (ValueError otherwise)."""
    acc = np.flatnonzero(np.asarray(unit.accepting))
    if len(acc) != 1 or unit.start == acc[0] or (np.asarray(unit.trans)[acc[0]] >= 0).any():
        raise ValueError("repeat_chain needs a unit with one accepting state, without edges, not the start")
    return int(acc[0])


def _copies_table(unit: ByteDFA, copies: int, loop: bool) -> tuple:
    """``copies`` copies of ``unit`` (one accepting state without edges, not the start)
    one after the other, each's accepting state merged into the next's start; the last
    copy loops back to its own start (``loop``) or leads to one final state.  Returns the
    table over the unit's classes (numpy, no per-state Python), the start and the width
    of a copy; copy ``i`` holds states ``i * w .. i * w + w - 1``."""
    t = np.asarray(unit.trans, np.int64)  # over the unit's byte classes
    acc_state = _unit_end(unit)
    keep = np.array([j for j in range(unit.num_states) if j != acc_state], np.int64)
    local = np.full(unit.num_states, -1, np.int64)
    local[keep] = np.arange(len(keep))
    w, C = len(keep), t.shape[1]
    base = t[keep]  # a copy's local transitions; -2: into the (merged) accepting state
    base = np.where(base < 0, -1, np.where(base == acc_state, -2, local[np.maximum(base, 0)]))
    offsets = (np.arange(copies, dtype=np.int64) * w)[:, None, None]
    nxt = np.arange(1, copies + 1, dtype=np.int64) * w  # where the last character of copy i leads
    if loop:
        nxt[-1] = (copies - 1) * w
    blocks = np.where(base >= 0, base + offsets, base)
    blocks = np.where(base == -2, nxt[:, None, None], blocks)
    table = np.full((copies * w + (0 if loop else 1), C), -1, np.int64)
    table[:copies * w] = blocks.reshape(copies * w, C)
    return table, int(local[unit.start]), w


def repeat_chain(unit: ByteDFA, lo: int, hi: int | None, *, minimal: bool = False) -> ByteDFA:
    """``unit`` repeated ``lo..hi`` times (``hi`` None: unbounded), for a unit whose
    one accepting state has no outgoing edge and is not its start (one character
    of some encoding): a copy of the unit per repetition, its accepting state
    merged into the next copy's start, written as one table.  Trimmed, or minimal
    with ``minimal``."""
    copies = hi if hi is not None else lo + 1
    if copies == 0:
        _unit_end(unit)  # the unit is checked all the same
        return _finish(np.full((1, 256), -1, np.int32), np.array([True]), 0, minimal=minimal)
    table, start, w = _copies_table(unit, copies, hi is None)
    accepting = np.zeros(table.shape[0], bool)
    reps = np.arange(copies)
    ok = reps >= lo if hi is None else (reps >= lo) & (reps <= hi)
    accepting[(reps * w + start)[ok]] = True
    if hi is not None:
        accepting[copies * w] = lo <= hi
    return from_table(table, accepting, start, minimal=minimal, byte_class=unit.classes)


class ChainCutter:
    """Bounded chains of one unit (:func:`repeat_chain` with ``hi <= n``) cut from
    one table of ``n`` copies: the chain of ``hi`` copies is that table's last ``hi``
    copies and its final state, so a length bound costs a slice and a subtraction
    instead of a table of its own.  States keep the copy order (start is not 0;
    :func:`renumber` gives the normal numbering).  For a minimal unit whose
    accepted strings are a prefix code (one character of an encoding), the chain is
    minimal as built: states of different copies have different numbers of characters
    left, and within a copy the unit's states stay apart (tests check it)."""

    def __init__(self, unit: ByteDFA, n: int):
        table, self.start, self.w = _copies_table(unit, n, False)
        self.table = table.astype(np.int32)
        self.n = n
        self.classes = _frozen(unit.classes, np.uint8)

    def chain(self, lo: int, hi: int) -> ByteDFA:
        if not 1 <= hi <= self.n or not 0 <= lo <= hi:
            raise ValueError(f"ChainCutter cuts chains of 1..{self.n} copies, not {lo}..{hi}")
        off = (self.n - hi) * self.w
        part = self.table[off:]
        trans = np.where(part >= 0, part - off, -1).astype(np.int32)
        accepting = np.zeros(trans.shape[0], bool)
        accepting[self.start + self.w * np.arange(lo, hi)] = True
        accepting[-1] = True
        return trimmed_dfa(trans, self.classes, accepting, self.start)


def renumber(dfa: ByteDFA) -> ByteDFA:
    """The normal (breadth-first) numbering of a trimmed DFA whose byte classes are
    already the coarsest, numbered by smallest byte: :func:`normalize` without
    compacting or minimising."""
    trans, accepting = _k().trim_table(readonly(dfa.trans, np.int32), readonly(dfa.accepting, np.bool_),
                                       int(dfa.start))
    return trimmed_dfa(trans, dfa.classes, accepting, 0)


def trimmed_dfa(trans: np.ndarray, classes: np.ndarray, accepting: np.ndarray, start: int) -> ByteDFA:
    """A DFA from arrays the caller built trimmed, over classes no two bytes of
    which any row tells apart (nothing is checked, compacted or renumbered)."""
    return ByteDFA(trans=_frozen(trans, np.int32), classes=_frozen(classes, np.uint8),
                   accepting=_frozen(accepting, bool), start=int(start))


def normalize(dfa: ByteDFA, *, minimal: bool = True) -> ByteDFA:
    return _finish(dfa.trans, np.asarray(dfa.accepting, bool), int(dfa.start), minimal=minimal,
                   byte_class=dfa.classes)


def minimize(dfa: ByteDFA) -> ByteDFA:
    """The minimal DFA of ``dfa``'s language, in canonical form."""
    return normalize(dfa, minimal=True)


def trim(dfa: ByteDFA) -> ByteDFA:
    """Drop unreachable and dead-end states (no merging); BFS-renumbered."""
    return normalize(dfa, minimal=False)


def is_empty(dfa: ByteDFA) -> bool:
    """True iff ``dfa`` accepts no byte string (works on untrimmed DFAs too)."""
    got = dfa.__dict__.get("_empty")
    if got is None:
        acc = np.asarray(dfa.accepting, bool)
        got = not acc.any() or not _k().reaches_accepting(readonly(dfa.trans, np.int32), readonly(acc, np.bool_),
                                                          int(dfa.start))
        if not (dfa.trans.flags.writeable or dfa.accepting.flags.writeable):
            dfa.__dict__["_empty"] = got  # kept like dfa_key's: read-only DFAs cannot change
    return got


# --------------------------------------------------------------------------- products

#: Product modes: which pairs of component states are alive / accepting.
#: ``"and"`` L(a) ∩ L(b), ``"or"`` L(a) ∪ L(b), ``"diff"`` L(a) \\ L(b),
#: ``"xor"`` the symmetric difference.
PRODUCT_MODES = ("and", "or", "diff", "xor")


def product(a: ByteDFA, b: ByteDFA, mode: str, *, minimal: bool = True,
            max_states: int = DEFAULT_PRODUCT_STATES, sinks_only: bool = False) -> ByteDFA:
    """Product automaton of ``a`` and ``b`` (``mode`` in :data:`PRODUCT_MODES`).

    A breadth-first construction over the merged byte classes (one kernel
    call, see kernels_reference.product_table).  ``minimal``: minimise (canonical result); otherwise
    only trim.  ``sinks_only``: the caller guarantees that the product's only
    dead states are non-accepting states without edges (true for "any string
    minus a finite set"), so only those are removed -- fast, and the states keep
    the BFS numbering.  Raises :class:`BudgetExceeded` beyond ``max_states``."""
    if mode not in PRODUCT_MODES:
        raise ValueError(f"product mode must be one of {PRODUCT_MODES}, not {mode!r}")
    global _products_bytes
    key = (dfa_key(a), dfa_key(b), mode, bool(minimal), int(max_states), bool(sinks_only), _k().__name__)
    hit = _PRODUCTS.get(key)
    if hit is None:
        hit = _product(a, b, mode, minimal, max_states, sinks_only)
        size = hit.trans.nbytes + len(key[0][2]) + len(key[1][2]) + 512
        if _products_bytes + size > _PRODUCTS_MAX_BYTES:
            _PRODUCTS.clear()
            _products_bytes = 0
        _PRODUCTS[key] = hit
        _products_bytes += size
    return hit


#: product results by operands and options (results are read-only, so shared):
#: schemas repeat the same few unions (a type's scalars with null, ...) and
#: key/format intersections many times.  Emptied when over the byte budget.
_PRODUCTS: dict = {}
_PRODUCTS_MAX_BYTES = 64 << 20
_products_bytes = 0


def _product(a: ByteDFA, b: ByteDFA, mode: str, minimal: bool, max_states: int, sinks_only: bool) -> ByteDFA:
    ids, accepting, byte_class = _k().product_table(
        readonly(a.trans, np.int32), readonly(a.classes, np.uint8), readonly(a.accepting, np.bool_), int(a.start),
        readonly(b.trans, np.int32), readonly(b.classes, np.uint8), readonly(b.accepting, np.bool_), int(b.start),
        PRODUCT_MODES.index(mode), int(max_states))
    if ids.shape[0] == 0:
        raise BudgetExceeded(f"DFA product ({mode}) exceeds max_states={max_states}")
    if sinks_only and not minimal:
        ids, accepting = _k().drop_sinks(readonly(ids, np.int32), readonly(accepting, np.bool_))
        return from_trimmed_table(ids, accepting, 0, byte_class=byte_class)  # compacted without a 256-wide copy
    return _finish(ids, accepting, 0, minimal=minimal, byte_class=byte_class)


def intersect(a: ByteDFA, b: ByteDFA, *, max_states: int = DEFAULT_PRODUCT_STATES) -> ByteDFA:
    """DFA of L(a) ∩ L(b), minimal."""
    return product(a, b, "and", max_states=max_states)


def union(a: ByteDFA, b: ByteDFA, *, max_states: int = DEFAULT_PRODUCT_STATES) -> ByteDFA:
    """DFA of L(a) ∪ L(b), minimal."""
    return product(a, b, "or", max_states=max_states)


def difference(a: ByteDFA, b: ByteDFA, *, max_states: int = DEFAULT_PRODUCT_STATES) -> ByteDFA:
    """DFA of L(a) \\ L(b), minimal."""
    return product(a, b, "diff", max_states=max_states)


def complement_within(a: ByteDFA, universe: ByteDFA, *, max_states: int = DEFAULT_PRODUCT_STATES) -> ByteDFA:
    """DFA of L(universe) \\ L(a): the complement of ``a`` relative to ``universe``."""
    return product(universe, a, "diff", max_states=max_states)


def union_all(dfas, *, max_states: int = DEFAULT_PRODUCT_STATES) -> ByteDFA:
    """DFA of the union of many languages, merged pairwise in a balanced tree
    (intermediate products stay small)."""
    dfas = [d for d in dfas if not is_empty(d)]
    if not dfas:
        return empty_dfa()
    while len(dfas) > 1:
        nxt = [union(dfas[i], dfas[i + 1], max_states=max_states) for i in range(0, len(dfas) - 1, 2)]
        if len(dfas) % 2:
            nxt.append(dfas[-1])
        dfas = nxt
    return dfas[0]


# --------------------------------------------------------------------------- concatenation


def concat(a: ByteDFA, b: ByteDFA, *, max_states: int = 200_000) -> ByteDFA:
    """DFA of L(a) L(b), trimmed (not minimised).

    When no accepting state of ``a`` has an edge on a byte that ``b`` can start
    with, where ``a`` ends is decided by the next byte: the tables are glued (an
    accepting state of ``a`` also gets the edges of ``b``'s start), linear in
    size.  Otherwise a subset construction over (state of a, set of states of b)."""
    # glue over the merged byte classes (pairs of a class of a and one of b), not 256 columns
    ca, cb = np.asarray(a.classes, np.int64), np.asarray(b.classes, np.int64)
    _, first, byte_class = np.unique(ca * 256 + cb, return_index=True, return_inverse=True)
    ta = np.asarray(a.trans, np.int64)[:, ca[first]]
    tb = np.asarray(b.trans, np.int64)[:, cb[first]]
    acc_a = np.flatnonzero(np.asarray(a.accepting, bool))
    b_first = tb[b.start] >= 0
    if not ((ta[acc_a] >= 0) & b_first).any():
        Sa, Sb = ta.shape[0], tb.shape[0]
        tbl = np.full((Sa + Sb, ta.shape[1]), -1, np.int64)
        tbl[:Sa] = ta
        tbl[Sa:] = np.where(tb >= 0, tb + Sa, -1)
        tbl[acc_a] = np.where(b_first, tbl[Sa + b.start], ta[acc_a])
        acc = np.zeros(Sa + Sb, bool)
        acc[Sa:] = np.asarray(b.accepting, bool)
        acc[acc_a] = bool(b.accepting[b.start])
        # b's start may be unreachable: trim
        return from_table(tbl, acc, a.start, minimal=False, byte_class=np.asarray(byte_class).reshape(-1))
    return _concat_subsets(expand(a), expand(b), a, b, max_states)


def _concat_subsets(ta: np.ndarray, tb: np.ndarray, a: ByteDFA, b: ByteDFA, max_states: int) -> ByteDFA:
    """Subset construction: a state is (state of a or -1, frozenset of states of b)."""
    ta_rows, tb_rows = ta.tolist(), tb.tolist()  # list indexing: far cheaper than numpy scalars here
    acc_a = np.asarray(a.accepting, bool).tolist()
    acc_b = np.asarray(b.accepting, bool).tolist()

    def norm(sa: int, sbs: frozenset) -> tuple:
        if sa >= 0 and acc_a[sa]:
            sbs = sbs | {b.start}
        return (sa, sbs)

    def step(state, byte):
        sa, sbs = state
        a2 = ta_rows[sa][byte] if sa >= 0 else -1
        bs = frozenset(t for t in (tb_rows[s][byte] for s in sbs) if t >= 0)
        return None if a2 < 0 and not bs else norm(a2, bs)

    return explore(norm(a.start, frozenset()), step, lambda st: any(acc_b[s] for s in st[1]),
                   max_states=max_states, what="DFA concatenation")


def alphabet_columns(alphabet) -> np.ndarray:
    """Column of each byte in :func:`explore`'s narrow tables: the alphabet's bytes in
    the order given, every other byte the one dead column after them."""
    col = np.full(256, len(alphabet), np.intp)
    col[list(alphabet)] = np.arange(len(alphabet))
    return col


def explore(start, step, accepting, *, alphabet=range(256), max_states: int = DEFAULT_PRODUCT_STATES,
            what: str = "automaton", rows=None) -> ByteDFA:
    """Minimal DFA of a deterministic machine given as functions: breadth-first
    from the hashable state ``start``, ``step(state, byte)`` is the next state or
    None (dead) for each byte of ``alphabet`` (other bytes are dead), and
    ``accepting(state)`` says whether it accepts.  :class:`BudgetExceeded` (naming
    ``what``) once more than ``max_states`` states are reached.  ``rows(state)``,
    when given, lists every ``(byte, next state)`` at once (same transitions as
    ``step``, cheaper for machines that share work across bytes); ``byte`` may be a
    ``range`` of consecutive bytes with that one next state."""
    index = {start: 0}
    queue = [start]
    src: list[int] = []  # single-byte edges as three flat lists, written into the table at once
    byt: list[int] = []
    dst: list[int] = []
    runs: list[tuple] = []  # (state, range, target) for the ranges
    if rows is None:
        def rows(st):
            return ((byte, step(st, byte)) for byte in alphabet)
    for i, st in enumerate(queue):
        last = None
        for byte, nxt in rows(st):
            if nxt is None:
                continue
            if nxt is not last:  # a row may repeat one state object for several bytes: hash it once
                last = nxt
                k = index.get(nxt)
                if k is None:
                    k = index[nxt] = len(queue)
                    queue.append(nxt)
                    if len(queue) > max_states:
                        raise BudgetExceeded(f"{what} exceeds max_states={max_states}")
            if byte.__class__ is range:
                runs.append((i, byte, k))
                continue
            src.append(i)
            byt.append(byte)
            dst.append(k)
    acc = np.array([bool(accepting(st)) for st in queue], bool)
    if len(alphabet) == 256:
        table = np.full((len(queue), 256), -1, np.int32)
        table[src, byt] = dst
        for i, r, k in runs:
            table[i, r.start:r.stop] = k
        return from_table(table, acc, 0)
    # one column per alphabet byte and one dead column for the rest: a narrow table
    col = alphabet_columns(alphabet)
    table = np.full((len(queue), len(alphabet) + 1), -1, np.int32)
    table[src, col[byt]] = dst
    for i, r, k in runs:
        table[i, col[r.start:r.stop]] = k
    return from_table(table, acc, 0, byte_class=col.astype(np.uint8))
