"""Earley recognition over terminals, with hash-consed chart rows.

A row is the set of Earley items after some prefix.  Item origins point at
*canonical* row ids, so a row's content determines its whole future: equal
rows get one id and every cache keyed by row id (advance, masks) is shared
between positions, sequences and requests.  A parser state is just an int.

Items are ``(rule, dot, origin)``; ``origin == -1`` means "predicted in this
row".  Nullable nonterminals use the Aycock–Horspool fix (predicting a
nullable symbol also steps over it), so completion never needs the row
under construction."""

from __future__ import annotations

from ..errors import BudgetExceeded
from .ir import Grammar, symbol_term

DEAD = -1


class _Row:
    __slots__ = ("items", "waiting", "scan", "allowed", "accepts")

    def __init__(self, items, waiting, scan, allowed, accepts):
        self.items = items  # frozenset of items
        self.waiting = waiting  # nonterminal -> tuple of items with the dot before it
        self.scan = scan  # terminal -> tuple of items with the dot before it
        self.allowed = allowed  # bitmask of terminals scannable here
        self.accepts = accepts  # the prefix is a complete sentence


class EarleyParser:
    """Shared, growing store of rows for one grammar; ``advance`` is memoised."""

    def __init__(self, grammar: Grammar, *, max_rows: int = 2_000_000):
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
        self._rows: list[_Row] = []
        self._ids: dict[frozenset, int] = {}
        self._advance: dict[tuple[int, int], int] = {}
        self.initial = self._make_row([(self.accept_rule, 0, -1)])

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

    # --- rows -----------------------------------------------------------
    def _make_row(self, kernel) -> int:
        rules, by_lhs, nullable, rows = self.rules, self.by_lhs, self.nullable, self._rows
        items = set(kernel)
        agenda = list(items)
        while agenda:
            r, d, o = agenda.pop()
            rhs = rules[r][1]
            if d == len(rhs):
                if o < 0:  # nullable completion: already stepped over at prediction
                    continue
                for r2, d2, o2 in rows[o].waiting.get(rules[r][0], ()):
                    it = (r2, d2 + 1, o if o2 < 0 else o2)
                    if it not in items:
                        items.add(it)
                        agenda.append(it)
                continue
            x = rhs[d]
            if x >= 0:
                for r2 in by_lhs.get(x, ()):
                    it = (r2, 0, -1)
                    if it not in items:
                        items.add(it)
                        agenda.append(it)
                if x in nullable:
                    it = (r, d + 1, o)
                    if it not in items:
                        items.add(it)
                        agenda.append(it)
        key = frozenset(items)
        rid = self._ids.get(key)
        if rid is not None:
            return rid
        if len(rows) >= self.max_rows:
            raise BudgetExceeded(f"Earley parser exceeded {self.max_rows} distinct chart rows")
        waiting: dict[int, list] = {}
        scan: dict[int, list] = {}
        allowed = 0
        accepts = False
        for it in key:
            r, d, o = it
            rhs = rules[r][1]
            if d == len(rhs):
                if r == self.accept_rule:
                    accepts = True
                continue
            x = rhs[d]
            if x >= 0:
                waiting.setdefault(x, []).append(it)
            else:
                t = symbol_term(x)
                scan.setdefault(t, []).append(it)
                allowed |= 1 << t
        row = _Row(key, {k: tuple(v) for k, v in waiting.items()},
                   {k: tuple(v) for k, v in scan.items()}, allowed, accepts)
        rid = len(rows)
        rows.append(row)
        self._ids[key] = rid
        return rid

    def allowed(self, row: int) -> int:
        """Bitmask of the terminals the parser can take next."""
        return self._rows[row].allowed

    def accepts(self, row: int) -> bool:
        return self._rows[row].accepts

    def advance(self, row: int, terminals: int) -> int:
        """Row after scanning one lexeme that matched every terminal in the bitmask
        ``terminals`` (Earley takes all readings at once); DEAD if none fits."""
        key = (row, terminals)
        hit = self._advance.get(key)
        if hit is not None:
            return hit
        src = self._rows[row]
        kernel = []
        t, bits = 0, terminals & src.allowed
        while bits:
            if bits & 1:
                for r, d, o in src.scan[t]:
                    kernel.append((r, d + 1, row if o < 0 else o))
            bits >>= 1
            t += 1
        nxt = self._make_row(kernel) if kernel else DEAD
        self._advance[key] = nxt
        return nxt

    @property
    def num_rows(self) -> int:
        return len(self._rows)
