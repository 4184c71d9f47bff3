"""Readable pure-Python twins of the numba kernels: the test oracle."""

from __future__ import annotations

import numpy as np

from . import LOOPS_UNKNOWN
from ...automata.kernels_reference import number_rows, row_ids  # noqa: F401  (one numbering for DFA and lexer classes)
from ...automata.regex import literal_dfa


def _filtered(t, live, allowed) -> int:
    """A lexer transition ``t`` under the filter ``live``/``allowed`` (-1: dead; no
    filter when ``live`` is None or ``allowed`` 0)."""
    t = int(t)
    return -1 if t < 0 or (live is not None and allowed and not int(live[t]) & int(allowed)) else t


def loops_of(trans, classes, member, t) -> int:
    """The byte classes (bits of ``member[b]``, see ``trie_pure``) every byte of which
    leads lexer state ``t`` back to itself."""
    cut = 0
    for b in range(256):
        if trans[t, classes[b]] != t:
            cut |= int(member[b])
    return ~cut & 0x7F


def trie_pure(node_byte, subtree_end, member):
    """Per trie node, the byte classes (bit ``p`` set in ``member[b]`` when byte ``b`` is
    in class ``p``; bits 0-6) that hold every byte below the node: a walk that reaches it
    in a state looping on such a class allows its whole subtree (leaves: 0)."""
    n = len(node_byte)
    out = np.zeros(n, np.uint8)
    for i in reversed(range(n)):
        end = int(subtree_end[i])
        if end == i + 1:
            continue
        acc, j = 0x7F, i + 1
        while j < end:  # the children
            below = int(out[j]) if subtree_end[j] > j + 1 else 0x7F
            acc &= int(member[node_byte[j]]) & below
            j = int(subtree_end[j])
        out[i] = acc
    return out


def walk_trie(trans, classes, accepting, live, allowed, loops, member, start_state, node_byte, node_depth,
              subtree_end, tok_start, tok_ids, node_pure, los, his, out_bits, ev_lo, ev_hi, ev_state, stack, touched):
    """DFS over the trie node ranges ``[los[r], his[r])``, each a subtree or a run
    of siblings, in one lexer starting at ``start_state`` in every range.

    A node whose byte keeps the lexeme alive allows the tokens ending there and
    its subtree is entered.  Otherwise the subtree is skipped; if the lexeme
    could end before that byte (its state accepts), the subtree is reported as
    an event ``(lo, hi, state)`` for the caller to continue with the next
    lexeme.  Adjacent sibling events (same depth, same state) are merged.
    ``stack``: int32 scratch of at least (trie depth + 2) entries.  The
    indices of the words of ``out_bits`` that were 0 and got a bit are written
    to ``touched`` (so the caller reads the few it needs, not the whole mask).
    ``live`` not None and ``allowed`` nonzero filter the lexer (a projection, see
    ``Lexer``): a step into a state ``t`` with ``live[t] & allowed == 0`` is dead.
    A node whose subtree's bytes are all in a class (``node_pure``, see
    ``trie_pure``) that its state loops on (``loops[t]``, filled in on first use:
    ``LOOPS_UNKNOWN`` until then, see ``loops_of``) allows its whole subtree without
    entering it: no byte below leaves the state, so no event is lost.
    Returns (number of events, number of touched words)."""
    n_events = n_touched = 0
    for lo, hi in zip(los, his):
        if lo >= hi:
            continue
        base = node_depth[lo]
        stack[0] = start_state
        i = lo
        while i < hi:
            d = node_depth[i] - base
            assert d >= 0, "a walk range must be one subtree or a run of siblings"
            s = stack[d]
            t = _filtered(trans[s, classes[node_byte[i]]], live, allowed)
            if t >= 0:
                stack[d + 1] = t
                nxt = i + 1
                if node_pure[i]:
                    if loops[t] == LOOPS_UNKNOWN:
                        loops[t] = loops_of(trans, classes, member, t)
                    if loops[t] & node_pure[i]:
                        nxt = int(subtree_end[i])
                for k in range(tok_start[i], tok_start[nxt]):  # the node's tokens (and its subtree's, if pure)
                    tid = int(tok_ids[k])
                    if not out_bits[tid >> 5]:
                        touched[n_touched] = tid >> 5
                        n_touched += 1
                    out_bits[tid >> 5] |= np.uint32(1 << (tid & 31))
                i = nxt
            else:
                end = subtree_end[i]
                if accepting[s]:
                    if (n_events and ev_hi[n_events - 1] == i and ev_state[n_events - 1] == s
                            and node_depth[ev_lo[n_events - 1]] == node_depth[i]):
                        ev_hi[n_events - 1] = end
                    else:
                        ev_lo[n_events], ev_hi[n_events], ev_state[n_events] = i, end, s
                        n_events += 1
                i = end
    return n_events, n_touched


