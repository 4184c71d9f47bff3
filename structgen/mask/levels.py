"""Level tables: a constraint's memoised lexeme-boundary recursion as arrays, so
that a mask whose pieces are all known is one kernel call (``fill_levels``).

The mask of ``(row, s)`` is the walk of the row's lexer from ``s`` over the trie
OR, for each set of terminals a lexeme can end with inside a token, the same
from the row after that lexeme, at state 0, over the token subtrees where it
ended (see engine.py).  The pieces are memoised here under small ints:

* row slots: Row objects (kept alive while in the tables) with their lexer id;
* ids of lexers (by allowed-terminal mask), of terminal sets, and of trie ranges
  (the ranges a level walks, with the slice whose trie they index);
* plans: (lexer id << 32 | state, range id) -> the walk's words (sparse: word
  indices and words) and branches (terminal-set id, range id where lexemes ended);
* afters: (row slot, terminal-set id) -> slot of the row after that lexeme (-1: dead).

The kernel runs the recursion while every piece it meets is known and stops at
the first missing one; the constraint adds it and calls again.  The tables only
grow, and are dropped as a whole past their byte budget (between masks only:
the ids on a mask's stack stay valid while it runs).  Not thread-safe: the
constraint computes one mask at a time."""

from __future__ import annotations

import numpy as np

__all__ = ["LevelTables"]


