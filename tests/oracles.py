"""Brute-force oracles, independent of the engine, for mask correctness tests."""

from __future__ import annotations

import regex as _regex


def regex_viable(pattern: str, text: str) -> bool:
    """Is ``text`` a prefix of some full match of ``pattern``? (``regex`` partial matching;
    ASCII ``\\d\\w\\s`` as structgen documents)."""
    return _regex.fullmatch(pattern, text, partial=True, flags=_regex.ASCII) is not None


def regex_complete(pattern: str, text: str) -> bool:
    m = _regex.fullmatch(pattern, text, flags=_regex.ASCII)
    return m is not None


def cfg_viable(rules, start, prefix: str, *, complete: bool = False) -> bool:
    """Bar-Hillel emptiness test.  ``rules``: list of (lhs, tuple of symbols), a
    symbol being a nonterminal name (str of length > 1) or a one-character
    terminal.  True when some string ``prefix + w`` (``w == ""`` if ``complete``)
    is derivable from ``start``."""
    n = len(prefix)

    def delta(q, a):
        if q < n:
            return q + 1 if prefix[q] == a else None
        return None if complete else n

    nonterminals = {lhs for lhs, _ in rules}
    productive: set[tuple[int, str, int]] = set()
    changed = True
    while changed:
        changed = False
        for lhs, rhs in rules:
            for q0 in range(n + 1):
                reach = {q0}
                for sym in rhs:
                    nxt = set()
                    for q in reach:
                        if sym in nonterminals:
                            nxt |= {q2 for q2 in range(n + 1) if (q, sym, q2) in productive}
                        else:
                            q2 = delta(q, sym)
                            if q2 is not None:
                                nxt.add(q2)
                    reach = nxt
                    if not reach:
                        break
                for q1 in reach:
                    if (q0, lhs, q1) not in productive:
                        productive.add((q0, lhs, q1))
                        changed = True
    return (0, start, n) in productive
