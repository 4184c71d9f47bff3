"""``GrammarCompiler``: compiles constraints for one vocabulary and owns their caches.

One compiler per vocabulary (as xgrammar's ``GrammarCompiler``) holds

* the trie-walk cache every constraint over the vocabulary shares (walk
  results depend only on the vocabulary and a lexer automaton, so e.g. the
  JSON-string interior walk is computed once for all schemas), and
* the compiled constraints, memoised by kind + a digest of the source text +
  options: compiling the same source again returns the same object.

Both are bounded by ``cache_limit_bytes`` (half each, least recently used
first) and emptied by ``clear_cache()``.  Every limit comes from one
:class:`~structgen.Limits`.  The module-level ``structgen.compile_*`` functions
use a default compiler per vocabulary fingerprint."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import marshal
import threading
from collections import OrderedDict
from dataclasses import fields

import numpy as np

from .automata.fsm import ByteDFA
from .automata.ops import trim
from .automata.regex import regex_to_dfa
from .errors import ConfigurationError
from .grammar.ir import Grammar, Terminal, term_symbol
from .limits import Limits
from .mask.engine import CompiledGrammar
from .mask.lru import ByteLRU
from .report import CompileReport
from .vocab.vocabulary import Vocabulary

__all__ = ["GrammarCompiler", "Limits", "default_compiler", "regex_grammar", "text_grammar"]

DEFAULT_CACHE_LIMIT_BYTES = 1 << 30
_REMEASURE_EVERY = 32  # inserts between two measurements of every memoised constraint, at least
#: options of the compiled constraint itself (the rest of a call's options go to the front-end)
_ENGINE_OPTIONS = ("kernels", "cache_bytes")


_PAUSE_LOCK = threading.Lock()
_pauses = 0
_collector_was_enabled = False


@contextlib.contextmanager
def collector_paused():
    """No automatic garbage collection while compiling (re-entrant, any thread).

    A compile allocates hundreds of thousands of short-lived containers
    (automata, IR, schema views).  With the collector on, they trigger young
    collections that promote the ones alive at that moment to the oldest
    generation, and that growth triggers full collections, which scan every
    object of the process (~200 ms once torch and transformers are imported)
    and land in later mask fills.  Paused, the temporaries die by reference
    counting before any collection sees them; what the compile keeps is
    collected once after.  The collector's previous state is restored."""
    global _pauses, _collector_was_enabled
    with _PAUSE_LOCK:
        if _pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _pauses -= 1
            if _pauses == 0 and _collector_was_enabled:
                gc.enable()


# Its first three masks call every mask kernel: a product of the four terminals the
# start allows, its projection to two, a single-terminal lexer (after "d"), trie
# walks with sparse results, slice choices.
_KERNEL_LOAD_GRAMMAR = 'start: A B | A C | B C | C | D A\nA: "a"\nB: /b+/\nC: /[ c]+/\nD: "d"\n'
_KERNELS_LOADED: set[str] = set()
_KERNELS_LOCK = threading.Lock()


def _load_kernels(vocab: Vocabulary, limits: Limits, kernels: str) -> None:
    """Load the numba kernels of compiling and masking once per process, when the
    first compiler is made, rather than inside the first request (numba reads
    each from its disk cache on first call: 5-20 ms each, the numeric bounds kernel
    and the DFA kernels that no grammar's first masks call included), and the one
    process-wide table most schemas need (the integers' number language)."""
    from .mask.kernels import get_kernels

    backend = get_kernels(kernels).__name__  # type: ignore[arg-type]
    with _KERNELS_LOCK:
        if backend in _KERNELS_LOADED or not backend.endswith("numba_cpu"):  # the Python twins load nothing
            return
        _KERNELS_LOADED.add(backend)
    with collector_paused():
        warm = CompiledGrammar(text_grammar(_KERNEL_LOAD_GRAMMAR, limits=limits), vocab, kernels=kernels,
                               limits=limits)
        state = warm.initial_state
        warm.mask(state)
        warm.mask(warm.advance_bytes(state, b"a"))  # a projection
        warm.mask(warm.advance_bytes(state, b"d"))  # a single terminal
        # events renumbered from a slice's trie: no token of a byte-level vocabulary has one
        empty, one = np.zeros((2, 0), np.int32), np.zeros(1, np.int32)
        get_kernels(kernels).events_to_full(empty, one, one, one, one, one)  # type: ignore[arg-type]
        get_kernels(kernels).literal_tables(np.frombuffer(b'"key"', np.uint8))  # a JSON key's tables
        from .automata import ops
        from .json_schema.numbers import load_kernel, number_dfa

        ops.load_kernels()
        load_kernel()
        # the integers' language (JSON numbers of integral value), shared by every
        # schema with an integer: explored once (~5 ms) here rather than in the first one
        number_dfa(integral=True)


