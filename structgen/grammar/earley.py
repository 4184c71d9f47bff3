"""Earley recognition over terminals, with hash-consed chart rows.

A row is the set of Earley items after some prefix.  Item origins point at
*canonical* rows, so a row's content determines its whole future: equal rows
are one object and every cache keyed by row (advance, steps, masks) is shared
between positions, sequences and requests.

Parser states are ``Row`` objects, not ids, so that rows can be freed: a row
lives while a matcher, a cache, the interning index or a later row (through
``origins``) holds it.  The index and the transition memo are bounded
(``max_rows``; past it they restart, and a row reached again is rebuilt as a
new object): a constraint serving millions of tokens keeps a bounded set of
rows and never fails mid-generation.  The row an item points at is read from
a serial index of the rows the interning index holds (no row lives longer for
it; a weak index cost two objects per row for the garbage collector to track),
or, for a row older than the last restart, found through ``origins`` from the
row being advanced.
Rows hash and compare by identity; they have no order.  Pointing only at
older rows, they never form a cycle: on CPython they leave the cycle
collector (see ``_gc_untracker``) and reference counting alone frees them.

An item is one int, ``origin << shift | position``: ``position`` numbers the
dotted rules (a rule's positions are consecutive, so moving the dot is ``+ 1``)
and ``origin`` is the ``serial`` of the origin row (serials start at 1 and are
never reused) or 0 for "predicted in this row".  Ints keep rows cheap: no
per-item objects, and nothing the garbage collector has to track.  A row
splits into its *dynamic* items (scanned or completed, carrying real origins;
few, kept as a sorted tuple of ints that is also the row's interning key: a tuple
of ints leaves the garbage collector's lists, a frozenset would stay in them; items
at the end of their rule are left out, having no future once completed) and its
*predicted* items, which depend only on the set of nonterminals the dynamic
items predict: that static part is computed once per such set (a bitmask) and
shared, so building a row costs only its few dynamic items.  Nullable
nonterminals use the Aycock–Horspool fix (predicting a nullable symbol also
steps over it), so completion never needs the row under construction."""

from __future__ import annotations

import ctypes
import itertools
import sys

from ..limits import DEFAULT_LIMITS
from .ir import Grammar, bit_indices, proven_heads, symbol_term

__all__ = ["ADVANCE_KEY_SHIFT", "DEAD", "EarleyParser", "Row"]

#: the "no row" result of ``advance`` (no reading of the lexeme fits)
DEAD = -1
#: ``EarleyParser.advanced`` keys are ``terminals << ADVANCE_KEY_SHIFT | row serial``
#: (one int: no tuple for the collector; serials stay far below 2**64)
ADVANCE_KEY_SHIFT = 64

# ``_nt`` of a position at the end of its rule / before a terminal: never a rule's
# left-hand side (the augmented start rule's is -1), so completion never matches them
_COMPLETE = -2
_TERMINAL = -3


class _Static:
    """The predicted items of a row, as dotted positions *after* the step (the
    caller puts the origin in): ``waiting[x]`` for completing nonterminal ``x``,
    ``scan[t]`` for terminal ``t``, and ``scans`` memoising the union per
    terminal bitmask (one advance = one dict hit)."""

    __slots__ = ("waiting", "scan", "scans", "allowed")

    def __init__(self, positions, rhs_at):
        waiting: dict[int, list] = {}
        scan: dict[int, list] = {}
        allowed = 0
        for p in positions:
            x = rhs_at[p]
            if x is None:
                continue
            if x >= 0:
                waiting.setdefault(x, []).append(p + 1)
            else:
                t = symbol_term(x)
                scan.setdefault(t, []).append(p + 1)
                allowed |= 1 << t
        self.waiting = {k: tuple(v) for k, v in waiting.items()}
        self.scan = {k: tuple(v) for k, v in scan.items()}
        self.scans: dict[int, tuple] = {}
        self.allowed = allowed

    def scanned(self, bits: int) -> tuple:
        """Positions after scanning any terminal of ``bits`` (memoised)."""
        hit = self.scans.get(bits)
        if hit is None:
            out: list = []
            for t in bit_indices(bits):
                out.extend(self.scan.get(t, ()))
            hit = tuple(out)
            if len(self.scans) >= 4096:  # bounded like every other memo
                self.scans.clear()
            self.scans[bits] = hit
        return hit


