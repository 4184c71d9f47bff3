"""Finite languages: a DFA from a set of strings, and the longest string or the
full list of a DFA's language when it is finite."""

from __future__ import annotations

import numpy as np

from . import ops
from .fsm import ByteDFA

__all__ = ["enumerate_strings", "max_length", "strings_dfa", "trie"]


def trie(keys) -> tuple[list[dict], list[bool]]:
    """Prefix tree of ``keys`` (sequences of hashable symbols): ``(children, final)``
    where ``children[node]`` maps a symbol to the child node; node 0 is the root."""
    children: list[dict] = [{}]
    final = [False]
    for key in keys:
        cur = 0
        for sym in key:
            nxt = children[cur].get(sym)
            if nxt is None:
                nxt = children[cur][sym] = len(children)
                children.append({})
                final.append(False)
            cur = nxt
        final[cur] = True
    return children, final


def strings_dfa(strings) -> ByteDFA:
    """DFA of exactly the UTF-8 encodings of ``strings`` (a trie; minimised
    unless it is large, where minimising costs more than it saves)."""
    nodes, final = trie(s.encode("utf-8", "surrogatepass") for s in strings)
    return ops.normalize(ops.from_edges(nodes, np.array(final, bool)), minimal=len(nodes) < 2000)


def max_length(dfa: ByteDFA) -> int | None:
    """Longest accepted byte string (None if unbounded; -1 for the empty language).

    ``dfa`` must be trimmed (every normalised DFA is), so any cycle is live."""
    if ops.is_empty(dfa):
        return -1
    succ = [sorted({int(x) for x in row if x >= 0}) for row in np.asarray(dfa.trans)]
    state = [0] * len(succ)  # 0 new, 1 on the DFS stack, 2 done
    best = [0] * len(succ)
    acc = np.asarray(dfa.accepting, bool)
    order = []
    stack = [(dfa.start, iter(succ[dfa.start]))]
    state[dfa.start] = 1
    while stack:
        s, it = stack[-1]
        for t in it:
            if state[t] == 1:
                return None  # a cycle: unbounded
            if state[t] == 0:
                state[t] = 1
                stack.append((t, iter(succ[t])))
                break
        else:
            stack.pop()
            state[s] = 2
            order.append(s)
    for s in order:  # post-order: successors first
        m = 0 if acc[s] else -(1 << 40)
        for t in succ[s]:
            m = max(m, best[t] + 1)
        best[s] = m
    return best[dfa.start]


def enumerate_strings(dfa: ByteDFA, limit: int) -> list[bytes] | None:
    """All accepted strings if the language is finite with at most ``limit``
    members, else None."""
    if max_length(dfa) is None:
        return None
    if ops.is_empty(dfa):
        return []
    t = ops.expand(dfa)
    acc = np.asarray(dfa.accepting, bool)
    out: list[bytes] = []
    stack = [(dfa.start, b"")]
    while stack:
        s, pre = stack.pop()
        if acc[s]:
            out.append(pre)
            if len(out) > limit:
                return None
        row = t[s]
        for byte in np.flatnonzero(row >= 0)[::-1]:
            stack.append((int(row[byte]), pre + bytes([int(byte)])))
    return out
