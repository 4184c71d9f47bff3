"""Vocabulary slices: the kernels against their twins, and sliced masks against
unsliced ones (exactness) on JSON / regex / grammar states with real tokenizers."""

from __future__ import annotations

import random

import numpy as np
import pytest

from structgen import Vocabulary, compile_grammar, compile_json_schema, compile_regex, load_grammar
from structgen.mask.engine import CompiledGrammar
from structgen.mask.kernels import get_kernels
from structgen.mask.slicer import DEFAULT_SLICES, LOOP_MEMBERS, Slicer, build_slice
from structgen.automata.regex import regex_to_dfa

BACKENDS = ["numba", "reference"]


def _bits_to_ids(bits: np.ndarray) -> set[int]:
    return set(np.flatnonzero(np.unpackbits(bits.view(np.uint8), bitorder="little")).tolist())


def _toy_vocab(seed: int) -> Vocabulary:
    rng = random.Random(seed)
    alphabet = b'ab1 "\\\n\xc3\xa9'
    tokens = {bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 5))) for _ in range(300)}
    return Vocabulary.from_strings(sorted(tokens))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,pattern", DEFAULT_SLICES)
def test_slice_split_is_a_partition(backend, name, pattern):
    """Slice tokens = those the pattern reads whole; the rest trie holds exactly the others."""
    vocab = _toy_vocab(7)
    dfa = regex_to_dfa(pattern)
    sl = build_slice(name, dfa, vocab, get_kernels(backend))
    want = {i for i, b in enumerate(vocab.token_bytes) if b and dfa.walk(b) >= 0}
    assert _bits_to_ids(sl.bits) == want
    rest = sl.rest
    rest_ids = set(rest.tok_ids.tolist())
    assert rest_ids == {i for i, b in enumerate(vocab.token_bytes) if b} - want
    # the rest trie spells each of its tokens' bytes (DFS order, subtree ends consistent)
    path: list[int] = []
    for i in range(rest.num_nodes):
        del path[rest.depth[i] - 1:]
        path.append(int(rest.byte[i]))
        assert i < rest.subtree_end[i] <= rest.num_nodes
        for t in rest.tok_ids[rest.tok_start[i]:rest.tok_start[i + 1]]:
            assert vocab.token_bytes[t] == bytes(path)


def test_trie_states_and_slice_cover_twins_agree():
    """numba and pure-Python kernels on random DFAs (states per node, coverage bits)."""
    vocab = _toy_vocab(3)
    trie = vocab.trie
    rng = np.random.default_rng(11)
    nb, ref = get_kernels("numba"), get_kernels("reference")
    slicer = Slicer(vocab, nb)
    for _ in range(30):
        n_s, n_c = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        trans = rng.integers(-1, n_s, size=(n_s, n_c)).astype(np.int32)
        classes = rng.integers(0, n_c, size=256).astype(np.uint8)
        outs = []
        for k in (nb, ref):
            out = np.empty(trie.num_nodes, np.int32)
            k.trie_states(trans, classes, 0, trie.byte, trie.depth, out, np.empty(trie.max_depth + 2, np.int32))
            outs.append(out)
        assert np.array_equal(*outs)
        live = rng.integers(0, 4, size=n_s).astype(np.uint64)  # a projection's filter, or none
        for lv, allowed in ((None, np.uint64(0)), (live, np.uint64(0)), (live, np.uint64(rng.integers(1, 4)))):
            for s in range(n_s):
                got = []
                for k in (nb, ref):
                    cores = np.zeros(len(slicer.names), np.uint64)
                    bits = k.slice_cover(trans, classes, lv, allowed, s, slicer._pat_next, slicer._pat_cls,
                                         slicer._pat_start, 16, np.zeros(n_s * slicer._pat_next.shape[1], np.uint8),
                                         np.empty(16, np.int32), np.empty(16, np.int32), cores)
                    got.append((bits, [int(cores[p]) for p in range(len(cores)) if bits >> p & 1]))
                assert got[0] == got[1]


