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

Everything is pure Python + numpy; the per-state work is vectorised where that
is simple (BFS layers, product layers, class compaction) and Hopcroft's
partition refinement is plain Python (O(C * S log S)).
"""

from __future__ import annotations

import numpy as np

from ..errors import BudgetExceeded
from .fsm import ByteDFA

__all__ = [
    "PRODUCT_MODES",
    "compact_classes",
    "complement_within",
    "concat",
    "dfa_key",
    "difference",
    "empty_dfa",
    "expand",
    "explore",
    "from_edges",
    "from_table",
    "from_trimmed_table",
    "intersect",
    "is_empty",
    "minimize",
    "normalize",
    "product",
    "trim",
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


def expand(dfa: ByteDFA) -> np.ndarray:
    """The ``S x 256`` int64 table of ``dfa`` (one column per byte, -1 = dead)."""
    return np.asarray(dfa.trans, np.int64)[:, np.asarray(dfa.classes, np.intp)]


def dfa_key(dfa: ByteDFA) -> tuple:
    """Hashable value identifying ``dfa``'s exact table (equal keys: same automaton)."""
    return (dfa.start, dfa.trans.shape, dfa.trans.tobytes(), dfa.classes.tobytes(), dfa.accepting.tobytes())


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
    cols = np.ascontiguousarray(trans256.T.astype(np.int32))
    keys = cols.view(np.dtype((np.void, cols.shape[1] * 4))).reshape(-1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    order = np.argsort(first, kind="stable")  # class ids ordered by smallest byte
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    classes = rank[inverse].astype(np.uint8)
    trans = np.ascontiguousarray(trans256[:, first[order]], dtype=np.int32)
    return trans, classes


def _reachable(trans: np.ndarray, start: int) -> np.ndarray:
    rows = trans.tolist()
    seen = [False] * len(rows)
    seen[start] = True
    stack = [start]
    while stack:
        for t in rows[stack.pop()]:
            if t >= 0 and not seen[t]:
                seen[t] = True
                stack.append(t)
    return np.asarray(seen, bool)


def _coreachable(trans: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    S = trans.shape[0]
    preds: list[list[int]] = [[] for _ in range(S)]
    for s, row in enumerate(trans.tolist()):
        for t in row:
            if t >= 0:
                preds[t].append(s)
    seen = np.asarray(accepting, bool).tolist()
    stack = [s for s in range(S) if seen[s]]
    while stack:
        for s in preds[stack.pop()]:
            if not seen[s]:
                seen[s] = True
                stack.append(s)
    return np.asarray(seen, bool)


def _bfs_order(trans: np.ndarray, start: int) -> np.ndarray:
    """Reachable states in breadth-first order from ``start`` (classes explored in order)."""
    rows = trans.tolist()
    seen = [False] * len(rows)
    seen[start] = True
    order = [start]
    k = 0
    while k < len(order):
        for t in rows[order[k]]:
            if t >= 0 and not seen[t]:
                seen[t] = True
                order.append(t)
        k += 1
    return np.asarray(order, np.int64)


def _renumber(trans: np.ndarray, accepting: np.ndarray, keep_order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Restrict to ``keep_order`` (old ids, in new order); edges to dropped states become -1."""
    S = trans.shape[0]
    new_id = np.full(S + 1, -1, np.int64)  # index S stands for the dead -1
    new_id[keep_order] = np.arange(keep_order.size)
    t = trans[keep_order].astype(np.int64)
    t = np.where(t < 0, S, t)
    return new_id[t].astype(np.int32), accepting[keep_order]


def _trim_table(trans: np.ndarray, accepting: np.ndarray, start: int):
    """Trimmed, BFS-renumbered ``(trans, accepting)``, or ``None`` for an empty language."""
    live = _reachable(trans, start) & _coreachable(trans, accepting)
    if not live[start]:
        return None
    pruned = np.where((trans >= 0) & live[np.maximum(trans, 0)], trans, -1)
    order = _bfs_order(pruned, start)
    return _renumber(pruned, accepting, order)


# --------------------------------------------------------------------------- minimisation


def _hopcroft(trans: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """Block id per state of the coarsest language-preserving partition.

    Hopcroft's algorithm with a worklist of splitter blocks (each popped block is
    used with every class at once).  ``trans`` may contain -1; a sink state is
    added internally for it."""
    S, C = trans.shape
    has_dead = bool((trans < 0).any())
    n = S + 1 if has_dead else S
    t = trans.astype(np.int64)
    if has_dead:
        t = np.vstack([np.where(t < 0, S, t), np.full((1, C), S, np.int64)])
        acc = np.concatenate([accepting, [False]])
    else:
        acc = np.asarray(accepting, bool)
    # predecessors of every state as CSR over (class, source) pairs
    flat = t.reshape(-1)
    order = np.argsort(flat, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(flat, minlength=n), out=indptr[1:])
    pred_src = (order // C).tolist()
    pred_cls = (order % C).tolist()
    indptr = indptr.tolist()

    acc_list = acc.tolist()
    block_of = [0 if a else 1 for a in acc_list]
    blocks: list[set[int]] = [{s for s in range(n) if acc_list[s]}, {s for s in range(n) if not acc_list[s]}]
    if not blocks[0] or not blocks[1]:
        return np.zeros(S, np.int64)
    work = [0 if len(blocks[0]) <= len(blocks[1]) else 1]
    in_work = set(work)
    while work:
        splitter = work.pop()
        in_work.discard(splitter)
        by_class: dict[int, list[int]] = {}
        for q in list(blocks[splitter]):
            for k in range(indptr[q], indptr[q + 1]):
                c = pred_cls[k]
                lst = by_class.get(c)
                if lst is None:
                    by_class[c] = [pred_src[k]]
                else:
                    lst.append(pred_src[k])
        for srcs in by_class.values():
            touched: dict[int, list[int]] = {}
            for s in srcs:
                b = block_of[s]
                lst = touched.get(b)
                if lst is None:
                    touched[b] = [s]
                else:
                    lst.append(s)
            for y, xs in touched.items():
                ys = blocks[y]
                if len(xs) == len(ys):
                    continue
                z = len(blocks)
                xset = set(xs)
                ys -= xset
                blocks.append(xset)
                for s in xs:
                    block_of[s] = z
                if y in in_work or len(xset) <= len(ys):
                    work.append(z)
                    in_work.add(z)
                else:
                    work.append(y)
                    in_work.add(y)
    return np.asarray(block_of[:S], np.int64)


def _minimize_table(trans: np.ndarray, accepting: np.ndarray, start: int):
    """Trim + minimise; ``None`` for the empty language.  Result is BFS-numbered from 0."""
    res = _trim_table(trans, accepting, start)
    if res is None:
        return None
    trans, accepting = res
    _, block = np.unique(_hopcroft(trans, accepting), return_inverse=True)
    block = np.asarray(block, np.int64).reshape(-1)
    nb = int(block.max()) + 1
    if nb < trans.shape[0]:
        rep = np.full(nb, -1, np.int64)
        rep[block[::-1]] = np.arange(trans.shape[0])[::-1]  # smallest member per block
        t = trans[rep].astype(np.int64)
        t = np.where(t >= 0, block[np.maximum(t, 0)], -1)
        trans, accepting = t.astype(np.int32), accepting[rep]
        order = _bfs_order(trans, int(block[0]))
        trans, accepting = _renumber(trans, accepting, order)
    return trans, accepting


def _finish(trans256: np.ndarray, accepting: np.ndarray, start: int, *, minimal: bool) -> ByteDFA:
    trans, classes = compact_classes(trans256)
    fn = _minimize_table if minimal else _trim_table
    res = fn(trans, np.asarray(accepting, bool), start)
    if res is None:
        return empty_dfa()
    trans, accepting = res
    # dropping states may merge byte classes; re-compact (renumbering is unaffected:
    # BFS explores classes in order of smallest byte, which merging preserves)
    trans, classes2 = compact_classes(trans[:, classes.astype(np.intp)])
    return _make(trans, classes2, accepting)


def from_table(trans256: np.ndarray, accepting: np.ndarray, start: int = 0, *, minimal: bool = True) -> ByteDFA:
    """Normalised DFA from an ``S x 256`` table (-1 = dead), accepting mask and start."""
    trans256 = np.asarray(trans256, dtype=np.int64)
    accepting = np.asarray(accepting, dtype=bool)
    if trans256.ndim != 2 or trans256.shape[1] != 256 or accepting.shape != (trans256.shape[0],):
        raise ValueError("from_table needs an S x 256 table and an S-long accepting mask")
    return _finish(trans256, accepting, start, minimal=minimal)


def from_trimmed_table(trans256: np.ndarray, accepting: np.ndarray, start: int = 0) -> ByteDFA:
    """DFA from an ``S x 256`` table the caller knows to be trimmed (every state
    reachable and co-reachable): byte classes are compacted, states keep their
    numbers, nothing is minimised.  For large tables built trimmed by construction."""
    trans, classes = compact_classes(np.asarray(trans256))
    return ByteDFA(trans=_frozen(trans, np.int32), classes=_frozen(classes, np.uint8),
                   accepting=_frozen(accepting, bool), start=int(start))


def from_edges(edges: list[dict], accepting, start: int = 0) -> ByteDFA:
    """DFA from per-state ``{byte: target}`` dicts that are already trimmed; one
    byte class per byte used (cheaper than compacting for trie-shaped automata)."""
    used = sorted({b for e in edges for b in e})
    classes = np.zeros(256, np.uint8)
    classes[used] = np.arange(1, len(used) + 1)
    trans = np.full((len(edges), len(used) + 1), -1, np.int32)
    for i, e in enumerate(edges):
        if e:
            trans[i, classes[list(e.keys())]] = list(e.values())
    return ByteDFA(trans=_frozen(trans, np.int32), classes=_frozen(classes, np.uint8),
                   accepting=_frozen(accepting, bool), start=int(start))


def normalize(dfa: ByteDFA, *, minimal: bool = True) -> ByteDFA:
    return _finish(expand(dfa), np.asarray(dfa.accepting, bool), int(dfa.start), minimal=minimal)


def minimize(dfa: ByteDFA) -> ByteDFA:
    """The minimal DFA of ``dfa``'s language, in canonical form."""
    return normalize(dfa, minimal=True)


def trim(dfa: ByteDFA) -> ByteDFA:
    """Drop unreachable and dead-end states (no merging); BFS-renumbered."""
    return normalize(dfa, minimal=False)


def is_empty(dfa: ByteDFA) -> bool:
    """True iff ``dfa`` accepts no byte string (works on untrimmed DFAs too)."""
    acc = np.asarray(dfa.accepting, bool)
    if not acc.any():
        return True
    return not bool((_reachable(np.asarray(dfa.trans), int(dfa.start)) & acc).any())


# --------------------------------------------------------------------------- products

#: Product modes: which pairs of component states are alive / accepting.
#: ``"and"`` L(a) ∩ L(b), ``"or"`` L(a) ∪ L(b), ``"diff"`` L(a) \\ L(b),
#: ``"xor"`` the symmetric difference.
PRODUCT_MODES = ("and", "or", "diff", "xor")


def _merged_columns(a: ByteDFA, b: ByteDFA):
    """Per merged class: column of ``a`` and of ``b``; plus the byte -> merged class map."""
    ca = np.asarray(a.classes, np.int64)
    cb = np.asarray(b.classes, np.int64)
    key = ca * 256 + cb
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return ca[first], cb[first], np.asarray(inverse).reshape(-1)


def _drop_sinks(ids: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove non-accepting states without edges (iteratively) and what becomes unreachable.

    Enough to trim a product when the caller knows those are its only dead states."""
    while True:
        dead = ~acc & ~(ids >= 0).any(axis=1)
        dead[0] = False
        hit = (ids >= 0) & dead[np.maximum(ids, 0)]
        if not hit.any():
            break
        ids = np.where(hit, -1, ids)
    reach = np.zeros(len(ids), bool)
    reach[0] = True
    reach[ids[ids >= 0]] = True
    keep = np.flatnonzero(reach)
    if len(keep) < len(ids):
        remap = np.full(len(ids), -1, np.int64)
        remap[keep] = np.arange(len(keep))
        ids = np.where(ids >= 0, remap[np.maximum(ids, 0)], -1)[keep]
        acc = acc[keep]
    return ids, acc


def product(a: ByteDFA, b: ByteDFA, mode: str, *, minimal: bool = True,
            max_states: int = DEFAULT_PRODUCT_STATES, sinks_only: bool = False) -> ByteDFA:
    """Product automaton of ``a`` and ``b`` (``mode`` in :data:`PRODUCT_MODES`).

    A breadth-first construction over the merged byte classes, one vectorised
    step per BFS layer.  ``minimal``: minimise (canonical result); otherwise
    only trim.  ``sinks_only``: the caller guarantees that the product's only
    dead states are non-accepting states without edges (true for "any string
    minus a finite set"), so only those are removed -- fast, and the states keep
    the BFS numbering.  Raises :class:`BudgetExceeded` beyond ``max_states``."""
    if mode not in PRODUCT_MODES:
        raise ValueError(f"product mode must be one of {PRODUCT_MODES}, not {mode!r}")
    cols_a, cols_b, byte_class = _merged_columns(a, b)
    sink_a, sink_b = a.num_states, b.num_states
    ta = np.asarray(a.trans, np.int64)[:, cols_a]
    tb = np.asarray(b.trans, np.int64)[:, cols_b]
    ta = np.vstack([np.where(ta < 0, sink_a, ta), np.full((1, ta.shape[1]), sink_a)])
    tb = np.vstack([np.where(tb < 0, sink_b, tb), np.full((1, tb.shape[1]), sink_b)])
    acc_a = np.append(np.asarray(a.accepting, bool), False)
    acc_b = np.append(np.asarray(b.accepting, bool), False)
    W = sink_b + 1

    def alive(pa, pb):
        if mode == "and":
            return (pa != sink_a) & (pb != sink_b)
        if mode == "diff":
            return pa != sink_a
        return (pa != sink_a) | (pb != sink_b)  # or, xor

    start = int(a.start) * W + int(b.start)
    codes = [np.array([start], np.int64)]
    rows = []
    known = {start}
    frontier = codes[0]
    while frontier.size:
        pa, pb = frontier // W, frontier % W
        na, nb = ta[pa], tb[pb]
        nc = np.where(alive(na, nb), na * W + nb, -1)
        rows.append(nc)
        flat = nc.reshape(-1)
        flat = flat[flat >= 0]
        uniq, first = np.unique(flat, return_index=True)
        uniq = uniq[np.argsort(first, kind="stable")]
        fresh = [x for x in uniq.tolist() if x not in known]
        known.update(fresh)
        if len(known) > max_states:
            raise BudgetExceeded(f"DFA product ({mode}) exceeds max_states={max_states}")
        frontier = np.array(fresh, np.int64)
        if frontier.size:
            codes.append(frontier)
    all_codes = np.concatenate(codes)
    table = np.vstack(rows)
    order = np.argsort(all_codes)
    ids = np.where(table >= 0, order[np.searchsorted(all_codes[order], np.maximum(table, 0))], -1)
    pa, pb = all_codes // W, all_codes % W
    if mode == "and":
        accepting = acc_a[pa] & acc_b[pb]
    elif mode == "or":
        accepting = acc_a[pa] | acc_b[pb]
    elif mode == "diff":
        accepting = acc_a[pa] & ~acc_b[pb]
    else:
        accepting = acc_a[pa] ^ acc_b[pb]
    if sinks_only and not minimal:
        ids, accepting = _drop_sinks(ids, accepting)
        return from_trimmed_table(ids[:, byte_class], accepting, 0)
    return _finish(ids[:, byte_class], accepting, 0, minimal=minimal)


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
    ta, tb = expand(a), expand(b)
    acc_a = np.flatnonzero(np.asarray(a.accepting, bool))
    b_first = tb[b.start] >= 0
    if not ((ta[acc_a] >= 0) & b_first).any():
        Sa, Sb = ta.shape[0], tb.shape[0]
        tbl = np.full((Sa + Sb, 256), -1, np.int64)
        tbl[:Sa] = ta
        tbl[Sa:] = np.where(tb >= 0, tb + Sa, -1)
        tbl[acc_a] = np.where(b_first, tbl[Sa + b.start], ta[acc_a])
        acc = np.zeros(Sa + Sb, bool)
        acc[Sa:] = np.asarray(b.accepting, bool)
        acc[acc_a] = bool(b.accepting[b.start])
        return from_table(tbl, acc, a.start, minimal=False)  # b's start may be unreachable: trim
    return _concat_subsets(ta, tb, a, b, max_states)


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


def explore(start, step, accepting, *, alphabet=range(256), max_states: int = DEFAULT_PRODUCT_STATES,
            what: str = "automaton") -> ByteDFA:
    """Minimal DFA of a deterministic machine given as functions: breadth-first
    from the hashable state ``start``, ``step(state, byte)`` is the next state or
    None (dead) for each byte of ``alphabet`` (other bytes are dead), and
    ``accepting(state)`` says whether it accepts.  :class:`BudgetExceeded` (naming
    ``what``) once more than ``max_states`` states are reached."""
    index = {start: 0}
    queue = [start]
    rows = []
    for st in queue:
        row = np.full(256, -1, np.int64)
        for byte in alphabet:
            nxt = step(st, byte)
            if nxt is None:
                continue
            k = index.get(nxt)
            if k is None:
                k = index[nxt] = len(queue)
                queue.append(nxt)
                if len(queue) > max_states:
                    raise BudgetExceeded(f"{what} exceeds max_states={max_states}")
            row[byte] = k
        rows.append(row)
    return from_table(np.stack(rows), np.array([bool(accepting(st)) for st in queue], bool), 0)
