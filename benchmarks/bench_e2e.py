"""End-to-end constrained generation benchmark on the default model (SmolLM2-135M-Instruct).

Engines, same prompts, greedy decoding, one run each (after a warm-up on a tiny schema):

* ``unconstrained``   ``model.generate(**inputs, max_new_tokens=N, do_sample=False)``
* ``loop-unconstrained``  ``structgen.generate(model, tok, prompt, chat=False, temperature=0.0)`` with no
                       constraint: the cost of structgen's own loop itself, to separate loop overhead from
                       constraint overhead
* ``structgen-loop``  ``structgen.generate(model, tok, prompt, schema=compiled, chat=False,
                       temperature=0.0, fast_forward=...)`` (structgen's own KV-cached loop)
* ``structgen-lp``    ``model.generate(..., logits_processor=[StructgenLogitsProcessor([compiled])],
                       stopping_criteria=[StructgenStoppingCriteria(proc)])``
* ``xgrammar-lp``     ``model.generate(..., logits_processor=[xgrammar.contrib.hf.LogitsProcessor(cg)])``
* ``llguidance-lp``   ``model.generate(..., logits_processor=[<minimal processor>])``: llguidance
                       1.x ships no transformers LogitsProcessor, so ``structgen.bench.generation`` has a minimal one
                       (``LLMatcher`` + ``llguidance.torch.fill_next_token_bitmask`` +
                       ``apply_token_bitmask_inplace``; EOS only once the matcher is stopped/accepting).

Measured per (engine, schema):

* ``compile_s``: constraint compile time (structgen: ``compile_json_schema`` with the disk cache off,
  ``STRUCTGEN_DISK_CACHE=0``, unless ``--disk-cache``; xgrammar: ``GrammarCompiler.compile_json_schema``;
  llguidance: ``grammar_from_json_schema`` + ``LLMatcher(...)``).  Tokenizer/vocabulary setup is measured
  once per engine and reported separately (``setup_s``).  The structgen-loop engine reuses the grammar
  compiled for structgen-lp (same compile), so both report the same compile time.
* ``ttft_s``: from the call to the arrival of the first generated token.  ``model.generate`` engines: a
  transformers streamer (``BaseStreamer``) records the time of every ``put``; the first ``put`` is the
  prompt, the second the first generated token.  structgen loop: ``stream=callback``, time of the first text
  delta (with fast-forward the first delta may hold several tokens).  Includes the prompt prefill.
* ``tpot_s = (total - ttft) / (steps - 1)``, ``steps`` = generated tokens including the EOS step.
* ``at limit``: runs that used all ``max_new_tokens`` ("closed": structgen-loop runs whose output was
  steered to its shortest completion by budget-safe closing; those closing tokens are appended without a
  forward pass each, so the loop's TPOT there is per output token, not per forward pass).  The
  ``model.generate`` engines have no budget-safe closing: an output cut at the limit does not parse.
* ``tokens``: generated tokens excluding EOS; ``ff_share``: fast-forwarded tokens / tokens (structgen loop).
* ``parses`` (``json.loads``) and ``valid`` (``jsonschema`` validator for the schema's draft, no format check).

Ratios: median over schemas of the per-schema ratio (paired) of each engine against ``unconstrained`` and
against each peer.  Timings: ``torch.set_num_threads(1)`` (2 shared cores on the reference machine);
``--threads`` changes it.

    python benchmarks/bench_e2e.py --quick
    python benchmarks/bench_e2e.py --n 8 --max-new-tokens 64
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from structgen.bench.env import default_data_dir  # noqa: E402
from structgen.bench.generation import LLGuidanceProcessor as LLGuidanceLogitsProcessor  # noqa: E402
from structgen.bench.generation import TimingStreamer  # noqa: E402

DEFAULT_DATA = str(default_data_dir() / "jsonschemabench" / "maskbench" / "data")  # $STRUCTGEN_DATA or ../shared/data
SUBSETS = ("Glaiveai2K", "Github_easy", "Kubernetes", "Snowplow")
ENGINES = ("unconstrained", "loop-unconstrained", "structgen-loop", "structgen-lp", "xgrammar-lp", "llguidance-lp")
WARMUP_SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                 "required": ["a"]}
INSTRUCTION = ("Reply with a JSON object that conforms to the following JSON Schema. "
               "Output only the JSON.\nSchema:\n{schema}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("STRUCTGEN_MASKBENCH_DATA", DEFAULT_DATA))
    p.add_argument("--n", type=int, default=8, help="number of schemas (default 8)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-schema-chars", type=int, default=1500,
                   help="skip schemas whose compact JSON is longer (keeps prompts short)")
    p.add_argument("--quick", action="store_true", help="2 schemas, 32 tokens")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--fast-forward", default="verify", choices=("verify", "inject", "off"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--disk-cache", action="store_true", help="keep structgen's compiled-grammar disk cache on")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.max_new_tokens = 2, 32
    return a


# --------------------------------------------------------------------------- helpers
def now() -> float:
    return time.perf_counter()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def make_validator(schema):
    import jsonschema

    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)
    except Exception:  # noqa: BLE001 - a schema jsonschema cannot use: validity unknown
        return None


def check_output(text: str, validator):
    try:
        value = json.loads(text)
    except ValueError:
        return False, False
    if validator is None:
        return True, None
    try:
        return True, validator.is_valid(value)
    except Exception:  # noqa: BLE001 - unresolvable $ref etc.
        return True, None


# --------------------------------------------------------------------------- schema selection
def select_schemas(args, vocab, compile_json_schema):
    """Round-robin over SUBSETS, each subset's files sorted by name then shuffled with ``--seed``;
    a schema is taken when its compact JSON has at most ``--max-schema-chars`` characters and
    structgen compiles it (compile failures are listed in the JSON as ``skipped``)."""
    files = sorted(glob.glob(os.path.join(args.data, "*.json")))
    by_subset = {s: [f for f in files if os.path.basename(f).startswith(s + "---")] for s in SUBSETS}
    rng = random.Random(args.seed)
    for s in SUBSETS:
        rng.shuffle(by_subset[s])
    chosen, skipped = [], []
    iters = {s: iter(by_subset[s]) for s in SUBSETS}
    while len(chosen) < args.n and iters:
        for s in list(iters):
            if len(chosen) >= args.n:
                break
            while True:  # the next schema of subset s (in seeded order) that fits and compiles
                f = next(iters[s], None)
                if f is None:
                    del iters[s]
                    break
                schema = json.load(open(f, encoding="utf-8"))["schema"]
                if len(json.dumps(schema, separators=(",", ":"))) > args.max_schema_chars:
                    continue
                try:
                    compile_json_schema(schema, vocab)
                except Exception as e:  # noqa: BLE001
                    skipped.append((os.path.basename(f), f"{type(e).__name__}: {str(e)[:80]}"))
                    continue
                chosen.append((os.path.basename(f)[:-5], schema))
                break
    return chosen, skipped


# --------------------------------------------------------------------------- engines
def hf_run(model, inputs, max_new, eos_ids, processors=None, stopping=None):
    import torch

    streamer = TimingStreamer()
    kw = {}
    if processors:
        from transformers import LogitsProcessorList

        kw["logits_processor"] = LogitsProcessorList(processors)
    if stopping:
        from transformers import StoppingCriteriaList

        kw["stopping_criteria"] = StoppingCriteriaList(stopping)
    t0 = now()
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new, do_sample=False, streamer=streamer, **kw)
    t1 = now()
    gen = out[0, inputs["input_ids"].shape[1]:].tolist()
    ids = []
    for t in gen:
        if t in eos_ids:
            break
        ids.append(t)
    steps = min(len(gen), len(ids) + 1)  # the EOS step counts (trailing pads do not)
    ttft = streamer.times[1] - t0 if len(streamer.times) > 1 else t1 - t0
    return ids, steps, t1 - t0, ttft


def main(argv=None):
    args = parse_args(argv)
    if not args.disk_cache:
        os.environ["STRUCTGEN_DISK_CACHE"] = "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(args.threads)
    import structgen
    from structgen.integrations.transformers import (StructgenLogitsProcessor, StructgenStoppingCriteria,
                                                     vocabulary_for)
    from structgen.models import apply_chat_template

    try:
        from benchmarks.bench_mask import environment
        env = environment()
    except Exception as e:  # noqa: BLE001
        env = {"error": repr(e)}
    env["torch_threads"] = torch.get_num_threads()

    engines = [e for e in args.engines.split(",") if e]
    have_xgr = have_llg = True
    try:
        import xgrammar
        import xgrammar.contrib.hf
    except ImportError:
        have_xgr = False
    try:
        import llguidance
        import llguidance.hf
        import llguidance.torch  # noqa: F401
    except ImportError:
        have_llg = False
    engines = [e for e in engines if not (e == "xgrammar-lp" and not have_xgr)
               and not (e == "llguidance-lp" and not have_llg)]

    t = now()
    model, tok = structgen.load_default_model()
    model.eval()
    load_s = now() - t
    V = model.config.vocab_size
    gen_eos = model.generation_config.eos_token_id
    eos_ids = set([gen_eos] if isinstance(gen_eos, int) else list(gen_eos or []))
    if tok.eos_token_id is not None:
        eos_ids.add(tok.eos_token_id)

    setup = {}
    t = now()
    vocab = vocabulary_for(tok, V)
    setup["structgen"] = now() - t
    if have_xgr and "xgrammar-lp" in engines:
        t = now()
        xgr_compiler = xgrammar.GrammarCompiler(xgrammar.TokenizerInfo.from_huggingface(tok, vocab_size=V))
        setup["xgrammar"] = now() - t
    if have_llg and "llguidance-lp" in engines:
        t = now()
        lltok = llguidance.hf.from_tokenizer(tok, n_vocab=V)
        setup["llguidance"] = now() - t

    t = now()
    schemas, skipped = select_schemas(args, vocab, structgen.compile_json_schema)
    select_s = now() - t
    print(f"# model load {load_s:.1f}s, schema selection {select_s:.1f}s: {len(schemas)} schemas "
          f"({len(skipped)} skipped: structgen could not compile)", file=sys.stderr)

    ff = False if args.fast_forward == "off" else args.fast_forward

    def compile_for(engine, schema):
        t = now()
        if engine in ("structgen-loop", "structgen-lp"):
            c = structgen.compile_json_schema(schema, vocab)
        elif engine == "xgrammar-lp":
            c = xgr_compiler.compile_json_schema(json.dumps(schema))
        elif engine == "llguidance-lp":
            g = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema))
            c = llguidance.LLMatcher(lltok, g)
            if c.is_error():
                raise RuntimeError(c.get_error())
        else:
            c = None
        return c, now() - t

    def run_engine(engine, schema, compiled, prompt, inputs, max_new):
        """-> (text, tokens, steps, total_s, ttft_s, forced)"""
        if engine in ("structgen-loop", "loop-unconstrained"):
            times = []
            t0 = now()
            r = structgen.generate(model, tok, prompt, schema=compiled, chat=False, max_new_tokens=max_new,
                                   temperature=0.0, fast_forward=ff, stream=lambda d: times.append(now()))
            t1 = now()
            n = len(r.token_ids)
            steps = n + (1 if r.finish_reason == "eos" else 0)
            run_engine.last = {"finish_reason": r.finish_reason, "closed_by_budget": r.closed_by_budget}
            return r.text, n, steps, t1 - t0, (times[0] - t0 if times else t1 - t0), r.forced_tokens
        if engine == "unconstrained":
            procs, stop = None, None
        elif engine == "structgen-lp":
            p = StructgenLogitsProcessor([compiled], eos_token_id=sorted(eos_ids), pad_token_id=tok.pad_token_id)
            procs, stop = [p], [StructgenStoppingCriteria(p)]
        elif engine == "xgrammar-lp":
            procs, stop = [xgrammar.contrib.hf.LogitsProcessor(compiled)], None
        elif engine == "llguidance-lp":
            compiled.reset()
            procs, stop = [LLGuidanceLogitsProcessor(compiled, V)], None
        run_engine.last = {}
        ids, steps, total, ttft = hf_run(model, inputs, max_new, eos_ids, procs, stop)
        text = tok.decode(ids, skip_special_tokens=True)
        return text, len(ids), steps, total, ttft, None

    # warm-up: every engine once on a tiny schema (JIT, first-call allocations)
    wprompt = apply_chat_template(tok, INSTRUCTION.format(schema=json.dumps(WARMUP_SCHEMA)))
    winputs = tok(wprompt, return_tensors="pt", add_special_tokens=False)
    for e in engines:
        try:
            c, _ = compile_for(e, WARMUP_SCHEMA)
            run_engine(e, WARMUP_SCHEMA, c, wprompt, winputs, 8)
        except Exception as ex:  # noqa: BLE001
            print(f"# warm-up {e} failed: {ex!r}", file=sys.stderr)

    records = []
    for name, schema in schemas:
        prompt = apply_chat_template(tok, INSTRUCTION.format(schema=json.dumps(schema)))
        inputs = tok(prompt, return_tensors="pt", add_special_tokens=False)
        validator = make_validator(schema)
        for e in engines:
            rec = {"schema": name, "engine": e, "prompt_tokens": int(inputs["input_ids"].shape[1])}
            try:
                c, cs = compile_for(e, schema)
                text, n, steps, total, ttft, forced = run_engine(e, schema, c, prompt, inputs, args.max_new_tokens)
            except Exception as ex:  # noqa: BLE001
                rec["error"] = f"{type(ex).__name__}: {str(ex)[:200]}"
                records.append(rec)
                print(f"{name:45s} {e:15s} ERROR {rec['error']}", file=sys.stderr)
                continue
            parses, valid = check_output(text.strip(), validator)
            rec.update({
                "compile_s": cs if "unconstrained" not in e else None, "total_s": total, "ttft_s": ttft,
                "tokens": n, "steps": steps,
                "tpot_s": (total - ttft) / (steps - 1) if steps > 1 else None,
                "forced_tokens": forced, "ff_share": (forced / n if n and forced is not None else None),
                "parses": parses, "valid": valid, "text": text,
                "hit_limit": n >= args.max_new_tokens, **run_engine.last,
            })
            records.append(rec)
            print(f"{name:45s} {e:15s} tok={n:3d} ttft={ttft*1e3:7.1f}ms "
                  f"tpot={(rec['tpot_s'] or 0)*1e3:6.1f}ms parse={parses} valid={valid}", file=sys.stderr)

    summary = summarize(records, engines, [s for s, _ in schemas])
    env["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    md = render(summary, engines, args, env, setup, len(schemas))
    print(md)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"e2e_{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"args": vars(args), "env": env, "setup_s": setup, "model_load_s": load_s,
                   "schemas": [s for s, _ in schemas], "skipped": skipped, "summary": summary,
                   "records": records}, f, indent=1, default=str)
    print(f"\nJSON: {path}")


def summarize(records, engines, names):
    by = {(r["schema"], r["engine"]): r for r in records if "error" not in r}
    out = {}
    for e in engines:
        rs = [by[(s, e)] for s in names if (s, e) in by]
        out[e] = {
            "runs": len(rs), "errors": sum(1 for r in records if r["engine"] == e and "error" in r),
            "compile_s": median([r["compile_s"] for r in rs]),
            "ttft_s": median([r["ttft_s"] for r in rs]), "tpot_s": median([r["tpot_s"] for r in rs]),
            "total_s": median([r["total_s"] for r in rs]), "tokens": median([r["tokens"] for r in rs]),
            "ff_share": median([r["ff_share"] for r in rs]),
            "parses": sum(bool(r["parses"]) for r in rs), "valid": sum(r["valid"] is True for r in rs),
            "valid_unknown": sum(r["valid"] is None for r in rs),
            "hit_limit": sum(bool(r.get("hit_limit")) for r in rs),
            "closed_by_budget": sum(bool(r.get("closed_by_budget")) for r in rs),
        }
    ratios = {}
    for metric in ("ttft_s", "tpot_s", "total_s"):
        m = {}
        for a in engines:
            for b in engines:
                if a == b:
                    continue
                xs = [by[(s, a)][metric] / by[(s, b)][metric] for s in names
                      if (s, a) in by and (s, b) in by and by[(s, a)][metric] and by[(s, b)][metric]]
                m[f"{a}/{b}"] = median(xs)
        ratios[metric] = m
    return {"per_engine": out, "ratios": ratios}


def render(summary, engines, args, env, setup, n_schemas):
    v = env.get("versions", {})
    lines = [f"## bench_e2e: SmolLM2-135M-Instruct, {n_schemas} schemas, max_new_tokens={args.max_new_tokens}, "
             f"greedy, fast_forward={args.fast_forward}, torch threads={env.get('torch_threads')}",
             "",
             f"CPU: {env.get('cpu')} ({env.get('cores')} cores), torch {v.get('torch')}, transformers "
             f"{v.get('transformers')}, structgen {v.get('structgen_git')}, xgrammar {v.get('xgrammar')}, "
             f"llguidance {v.get('llguidance')}; loadavg {env.get('loadavg_start')} -> {env.get('loadavg_end')}",
             "setup (tokenizer/vocabulary, once): " + ", ".join(f"{k} {s:.2f}s" for k, s in setup.items()),
             "",
             "| engine | runs | compile ms | TTFT ms | TPOT ms | total s | tokens | at limit | ff share | parses | valid "
             "| TTFT x unc | TPOT x unc | total x unc |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    pe, ra = summary["per_engine"], summary["ratios"]

    def f(x, scale=1.0, fmt="{:.1f}"):
        return "-" if x is None else fmt.format(x * scale)

    for e in engines:
        s = pe[e]
        unc = lambda m: ra[m].get(f"{e}/unconstrained") if e != "unconstrained" else 1.0  # noqa: E731
        lines.append(
            f"| {e} | {s['runs']}{' (' + str(s['errors']) + ' err)' if s['errors'] else ''} "
            f"| {f(s['compile_s'], 1e3)} | {f(s['ttft_s'], 1e3)} | {f(s['tpot_s'], 1e3)} "
            f"| {f(s['total_s'], 1, '{:.2f}')} | {f(s['tokens'], 1, '{:.0f}')} | {s['hit_limit']}"
            f"{' (' + str(s['closed_by_budget']) + ' closed)' if s['closed_by_budget'] else ''} | {f(s['ff_share'], 1, '{:.0%}')} "
            f"| {s['parses']}/{s['runs']} | {s['valid']}/{s['runs']}"
            f"{' (' + str(s['valid_unknown']) + ' n/a)' if s['valid_unknown'] else ''} "
            f"| {f(unc('ttft_s'), 1, '{:.2f}')} | {f(unc('tpot_s'), 1, '{:.2f}')} | {f(unc('total_s'), 1, '{:.2f}')} |")
    for metric in ("tpot_s", "total_s"):
        lines += ["", f"{metric[:-2].upper()} ratio row/column (median of per-schema ratios):", "",
                  "| | " + " | ".join(engines) + " |", "|---" * (len(engines) + 1) + "|"]
        for a in engines:
            lines.append(f"| {a} | " + " | ".join(
                "1" if a == b else f(ra[metric].get(f"{a}/{b}"), 1, "{:.2f}") for b in engines) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