def _gc_untracker():
    """CPython's ``PyObject_GC_UnTrack`` (None elsewhere).  Rows point only at older rows
    (``origins``), so they never form a cycle and reference counting frees every one;
    the cycle collector need not traverse them.  Tracked, every row a mask fill
    memoises (a cold grammar mask makes ~100-200) was traversed again by each
    collection of the older generations, and their growth triggered those
    collections: in a process holding torch's ~300k objects a full one costs
    ~140 ms (one landed in the fills of each minilang replay).  ``ctypes.pythonapi``
    is a PyDLL: the call keeps the GIL, as the collector's lists require."""
    if sys.implementation.name != "cpython":
        return None
    try:
        fn = ctypes.pythonapi.PyObject_GC_UnTrack
    except AttributeError:
        return None
    fn.argtypes, fn.restype = [ctypes.py_object], None
    return fn


_untrack = _gc_untracker()


class Row:
    """One canonical chart row: ``allowed`` (bitmask of the terminals it can
    scan) and ``accepts`` (the prefix is a complete sentence).  ``serial``
    names it in items (unique per parser, never reused); ``origins`` (a row
    or a tuple of rows) keeps the rows its items point at alive; ``items``
    are its dynamic items and ``static`` its predicted part."""

    __slots__ = ("items", "static", "allowed", "accepts", "serial", "origins", "__weakref__")

    def __init__(self, items: tuple, static: _Static, allowed: int, accepts: bool, serial: int, origins):
        self.items, self.static = items, static
        self.allowed = allowed | static.allowed
        self.accepts = accepts
        self.serial = serial
        self.origins = origins

    def __repr__(self) -> str:
        return f"<Row {self.serial}>"


