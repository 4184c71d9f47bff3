"""Pure Python + numpy DFA kernels: the readable reference for kernels_numba.py.

Both modules export the same functions with the same results (tests run both on
random tables).  Tables are ``int32[S, C]`` with -1 for "dead", ``accepting`` is
``bool[S]``.  ``trim_table`` / ``minimize_table`` return ``(trans, accepting)``
trimmed and numbered in breadth-first order from state 0 (classes explored in
order), or a ``0 x C`` table when the language is empty.  ``finish`` and
``product_table`` are the whole pipelines ops.py runs per call (one kernel call
each in the numba module)."""

from __future__ import annotations

import numpy as np


def row_ids(rows, ids_out, first_out, table):
    """Number the distinct rows of the int32 matrix ``rows`` by first occurrence:
    ``ids_out[r]`` is row ``r``'s number, ``first_out[i]`` the first row numbered
    ``i``.  ``table``: a power-of-two int32 hash table of at least 2 * rows
    entries filled with -1 (the numba kernel's; unused here).  Returns the
    number of distinct rows."""
    seen: dict[tuple, int] = {}
    for r in range(rows.shape[0]):
        key = tuple(rows[r].tolist())
        i = seen.get(key)
        if i is None:
            i = seen[key] = len(seen)
            first_out[i] = r
        ids_out[r] = i
    return len(seen)


def number_rows(rows):
    """(number of every row of the int32 matrix ``rows`` by first occurrence, first
    row of every number): ``row_ids`` with its outputs and hash table allocated."""
    ids, first = np.empty(len(rows), np.int32), np.empty(len(rows), np.int64)
    m = row_ids(rows, ids, first, None)
    return ids, first[:m]


def number_live_rows(rows, first_id):
    """Rows with a non-negative entry numbered ``first_id, first_id + 1, ...`` by first
    occurrence (equal rows share a number), rows of -1 only numbered -1: (every row's
    number, the distinct numbered rows in number order)."""
    ids, first = number_rows(rows)
    uniq = rows[first]
    live = uniq.max(axis=1, initial=-1) >= 0
    new = np.full(len(first), -1, np.int64)
    new[live] = first_id + np.arange(np.count_nonzero(live))
    return new[ids], np.ascontiguousarray(uniq[live], np.int32)


