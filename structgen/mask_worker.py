"""A mask worker process: ``python -m structgen.mask_worker FD`` (started by
``structgen.mask.procpool.MaskProcesses``, which documents the protocol).

It serves one connection (the inherited socket ``FD``): each message brings new
vocabularies and constraints, replicas to drop, the shared-memory segment to
write rows into when it changed, and jobs ``(replica id, creation or None,
steps to undo, inputs to replay, row or -1)``.  Rows are claimed from the front
through the control block ``CTRL`` (two int64: the next row this process
starts, the first row the caller took from the back: see procpool); the jobs of
rows the caller took are replayed after the reply.  The reply is ``("ok", rows
filled)`` or ``("error", traceback)``.  It exits when the connection closes."""

from __future__ import annotations

import sys
import traceback
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.connection import Connection

import numpy as np

from .compiler import default_compiler
from .errors import StructgenError
from .mask.engine import CompiledGrammar
from .mask.matcher import Matcher
from .vocab.vocabulary import Vocabulary


def serve(fd: int, ctrl_name: str) -> None:
    conn = Connection(fd)
    ctrl_shm = _attach(ctrl_name)
    ctrl = np.ndarray((2,), np.int64, buffer=ctrl_shm.buf)  # [next row started here, first row the caller took]
    vocabs: dict[str, Vocabulary] = {}
    compiled: dict[int, CompiledGrammar] = {}
    replicas: dict[int, Matcher] = {}
    lost: set[int] = set()  # replicas whose late replay failed: an error when next used
    shm, rows = None, None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the calling process is gone
        if msg is None:
            return
        late: list = []  # (replica id, replica, undo, inputs) of the rows the caller took
        try:
            new_vocabs, constraints, dropped, dropped_compiled, segment, jobs = msg
            for v in new_vocabs:
                vocabs[v.fingerprint] = v
            for cid, fp, grammar, kind, limits, kernels, cache_bytes in constraints:
                # the vocabulary's compiler: loads the kernels once and owns the shared trie-walk cache
                walks = default_compiler(vocabs[fp]).walk_cache
                compiled[cid] = CompiledGrammar(grammar, vocabs[fp], kind=kind, limits=limits, kernels=kernels,
                                                cache_bytes=cache_bytes, walk_cache=walks)
            for rid in dropped:
                replicas.pop(rid, None)
                lost.discard(rid)
            for cid in dropped_compiled:
                compiled.pop(cid, None)
            if segment is not None:
                name, cap, words = segment
                rows = None
                if shm is not None:
                    shm.close()
                shm = _attach(name)
                rows = np.ndarray((cap, words), np.int32, buffer=shm.buf)
            filled = 0
            for rid, create, undo, inputs, row in jobs:
                if create is not None:
                    cid, prefix, eos = create
                    replicas[rid] = Matcher(compiled[cid], prefix=prefix, eos_ids=eos)
                    lost.discard(rid)
                elif rid in lost:
                    raise StructgenError(f"replica {rid} was lost: an earlier replay failed")
                m = replicas[rid]
                if row >= 0:
                    if ctrl[1] <= row:  # the caller took this row (and every later one)
                        late.append((rid, m, undo, inputs))
                        continue
                    ctrl[0] = filled = row + 1  # claimed (the caller may take it at the same moment: same mask)
                _replay(m, undo, inputs)
                if row >= 0:
                    m.fill_next_token_bitmask(rows, row)
            reply = ("ok", filled)
        except BaseException:  # noqa: BLE001 - reported to the caller, which raises it
            reply, late = ("error", traceback.format_exc()), []
        conn.send(reply)
        for rid, m, undo, inputs in late:  # off the caller's wait
            try:
                _replay(m, undo, inputs)
            except Exception:  # noqa: BLE001 - reported when the replica is next used
                replicas.pop(rid, None)
                lost.add(rid)


def _replay(m: Matcher, undo: int, inputs: list) -> None:
    m.rollback(undo)
    for x in inputs:
        if not (m.accept_token(x) if isinstance(x, int) else m.accept_string(x)):
            raise StructgenError(f"the replica rejected {x!r}, which its matcher accepted")


def _attach(name: str) -> shared_memory.SharedMemory:
    """Map the caller's segment without registering it with this process's resource
    tracker: the caller owns (and unlinks) it."""
    shm = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    return shm


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
