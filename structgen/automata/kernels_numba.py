"""numba twins of kernels_reference.py (same functions, same results).

Tables come in as ``int32[S, C]`` / ``bool[S]`` (the wrappers in ops.py cast),
so each kernel is compiled for one signature and loaded from numba's cache."""

from __future__ import annotations

import numba
import numpy as np

_JIT = dict(cache=True, nogil=True)


@numba.njit(**_JIT)
def _take_columns(table, which, n):
    """int32 copy of columns ``which[:n]`` of ``table``, in that order."""
    out = np.empty((table.shape[0], n), np.int32)
    for s in range(table.shape[0]):
        for k in range(n):
            out[s, k] = table[s, which[k]]
    return out


@numba.njit(**_JIT)
def _hash_ints(vals, n):
    """FNV-style hash of ``vals[:n]`` (the open-addressing tables of row_ids and subset_table)."""
    h = np.int64(n)
    for k in range(n):
        h = (h ^ vals[k]) * np.int64(0x100000001B3)
    return h ^ (h >> 29)


@numba.njit(**_JIT)
def row_ids(rows, ids_out, first_out, table):
    n, w = rows.shape
    mask = table.shape[0] - 1
    n_first = 0
    for r in range(n):
        slot = _hash_ints(rows[r], w) & mask
        while True:
            f = table[slot]
            if f < 0:
                table[slot] = n_first
                first_out[n_first] = r
                ids_out[r] = n_first
                n_first += 1
                break
            fr = first_out[f]
            same = True
            for j in range(w):
                if rows[fr, j] != rows[r, j]:
                    same = False
                    break
            if same:
                ids_out[r] = f
                break
            slot = (slot + 1) & mask
    return n_first


@numba.njit(**_JIT)
def number_rows(rows):
    n = rows.shape[0]
    size = 1
    while size < 2 * n:
        size *= 2
    ids, first = np.empty(n, np.int32), np.empty(n, np.int64)
    m = row_ids(rows, ids, first, np.full(size, -1, np.int32))
    return ids, first[:m]


@numba.njit(**_JIT)
def number_live_rows(rows, first_id):
    """Rows with a non-negative entry numbered ``first_id, first_id + 1, ...`` by first
    occurrence (equal rows share a number), rows of -1 only numbered -1: (every row's
    number, the distinct numbered rows in number order)."""
    n, w = rows.shape
    ids, first = number_rows(rows)
    m = first.shape[0]
    new = np.full(m, -1, np.int64)
    keep = np.empty(m, np.int64)
    n_live = 0
    for u in range(m):
        r = first[u]
        for j in range(w):
            if rows[r, j] >= 0:
                new[u] = first_id + n_live
                keep[n_live] = r
                n_live += 1
                break
    out = np.empty(n, np.int64)
    for r in range(n):
        out[r] = new[ids[r]]
    uniq = np.empty((n_live, w), np.int32)
    for u in range(n_live):
        for j in range(w):
            uniq[u, j] = rows[keep[u], j]
    return out, uniq


@numba.njit(**_JIT)
def _compact_columns(table):
    """Distinct columns in order of first occurrence: ``(table', column -> class)``."""
    ids, first = number_rows(np.ascontiguousarray(table.T))
    return _take_columns(table, first, first.shape[0]), ids.astype(np.uint8)


@numba.njit(**_JIT)
def compact_classes(trans256):
    return _compact_columns(trans256)


@numba.njit(**_JIT)
def _reachable(trans, start):
    S, C = trans.shape
    seen = np.zeros(S, np.bool_)
    stack = np.empty(S, np.int64)
    seen[start] = True
    stack[0] = start
    top = 1
    while top:
        top -= 1
        s = stack[top]
        for c in range(C):
            t = trans[s, c]
            if t >= 0 and not seen[t]:
                seen[t] = True
                stack[top] = t
                top += 1
    return seen


