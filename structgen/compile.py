"""Front door of the compilers: regex, grammar and JSON Schema to a ``CompiledGrammar``.

Thin wrappers over the default :class:`~structgen.GrammarCompiler` of the
vocabulary (one per vocabulary fingerprint): compiling the same source twice
returns the same, shared constraint.  Use a ``GrammarCompiler`` of your own to
choose cache budgets and :class:`~structgen.Limits`."""

from __future__ import annotations

from .compiler import default_compiler
from .mask.engine import CompiledGrammar
from .vocab.vocabulary import Vocabulary

__all__ = ["compile_regex", "compile_grammar", "compile_json_schema"]


def compile_regex(pattern: str, vocab: Vocabulary, **options) -> CompiledGrammar:
    """A constraint whose language is exactly the strings fully matching ``pattern``
    (Python ``re`` syntax without lookaround/backreferences), as UTF-8 bytes."""
    return default_compiler(vocab).compile_regex(pattern, **options)


def compile_grammar(text: str, vocab: Vocabulary, *, start: str = "start",
                    syntax: str = "auto", **options) -> CompiledGrammar:
    """Compile a Lark grammar or a GBNF grammar (``syntax``: "lark", "gbnf" or "auto":
    GBNF when the text defines rules with ``::=``)."""
    return default_compiler(vocab).compile_grammar(text, start=start, syntax=syntax, **options)


def compile_json_schema(schema, vocab: Vocabulary, *, options=None, **kwargs) -> CompiledGrammar:
    """Compile a JSON Schema (see :meth:`GrammarCompiler.compile_json_schema`)."""
    return default_compiler(vocab).compile_json_schema(schema, options=options, **kwargs)