def compact_classes(trans256: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coarsest byte partition of an ``S x 256`` table (bytes with identical
    columns share a class), classes numbered by their smallest byte."""
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


def compact_bytes(table: np.ndarray, byte_class: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`compact_classes` of the ``S x 256`` table ``table[:, byte_class]``."""
    return compact_classes(table[:, np.asarray(byte_class, np.intp)])


def reaches_accepting(trans: np.ndarray, accepting: np.ndarray, start: int) -> bool:
    return bool((_reachable(trans, start) & accepting).any())


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


def trim_table(trans: np.ndarray, accepting: np.ndarray, start: int):
    live = _reachable(trans, start) & _coreachable(trans, accepting)
    if not live[start]:
        return np.zeros((0, trans.shape[1]), np.int32), np.zeros(0, bool)
    pruned = np.where((trans >= 0) & live[np.maximum(trans, 0)], trans, -1)
    return _renumber(pruned, accepting, _bfs_order(pruned, start))


def hopcroft(trans: np.ndarray, accepting: np.ndarray) -> np.ndarray:
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


def minimize_table(trans: np.ndarray, accepting: np.ndarray, start: int):
    trans, accepting = trim_table(trans, accepting, start)
    if trans.shape[0] == 0:
        return trans, accepting
    _, block = np.unique(hopcroft(trans, accepting), return_inverse=True)
    block = np.asarray(block, np.int64).reshape(-1)
    nb = int(block.max()) + 1
    if nb < trans.shape[0]:
        rep = np.full(nb, -1, np.int64)
        rep[block[::-1]] = np.arange(trans.shape[0])[::-1]  # smallest member per block
        t = trans[rep].astype(np.int64)
        t = np.where(t >= 0, block[np.maximum(t, 0)], -1)
        trans, accepting = t.astype(np.int32), accepting[rep]
        trans, accepting = _renumber(trans, accepting, _bfs_order(trans, int(block[0])))
    return trans, accepting


# product modes, by index: and, or, diff, xor
def product_bfs(ta: np.ndarray, tb: np.ndarray, start_a: int, start_b: int, mode: int, max_states: int):
    """Breadth-first product of two complete tables over shared classes (the last
    row of each is its sink).  Returns ``(ids, pa, pb)``: the product table
    (-1 where the pair is not alive for ``mode``) and each state's components,
    numbered in BFS order; ``ids`` has no rows beyond ``max_states`` states."""
    sink_a, sink_b = ta.shape[0] - 1, tb.shape[0] - 1
    W = sink_b + 1
    start = start_a * W + start_b
    codes = [np.array([start], np.int64)]
    all_codes = codes[0]
    rows = []
    known = {start}
    frontier = codes[0]
    while frontier.size:
        pa, pb = frontier // W, frontier % W
        na, nb = ta[pa], tb[pb]
        if mode == 0:
            alive = (na != sink_a) & (nb != sink_b)
        elif mode == 2:
            alive = na != sink_a
        else:
            alive = (na != sink_a) | (nb != sink_b)
        nc = np.where(alive, na * W + nb, -1)
        rows.append(nc)
        flat = nc.reshape(-1)
        flat = flat[flat >= 0]
        uniq, first = np.unique(flat, return_index=True)
        uniq = uniq[np.argsort(first, kind="stable")]
        fresh = [x for x in uniq.tolist() if x not in known]
        known.update(fresh)
        if len(known) > max_states:
            return np.zeros((0, ta.shape[1]), np.int32), all_codes[:0], all_codes[:0]
        frontier = np.array(fresh, np.int64)
        if frontier.size:
            codes.append(frontier)
    all_codes = np.concatenate(codes)
    table = np.vstack(rows)
    order = np.argsort(all_codes)
    ids = np.where(table >= 0, order[np.searchsorted(all_codes[order], np.maximum(table, 0))], -1)
    return ids.astype(np.int32), all_codes // W, all_codes % W


def finish(table: np.ndarray, byte_class: np.ndarray, accepting: np.ndarray, start: int, minimal: bool):
    """The normalised DFA of the ``S x 256`` table ``table[:, byte_class]``: compact
    classes, trim (and minimise), compact again.  Returns ``(trans, classes,
    accepting)``; ``trans`` has no rows for the empty language."""
    trans, classes = compact_classes(table[:, np.asarray(byte_class, np.intp)])
    trans, accepting = (minimize_table if minimal else trim_table)(trans, accepting, start)
    if trans.shape[0] == 0:
        return trans, classes, accepting
    # dropping states may merge byte classes (BFS order is unaffected: merged
    # classes keep their order of smallest byte)
    trans, classes = compact_classes(trans[:, classes.astype(np.intp)])
    return trans, classes, accepting


def product_table(ta, ca, acc_a, start_a, tb, cb, acc_b, start_b, mode, max_states):
    """Product of two DFAs (tables, byte classes, accepting, start) over their merged
    byte classes: ``(ids, accepting, byte_class)`` with ``ids`` numbered breadth-first
    (no rows beyond ``max_states`` states) and ``byte_class`` mapping bytes to its columns.
    ``mode``: 0 and, 1 or, 2 diff, 3 xor."""
    ca, cb = np.asarray(ca, np.int64), np.asarray(cb, np.int64)
    _, first, byte_class = np.unique(ca * 256 + cb, return_index=True, return_inverse=True)
    sink_a, sink_b = ta.shape[0], tb.shape[0]
    ta = np.asarray(ta, np.int64)[:, ca[first]]
    tb = np.asarray(tb, np.int64)[:, cb[first]]
    ta = np.vstack([np.where(ta < 0, sink_a, ta), np.full((1, ta.shape[1]), sink_a)])
    tb = np.vstack([np.where(tb < 0, sink_b, tb), np.full((1, tb.shape[1]), sink_b)])
    ids, pa, pb = product_bfs(ta, tb, start_a, start_b, mode, max_states)
    acc_a, acc_b = np.append(acc_a, False), np.append(acc_b, False)
    ops = (np.logical_and, np.logical_or, lambda x, y: x & ~y, np.logical_xor)
    return ids, ops[mode](acc_a[pa], acc_b[pb]), np.asarray(byte_class, np.uint8).reshape(-1)


def drop_sinks(ids: np.ndarray, accepting: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove the non-accepting states without edges, repeatedly (edges into them
    go; state 0 stays), then the states no edge enters (state 0 stays), renumbered
    in order.  Enough to trim a product whose only dead states are such sinks."""
    ids, acc = np.asarray(ids, np.int64), np.asarray(accepting, bool)
    while True:
        dead = ~acc & ~(ids >= 0).any(axis=1)
        dead[0] = False
        hit = (ids >= 0) & dead[np.maximum(ids, 0)]
        if not hit.any():
            break
        ids = np.where(hit, -1, ids)
    entered = np.zeros(len(ids), bool)
    entered[0] = True
    entered[ids[ids >= 0]] = True
    keep = np.flatnonzero(entered)
    remap = np.full(len(ids), -1, np.int64)
    remap[keep] = np.arange(len(keep))
    ids = np.where(ids >= 0, remap[np.maximum(ids, 0)], -1)[keep]
    return ids.astype(np.int32), acc[keep]


def subset_table(e_ptr, e_lo, e_hi, e_tgt, eps_ptr, eps_tgt, important, byte_class, n_cls, start, final,
                 max_states):
    """Subset construction of a byte NFA in CSR form: state ``q``'s edges are
    ``e_ptr[q] .. e_ptr[q + 1]`` (byte range ``e_lo .. e_hi`` to ``e_tgt``), its
    epsilon moves ``eps_tgt[eps_ptr[q] .. eps_ptr[q + 1]]``.  A DFA state is the
    sorted tuple of the ``important`` NFA states of an epsilon closure (those with
    edges, and ``final``); states are numbered in discovery order, rows explored
    and classes (``byte_class``: byte -> column) read in increasing order.
    Returns ``(table int32[S, n_cls], accepting bool[S], overflow)``: ``S = 0``
    when the start's closure is empty; ``overflow`` when more than ``max_states``
    states would be needed (the table is then incomplete)."""
    e_ptr, e_lo, e_hi, e_tgt = e_ptr.tolist(), e_lo.tolist(), e_hi.tolist(), e_tgt.tolist()
    eps_ptr, eps_tgt, important, cls = eps_ptr.tolist(), eps_tgt.tolist(), important.tolist(), byte_class.tolist()

    def closure(seeds) -> tuple:
        seen = set(seeds)
        stack = list(seen)
        while stack:
            q = stack.pop()
            for r in eps_tgt[eps_ptr[q]:eps_ptr[q + 1]]:
                if r not in seen:
                    seen.add(r)
                    stack.append(r)
        return tuple(sorted(q for q in seen if important[q]))

    def result(rows, sets, overflow):
        table = np.array(rows, np.int32).reshape(len(rows), n_cls)
        return table, np.array([final in s for s in sets[:len(rows)]], bool), overflow

    s0 = closure([start])
    if not s0:
        return result([], [], False)
    ids = {s0: 0}
    sets = [s0]
    rows: list[list[int]] = []
    while len(rows) < len(sets):
        moves: list[list[int]] = [[] for _ in range(n_cls)]
        for q in sets[len(rows)]:
            for e in range(e_ptr[q], e_ptr[q + 1]):
                for c in range(cls[e_lo[e]], cls[e_hi[e]] + 1):
                    moves[c].append(e_tgt[e])
        row = [-1] * n_cls
        for c, targets in enumerate(moves):
            u = closure(targets) if targets else ()
            if not u:
                continue
            j = ids.get(u)
            if j is None:
                if len(sets) >= max_states:
                    return result(rows, sets, True)
                j = ids[u] = len(sets)
                sets.append(u)
            row[c] = j
        rows.append(row)
    return result(rows, sets, False)
