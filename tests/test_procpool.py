"""Fills on worker processes equal row-by-row fills, through accepts, rollbacks,
resets, forks, strings, prefixes, EOS, dropped matchers and new constraints."""

from __future__ import annotations

import gc
import os
import random
import signal
import threading

import numpy as np
import pytest

from structgen import Vocabulary, allocate_token_bitmask, compile_grammar, compile_json_schema, compile_regex, load_grammar
from structgen.errors import ConfigurationError
from structgen.mask.batch import fill_next_token_bitmask_batch
from structgen.mask.procpool import MaskProcesses, WorkerError


@pytest.fixture(scope="module")
def pool():
    p = MaskProcesses(3)
    yield p
    p.close()


def _allowed(m) -> list[int]:
    bits = np.unpackbits(m.next_token_mask().view(np.uint8), bitorder="little")[:m.compiled.vocab.size]
    return [int(i) for i in np.flatnonzero(bits)]


def _constraints(vocab):
    return [
        compile_grammar(load_grammar("json"), vocab),
        compile_regex(r"[a-z]{2,8}@[a-z]+\.(com|org)", vocab),
        compile_json_schema({"type": "object", "properties": {"id": {"type": "integer"},
                                                              "tags": {"type": "array", "items": {"type": "string"}}},
                             "required": ["id"]}, vocab),
        compile_grammar(load_grammar("arithmetic"), vocab),
    ]


def _act(m, rng: random.Random) -> None:
    """One random operation a decoding loop may do to a matcher."""
    op = rng.random()
    if op < 0.1 and m.num_accepted:
        m.rollback(rng.randint(1, m.num_accepted))
    elif op < 0.15:
        m.reset()
    elif op < 0.2 and not m.is_terminated():
        data = m.completion_bytes()
        if data:
            assert m.accept_string(data[:rng.randint(1, len(data))])
    else:
        for _ in range(rng.randint(1, 6)):
            ids = [] if m.is_terminated() else _allowed(m)
            if not ids:
                break
            t = rng.choice(ids)
            assert m.accept_token(t)


def _check(pool, matchers, width, indices=None):
    want = allocate_token_bitmask(len(matchers), width)
    for i, m in enumerate(matchers):
        m.fill_next_token_bitmask(want, i)
    rows = list(range(len(matchers))) if indices is None else indices
    got = allocate_token_bitmask(max(rows) + 1, width)
    got[:] = 0
    pool.fill(zip(matchers, rows), got)
    assert np.array_equal(got[rows], want)


def test_replay_from_a_step_of_the_history():
    vocab = Vocabulary.byte_level()
    m = compile_regex(r"[a-z]+", vocab).matcher()
    assert m.accept_tokens([ord("a"), ord("b")])
    mark = m._top
    assert m._replay_from(mark) == (0, [])
    m.rollback(1)
    assert m.accept_token(ord("c")) and m.accept_string(b"de")
    assert m._replay_from(mark) == (1, [ord("c"), b"de"])
    assert m._replay_from(m._root) == (0, [ord("a"), ord("c"), b"de"])
    other = compile_regex(r"[a-z]+", vocab).matcher()
    with pytest.raises(ConfigurationError):
        other._replay_from(mark)


def test_processes_equal_row_by_row_through_a_decoding_session(pool):
    vocab = Vocabulary.byte_level()
    rng = random.Random(7)
    constraints = _constraints(vocab)
    matchers = [c.matcher() for c in constraints for _ in range(3)]
    matchers.append(constraints[1].matcher(prefix=b"ab"))  # a required prefix
    matchers.append(constraints[0].matcher(eos_ids=[0]))  # EOS ids of its own
    _check(pool, matchers, vocab.size)
    for rnd in range(6):
        for m in matchers:
            _act(m, rng)
        if rnd == 2:  # forks share history with their origin; a dropped matcher frees its replica
            matchers += [m.fork() for m in matchers[:4]]
            del matchers[5]
            gc.collect()
        if rnd == 3:  # a constraint compiled mid-way
            matchers.append(compile_regex(r"(ab|cd)+x?", vocab).matcher())
        if rnd == 4:
            for m in matchers[:3]:
                if m.can_terminate():
                    assert m.accept_token(min(m.eos_ids))
        _check(pool, matchers, vocab.size)
    _check(pool, matchers[::-1], vocab.size, indices=list(range(2 * len(matchers) - 1, -1, -2)))


