"""GrammarCompiler, Limits and the long-lived / shared use of a CompiledGrammar:
memoised constraints and byte budgets, bounded Earley rows and step caches,
thread safety, read-only masks, the typed compile report."""

from __future__ import annotations

import ast
import gc
import hashlib
import random
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import structgen
from structgen import (
    BudgetExceeded,
    CompiledGrammar,
    CompileReport,
    ConfigurationError,
    GrammarCompiler,
    Limits,
    ReportEntry,
    Vocabulary,
    allocate_token_bitmask,
    compile_grammar,
    compile_regex,
)
from structgen.compiler import default_compiler

BACKENDS = ["numba", "reference"]

# Nested lists of numbers: the number of distinct Earley rows grows with the
# variety of nesting, so a long run with a tiny row limit must recycle rows.
NESTED = r"""
start: value+
value: "[" [value ("," value)*] "]" | NUMBER
NUMBER: /[0-9]+/
"""
NESTED_TOKENS = ["[", "]", ",", "1", "2", "12", "[[", "]]", "],", ",[", "[1", "1]", "1,", "2]"]


def nested_vocab() -> Vocabulary:
    return Vocabulary.from_strings(NESTED_TOKENS, name="nested")


def random_value(rng: random.Random, depth: int) -> str:
    if depth > 6 or rng.random() < 0.35:
        return rng.choice(["1", "2", "12", "21"])
    items = [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return "[" + ",".join(items) + "]"


def tokenize(vocab: Vocabulary, text: str, rng: random.Random) -> list[int]:
    """A random segmentation of ``text`` into vocabulary tokens (not only the greedy one)."""
    ids, i, data = [], 0, text.encode()
    while i < len(data):
        options = [n for n in (2, 1) if vocab.token_id(data[i:i + n]) is not None and i + n <= len(data)]
        n = rng.choice(options)
        ids.append(vocab.token_id(data[i:i + n]))
        i += n
    return ids


def documents(vocab: Vocabulary, seed: int, n: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [tokenize(vocab, "".join(random_value(rng, 0) for _ in range(rng.randint(1, 4))), rng)
            for _ in range(n)]


def mask_digests(compiled: CompiledGrammar, docs: list[list[int]]) -> list[str]:
    """Digest of every mask met while accepting the documents (fill_next_token_bitmask)."""
    bitmask = allocate_token_bitmask(1, compiled.vocab.size)
    out = []
    for doc in docs:
        m = compiled.matcher()
        for t in doc:
            m.fill_next_token_bitmask(bitmask, 0)
            out.append(hashlib.blake2b(bitmask.tobytes(), digest_size=8).hexdigest())
            assert m.accept_token(t)
        assert m.can_terminate()
        m.fill_next_token_bitmask(bitmask, 0)
        out.append(hashlib.blake2b(bitmask.tobytes(), digest_size=8).hexdigest())
    return out


# --- Limits -------------------------------------------------------------------------
def test_limits_are_validated_and_frozen():
    lim = Limits(max_earley_rows=10, max_compile_seconds=None)
    assert lim.max_earley_rows == 10 and lim.max_compile_seconds is None
    assert lim.max_regex_states == Limits().max_regex_states
    with pytest.raises(ConfigurationError, match="unknown limit"):
        Limits(max_rows=5)
    with pytest.raises(ConfigurationError, match="max_lexer_states"):
        Limits(max_lexer_states=0)
    with pytest.raises(ConfigurationError):
        Limits(mask_cache_bytes=True)
    with pytest.raises(ConfigurationError):
        Limits(max_compile_seconds=-1)
    with pytest.raises(Exception):  # frozen
        lim.max_earley_rows = 3  # type: ignore[misc]
    assert lim.replace(max_step_entries=7).max_step_entries == 7
    with pytest.raises(ConfigurationError):
        lim.replace(bogus=1)
    assert Limits.make({"max_step_entries": 3}) == Limits(max_step_entries=3)
    with pytest.raises(ConfigurationError, match="unknown limit"):
        GrammarCompiler(Vocabulary.byte_level(), limits={"max_state": 1})
    with pytest.raises(ConfigurationError):
        GrammarCompiler(Vocabulary.byte_level(), cache_limit_bytes=0)


def test_limits_are_enforced_at_compile_time():
    vocab = Vocabulary.byte_level()
    small = GrammarCompiler(vocab, limits=Limits(max_regex_states=20))
    with pytest.raises(BudgetExceeded):
        small.compile_regex(r"[ab]{0,40}c")
    GrammarCompiler(vocab).compile_regex(r"[ab]{0,40}c")  # fine with the defaults
    with pytest.raises(BudgetExceeded):
        small.compile_grammar('start: A\nA: /[ab]{0,40}c/')
    tiny_lexer = GrammarCompiler(vocab, limits=Limits(max_lexer_states=3))
    c = tiny_lexer.compile_grammar('start: A | B\nA: "abcdef"\nB: "abcxyz"')
    with pytest.raises(BudgetExceeded, match="lexer"):
        c.matcher().next_token_mask()
    rushed = GrammarCompiler(vocab, limits=Limits(max_compile_seconds=1e-9))
    with pytest.raises(BudgetExceeded, match="time_budget_s"):
        rushed.compile_json_schema({"type": "object", "properties": {"a": {"type": "string"}}})


# --- the compiler's caches ----------------------------------------------------------
def test_compiler_memoises_constraints_by_source_and_options():
    vocab = nested_vocab()
    comp = GrammarCompiler(vocab)
    a = comp.compile_regex(r"\d+")
    assert comp.compile_regex(r"\d+") is a
    assert comp.compile_regex(r"\d+", kernels="reference") is not a
    assert comp.compile_regex(r"\d*") is not a
    g = comp.compile_grammar(NESTED)
    assert comp.compile_grammar(NESTED) is g and comp.compile_grammar(NESTED, start="value") is not g
    s1 = comp.compile_json_schema({"type": "array", "items": {"type": "integer"}})
    assert comp.compile_json_schema('{"type": "array", "items": {"type": "integer"}}') is s1  # same JSON text
    assert comp.compile_json_schema('{"type":"array",\n "items":{"type":"integer"}}') is s1  # in any spacing
    # equal in Python, not in JSON: 1 == 1.0 == True, but each is another schema
    consts = [comp.compile_json_schema({"const": v}) for v in (1, 1.0, True)]
    assert len({id(c) for c in consts}) == 3
    assert [c.matcher().accept_string(t) for c, t in zip(consts, ("1", "1.0", "true"))] == [True] * 3
    assert not consts[2].matcher().accept_string("1")
    from collections import OrderedDict  # a type marshal does not take: keyed by its JSON text
    od = OrderedDict(type="array", items={"type": "integer"})
    assert comp.compile_json_schema(od) is comp.compile_json_schema(OrderedDict(od))
    assert comp.compile_json_schema({"items": {"type": "integer"}, "type": "array"}) is not s1  # keys reordered
    assert comp.compile_json_schema({"type": "array", "items": {"type": "integer"}}, whitespace="compact") is not s1
    with pytest.raises(ConfigurationError, match="unknown compile_regex option"):
        comp.compile_regex("a", start="x")
    assert comp.cache_size_bytes > 0
    comp.clear_cache()
    assert comp.cache_size_bytes == 0
    a2 = comp.compile_regex(r"\d+")
    assert a2 is not a
    m = a.matcher()  # constraints compiled before clear_cache stay usable
    assert m.accept_string("12") and m.can_terminate()


def test_compiler_memo_keeps_the_declared_property_order():
    """Properties come in schema order by default: the same properties declared in
    another order are another constraint, not the memoised one."""
    vocab = Vocabulary.from_strings([bytes([b]) for b in range(32, 127)], name="ascii")
    comp = GrammarCompiler(vocab)
    props = {"a": {"type": "integer"}, "b": {"type": "integer"}}
    ab = comp.compile_json_schema({"type": "object", "properties": props, "required": ["a", "b"]},
                                  whitespace="compact")
    ba = comp.compile_json_schema({"type": "object", "properties": dict(reversed(props.items())),
                                   "required": ["a", "b"]}, whitespace="compact")
    assert ab is not ba
    for compiled, text, ok in ((ab, '{"a":1,"b":2}', True), (ab, '{"b":1,"a":2}', False),
                               (ba, '{"b":1,"a":2}', True), (ba, '{"a":1,"b":2}', False)):
        m = compiled.matcher()
        assert (m.accept_string(text) and m.can_terminate()) is ok, (text, ok)


def test_compiler_cache_budget_evicts_least_recently_used():
    vocab = nested_vocab()
    comp = GrammarCompiler(vocab, cache_limit_bytes=2)  # room for the newest constraint only
    a = comp.compile_regex("a+")
    b = comp.compile_regex("b+")
    assert comp.compile_regex("b+") is b
    assert comp.compile_regex("a+") is not a  # evicted, compiled again
    big = GrammarCompiler(vocab)
    a = big.compile_regex("a+")
    big.compile_regex("b+")
    assert big.compile_regex("a+") is a


def test_module_functions_use_one_default_compiler_per_fingerprint():
    v1, v2 = nested_vocab(), nested_vocab()  # equal content, distinct objects
    assert v1 is not v2 and v1.fingerprint == v2.fingerprint
    assert default_compiler(v1) is default_compiler(v2)
    assert compile_regex("[12]+", v1) is compile_regex("[12]+", v2)
    assert compile_grammar(NESTED, v1) is default_compiler(v1).compile_grammar(NESTED)
    other = Vocabulary.from_strings(NESTED_TOKENS + ["3"])
    assert default_compiler(other) is not default_compiler(v1)
    # the walk cache is the compiler's, shared by its constraints
    assert compile_regex("[12]+", v1)._inner is compile_grammar(NESTED, v1)._inner
    assert default_compiler(v1).walk_cache is compile_regex("[12]+", v1)._inner
    assert compile_regex("[12]+", v1)._slicer is compile_grammar(NESTED, v1)._slicer
    from structgen.json_schema import compile_json_schema as json_schema_entry

    schema = {"type": "array", "items": {"type": "integer"}}
    assert json_schema_entry(schema, v1) is structgen.compile_json_schema(schema, v2)


# --- long-lived constraints ---------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_row_and_step_limits_never_fail_and_keep_masks_exact(backend):
    vocab = nested_vocab()
    docs = documents(vocab, seed=7, n=60)
    assert sum(map(len, docs)) > 1500
    reference = GrammarCompiler(vocab).compile_grammar(NESTED, kernels=backend)
    tiny = GrammarCompiler(vocab, limits=Limits(max_earley_rows=2, max_step_entries=4, mask_cache_bytes=64))
    bounded = tiny.compile_grammar(NESTED, kernels=backend)
    assert bounded.parser.max_rows == 2
    assert mask_digests(bounded, docs) == mask_digests(reference, docs)
    assert len(bounded._steps) <= 4 and len(bounded.parser.advanced) <= 2
    # rows are freed once no matcher or cache holds them; the unbounded memo keeps them all
    gc.collect()
    assert bounded.parser.num_rows < 40 < reference.parser.num_rows


def test_rows_held_by_a_live_matcher_survive_cache_eviction():
    vocab = nested_vocab()
    comp = GrammarCompiler(vocab, limits=Limits(max_earley_rows=1, max_step_entries=1, mask_cache_bytes=1))
    c = comp.compile_grammar(NESTED)
    m = c.matcher()
    doc = tokenize(vocab, "[[1,[2]],[12,[[1]]]]", random.Random(0))
    for t in doc[:-3]:
        assert m.accept_token(t)
    fork = m.fork()
    for _ in range(200):  # churn every cache with other documents
        other = c.matcher()
        for t in tokenize(vocab, "[" * 5 + "]" * 5, random.Random(1)):
            assert other.accept_token(t)
    gc.collect()
    for t in doc[-3:]:
        assert m.accept_token(t) and fork.accept_token(t)
    assert m.can_terminate() and fork.can_terminate()


def test_thread_safety_of_a_shared_compiled_grammar():
    vocab = nested_vocab()
    docs = documents(vocab, seed=3, n=40)
    expected = mask_digests(GrammarCompiler(vocab).compile_grammar(NESTED), docs)
    offsets = np.cumsum([0] + [len(d) + 1 for d in docs])
    for limits in (Limits(), Limits(max_earley_rows=3, max_step_entries=16, mask_cache_bytes=256)):
        shared = GrammarCompiler(vocab, limits=limits).compile_grammar(NESTED)
        results: dict[int, dict[int, list[str]]] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def work(k: int):
            try:
                order = list(range(len(docs)))
                random.Random(k).shuffle(order)  # threads meet different states at the same time
                barrier.wait()
                results[k] = {i: mask_digests(shared, [docs[i]]) for i in order}
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)

        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        try:
            threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.setswitchinterval(old)
        assert not errors, errors
        for k in range(4):
            for i in range(len(docs)):
                assert results[k][i] == expected[offsets[i]:offsets[i + 1]], (k, i)


# --- read-only masks ----------------------------------------------------------------
def test_cached_masks_and_the_eos_mask_are_read_only():
    vocab = nested_vocab()
    c = GrammarCompiler(vocab).compile_grammar(NESTED)
    m = c.matcher()
    mask = m.next_token_mask()
    before = mask.copy()
    assert not mask.flags.writeable
    with pytest.raises(ValueError):
        mask[:] = 0
    assert np.array_equal(c.matcher().next_token_mask(), before) and before.any()
    assert m.accept_string("[1]") and m.accept_token(next(iter(vocab.eos_ids)))
    eos = m.next_token_mask()
    with pytest.raises(ValueError):
        eos[:] = 0
    assert not c.mask(c.initial_state).flags.writeable


# --- the compile report -------------------------------------------------------------
def test_every_constraint_kind_has_a_typed_report():
    vocab = nested_vocab()
    comp = GrammarCompiler(vocab)
    assert comp.compile_regex("1+").report == CompileReport()
    assert len(comp.compile_grammar(NESTED).report) == 0
    with pytest.warns(Warning, match="relaxed"):
        c = comp.compile_json_schema({"type": "array", "maxItems": 10**9})
    assert isinstance(c.report, CompileReport) and c.report
    (entry,) = c.report
    assert isinstance(entry, ReportEntry)
    assert (entry.kind, entry.keyword, entry.where) == ("relaxed", "maxItems", "#/maxItems")
    assert entry["kind"] == "relaxed" and entry.get("missing", 1) == 1 and entry.as_dict()["detail"]
    with pytest.warns(Warning):
        lenient = comp.compile_json_schema({"type": "string", "pattern": "(?<=a)b"}, lenient=True)
    assert [e.keyword for e in lenient.report.dropped] == ["pattern"]


def test_json_schema_does_not_import_the_mask_engine():
    root = Path(structgen.__file__).parent / "json_schema"
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not (name == "mask" or name.startswith("mask.") or "structgen.mask" in name), (path, name)


def test_exports():
    for name in ("GrammarCompiler", "Limits", "CompileReport", "ReportEntry", "compile_json_schema"):
        assert name in structgen.__all__ and getattr(structgen, name) is not None


def test_compiling_pauses_the_collector_and_restores_it():
    """The collector is off while a compile runs (temporaries die by reference counting)
    and back in its previous state after, also when the compile fails or nests."""
    from structgen.compiler import collector_paused

    vocab = Vocabulary.from_strings(["a", "b"])
    seen = []

    class Probe:
        def __init__(self):
            seen.append(gc.isenabled())

    assert gc.isenabled()
    with collector_paused():
        Probe()
        with collector_paused():
            Probe()
        Probe()
    assert seen == [False, False, False] and gc.isenabled()
    with pytest.raises(Exception):
        GrammarCompiler(vocab).compile_regex("(")
    assert gc.isenabled()
    gc.disable()
    try:
        GrammarCompiler(vocab).compile_regex("ab+")
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def _run_fresh(code: str) -> None:
    """Run ``code`` in a fresh interpreter with the numba kernels; it must exit 0."""
    import subprocess

    env = {**__import__("os").environ, "STRUCTGEN_KERNELS": "numba"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_new_compiler_loads_every_mask_kernel_before_the_first_request():
    """In a fresh interpreter, making the first compiler calls every mask kernel the
    fills use (numba loads each on its first call), so no request pays for it."""
    code = (
        "import structgen\n"
        "from structgen.mask.kernels import numba_cpu as k\n"
        "names = ['walk_grouped', 'or_words', 'take_mask', 'expand_mask', 'slice_cover', 'trie_states',\n"
        "         'canonical_product', 'narrow_classes', 'single_lexer', 'literal_tables',\n"
        "         'events_to_full', 'trie_pure']\n"
        "assert not any(getattr(k, n).signatures for n in names)\n"
        "structgen.GrammarCompiler(structgen.Vocabulary.byte_level())\n"
        "missing = [n for n in names if not getattr(k, n).signatures]\n"
        "assert not missing, missing\n"
    )
    _run_fresh(code)


def test_a_new_compiler_loads_the_dfa_kernels_with_the_types_compiles_use():
    """The DFA kernels Python calls are loaded when the first compiler is made, and
    compiling schemas that use each of them adds no second signature (a second one
    would be compiled, for seconds, inside a request)."""
    code = (
        "import structgen\n"
        "from structgen.automata import kernels_numba as k\n"
        "from structgen.json_schema import numbers_numba as nb\n"
        "kernels = [getattr(k, n) for n in ('trim_table', 'reaches_accepting', 'finish', 'compact_classes',\n"
        "           'product_table', 'drop_sinks', 'compact_bytes', 'subset_table')] + [nb.bounds_table]\n"
        "c = structgen.GrammarCompiler(structgen.Vocabulary.byte_level())\n"
        "missing = [f.__name__ for f in kernels if not f.signatures]\n"
        "assert not missing, missing\n"
        "c.compile_json_schema({'type': 'object', 'properties': {\n"
        "    'a': {'type': 'string', 'minLength': 2, 'maxLength': 40, 'pattern': '^x[0-9]+'},\n"
        "    'b': {'type': 'number', 'minimum': -1.5, 'exclusiveMaximum': 70},\n"
        "    'c': {'type': 'string', 'format': 'date-time'}, 'd': {'enum': ['p', 'q', 3]},\n"
        "    'e': {'type': 'string', 'not': {'enum': ['z']}}},\n"
        "    'patternProperties': {'^y': {'type': 'integer', 'multipleOf': 3}}, 'required': ['a']})\n"
        "twice = [f.__name__ for f in kernels if len(f.signatures) > 1]\n"
        "assert not twice, twice\n"
    )
    _run_fresh(code)
