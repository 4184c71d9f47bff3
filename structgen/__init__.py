"""structgen: constrained and structured generation from language models.

Compile a regex or a Lark/GBNF grammar over a tokenizer's vocabulary, then
drive generation with a per-sequence ``Matcher`` that serves token bitmasks::

    vocab = Vocabulary.from_tokenizer(tokenizer)
    compiled = compile_grammar(open("grammars/json.lark").read(), vocab)
    matcher = compiled.matcher()
    bitmask = allocate_token_bitmask(1, vocab.size)
    matcher.fill_next_token_bitmask(bitmask)   # then mask logits, sample, accept
"""

from .compile import compile_grammar, compile_json_schema, compile_regex
from .compiler import GrammarCompiler
from .errors import (
    BudgetExceeded,
    ConfigurationError,
    GrammarError,
    InvalidSyntax,
    RegexError,
    StructgenError,
    Unsupported,
    VocabularyError,
)
from .grammar.library import list_grammars, load_grammar
from .limits import Limits
from .mask.bitmask import allocate_token_bitmask, apply_token_bitmask_inplace, reset_token_bitmask
from .mask.engine import CompiledGrammar
from .mask.matcher import Matcher
from .report import CompileReport, ReportEntry
from .vocab import Vocabulary

__version__ = "0.1.0"

__all__ = [
    # errors first, as lark does
    "StructgenError", "ConfigurationError", "InvalidSyntax", "GrammarError", "RegexError",
    "Unsupported", "BudgetExceeded", "VocabularyError",
    # vocabulary -> compile -> match -> mask
    "Vocabulary", "GrammarCompiler", "Limits", "compile_regex", "compile_grammar", "compile_json_schema",
    "load_grammar", "list_grammars", "CompiledGrammar", "CompileReport", "ReportEntry", "Matcher",
    "allocate_token_bitmask", "apply_token_bitmask_inplace", "reset_token_bitmask",
    # generation with a model (imported lazily: torch/transformers only when used)
    "JsonSchemaOptions",
    "generate", "GenerationResult", "structured", "load_default_model",
    "StructgenLogitsProcessor", "StructgenStoppingCriteria",
]

_LAZY = {
    "JsonSchemaOptions": ("structgen.json_schema", "JsonSchemaOptions"),
    "generate": ("structgen.integrations.generate", "generate"),
    "GenerationResult": ("structgen.integrations.generate", "GenerationResult"),
    "structured": ("structgen.api", "structured"),
    "load_default_model": ("structgen.models", "load_default_model"),
    "StructgenLogitsProcessor": ("structgen.integrations.transformers", "StructgenLogitsProcessor"),
    "StructgenStoppingCriteria": ("structgen.integrations.transformers", "StructgenStoppingCriteria"),
}


#: subpackages reachable as attributes without an explicit import (``structgen.sampling.ASAp``)
_SUBPACKAGES = ("sampling", "json_schema", "integrations", "api", "testing")


def __getattr__(name):
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"structgen.{name}")
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'structgen' has no attribute {name!r}")
