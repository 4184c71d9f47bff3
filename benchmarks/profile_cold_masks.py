#!/usr/bin/env python
"""Where the time of structgen's mask fills goes (a profile, not a comparison).

Compiles MaskBench schemas (``--limit`` per subset, untimed), then replays their
valid instances (in MaskBench's two spellings) timing every fill, with the garbage
collector off so that its pauses do not land in one phase.  Reports the fills'
total and distribution, and the time spent in each numba kernel, in lexer
builds (products and projections) and in new Earley rows; the rest is the
Python of the mask loop around them.  The same breakdown is then shown per fill
for the fills between two percentiles (``--band``, default around p99).

    python benchmarks/profile_cold_masks.py --limit 3
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def timed(owner, name: str, label: str, acc: dict) -> None:
    """Wrap ``owner.name`` to add its calls and wall time to ``acc[label]``."""
    fn = getattr(owner, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            entry = acc.setdefault(label, [0, 0])
            entry[0] += 1
            entry[1] += time.perf_counter_ns() - t0

    setattr(owner, name, wrapper)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=3, help="schemas per MaskBench subset (default 3)")
    ap.add_argument("--tokenizer", default="deepseek")
    ap.add_argument("--data", default=None, help="data dir (default: structgen.bench.env.default_data_dir())")
    ap.add_argument("--band", default="98.5,99.5",
                    help="percentiles LO,HI of the fills whose own breakdown is also shown (default: around p99)")
    args = ap.parse_args(argv)
    band = [float(x) for x in args.band.split(",")]

    from structgen.bench.engines import CompileFailure, load_tokenizer, make_engine
    from structgen.bench.env import default_data_dir
    from structgen.bench.maskbench import list_schemas, select
    from structgen.bench.replay import STYLES, serialise
    from structgen.grammar import earley
    from structgen.mask import engine, lexer, slicer
    from structgen.mask.kernels import numba_cpu

    tok = load_tokenizer(args.tokenizer)
    eng = make_engine("structgen", tok)
    eng.fill(eng.compile({"type": "object", "properties": {"warm": {"type": "string"}}}))
    data = Path(args.data) if args.data else default_data_dir()
    work = []
    for task in select(list_schemas(data), None, args.limit, 0):
        doc = json.loads(Path(task["path"]).read_text(encoding="utf-8"))
        try:
            eng.compile(doc.get("schema"))
        except CompileFailure:
            continue
        for inst in (t["data"] for t in doc.get("tests") or [] if t.get("valid")):
            for style in STYLES:
                work.append((doc["schema"], tok.encode(serialise(inst, style), add_special_tokens=False)))

    acc: dict = {}
    for name in ("walk_grouped", "slice_cover", "canonical_product", "narrow_classes", "single_lexer"):
        timed(numba_cpu, name, f"kernel {name}", acc)
    timed(lexer.LexerFactory, "build", "lexer builds (products, projections)", acc)
    timed(lexer.LexerFactory, "_project", "  of which projections", acc)
    timed(lexer.LexerFactory, "_canonical_product", "  of which products", acc)
    timed(earley.EarleyParser, "_make_row", "new Earley rows", acc)
    timed(earley.EarleyParser, "_static_part", "  of which predicted parts", acc)
    timed(engine.CompiledGrammar, "_plan", "plans (walk_grouped and its Python)", acc)
    timed(slicer.Slicer, "choose", "slice choices (slice_cover and its Python)", acc)
    gc.collect()
    gc.disable()
    fills, per_fill = [], []
    for schema, ids in work:
        m = eng.compile(schema)  # memoised: a fresh matcher of the compiled schema
        for pos in range(len(ids) + 1):
            before = {label: ns for label, (_, ns) in acc.items()}
            t0 = time.perf_counter_ns()
            eng.fill(m)
            fills.append(time.perf_counter_ns() - t0)
            per_fill.append({label: ns - before.get(label, 0) for label, (_, ns) in acc.items()
                             if ns != before.get(label, 0)})
            if pos == len(ids) or not eng.accept(m, ids[pos]):
                break
    gc.enable()
    t = np.array(fills) / 1e3
    total_ms = t.sum() / 1e3
    print(f"{len(t)} fills, total {total_ms:.0f} ms: mean {t.mean():.1f} us, p50 {np.median(t):.1f}, "
          f"p99 {np.percentile(t, 99):.0f}; fills over 100 us: {(t > 100).sum()} ({t[t > 100].sum() / t.sum():.0%} "
          f"of the time)")
    print("(lexer builds and Earley rows also run in accept(); kernels, plans and slice choices only in fills)")
    for label, (n, ns) in sorted(acc.items(), key=lambda kv: -kv[1][1]):
        print(f"  {label:40s} {n:7d} calls {ns / 1e6:8.1f} ms ({ns / 1e6 / total_ms:.0%} of the fills' total)")
    # what the fills near the tail spend (the p99 value is decided there, not by the slowest few)
    lo, hi = np.percentile(t, band[0]), np.percentile(t, band[1])
    picked = [i for i in range(len(t)) if lo <= t[i] <= hi]
    if picked:
        spent: dict = {}
        for i in picked:
            for label, ns in per_fill[i].items():
                spent[label] = spent.get(label, 0) + ns
        print(f"fills between p{band[0]:g} and p{band[1]:g} ({lo:.0f}-{hi:.0f} us, {len(picked)} fills, "
              f"mean {t[picked].mean():.0f} us), per fill:")
        for label, ns in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {label:40s} {ns / 1e3 / len(picked):8.1f} us ({ns / 1e3 / t[picked].sum():.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
