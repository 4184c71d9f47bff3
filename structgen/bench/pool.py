"""Worker processes for the runners: per-(task, engine) wall-time limit, per-worker address
space limit, restart after a crash / timeout / out-of-memory.

Protocol.  The parent starts ``python -c 'from structgen.bench.pool import worker_main; ...'``
with a JSON config and writes one task per line (JSON) to the worker's stdin.  The worker
answers on a private copy of its stdout (fd 1 itself is pointed at stderr, so stray prints
from native code cannot corrupt the protocol) with one JSON message per line:

* ``{"t": "setup", "what": <engine or "tokenizer">, "phase": "start" | "done" | "failed", ...}``
  -- setup time is not charged to any task (it has its own, longer limit);
* ``{"t": "begin", "task": id, "engine": e}`` -- the wall-time clock for (task, engine) starts;
* ``{"t": "result", "task": id, "engine": e, "record": {...}}``;
* ``{"t": "done", "task": id}`` -- the worker takes the next task.

The task handler (``module:function``) runs in the worker with a :class:`WorkerContext`.
A worker that dies or is killed mid-(task, engine) yields a record with status ``timeout``,
``oom`` (address-space limit hit: MemoryError, Rust "memory allocation ... failed",
``std::bad_alloc``) or ``crash`` (any other death, e.g. a segfault), and the rest of its
task goes on in a fresh worker.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from .engines import load_tokenizer, make_engine, short
from .env import REPO, single_threaded_env

OOM_SIGNS = ("memory allocation of", "bad_alloc", "MemoryError", "Cannot allocate memory", "out of memory",
             "failed to allocate", "std::length_error")


# --------------------------------------------------------------------------- worker side
class WorkerContext:
    """What a task handler gets: the tokenizer and engines (built once per worker, lazily),
    and ``begin``/``result`` to report to the parent."""

    def __init__(self, cfg: dict, out):
        self.cfg = cfg
        self._out = out
        self._tok = None
        self.engines: dict = {}
        self.failed: dict[str, str] = {}
        self.tainted = False  # after a MemoryError: finish the task, then exit
        self.cache: dict = {}

    def send(self, **msg) -> None:
        self._out.write(json.dumps(msg, ensure_ascii=False, default=str) + "\n")
        self._out.flush()

    @property
    def tok(self):
        if self._tok is None:
            name = self.cfg.get("tokenizer", "deepseek")
            self.send(t="setup", what="tokenizer", phase="start")
            t0 = time.perf_counter()
            try:
                self._tok = load_tokenizer(name)
            except Exception as e:  # noqa: BLE001
                self.send(t="setup", what="tokenizer", phase="failed", error=short(f"{type(e).__name__}: {e}", 500))
                raise
            self.send(t="setup", what="tokenizer", phase="done", seconds=time.perf_counter() - t0,
                      info={"tokenizer": name, "len": len(self._tok)})
        return self._tok

    def engine(self, name: str):
        """The engine, or None when its setup failed (reported to the parent once)."""
        if name in self.engines:
            return self.engines[name]
        if name in self.failed:
            return None
        tok = self.tok
        self.send(t="setup", what=name, phase="start")
        t0 = time.perf_counter()
        try:
            eng = make_engine(name, tok, **self.cfg.get("engine_opts", {}))
            setup_s = time.perf_counter() - t0
            warm = self.warm_up(eng, tok)
        except Exception as e:  # noqa: BLE001
            self.failed[name] = short(f"{type(e).__name__}: {e}", 500)
            self.send(t="setup", what=name, phase="failed", error=self.failed[name],
                      traceback=traceback.format_exc(limit=-3))
            return None
        info = {"engine": name, "vocab_setup_s": setup_s, "warmup_s": time.perf_counter() - t0 - setup_s,
                "mask_width": eng.vocab_size, "eos_ids": eng.eos_ids, "warmup_problem": warm}
        # Settle the collector after the imports and the warm-up (a full collection is
        # otherwise due, and ~200 ms of it would land in whichever engine runs next).
        gc.collect()
        if self.cfg.get("gc_freeze"):  # setup objects leave the collector's generations (see --gc-freeze)
            gc.freeze()
        describe = getattr(eng, "describe", None)
        if describe:
            info["options"] = describe()
        self.send(t="setup", what=name, phase="done", seconds=time.perf_counter() - t0, info=info)
        self.engines[name] = eng
        return eng

    @staticmethod
    def warm_up(eng, tok) -> str | None:
        from .engines import WARMUP_SCHEMA, WARMUP_TEXT

        try:
            m = eng.compile(WARMUP_SCHEMA)
            for tid in tok.encode(WARMUP_TEXT, add_special_tokens=False):
                eng.fill(m)
                if not eng.accept(m, tid):
                    return f"warm-up: token {tid} rejected"
            eng.fill(m)
            if not eng.eos_allowed():
                return "warm-up: EOS not allowed at the end"
        except Exception as e:  # noqa: BLE001
            return f"warm-up: {short(f'{type(e).__name__}: {e}', 200)}"
        return None

    def begin(self, task_id: str, engine: str) -> None:
        self.send(t="begin", task=task_id, engine=engine)

    def result(self, task_id: str, engine: str, record: dict) -> None:
        self.send(t="result", task=task_id, engine=engine, record=record)


def _set_memory_limit(limit_bytes: int | None) -> None:
    if not limit_bytes:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(limit_bytes), int(limit_bytes)))
    except (ImportError, ValueError, OSError):
        pass


def worker_main(cfg_json: str) -> int:
    cfg = json.loads(cfg_json)
    single_threaded_env()
    if cfg.get("structgen_disk_cache") is False:
        os.environ["STRUCTGEN_DISK_CACHE"] = "0"
    proto = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = os.fdopen(proto, "w", buffering=1, encoding="utf-8")
    _set_memory_limit(cfg.get("memory_limit"))
    mod_name, fn_name = cfg["handler"].split(":")
    handler = getattr(importlib.import_module(mod_name), fn_name)
    ctx = WorkerContext(cfg, out)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        task = json.loads(line)
        try:
            handler(task, ctx)
        except MemoryError:
            ctx.tainted = True
        except Exception as e:  # noqa: BLE001  (handler bug: say so, keep the worker)
            ctx.send(t="note", note=f"task {task.get('id')}: handler error {short(f'{type(e).__name__}: {e}', 300)}",
                     traceback=traceback.format_exc(limit=-4))
        ctx.send(t="done", task=task.get("id"))
        if ctx.tainted:
            return 0
    return 0


# --------------------------------------------------------------------------- parent side
class _Worker:
    def __init__(self, slot: int, cfg: dict, log_dir: Path, q: queue.Queue):
        self.slot = slot
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"worker-{slot}-{time.strftime('%H%M%S')}-{id(self) & 0xffff:04x}.log"
        self.log = open(self.log_path, "ab")
        env = single_threaded_env(dict(os.environ))
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        code = "import sys; from structgen.bench.pool import worker_main; sys.exit(worker_main(sys.argv[1]))"
        self.proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(cfg)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, env=env, cwd=str(REPO),
                                     start_new_session=True)
        self.task: dict | None = None
        self.current: str | None = None  # engine whose clock runs
        self.since = time.monotonic()
        self.setup: str | None = None
        self.setup_since = 0.0
        self.killed_for: str | None = None
        self.reported: set[str] = set()
        self.stage: dict = {}
        self.dead = False
        t = threading.Thread(target=self._read, args=(q,), daemon=True)
        t.start()

    def _read(self, q: queue.Queue) -> None:
        for line in self.proc.stdout:
            try:
                q.put((self, json.loads(line)))
            except json.JSONDecodeError:
                q.put((self, {"t": "garbage", "line": line[:200].decode("utf-8", "replace")}))
        q.put((self, {"t": "eof"}))

    def send(self, task: dict) -> None:
        self.task = task
        self.current = None
        self.reported = set()
        self.since = time.monotonic()
        self.proc.stdin.write((json.dumps(task) + "\n").encode())
        self.proc.stdin.flush()

    def kill(self, why: str) -> None:
        self.killed_for = why
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def log_tail(self, n: int = 4000) -> str:
        try:
            if not self.log.closed:
                self.log.flush()
            data = self.log_path.read_bytes()
            return data[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


def describe_rc(rc: int | None) -> str:
    if rc is None:
        return "unknown exit"
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit status {rc}"


class Pool:
    """Runs ``tasks`` (dicts with ``id`` and ``engines``) on ``n`` workers.

    ``on_record(task, engine, record)`` gets every record (from the worker, or made up here
    for a worker that died); ``on_note(text)`` gets notes; ``on_setup(what, info)`` the
    first successful setup of each engine.  Engines whose setup fails are dropped from the
    remaining tasks (``unavailable``)."""

    def __init__(self, n: int, cfg: dict, *, log_dir: Path, timeout: float, setup_timeout: float = 900.0,
                 on_record=None, on_note=None, on_setup=None, grace: float = 0.0,
                 engine_timeouts: dict | None = None):
        self.n = max(1, int(n))
        self.cfg = cfg
        self.log_dir = Path(log_dir)
        self.timeout = float(timeout)
        self.engine_timeouts = {k: float(v) for k, v in (engine_timeouts or {}).items()}
        self.grace = float(grace)
        self.setup_timeout = float(setup_timeout)
        self.on_record = on_record or (lambda *a: None)
        self.on_note = on_note or (lambda *a: None)
        self.on_setup = on_setup or (lambda *a: None)
        self.unavailable: dict[str, str] = {}
        self.setup_failures: dict[str, int] = {}
        self.restarts = 0

    def limit(self, engine: str) -> float:
        return self.engine_timeouts.get(engine, self.timeout)

    def _drop_unavailable(self, task: dict) -> dict | None:
        engines = [e for e in task["engines"] if e not in self.unavailable]
        if not engines:
            return None
        return dict(task, engines=engines)

    def run(self, tasks: list[dict]) -> None:
        self._workers: list = []
        try:
            self._run(tasks)
        except BaseException:
            for x in self._workers:
                if x is not None and not x.dead:
                    x.kill("interrupted")
            raise

    def _run(self, tasks: list[dict]) -> None:
        pending = list(tasks)
        pending.reverse()  # pop() from the end = first task first
        q: queue.Queue = queue.Queue()
        workers: list[_Worker | None] = [None] * min(self.n, max(1, len(tasks)))
        live = 0

        def start(slot: int) -> _Worker:
            w = _Worker(slot, self.cfg, self.log_dir, q)
            self._workers.append(w)
            return w

        def next_task() -> dict | None:
            while pending:
                t = self._drop_unavailable(pending.pop())
                if t is not None:
                    return t
            return None

        def dispatch(w: _Worker) -> bool:
            t = next_task()
            if t is None:
                w.task = None
                w.close()
                return False
            try:
                w.send(t)
            except (BrokenPipeError, OSError):
                pending.append(t)  # the worker is dying; its eof will restart it
            return True

        for slot in range(len(workers)):
            if not pending:
                break
            workers[slot] = start(slot)
            live += 1
            dispatch(workers[slot])

        while live:
            try:
                w, msg = q.get(timeout=0.2)
            except queue.Empty:
                w, msg = None, None
            now = time.monotonic()
            if w is not None:
                self._handle(w, msg, pending)
                if msg["t"] == "done":
                    w.task = None
                    if not dispatch(w):
                        pass
                elif msg["t"] == "eof":
                    w.dead = True
                    live -= 1
                    self._on_death(w, pending)
                    if pending:
                        nw = start(w.slot)
                        workers[w.slot] = nw
                        live += 1
                        self.restarts += 1
                        dispatch(nw)
            for x in workers:
                if x is None or x.dead or x.killed_for:
                    continue
                if x.setup is not None:
                    if now - x.setup_since > self.setup_timeout:
                        x.kill("setup_timeout")
                elif x.current is not None and now - x.since > self.limit(x.current) + self.grace:
                    x.kill("timeout")
        for x in workers:
            if x is not None:
                x.close()
                try:
                    x.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    x.kill("shutdown")
                x.log.close()
                if x.log_path.exists() and x.log_path.stat().st_size == 0:
                    x.log_path.unlink()

    def _handle(self, w: _Worker, msg: dict, pending: list) -> None:
        t = msg["t"]
        if t == "setup":
            if msg["phase"] == "start":
                w.setup, w.setup_since = msg["what"], time.monotonic()
            else:
                w.setup = None
                w.since = time.monotonic()
                if msg["phase"] == "done":
                    self.on_setup(msg["what"], msg.get("info") or {})
                else:
                    what = msg["what"]
                    err = msg.get("error", "")
                    if what == "tokenizer":
                        for e in (w.task or {}).get("engines", []):
                            self.unavailable.setdefault(e, f"tokenizer: {err}")
                    elif what not in self.unavailable:
                        self.unavailable[what] = err
                        self.on_note(f"engine {what} unavailable: setup failed: {err}")
        elif t == "begin":
            w.current, w.since = msg["engine"], time.monotonic()
            w.stage = {"stage": "compile"}
        elif t == "stage":
            w.stage = dict(msg.get("info") or {}, stage=msg.get("stage"))
        elif t == "result":
            w.reported.add(msg["engine"])
            w.current = None
            self.on_record(w.task, msg["engine"], msg["record"])
        elif t == "note":
            self.on_note(msg.get("note", ""))
        elif t == "garbage":
            self.on_note(f"worker {w.slot}: unreadable output {msg.get('line')!r}")

    def _on_death(self, w: _Worker, pending: list) -> None:
        try:
            rc = w.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            w.kill("hung")
            rc = w.proc.wait()
        w.log.close()
        task = w.task
        if task is None:
            return  # a clean exit between tasks (e.g. after an out-of-memory record)
        tail = w.log_tail()
        oom = any(s in tail for s in OOM_SIGNS)
        if w.setup is not None:
            what = w.setup
            why = ("setup timed out after %.0f s" % self.setup_timeout if w.killed_for == "setup_timeout"
                   else f"worker died during setup ({describe_rc(rc)})")
            self.setup_failures[what] = self.setup_failures.get(what, 0) + 1
            if w.killed_for == "setup_timeout" or self.setup_failures[what] >= 3:
                targets = task["engines"] if what == "tokenizer" else [what]
                for e in targets:
                    if e not in self.unavailable:
                        self.unavailable[e] = why
                        self.on_note(f"engine {e} unavailable: {why}")
        elif w.current == "__prep__":
            # died while preparing the task (reading, tokenising, checking labels): every engine left
            status = "timeout" if w.killed_for == "timeout" else ("oom" if oom else "crash")
            err = (f"killed after {self.timeout + self.grace:.0f} s" if status == "timeout"
                   else f"worker died ({describe_rc(rc)}): {short(tail[-300:], 300)}")
            for e in task["engines"]:
                if e not in w.reported:
                    self.on_record(task, e, {"status": status, "error": f"while preparing the task: {err}"})
            return
        elif w.current is not None:
            eng = w.current
            if w.killed_for == "timeout":
                status, err = "timeout", f"killed after {self.limit(eng) + self.grace:.0f} s"
            elif oom:
                status, err = "oom", f"worker died ({describe_rc(rc)}) out of memory: {short(tail[-300:], 300)}"
            else:
                status, err = "crash", f"worker died ({describe_rc(rc)}): {short(tail[-300:], 300)}"
            w.reported.add(eng)
            stage = getattr(w, "stage", None) or {}
            rec = {"status": status, "error": f"{err} (during {stage.get('stage', 'compile')})",
                   "wall_s": round(time.monotonic() - w.since, 3), "stage": stage.get("stage", "compile")}
            for k in ("compile_ms", "ttfm_ms"):  # compiled before it died: keep the compile time
                if stage.get(k) is not None:
                    rec[k] = stage[k]
            self.on_record(task, eng, rec)
        rest = [e for e in task["engines"] if e not in w.reported]
        if not rest:
            return
        attempt = task.get("_attempt", 0) + 1
        if w.current is None and w.setup is None and attempt >= 3:
            # died twice outside any engine's clock (e.g. while reading the task): give up on it
            for e in rest:
                self.on_record(task, e, {"status": "crash", "error": f"worker died outside the engine "
                                         f"({describe_rc(rc)}): {short(tail[-300:], 300)}"})
            return
        pending.append(dict(task, engines=rest, _attempt=attempt))


class RecordLog:
    """The parent's side of a run: appends each record to a JSONL file as it arrives and shows
    progress (a tqdm bar with per-engine ``good/done`` counts; without one, a line every
    ``every`` records of an engine).  ``good`` names the record field counted as a success."""

    def __init__(self, path: Path, engines, total: int, *, progress: bool, good: str, every: int = 1,
                 width: int = 3, append: bool = True, unit: str = "run"):
        self.fh = open(path, "a" if append else "w", encoding="utf-8")
        self.good, self.every, self.width = good, every, width
        self.counts: dict[str, list[int]] = {e: [0, 0] for e in engines}
        self.bar = None
        if progress and total:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit=unit, dynamic_ncols=True, smoothing=0.05)
            except ImportError:
                pass

    def add(self, engine: str, line: dict) -> None:
        self.fh.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self.fh.flush()
        c = self.counts.setdefault(engine, [0, 0])
        c[0] += 1
        c[1] += bool(line.get(self.good))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(" ".join(f"{e[:self.width]} {k}/{n}" for e, (n, k) in self.counts.items()),
                                     refresh=False)
        elif c[0] % self.every == 0:
            print(f"{engine}: {c[0]} done, {c[1]} {self.good}", flush=True)

    def say(self, text: str) -> None:
        (self.bar.write if self.bar is not None else print)(text)

    def close(self) -> None:
        self.fh.close()
        if self.bar is not None:
            self.bar.close()


def logging_callbacks(log: RecordLog, notes: list, setup: dict, line_for, records: list | None = None) -> dict:
    """:class:`Pool`'s ``on_record``/``on_note``/``on_setup`` for a runner: each record (not
    the workers' ``__prep__`` ones) becomes ``line_for(task, engine, record)`` in ``log`` (and
    in ``records`` when given); notes go to ``notes`` and on screen; the first setup info of
    each engine lands in ``setup``."""

    def on_record(task, engine, rec):
        if engine == "__prep__":
            return
        line = line_for(task, engine, rec)
        if records is not None:
            records.append(line)
        log.add(engine, line)

    def on_note(text):
        notes.append(text)
        log.say(f"note: {text}")

    return {"on_record": on_record, "on_note": on_note, "on_setup": setup.setdefault}


def _term_as_interrupt():
    """SIGTERM -> KeyboardInterrupt, so a killed run still writes its summary (resume with --resume)."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return signal.getsignal(signal.SIGTERM)


def run_interruptible(pool: "Pool", tasks, *, notes: list, interrupted_note: str, close=()) -> None:
    """``pool.run(tasks)``; Ctrl-C or SIGTERM stops it cleanly (``interrupted_note`` is added to
    ``notes``) and the ``close`` callables run in every case, so results written so far are kept."""
    prev_term = _term_as_interrupt()
    try:
        pool.run(tasks)
    except KeyboardInterrupt:
        notes.append(interrupted_note)
    finally:
        if prev_term is not None:
            try:
                signal.signal(signal.SIGTERM, prev_term)
            except ValueError:
                pass
        for fn in close:
            fn()
