"""Front door of the compilers: regex and grammar text to a ``CompiledGrammar``."""

from __future__ import annotations

import numpy as np

from .automata.fsm import ByteDFA
from .automata.ops import trim
from .automata.regex import regex_to_dfa
from .grammar.ir import Grammar, Terminal, term_symbol
from .mask.engine import CompiledGrammar
from .vocab.vocabulary import Vocabulary


def compile_regex(pattern: str, vocab: Vocabulary, **options) -> CompiledGrammar:
    """A constraint whose language is exactly the strings fully matching ``pattern``
    (Python ``re`` syntax without lookaround/backreferences), as UTF-8 bytes."""
    dfa = regex_to_dfa(pattern)
    if not dfa.accepting[dfa.start]:
        grammar = Grammar.single_terminal(Terminal("REGEX", dfa, pattern))
    else:  # lexemes are never empty: start -> REGEX_NONEMPTY | <empty>
        terminal = Terminal("REGEX", _without_empty(dfa), pattern)
        grammar = Grammar([terminal], ["start"], [(0, (term_symbol(0),)), (0, ())], 0, source=pattern)
    return CompiledGrammar(grammar, vocab, kind="regex", **options)


def _without_empty(dfa: ByteDFA) -> ByteDFA:
    """The same language minus the empty string: a fresh, non-accepting start state."""
    trans = np.vstack([dfa.trans, dfa.trans[dfa.start][None]])
    accepting = np.append(dfa.accepting, False)
    return trim(ByteDFA(trans.astype(np.int32), dfa.classes, accepting, len(accepting) - 1))


def compile_grammar(text: str, vocab: Vocabulary, *, start: str = "start",
                    syntax: str = "auto", **options) -> CompiledGrammar:
    """Compile a Lark grammar or a GBNF grammar (``syntax``: "lark", "gbnf" or "auto":
    GBNF when the text defines rules with ``::=``)."""
    from .grammar.gbnf import gbnf_to_lark, is_gbnf
    from .grammar.lark_frontend import cached_lark_to_grammar

    if syntax == "gbnf" or (syntax == "auto" and is_gbnf(text)):
        text, start = gbnf_to_lark(text), "start"
    grammar = cached_lark_to_grammar(text, start)
    return CompiledGrammar(grammar, vocab, kind="grammar", **options)
