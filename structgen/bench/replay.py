"""Token-by-token replay of one instance through one engine's matcher, timing every mask."""

from __future__ import annotations

import contextlib
import json
import time

from .engines import CompileFailure, JsonEngine, bit, popcount, short

STYLES = ("compact", "default")


def serialise(value, style: str, ensure_ascii: bool = False) -> str:
    """``compact``: ``json.dumps(x, separators=(",", ":"))``; ``default``: ``json.dumps(x)``
    (``", "`` and ``": "``).  Non-ASCII characters stay raw UTF-8 by default (as a model
    writes them); ``ensure_ascii`` escapes them as ``\\uXXXX``."""
    if style == "compact":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii)
    return json.dumps(value, ensure_ascii=ensure_ascii)


def replay(engine: JsonEngine, m, ids: list[int], tok, *, first_filled: bool = False) -> dict:
    """Feed ``ids`` to matcher ``m`` (fresh or reset by the caller).

    At every position: time ``fill`` (``perf_counter_ns``), check (untimed) that the
    token's bit is set, accept it.  After the last token: time one more fill and check
    that an EOS bit is set.  Stops at the first refusal.  ``first_filled``: the mask for
    position 0 is already in ``engine.row`` (the TTFM fill) and is not timed again.

    Returns ``ok`` (the whole text accepted and EOS allowed), ``tbm_ns`` and, when not ok,
    ``fail = {pos, why, token_id, token, prefix_tail}``."""
    pc = time.perf_counter_ns
    row = engine.row
    times: list[int] = []
    fail = None
    mismatch = 0
    n = len(ids)
    for pos in range(n + 1):
        if pos == 0 and first_filled:
            pass
        else:
            t0 = pc()
            engine.fill(m)
            times.append(pc() - t0)
        if pos == n:
            eos = engine.eos_allowed()
            ce = engine.can_end(m)
            if ce is not None and ce != eos:
                mismatch = 1
            if not eos:
                fail = {"pos": pos, "why": "EOS not allowed at the end", "token_id": None, "token": "<EOS>",
                        "prefix_tail": tok.decode(ids)[-60:]}
            break
        tid = ids[pos]
        if not bit(row, tid):
            fail = {"pos": pos, "why": "not in mask" if popcount(row) else "empty mask", "token_id": tid,
                    "token": tok.decode([tid]), "prefix_tail": tok.decode(ids[:pos])[-60:]}
            break
        if not engine.accept(m, tid):
            fail = {"pos": pos, "why": "in mask but accept refused it", "token_id": tid,
                    "token": tok.decode([tid]), "prefix_tail": tok.decode(ids[:pos])[-60:]}
            break
    out = {"ok": fail is None, "tokens": n, "tbm_ns": times}
    if fail is not None:
        out["fail"] = fail
    if mismatch:
        out["can_end_mismatch"] = True
    return out


class Replays:
    """Replays instance after instance through one matcher, reset between them; the
    first reuses the mask :func:`compile_timed` filled (counted in TTFM), untimed."""

    def __init__(self, engine: JsonEngine, m, tok):
        self.engine, self.m, self.tok = engine, m, tok
        self.first = True

    def __call__(self, ids: list[int]) -> dict:
        if not self.first:
            self.engine.reset(self.m)
        r = replay(self.engine, self.m, ids, self.tok, first_filled=self.first)
        self.first = False
        return r


@contextlib.contextmanager
def recording_runtime_errors(rec: dict):
    """An exception inside marks ``rec`` ``runtime_error`` and ends the block (what was
    recorded before it stays); MemoryError passes, for the worker to handle."""
    try:
        yield
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001
        rec.update(status="runtime_error", error=short(f"{type(e).__name__}: {e}", 500), error_type=type(e).__name__)


def compile_timed(engine: JsonEngine, schema, **kw) -> tuple[object, dict]:
    """Compile + first mask.  Returns (matcher or None, fields): ``compile_ms``,
    ``ttfm_ms`` (compile + first fill), ``first_mask_allowed``, or ``status``/``error``."""
    pc = time.perf_counter_ns
    t0 = pc()
    try:
        m = engine.compile(schema, **kw)
    except CompileFailure as e:
        res = {"status": e.status, "error": e.message, "error_type": e.error_type,
               "compile_ms": (pc() - t0) / 1e6}
        if e.internal:
            res["internal"] = True
        return None, res
    t1 = pc()
    try:
        engine.fill(m)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001
        return None, {"status": "runtime_error", "error": short(f"first mask: {type(e).__name__}: {e}", 500),
                      "error_type": type(e).__name__, "compile_ms": (t1 - t0) / 1e6}
    t2 = pc()
    return m, {"status": "ok", "compile_ms": (t1 - t0) / 1e6, "ttfm_ms": (t2 - t0) / 1e6,
               "first_mask_allowed": popcount(engine.row)}
