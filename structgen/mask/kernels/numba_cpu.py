"""The numba kernels (the only numba import).  Each has a twin in reference.py."""

from __future__ import annotations

import numba
import numpy as np

from . import LOOPS_UNKNOWN
from ...automata.kernels_numba import number_rows, row_ids  # noqa: F401  (one numbering for DFA and lexer classes)

_JIT = dict(cache=True, nogil=True, boundscheck=False)
# Short kernels keep the GIL.  Releasing it costs a call little alone, but when another
# thread waits for it (batch fills on threads, a server's other threads) every release
# hands it over, and taking it back costs a thread switch: ~30 us across CPUs on the
# benchmark VM, 13 us on one, more than most calls.  Trie walks are short too (median
# 7 us, p90 18 us over MaskBench replays; their trie span does not tell the long ones
# apart).  Kernels that run long (products, logits) release it.
_JIT_SHORT = dict(cache=True, nogil=False, boundscheck=False)


@numba.njit(**_JIT)
def _filtered(t, live, allowed):
    if live is not None:  # a projection (live None: numba compiles this away)
        if t >= 0 and allowed != 0 and (live[t] & allowed) == 0:
            return -1
    return t


@numba.njit(**_JIT)
def loops_of(trans, classes, member, t):
    cut = 0
    for b in range(256):
        if trans[t, classes[b]] != t:
            cut |= member[b]
    return np.uint8(~cut & 0x7F)


@numba.njit(**_JIT)
def walk_trie(trans, classes, accepting, live, allowed, loops, member, start_state, node_byte, node_depth,
              subtree_end, tok_start, tok_ids, node_pure, los, his, out_bits, ev_lo, ev_hi, ev_state, stack, touched):
    n_events = 0
    n_touched = 0
    one = np.uint32(1)
    for r in range(los.shape[0]):
        lo = los[r]
        hi = his[r]
        if lo >= hi:
            continue
        base = node_depth[lo]
        stack[0] = start_state
        i = lo
        while i < hi:
            d = node_depth[i] - base
            s = stack[d]
            t = _filtered(trans[s, classes[node_byte[i]]], live, allowed)
            if t >= 0:
                stack[d + 1] = t
                nxt = i + 1
                pure = node_pure[i]
                if pure != 0:
                    lp = loops[t]
                    if lp == LOOPS_UNKNOWN:
                        lp = loops[t] = loops_of(trans, classes, member, t)
                    if lp & pure:  # t loops on every byte below: the subtree's tokens all stay in t
                        nxt = subtree_end[i]
                for k in range(tok_start[i], tok_start[nxt]):
                    tid = tok_ids[k]
                    w = tid >> 5
                    if out_bits[w] == 0:
                        touched[n_touched] = w
                        n_touched += 1
                    out_bits[w] |= one << np.uint32(tid & 31)
                i = nxt
            else:
                end = subtree_end[i]
                if accepting[s]:
                    if (n_events > 0 and ev_hi[n_events - 1] == i and ev_state[n_events - 1] == s
                            and node_depth[ev_lo[n_events - 1]] == node_depth[i]):
                        ev_hi[n_events - 1] = end
                    else:
                        ev_lo[n_events] = i
                        ev_hi[n_events] = end
                        ev_state[n_events] = s
                        n_events += 1
                i = end
    return n_events, n_touched


@numba.njit(**_JIT)
def trie_pure(node_byte, subtree_end, member):
    n = node_byte.shape[0]
    out = np.zeros(n, np.uint8)
    for i in range(n - 1, -1, -1):
        end = subtree_end[i]
        if end == i + 1:
            continue  # a leaf: nothing below to skip
        acc = 0x7F
        j = i + 1
        while j < end:
            below = out[j] if subtree_end[j] > j + 1 else 0x7F
            acc &= member[node_byte[j]] & below
            j = subtree_end[j]
        out[i] = acc
    return out


