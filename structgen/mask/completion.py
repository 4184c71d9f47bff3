"""Completions of a parser state: byte strings that take it to a complete sentence.

Budget-safe closing needs, at every step, *a* completion that fits the tokens
left: :func:`shortest_completion` (breadth-first over bytes, exact) and
:func:`greedy_completion` (depth-first, closers first: fast, not always the
shortest).  Both work on byte classes: a byte's successor depends only on its
class in the current lexer and, where the pending lexeme may end, in the next
row's lexer, so one representative byte per class is enough.  The matcher
exposes them as ``Matcher.completion_tokens`` / ``Matcher.fits``; results are
memoised per compiled constraint in a :class:`CompletionCache`."""

from __future__ import annotations

import threading

from ..grammar.earley import DEAD

__all__ = ["CompletionCache", "shortest_completion", "greedy_completion"]

_MISSING = object()

#: bytes a greedy completion tries first: what closes strings, objects, arrays and groups
_CLOSERS = b'}])"'


class _Memo(dict):
    """A dict that forgets everything past ``limit`` entries (completions are cheap to redo)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def put(self, key, value):
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


def state_key(state) -> tuple[int, int]:
    """A memo key for a parser state that neither keeps its Earley row alive nor is
    scanned by the garbage collector: (row serial, lexer state)."""
    return state[0].serial, state[1]


class CompletionCache:
    """Per compiled constraint: shortest and greedy completions by state, closing
    tokens by (state, tokeniser), masks under a required prefix (prompt healing)."""

    def __init__(self, limit: int = 50_000):
        self.shortest = _Memo(limit)
        self.greedy = _Memo(limit)
        self.closing = _Memo(limit)
        self.prefix_masks = _Memo(1024)
        self.lock = threading.Lock()

    def clear(self) -> None:
        for memo in (self.shortest, self.greedy, self.closing, self.prefix_masks):
            memo.clear()


def representative_bytes(compiled, state, viable: list[int] | None = None) -> list[int]:
    """The viable next bytes, one per class of equivalent bytes (the smallest)."""
    if viable is None:
        viable = compiled.viable_bytes(state).tolist()
    row, s = state
    lex = compiled.lexer(row)
    cls = lex.classes
    ncls = None
    if s and lex.terms_at(s):
        nxt = compiled.after_lexeme(row, lex.terms_at(s))
        if nxt != DEAD:
            ncls = compiled.lexer(nxt).classes
    seen, out = set(), []
    for b in viable:
        key = (int(cls[b]), -1 if ncls is None else int(ncls[b]))
        if key not in seen:
            seen.add(key)
            out.append(b)
    return out


def _greedy_order(compiled, state) -> list[int]:
    """Bytes to try from ``state``: closers that end the current lexeme or start the next
    first (``"`` ending a string, ``}`` after a value -- not ``}`` as string content), then
    bytes that keep the lexeme complete, then the rest, whitespace last."""
    viable = compiled.viable_bytes(state).tolist()
    reps = representative_bytes(compiled, state, viable)
    present = set(viable)
    cands = [c for c in _CLOSERS if c in present] + [x for x in reps if x not in _CLOSERS]
    row, s = state
    lex = compiled.lexer(row)

    def rank(b: int) -> int:
        if b in b" \t\n\r":
            return 4
        t = lex.step(s, b)  # lexer state 0: between lexemes
        complete = t >= 0 and bool(lex.terms_at(t))  # the lexeme b continues or starts is complete
        if b in _CLOSERS and ((s and t < 0) or (not s and complete)):  # ends the lexeme, or is one
            return 0
        if complete:
            return 1 if b in _CLOSERS else 2
        return 3

    return sorted(cands, key=rank)  # stable: closer order, then byte order within a rank


def _known(memo, compiled, state):
    """(memo key, the memoised result, b"" when already complete, else _MISSING)."""
    key = state_key(state)
    hit = memo.get(key, _MISSING)  # one lookup: another thread may clear the memo
    if hit is _MISSING and compiled.can_end(state):
        hit = memo.put(key, b"")
    return key, hit


def greedy_completion(compiled, state, *, max_steps: int = 20_000) -> bytes | None:
    """*A* completion of ``state`` (not always the shortest): depth-first over bytes,
    closers first, never revisiting a state; None when none is found within
    ``max_steps`` advances.  Memoised per state."""
    memo = compiled.completion_cache.greedy
    key, hit = _known(memo, compiled, state)
    if hit is not _MISSING:
        return hit
    seen = {state}
    stack = [(state, iter(_greedy_order(compiled, state)))]
    path = bytearray()
    steps = 0
    while stack:
        s, options = stack[-1]
        b = next(options, None)
        if b is None:
            stack.pop()
            if path:
                path.pop()
            continue
        steps += 1
        if steps > max_steps:
            return memo.put(key, None)
        s2 = compiled.advance_bytes(s, bytes((b,)))
        if s2 is None or s2 in seen:
            continue
        seen.add(s2)
        path.append(b)
        if compiled.can_end(s2):
            return memo.put(key, bytes(path))
        stack.append((s2, iter(_greedy_order(compiled, s2))))
    return memo.put(key, None)


def shortest_completion(compiled, state, *, max_states: int = 5_000) -> bytes | None:
    """The shortest byte string taking ``state`` to a complete sentence (ties: the
    smallest bytes first), by breadth-first search over byte classes; None when there
    is none or the search passes ``max_states`` states (callers then fall back to
    :func:`greedy_completion`).  Memoised per state, with every state on a found path
    (suffixes of shortest paths are shortest); a memoised tail met during the search
    is a candidate, and the search goes on while a shorter total is still possible."""
    memo = compiled.completion_cache.shortest
    key, hit = _known(memo, compiled, state)
    if hit is not _MISSING:
        return hit
    parent: dict = {state: None}
    frontier = [state]
    depth = 0
    best: tuple[int, object, bytes] | None = None  # (total length, state, its tail)
    while frontier and (best is None or depth < best[0]):
        nxt = []
        for s in frontier:
            for b in representative_bytes(compiled, s):
                s2 = compiled.advance_bytes(s, bytes((b,)))
                if s2 is None or s2 in parent:
                    continue
                parent[s2] = (s, b)
                if compiled.can_end(s2):
                    tail = b""
                else:
                    tail = memo.get(state_key(s2))
                    if tail is None:
                        nxt.append(s2)
                        continue
                if best is None or depth + 1 + len(tail) < best[0]:
                    best = (depth + 1 + len(tail), s2, tail)
            if len(parent) > max_states:
                return None  # not memoised: a larger limit may still find it
        frontier = nxt
        depth += 1
    if best is None:
        return memo.put(key, None) if not frontier else None
    _, s, tail = best
    path = bytearray()
    chain = [s]
    while parent[s] is not None:
        s, b = parent[s]
        path.append(b)
        chain.append(s)
    path.reverse()
    full = bytes(path) + tail
    for k, st in enumerate(chain):  # chain[k]: the state after len(path) - k bytes
        if state_key(st) not in memo:
            memo.put(state_key(st), full[len(path) - k:])
    return memo.get(key, full)