def test_cover_means_every_pattern_string_stays_alive():
    """A state that loops on [0-9] covers 'digits'; one where '0' ends the lexeme does not."""
    vocab = Vocabulary.from_strings([str(i) for i in range(100)] + ["x", "y"])
    c = compile_regex(r"[1-9][0-9]*x|0y", vocab)
    slicer = Slicer(vocab, get_kernels("numba"))
    m = c.matcher()
    m.accept_string("12")
    row, s = m.state
    assert "digits" in slicer.covering(c.lexer(row), s)
    row, s = c.initial_state
    assert "digits" not in slicer.covering(c.lexer(row), s)  # "0" then "0" dies


def _random_states(compiled, rng: random.Random, walks: int = 3, steps: int = 25):
    vocab = compiled.vocab
    out = []
    for _ in range(walks):
        m = compiled.matcher()
        for _ in range(steps):
            out.append(m.state)
            ids = [i for i in _bits_to_ids(m.next_token_mask()) if i not in vocab.eos_ids]
            if not ids:
                break
            m.accept_token(rng.choice(ids))
    return out


def _same_masks(make, vocab, backend, seed):
    """Masks with the vocabulary's slices equal masks without them, on one compiled
    constraint (parser states belong to the parser that made them)."""
    rng = random.Random(seed)
    c = CompiledGrammar(make().grammar, vocab, kernels=backend)
    states = _random_states(c, rng)
    for prefix in PREFIXES:  # states inside a string, where slices apply
        m = c.matcher()
        if m.accept_string(prefix):
            states.append(m.state)
    used, sliced = set(), []
    for st in states:
        sliced.append(c.mask(st))
        part = c._slicer.choose(c.lexer(st[0]), st[1])
        used.add(part and part.name)
    c._slicer = Slicer(vocab, c._k, patterns=())
    c.clear_cache()  # masks and plans; walks are keyed by slice
    for st, want in zip(states, sliced):
        assert np.array_equal(want, c.mask(st)), st
    return used


PREFIXES = ['["ab', '{"name": "Ada L', '{"tags": ["x', "name: 12.ab", "ab cd", '{"p": "ab', '{"q": "ab']

WORKLOADS = {
    "json": lambda v: compile_grammar(load_grammar("json"), v),
    "csv": lambda v: compile_grammar(load_grammar("csv"), v),
    "schema": lambda v: compile_json_schema({
        "type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {
            "type": "string", "maxLength": 5}}, "n": {"type": "integer"}}, "required": ["name"]}, v),
    "regex": lambda v: compile_regex(r"[a-z ]+: [0-9]{2,}(\.[A-Za-z_]+)?", v),
    # strings that exclude an ASCII byte the JSON-string slice holds: the utf8_ slices'
    "pattern": lambda v: compile_json_schema({"type": "object", "properties": {
        "p": {"type": "string", "pattern": "^[^#]*$"}, "q": {"type": "string", "pattern": "^[^#0-9]*$"}}}, v),
}


@pytest.mark.hf
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_sliced_masks_equal_unsliced_gpt2(workload):
    from tokenizers_fixture import gpt2

    vocab = Vocabulary.from_tokenizer(gpt2())
    used = _same_masks(lambda: WORKLOADS[workload](vocab), vocab, "numba", seed=5)
    if workload in ("json", "schema", "regex"):
        assert used - {None}, "no state used a slice: the test would not test slicing"
    if workload == "pattern":
        assert {"utf8_alnum", "utf8_letters"} <= used, used


@pytest.mark.hf
def test_sliced_masks_equal_unsliced_deepseek():
    from tokenizers_fixture import deepseek

    vocab = Vocabulary.from_tokenizer(deepseek())
    for name in ("schema", "json"):
        _same_masks(lambda: WORKLOADS[name](vocab), vocab, "numba", seed=9)


@pytest.mark.hf
def test_sliced_masks_equal_unsliced_reference_kernels():
    """The pure-Python twins (slow: a small schema on gpt2, few states)."""
    from tokenizers_fixture import gpt2

    vocab = Vocabulary.from_tokenizer(gpt2())
    make = lambda: compile_json_schema({"type": "object", "properties": {"a": {"type": "string"}}}, vocab)  # noqa: E731
    rng = random.Random(2)
    states = _random_states(make(), rng, walks=1, steps=6)
    ref = CompiledGrammar(make().grammar, vocab, kernels="reference")
    nb = CompiledGrammar(make().grammar, vocab, kernels="numba")
    nb._slicer = Slicer(vocab, nb._k, patterns=())
    for st in states:
        assert np.array_equal(ref.mask(st), nb.mask(st)), st


