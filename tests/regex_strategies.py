"""A hypothesis strategy for random regular expressions, shared by the mask tests.

Import from a test module as ``from regex_strategies import regexes``."""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["regexes"]

_POSTFIX = {"star": "*", "plus": "+", "opt": "?"}


@st.composite
def regexes(draw, atoms, kinds=("atom", "cat", "alt", "star", "plus", "opt"), max_depth: int = 2, depth: int = 0):
    """A regex over ``atoms`` combined by ``kinds`` (drawn uniformly, repeat one to weight
    it): ``atom``, ``cat``, ``alt``, ``star``, ``plus``, ``opt``, ``count`` (``{lo,hi}``
    with lo, hi - lo in 0..2).  From ``max_depth`` levels down every part is an atom;
    every group is non-capturing."""
    kind = draw(st.sampled_from(kinds)) if depth < max_depth else "atom"
    if kind == "atom":
        return draw(st.sampled_from(atoms))
    a = draw(regexes(atoms, kinds, max_depth, depth + 1))
    if kind in ("cat", "alt"):
        b = draw(regexes(atoms, kinds, max_depth, depth + 1))
        return f"(?:{a}{'|' if kind == 'alt' else ''}{b})"
    if kind == "count":
        lo = draw(st.integers(0, 2))
        return f"(?:{a}){{{lo},{lo + draw(st.integers(0, 2))}}}"
    return f"(?:{a}){_POSTFIX[kind]}"
