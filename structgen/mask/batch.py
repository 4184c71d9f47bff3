"""Batched fill: the next-token masks of many matchers in one call.

Rows can run on a thread pool, but today that does not pay: a warm mask is a
cache hit, and a cold one spends ~3/4 of its time in Python (Earley rows, lexer
builds, the mask loop) that holds the GIL; only long kernels (lexer products,
logits masking) release it.  Matchers sharing one compiled constraint
serialise on its lock, so they are kept on one worker and the others stay free.
``processes=`` fills on worker processes instead (mask/procpool.py), which do
not share a GIL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigurationError
from .bitmask import _is_torch

if TYPE_CHECKING:
    from .procpool import MaskProcesses

__all__ = ["fill_next_token_bitmask_batch", "default_threads", "mask_processes"]

_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()
_PROCESSES: dict[int, "MaskProcesses"] = {}


def default_threads() -> int:
    """1: more threads were slower than one, on the 2-core benchmark VM and on a
    16-core GPU host alike (64 sequences of different schemas, cold masks, on the
    GPU host: 5.2 ms per step on one thread, 5.7 / 6.6 ms on 2 / 8; see
    docs/results/gpu-serving-h200.md).  The Python of cold masks holds the GIL,
    so threads take turns, each turn costs a thread switch (~30 us across CPUs
    on the VM), and the work runs on alternating cores with cold caches.  Worker
    processes (``processes=``) do run cold masks in parallel."""
    return 1


def _pool(threads: int) -> ThreadPoolExecutor:
    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="structgen-mask")
        return pool


def mask_processes(processes: int) -> "MaskProcesses":
    """The process-wide :class:`~structgen.mask.procpool.MaskProcesses` of ``processes``
    processes (started on first use; ``prepare`` assigns matchers ahead of their fills)."""
    from .procpool import MaskProcesses

    with _POOLS_LOCK:
        pool = _PROCESSES.get(processes)
        if pool is None or pool._closed:
            pool = _PROCESSES[processes] = MaskProcesses(processes)
        return pool


def _fill_rows(pairs, target: np.ndarray) -> None:
    for m, r in pairs:
        m.fill_next_token_bitmask(target, r)


def _bins(matchers, rows, threads: int) -> list[list]:
    """Rows grouped by compiled constraint, groups spread over ``threads`` bins (largest first)."""
    groups: dict[int, list] = {}
    for m, r in zip(matchers, rows):
        groups.setdefault(id(m.compiled), []).append((m, r))
    bins: list[list] = [[] for _ in range(min(threads, len(groups)))]
    for g in sorted(groups.values(), key=len, reverse=True):
        min(bins, key=len).extend(g)
    return bins


def fill_next_token_bitmask_batch(matchers, bitmask, *, threads: int | None = None,
                                  indices=None, processes: int = 1) -> None:
    """Write ``matchers[i]``'s next-token mask into row ``indices[i]`` (default ``i``)
    of ``bitmask``: an int32 ``[batch, words]`` numpy array or torch tensor (CPU
    or CUDA), as :meth:`Matcher.fill_next_token_bitmask` does row by row.
    Matchers may belong to different constraints (same vocabulary width).

    ``threads``: worker threads (default 1: see :func:`default_threads`); 1 runs
    in the calling thread.  ``processes``: fill on this many processes (the calling one
    and ``processes - 1`` workers, see :func:`mask_processes`), where a cold mask's
    Python runs in parallel; not together with ``threads`` > 1."""
    matchers = list(matchers)
    rows = list(range(len(matchers))) if indices is None else [int(i) for i in indices]
    if len(rows) != len(matchers):
        raise ConfigurationError(f"{len(matchers)} matchers but {len(rows)} indices")
    threads = default_threads() if threads is None else int(threads)
    if threads < 1:
        raise ConfigurationError(f"threads must be >= 1, got {threads}")
    processes = int(processes)
    if processes < 1:
        raise ConfigurationError(f"processes must be >= 1, got {processes}")
    if processes > 1 and threads > 1:
        raise ConfigurationError(f"threads={threads} and processes={processes}: choose one")
    if bitmask.ndim != 2:
        raise ConfigurationError(f"bitmask must be 2-D [batch, words], got shape {tuple(bitmask.shape)}")
    for m in matchers:
        if m.compiled.vocab.num_words != bitmask.shape[1]:
            raise ConfigurationError(f"bitmask must have shape [batch, {m.compiled.vocab.num_words}], "
                                     f"got {tuple(bitmask.shape)}")
    for r in rows:
        if not -bitmask.shape[0] <= r < bitmask.shape[0]:
            raise ConfigurationError(f"row {r} is outside a bitmask of {bitmask.shape[0]} rows")
    device_copy = False
    if _is_torch(bitmask):
        import torch

        if bitmask.dtype != torch.int32:
            raise ConfigurationError(f"bitmask dtype must be torch.int32, got {bitmask.dtype}")
        if bitmask.device.type == "cpu":
            target = bitmask.numpy()
        else:  # fill a host copy, then one transfer
            target, device_copy = bitmask.cpu().numpy(), True
    else:
        if bitmask.dtype != np.int32:
            raise ConfigurationError(f"bitmask dtype must be int32, got {bitmask.dtype}")
        target = bitmask
    if processes > 1:
        mask_processes(processes).fill(zip(matchers, rows), target)
    elif threads == 1 or len(matchers) <= 1:
        _fill_rows(zip(matchers, rows), target)
    else:
        bins = _bins(matchers, rows, threads)
        if len(bins) == 1:
            _fill_rows(bins[0], target)
        else:
            pool = _pool(threads)
            futures = [pool.submit(_fill_rows, b, target) for b in bins[1:]]
            _fill_rows(bins[0], target)  # the calling thread takes one bin itself
            wait(futures)
            for f in futures:
                f.result()  # re-raises a worker's error
    if device_copy:
        import torch

        bitmask.copy_(torch.from_numpy(target), non_blocking=True)
