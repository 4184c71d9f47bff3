"""Earley recognition over terminals, with hash-consed chart rows.

A row is the set of Earley items after some prefix.  Item origins point at
*canonical* rows, so a row's content determines its whole future: equal rows
are one object and every cache keyed by row (advance, steps, masks) is shared
between positions, sequences and requests.

Parser states are ``Row`` objects, not ids, so that rows can be freed: a row
lives while a matcher, a cache or a later row (through ``origins``) holds it.
Interning is weak (a row that died is rebuilt as a new object if it is
reached again; the caches that could name the old one held it alive, so none
does) and the transition memo is bounded (``max_rows``): a constraint serving
millions of tokens keeps a bounded set of rows and never fails
mid-generation.  Rows hash and compare by identity; they have no order.

Items are ``(rule, dot, origin)`` of ints: ``origin`` is the ``serial`` of the
origin row (serials are never reused) or -1 for "predicted in this row".
Plain-int items matter for speed: the garbage collector stops tracking
tuples of ints, and a chart has many.  A row splits into its *dynamic* items (scanned or completed, carrying
real origins) and its *predicted* items, which depend only on the set of
nonterminals the dynamic items predict: that static part is computed once per
such set and shared, so building a row costs only its few dynamic items.
Nullable nonterminals use the Aycock–Horspool fix (predicting a nullable
symbol also steps over it), so completion never needs the row under
construction."""

from __future__ import annotations

import itertools
import weakref

from ..limits import DEFAULT_LIMITS
from .ir import Grammar, symbol_term

__all__ = ["DEAD", "EarleyParser", "Row"]

#: the "no row" result of ``advance`` (no reading of the lexeme fits)
DEAD = -1


class _Part:
    """Items indexed for completion (``waiting``) and scanning (``scan``)."""

    __slots__ = ("waiting", "scan", "allowed")

    def __init__(self, items, rules):
        waiting: dict[int, list] = {}
        scan: dict[int, list] = {}
        allowed = 0
        for it in items:
            r, d, _ = it
            rhs = rules[r][1]
            if d == len(rhs):
                continue
            x = rhs[d]
            if x >= 0:
                waiting.setdefault(x, []).append(it)
            else:
                t = symbol_term(x)
                scan.setdefault(t, []).append(it)
                allowed |= 1 << t
        self.waiting = {k: tuple(v) for k, v in waiting.items()}
        self.scan = {k: tuple(v) for k, v in scan.items()}
        self.allowed = allowed


