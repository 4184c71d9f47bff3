"""The grammar IR every front-end lowers to: a CFG over byte-DFA terminals.

Symbols are ints: ``>= 0`` is a nonterminal id, ``< 0`` is terminal ``-(s+1)``."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..automata.fsm import ByteDFA
from ..automata.regex import literal_dfa


def term_symbol(t: int) -> int:
    return -(t + 1)


def symbol_term(s: int) -> int:
    return -s - 1


@dataclass(frozen=True, eq=False)
class Terminal:
    name: str
    dfa: ByteDFA
    source: str = ""  # the regex or literal it came from (for messages)
    #: the one byte string the terminal matches, where known without its DFA (see
    #: :class:`LazyTerminal`), else None
    literal: ClassVar[bytes | None] = None

    @property
    def built(self) -> bool:
        """Is the DFA there?  (A :class:`LazyTerminal`'s is built on first use.)"""
        return True

    def has_strings(self) -> bool:
        """Does the terminal match some string?"""
        return bool(np.count_nonzero(self.dfa.accepting))  # (ndarray.any costs 3x as much)


class LazyTerminal(Terminal):
    """A terminal whose DFA is built by ``build()`` on first use (a lexer that allows
    it, a pickle).  ``build`` must not fail and must give a DFA that matches some
    string: a schema's key literals are the case (a schema declares hundreds of keys,
    and the first mask reads none of them).

    ``literal``: the one byte string ``build()``'s DFA matches, if it is one (a key
    with a single spelling): a lexer of this terminal alone is then made from the
    bytes, and the DFA is built only for a lexer of several terminals."""

    def __init__(self, name: str, build, source: str = "", literal: bytes | None = None):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "_build", build)
        if literal is not None:
            object.__setattr__(self, "literal", bytes(literal))

    @property
    def dfa(self) -> ByteDFA:  # type: ignore[override]
        d = self.__dict__.get("_dfa")
        if d is None:  # two threads may both build it: the same automaton, either is kept
            d = self.__dict__["_dfa"] = self._build()
        return d

    @property
    def built(self) -> bool:
        return "_dfa" in self.__dict__

    def has_strings(self) -> bool:
        return True

    def __reduce__(self):
        # a literal stays lazy (its DFA rebuilt from the bytes if ever needed), so the
        # unpickled grammar (a mask worker process's) keeps the lexers' literal paths
        if self.literal is not None:
            return _literal_terminal, (self.name, self.source, self.literal)
        return Terminal, (self.name, self.dfa, self.source)


def _literal_terminal(name: str, source: str, literal: bytes) -> LazyTerminal:
    return LazyTerminal(name, functools.partial(literal_dfa, literal), source, literal)


@dataclass(eq=False)
class Grammar:
    """Rules are ``(lhs, rhs)`` with ``rhs`` a tuple of symbols.  ``ignore`` lists
    terminals that may appear between any two lexemes (lark's ``%ignore``)."""

    terminals: list[Terminal]
    nonterminals: list[str]
    rules: tuple[tuple[int, tuple[int, ...]], ...]  # (a list is taken, as a tuple)
    start: int
    ignore: tuple[int, ...] = ()
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        # a tuple: its entries (ints, tuples of ints) let the garbage collector stop
        # tracking it, where a list is traversed by every collection of its generation
        self.rules = tuple(self.rules)

    def symbol_name(self, s: int) -> str:
        return self.terminals[symbol_term(s)].name if s < 0 else self.nonterminals[s]

    def describe(self) -> str:
        """Readable text of the rules (debugging, golden tests)."""
        lines = []
        for lhs, rhs in self.rules:
            body = " ".join(self.symbol_name(s) for s in rhs) or "<empty>"
            lines.append(f"{self.nonterminals[lhs]} -> {body}")
        return "\n".join(lines)

    @classmethod
    def single_terminal(cls, terminal: Terminal) -> "Grammar":
        """``start: TERMINAL`` — how a regex constraint enters the grammar machinery."""
        return cls([terminal], ["start"], [(0, (term_symbol(0),))], 0, source=terminal.source)


def proven_heads(rules, allowed_terminals) -> tuple[set[int], list[int], set[int]]:
    """The left-hand sides a worklist proves: a rule proves its head once every
    nonterminal of its right-hand side is proven and every terminal symbol of it
    is in ``allowed_terminals`` (a set of symbols).  Linear in the grammar (a
    fixpoint sweep is quadratic in the nesting depth).  Returns the proven set
    and, per rule, 0 exactly when all its symbols are proven, and the set proven
    by the rules without terminals (the nonterminals that derive the empty
    string), from the same counts."""
    missing: list[int] = []  # per rule: nonterminal occurrences not yet proven, -1: never
    free: list[bool] = []  # per rule: no terminal symbol
    uses: dict[int, list[int]] = {}  # nonterminal -> the rules it occurs in, once per occurrence
    for i, (_, rhs) in enumerate(rules):
        n = 0  # plain loops: this runs once per rule of every compiled grammar
        has_terminal = False
        for s in rhs:
            if s >= 0:
                n += 1
            elif s not in allowed_terminals:
                n = -1
                break
            else:
                has_terminal = True
        missing.append(n)
        free.append(n >= 0 and not has_terminal)
        if n > 0:
            for s in rhs:
                if s >= 0:
                    u = uses.get(s)
                    if u is None:
                        uses[s] = [i]
                    else:
                        u.append(i)
    empty = _prove([m if f else -1 for m, f in zip(missing, free)], rules, uses)
    return _prove(missing, rules, uses), missing, empty


def _prove(missing: list[int], rules, uses: dict) -> set[int]:
    """The worklist of :func:`proven_heads` (``missing`` is counted down in place)."""
    proven: set[int] = set()
    ready = [i for i, m in enumerate(missing) if m == 0]
    while ready:
        lhs = rules[ready.pop()][0]
        if lhs in proven:
            continue
        proven.add(lhs)
        for i in uses.get(lhs, ()):
            if missing[i] > 0:  # -1: a rule this proof never uses
                missing[i] -= 1
                if missing[i] == 0:
                    ready.append(i)
    return proven


def prune_unproductive(grammar: Grammar) -> Grammar:
    """Drop rules that can never derive a finite string (and terminals with an
    empty language), so every Earley item the parser keeps can still complete.
    The result is marked (``meta["pruned"]``), so pruning it again costs nothing,
    and carries its nullable nonterminals (``meta["nullable"]``: its rules list and
    the set, found in the same pass; pruning keeps every rule a derivation of the
    empty string uses, since such rules hold only nullable, so productive, symbols)."""
    if grammar.meta.get("pruned"):
        return grammar
    productive_terms = {term_symbol(t) for t, term in enumerate(grammar.terminals) if term.has_strings()}
    productive, missing, nullable = proven_heads(grammar.rules, productive_terms)
    if grammar.start not in productive:
        from ..errors import GrammarError

        raise GrammarError(f"the start rule {grammar.nonterminals[grammar.start]!r} derives no finite string")
    rules = [rule for rule, m in zip(grammar.rules, missing) if m == 0]  # every symbol productive
    if len(rules) < len(grammar.rules):
        grammar = Grammar(grammar.terminals, grammar.nonterminals, rules, grammar.start,
                          grammar.ignore, grammar.source, dict(grammar.meta))
    grammar.meta["pruned"] = True
    grammar.meta["nullable"] = (grammar.rules, frozenset(nullable))
    return grammar


def bit_indices(mask: int) -> list[int]:
    """The positions of the set bits of ``mask``, ascending (cost: one step per set bit)."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out
