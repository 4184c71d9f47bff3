"""Batched fill on worker processes: masks on several cores despite the GIL.

A cold mask is mostly Python (Earley steps, lexer setup, the mask loop), so
threads take turns on the GIL and more of them are slower (see
``batch.default_threads``).  Processes do not share a GIL: ``MaskProcesses(n)``
runs ``n - 1`` worker processes and the calling process fills its own share.

* Each matcher belongs to one process for its life (the least loaded one in the
  call that first sees it), so the caches its masks warm serve it again.
* A worker (structgen/mask_worker.py) keeps a replica of each of its matchers
  and, before filling, replays what the matcher did since the last fill
  (``Matcher._replay_from``: the accepted tokens and strings, after undoing
  rollbacks and resets).
* A worker receives each vocabulary (its token bytes) and each constraint (its
  pruned grammar IR) once and builds its own ``CompiledGrammar`` from them: the
  same code over the same IR, so its masks equal the caller's
  (tests/test_procpool.py compares them row by row).
* Rows come back through shared memory; the caller copies them into the bitmask.
* Once its own share is filled, the caller takes the rows a worker has not
  started, from the back of the worker's list (a worker claims from the
  front; the two ends meet in a two-int64 control block per worker).  A cold
  mask costs a hundred times a warm one, so a static split leaves one process
  waiting on the other; the caller holds every matcher, so taking a row costs it
  nothing but the fill.  The worker replays the rows it lost after its reply.
  Both ends may claim the same row at once: both then write the same mask.

Costs: the replicas repeat the caller's accepts (~4 us a token) and each worker
compiles the constraints it serves once more (``prepare`` does that ahead, when
a request arrives, rather than in its first fill)."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import weakref
from multiprocessing import shared_memory
from multiprocessing.connection import Connection

import numpy as np

from ..errors import ConfigurationError, StructgenError
from .batch import _fill_rows
from .engine import CompiledGrammar
from .matcher import Matcher

__all__ = ["MaskProcesses", "WorkerError"]


class WorkerError(StructgenError, RuntimeError):
    """A mask worker process failed (its traceback is in the message) or died
    (``died``: its pool is then closed; ``batch.mask_processes`` starts a new one)."""

    def __init__(self, message: str, *, died: bool = False):
        super().__init__(message)
        self.died = died


def _kernel_backend(compiled: CompiledGrammar) -> str:
    return "reference" if compiled._k.__name__.endswith("reference") else "numba"


class _Worker:
    """The calling process's end of one worker process."""

    def __init__(self):
        self.ctrl_shm = shared_memory.SharedMemory(create=True, size=16)
        ours, theirs = socket.socketpair()
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root,
                                                                        os.environ.get("PYTHONPATH")])))
        try:
            self.process = subprocess.Popen([sys.executable, "-m", "structgen.mask_worker", str(theirs.fileno()),
                                             self.ctrl_shm.name],
                                            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env)
        except BaseException:  # no worker: nothing else will free the control block
            ours.close()
            self.ctrl_shm.close()
            self.ctrl_shm.unlink()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        # [next row the worker starts, first row the caller took]: see MaskProcesses._take
        self.ctrl = np.ndarray((2,), np.int64, buffer=self.ctrl_shm.buf)
        self.vocabs: set[str] = set()  # fingerprints sent
        self.compiled: set[int] = set()  # constraint ids sent
        self.dropped: list[int] = []  # replicas whose matcher is gone, to drop at the next message
        self.dropped_compiled: list[int] = []
        self.shm: shared_memory.SharedMemory | None = None
        self.rows: np.ndarray | None = None  # int32 [capacity, words] view of shm

    def buffer(self, n: int, words: int):
        """Room for ``n`` rows of ``words``; the new segment's (name, rows, words) when it had to grow."""
        if self.rows is not None and self.rows.shape[0] >= n and self.rows.shape[1] == words:
            return None
        self.release()
        cap = max(n, 8 if self.rows is None else 2 * self.rows.shape[0])
        self.shm = shared_memory.SharedMemory(create=True, size=cap * words * 4)
        self.rows = np.ndarray((cap, words), np.int32, buffer=self.shm.buf)
        return self.shm.name, cap, words

    def release(self) -> None:
        if self.shm is not None:
            self.rows = None
            self.shm.close()
            self.shm.unlink()  # the worker's mapping stays valid until it maps the next segment
            self.shm = None

    def send(self, msg) -> None:
        try:
            self.conn.send(msg)
        except OSError as e:
            raise self.died() from e

    def receive(self):
        try:
            return self.conn.recv()
        except (EOFError, OSError) as e:
            raise self.died() from e

    def died(self) -> "WorkerError":
        return WorkerError(f"mask worker process {self.process.pid} died (exit code {self.process.poll()}); "
                           f"the pool is closed", died=True)

    def close(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.conn.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.release()
        self.ctrl = None
        self.ctrl_shm.close()
        self.ctrl_shm.unlink()


class MaskProcesses:
    """Fills batches of masks on ``processes`` processes: the calling one and
    ``processes - 1`` workers started here (``python -m structgen.mask_worker``).
    One fill at a time (calls from several threads queue).  ``close()`` (or the
    end of the interpreter) stops the workers."""

    def __init__(self, processes: int):
        processes = int(processes)
        if processes < 2:
            raise ConfigurationError(f"MaskProcesses needs processes >= 2, got {processes} (1: fill in-process)")
        self.processes = processes
        self._workers = [_Worker() for _ in range(processes - 1)]
        self._owner: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Matcher -> [process, id, step]
        self._cids: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # CompiledGrammar -> id
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False
        self.rows_taken = 0  # rows of workers' shares the calling process filled (see the module's notes)
        self._exit = weakref.finalize(self, MaskProcesses._stop, self._workers)

    def __repr__(self) -> str:
        return f"MaskProcesses({self.processes}{', closed' if self._closed else ''})"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._exit()

    @staticmethod
    def _stop(workers) -> None:
        for w in workers:
            w.close()

    def prepare(self, matchers) -> None:
        """Assign ``matchers`` and bring their replicas up to date (compiling their
        constraints in the workers) without filling: call when requests arrive."""
        self._run([(m, None) for m in matchers], None)

    def fill(self, pairs, target: np.ndarray) -> None:
        """Write each ``(matcher, row)``'s mask into ``target`` (int32 numpy ``[batch, words]``)."""
        self._run(list(pairs), target)

    # --- the protocol --------------------------------------------------------------
    def _run(self, pairs, target) -> None:
        with self._lock:
            if self._closed:
                raise ConfigurationError("MaskProcesses is closed")
            try:
                self._exchange(self._assign(pairs), target)
            except WorkerError as e:
                if e.died:
                    self._closed = True
                    self._exit()
                raise

    def _exchange(self, shares, target) -> None:
        """Send the workers their shares, fill the caller's, read every reply sent for."""
        sent = []
        try:
            for w, share in zip(self._workers, shares[1:]):
                if share or w.dropped or w.dropped_compiled:
                    w.ctrl[0], w.ctrl[1] = 0, len(share)
                    sent.append((w, share, self._send(w, share, target is not None)))
            if target is not None:
                _fill_rows(shares[0], target)
                self._take([(w, share) for w, share, _ in sent if share], target)
        finally:
            errors = [self._collect(w, share, tops, target) for w, share, tops in sent]
        for e in errors:
            if e is not None:
                raise e

    def _take(self, sent, target) -> None:
        """Fill, from the back, the rows the workers have not started, the one with
        the most left first."""
        while True:
            left, w, share = max(((w.ctrl[1] - w.ctrl[0], w, share) for w, share in sent), key=lambda x: x[0],
                                 default=(0, None, None))
            if left <= 0:
                return
            j = w.ctrl[1] = w.ctrl[1] - 1  # taken (the worker may have started it meanwhile: same mask)
            m, r = share[j]
            m.fill_next_token_bitmask(target, r)
            self.rows_taken += 1

    def _assign(self, pairs) -> list[list]:
        shares: list[list] = [[] for _ in range(self.processes)]
        new, seen = [], set()
        for m, r in pairs:
            if not isinstance(m, Matcher):
                raise ConfigurationError(f"expected a structgen Matcher, got {type(m).__name__}")
            if id(m) in seen:  # a matcher's second row: filled here (its replica takes one job a message)
                shares[0].append((m, r))
                continue
            seen.add(id(m))
            owner = self._owner.get(m)
            if owner is None:
                new.append((m, r))
            else:
                shares[owner[0]].append((m, r))
        for m, r in new:
            p = min(range(self.processes), key=lambda i: len(shares[i]))
            owner = self._owner[m] = [p, 0, None]
            if p:
                self._new_replica(m, owner)
            shares[p].append((m, r))
        return shares

    def _new_replica(self, m: Matcher, owner: list) -> None:
        """Give ``m`` (owned by worker process ``owner[0]``) a new replica id, created at
        its next message and dropped there once ``m`` is gone."""
        rid = owner[1] = next(self._ids)
        owner[2] = None  # no replica yet: created from the root of the matcher's history
        weakref.finalize(m, _drop_replica, self._workers[owner[0] - 1], rid).atexit = False

    def _send(self, w: _Worker, share, fill: bool) -> list:
        vocabs, constraints, jobs, tops = [], [], [], []
        for i, (m, _) in enumerate(share):
            owner, c = self._owner[m], m.compiled
            cid = self._cids.get(c)
            if cid is None:
                cid = self._cids[c] = next(self._ids)
                weakref.finalize(c, _drop_compiled, self._workers, cid).atexit = False
            if cid not in w.compiled:
                v = c.vocab
                if v.fingerprint not in w.vocabs:
                    vocabs.append(v)  # pickled as its defining arguments
                    w.vocabs.add(v.fingerprint)
                constraints.append((cid, v.fingerprint, c.grammar, c.kind, c.limits, _kernel_backend(c),
                                    c._masks.max_bytes))
                w.compiled.add(cid)
            new = owner[2] is None  # a new replica: from the root of the matcher's history
            create = (cid, m._root[2], sorted(m.eos_ids)) if new else None
            undo, inputs = m._replay_from(m._root if new else owner[2])
            jobs.append((owner[1], create, undo, inputs, i if fill else -1))
            tops.append(m._top)
        segment = w.buffer(len(share), share[0][0].compiled.vocab.num_words) if fill and share else None
        dropped, w.dropped = w.dropped, []
        dropped_compiled, w.dropped_compiled = w.dropped_compiled, []
        w.send((vocabs, constraints, dropped, dropped_compiled, segment, jobs))
        return tops

    def _collect(self, w: _Worker, share, tops, target):
        """The worker's reply: its rows copied into ``target``, its replicas marked
        up to date; the error to raise, if any."""
        try:
            reply = w.receive()
        except WorkerError as e:
            return e
        if reply[0] != "ok":
            for m, _ in share:  # their replicas' state is unknown: rebuilt at the next fill
                owner = self._owner.get(m)
                if owner is not None and owner[2] is not None:
                    w.dropped.append(owner[1])
                    self._new_replica(m, owner)
            return WorkerError(f"mask worker process {w.process.pid} failed:\n{reply[1]}")
        for (m, r), top in zip(share, tops):
            self._owner[m][2] = top
        filled = reply[1]  # the worker filled rows [0, filled); the caller took the rest
        if target is not None and filled:
            target[[r for _, r in share[:filled]]] = w.rows[:filled]
        return None


# (functions, not methods: a finalizer must not keep the pool alive)
def _drop_replica(w: _Worker, rid: int) -> None:
    w.dropped.append(rid)


def _drop_compiled(workers: list[_Worker], cid: int) -> None:
    for w in workers:
        if cid in w.compiled:
            w.compiled.discard(cid)
            w.dropped_compiled.append(cid)
