"""Grammar-aware speculative decoding, measured side by side in one run.

1. Before any model: the fraction of tokens that are grammar-forced on
   JSONSchemaBench valid instances (canonical tokenisation of ``json.dumps``
   output; a token is forced when its bytes lie inside the forced continuation
   at its start, as llguidance counts on MaskBench).
2. SmolLM2 over JSONSchemaBench schemas (the paper's prompt): for each draft
   configuration, target forward passes per output token, acceptance per
   source, wall time per token, against masked decoding without drafts,
   unconstrained decoding and the xgrammar / llguidance logits processors
   (greedy; ``--temperature`` for sampled runs, where every structgen
   configuration has the same output distribution).

    python benchmarks/bench_speculative.py --limit 3 --max-new-tokens 128
    python benchmarks/bench_speculative.py --forced-only --limit 50

Prints a table and writes ``benchmarks/results/speculative-<time>.json`` with
the machine and versions."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "masked": [],
    "grammar": ["grammar"],
    "prompt": ["prompt"],
    "grammar+prompt": ["grammar", "prompt"],
    "grammar+prompt+layerskip": ["grammar", "prompt", "layerskip"],
}


def forced_fraction(schemas, vocab, tok) -> dict:
    from structgen.integrations.transformers import encode_bytes
    from structgen.json_schema import compile_json_schema

    total = forced = 0
    per = {}
    for s in schemas:
        doc = json.loads(Path(s["path"]).read_text())
        valid = [t["data"] for t in doc.get("tests", []) if t.get("valid")]
        if not valid:
            continue
        try:
            c = compile_json_schema(doc["schema"], vocab, lenient=True)
        except Exception as e:  # noqa: BLE001 - a schema we cannot compile is reported, not counted
            per[s["id"]] = f"not compiled: {type(e).__name__}"
            continue
        n = f = 0
        for inst in valid:
            ids = encode_bytes(tok, vocab, json.dumps(inst).encode())
            m = c.matcher()
            for t in ids:
                fb = m.find_jump_forward_bytes(limit=256)
                tb = vocab.token_bytes[t] or b""
                f += bool(tb) and fb.startswith(tb)
                n += 1
                if not m.accept_token(t):
                    break
        per[s["id"]] = f / max(n, 1)
        total, forced = total + n, forced + f
    return {"tokens": total, "forced": forced, "fraction": forced / max(total, 1), "per_schema": per}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subsets", default="Github_easy,Github_medium,Glaiveai2K")
    ap.add_argument("--limit", type=int, default=3, help="schemas per subset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--whitespace", default=None,
                    help="compile_json_schema whitespace policy (e.g. canonical: keys and separators forced)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"draft configurations: {', '.join(CONFIGS)}")
    ap.add_argument("--peers", default="unconstrained,xgrammar,llguidance")
    ap.add_argument("--forced-only", action="store_true", help="only the model-free forced-token fraction")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(args.threads)
    from structgen.bench.env import default_data_dir, environment, print_header, results_dir
    from structgen.bench.engines import CompileFailure
    from structgen.bench.generation import engine_available, load_model
    from structgen.bench.jsonschemabench import list_schemas, messages_for, select
    from structgen.integrations.generate import generate
    from structgen.integrations.transformers import vocabulary_for
    from structgen.models import apply_chat_template

    data = Path(args.data) if args.data else default_data_dir()
    schemas = select(list_schemas(data), args.subsets.split(","), args.limit, args.seed)
    env = environment()
    print_header("speculative decoding under the constraint", env, [f"{len(schemas)} schemas: {args.subsets}"])
    model, tok, info = load_model("smollm2", device=args.device)
    vocab = vocabulary_for(tok, model.config.vocab_size)
    report = {"env": env, "model": info, "args": vars(args)}
    report["forced"] = forced_fraction(schemas, vocab, tok)
    print(f"grammar-forced tokens on valid instances: {report['forced']['forced']}/{report['forced']['tokens']}"
          f" = {100 * report['forced']['fraction']:.1f} %")
    if args.forced_only:
        _write(report, args, results_dir())
        return 0

    rows = {}
    configs = [c for c in args.configs.split(",") if c]
    for s in schemas:
        schema = json.loads(Path(s["path"]).read_text())["schema"]
        prompt = apply_chat_template(tok, messages_for(schema))
        for name in configs:
            t0 = time.perf_counter()
            try:
                r = generate(model, tok, prompt, schema=schema, chat=False, max_new_tokens=args.max_new_tokens,
                             temperature=args.temperature, seed=args.seed, draft=CONFIGS[name],
                             json_options={"lenient": True, **({"whitespace": args.whitespace} if args.whitespace else {})})
            except Exception as e:  # noqa: BLE001 - recorded per schema
                rows.setdefault(name, []).append({"id": s["id"], "error": f"{type(e).__name__}: {e}"[:200]})
                continue
            wall = time.perf_counter() - t0
            n = max(len(r.token_ids), 1)
            rows.setdefault(name, []).append({
                "id": s["id"], "subset": s["subset"], "tokens": len(r.token_ids), "wall_s": wall,
                "s_per_token": wall / n, "passes_per_token": r.stats["target_forward_passes"] / n,
                "proposed": r.stats["draft_tokens_proposed"], "accepted": r.stats["draft_tokens_accepted"],
                "mask_time_s": r.stats["mask_time_s"], "text": r.text})
            print(f"  {s['id']:<28} {name:<26} {len(r.token_ids):4d} tok  "
                  f"{r.stats['target_forward_passes'] / n:.2f} passes/tok  {1e3 * wall / n:7.1f} ms/tok", flush=True)
        for peer in [p for p in args.peers.split(",") if p]:
            ok, why = engine_available(peer)
            if not ok:
                print(f"  {peer}: {why}")
                continue
            eng = _engine(peer, model, tok)
            ids = list(tok(prompt, add_special_tokens=False)["input_ids"])
            try:
                handle = eng.compile(schema) if eng.constrained else None
            except CompileFailure as e:  # a peer that cannot compile this schema: recorded, not timed
                rows.setdefault(peer, []).append({"id": s["id"], "error": str(e)[:200]})
                print(f"  {s['id']:<28} {peer:<26} compile failed: {str(e)[:80]}")
                continue
            out = eng.generate(handle, ids, prompt, args.max_new_tokens, None)
            n = max(out.tokens, 1)
            rows.setdefault(peer, []).append({"id": s["id"], "subset": s["subset"], "tokens": out.tokens,
                                              "wall_s": out.total_s, "s_per_token": out.total_s / n,
                                              "passes_per_token": out.steps / n})
            print(f"  {s['id']:<28} {peer:<26} {out.tokens:4d} tok  {1.0:.2f} passes/tok  "
                  f"{1e3 * out.total_s / n:7.1f} ms/tok", flush=True)
    report["runs"] = rows
    report["summary"] = _summary(rows)
    _print_summary(report["summary"])
    _write(report, args, results_dir())
    return 0


def _engine(name, model, tok):
    from structgen.bench import generation as g

    cls = {"unconstrained": g.Unconstrained, "xgrammar": g.XGrammarGen, "llguidance": g.LLGuidanceGen,
           "outlines": g.OutlinesGen}[name]
    return cls(model, tok)


def _summary(rows: dict) -> dict:
    out = {}
    for name, rs in rows.items():
        ok = [r for r in rs if "error" not in r and r["tokens"]]
        if not ok:
            continue
        toks = sum(r["tokens"] for r in ok)
        acc: dict = {}
        for r in ok:
            for k, v in r.get("proposed", {}).items():
                a = acc.setdefault(k, [0, 0])
                a[0] += r["accepted"].get(k, 0)
                a[1] += v
        out[name] = {"schemas": len(ok), "errors": len(rs) - len(ok), "tokens": toks,
                     "passes_per_token": sum(r["passes_per_token"] * r["tokens"] for r in ok) / max(toks, 1),
                     "ms_per_token": 1e3 * sum(r["wall_s"] for r in ok) / max(toks, 1),
                     "ms_per_token_median": 1e3 * statistics.median(r["s_per_token"] for r in ok),
                     "acceptance": {k: f"{a}/{p}" for k, (a, p) in acc.items()}}
    base = out.get("masked", {}).get("ms_per_token")
    for v in out.values():
        v["speedup_vs_masked"] = base / v["ms_per_token"] if base else None
    return out


def _print_summary(summary: dict) -> None:
    print(f"\n{'configuration':<26} {'passes/tok':>10} {'ms/tok':>8} {'x masked':>9}  acceptance")
    for name, v in summary.items():
        sp = f"{v['speedup_vs_masked']:.2f}" if v["speedup_vs_masked"] else "-"
        print(f"{name:<26} {v['passes_per_token']:>10.2f} {v['ms_per_token']:>8.1f} {sp:>9}  {v['acceptance']}")


def _write(report: dict, args, results: Path) -> None:
    out = Path(args.out) if args.out else results / f"speculative-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