@numba.njit(**_JIT)
def reaches_accepting(trans, accepting, start):
    seen = _reachable(trans, start)
    for s in range(seen.shape[0]):
        if seen[s] and accepting[s]:
            return True
    return False


@numba.njit(**_JIT)
def _preds(trans, n):
    """Predecessors as CSR keyed by ``c * n + target`` (targets -1 map to n - 1, the sink,
    which gets self loops when ``n > S``)."""
    S, C = trans.shape
    ptr = np.zeros(C * n + 1, np.int64)
    for s in range(S):
        for c in range(C):
            t = trans[s, c]
            if t < 0:
                t = n - 1
            ptr[c * n + t + 1] += 1
    if n > S:
        for c in range(C):
            ptr[c * n + n] += 1
    for i in range(C * n):
        ptr[i + 1] += ptr[i]
    fill = ptr[:-1].copy()
    src = np.empty(ptr[-1], np.int64)
    for s in range(n):
        for c in range(C):
            t = trans[s, c] if s < S else -1
            if t < 0:
                t = n - 1
            k = c * n + t
            src[fill[k]] = s
            fill[k] += 1
    return ptr, src


@numba.njit(**_JIT)
def _incoming(trans):
    """Predecessors regardless of class, one per edge, as CSR by target: the sources
    of the edges into ``t`` are ``src[ptr[t]:ptr[t + 1]]``."""
    S, C = trans.shape
    ptr = np.zeros(S + 1, np.int64)
    for s in range(S):
        for c in range(C):
            t = trans[s, c]
            if t >= 0:
                ptr[t + 1] += 1
    for i in range(S):
        ptr[i + 1] += ptr[i]
    fill = ptr[:-1].copy()
    src = np.empty(ptr[S], np.int64)
    for s in range(S):
        for c in range(C):
            t = trans[s, c]
            if t >= 0:
                src[fill[t]] = s
                fill[t] += 1
    return ptr, src


@numba.njit(**_JIT)
def _coreachable(trans, accepting):
    S = trans.shape[0]
    ptr, src = _incoming(trans)
    seen = np.zeros(S, np.bool_)
    stack = np.empty(S, np.int64)
    top = 0
    for s in range(S):
        if accepting[s]:
            seen[s] = True
            stack[top] = s
            top += 1
    while top:
        top -= 1
        q = stack[top]
        for k in range(ptr[q], ptr[q + 1]):
            s = src[k]
            if not seen[s]:
                seen[s] = True
                stack[top] = s
                top += 1
    return seen


@numba.njit(**_JIT)
def _bfs_renumber(trans, accepting, live, start):
    """Restrict to ``live`` states, numbered breadth-first from ``start``."""
    S, C = trans.shape
    new_id = np.full(S, -1, np.int64)
    order = np.empty(S, np.int64)
    new_id[start] = 0
    order[0] = start
    n = 1
    k = 0
    while k < n:
        s = order[k]
        for c in range(C):
            t = trans[s, c]
            if t >= 0 and live[t] and new_id[t] < 0:
                new_id[t] = n
                order[n] = t
                n += 1
        k += 1
    out = np.empty((n, C), np.int32)
    acc = np.empty(n, np.bool_)
    for i in range(n):
        s = order[i]
        acc[i] = accepting[s]
        for c in range(C):
            t = trans[s, c]
            out[i, c] = new_id[t] if t >= 0 and live[t] else -1
    return out, acc


@numba.njit(**_JIT)
def trim_table(trans, accepting, start):
    live = _reachable(trans, start) & _coreachable(trans, accepting)
    if not live[start]:
        return np.zeros((0, trans.shape[1]), np.int32), np.zeros(0, np.bool_)
    return _bfs_renumber(trans, accepting, live, start)


