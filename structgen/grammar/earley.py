"""Earley recognition over terminals, with hash-consed chart rows.

A row is the set of Earley items after some prefix.  Item origins point at
*canonical* rows, so a row's content determines its whole future: equal rows
are one object and every cache keyed by row (advance, steps, masks) is shared
between positions, sequences and requests.

Rows are objects, not ids, so that they can be freed: a row lives while a
matcher, a cache or a later row (through an origin) holds it.  Interning is
weak (a row that died is rebuilt as a new object if it is reached again, and
the caches that could have named the old one held it alive, so none does) and
the transition memo is bounded (``max_rows``): a constraint serving millions
of tokens keeps a bounded set of rows and never fails mid-generation.  Rows
hash and compare by identity; they have no order.

Items are ``(rule, dot, origin)``; ``origin is None`` means "predicted in this
row".  A row splits into its *dynamic* items (scanned or completed, carrying
real origins) and its *predicted* items, which depend only on the set of
nonterminals the dynamic items predict: that static part is computed once per
such set and shared, so building a row costs only its few dynamic items.
Nullable nonterminals use the Aycock–Horspool fix (predicting a nullable
symbol also steps over it), so completion never needs the row under
construction."""

from __future__ import annotations

import threading
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
    numbers rows in creation order (debugging only)."""

    __slots__ = ("dynamic", "static", "allowed", "accepts", "serial", "__weakref__")

    def __init__(self, dynamic: _Part, static: _Part, accepts: bool, serial: int):
        self.dynamic, self.static = dynamic, static
        self.allowed = dynamic.allowed | static.allowed
        self.accepts = accepts
        self.serial = serial

    def __repr__(self) -> str:
        return f"<Row {self.serial}>"

    def waiting(self, x: int):
        return self.dynamic.waiting.get(x, ()) + self.static.waiting.get(x, ())

    def scan(self, t: int):
        return self.dynamic.scan.get(t, ()) + self.static.scan.get(t, ())


class EarleyParser:
    """The rows of one grammar; ``advance`` is memoised (at most ``max_rows``
    transitions, then the memo restarts).  Safe to share between threads."""

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
        # content -> row, weakly: the key (items) holds the origins, the row holds itself
        self._ids: "weakref.WeakValueDictionary[frozenset, Row]" = weakref.WeakValueDictionary()
        self._advance: dict[tuple[Row, int], Row | int] = {}
        self._lock = threading.RLock()
        self._serial = 0
        self.initial: Row | None = None
        self.initial = self._make_row([(self.accept_rule, 0, None)])

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
        """Every item predicted (origin None) in a row that predicts nonterminal ``x``."""
        hit = self._closures.get(x)
        if hit is not None:
            return hit
        rules, nullable = self.rules, self.nullable
        seen_nt = {x}
        items: set = set()
        agenda = [(r, 0, None) for r in self.by_lhs.get(x, ())]
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
                    it = (r2, 0, None)
                    if it not in items:
                        items.add(it)
                        agenda.append(it)
            if y in nullable:
                it = (r, d + 1, None)
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
        rules, nullable = self.rules, self.nullable
        items = set(kernel)
        agenda = list(items)
        roots: set[int] = set()
        while agenda:
            r, d, o = agenda.pop()
            rhs = rules[r][1]
            if d == len(rhs):
                if o is None:  # nullable completion: already stepped over at prediction
                    continue
                for r2, d2, o2 in o.waiting(rules[r][0]):
                    it = (r2, d2 + 1, o if o2 is None else o2)
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
        row = self._ids.get(key)
        if row is not None:
            return row
        # S' -> start . predicted here (empty sentence) or from the initial row
        acc = self.accept_rule
        accepts = (acc, 1, None) in key or (self.initial is not None and (acc, 1, self.initial) in key)
        row = Row(_Part(key, rules), self._static_part(frozenset(roots)), accepts, self._serial)
        self._serial += 1
        self._ids[key] = row
        return row

    def allowed(self, row: Row) -> int:
        """Bitmask of the terminals the parser can take next."""
        return row.allowed

    def accepts(self, row: Row) -> bool:
        return row.accepts

    def advance(self, row: Row, terminals: int) -> Row | int:
        """Row after scanning one lexeme that matched every terminal in the bitmask
        ``terminals`` (Earley takes all readings at once); DEAD if none fits."""
        key = (row, terminals)
        hit = self._advance.get(key)
        if hit is not None:
            return hit
        with self._lock:
            kernel = []
            t, bits = 0, terminals & row.allowed
            while bits:
                if bits & 1:
                    for r, d, o in row.scan(t):
                        kernel.append((r, d + 1, row if o is None else o))
                bits >>= 1
                t += 1
            nxt = self._make_row(kernel) if kernel else DEAD
            if len(self._advance) >= self.max_rows:
                self._advance.clear()  # rows only the memo held are freed
            self._advance[key] = nxt
        return nxt

    def clear_cache(self) -> None:
        """Forget the transition memo (rows still held elsewhere stay canonical)."""
        with self._lock:
            self._advance.clear()

    @property
    def num_rows(self) -> int:
        """Rows alive now (held by a matcher, a cache or a later row's origins)."""
        return len(self._ids)
