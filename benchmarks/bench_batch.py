#!/usr/bin/env python
"""Batched mask benchmark: wall time per decoding step for B sequences at once.

For every engine (a fresh process each, so no engine or thread setting profits
from caches another filled) and every batch size B (default 1, 8, 64), B
different JSONSchemaBench schemas are compiled (untimed) and one valid
instance of each is replayed token by token.  A step fills the bitmask rows of
all sequences still running in one batched call (timed) and then accepts each
sequence's next token (untimed).  Each batch size uses its own schemas (the
same ones for every engine), so every mask of a step is as cold as in serving.

* structgen: ``fill_next_token_bitmask_batch(matchers, bitmask, threads=T)``, and with
  ``--processes P``: ``processes=P`` (the calling process and P-1 workers; each
  batch's matchers are handed to their processes by ``prepare``, untimed, as
  the compiles are)
* llguidance: ``llguidance.numpy.fill_next_token_bitmask_par(LLExecutor(T), ...)``
* xgrammar: ``BatchGrammarMatcher(max_threads=T).batch_fill_next_token_bitmask``

    python benchmarks/bench_batch.py --batches 1,8,64 --threads 1,2 --processes 2 --max-steps 40
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def pick_schemas(data: Path, n: int, seed: int) -> list[tuple[str, dict, object]]:
    files = sorted((data / "jsonschemabench" / "maskbench" / "data").glob("*.json"))
    random.Random(seed).shuffle(files)
    out = []
    for f in files:
        doc = json.loads(f.read_text(encoding="utf-8"))
        valid = [t["data"] for t in doc.get("tests") or [] if t.get("valid")]
        if valid and isinstance(doc.get("schema"), dict):
            out.append((f.stem, doc["schema"], valid[0]))
        if len(out) == n:
            break
    return out


def run_engine(args) -> dict:
    """Worker: one engine, one thread count, every batch size."""
    from structgen.bench.engines import CompileFailure, load_tokenizer, make_engine

    tok = load_tokenizer(args.tokenizer)
    eng = make_engine(args.engine, tok)
    threads, processes = args.threads, args.processes
    prepare = None
    if args.engine == "structgen":
        from structgen.mask.batch import fill_next_token_bitmask_batch, mask_processes

        def fill(ms, bm, idx):
            fill_next_token_bitmask_batch(ms, bm, threads=threads, indices=idx, processes=processes)
        if processes > 1:
            prepare = mask_processes(processes).prepare
    elif args.engine == "llguidance":
        import llguidance
        import llguidance.numpy

        executor = llguidance.LLExecutor(threads)

        def fill(ms, bm, idx):
            llguidance.numpy.fill_next_token_bitmask_par(executor, list(zip(ms, idx)), bm)
    elif args.engine == "xgrammar":
        import xgrammar

        batcher = xgrammar.BatchGrammarMatcher(max_threads=threads)

        def fill(ms, bm, idx):
            batcher.batch_fill_next_token_bitmask(ms, bm, indices=idx)
    else:
        raise SystemExit(f"unknown engine {args.engine}")
    # warm-up (imports, JIT): a schema outside every batch
    wm = eng.compile({"type": "object", "properties": {"warm": {"type": "array", "items": {"type": "number"}}}})
    fill([wm], eng.bitmask, [0])
    if prepare is not None:  # every process: one matcher each
        forks = [wm.fork() for _ in range(processes)]
        fill(forks, np.repeat(eng.bitmask[:1], processes, axis=0), list(range(processes)))
    batches = [int(b) for b in args.batches.split(",")]
    every = pick_schemas(Path(args.data), sum(batches), args.seed)
    result = {"engine": args.engine, "threads": threads, "processes": processes, "batches": {}}
    start = 0
    for b in batches:
        chosen, start = every[start:start + b], start + b
        seqs = []
        for name, schema, inst in chosen:
            try:
                m = eng.compile(schema)
            except CompileFailure:
                continue
            ids = list(tok.encode(json.dumps(inst), add_special_tokens=False))[:args.max_steps]
            seqs.append([m, ids, 0])
        if prepare is not None:
            prepare([s[0] for s in seqs])
        gc.collect()  # untimed: a full collection due after the imports and compiles lands here, not in a step
        if args.engine == "xgrammar":
            import xgrammar

            bm = xgrammar.allocate_token_bitmask(max(1, len(seqs)), eng.vocab_size)
        else:
            bm = np.full((max(1, len(seqs)), eng.bitmask.shape[1]), -1, np.int32)
        steps = []
        while True:
            live = [i for i, s in enumerate(seqs) if s[2] < len(s[1])]
            if not live:
                break
            ms = [seqs[i][0] for i in live]
            t0 = time.perf_counter_ns()
            fill(ms, bm, live)
            steps.append(time.perf_counter_ns() - t0)
            for i in live:
                m, ids, pos = seqs[i]
                if not eng.accept(m, ids[pos]):
                    seqs[i][2] = len(ids)  # rejected: drop the sequence (counted below)
                else:
                    seqs[i][2] = pos + 1
        st = np.array(steps or [0]) / 1e3
        result["batches"][b] = {"sequences": len(seqs), "steps": len(steps), "mean_us": float(st.mean()),
                                "p50_us": float(np.median(st)), "p99_us": float(np.percentile(st, 99)),
                                "total_ms": float(st.sum() / 1e3)}
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engines", default="structgen,llguidance,xgrammar")
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts")
    ap.add_argument("--processes", default="", help="comma list of structgen process counts (>1), run as well")
    ap.add_argument("--tokenizer", default="deepseek")
    ap.add_argument("--max-steps", type=int, default=40, help="tokens replayed per sequence")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="data dir (default: structgen.bench.env.default_data_dir())")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.data is None:
        from structgen.bench.env import default_data_dir

        args.data = str(default_data_dir())
    if args.worker:
        engine, threads, processes = (args.worker.split(":") + ["1"])[:3]
        args.engine, args.threads, args.processes = engine, int(threads), int(processes)
        print(json.dumps(run_engine(args)))
        return 0
    import importlib.util

    rows = []
    for engine in args.engines.split(","):
        if engine != "structgen" and importlib.util.find_spec(engine) is None:
            print(f"{engine}: not installed, skipped", flush=True)
            continue
        configs = [f"{t}:1" for t in args.threads.split(",")]
        if engine == "structgen":
            configs += [f"1:{p}" for p in args.processes.split(",") if p and int(p) > 1]
        for config in configs:
            cmd = [sys.executable, __file__, "--worker", f"{engine}:{config}", "--batches", args.batches,
                   "--tokenizer", args.tokenizer, "--max-steps", str(args.max_steps), "--seed", str(args.seed),
                   "--data", args.data]
            env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode:
                print(f"{engine} {config}: failed\n{out.stderr[-2000:]}", flush=True)
                continue
            res = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(res)
            for b, r in res["batches"].items():
                print(f"{engine:10s} threads={res['threads']} processes={res['processes']} batch={b:>3}: "
                      f"{r['sequences']} seqs, {r['steps']} steps, "
                      f"mean {r['mean_us']:,.0f} µs/step, p50 {r['p50_us']:,.0f}, p99 {r['p99_us']:,.0f}", flush=True)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f} (1 min); python {platform.python_version()}")
    print("\n| engine | threads / processes | batch | seqs | steps | mean µs/step | p50 | p99 "
          "| structgen/engine (mean, same threads) | structgen with N processes / engine with N threads |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    sg = {(r["threads"], b): v for r in rows if r["engine"] == "structgen" and r["processes"] == 1
          for b, v in r["batches"].items()}
    sgp = {(r["processes"], b): v for r in rows if r["engine"] == "structgen" and r["processes"] > 1
           for b, v in r["batches"].items()}
    for r in rows:
        for b, v in r["batches"].items():
            ratios = []
            for base in ((sg.get((r["threads"], b)) if r["processes"] == 1 else None),
                         (sgp.get((r["threads"], b)) if r["processes"] == 1 else None)):
                ratios.append(f"{base['mean_us'] / v['mean_us']:.2f}×" if base and v["mean_us"] else "–")
            par = f"{r['processes']} processes" if r["processes"] > 1 else f"{r['threads']} threads"
            print(f"| {r['engine']} | {par} | {b} | {v['sequences']} | {v['steps']} | {v['mean_us']:,.0f} | "
                  f"{v['p50_us']:,.0f} | {v['p99_us']:,.0f} | {ratios[0]} | {ratios[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