def walk_grouped(trans, classes, accepting, acc_class, live, allowed, loops, member, start_state, node_byte,
                 node_depth, subtree_end, tok_start, tok_ids, node_pure, los, his, scratch, ev_lo, ev_hi, ev_state,
                 stack, touched):
    """``walk_trie`` with its results taken out of the scratch buffers (left zeroed) and
    its events grouped by the accepting class of their state (``acc_class``): returns
    (dense, idx, words, events, groups).  ``dense`` when over a quarter of the words
    were touched: ``words`` is then the whole bitset (``idx`` empty), else
    ``words[j]`` is word ``idx[j]``.  ``events``: int32[2, n], lo and hi of every
    event; with G groups, ``groups`` holds their classes (ascending), then where each
    starts in ``events``, then n: group g is ``events[:, groups[G + g]:groups[G + g + 1]]``,
    in walk order.  (Few arrays: numba returns each at a cost.)"""
    n, n_touched = walk_trie(trans, classes, accepting, live, allowed, loops, member, start_state, node_byte,
                             node_depth, subtree_end, tok_start, tok_ids, node_pure, los, his, scratch, ev_lo, ev_hi,
                             ev_state, stack, touched)
    dense = n_touched * 4 > len(scratch)
    if dense:
        idx, words = np.empty(0, np.int32), scratch.copy()
        scratch[:] = 0
    else:
        idx = touched[:n_touched].astype(np.int32)
        words = np.empty(n_touched, np.uint32)
        take_words(scratch, idx, n_touched, words)
    cls = [int(acc_class[st]) for st in ev_state[:n]]
    order = sorted(range(n), key=lambda j: cls[j])  # stable: walk order within a class
    group_class = sorted(set(cls))
    starts, k = [], 0
    for c in group_class:
        starts.append(k)
        k += cls.count(c)
    events = np.array([ev_lo[:n][order], ev_hi[:n][order]], np.int32).reshape(2, n)
    return dense, idx, words, events, np.array(group_class + starts + [n], np.int32)


def events_to_full(events, groups, rest_end, full_node, full_end, full_depth):
    """``walk_grouped``'s events over a slice's rest trie (``rest_end``: its subtree
    ends) renumbered as the vocabulary trie's (``full_node``: the trie node of every rest
    node; ``full_end``/``full_depth``: the trie's), each run of siblings split into its
    nodes and merged again where they are siblings there too.  An event's subtree holds
    no sliced token, so it is the same subtree in both tries; the events are those a
    walk of the whole trie would report.  Returns (events, groups) in ``walk_grouped``'s
    layout."""
    n_groups = len(groups) // 2
    lo_out: list[int] = []
    hi_out: list[int] = []
    new_groups = [int(c) for c in groups[:n_groups]]
    starts = []
    for g in range(n_groups):
        starts.append(len(lo_out))
        first = len(lo_out)
        for j in range(groups[n_groups + g], groups[n_groups + g + 1]):
            k = int(events[0, j])
            while k < events[1, j]:
                f = int(full_node[k])
                if len(lo_out) > first and hi_out[-1] == f and full_depth[lo_out[-1]] == full_depth[f]:
                    hi_out[-1] = int(full_end[f])
                else:
                    lo_out.append(f)
                    hi_out.append(int(full_end[f]))
                k = int(rest_end[k])
    out = np.array([lo_out, hi_out], np.int32).reshape(2, len(lo_out))
    return out, np.array(new_groups + starts + [len(lo_out)], np.int32)


def take_words(out_bits, touched, n, words_out):
    """Move the ``n`` words of ``out_bits`` listed in ``touched`` into ``words_out``
    (in that order), leaving ``out_bits`` zeroed: a sparse walk's result."""
    for j in range(n):
        w = touched[j]
        words_out[j] = out_bits[w]
        out_bits[w] = 0


