"""Vocabulary and TokenTrie invariants (no tokenizer packages needed)."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from structgen import Vocabulary
from structgen.errors import VocabularyError


def spelled(trie, i):
    """Bytes from the root to node i, rebuilt from depths alone."""
    out = [trie.byte[i]]
    d = trie.depth[i]
    j = i - 1
    while d > 1:
        while trie.depth[j] != d - 1:
            j -= 1
        out.append(trie.byte[j])
        d -= 1
    return bytes(reversed(out))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.binary(min_size=0, max_size=5), min_size=1, max_size=40))
def test_trie_spells_every_token(tokens):
    vocab = Vocabulary(tokens, [], size=len(tokens) + 3)
    trie = vocab.trie
    seen = {}
    for i in range(trie.num_nodes):
        assert i < trie.subtree_end[i] <= trie.num_nodes
        for k in range(trie.tok_start[i], trie.tok_start[i + 1]):
            seen[int(trie.tok_ids[k])] = spelled(trie, i)
        # DFS order: the subtree is exactly the following nodes that are deeper
        end = trie.subtree_end[i]
        assert all(trie.depth[j] > trie.depth[i] for j in range(i + 1, end))
        assert end == trie.num_nodes or trie.depth[end] <= trie.depth[i]
    want = {i: b for i, b in enumerate(tokens) if b}
    assert seen == want  # empty tokens never enter the trie; duplicates share a node


def test_specials_padding_and_fingerprint():
    v = Vocabulary([b"a", b"b", b"<eos>"], [2], special_ids=[2], size=8)
    assert v.size == 8 and v.num_words == 1 and v.token_bytes[2] is None and v.token_bytes[7] is None
    assert v.trie.num_nodes == 2
    assert v.fingerprint == Vocabulary([b"a", b"b", b"<eos>"], [2], special_ids=[2], size=8).fingerprint
    assert v.fingerprint != Vocabulary([b"a", b"c", b"<eos>"], [2], special_ids=[2], size=8).fingerprint
    assert v.decode([0, 1, 2, 0]) == b"aba"
    try:
        Vocabulary([b"a"], [5])
        raise AssertionError("expected VocabularyError")
    except VocabularyError:
        pass


def test_walk_kernels_agree_on_random_tries_and_dfas():
    """numba walk_trie vs its pure-Python twin on random tries, lexers and ranges."""
    from structgen.mask.kernels import numba_cpu, reference
    from structgen.mask.lexer import _new_loops as _loops  # every state's loops not computed yet

    rng = random.Random(7)
    for trial in range(30):
        alphabet = b"abc{}\" "
        tokens = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(80)]
        trie = Vocabulary(tokens, []).trie
        n_states, n_cls = rng.randint(1, 6), rng.randint(1, 4)
        classes = np.array([rng.randrange(n_cls) for _ in range(256)], np.uint8)
        trans = np.array([[rng.choice([-1, rng.randrange(n_states)]) for _ in range(n_cls)]
                          for _ in range(n_states)], np.int32)
        accepting = np.array([rng.random() < 0.5 for _ in range(n_states)])
        # every other trial the lexer is a projection: a transition into a state where no
        # allowed component lives is dead
        live = np.array([rng.randrange(4) for _ in range(n_states)], np.uint64)
        allowed = np.uint64(trial % 2 * rng.randrange(1, 4))
        if trial % 4 == 0:
            live = None  # a plain lexer: the kernels' filter-free specialization
        # pure subtrees: random byte classes over the alphabet; a state loops on those
        # whose bytes all lead back to it (the walks skip such subtrees, see walk_trie)
        member = np.zeros(256, np.uint8)
        member[list(alphabet)] = [rng.randrange(128) for _ in alphabet]
        pure = numba_cpu.trie_pure(trie.byte, trie.subtree_end, member)
        assert pure.tolist() == reference.trie_pure(trie.byte, trie.subtree_end, member).tolist()
        for i in range(trie.num_nodes):  # the bits by definition: every byte strictly below in the class
            below = [member[b] for b in trie.byte[i + 1:trie.subtree_end[i]]]
            assert pure[i] == (0 if not below else np.bitwise_and.reduce(below + [np.uint8(0x7F)]))
        if trial % 3 == 0:  # a state looping on a class of its own
            loop_state = rng.randrange(n_states)
            trans[loop_state, classes[list(alphabet)]] = loop_state
        # ranges: the whole trie, or a run of root-level siblings
        roots = [i for i in range(trie.num_nodes) if trie.depth[i] == 1]
        a = rng.randrange(len(roots))
        lo, hi = roots[a], trie.subtree_end[roots[rng.randrange(a, len(roots))]]
        for los, his in ((np.array([0], np.int32), np.array([trie.num_nodes], np.int32)),
                         (np.array([lo], np.int32), np.array([hi], np.int32))):
            start = trial % n_states
            out = []
            for k, node_pure in ((numba_cpu, pure), (reference, pure), (reference, np.zeros_like(pure))):
                bits = np.zeros(3, np.uint32)
                ev = [np.zeros(trie.num_nodes + 1, np.int32) for _ in range(3)]
                touched = np.full(3, -1, np.int32)
                n, n_words = k.walk_trie(trans, classes, accepting, live, allowed, _loops(n_states), member, start,
                                         trie.byte, trie.depth, trie.subtree_end, trie.tok_start, trie.tok_ids,
                                         node_pure, los, his, bits, *ev, np.empty(trie.max_depth + 2, np.int32),
                                         touched)
                assert sorted(touched[:n_words].tolist()) == np.flatnonzero(bits).tolist()
                out.append((bits.tolist(), [e[:n].tolist() for e in ev], touched[:n_words].tolist()))
            assert out[0] == out[1]
            # skipping pure subtrees changes only the order words are first touched in
            assert out[1][:2] == out[2][:2] and sorted(out[1][2]) == sorted(out[2][2])
            if live is not None and allowed:  # the filter walks as the table with the filtered transitions cut would
                cut = np.where((trans >= 0) & (live[np.maximum(trans, 0)] & allowed != 0), trans, -1).astype(np.int32)
                bits, ev = np.zeros(3, np.uint32), [np.zeros(trie.num_nodes + 1, np.int32) for _ in range(3)]
                touched = np.full(3, -1, np.int32)
                n, n_words = reference.walk_trie(cut, classes, accepting, live, np.uint64(0), _loops(n_states),
                                                 member, start, trie.byte, trie.depth, trie.subtree_end,
                                                 trie.tok_start, trie.tok_ids, pure, los, his, bits, *ev,
                                                 np.empty(trie.max_depth + 2, np.int32), touched)
                assert (bits.tolist(), [e[:n].tolist() for e in ev], touched[:n_words].tolist()) == out[0]
            # walk_grouped: the same walk taken out of the buffers, events grouped by class
            bits_want, (ev_lo, ev_hi, ev_st), touched_want = out[0]
            acc_class = np.array([rng.randrange(3) for _ in range(n_states)], np.int32)
            grouped = []
            for k in (numba_cpu, reference):
                scratch = np.zeros(3 if trial % 2 else 64, np.uint32)  # 64: sparse results
                bufs = [np.zeros(trie.num_nodes + 1, np.int32) for _ in range(3)]
                dense, idx, words, events, groups = k.walk_grouped(
                    trans, classes, accepting, acc_class, live, allowed, _loops(n_states), member, start, trie.byte,
                    trie.depth, trie.subtree_end, trie.tok_start, trie.tok_ids, pure, los, his, scratch, *bufs,
                    np.empty(trie.max_depth + 2, np.int32), np.full(len(scratch), -1, np.int32))
                assert not scratch.any()  # left zeroed for the next walk
                if dense:
                    assert len(idx) == 0 and words.tolist() == bits_want + [0] * (len(scratch) - 3)
                else:
                    assert idx.tolist() == touched_want and words.tolist() == [bits_want[w] for w in idx]
                want_groups = sorted({int(acc_class[st]) for st in ev_st})
                n_groups = len(want_groups)
                assert groups[:n_groups].tolist() == want_groups and groups[-1] == len(ev_st)
                assert events.shape == (2, len(ev_st))
                for g, c in enumerate(want_groups):
                    sel = [j for j, st in enumerate(ev_st) if acc_class[st] == c]
                    a, b = groups[n_groups + g], groups[n_groups + g + 1]
                    assert events[0, a:b].tolist() == [ev_lo[j] for j in sel]
                    assert events[1, a:b].tolist() == [ev_hi[j] for j in sel]
                grouped.append([x.tolist() if hasattr(x, "tolist") else x for x in (dense, idx, words, events, groups)])
            assert grouped[0] == grouped[1]


def test_sparse_word_kernels_agree():
    """take_words (compact a sparse walk result, zeroing it: walk_grouped's twin does,
    the numba kernel inlines it) and or_words (OR it back into a mask, noting the
    words it makes nonzero), numba vs twin: OR-ing undoes the compaction."""
    from structgen.mask.kernels import numba_cpu, reference

    rng = np.random.default_rng(3)
    for _ in range(20):
        size = int(rng.integers(1, 200))
        scratch = np.zeros(size, np.uint32)
        touched = rng.permutation(size)[: int(rng.integers(0, size + 1))].astype(np.int32)
        scratch[touched] = rng.integers(1, 2**32, len(touched), dtype=np.uint64).astype(np.uint32)
        base = rng.integers(0, 2**32, size, dtype=np.uint64).astype(np.uint32)
        base[rng.random(size) < 0.5] = 0
        results = []
        for k in (numba_cpu, reference):
            s = scratch.copy()
            words = np.zeros(len(touched), np.uint32)
            reference.take_words(s, touched, len(touched), words)
            assert not s.any()
            bits = base.copy()
            noted = np.full(size, -1, np.int32)
            n = k.or_words(bits, touched, words, noted, 0)
            assert np.array_equal(bits, base | scratch)
            # exactly the words that were zero and got a bit, in the order they got it
            assert noted[:n].tolist() == [int(w) for w in touched if base[w] == 0]
            results.append(words.tolist())
        assert results[0] == results[1] == scratch[touched].tolist()


def test_cached_mask_kernels_agree():
    """A mask built by or_words from zeros, kept by take_mask as the words it changes
    in a base (a slice's bits, or none), then written back by expand_mask, is the
    mask OR the base; the scratch is left zeroed; numba and twin agree."""
    from structgen.mask.kernels import numba_cpu, reference

    rng = np.random.default_rng(11)
    for trial in range(30):
        size = int(rng.integers(1, 300))
        base = np.zeros(0, np.uint32)
        if trial % 2:
            base = rng.integers(0, 2**32, size, dtype=np.uint64).astype(np.uint32)
            base[rng.random(size) < 0.3] = 0
            base[rng.random(size) < 0.3] = 0xFFFFFFFF
        parts = []
        for _ in range(int(rng.integers(0, 4))):
            idx = rng.choice(size, int(rng.integers(0, size + 1)), replace=False).astype(np.int32)
            words = rng.integers(0, 2**32, len(idx), dtype=np.uint64).astype(np.uint32)
            words[rng.random(len(idx)) < 0.2] = 0  # a zero word changes nothing and is not noted
            parts.append((idx, words))
        want = base.copy() if len(base) else np.zeros(size, np.uint32)
        for idx, words in parts:
            np.bitwise_or.at(want, idx, words)
        kept = []
        for k in (numba_cpu, reference):
            bits, touched, pairs = np.zeros(size, np.uint32), np.empty(size, np.int32), np.empty(2 * size, np.uint32)
            n = 0
            for idx, words in parts:
                n = k.or_words(bits, idx, words, touched, n)
            assert n == len(set(touched[:n].tolist())) == np.count_nonzero(bits)
            m = k.take_mask(bits, base, touched, n, pairs)
            assert not bits.any()
            changed = want != base if len(base) else want != 0
            assert sorted(pairs[0:2 * m:2].tolist()) == np.flatnonzero(changed).tolist()
            out = rng.integers(0, 2**32, size, dtype=np.uint64).astype(np.uint32)  # garbage, overwritten
            k.expand_mask(out.view(np.int32), base, pairs[:2 * m].copy())
            assert np.array_equal(out, want)
            kept.append(pairs[:2 * m].tolist())
        assert kept[0] == kept[1]


def test_a_pickle_carries_the_defining_arguments_only():
    import pickle

    v = Vocabulary.from_strings(["a", "bc", b"\xff"], name="tiny")
    assert v.trie is not None and v.fingerprint  # caches made before pickling
    w = pickle.loads(pickle.dumps(v))
    assert "trie" not in vars(w) and "fingerprint" not in vars(w)
    assert w.fingerprint == v.fingerprint and (w.name, w.size, w.prefix_space) == (v.name, v.size, v.prefix_space)
    assert (w.token_bytes, w.eos_ids, w.special_ids) == (v.token_bytes, v.eos_ids, v.special_ids)