@numba.njit(**_JIT_SHORT)
def walk_grouped(trans, classes, accepting, acc_class, live, allowed, loops, member, start_state, node_byte,
                 node_depth, subtree_end, tok_start, tok_ids, node_pure, los, his, scratch, ev_lo, ev_hi, ev_state,
                 stack, touched):
    n, n_touched = walk_trie(trans, classes, accepting, live, allowed, loops, member, start_state, node_byte,
                             node_depth, subtree_end, tok_start, tok_ids, node_pure, los, his, scratch, ev_lo, ev_hi,
                             ev_state, stack, touched)
    dense = n_touched * 4 > scratch.shape[0]
    if dense:
        idx = np.empty(0, np.int32)
        words = scratch.copy()
        scratch[:] = 0
    else:
        idx = np.empty(n_touched, np.int32)
        words = np.empty(n_touched, np.uint32)
        for j in range(n_touched):
            w = touched[j]
            idx[j] = w
            words[j] = scratch[w]
            scratch[w] = 0
    n_cls = 0
    for j in range(n):
        n_cls = max(n_cls, acc_class[ev_state[j]] + 1)
    count = np.zeros(n_cls + 1, np.int32)
    for j in range(n):
        count[acc_class[ev_state[j]] + 1] += 1
    n_groups = 0
    for c in range(n_cls):
        if count[c + 1] > 0:
            n_groups += 1
        count[c + 1] += count[c]
    groups = np.empty(2 * n_groups + 1, np.int32)  # the classes, then where each group starts
    g = 0
    for c in range(n_cls):
        if count[c + 1] > count[c]:
            groups[g] = c
            groups[n_groups + g] = count[c]
            g += 1
    groups[2 * n_groups] = n
    events = np.empty((2, n), np.int32)
    for j in range(n):
        c = acc_class[ev_state[j]]
        k = count[c]
        events[0, k] = ev_lo[j]
        events[1, k] = ev_hi[j]
        count[c] = k + 1
    return dense, idx, words, events, groups


@numba.njit(**_JIT_SHORT)
def events_to_full(events, groups, rest_end, full_node, full_end, full_depth):
    n_groups = groups.shape[0] // 2
    n = events.shape[1]
    count = 0
    for j in range(n):
        k = events[0, j]
        while k < events[1, j]:
            count += 1
            k = rest_end[k]
    out = np.empty((2, count), np.int32)
    new_groups = groups.copy()
    m = 0
    for g in range(n_groups):
        new_groups[n_groups + g] = m
        first = m
        for j in range(groups[n_groups + g], groups[n_groups + g + 1]):
            k = events[0, j]
            while k < events[1, j]:
                f = full_node[k]
                if m > first and out[1, m - 1] == f and full_depth[out[0, m - 1]] == full_depth[f]:
                    out[1, m - 1] = full_end[f]
                else:
                    out[0, m] = f
                    out[1, m] = full_end[f]
                    m += 1
                k = rest_end[k]
    new_groups[2 * n_groups] = m
    return out[:, :m].copy(), new_groups


@numba.njit(**_JIT_SHORT)
def or_words(bits, idx, words, touched, n):
    for j in range(idx.shape[0]):
        v = words[j]
        if v:
            w = idx[j]
            if bits[w] == 0:
                touched[n] = w
                n += 1
            bits[w] |= v
    return n


@numba.njit(**_JIT_SHORT)
def take_mask(bits, base, touched, n, pairs):
    has_base = base.shape[0] != 0
    m = 0
    for j in range(n):
        w = touched[j]
        v = bits[w]
        bits[w] = 0
        if has_base:
            v |= base[w]
            if v == base[w]:
                continue
        pairs[2 * m] = w
        pairs[2 * m + 1] = v
        m += 1
    return m