@pytest.mark.hf
def test_projection_choices_equal_searches_of_the_projection_gpt2():
    """A projection (an object position's keys read off the first position's product)
    takes its slice choice from its superset's search when a component alive all along
    that search is allowed (after a key's opening quote: the undeclared-keys string);
    every choice equals a search of the projection itself, and projections did share."""
    from tokenizers_fixture import gpt2

    vocab = Vocabulary.from_tokenizer(gpt2())
    schema = {"type": "object", "properties": {f"key{i}": {"type": "string"} for i in range(10)}}
    c = CompiledGrammar(compile_json_schema(schema, vocab).grammar, vocab)
    m = c.matcher()
    projections = {}
    for ch in '{"key1": "a", "key4": "b", "key9": "d", "other": "c"}':
        lex = c.lexer(m.state[0])
        if lex.allowed:
            projections[lex.walk_key] = lex
        c.mask(m.state)
        assert m.accept_string(ch)
    assert len(projections) >= 2  # the keys after key1, after key4
    slicer = c._slicer
    for lex in projections.values():
        for s in range(lex.trans.shape[0]):
            got = slicer.choose(lex, s)
            assert (got and got.name) == slicer._first(lex, lex.filter, s)[0], s
    assert any(name for name, _ in slicer._base.values())  # some superset search was shared


@pytest.mark.hf
def test_cached_masks_are_kept_compact_and_written_back_exactly_gpt2():
    """A cached mask is kept as the words it changes in a base (zeros, or the slice
    the state loops on) or whole when most words change; every form writes back the
    mask computed without cache or slices, into a numpy row, a torch row and a new
    array; the sparse forms take fewer bytes than the whole mask."""
    import torch

    from tokenizers_fixture import gpt2

    vocab = Vocabulary.from_tokenizer(gpt2())
    cases = [(compile_regex(r"(x|y)+", vocab), ""), (compile_regex(r"[0-9a-z]*", vocab), ""),
             (compile_regex(r"[^a]*", vocab), ""), (WORKLOADS["schema"](vocab), '{"name": "Ada L')]
    forms = set()
    for compiled, prefix in cases:
        m = compiled.matcher()
        assert m.accept_string(prefix)
        stored = compiled._stored(m.state)
        pairs, words = stored
        forms.add("dense" if pairs is None else "slice" if len(words) else "zeros")
        if pairs is not None:
            assert pairs.nbytes < 4 * vocab.num_words  # fewer bytes than the whole mask
        plain = CompiledGrammar(compiled.grammar, vocab)  # its own parser: states are per parser
        plain._slicer = Slicer(vocab, plain._k, patterns=())
        pm = plain.matcher()
        assert pm.accept_string(prefix)
        want = plain.mask(pm.state)
        rows = np.zeros((3, vocab.num_words), np.int32)
        compiled.write_mask(m.state, rows, 1)
        m.fill_next_token_bitmask(rows, 2)
        tensor = torch.zeros((2, vocab.num_words), dtype=torch.int32)
        m.fill_next_token_bitmask(tensor, 1)
        assert not rows[0].any() and not tensor[0].any()
        for got in (compiled.mask(m.state), rows[1].view(np.uint32), rows[2].view(np.uint32),
                    tensor[1].numpy().view(np.uint32)):
            assert np.array_equal(got, want)
    assert forms == {"dense", "slice", "zeros"}



def _walk(c, lex, state, trie, pure):
    """``walk_grouped`` of ``lex`` from ``state`` over the whole of ``trie`` (its pure-subtree
    bits ``pure``): (events, groups)."""
    from structgen.mask.engine import _walk_buffers

    out = c._k.walk_grouped(lex.trans, lex.classes, lex.accepting, lex.acc_class, lex.live, lex.filter, lex.loops,
                            LOOP_MEMBERS, state, trie.byte, trie.depth, trie.subtree_end, trie.tok_start,
                            trie.tok_ids, pure,
                            np.zeros(1, np.int32), np.full(1, trie.num_nodes, np.int32),
                            *_walk_buffers(c._trie, c.vocab.num_words))
    return out[3], out[4]