@numba.njit(**_JIT)
def hopcroft(trans, accepting):
    """Hopcroft's refinement on arrays: each block is a contiguous run of
    ``elems``; states hit by a splitter are swapped to the front of their block,
    then the marked front part becomes a new block."""
    S, C = trans.shape
    has_dead = False
    for s in range(S):
        for c in range(C):
            if trans[s, c] < 0:
                has_dead = True
    n = S + 1 if has_dead else S
    ptr, src = _preds(trans, n)
    elems = np.empty(n, np.int64)
    loc = np.empty(n, np.int64)
    blk = np.empty(n, np.int64)
    first = np.empty(n + 1, np.int64)
    end = np.empty(n + 1, np.int64)
    n_acc = 0
    for s in range(S):
        if accepting[s]:
            n_acc += 1
    if n_acc == 0 or n_acc == n:
        return np.zeros(S, np.int64)
    i, j = 0, n_acc
    for s in range(n):
        if s < S and accepting[s]:
            elems[i] = s
            loc[s] = i
            blk[s] = 0
            i += 1
        else:
            elems[j] = s
            loc[s] = j
            blk[s] = 1
            j += 1
    first[0], end[0], first[1], end[1] = 0, n_acc, n_acc, n
    nblocks = 2
    marked = np.zeros(n + 1, np.int64)
    in_work = np.zeros(n + 1, np.bool_)
    work = np.empty(n + 1, np.int64)
    touched = np.empty(n + 1, np.int64)
    snap = np.empty(n, np.int64)
    work[0] = 0 if n_acc <= n - n_acc else 1
    in_work[work[0]] = True
    wtop = 1
    while wtop:
        wtop -= 1
        B = work[wtop]
        in_work[B] = False
        m = end[B] - first[B]
        for i in range(m):
            snap[i] = elems[first[B] + i]
        for c in range(C):
            nt = 0
            for i in range(m):
                q = snap[i]
                for k in range(ptr[c * n + q], ptr[c * n + q + 1]):
                    s = src[k]  # one successor per class: each s is marked at most once
                    b = blk[s]
                    if marked[b] == 0:
                        touched[nt] = b
                        nt += 1
                    p = first[b] + marked[b]
                    ls = loc[s]
                    other = elems[p]
                    elems[p] = s
                    loc[s] = p
                    elems[ls] = other
                    loc[other] = ls
                    marked[b] += 1
            for ti in range(nt):
                b = touched[ti]
                mk = marked[b]
                marked[b] = 0
                size = end[b] - first[b]
                if mk == size:
                    continue
                z = nblocks
                nblocks += 1
                first[z] = first[b]
                end[z] = first[b] + mk
                first[b] = end[z]
                for p in range(first[z], end[z]):
                    blk[elems[p]] = z
                if in_work[b] or mk <= size - mk:
                    work[wtop] = z
                    in_work[z] = True
                else:
                    work[wtop] = b
                    in_work[b] = True
                wtop += 1
    return blk[:S].copy()


@numba.njit(**_JIT)
def minimize_table(trans0, accepting0, start):
    trans, accepting = trim_table(trans0, accepting0, start)
    S, C = trans.shape
    if S == 0:
        return trans, accepting
    blk = hopcroft(trans, accepting)
    # quotient over any representative per block, then the canonical BFS numbering
    nb = 0
    for s in range(S):
        if blk[s] + 1 > nb:
            nb = blk[s] + 1
    rep = np.full(nb, -1, np.int64)
    distinct = 0
    for s in range(S):
        if rep[blk[s]] < 0:
            rep[blk[s]] = s
            distinct += 1
    if distinct == S:
        return trans, accepting
    q = np.full((nb, C), -1, np.int32)
    qacc = np.zeros(nb, np.bool_)
    live = np.zeros(nb, np.bool_)
    for b in range(nb):
        r = rep[b]
        if r < 0:
            continue
        live[b] = True
        qacc[b] = accepting[r]
        for c in range(C):
            t = trans[r, c]
            if t >= 0:
                q[b, c] = blk[t]
    return _bfs_renumber(q, qacc, live, blk[0])


