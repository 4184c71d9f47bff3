"""The contextual lexer: one product DFA per set of allowed terminals."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import BudgetExceeded
from ..grammar.ir import Terminal
from ..limits import DEFAULT_LIMITS


@dataclass(frozen=True, eq=False)
class Lexer:
    """Product of the DFAs of the terminals in ``mask``.

    State 0 is the start (no pending bytes).  ``acc_terms[s]`` is the bitmask of
    terminals whose lexeme is complete in ``s``; ``has_out[s]`` says whether some
    byte extends it (if not, the lexeme is over and is closed at once)."""

    mask: int
    trans: np.ndarray  # int32[S, C]
    classes: np.ndarray  # uint8[256]
    accepting: np.ndarray  # bool[S]
    acc_terms: tuple[int, ...]
    has_out: np.ndarray  # bool[S]
    acc_class: np.ndarray  # int32[S]: index of acc_terms[s] in term_sets
    term_sets: tuple[int, ...]  # the distinct acc_terms values
    walk_key: bytes  # digest of what a trie walk reads (trans, classes, accepting)

    @classmethod
    def make(cls, mask, trans, classes, acc_terms) -> "Lexer":
        term_sets = tuple(sorted(set(acc_terms)))
        pos = {m: i for i, m in enumerate(term_sets)}
        accepting = np.array([m != 0 for m in acc_terms], dtype=bool)
        digest = hashlib.blake2b(digest_size=16)
        for a in (np.asarray(trans.shape, np.int64), trans, classes, accepting):
            digest.update(np.ascontiguousarray(a).tobytes())
        return cls(mask, trans, classes, accepting, tuple(acc_terms), (trans >= 0).any(axis=1),
                   np.array([pos[m] for m in acc_terms], dtype=np.int32), term_sets, digest.digest())

    def step(self, state: int, byte: int) -> int:
        return int(self.trans[state, self.classes[byte]])


class LexerFactory:
    """Builds the lexer of any allowed-terminal set of one grammar.

    A product state is the tuple of its *live* components (terminal j, state of
    j); its transitions do not depend on which other terminals are allowed, so
    they are computed once per grammar over the grammar-wide byte classes and
    shared by every lexer (e.g. the many "remaining keys" sets of a large
    object).  Each lexer is then put in a canonical form (merged byte classes
    numbered by first byte, states numbered by BFS) so equal automata from
    different grammars share trie-walk caches."""

    def __init__(self, terminals: list[Terminal], *, max_states: int = DEFAULT_LIMITS.max_lexer_states):
        self.terminals = terminals
        self.max_states = max_states
        self.dfas = [t.dfa for t in terminals]
        if self.dfas:
            sig = np.stack([d.classes for d in self.dfas], axis=1)
            self._uniq, cls = np.unique(sig, axis=0, return_inverse=True)
        else:
            self._uniq, cls = np.zeros((1, 0), np.uint8), np.zeros(256, np.int64)
        self.classes = cls.astype(np.uint8).reshape(256)
        self.n_cls = len(self._uniq)
        self._per_term: dict[int, list] = {}
        self._rows: dict[tuple, list] = {}
        self._acc: dict[tuple, int] = {}

    def _term_rows(self, j: int) -> list:
        rows = self._per_term.get(j)
        if rows is None:
            rows = self._per_term[j] = self.dfas[j].trans[:, self._uniq[:, j]].tolist()
        return rows

    def _row(self, key: tuple) -> list:
        """Next product state (or None) for every grammar-wide byte class."""
        row = self._rows.get(key)
        if row is None:
            cols = zip(*[self._term_rows(j)[q] for j, q in key])
            js = [j for j, _ in key]
            row = [tuple((j, q) for j, q in zip(js, col) if q >= 0) or None for col in cols]
            self._rows[key] = row
        return row

    def _acc_terms(self, key: tuple) -> int:
        m = self._acc.get(key)
        if m is None:
            m = 0
            for j, q in key:
                if self.dfas[j].accepting[q]:
                    m |= 1 << j
            self._acc[key] = m
        return m

    def build(self, mask: int) -> Lexer:
        ids = [t for t in range(len(self.terminals)) if mask >> t & 1]
        if not ids:
            return Lexer.make(mask, np.full((1, 1), -1, np.int32), np.zeros(256, np.uint8), [0])
        if len(ids) == 1:  # no product needed: the terminal's own DFA behind a fresh start state
            d = self.dfas[ids[0]]
            shifted = np.where(d.trans >= 0, d.trans + 1, -1).astype(np.int32)
            trans = np.vstack([shifted[d.start][None], shifted])
            return Lexer.make(mask, trans, np.asarray(d.classes, np.uint8),
                              [0] + [(1 << ids[0]) if a else 0 for a in d.accepting.tolist()])
        start = tuple((j, self.dfas[j].start) for j in ids)
        # State 0 means "no pending bytes": it is kept out of ``index`` so that a
        # transition back to the start tuple (e.g. /(ab)*c/ after "ab") gets its own state.
        index: dict[tuple, int] = {}
        queue = [start]
        table = []
        for st in queue:
            out = []
            for nk in self._row(st):
                if nk is None:
                    out.append(-1)
                    continue
                k = index.get(nk)
                if k is None:
                    k = index[nk] = len(queue)
                    queue.append(nk)
                    if len(queue) > self.max_states:
                        names = ", ".join(self.terminals[t].name for t in ids[:8])
                        raise BudgetExceeded(f"lexer for terminals {{{names}...}} exceeds "
                                             f"{self.max_states} states")
                out.append(k)
            table.append(out)
        return _canonical(mask, np.array(table, np.int32), self.classes,
                          [self._acc_terms(st) for st in queue])


def _canonical(mask: int, trans: np.ndarray, classes: np.ndarray, acc_terms: list[int]) -> Lexer:
    """Merge identical byte-class columns, number classes by first byte and states by BFS."""
    cols, inv = np.unique(trans.T, axis=0, return_inverse=True)
    byte_cls = inv.reshape(-1)[classes]
    _, first = np.unique(byte_cls, return_index=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    local = cols[order].T  # [S, C] with classes in first-byte order
    rows = local.tolist()
    new = [-1] * len(rows)
    new[0] = 0
    queue = [0]
    for s in queue:
        for t in rows[s]:
            if t >= 0 and new[t] < 0:
                new[t] = len(queue)
                queue.append(t)
    perm = np.array(queue)
    remap = np.array(new + [-1], dtype=np.int32)  # index -1 -> -1
    trans2 = remap[local[perm]].astype(np.int32)
    return Lexer.make(mask, trans2, rank[byte_cls].astype(np.uint8), [acc_terms[o] for o in queue])


def build_lexer(terminals: list[Terminal], mask: int, *,
                max_states: int = DEFAULT_LIMITS.max_lexer_states) -> Lexer:
    """One lexer, without a shared factory (tests, one-off use)."""
    return LexerFactory(terminals, max_states=max_states).build(mask)
