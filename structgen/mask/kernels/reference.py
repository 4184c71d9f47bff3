"""Readable pure-Python twins of the numba kernels: the test oracle."""

from __future__ import annotations

import numpy as np


def walk_trie(trans, classes, accepting, start_state, node_byte, node_depth, subtree_end,
              tok_start, tok_ids, los, his, out_bits, ev_lo, ev_hi, ev_state):
    """DFS over the trie node ranges ``[los[r], his[r])``, each a subtree or a run
    of siblings, in one lexer starting at ``start_state`` in every range.

    A node whose byte keeps the lexeme alive allows the tokens ending there and
    its subtree is entered.  Otherwise the subtree is skipped; if the lexeme
    could end before that byte (its state accepts), the subtree is reported as
    an event ``(lo, hi, state)`` for the caller to continue with the next
    lexeme.  Adjacent sibling events (same depth, same state) are merged.
    Returns the number of events written."""
    stack = [0] * (int(node_depth.max()) + 2)
    n_events = 0
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
            t = trans[s, classes[node_byte[i]]]
            if t >= 0:
                stack[d + 1] = t
                for k in range(tok_start[i], tok_start[i + 1]):
                    tid = int(tok_ids[k])
                    out_bits[tid >> 5] |= np.uint32(1 << (tid & 31))
                i += 1
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
    return n_events


def apply_bitmask(logits, bitmask, vocab_size):
    """Set ``logits[b, t] = -inf`` where bit ``t`` of row ``b`` is 0 (``t < vocab_size``);
    columns past ``vocab_size`` (padding) are always masked."""
    rows, width = logits.shape
    for b in range(rows):
        for t in range(width):
            if t >= vocab_size or not (int(bitmask[b, t >> 5]) >> (t & 31)) & 1:
                logits[b, t] = -np.inf
