"""What the generation runners share: options, output folder, shards, resume, the worker pool,
the progress bar and per-run metadata.

A run writes into one folder (``--out``; default ``benchmarks/results/<runner>-<model>``):

* ``results.jsonl`` (``results-shard<i>of<n>.jsonl`` with ``--shard i/n``): one record per
  (task, engine), appended as they finish, so an interrupted run keeps what it did and
  ``--resume`` skips it;
* ``meta.json`` (``meta-shard<i>of<n>.json``): command, protocol, model, machine and versions;
* the report (``summary.json``, ``report.md``, plots), rebuilt from *every* results file in the
  folder after each run, so shards run anywhere merge by copying their files into one folder
  (``--report-only DIR`` rebuilds it without running anything).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from .env import environment, loadavg, machine_line, print_header, results_dir, versions_line
from .generation import DEFAULT_ENGINES, engine_available


def add_common_args(ap: argparse.ArgumentParser, *, max_new_tokens: int, gen_timeout: float) -> None:
    ap.add_argument("--model", default="smollm2",
                    help="smollm2 (default: the embedded SmolLM2-135M-Instruct), tiny-random (CI smoke runs), "
                         "or a local path / hub id for AutoModelForCausalLM")
    ap.add_argument("--device", default=None, help="torch device (default: cuda for other models when available)")
    ap.add_argument("--engines", default=None,
                    help=f"comma list (default: those installed of {','.join(DEFAULT_ENGINES)})")
    ap.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    ap.add_argument("--compile-timeout", type=float, default=40.0,
                    help="grammar compilation limit per (task, engine), s (default 40, the paper's)")
    ap.add_argument("--gen-timeout", type=float, default=gen_timeout,
                    help=f"generation limit per (task, engine), s (default {gen_timeout:g})")
    ap.add_argument("--workers", type=int, default=1, help="worker processes, each with its own model (default 1)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads per worker (default: cores // workers)")
    ap.add_argument("--shard", default=None, metavar="I/N", help="run the I-th of N interleaved shards (0-based)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default benchmarks/results/<runner>-<model>)")
    ap.add_argument("--resume", action="store_true", help="skip (task, engine) pairs already in the folder")
    ap.add_argument("--report-only", type=Path, default=None, metavar="DIR",
                    help="rebuild the report from DIR's results files without running anything")
    ap.add_argument("--seed", type=int, default=0, help="selection / dataset seed (default 0)")
    ap.add_argument("--structgen-disk-cache", action="store_true",
                    help="leave structgen's on-disk grammar cache on (default off: compile times are cold)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--no-progress", action="store_true")


def parse_shard(spec: str | None) -> tuple[int, int]:
    if not spec:
        return 0, 1
    m = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
    if not m or not int(m.group(2)) or int(m.group(1)) >= int(m.group(2)):
        raise SystemExit(f"--shard {spec!r}: expected I/N with 0 <= I < N")
    return int(m.group(1)), int(m.group(2))


def resolve_engines(spec: str | None) -> tuple[list[str], list[str]]:
    wanted = [e.strip() for e in spec.split(",") if e.strip()] if spec else list(DEFAULT_ENGINES)
    engines, notes = [], []
    for e in wanted:
        ok, why = engine_available(e)
        if ok:
            engines.append(e)
        elif spec:
            raise SystemExit(f"engine {e}: {why}")
        else:
            notes.append(f"engine {e} skipped: {why}")
    return engines, notes


def model_slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(spec).name or spec)[:60]


def load_records(folder: Path) -> list[dict]:
    """Every record of every results file in ``folder``; for a (task, engine) seen twice the last wins."""
    recs: dict = {}
    for path in sorted(folder.glob("results*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interruption
                recs[(r.get("task"), r.get("engine"))] = r
    return list(recs.values())


def load_meta(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.glob("meta*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            pass
    return out


def rebuild_report(args, write_report) -> bool:
    """``--report-only DIR``: rebuild DIR's report from its files; True when that was asked."""
    if args.report_only is None:
        return False
    write_report(args.report_only, load_records(args.report_only), load_meta(args.report_only),
                 make_plots=not args.no_plots)
    print(f"report rebuilt: {args.report_only / 'report.md'}")
    return True