@pytest.mark.hf
@pytest.mark.parametrize("backend", BACKENDS)
def test_rest_trie_events_renumbered_are_the_whole_tries_gpt2(backend):
    """A walk over a slice's rest trie, its events renumbered (``events_to_full``), reports
    exactly the events (ranges, merged runs, groups) of the same walk over the whole trie,
    so the walks past them are shared by states with and without a slice."""
    from tokenizers_fixture import gpt2

    vocab = Vocabulary.from_tokenizer(gpt2())
    checked = set()
    for name in ("json", "csv", "regex"):
        c = CompiledGrammar(WORKLOADS[name](vocab).grammar, vocab, kernels=backend)
        states = _random_states(c, random.Random(4), walks=1, steps=8)
        for prefix in PREFIXES:
            m = c.matcher()
            if m.accept_string(prefix):
                states.append(m.state)
        for row, s in states:
            lex = c.lexer(row)
            part = c._slicer.choose(lex, s)
            if part is None:
                continue
            want_events, want_groups = _walk(c, lex, s, c._trie, c._slicer.pure)
            events, groups = _walk(c, lex, s, part.rest, part.rest_pure)
            tr = c._trie
            got_events, got_groups = c._k.events_to_full(events, groups, part.rest.subtree_end, part.full_node,
                                                         tr.subtree_end, tr.depth)
            assert np.array_equal(got_groups, want_groups), (name, row, s)
            assert np.array_equal(got_events, want_events), (name, row, s)
            if want_events.shape[1] > 1:
                checked.add(part.name)
    assert len(checked) >= 2, f"sliced states with events only for {checked}: renumbering barely tested"


def _walk_plain_and_pure(c, lex, state, trie, pure):
    """``walk_trie`` of ``lex`` from ``state`` over the whole of ``trie`` with the
    pure-subtree bits ``pure``: (bits, events) as lists."""
    nw = c.vocab.num_words
    bits, ev = np.zeros(nw, np.uint32), [np.zeros(trie.num_nodes + 1, np.int32) for _ in range(3)]
    n, _ = c._k.walk_trie(lex.trans, lex.classes, lex.accepting, lex.live, lex.filter, lex.loops, LOOP_MEMBERS,
                          state, trie.byte, trie.depth, trie.subtree_end, trie.tok_start, trie.tok_ids, pure,
                          np.zeros(1, np.int32), np.full(1, trie.num_nodes, np.int32), bits, *ev,
                          np.empty(trie.max_depth + 2, np.int32), np.empty(nw, np.int32))
    return bits.tolist(), [e[:n].tolist() for e in ev]


@pytest.mark.hf
@pytest.mark.parametrize("backend", BACKENDS)
def test_pure_subtree_skips_equal_the_plain_walk_gpt2(backend):
    """A walk that allows a pure subtree whole (its bytes all in a class its state loops
    on) allows the same tokens and reports the same events as the walk entering it,
    from states of JSON, CSV, arithmetic and regex grammars (projections included), and
    the skip is taken: some state met at a pure node loops on its class."""
    from tokenizers_fixture import gpt2

    vocab = Vocabulary.from_tokenizer(gpt2())
    looping = 0
    for name in ("json", "csv", "regex", "arithmetic"):
        compiled = compile_grammar(load_grammar(name), vocab) if name == "arithmetic" else WORKLOADS[name](vocab)
        c = CompiledGrammar(compiled.grammar, vocab, kernels=backend)
        tr, pure = c._trie, c._slicer.pure
        none = np.zeros_like(pure)
        states = _random_states(c, random.Random(5), walks=1, steps=6 if backend == "reference" else 12)
        for row, s in states:
            lex = c.lexer(row)
            assert _walk_plain_and_pure(c, lex, s, tr, pure) == _walk_plain_and_pure(c, lex, s, tr, none), (name, s)
            looping += int(((lex.loops & 0x7F) != 0).sum())
    assert looping > 0, "no walk met a looping state at a pure node: the skip went untested"