#: product_bfs indexes pairs in a flat array up to this many pairs (128 KB: filling it costs a few
#: microseconds, however few pairs the product reaches), by hashing beyond
_DIRECT_PAIRS = 1 << 15


@numba.njit(**_JIT)
def _pair_alive(a_live, b_live, mode):
    """Whether a product state whose components are live as given can still accept (mode as in product_bfs)."""
    if mode == 0:
        return a_live and b_live
    if mode == 2:
        return a_live
    return a_live or b_live


@numba.njit(**_JIT)
def _grown(pa, pb, ids):
    """product_bfs's state arrays (full) copied into twice the room."""
    n = pa.shape[0]
    pa2 = np.empty(2 * n, np.int64)
    pb2 = np.empty(2 * n, np.int64)
    ids2 = np.empty((2 * n, ids.shape[1]), np.int32)
    pa2[:n], pb2[:n], ids2[:n] = pa, pb, ids
    return pa2, pb2, ids2


@numba.njit(**_JIT)
def _product_bfs_direct(ta, tb, start_a, start_b, mode, max_states):
    """product_bfs with pair ids in a flat ``(Sa + 1) * (Sb + 1)`` array (a read per
    edge instead of a probe: ~3x faster on the few-hundred-state products of schemas)."""
    sink_a = ta.shape[0] - 1
    sink_b = tb.shape[0] - 1
    K = ta.shape[1]
    W = np.int64(sink_b + 1)
    index = np.full((sink_a + 1) * W, -1, np.int32)
    pa = np.empty(64, np.int64)
    pb = np.empty(64, np.int64)
    ids = np.empty((64, K), np.int32)
    pa[0], pb[0] = start_a, start_b
    index[start_a * W + start_b] = 0
    n = 1
    k = 0
    while k < n:
        a, b = pa[k], pb[k]
        for c in range(K):
            na, nb_ = ta[a, c], tb[b, c]
            if not _pair_alive(na != sink_a, nb_ != sink_b, mode):
                ids[k, c] = -1
                continue
            code = na * W + nb_
            v = index[code]
            if v >= 0:
                ids[k, c] = v
                continue
            if n >= max_states:
                return np.empty((0, K), np.int32), pa[:0], pb[:0]
            if n == pa.shape[0]:
                pa, pb, ids = _grown(pa, pb, ids)
            index[code] = n
            pa[n], pb[n] = na, nb_
            ids[k, c] = n
            n += 1
        k += 1
    return ids[:n].copy(), pa[:n].copy(), pb[:n].copy()


@numba.njit(**_JIT)
def product_bfs(ta, tb, start_a, start_b, mode, max_states):
    if np.int64(ta.shape[0]) * tb.shape[0] <= _DIRECT_PAIRS:
        return _product_bfs_direct(ta, tb, start_a, start_b, mode, max_states)
    return _product_bfs_hashed(ta, tb, start_a, start_b, mode, max_states)