def or_words(bits, idx, words, touched, n) -> int:
    """``bits[idx[j]] |= words[j]`` for every j (a sparse result OR-ed into a mask),
    appending to ``touched[n:]`` each word it makes nonzero (so ``touched`` lists
    every nonzero word of a mask built from zeros, once); returns the new count."""
    for w, v in zip(idx, words):
        if v:
            if not bits[w]:
                touched[n] = w
                n += 1
            bits[w] |= v
    return n


def take_mask(bits, base, touched, n, pairs) -> int:
    """Move the mask out of ``bits`` (its nonzero words all listed in
    ``touched[:n]``; left zeroed) as the words where ``bits | base`` differs from
    ``base`` (``base`` empty: from zeros): ``pairs[2j]`` the index, ``pairs[2j + 1]``
    the word.  Returns how many.  How a cached mask is kept: a shared base and the
    few words it changes."""
    m = 0
    for w in touched[:n]:
        v = bits[w]
        bits[w] = 0
        if len(base):
            v |= base[w]
            if v == base[w]:
                continue
        pairs[2 * m], pairs[2 * m + 1] = w, v
        m += 1
    return m


def expand_mask(out, base, pairs) -> None:
    """The mask ``take_mask`` kept, written into the int32 row ``out`` (a bitmask's
    layout, the same bits): ``base`` (or zeros) with word ``pairs[2j]`` set to
    ``pairs[2j + 1]``."""
    out = out.view(np.uint32)
    out[:] = base if len(base) else 0
    for j in range(len(pairs) // 2):
        out[pairs[2 * j]] = pairs[2 * j + 1]


def trie_states(trans, classes, start_state, node_byte, node_depth, out_state, stack):
    """``out_state[i]`` = state of the DFA ``trans``/``classes`` after reading the
    bytes of trie node ``i`` from ``start_state`` (-1 once dead; a dead prefix
    keeps its whole subtree dead).  ``stack``: scratch of (trie depth + 1) entries."""
    stack[0] = start_state
    for i in range(len(node_byte)):
        d = node_depth[i]
        s = stack[d - 1]
        t = int(trans[s, classes[node_byte[i]]]) if s >= 0 else -1
        out_state[i] = t
        stack[d] = t


def slice_cover(trans, classes, live, allowed, state, pat_next, pat_cls, pat_start, max_pairs, visited, queue_q,
                queue_u, cores, first_only=False):
    """Bit ``p`` set iff every byte string that pattern ``p`` reads keeps lexer
    state ``state`` alive (a search over (lexer state, pattern state) pairs;
    not covered past ``max_pairs`` of them).

    ``pat_next[p, u, pat_cls[p, b]]``: pattern ``p``'s state after byte ``b`` from
    ``u`` (-1: not read; each pattern over its own byte classes); ``visited``:
    zeroed uint8[lexer states * pattern states], left zeroed; ``queue_q`` /
    ``queue_u``: scratch of ``max_pairs`` entries;
    ``first_only``: stop at the first pattern covered; ``live``/``allowed``: the
    lexer's filter, as for ``walk_trie``.  When ``live`` has an entry per lexer state
    (a product's live components), ``cores[p]`` of a covered pattern gets the AND of
    the live components of every lexer state the search met: the components alive
    all along (a projection keeping one of them is covered too)."""
    n_pat, n_u, _ = pat_next.shape
    track = live is not None and len(live) >= len(trans)
    result = 0
    for p in range(n_pat):
        start = (int(state), int(pat_start[p]))
        core = (1 << 64) - 1
        seen = {start}
        todo = [start]
        covered = True
        while covered and todo:
            q, u = todo.pop()
            if track:
                core &= int(live[q])
            for b in range(256):
                u2 = int(pat_next[p, u, pat_cls[p, b]])
                if u2 < 0:
                    continue
                t = _filtered(int(trans[q, classes[b]]), live, allowed)
                if t < 0:
                    covered = False
                    break
                if (t, u2) not in seen:
                    if len(seen) >= max_pairs:
                        covered = False
                        break
                    seen.add((t, u2))
                    todo.append((t, u2))
        if covered:
            result |= 1 << p
            cores[p] = core
            if first_only:
                break
    return result


def lexer_product(table, own, comp_off, start, trans_out, offsets, pool_comp, pool_row, index, single):
    """Breadth-first product of ``k`` component DFAs stacked in ``table`` (int32[rows,
    classes], each DFA over its own byte classes, -1 dead): component ``p``'s state
    ``q`` is row ``comp_off[p] + q`` and product class ``c`` reads its own class
    ``own[p, c]``.  A state is the set of its live components: pairs (component
    ``p``, row), ascending in ``p`` (a component that dies is dropped), so a step
    costs the live components only, however many terminals the product has.
    State 0 is the set of every ``(p, start[p])``.  States are numbered in scan
    order (parents in order, then classes in order); state 0 is never a target,
    so a return to the start set gets its own number.

    ``trans_out[s, c]``: the product transitions (-1: every component dead);
    state ``s``'s pairs are ``pool_comp`` / ``pool_row`` at ``offsets[s]`` ..
    ``offsets[s + 1]``.  ``index`` (a power-of-two int32 hash table of sets) and
    ``single`` (int32[rows]: the state made of that row alone), both filled with
    -1, are the numba kernel's lookup tables (unused here; the kernel also steps a
    state of one live component by that component's own classes, each class group at
    once, which makes the same states in the same order).  Returns the number
    of states, -1 when more than ``trans_out`` holds are reachable, -2 when the
    pool is too small."""
    cap, n_cls = trans_out.shape
    k = len(start)
    if k > len(pool_comp):
        return -2
    pool_comp[:k] = np.arange(k)
    pool_row[:k] = start
    offsets[0], offsets[1] = 0, k
    seen: dict[tuple, int] = {}
    n, head = 1, 0
    while head < n:
        live = [(int(pool_comp[i]), int(pool_row[i])) for i in range(offsets[head], offsets[head + 1])]
        for c in range(n_cls):
            vec = []
            for p, r in live:
                q = int(table[r, own[p, c]])
                if q >= 0:
                    vec.append((p, int(comp_off[p]) + q))
            vec = tuple(vec)
            if not vec:
                trans_out[head, c] = -1
                continue
            s = seen.get(vec)
            if s is None:
                if n >= cap:
                    return -1
                end = offsets[n] + len(vec)
                if end > len(pool_comp):
                    return -2
                pool_comp[offsets[n]:end] = [p for p, _ in vec]
                pool_row[offsets[n]:end] = [r for _, r in vec]
                offsets[n + 1] = end
                s = seen[vec] = n
                n += 1
            trans_out[head, c] = s
        head += 1
    return n


def apply_bitmask(logits, bitmask, vocab_size):
    """Set ``logits[b, t] = -inf`` where bit ``t`` of row ``b`` is 0 (``t < vocab_size``);
    columns past ``vocab_size`` (padding) are always masked."""
    rows, width = logits.shape
    for b in range(rows):
        for t in range(width):
            if t >= vocab_size or not (int(bitmask[b, t >> 5]) >> (t & 31)) & 1:
                logits[b, t] = -np.inf


def narrow_classes(which_b, patterns, allowed):
    """The accepting classes of a projection (see ``Lexer``): a superset state's
    accepting pattern (``patterns[which_b[s]]``, uint64 bitmasks of components)
    narrowed to ``allowed``.  The distinct narrowed patterns, ascending, number the
    classes.  Returns ``acc_class`` and ``accepting`` of every superset state, and for
    every class the first superset pattern that narrows to it."""
    narrowed = (np.asarray(patterns, np.uint64) & np.uint64(allowed)).tolist()
    values = sorted(set(narrowed))
    pos = {v: i for i, v in enumerate(values)}
    to_class = [pos[v] for v in narrowed]
    first = np.array([narrowed.index(v) for v in values], np.int64)
    acc_class = np.array([to_class[w] for w in np.asarray(which_b).tolist()], np.int32)
    accepting = np.array([values[c] != 0 for c in acc_class.tolist()], bool)
    return acc_class, accepting, first


def single_lexer(trans, start, accepting):
    """A one-terminal lexer from its DFA (int32[S, C], start, accepting): the states
    shifted by one behind a new start state 0 that steps as ``start`` does (a lexer
    never re-enters state 0).  Returns (trans, accepting, has_out), S + 1 rows each."""
    trans = np.asarray(trans)
    S, C = trans.shape
    out = np.full((S + 1, C), -1, np.int32)
    out[1:] = np.where(trans >= 0, trans + 1, -1)
    out[0] = out[start + 1]
    acc = np.zeros(S + 1, bool)
    acc[1:] = accepting
    return out, acc, (out >= 0).any(axis=1)


def literal_tables(data):
    """The DFA accepting exactly the bytes ``data`` (uint8[n], no NUL), as
    :func:`~structgen.automata.regex.literal_dfa` writes it (state i after i bytes;
    class 0 every byte not in ``data``, class i its i-th smallest byte): (trans,
    classes, accepting), writeable, as the numba kernel's."""
    d = literal_dfa(bytes(np.asarray(data, np.uint8)))
    return np.array(d.trans, np.int32), np.array(d.classes, np.uint8), np.array(d.accepting, bool)


def product_components(offsets, comp, rows, acc_all, live, acc):
    """For every state ``s`` of a product (``lexer_product``'s pool: pairs ``comp`` /
    ``rows`` at ``offsets[s]`` .. ``offsets[s + 1]``), the bitmask of its live
    components and of those whose row accepts (from ``acc_all``), as uint64 words:
    component ``p`` is bit ``p % 64`` of ``live[s, p // 64]`` / ``acc[s, p // 64]``."""
    for s in range(len(live)):
        pairs = range(offsets[s], offsets[s + 1])
        lv = sum({1 << int(comp[i]) for i in pairs})  # a set: the union of the bits
        ac = sum({1 << int(comp[i]) for i in pairs if acc_all[rows[i]]})
        for w in range(live.shape[1]):
            live[s, w] = lv >> (64 * w) & (2 ** 64 - 1)
            acc[s, w] = ac >> (64 * w) & (2 ** 64 - 1)


def canonical_product(flat, shapes, starts, cls_flat, acc_all, cap, max_states):
    """The canonical product of ``k`` terminals in one call, from their DFAs: tables
    (``flat``: each ``int32[S_p, W_p]`` over its own classes, raveled and
    concatenated; ``shapes[p] = (S_p, W_p)``), start states, byte classes
    (``cls_flat``: each ``uint8[256]``, concatenated) and accepting flags
    (concatenated).  Steps: the byte classes these terminals tell apart, numbered
    by first byte; the breadth-first product (``lexer_product`` over the stacked
    tables, growing its outputs from ``cap`` states up to ``max_states``); the live
    and accepting components of every state (``product_components``); accepting
    patterns and byte classes with equal columns numbered by first occurrence.
    Returns (states or -1 past the budget, trans, uint8[256] classes, live, acc,
    pattern of every state, first state of every pattern, has_out)."""
    shapes = np.asarray(shapes, np.int64)
    k = len(shapes)
    table = np.full((int(shapes[:, 0].sum()), max(1, int(shapes[:, 1].max()))), -1, np.int32)
    comp_off = np.concatenate([[0], np.cumsum(shapes[:, 0])[:-1]]).astype(np.int64)
    cells = np.concatenate([[0], np.cumsum(shapes[:, 0] * shapes[:, 1])])
    for p, (S, W) in enumerate(shapes.tolist()):
        table[comp_off[p]:comp_off[p] + S, :W] = np.asarray(flat[cells[p]:cells[p + 1]]).reshape(S, W)
    sig = np.asarray(cls_flat, np.int32).reshape(k, 256).T  # [byte, terminal] -> the terminal's class
    g_ids, g_first = number_rows(np.ascontiguousarray(sig))
    own = np.ascontiguousarray(sig[g_first].T, dtype=np.int32)
    start = (comp_off + np.asarray(starts)).astype(np.int32)
    pool = cap * min(k, 4) + k
    while True:
        trans, offsets = np.empty((cap, len(g_first)), np.int32), np.empty(cap + 1, np.int32)
        comp, rows = np.empty(pool, np.int32), np.empty(pool, np.int32)
        n = lexer_product(table, own, comp_off, start, trans, offsets, comp, rows, None, None)
        if n >= 0:
            break
        if n == -2:
            pool *= 4
        elif cap >= max_states:
            return (-1,) + (None,) * 7
        else:
            cap = min(max_states, cap * 4)
            pool = max(pool, cap * min(k, 4) + k)
    live, acc = np.empty((n, (k + 63) // 64), np.uint64), np.empty((n, (k + 63) // 64), np.uint64)
    product_components(offsets, comp, rows, acc_all, live, acc)
    which, first_acc = number_rows(acc.view(np.int32))
    col_ids, first_col = number_rows(trans[:n].T)
    out = np.ascontiguousarray(trans[:n][:, first_col])
    classes = col_ids[g_ids].astype(np.uint8)
    return n, out, classes, live, acc, which, first_acc, (out >= 0).any(axis=1)

