"""Earley recognition over terminals, with hash-consed chart rows.

A row is the set of Earley items after some prefix.  Item origins point at
*canonical* row ids, so a row's content determines its whole future: equal
rows get one id and every cache keyed by row id (advance, masks) is shared
between positions, sequences and requests.  A parser state is just an int.

Items are ``(rule, dot, origin)``; ``origin == -1`` means "predicted in this
row".  A row splits into its *dynamic* items (scanned or completed, carrying
real origins) and its *predicted* items, which depend only on the set of
nonterminals the dynamic items predict: that static part is computed once per
such set and shared, so building a row costs only its few dynamic items.
Nullable nonterminals use the Aycock–Horspool fix (predicting a nullable
symbol also steps over it), so completion never needs the row under
construction."""

from __future__ import annotations

from ..errors import BudgetExceeded
from .ir import Grammar, symbol_term

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


class _Row:
    __slots__ = ("dynamic", "static", "allowed", "accepts")

    def __init__(self, dynamic: _Part, static: _Part, accepts: bool):
        self.dynamic, self.static = dynamic, static
        self.allowed = dynamic.allowed | static.allowed
        self.accepts = accepts

    def waiting(self, x: int):
        return self.dynamic.waiting.get(x, ()) + self.static.waiting.get(x, ())

    def scan(self, t: int):
        return self.dynamic.scan.get(t, ()) + self.static.scan.get(t, ())


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
        self._closures: dict[int, frozenset] = {}
        self._static: dict[frozenset, _Part] = {}
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
    def _make_row(self, kernel) -> int:
        rules, nullable, rows = self.rules, self.nullable, self._rows
        items = set(kernel)
        agenda = list(items)
        roots: set[int] = set()
        while agenda:
            r, d, o = agenda.pop()
            rhs = rules[r][1]
            if d == len(rhs):
                if o < 0:  # nullable completion: already stepped over at prediction
                    continue
                for r2, d2, o2 in rows[o].waiting(rules[r][0]):
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
        rid = self._ids.get(key)
        if rid is not None:
            return rid
        if len(rows) >= self.max_rows:
            raise BudgetExceeded(f"Earley parser exceeded {self.max_rows} distinct chart rows")
        # S' -> start . with origin -1 (empty sentence) or the initial row (id 0)
        accepts = (self.accept_rule, 1, -1) in key or (self.accept_rule, 1, 0) in key
        row = _Row(_Part(key, rules), self._static_part(frozenset(roots)), accepts)
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
                for r, d, o in src.scan(t):
                    kernel.append((r, d + 1, row if o < 0 else o))
            bits >>= 1
            t += 1
        nxt = self._make_row(kernel) if kernel else DEAD
        self._advance[key] = nxt
        return nxt

    @property
    def num_rows(self) -> int:
        return len(self._rows)