class EarleyParser:
    """The rows of one grammar; ``advance`` is memoised (at most ``max_rows``
    transitions, then the memo restarts).

    Safe to share between threads without a lock: every shared structure
    changes by single dict operations, and serials come from an atomic
    counter.  Two threads building the same row at once may get two equal
    row objects; both are correct (only cache sharing is lost)."""

    def __init__(self, grammar: Grammar, *, max_rows: int = DEFAULT_LIMITS.max_earley_rows):
        self.grammar = grammar
        self.max_rows = max_rows
        # The tables are tuples: holding ints (None, bools) only, the garbage collector
        # stops tracking them at its first pass, where lists (and dicts) would be
        # traversed by every collection of their generation (a big schema's have
        # thousands of entries each; a full collection of 150 compiled constraints took
        # twice as long with lists).
        # augmented start rule S' -> start, appended last
        self.rules = (*grammar.rules, (-1, (grammar.start,)))
        self.accept_rule = len(self.rules) - 1
        self.nullable = self._nullable()
        # dotted positions: rule r's are base[r] .. base[r] + len(rhs)
        base, rhs_at, lhs_at = [], [], []
        by_lhs: list[list[int]] = [[] for _ in grammar.nonterminals]
        for lhs, rhs in self.rules:
            b = len(rhs_at)
            base.append(b)
            if lhs >= 0:  # the augmented rule is never predicted
                by_lhs[lhs].append(b)
            rhs_at.extend(rhs)
            rhs_at.append(None)
            lhs_at.extend([lhs] * (len(rhs) + 1))
        self._rhs_at = rhs_at = tuple(rhs_at)
        self._lhs_at = tuple(lhs_at)
        # per position, what the closure needs in one list read each (a terminal
        # symbol x is terminal -x - 1: see ir.symbol_term)
        self._nt = tuple([(_COMPLETE if x is None else x if x >= 0 else _TERMINAL) for x in rhs_at])
        self._term_bit = tuple([(1 << (-x - 1)) if x is not None and x < 0 else 0 for x in rhs_at])
        nullable = self.nullable
        self._steps_null = tuple([x is not None and x in nullable for x in rhs_at]) if nullable \
            else (False,) * len(rhs_at)
        self.shift = shift = max(1, len(rhs_at).bit_length())
        self._pos_mask = (1 << shift) - 1
        self.by_lhs = tuple(map(tuple, by_lhs))  # nonterminal -> the first positions of its rules
        self._closures: dict[int, tuple] = {}
        self._static: dict[int, _Static] = {}  # bitmask of predicted nonterminals -> part
        self._ids: dict[tuple, Row] = {}  # items -> row (the interning index, bounded by max_rows)
        # serial -> row for the rows of the index (it holds them already): an item's origin
        # in one dict read; past a restart, rows older than it are found through origins
        self._by_serial: dict[int, Row] = {}
        # (terminals << ADVANCE_KEY_SHIFT | row serial) -> the row ``advance`` returned (or
        # DEAD); read directly by the mask loop, which advances a row per lexeme end it meets
        self.advanced: dict[int, Row | int] = {}
        self._completed: dict[int, tuple] = {}  # (row serial, nonterminal) packed in an int: see _completions
        self._serials = itertools.count(1)  # atomic: threads never share a serial; 0 = "this row"
        accept0 = base[self.accept_rule]
        # S' -> start . : the augmented rule is predicted in the initial row only, so an item
        # there (from that row, or completed back into it) means the prefix is a sentence
        self._accept_pos = accept0 + 1
        self.initial: Row = self._make_row([accept0], None)  # serial 1

    def _nullable(self) -> frozenset[int]:
        """Nonterminals that derive the empty string (a worklist: linear in the grammar)."""
        known = self.grammar.meta.get("nullable")  # from prune_unproductive, for these very rules
        if known is not None and known[0] is self.grammar.rules:
            return known[1]
        return frozenset(proven_heads(self.rules[:-1], frozenset())[2])

    def _prediction(self, x: int) -> tuple:
        """Every position predicted (origin: this row) in a row that predicts nonterminal ``x``."""
        hit = self._closures.get(x)
        if hit is not None:
            return hit
        nt, steps_null, by_lhs = self._nt, self._steps_null, self.by_lhs
        seen_nt = {x}
        agenda = list(by_lhs[x])
        items = set(agenda)
        while agenda:
            p = agenda.pop()
            y = nt[p]
            if y < 0:
                continue
            if y not in seen_nt:
                seen_nt.add(y)
                for q in by_lhs[y]:
                    if q not in items:
                        items.add(q)
                        agenda.append(q)
            if steps_null[p] and p + 1 not in items:
                items.add(p + 1)
                agenda.append(p + 1)
        result = self._closures[x] = tuple(items)  # a tuple of ints: untracked by the collector
        return result

    def _static_part(self, roots: int) -> _Static:
        part = self._static.get(roots)
        if part is None:
            items: set = set()
            for x in bit_indices(roots):
                items.update(self._prediction(x))
            part = self._static[roots] = _Static(items, self._rhs_at)
        return part

    # --- rows -----------------------------------------------------------
    def _make_row(self, kernel: list, parent: Row | None) -> Row:
        """The row of the items ``kernel`` (distinct; the list is consumed) and their
        closure.  ``parent``: the row advanced, whose serial and origins' serials are
        the origins of the kernel's items (None for the initial row, whose items have
        none); rows further back, met through completions, are read from the serial index
        (or, older than its last restart, found by ``_find``)."""
        nt, term_bit, steps_null = self._nt, self._term_bit, self._steps_null
        shift, pmask, completions, by_serial = self.shift, self._pos_mask, self._completed, self._by_serial
        items = set(kernel)
        agenda = kernel
        # The row's items but the complete ones (the accepting one aside): a complete item
        # has no future once its completions are in the row, so rows that differ only
        # there (after a number, a string, "}"... in the same context) are one row and
        # share their advances and masks.  The accepting item stays: it tells an accepting
        # row from an equal one that does not accept.
        kept = []
        accept_pos = self._accept_pos
        roots = allowed = 0
        accepts = False
        rows = None  # serial -> row, built on the first lookup past ``parent`` and its origins
        while agenda:
            it = agenda.pop()
            p = it & pmask
            x = nt[p]
            if x >= 0:
                kept.append(it)
                roots |= 1 << x
                if steps_null[p] and it + 1 not in items:
                    items.add(it + 1)
                    agenda.append(it + 1)
            elif x == _TERMINAL:
                kept.append(it)
                allowed |= term_bit[p]
            else:  # complete
                if p == accept_pos:
                    kept.append(it)
                    accepts = True
                o = it >> shift
                if not o:  # nullable completion: already stepped over at prediction
                    continue
                lhs = self._lhs_at[p]
                done = completions.get(o << 32 | lhs)
                if done is None:
                    orow = by_serial.get(o)
                    if orow is None:
                        orow, rows = _older(parent, rows, o)
                    done = self._completions(orow, lhs)
                for nit in done:
                    if nit not in items:
                        items.add(nit)
                        agenda.append(nit)
        kept.sort()
        key = tuple(kept)  # the predicted part is a function of these items
        row = self._ids.get(key)
        if row is not None:
            return row
        # the rows the items point at, kept alive by this one (a lone one unwrapped: fewer
        # objects); sorted items group by origin, so no set is built to find them
        origins = []
        last = 0
        for it in key:
            o = it >> shift
            if o != last:
                last = o
                if o == parent.serial:
                    origins.append(parent)
                    continue
                found = by_serial.get(o)
                if found is None:
                    found, rows = _older(parent, rows, o)
                origins.append(found)
        static = self._static.get(roots) or self._static_part(roots)
        row = Row(key, static, allowed, accepts, next(self._serials),
                  origins[0] if len(origins) == 1 else tuple(origins))
        if _untrack is not None:
            _untrack(row)
        if len(self._ids) >= self.max_rows:
            self._ids.clear()  # rows only the index held are freed
            by_serial.clear()
        self._ids[key] = row
        by_serial[row.serial] = row
        return row

    def _completions(self, orow: Row, lhs: int) -> tuple:
        """The items that completing ``lhs`` back to row ``orow`` adds: its items waiting
        for ``lhs`` and its predicted ones, dot moved over it (memoised: a row is
        completed into again and again, once per row built above it)."""
        nt, pmask, shift = self._nt, self._pos_mask, self.shift
        o = orow.serial
        base = o << shift
        done = tuple([it + 1 if it > pmask else base | (it + 1) for it in orow.items if nt[it & pmask] == lhs]
                     + [base | q for q in orow.static.waiting.get(lhs, ())])
        if len(self._completed) >= self.max_rows:
            self._completed.clear()
        self._completed[o << 32 | lhs] = done  # an int key and a tuple of ints: untracked by the collector
        return done

    def advance(self, row: Row, terminals: int) -> Row | int:
        """Row after scanning one lexeme that matched every terminal in the bitmask
        ``terminals`` (Earley takes all readings at once); DEAD if none fits."""
        key = terminals << ADVANCE_KEY_SHIFT | row.serial
        hit = self.advanced.get(key)
        if hit is not None:
            return hit
        bits = terminals & row.allowed
        nxt: Row | int = DEAD
        if bits:
            term_bit, pmask = self._term_bit, self._pos_mask
            base = row.serial << self.shift
            kernel = [it + 1 if it > pmask else base | (it + 1)
                      for it in row.items if term_bit[it & pmask] & bits]
            kernel.extend([base | q for q in row.static.scanned(bits)])
            nxt = self._make_row(kernel, row)
        if len(self.advanced) >= self.max_rows:
            self.advanced.clear()  # rows only the memo held are freed
        self.advanced[key] = nxt
        return nxt

    def clear_cache(self) -> None:
        """Forget the transition and completion memos and the interning index (rows
        still held elsewhere stay valid; one reached again is rebuilt as a new row)."""
        self.advanced.clear()
        self._completed.clear()
        self._ids.clear()
        self._by_serial.clear()

    @property
    def num_rows(self) -> int:
        """Rows in the interning index (at most ``max_rows``)."""
        return len(self._ids)