def start_runner(argv, parse_args, write_report):
    """The start every generation runner shares: parse ``argv`` (``sys.argv[1:]`` when None),
    rebuild the report for ``--report-only`` (then None), resolve ``--engines``.
    Returns ``(argv, args, engines, notes)``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if rebuild_report(args, write_report):
        return None
    engines, notes = resolve_engines(args.engines)
    return argv, args, engines, notes


def common_protocol(args) -> dict:
    """The protocol fields of :func:`add_common_args` every generation runner records."""
    return {"model": args.model, "max_new_tokens": args.max_new_tokens, "compile_timeout": args.compile_timeout,
            "gen_timeout": args.gen_timeout, "decoding": "greedy", "seed": args.seed,
            "structgen_disk_cache": args.structgen_disk_cache}


def run(args, *, runner: str, tasks: list[dict], handler: str, protocol: dict, report, notes: list[str],
        engines: list[str], argv: list[str]) -> Path:
    """Run ``tasks`` (dicts with ``id``; every engine runs on each) through the pool and write
    the records; then ``report(folder, records, metas)`` builds the report.  Returns the folder."""
    from .pool import Pool, RecordLog, logging_callbacks, run_interruptible

    shard_i, shard_n = parse_shard(args.shard)
    tasks = tasks[shard_i::shard_n]
    out = args.out or results_dir() / f"{runner}-{model_slug(args.model)}"
    out.mkdir(parents=True, exist_ok=True)
    suffix = f"-shard{shard_i}of{shard_n}" if shard_n > 1 else ""
    jsonl = out / f"results{suffix}.jsonl"
    done = set()
    if args.resume:
        done = {(r["task"], r["engine"]) for r in load_records(out)}
    elif jsonl.exists() and jsonl.stat().st_size:
        raise SystemExit(f"{jsonl} exists: add --resume to continue it, or give another --out")
    todo = []
    for t in tasks:
        es = [e for e in engines if (t["id"], e) not in done]
        if es:
            todo.append(dict(t, engines=es))
    total = sum(len(t["engines"]) for t in todo)
    env = environment()
    cores = env.get("cores_available") or os.cpu_count() or 1
    threads = args.threads or max(1, cores // max(1, args.workers))
    started = time.strftime("%Y%m%d-%H%M%S")
    command = f"structgen bench {runner} " + " ".join(argv)
    print_header(f"# {runner} {started}: {len(tasks)} tasks x {len(engines)} engines ({', '.join(engines)}), "
          f"{total} runs to do{' (resumed)' if done else ''}, shard {shard_i}/{shard_n} -> {out}", env, notes)

    setup: dict = {}
    log = RecordLog(jsonl, engines, total, progress=not args.no_progress, good="ok", width=6)

    callbacks = logging_callbacks(log, notes, setup, lambda task, engine, rec: {
        "task": task["id"], "engine": engine, **{k: task[k] for k in task.get("keys", ())}, **rec})
    cfg = {"handler": handler, "model": args.model, "device": args.device, "threads": threads,
           "seed": args.seed, "structgen_disk_cache": args.structgen_disk_cache, "memory_limit": None,
           "protocol": protocol}
    limit = args.compile_timeout + args.gen_timeout + 60.0  # + prefill and bookkeeping; the worker enforces each
    pool = Pool(args.workers, cfg, log_dir=out / "logs", timeout=limit, setup_timeout=1800.0,
                **callbacks)
    t0 = time.perf_counter()
    run_interruptible(pool, todo, notes=notes, interrupted_note="interrupted: run again with --resume",
                      close=[log.close])
    wall = time.perf_counter() - t0
    for e, why in pool.unavailable.items():
        notes.append(f"engine {e} unavailable: {why}")
    env["loadavg_end"] = loadavg()
    meta = {"runner": runner, "started": started, "command": command, "shard": [shard_i, shard_n],
            "protocol": protocol, "engines": engines, "threads_per_worker": threads, "workers": args.workers,
            "model": setup.get("model"), "engine_setup": {k: v for k, v in setup.items() if k != "model"},
            "environment": env, "notes": list(dict.fromkeys(notes)), "wall_s": round(wall, 1),
            "worker_restarts": pool.restarts, "tasks": len(tasks), "runs_done_now": total}
    meta_path = out / f"meta{suffix}.json"
    if args.resume and meta_path.exists():  # keep the first run's metadata, list the resumptions
        try:
            first = json.loads(meta_path.read_text())
            meta = dict(first, resumed=list(first.get("resumed") or []) + [meta],
                        wall_s_total=round((first.get("wall_s_total") or first.get("wall_s") or 0) + wall, 1))
        except json.JSONDecodeError:
            pass
    meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False, default=str))
    report(out, load_records(out), load_meta(out), make_plots=not args.no_plots)
    print(f"\nwall time {wall:.0f} s; report: {out / 'report.md'}", flush=True)
    return out


def common_meta_lines(metas: list[dict]) -> list[str]:
    """Markdown lines naming the model, machine, versions and commands of the runs behind a report."""
    if not metas:
        return ["(no metadata)"]
    m = metas[0]
    env = m.get("environment") or {}
    model = m.get("model") or {}
    lines = [f"- model: {model.get('model', m.get('protocol', {}).get('model'))} on {model.get('device', '?')} "
             f"({model.get('params', '?')} parameters, {model.get('dtype', '?')}, "
             f"{m.get('threads_per_worker')} torch threads x {m.get('workers')} workers)",
             f"- machine: {machine_line(env)}" + (f"; GPU {model['gpu']}" if model.get("gpu") else ""),
             f"- versions: {versions_line(env)}"]
    for x in [r for m in metas for r in [m] + list(m.get("resumed") or [])]:
        xe = x.get("environment") or {}
        lines.append(f"- run: `{x.get('command')}` (started {x.get('started')}, shard {x.get('shard')}, "
                     f"wall {x.get('wall_s')} s, load average {xe.get('loadavg_start')} -> {xe.get('loadavg_end')})")
    notes = list(dict.fromkeys(n for x in metas for n in x.get("notes") or []))
    lines += [f"- note: {n}" for n in notes]
    return lines