@numba.njit(**_JIT_SHORT)
def expand_mask(out, base, pairs):
    if base.shape[0] != 0:
        for i in range(out.shape[0]):
            out[i] = base[i]  # uint32 into int32: the same bits
    else:
        for i in range(out.shape[0]):
            out[i] = 0
    for j in range(pairs.shape[0] // 2):
        out[pairs[2 * j]] = pairs[2 * j + 1]


@numba.njit(**_JIT)
def trie_states(trans, classes, start_state, node_byte, node_depth, out_state, stack):
    stack[0] = start_state
    for i in range(node_byte.shape[0]):
        d = node_depth[i]
        s = stack[d - 1]
        t = -1
        if s >= 0:
            t = trans[s, classes[node_byte[i]]]
        out_state[i] = t
        stack[d] = t


@numba.njit(**_JIT_SHORT)
def slice_cover(trans, classes, live, allowed, state, pat_next, pat_cls, pat_start, max_pairs, visited, queue_q,
                queue_u, cores, first_only=False):
    n_pat, n_u, n_pc = pat_next.shape
    track = False  # a product's live components: their AND along the search
    if live is not None:
        track = live.shape[0] >= trans.shape[0]
    n_lc = 0
    for b in range(256):
        if classes[b] >= n_lc:
            n_lc = classes[b] + 1
    seen = np.zeros(n_lc * n_pc, np.bool_)
    pair_l = np.empty(256, np.int32)
    pair_p = np.empty(256, np.int32)
    result = 0
    for p in range(n_pat):
        # most states die on some byte the pattern reads first: a byte scan finds it
        # before the pairs are numbered
        u0 = pat_start[p]
        dies = False
        for b in range(256):
            if pat_next[p, u0, pat_cls[p, b]] >= 0 and _filtered(trans[state, classes[b]], live, allowed) < 0:
                dies = True
                break
        if dies:
            continue
        # the (lexer class, pattern class) pairs the bytes fall in: a step per pair, not per byte
        m = 0
        for b in range(256):
            k = classes[b] * n_pc + pat_cls[p, b]
            if not seen[k]:
                seen[k] = True
                pair_l[m] = classes[b]
                pair_p[m] = pat_cls[p, b]
                m += 1
        for j in range(m):
            seen[pair_l[j] * n_pc + pair_p[j]] = False
        covered = True
        core = ~np.uint64(0)
        if live is not None:
            if track:
                core &= live[state]
        queue_q[0] = state
        queue_u[0] = pat_start[p]
        visited[state * n_u + pat_start[p]] = 1
        n = 1
        head = 0
        while covered and head < n:
            q = queue_q[head]
            u = queue_u[head]
            head += 1
            for j in range(m):
                u2 = pat_next[p, u, pair_p[j]]
                if u2 < 0:
                    continue
                t = _filtered(trans[q, pair_l[j]], live, allowed)
                if t < 0:
                    covered = False
                    break
                k = t * n_u + u2
                if visited[k] == 0:
                    if n >= max_pairs:
                        covered = False
                        break
                    visited[k] = 1
                    if live is not None:
                        if track:
                            core &= live[t]
                    queue_q[n] = t
                    queue_u[n] = u2
                    n += 1
        for i in range(n):
            visited[queue_q[i] * n_u + queue_u[i]] = 0
        if covered:
            result |= 1 << p
            cores[p] = core
            if first_only:
                break
    return result


@numba.njit(**_JIT)
def apply_bitmask(logits, bitmask, vocab_size):
    rows, width = logits.shape
    ninf = -np.inf
    for b in range(rows):
        for w in range(bitmask.shape[1]):
            word = np.uint32(bitmask[b, w])
            base = w * 32
            if word == np.uint32(0xFFFFFFFF) and base + 32 <= vocab_size:
                continue
            for j in range(32):
                t = base + j
                if t >= width:
                    break
                if t >= vocab_size or not (word >> np.uint32(j)) & np.uint32(1):
                    logits[b, t] = ninf
        for t in range(bitmask.shape[1] * 32, width):
            logits[b, t] = ninf


@numba.njit(**_JIT)
def _new_product_state(n, cap, vec_p, vec_r, m, offsets, pool_comp, pool_row):
    """Append state ``n`` (the pairs ``vec_p[:m]`` / ``vec_r[:m]``) to ``lexer_product``'s
    pool: ``n``, or -1 when ``cap`` states are made already, -2 when the pool is full."""
    if n >= cap:
        return -1
    a = offsets[n]
    if a + m > pool_comp.shape[0]:
        return -2
    for j in range(m):
        pool_comp[a + j] = vec_p[j]
        pool_row[a + j] = vec_r[j]
    offsets[n + 1] = a + m
    return n


@numba.njit(**_JIT)
def lexer_product(table, own, comp_off, start, trans_out, offsets, pool_comp, pool_row, index, single):
    cap, n_cls = trans_out.shape
    k = start.shape[0]
    pool_cap = pool_comp.shape[0]
    mask = index.shape[0] - 1
    if k > pool_cap:
        return -2
    vec_p = np.empty(k, np.int32)
    vec_r = np.empty(k, np.int32)
    # A state of one live component (most states: inside one literal or key) steps by
    # that component's own classes, fewer than the product's (a key's DFA has two or
    # three, a product of many keys dozens): per component, its own classes in order
    # of their first product class (so states are made in the scan order) and the
    # product classes reading each.
    grp_oc = np.empty((k, n_cls), np.int32)
    grp_start = np.zeros((k, n_cls + 1), np.int32)  # group j's classes: grp_cls[p, start[j]:start[j + 1]]
    grp_cls = np.empty((k, n_cls), np.int32)
    n_grp = np.zeros(k, np.int32)
    rank = np.full(table.shape[1], -1, np.int32)
    fill = np.empty(n_cls + 1, np.int32)
    for p in range(k):
        g = 0
        for c in range(n_cls):  # number the own classes by first product class; count their classes
            oc = own[p, c]
            if rank[oc] < 0:
                rank[oc] = g
                grp_oc[p, g] = oc
                g += 1
            grp_start[p, rank[oc] + 1] += 1
        n_grp[p] = g
        for j in range(g):
            grp_start[p, j + 1] += grp_start[p, j]
        fill[:g] = grp_start[p, :g]
        for c in range(n_cls):  # classes ascending within each group
            j = rank[own[p, c]]
            grp_cls[p, fill[j]] = c
            fill[j] += 1
        for j in range(g):
            rank[grp_oc[p, j]] = -1
    for p in range(k):
        pool_comp[p] = p
        pool_row[p] = start[p]
    offsets[0] = 0
    offsets[1] = k
    n = 1
    head = 0
    while head < n:
        lo = offsets[head]
        hi = offsets[head + 1]
        if hi - lo == 1:
            p = pool_comp[lo]
            r = pool_row[lo]
            for c in range(n_cls):
                trans_out[head, c] = -1
            for j in range(n_grp[p]):
                q = table[r, grp_oc[p, j]]
                if q >= 0:
                    rr = comp_off[p] + q
                    found = single[rr]
                    if found < 0:
                        vec_p[0], vec_r[0] = p, rr
                        found = _new_product_state(n, cap, vec_p, vec_r, 1, offsets, pool_comp, pool_row)
                        if found < 0:
                            return found
                        single[rr] = n
                        n += 1
                    for i in range(grp_start[p, j], grp_start[p, j + 1]):
                        trans_out[head, grp_cls[p, i]] = found
            head += 1
            continue
        for c in range(n_cls):
            m = 0
            for i in range(lo, hi):
                p = pool_comp[i]
                q = table[pool_row[i], own[p, c]]
                if q >= 0:
                    vec_p[m] = p
                    vec_r[m] = comp_off[p] + q
                    m += 1
            if m == 0:
                trans_out[head, c] = -1
                continue
            found = -1
            slot = -1
            if m == 1:  # most states: inside one lexeme candidate, found by its row alone
                found = single[vec_r[0]]
            else:
                h = np.int64(m)
                for j in range(m):
                    h = (h ^ (np.int64(vec_p[j]) << 32 | vec_r[j])) * np.int64(0x100000001B3)
                h ^= h >> 29
                slot = h & mask
                while True:
                    s = index[slot]
                    if s < 0:
                        break
                    a = offsets[s]
                    if offsets[s + 1] - a == m:
                        same = True
                        for j in range(m):
                            if pool_comp[a + j] != vec_p[j] or pool_row[a + j] != vec_r[j]:
                                same = False
                                break
                        if same:
                            found = s
                            break
                    slot = (slot + 1) & mask
            if found < 0:
                found = _new_product_state(n, cap, vec_p, vec_r, m, offsets, pool_comp, pool_row)
                if found < 0:
                    return found
                if m == 1:
                    single[vec_r[0]] = n
                else:
                    index[slot] = n
                n += 1
            trans_out[head, c] = found
        head += 1
    return n


@numba.njit(**_JIT_SHORT)
def narrow_classes(which_b, patterns, allowed):
    narrowed = patterns & allowed
    values = np.unique(narrowed)
    to_class = np.searchsorted(values, narrowed)
    first = np.full(values.shape[0], -1, np.int64)
    for i in range(narrowed.shape[0]):
        if first[to_class[i]] < 0:
            first[to_class[i]] = i
    n = which_b.shape[0]
    acc_class = np.empty(n, np.int32)
    accepting = np.empty(n, np.bool_)
    for i in range(n):
        c = to_class[which_b[i]]
        acc_class[i] = c
        accepting[i] = values[c] != 0
    return acc_class, accepting, first


@numba.njit(**_JIT_SHORT)
def single_lexer(trans, start, accepting):
    S, C = trans.shape
    out = np.empty((S + 1, C), np.int32)
    acc = np.zeros(S + 1, np.bool_)
    has_out = np.zeros(S + 1, np.bool_)
    for s in range(S):
        acc[s + 1] = accepting[s]
        for c in range(C):
            t = trans[s, c]
            if t >= 0:
                out[s + 1, c] = t + 1
                has_out[s + 1] = True
            else:
                out[s + 1, c] = -1
    for c in range(C):
        out[0, c] = out[start + 1, c]
    has_out[0] = has_out[start + 1]
    return out, acc, has_out


@numba.njit(**_JIT)
def literal_tables(data):
    n = data.shape[0]
    seen = np.zeros(256, np.bool_)
    for i in range(n):
        seen[data[i]] = True
    classes = np.zeros(256, np.uint8)
    c = 0
    for b in range(256):
        if seen[b]:
            c += 1
            classes[b] = c
    trans = np.full((n + 1, c + 1), -1, np.int32)
    for i in range(n):
        trans[i, classes[data[i]]] = i + 1
    accepting = np.zeros(n + 1, np.bool_)
    accepting[n] = True
    return trans, classes, accepting


@numba.njit(**_JIT)
def product_components(offsets, comp, rows, acc_all, live, acc):
    one = np.uint64(1)
    live[:] = 0
    acc[:] = 0
    for s in range(live.shape[0]):
        for i in range(offsets[s], offsets[s + 1]):
            p = comp[i]
            w = p >> 6
            b = one << np.uint64(p & 63)
            live[s, w] |= b
            if acc_all[rows[i]]:
                acc[s, w] |= b


@numba.njit(**_JIT)
def canonical_product(flat, shapes, starts, cls_flat, acc_all, cap, max_states):
    k = shapes.shape[0]
    # the components' tables, each over its own classes, stacked into one (-1 padded)
    n_rows, width = 0, 1
    for p in range(k):
        n_rows += shapes[p, 0]
        width = max(width, shapes[p, 1])
    table = np.full((n_rows, width), -1, np.int32)
    comp_off = np.empty(k, np.int64)
    start = np.empty(k, np.int32)
    r, cell = 0, 0
    for p in range(k):
        S, W = shapes[p, 0], shapes[p, 1]
        comp_off[p] = r
        start[p] = r + starts[p]
        for q in range(S):
            for c in range(W):
                table[r + q, c] = flat[cell + q * W + c]
        r += S
        cell += S * W
    # byte classes of these terminals only, numbered by first byte
    sig = np.empty((256, k), np.int32)
    for b in range(256):
        for p in range(k):
            sig[b, p] = cls_flat[p * 256 + b]
    g_ids, g_first = number_rows(sig)
    n_cls = g_first.shape[0]
    own = np.empty((k, n_cls), np.int32)
    for p in range(k):
        for c in range(n_cls):
            own[p, c] = sig[g_first[c], p]
    single = np.full(n_rows, -1, np.int32)
    pool = cap * min(k, 4) + k
    while True:  # grow the outputs until the product fits (or passes the budget)
        trans = np.empty((cap, n_cls), np.int32)
        offsets = np.empty(cap + 1, np.int32)
        comp = np.empty(pool, np.int32)
        rows = np.empty(pool, np.int32)
        size = 1
        while size < 2 * cap:
            size <<= 1
        n = lexer_product(table, own, comp_off, start, trans, offsets, comp, rows, np.full(size, -1, np.int32),
                          single)
        if n >= 0:
            break
        single[:] = -1
        if n == -2:
            pool *= 4
        elif cap >= max_states:
            return -1, trans, np.empty(256, np.uint8), np.empty((0, 1), np.uint64), np.empty((0, 1), np.uint64), \
                np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.bool_)
        else:
            cap = min(max_states, cap * 4)
            pool = max(pool, cap * min(k, 4) + k)
    words = (k + 63) // 64
    live = np.empty((n, words), np.uint64)
    acc = np.empty((n, words), np.uint64)
    product_components(offsets, comp, rows, acc_all, live, acc)
    # accepting patterns, numbered by first occurrence (each uint64 read as two int32 words)
    which, first_acc = number_rows(acc.view(np.int32))
    # merge byte classes with equal columns (first occurrence keeps first-byte order)
    cols = np.empty((n_cls, n), np.int32)
    for c in range(n_cls):
        for s in range(n):
            cols[c, s] = trans[s, c]
    col_ids, first_col = number_rows(cols)
    n_out = first_col.shape[0]
    out = np.empty((n, n_out), np.int32)
    has_out = np.zeros(n, np.bool_)
    for s in range(n):
        for c in range(n_out):
            t = trans[s, first_col[c]]
            out[s, c] = t
            if t >= 0:
                has_out[s] = True
    classes = np.empty(256, np.uint8)
    for b in range(256):
        classes[b] = col_ids[g_ids[b]]
    return n, out, classes, live, acc, which, first_acc, has_out