class GrammarCompiler:
    """Compiles regexes, Lark/GBNF grammars and JSON Schemas over ``vocab``.

    ``cache_limit_bytes``: budget of the shared walk cache and of the memoised
    constraints (their IR and own caches), half each.  ``limits``: a
    :class:`Limits` or a dict of overrides.  ``kernels``: mask kernel backend
    ("auto", "numba", "reference") unless a call says otherwise.  Thread-safe."""

    def __init__(self, vocab: Vocabulary, *, cache_limit_bytes: int = DEFAULT_CACHE_LIMIT_BYTES,
                 limits: Limits | dict | None = None, kernels: str = "auto"):
        if not isinstance(vocab, Vocabulary):
            raise ConfigurationError(f"vocab must be a structgen Vocabulary, not {type(vocab).__name__}")
        if isinstance(cache_limit_bytes, bool) or not isinstance(cache_limit_bytes, int) or cache_limit_bytes < 2:
            raise ConfigurationError(f"cache_limit_bytes={cache_limit_bytes!r}: expected an int >= 2")
        self.vocab = vocab
        self.limits = Limits.make(limits)
        self.kernels = kernels
        self.cache_limit_bytes = cache_limit_bytes
        self.walk_cache = ByteLRU(cache_limit_bytes // 2)
        self._compiled: OrderedDict[tuple, tuple[CompiledGrammar, int]] = OrderedDict()  # (constraint, IR bytes)
        # bytes of the memoised constraints as last measured (constraints' caches grow
        # after insertion, so every so many inserts all are measured again)
        self._sizes: dict[tuple, int] = {}
        self._used = 0
        self._remeasure_in = _REMEASURE_EVERY  # inserts until the next measurement
        self._lock = threading.Lock()
        _load_kernels(vocab, self.limits, kernels)

    def __repr__(self) -> str:
        return (f"GrammarCompiler({self.vocab!r}, cached={len(self._compiled)}, "
                f"cache_size_bytes={self.cache_size_bytes})")

    # --- compile -----------------------------------------------------------------
    def compile_regex(self, pattern: str, **options) -> CompiledGrammar:
        """The strings fully matching ``pattern`` (Python ``re`` syntax without
        lookaround/backreferences), as UTF-8 bytes.  ``options``: ``kernels``."""
        engine = _engine_options(options, "compile_regex", self.kernels)
        if options:
            raise ConfigurationError(f"unknown compile_regex option(s) {sorted(options)}; valid: "
                                     f"{list(_ENGINE_OPTIONS)}")
        return self._cached(("regex", _digest(pattern), _frozen(engine)),
                            lambda: self._build(regex_grammar(pattern, self.limits), "regex", engine))

    def compile_grammar(self, text: str, *, start: str = "start", syntax: str = "auto",
                        **options) -> CompiledGrammar:
        """A Lark or GBNF grammar (``syntax``: "lark", "gbnf" or "auto": GBNF when the
        text defines rules with ``::=``).  ``options``: ``kernels``."""
        engine = _engine_options(options, "compile_grammar", self.kernels)
        if options:
            raise ConfigurationError(f"unknown compile_grammar option(s) {sorted(options)}; valid: "
                                     f"{list(_ENGINE_OPTIONS)}")
        if syntax not in ("auto", "lark", "gbnf"):
            raise ConfigurationError(f'syntax={syntax!r}: expected "auto", "lark" or "gbnf"')
        key = ("grammar", _digest(text), start, syntax, _frozen(engine))
        return self._cached(key, lambda: self._build(text_grammar(text, start=start, syntax=syntax,
                                                                  limits=self.limits), "grammar", engine))

    def compile_json_schema(self, schema, *, options=None, **json_options) -> CompiledGrammar:
        """The JSON documents valid under ``schema`` (a dict/bool, JSON text, pydantic
        model or type); ``json_options``: :class:`~structgen.JsonSchemaOptions` fields
        (or ``options=``) and ``kernels``.  The result's ``report`` lists what was
        dropped, relaxed or ignored.  ``time_budget_s`` defaults to
        ``limits.max_compile_seconds``."""
        from .json_schema.compile import JsonSchemaOptions, normalize_schema, schema_to_grammar

        engine = _engine_options(json_options, "compile_json_schema", self.kernels)
        if options is None and "time_budget_s" not in json_options:
            json_options["time_budget_s"] = self.limits.max_compile_seconds
        opt = JsonSchemaOptions.make(options, **json_options)
        if not isinstance(schema, (dict, bool, str, bytes)):
            schema = normalize_schema(schema)  # pydantic models and types: their JSON Schema, built once

        def build():
            grammar = schema_to_grammar(schema, options=opt)
            return self._build(grammar, "json_schema", engine, grammar.meta["report"])

        key = _schema_key(schema, opt)
        if key is None:  # not JSON-serialisable: compiled, not memoised
            with collector_paused():
                return build()
        return self._cached(("json_schema", key, _frozen(engine)), build)

    # --- caches ------------------------------------------------------------------
    @property
    def cache_size_bytes(self) -> int:
        """Approximate bytes held: the walk cache plus the memoised constraints."""
        with self._lock:
            entries = list(self._compiled.values())
        return self.walk_cache.used + sum(ir + c.cache_size_bytes for c, ir in entries)

    def clear_cache(self) -> None:
        """Empty the walk cache and forget the memoised constraints (and their caches).
        Constraints and matchers in use stay valid; they refill what they need."""
        with self._lock:
            entries = list(self._compiled.values())
            self._compiled.clear()
            self._sizes.clear()
            self._used = 0
        self.walk_cache.clear()
        for c, _ in entries:
            c.clear_cache()

    def _cached(self, key: tuple, build) -> CompiledGrammar:
        with self._lock:
            hit = self._compiled.get(key)
            if hit is not None:
                self._compiled.move_to_end(key)
                return hit[0]
        with collector_paused():  # outside the lock: compiles may take long; a duplicate race is harmless
            compiled = build()
        with self._lock:
            hit = self._compiled.get(key)
            if hit is not None:
                return hit[0]
            ir = _ir_bytes(compiled.grammar)
            self._compiled[key] = (compiled, ir)
            self._sizes[key] = ir
            self._used += ir
            self._evict()
        return compiled

    def _evict(self) -> None:
        """Drop least recently used constraints past the budget (called with the lock held)."""
        self._remeasure_in -= 1
        if self._remeasure_in <= 0:  # O(n), every n/4 inserts or more: amortised O(1) per insert
            self._sizes = {k: ir + c.cache_size_bytes for k, (c, ir) in self._compiled.items()}
            self._used = sum(self._sizes.values())
            self._remeasure_in = max(_REMEASURE_EVERY, len(self._compiled) // 4)
        budget = self.cache_limit_bytes - self.cache_limit_bytes // 2
        while self._used > budget and len(self._compiled) > 1:
            key, _ = self._compiled.popitem(last=False)
            self._used -= self._sizes.pop(key)

    def _build(self, grammar: Grammar, kind: str, engine: dict, report: CompileReport | None = None):
        return CompiledGrammar(grammar, self.vocab, kind=kind, limits=self.limits, walk_cache=self.walk_cache,
                               report=report, **engine)


# --- front-ends: source text -> grammar IR ------------------------------------------
def regex_grammar(pattern: str, limits: Limits | None = None) -> Grammar:
    """``start: REGEX`` (or ``REGEX | <empty>``: lexemes are never empty)."""
    dfa = regex_to_dfa(pattern, max_states=Limits.make(limits).max_regex_states)
    if not dfa.accepting[dfa.start]:
        return Grammar.single_terminal(Terminal("REGEX", dfa, pattern))
    terminal = Terminal("REGEX", _without_empty(dfa), pattern)
    return Grammar([terminal], ["start"], [(0, (term_symbol(0),)), (0, ())], 0, source=pattern)


def _without_empty(dfa: ByteDFA) -> ByteDFA:
    """The same language minus the empty string: a fresh, non-accepting start state."""
    trans = np.vstack([dfa.trans, dfa.trans[dfa.start][None]])
    accepting = np.append(dfa.accepting, False)
    return trim(ByteDFA(trans.astype(np.int32), dfa.classes, accepting, len(accepting) - 1))


def text_grammar(text: str, *, start: str = "start", syntax: str = "auto", limits: Limits | None = None) -> Grammar:
    """The IR of a Lark or GBNF grammar text."""
    from .grammar.gbnf import gbnf_to_lark, is_gbnf
    from .grammar.lark_frontend import cached_lark_to_grammar

    if syntax == "gbnf" or (syntax == "auto" and is_gbnf(text)):
        text, start = gbnf_to_lark(text), "start"
    return cached_lark_to_grammar(text, start, Limits.make(limits).max_regex_states)


# --- helpers -------------------------------------------------------------------------
def _engine_options(options: dict, where: str, kernels: str) -> dict:
    """Pop the compiled-constraint options out of ``options`` (validated, defaults filled in)."""
    engine = {"kernels": options.pop("kernels", kernels), "cache_bytes": options.pop("cache_bytes", None)}
    cb = engine["cache_bytes"]
    if cb is not None and (isinstance(cb, bool) or not isinstance(cb, int) or cb < 1):
        raise ConfigurationError(f"{where}: cache_bytes={cb!r}: expected None or a positive int")
    return engine


def _frozen(options: dict) -> tuple:
    return tuple(sorted(options.items()))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _schema_key(value, opt) -> str | None:
    """Digest of the schema (a dict, bool or JSON text) and every option (None: not
    serialisable).  Keys keep their order: the declared order of properties is the
    order generated (``property_order="schema"``), so a reordered schema is another
    constraint.  JSON text is keyed by its value: the same schema as a dict or as text
    (in any spacing) is one constraint.

    The value is serialised with ``marshal`` (format 0: no back-references or
    interning flags, so the bytes depend on the value alone, not on which of its
    objects are shared or interned), ~3x faster than ``json.dumps``, which took a
    tenth of a median schema's compile.  The bytes name the value with its types
    (``1``, ``1.0`` and ``True`` differ, as in JSON), so two schemas never share a key;
    a tuple for a list gets another key, which only misses the memo.  The key lives in
    this process only."""
    try:
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        data = None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:  # not JSON: keyed by its text (compiling it reports the error)
                data = b"t" + value.encode("utf-8", "surrogatepass")
        if data is None:
            try:
                data = b"m" + marshal.dumps(value, 0)
            except ValueError:  # a type marshal does not know (a dict subclass...): as JSON text
                data = b"j" + json.dumps(value, allow_nan=False).encode("utf-8", "surrogatepass")
        extra = _options_text(opt)
        if opt.registry is not None:  # not part of the options' equality: spelled out every time
            extra += json.dumps(opt.registry, sort_keys=True, default=repr)
    except (TypeError, ValueError, RecursionError):
        return None
    return hashlib.sha256(data + b"\x00" + extra.encode("utf-8", "surrogatepass")).hexdigest()


@functools.lru_cache(maxsize=64)
def _options_text(opt) -> str:
    """The options but the registry, as text (few distinct option sets: memoised)."""
    return json.dumps(sorted((f.name, getattr(opt, f.name)) for f in fields(opt) if f.name != "registry"),
                      default=repr)


def _ir_bytes(grammar: Grammar) -> int:
    """Approximate size of a grammar IR (terminal automata dominate; a lazy terminal
    not built yet is counted as a short literal's)."""
    return (sum(t.dfa.trans.nbytes + 256 if t.built else 512 for t in grammar.terminals)
            + 64 * len(grammar.rules) + 1024)


# One default compiler per vocabulary fingerprint (the most recent few), for the
# module-level compile functions.
_DEFAULTS: OrderedDict[str, GrammarCompiler] = OrderedDict()
_DEFAULTS_MAX = 4
_DEFAULT_CACHE_BYTES = 512 << 20
_DEFAULTS_LOCK = threading.Lock()


def default_compiler(vocab: Vocabulary) -> GrammarCompiler:
    """The shared compiler of ``vocab`` (by fingerprint) behind ``structgen.compile_*``."""
    if not isinstance(vocab, Vocabulary):
        raise ConfigurationError(f"vocab must be a structgen Vocabulary, not {type(vocab).__name__}")
    key = vocab.fingerprint
    with _DEFAULTS_LOCK:
        compiler = _DEFAULTS.get(key)
        if compiler is None:
            compiler = _DEFAULTS[key] = GrammarCompiler(vocab, cache_limit_bytes=_DEFAULT_CACHE_BYTES)
            while len(_DEFAULTS) > _DEFAULTS_MAX:
                _DEFAULTS.popitem(last=False)
        else:
            _DEFAULTS.move_to_end(key)
    return compiler