def _origin_rows(row: Row) -> tuple:
    """The rows ``row``'s items point at (``origins`` holds a lone one unwrapped)."""
    return (row.origins,) if type(row.origins) is Row else row.origins


def _older(parent: Row, rows: dict | None, serial: int) -> tuple[Row, dict]:
    """The row named ``serial`` that the serial index no longer holds (older than its
    last restart), found through origins from ``parent``; ``rows``: that search's
    index so far (None: not started), returned for the row build's next lookup."""
    if rows is None:
        rows = _rows_from(parent)
    return rows.get(serial) or _find(rows, serial), rows


def _rows_from(parent: Row) -> dict:
    """``_find``'s index, seeded with ``parent`` and its origins."""
    rows = {parent.serial: parent}
    for o in _origin_rows(parent):
        rows[o.serial] = o
    return rows


def _find(rows: dict, serial: int) -> Row:
    """The row named ``serial``, added to ``rows`` with the origins searched on the
    way: every item of a live row points at a row its origins keep alive, so a
    row reached from the one being advanced is found through origins.  ``rows[0]``
    (no serial is 0) lists the rows whose origins are not in ``rows`` yet."""
    todo = rows.get(0)
    if todo is None:
        todo = rows[0] = [r for r in rows.values()]
    while todo:
        r = todo.pop()
        for o in _origin_rows(r):
            if o.serial not in rows:
                rows[o.serial] = o
                todo.append(o)
        hit = rows.get(serial)
        if hit is not None:
            return hit
    raise AssertionError(f"row {serial} is not reachable through origins")