def test_prepare_then_fill_and_the_batch_function(pool):
    vocab = Vocabulary.byte_level()
    matchers = [c.matcher() for c in _constraints(vocab)]
    rng = random.Random(1)
    for m in matchers:
        _act(m, rng)
    pool.prepare(matchers)
    _check(pool, matchers, vocab.size)
    want = allocate_token_bitmask(len(matchers), vocab.size)
    for i, m in enumerate(matchers):
        m.fill_next_token_bitmask(want, i)
    got = allocate_token_bitmask(len(matchers), vocab.size, backend="torch")
    fill_next_token_bitmask_batch(matchers, got, processes=2)
    assert np.array_equal(got.numpy(), want)


def test_rows_the_caller_takes_from_a_stopped_worker(pool):
    """A worker that has not started its rows loses them all to the caller (the
    masks stay exact), replays them after its reply, and fills them again next time."""
    vocab = Vocabulary.byte_level()
    rng = random.Random(5)
    matchers = [c.matcher() for c in _constraints(vocab) for _ in range(2)]
    _check(pool, matchers, vocab.size)
    for m in matchers:
        _act(m, rng)
    workers = [w.process.pid for w in pool._workers]
    theirs = sum(pool._owner[m][0] > 0 for m in matchers)
    assert theirs
    taken = pool.rows_taken
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    timers = [threading.Timer(0.5, os.kill, (pid, signal.SIGCONT)) for pid in workers]
    for t in timers:
        t.start()
    try:
        _check(pool, matchers, vocab.size)
    finally:
        for t in timers:
            t.join()
    assert pool.rows_taken - taken == theirs
    for _ in range(3):  # the replicas caught up after their replies
        for m in matchers:
            _act(m, rng)
        _check(pool, matchers, vocab.size)
    _check(pool, [matchers[0], matchers[1], matchers[0], matchers[1]], vocab.size)  # a matcher in two rows


@pytest.mark.hf
def test_processes_equal_row_by_row_gpt2(pool):
    from tokenizers_fixture import gpt2

    vocab = Vocabulary.from_tokenizer(gpt2())
    rng = random.Random(3)
    matchers = [c.matcher() for c in _constraints(vocab) for _ in range(2)]
    for _ in range(4):
        for m in matchers:
            _act(m, rng)
        _check(pool, matchers, vocab.size)


def test_errors():
    vocab = Vocabulary.byte_level()
    m = compile_regex(r"[a-z]+", vocab).matcher()
    bm = allocate_token_bitmask(1, vocab.size)
    with pytest.raises(ConfigurationError):
        MaskProcesses(1)
    with pytest.raises(ConfigurationError):
        fill_next_token_bitmask_batch([m], bm, threads=2, processes=2)
    with pytest.raises(ConfigurationError):
        fill_next_token_bitmask_batch([m], bm, processes=0)
    p = MaskProcesses(2)
    try:
        with pytest.raises(ConfigurationError):
            p.fill([(object(), 0)], bm)
        ms = [m, m.fork()]  # one of them goes to the worker
        p.fill(zip(ms, [0, 0]), bm)
        remote = next(x for x in ms if p._owner[x][0] == 1)
        p._owner[remote][1] = 10**6  # a replica the worker does not have: its error comes back ...
        with pytest.raises(WorkerError, match="KeyError") as err:
            p.fill(zip(ms, [0, 0]), bm)
        assert not err.value.died
        _check(p, ms, vocab.size)  # ... and the replica is built again at the next fill
        p._workers[0].process.kill()
        p._workers[0].process.wait()
        with pytest.raises(WorkerError, match="died"):
            p.fill(zip(ms, [0, 0]), bm)
    finally:
        p.close()
    with pytest.raises(ConfigurationError, match="closed"):
        p.fill([(m, 0)], bm)