class Row:
    """One canonical chart row: ``allowed`` (bitmask of the terminals it can
    scan) and ``accepts`` (the prefix is a complete sentence).  ``serial``
    names it in items (unique per parser, never reused); ``origins`` (a row
    or a tuple of rows) keeps the rows its items point at alive."""

    __slots__ = ("dynamic", "static", "allowed", "accepts", "serial", "origins", "__weakref__")

    def __init__(self, dynamic: _Part, static: _Part, accepts: bool, serial: int, origins):
        self.dynamic, self.static = dynamic, static
        self.allowed = dynamic.allowed | static.allowed
        self.accepts = accepts
        self.serial = serial
        self.origins = origins

    def __repr__(self) -> str:
        return f"<Row {self.serial}>"

    def waiting(self, x: int):
        return self.dynamic.waiting.get(x, ()) + self.static.waiting.get(x, ())

    def scan(self, t: int):
        return self.dynamic.scan.get(t, ()) + self.static.scan.get(t, ())


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
        # augmented start rule S' -> start, appended last
        self.rules = list(grammar.rules) + [(-1, (grammar.start,))]
        self.accept_rule = len(self.rules) - 1
        by_lhs: dict[int, list[int]] = {}
        for i, (lhs, _) in enumerate(self.rules[:-1]):
            by_lhs.setdefault(lhs, []).append(i)
        self.by_lhs = {k: tuple(v) for k, v in by_lhs.items()}
        self.nullable = self._nullable()
        self._closures: dict[int, frozenset] = {}
        self._static: dict[frozenset, _Part] = {}
        # items -> row and serial -> row, both weak (one reference in both): a row
        # lives while something else holds it; dead entries are swept now and then
        self._ids: dict[frozenset, weakref.ref] = {}
        self._live: dict[int, weakref.ref] = {}
        self._sweep_at = 1024
        self._advance: dict[tuple[int, int], Row | int] = {}  # (row serial, terminals): int keys
        self._serials = itertools.count()  # atomic: threads never share a serial
        self.initial: Row = self._make_row([(self.accept_rule, 0, -1)])  # serial 0

    def _nullable(self) -> frozenset[int]:
        nullable: set[int] = set()
        changed = True
        while changed:
            changed = False
            for lhs, rhs in self.rules[:-1]:
                if lhs not in nullable and all(s >= 0 and s in nullable for s in rhs):
                    nullable.add(lhs)
                    changed = True
        return frozenset(nullable)

    def _prediction(self, x: int) -> frozenset:
        """Every item predicted (origin -1) in a row that predicts nonterminal ``x``."""
        hit = self._closures.get(x)
        if hit is not None:
            return hit
        rules, nullable = self.rules, self.nullable
        seen_nt = {x}
        items: set = set()
        agenda = [(r, 0, -1) for r in self.by_lhs.get(x, ())]
        items.update(agenda)
        while agenda:
            r, d, _ = agenda.pop()
            rhs = rules[r][1]
            if d == len(rhs) or rhs[d] < 0:
                continue
            y = rhs[d]
            if y not in seen_nt:
                seen_nt.add(y)
                for r2 in self.by_lhs.get(y, ()):
                    it = (r2, 0, -1)
                    if it not in items:
                        items.add(it)
                        agenda.append(it)
            if y in nullable:
                it = (r, d + 1, -1)
                if it not in items:
                    items.add(it)
                    agenda.append(it)
        result = self._closures[x] = frozenset(items)
        return result

    def _static_part(self, roots: frozenset) -> _Part:
        part = self._static.get(roots)
        if part is None:
            items: set = set()
            for x in roots:
                items |= self._prediction(x)
            part = self._static[roots] = _Part(items, self.rules)
        return part

    # --- rows -----------------------------------------------------------
    def _make_row(self, kernel) -> Row:
        rules, nullable, live = self.rules, self.nullable, self._live
        items = set(kernel)
        agenda = list(items)
        roots: set[int] = set()
        while agenda:
            r, d, o = agenda.pop()
            rhs = rules[r][1]
            if d == len(rhs):
                if o < 0:  # nullable completion: already stepped over at prediction
                    continue
                for r2, d2, o2 in live[o]().waiting(rules[r][0]):  # alive: a live row points at it
                    it = (r2, d2 + 1, o if o2 < 0 else o2)
                    if it not in items:
                        items.add(it)
                        agenda.append(it)
                continue
            x = rhs[d]
            if x >= 0:
                roots.add(x)
                if x in nullable:
                    it = (r, d + 1, o)
                    if it not in items:
                        items.add(it)
                        agenda.append(it)
        key = frozenset(items)  # the predicted part is a function of these items
        ref = self._ids.get(key)
        row = ref() if ref is not None else None
        if row is not None:
            return row
        if len(live) >= self._sweep_at:
            self._sweep()
        # S' -> start . predicted here (empty sentence) or from the initial row (serial 0)
        accepts = (self.accept_rule, 1, -1) in key or (self.accept_rule, 1, 0) in key
        serials = {o for _, _, o in key if o >= 0}
        # the rows the items point at, kept alive by this one (a lone one unwrapped: fewer objects)
        origins = live[serials.pop()]() if len(serials) == 1 else tuple(live[o]() for o in serials)
        serial = next(self._serials)
        row = Row(_Part(key, rules), self._static_part(frozenset(roots)), accepts, serial, origins)
        live[serial] = self._ids[key] = weakref.ref(row)
        return row

    def _sweep(self) -> None:
        """Drop the index entries of dead rows (amortised: the threshold doubles)."""
        for serial, ref in list(self._live.items()):
            if ref() is None:
                self._live.pop(serial, None)
        for key, ref in list(self._ids.items()):
            if ref() is None:
                self._ids.pop(key, None)
        self._sweep_at = max(1024, 2 * len(self._live))

    def allowed(self, row: Row) -> int:
        """Bitmask of the terminals the parser can take next."""
        return row.allowed

    def accepts(self, row: Row) -> bool:
        return row.accepts

    def advance(self, row: Row, terminals: int) -> Row | int:
        """Row after scanning one lexeme that matched every terminal in the bitmask
        ``terminals`` (Earley takes all readings at once); DEAD if none fits."""
        key = (row.serial, terminals)
        hit = self._advance.get(key)
        if hit is not None:
            return hit
        kernel = []
        t, bits, serial = 0, terminals & row.allowed, row.serial
        while bits:
            if bits & 1:
                for r, d, o in row.scan(t):
                    kernel.append((r, d + 1, serial if o < 0 else o))
            bits >>= 1
            t += 1
        nxt = self._make_row(kernel) if kernel else DEAD
        if len(self._advance) >= self.max_rows:
            self._advance.clear()  # rows only the memo held are freed
        self._advance[key] = nxt
        return nxt

    def clear_cache(self) -> None:
        """Forget the transition memo (rows still held elsewhere stay canonical)."""
        self._advance.clear()

    @property
    def indexed_rows(self) -> int:
        """Rows in the index, dead ones not yet swept included (cheap: for size estimates)."""
        return len(self._live)

    @property
    def num_rows(self) -> int:
        """Rows alive now (held by a matcher, a cache or a later row's origins)."""
        return sum(1 for ref in list(self._live.values()) if ref() is not None)