def _empty_table(capacity: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((capacity, 2), -1, np.int64), np.zeros(capacity, np.int32)


def _grown(a: np.ndarray, need: int, fill=0) -> np.ndarray:
    """``a`` with room for ``need`` rows (capacity doubling: amortised copies)."""
    if need <= len(a):
        return a
    out = np.full((max(need, 2 * len(a)),) + a.shape[1:], fill, a.dtype)
    out[:len(a)] = a
    return out


class LevelTables:
    def __init__(self, kernels, budget_bytes: int):
        self._k = kernels
        self.budget_bytes = budget_bytes
        self.clear()

    def clear(self) -> None:
        self.rows: list = []  # slot -> Row
        self._slots: dict[int, int] = {}  # row serial -> slot
        self.lexers: list = []  # lexer id -> Lexer
        self._lexer_ids: dict[int, int] = {}  # allowed-terminal mask -> lexer id
        self.terms: list[int] = []  # terminal-set id -> terminal bitmask
        self._term_ids: dict[int, int] = {}
        self.ranges: list[tuple] = []  # range id -> (los, his, slice or None)
        self._range_ids: dict[tuple, int] = {}  # (bytes naming the ranges, slice name) -> range id
        self.row_lex = np.full(64, -1, np.int32)
        self.plan_keys, self.plan_vals = _empty_table(256)
        self.after_keys, self.after_vals = _empty_table(256)
        self.plan_meta = np.zeros((64, 4), np.int64)  # words start, end, branches start, end
        self.pool_idx, self.pool_words = np.zeros(1024, np.int32), np.zeros(1024, np.uint32)
        self.pool_terms, self.pool_ranges = np.zeros(256, np.int32), np.zeros(256, np.int32)
        self.stack = np.zeros((256, 3), np.int64)  # work items: row slot, lexer state, range id
        self.n_words = self.n_branches = 0
        # the same maps for Python (a dict read instead of a kernel call); keys
        # and values are ints and tuples of ints, which the collector does not track
        self._plans: dict[int, int] = {}  # (lexer id << 32 | state) << 32 | range id -> plan id
        self.branches: list[tuple] = []  # plan id -> (terminal-set id, range id, ...) flat
        self._afters: dict[int, int] = {}  # row slot << 32 | terminal-set id -> next slot
        self._object_bytes = 0

    @property
    def nbytes(self) -> int:
        arrays = (self.row_lex, self.plan_keys, self.plan_vals, self.after_keys, self.after_vals, self.plan_meta,
                  self.pool_idx, self.pool_words, self.pool_terms, self.pool_ranges, self.stack)
        return sum(a.nbytes for a in arrays) + self._object_bytes

    # --- interning ------------------------------------------------------------
    def slot(self, row, lexer_of) -> int:
        """The slot of ``row``, interned with the id of its lexer (``lexer_of(row)``)."""
        slot = self._slots.get(row.serial)
        if slot is None:
            lid = self.lexer_id(lexer_of(row))  # first: a lexer over budget raises before the row is in
            slot = self._slots[row.serial] = len(self.rows)
            self.rows.append(row)
            self.row_lex = _grown(self.row_lex, slot + 1, -1)
            self.row_lex[slot] = lid
            self._object_bytes += 120
        return slot

    def lexer_id(self, lex) -> int:
        lid = self._lexer_ids.get(lex.mask)
        if lid is None:
            lid = self._lexer_ids[lex.mask] = len(self.lexers)
            self.lexers.append(lex)
            self._object_bytes += 120
        return lid

    def term_id(self, terms: int) -> int:
        tid = self._term_ids.get(terms)
        if tid is None:
            tid = self._term_ids[terms] = len(self.terms)
            self.terms.append(terms)
            self._object_bytes += 100
        return tid

    def range_id(self, name: bytes, los: np.ndarray, his: np.ndarray, part) -> int:
        """The id of the trie ranges ``los``/``his`` (named by ``name``) of ``part``'s trie
        (the whole trie when None)."""
        key = (name, part and part.name)
        rid = self._range_ids.get(key)
        if rid is None:
            rid = self._range_ids[key] = len(self.ranges)
            self.ranges.append((los, his, part))
            self._object_bytes += 2 * len(name) + 200
        return rid

    # --- entries ---------------------------------------------------------------
    def _put(self, which: str, k1: int, k2: int, value: int, count: int) -> None:
        keys, vals = getattr(self, which + "_keys"), getattr(self, which + "_vals")
        if 2 * (count + 1) > len(keys):  # at most half full: probes stay short
            new_keys, new_vals = _empty_table(2 * len(keys))
            self._k.table_rehash(keys, vals, new_keys, new_vals)
            keys, vals = new_keys, new_vals
            setattr(self, which + "_keys", keys)
            setattr(self, which + "_vals", vals)
        self._k.table_put(keys, vals, k1, k2, value)

    @property
    def n_plans(self) -> int:
        return len(self.branches)

    def plan_of(self, lid: int, s: int, rid: int) -> int | None:
        """The plan id of (lexer id, state, range id), or None if none."""
        return self._plans.get((lid << 32 | s) << 32 | rid)

    def add_plan(self, lid: int, s: int, rid: int, idx: np.ndarray, words: np.ndarray,
                 branches: list[tuple[int, int]]) -> int:
        """A walk's words (``words[j]`` at word ``idx[j]``) and branches (terminal-set id, range id)."""
        pid, w0, b0 = self.n_plans, self.n_words, self.n_branches
        w1, b1 = w0 + len(idx), b0 + len(branches)
        self.pool_idx, self.pool_words = _grown(self.pool_idx, w1), _grown(self.pool_words, w1)
        self.pool_idx[w0:w1], self.pool_words[w0:w1] = idx, words
        self.pool_terms, self.pool_ranges = _grown(self.pool_terms, b1), _grown(self.pool_ranges, b1)
        for b, (tid, branch_rid) in enumerate(branches, b0):
            self.pool_terms[b], self.pool_ranges[b] = tid, branch_rid
        self.plan_meta = _grown(self.plan_meta, pid + 1)
        self.plan_meta[pid] = (w0, w1, b0, b1)
        self._put("plan", lid << 32 | s, rid, pid, pid)
        self._plans[(lid << 32 | s) << 32 | rid] = pid
        self.branches.append(tuple(v for branch in branches for v in branch))
        self.n_words, self.n_branches = w1, b1
        self._object_bytes += 100 + 20 * len(branches)
        return pid

    def after_of(self, slot: int, tid: int) -> int | None:
        """The slot after a lexeme of terminal set ``tid`` in row ``slot`` (-1: none fits), or None if unknown."""
        return self._afters.get(slot << 32 | tid)

    def add_after(self, slot: int, tid: int, next_slot: int) -> None:
        self._put("after", slot, tid, next_slot, len(self._afters))
        self._afters[slot << 32 | tid] = next_slot
        self._object_bytes += 60

    def grow_stack(self) -> None:
        self.stack = _grown(self.stack, 2 * len(self.stack))