@numba.njit(**_JIT)
def _product_bfs_hashed(ta, tb, start_a, start_b, mode, max_states):
    """product_bfs with pair ids in an open-addressing table (products of large automata)."""
    sink_a = ta.shape[0] - 1
    sink_b = tb.shape[0] - 1
    K = ta.shape[1]
    W = np.int64(sink_b + 1)
    # open-addressing map code -> id (capacity a power of two, kept under half full)
    cap = 64
    keys = np.full(cap, -1, np.int64)
    vals = np.empty(cap, np.int64)
    pa = np.empty(16, np.int64)
    pb = np.empty(16, np.int64)
    ids = np.empty((16, K), np.int32)
    pa[0], pb[0] = start_a, start_b
    code = start_a * W + start_b
    h = (code * np.int64(0x9E3779B1)) & (cap - 1)
    keys[h], vals[h] = code, 0
    n = 1
    k = 0
    while k < n:
        a, b = pa[k], pb[k]
        for c in range(K):
            na, nb_ = ta[a, c], tb[b, c]
            if not _pair_alive(na != sink_a, nb_ != sink_b, mode):
                ids[k, c] = -1
                continue
            code = na * W + nb_
            h = (code * np.int64(0x9E3779B1)) & (cap - 1)
            while keys[h] >= 0 and keys[h] != code:
                h = (h + 1) & (cap - 1)
            if keys[h] == code:
                ids[k, c] = vals[h]
                continue
            if n >= max_states:
                return np.empty((0, K), np.int32), pa[:0], pb[:0]
            keys[h], vals[h] = code, n
            if n == pa.shape[0]:
                pa, pb, ids = _grown(pa, pb, ids)
            pa[n], pb[n] = na, nb_
            ids[k, c] = n
            n += 1
            if 2 * n > cap:
                cap *= 2
                keys2 = np.full(cap, -1, np.int64)
                vals2 = np.empty(cap, np.int64)
                for i in range(cap // 2):
                    if keys[i] >= 0:
                        h = (keys[i] * np.int64(0x9E3779B1)) & (cap - 1)
                        while keys2[h] >= 0:
                            h = (h + 1) & (cap - 1)
                        keys2[h], vals2[h] = keys[i], vals[i]
                keys, vals = keys2, vals2
        k += 1
    return ids[:n].copy(), pa[:n].copy(), pb[:n].copy()


@numba.njit(**_JIT)
def compact_bytes(table, byte_class):
    """Coarsest byte classes of the table ``table[:, byte_class]`` without building it."""
    S = table.shape[0]
    cols, colmap = _compact_columns(table)
    nc = cols.shape[1]
    perm = np.full(nc, -1, np.int64)
    order = np.empty(nc, np.int64)
    classes = np.empty(256, np.uint8)
    n = 0
    for b in range(256):  # number the classes by smallest byte
        c = colmap[byte_class[b]]
        if perm[c] < 0:
            perm[c] = n
            order[n] = c
            n += 1
        classes[b] = perm[c]
    return _take_columns(cols, order, n), classes


@numba.njit(**_JIT)
def finish(table, byte_class, accepting, start, minimal):
    trans0, classes = compact_bytes(table, byte_class)
    if minimal:
        trans, acc = minimize_table(trans0, accepting, start)
    else:
        trans, acc = trim_table(trans0, accepting, start)
    if trans.shape[0] == 0:
        return trans, classes, acc
    # classes are numbered by smallest byte, so merging columns in column order keeps that numbering
    out, merge = _compact_columns(trans)
    for b in range(256):
        classes[b] = merge[classes[b]]
    return out, classes, acc


@numba.njit(**_JIT)
def product_table(ta, ca, acc_a, start_a, tb, cb, acc_b, start_b, mode, max_states):
    # merged classes: the distinct (class of a, class of b) pairs, in increasing order
    wb = np.int64(cb.max()) + 1
    nkeys = (np.int64(ca.max()) + 1) * wb
    index = np.full(nkeys, -1, np.int64)
    for b in range(256):
        index[ca[b] * wb + cb[b]] = 0
    cols_a = np.empty(256, np.int64)
    cols_b = np.empty(256, np.int64)
    K = 0
    for key in range(nkeys):
        if index[key] == 0:
            index[key] = K
            cols_a[K] = key // wb
            cols_b[K] = key % wb
            K += 1
    byte_class = np.empty(256, np.uint8)
    for b in range(256):
        byte_class[b] = index[ca[b] * wb + cb[b]]
    Sa, Sb = ta.shape[0], tb.shape[0]
    xa = np.empty((Sa + 1, K), np.int32)  # complete tables, the last row a sink
    xb = np.empty((Sb + 1, K), np.int32)
    for k in range(K):
        for s in range(Sa):
            t = ta[s, cols_a[k]]
            xa[s, k] = t if t >= 0 else Sa
        xa[Sa, k] = Sa
        for s in range(Sb):
            t = tb[s, cols_b[k]]
            xb[s, k] = t if t >= 0 else Sb
        xb[Sb, k] = Sb
    ids, pa, pb = product_bfs(xa, xb, start_a, start_b, mode, max_states)
    n = ids.shape[0]
    acc = np.empty(n, np.bool_)
    for i in range(n):
        x = pa[i] < Sa and acc_a[pa[i]]
        y = pb[i] < Sb and acc_b[pb[i]]
        if mode == 0:
            acc[i] = x and y
        elif mode == 1:
            acc[i] = x or y
        elif mode == 2:
            acc[i] = x and not y
        else:
            acc[i] = x != y
    return ids, acc, byte_class


@numba.njit(**_JIT)
def drop_sinks(ids, accepting):
    S, K = ids.shape
    deg = np.zeros(S, np.int64)  # edges left per state
    for s in range(S):
        for k in range(K):
            if ids[s, k] >= 0:
                deg[s] += 1
    ptr, src = _incoming(ids)
    # a worklist reaches the same least fixed point as the reference's rounds
    dead = np.zeros(S, np.bool_)
    stack = np.empty(S, np.int64)
    n = 0
    for s in range(1, S):
        if deg[s] == 0 and not accepting[s]:
            dead[s] = True
            stack[n] = s
            n += 1
    while n > 0:
        n -= 1
        t = stack[n]
        for i in range(ptr[t], ptr[t + 1]):
            s = src[i]
            deg[s] -= 1
            if deg[s] == 0 and s != 0 and not accepting[s] and not dead[s]:
                dead[s] = True
                stack[n] = s
                n += 1
    entered = np.zeros(S, np.bool_)
    entered[0] = True
    for s in range(S):
        for k in range(K):
            t = ids[s, k]
            if t >= 0 and not dead[t]:
                entered[t] = True
    remap = np.full(S, -1, np.int64)
    m = 0
    for s in range(S):
        if entered[s]:
            remap[s] = m
            m += 1
    out = np.full((m, K), -1, np.int32)
    acc = np.zeros(m, np.bool_)
    for s in range(S):
        if entered[s]:
            r = remap[s]
            acc[r] = accepting[s]
            for k in range(K):
                t = ids[s, k]
                if t >= 0 and not dead[t]:
                    out[r, k] = remap[t]
    return out, acc


@numba.njit(**_JIT)
def _closure(seeds, n_seeds, eps_ptr, eps_tgt, important, mark, stamp, stack, out):
    """The sorted important states of the epsilon closure of ``seeds[:n_seeds]``,
    written to ``out``; returns their number (``mark``: visited when equal to ``stamp``)."""
    top = 0
    for k in range(n_seeds):
        q = seeds[k]
        if mark[q] != stamp:
            mark[q] = stamp
            stack[top] = q
            top += 1
    n = 0
    while top > 0:
        top -= 1
        q = stack[top]
        if important[q]:
            out[n] = q
            n += 1
        for j in range(eps_ptr[q], eps_ptr[q + 1]):
            r = eps_tgt[j]
            if mark[r] != stamp:
                mark[r] = stamp
                stack[top] = r
                top += 1
    out[:n].sort()
    return n


@numba.njit(**_JIT)
def subset_table(e_ptr, e_lo, e_hi, e_tgt, eps_ptr, eps_tgt, important, byte_class, n_cls, start, final,
                 max_states):
    nq = e_ptr.shape[0] - 1
    mark = np.zeros(nq, np.int64)
    stack = np.empty(nq, np.int64)
    buf = np.empty(nq, np.int64)
    seeds = np.empty(max(64, nq), np.int64)  # a row's targets, grouped by class
    count_c = np.zeros(n_cls + 1, np.int64)
    # the sets: members data[ptr[s]:ptr[s + 1]], found again through an open-addressing table
    data = np.empty(max(64, 4 * nq), np.int64)
    ptr = np.zeros(65, np.int64)
    cap = 128
    slots = np.full(cap, -1, np.int64)
    hashes = np.empty(64, np.int64)
    table = np.full((64, n_cls), -1, np.int32)
    accepting = np.zeros(64, np.bool_)
    seeds[0] = start
    n = _closure(seeds, 1, eps_ptr, eps_tgt, important, mark, 1, stack, buf)
    if n == 0:
        return table[:0], accepting[:0], False
    stamp = 1
    data[:n] = buf[:n]
    ptr[1] = n
    h = _hash_ints(buf, n)
    hashes[0] = h
    slots[h & (cap - 1)] = 0
    count = 1
    i = 0
    while i < count:
        for k in range(ptr[i], ptr[i + 1]):
            if data[k] == final:
                accepting[i] = True
        # count the moves per class, then place the targets grouped by class
        count_c[:] = 0
        for k in range(ptr[i], ptr[i + 1]):
            q = data[k]
            for e in range(e_ptr[q], e_ptr[q + 1]):
                for c in range(byte_class[e_lo[e]], byte_class[e_hi[e]] + 1):
                    count_c[c + 1] += 1
        for c in range(n_cls):
            count_c[c + 1] += count_c[c]
        if count_c[n_cls] > seeds.shape[0]:
            seeds = np.empty(2 * count_c[n_cls], np.int64)
        fill = count_c[:n_cls].copy()
        for k in range(ptr[i], ptr[i + 1]):
            q = data[k]
            for e in range(e_ptr[q], e_ptr[q + 1]):
                for c in range(byte_class[e_lo[e]], byte_class[e_hi[e]] + 1):
                    seeds[fill[c]] = e_tgt[e]
                    fill[c] += 1
        for c in range(n_cls):
            lo = count_c[c]
            if count_c[c + 1] == lo:
                continue
            stamp += 1
            n = _closure(seeds[lo:], count_c[c + 1] - lo, eps_ptr, eps_tgt, important, mark, stamp, stack, buf)
            if n == 0:
                continue
            h = _hash_ints(buf, n)
            slot = h & (cap - 1)
            found = -1
            while slots[slot] >= 0:
                s = slots[slot]
                if hashes[s] == h and ptr[s + 1] - ptr[s] == n:
                    same = True
                    for k in range(n):
                        if data[ptr[s] + k] != buf[k]:
                            same = False
                            break
                    if same:
                        found = s
                        break
                slot = (slot + 1) & (cap - 1)
            if found < 0:
                if count >= max_states:
                    return table[:i], accepting[:i], True
                found = count
                count += 1
                if count + 1 > ptr.shape[0]:  # grow the per-state arrays
                    m = 2 * ptr.shape[0]
                    ptr2 = np.zeros(m, np.int64)
                    ptr2[:count] = ptr[:count]
                    ptr = ptr2
                    hashes2 = np.empty(m, np.int64)
                    hashes2[:found] = hashes[:found]
                    hashes = hashes2
                    table2 = np.full((m, n_cls), -1, np.int32)
                    table2[:found] = table[:found]
                    table = table2
                    accepting2 = np.zeros(m, np.bool_)
                    accepting2[:found] = accepting[:found]
                    accepting = accepting2
                if ptr[found] + n > data.shape[0]:
                    data2 = np.empty(2 * (data.shape[0] + n), np.int64)
                    data2[:ptr[found]] = data[:ptr[found]]
                    data = data2
                data[ptr[found]:ptr[found] + n] = buf[:n]
                ptr[found + 1] = ptr[found] + n
                hashes[found] = h
                slots[slot] = found
                if 2 * count > cap:  # keep the table at most half full
                    cap *= 2
                    slots = np.full(cap, -1, np.int64)
                    for s in range(count):
                        slot = hashes[s] & (cap - 1)
                        while slots[slot] >= 0:
                            slot = (slot + 1) & (cap - 1)
                        slots[slot] = s
            table[i, c] = found
        i += 1
    return table[:count], accepting[:count], False
