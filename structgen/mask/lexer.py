"""The contextual lexer: one product DFA per set of allowed terminals."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import BudgetExceeded
from ..grammar.ir import Terminal


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


def build_lexer(terminals: list[Terminal], mask: int, *, max_states: int = 200_000) -> Lexer:
    ids = [t for t in range(len(terminals)) if mask >> t & 1]
    if not ids:
        return Lexer.make(mask, np.full((1, 1), -1, np.int32), np.zeros(256, np.uint8), [0])
    dfas = [terminals[t].dfa for t in ids]
    if len(dfas) == 1:  # no product needed: the terminal's own DFA behind a fresh start state
        d = dfas[0]
        shifted = np.where(d.trans >= 0, d.trans + 1, -1).astype(np.int32)
        trans = np.vstack([shifted[d.start][None], shifted])
        return Lexer.make(mask, trans, np.asarray(d.classes, np.uint8),
                          [0] + [(1 << ids[0]) if a else 0 for a in d.accepting.tolist()])
    sig = np.stack([d.classes for d in dfas], axis=1)
    uniq, cls = np.unique(sig, axis=0, return_inverse=True)
    n_cls = len(uniq)
    per_term = [d.trans[:, uniq[:, j]] for j, d in enumerate(dfas)]  # [S_j, C] each
    # A product state is the tuple of its *live* components (terminal j, state of
    # j): after a byte or two most terminals are dead, so work follows the live ones.
    start = tuple((j, d.start) for j, d in enumerate(dfas))
    # State 0 means "no pending bytes": it is kept out of ``index`` so that a
    # transition back to the start tuple (e.g. /(ab)*c/ after "ab") gets its own state.
    index: dict[tuple, int] = {}
    queue = [start]
    table: list[np.ndarray] = []
    for st in queue:
        js = [j for j, _ in st]
        nxt = np.stack([per_term[j][q] for j, q in st])
        row = np.full(n_cls, -1, np.int32)
        live = nxt >= 0
        for c in np.flatnonzero(live.any(axis=0)).tolist():
            col = nxt[:, c]
            key = tuple((js[i], int(col[i])) for i in np.flatnonzero(live[:, c]).tolist())
            k = index.get(key)
            if k is None:
                k = index[key] = len(queue)
                queue.append(key)
                if len(queue) > max_states:
                    names = ", ".join(terminals[t].name for t in ids[:8])
                    raise BudgetExceeded(f"lexer for terminals {{{names}...}} exceeds {max_states} states")
            row[c] = k
        table.append(row)
    trans = np.stack(table).astype(np.int32)
    acc_terms = []
    for st in queue:
        m = 0
        for j, q in st:
            if dfas[j].accepting[q]:
                m |= 1 << ids[j]
        acc_terms.append(m)
    return Lexer.make(mask, trans, cls.astype(np.uint8).reshape(256), acc_terms)
