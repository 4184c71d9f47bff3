"""Front door of the compilers: regex and grammar text to a ``CompiledGrammar``."""

from __future__ import annotations

from .automata.regex import regex_to_dfa
from .grammar.ir import Grammar, Terminal
from .mask.engine import CompiledGrammar
from .vocab.vocabulary import Vocabulary


def compile_regex(pattern: str, vocab: Vocabulary, **options) -> CompiledGrammar:
    """A constraint whose language is exactly the strings fully matching ``pattern``
    (Python ``re`` syntax without lookaround/backreferences), as UTF-8 bytes."""
    dfa = regex_to_dfa(pattern)
    return CompiledGrammar(Grammar.single_terminal(Terminal("REGEX", dfa, pattern)), vocab,
                           kind="regex", **options)


def compile_grammar(text: str, vocab: Vocabulary, *, start: str = "start",
                    syntax: str = "auto", **options) -> CompiledGrammar:
    """Compile a Lark grammar or a GBNF grammar (``syntax``: "lark", "gbnf" or "auto":
    GBNF when the text defines rules with ``::=``)."""
    from .grammar.gbnf import gbnf_to_lark, is_gbnf
    from .grammar.lark_frontend import lark_to_grammar

    if syntax == "gbnf" or (syntax == "auto" and is_gbnf(text)):
        text, start = gbnf_to_lark(text), "start"
    grammar = lark_to_grammar(text, start=start)
    return CompiledGrammar(grammar, vocab, kind="grammar", **options)
