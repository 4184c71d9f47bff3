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

    A product state is the vector of its components' states (one per allowed
    terminal, a shared dead index once a terminal is out).  The product is
    built breadth first, one level per array operation: a frontier of ``m``
    states steps through every byte class at once in one table that stacks
    the allowed terminals' DFAs, so the Python work is one dictionary lookup
    per new state, not one per (state, byte class).  Byte classes are those
    the allowed terminals tell apart (a big object's grammar has many more).
    Each lexer is then put in a canonical form (merged byte classes numbered
    by first byte, states numbered by BFS) so equal automata from different
    grammars share trie-walk caches."""

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
        table, classes, acc_rows = self._product(ids)
        acc_of: dict[bytes, int] = {}  # accepting-components pattern -> terminal bitmask
        acc_terms = []
        for key in map(bytes, acc_rows):
            m = acc_of.get(key)
            if m is None:
                m = acc_of[key] = sum(1 << ids[p] for p, a in enumerate(key) if a)
            acc_terms.append(m)
        return _canonical(mask, table, classes, acc_terms)

    def _product(self, ids: list[int]):
        """(int32[S, C] transitions, uint8[256] byte classes, bool[S, k] accepting
        components) of the product of the terminals ``ids``; state 0 is the start."""
        k = len(ids)
        # Byte classes of these terminals only.
        local, inv = np.unique(self._uniq[:, ids], axis=0, return_inverse=True)
        classes = inv.reshape(-1).astype(np.uint8)[self.classes]
        # All terminals' DFAs in one table: component p's state q is row offs[p] + q;
        # the last row is the shared dead state (it loops on itself).
        sizes = [self.dfas[j].num_states for j in ids]
        offs = np.zeros(k + 1, np.int64)
        np.cumsum(sizes, out=offs[1:])
        dead = int(offs[-1])
        big = np.empty((dead + 1, len(local)), np.int32)
        acc = np.zeros(dead + 1, bool)
        for p, j in enumerate(ids):
            d = self.dfas[j]
            t = d.trans[:, local[:, p]]
            big[offs[p]:offs[p + 1]] = np.where(t >= 0, t + offs[p], dead)
            acc[offs[p]:offs[p + 1]] = d.accepting
        big[dead] = dead
        n_cls = len(local)
        start = np.array([[offs[p] + self.dfas[j].start for p, j in enumerate(ids)]], np.int32)
        # State 0 means "no pending bytes": it is kept out of ``index`` so that a
        # transition back to the start vector (e.g. /(ab)*c/ after "ab") gets its own state.
        index: dict[bytes, int] = {}
        states = [start]
        rows = []
        frontier = start
        n_states = 1
        chunk = max(1, (1 << 22) // (n_cls * k))  # frontier states per array step (memory bound)
        while len(frontier):
            new = []
            for c0 in range(0, len(frontier), chunk):
                part = frontier[c0:c0 + chunk]
                nxt = big[part].transpose(0, 2, 1).reshape(-1, k)  # [(state, class), component]
                alive = np.flatnonzero((nxt != dead).any(axis=1))
                raw = nxt[alive].tobytes()
                width = 4 * k
                target = []
                for r in range(len(alive)):
                    key = raw[r * width:(r + 1) * width]
                    s = index.get(key)
                    if s is None:
                        s = index[key] = n_states
                        n_states += 1
                        new.append(key)
                    target.append(s)
                if n_states > self.max_states:
                    names = ", ".join(self.terminals[t].name for t in ids[:8])
                    raise BudgetExceeded(f"lexer for terminals {{{names}...}} exceeds "
                                         f"{self.max_states} states")
                out = np.full(len(nxt), -1, np.int32)
                out[alive] = target
                rows.append(out.reshape(len(part), n_cls))
            frontier = np.frombuffer(b"".join(new), np.int32).reshape(-1, k)
            states.append(frontier)
        table = np.concatenate(rows)
        return table, classes, acc[np.concatenate(states)]


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
