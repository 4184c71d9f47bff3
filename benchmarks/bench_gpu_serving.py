#!/usr/bin/env python
"""Serving-step benchmark on a GPU: what constrained decoding adds to a batched,
KV-cached greedy decoding step of a SmolLM2-135M-sized model.

The model is a randomly initialised Llama with SmolLM2-135M's architecture (30
layers, hidden 576, 9 heads / 3 KV heads, intermediate 1536, tied embeddings,
rope theta 1e5), bf16 on CUDA, over the deepseek tokenizer's 129,280 ids so the
bitmask has a real vocabulary's width.  Weights are random: the tokens are
meaningless, the costs are not (the forward is the same work, and the masks are
those of the JSON states the greedy choices reach).

For each batch size B, B different MaskBench schemas (the ones
``benchmarks/bench_batch.py`` picks, disjoint between batch sizes) are compiled
with ``whitespace="flexible"``; every sequence starts from the same short prompt
(prefill untimed), then ``--steps`` decoding steps are timed, with
``torch.cuda.synchronize()`` between the parts:

* unconstrained: forward, argmax, tokens to the host (before and after the
  constrained runs: the first measurement of a block runs slow);
* structgen, ``threads=T``: forward | ``fill_next_token_bitmask_batch`` into a
  pinned host bitmask | (held EOS bits cleared,) copy to the device +
  ``apply_token_bitmask_inplace`` |
  argmax, tokens to the host | ``Matcher.accept_token``;
* structgen overlapped: the fill runs on the host while the device computes
  the forward (kernel launches are asynchronous; the mask depends only on the
  tokens already chosen), as a serving loop would; total step time only;
* llguidance (when importable): its batched fill
  (``llguidance.numpy.fill_next_token_bitmask_par``, as in bench_batch.py) timed
  over the same steps: structgen's tokens replayed through LLMatchers.

Tokens (``--tokens``): ``greedy`` takes the argmax under the mask, with EOS held
back while the document can go on (as ``min_new_tokens`` would; a random model
otherwise ends many documents at ``{}``); ``instance`` replays each schema's valid
instance, then EOS (bench_batch.py's masks; the argmax is computed and dropped).
Finished sequences: a matcher that has accepted EOS leaves the fill; its row
keeps decoding (a static batch) under a fixed EOS-only mask.  Every constraint
run uses a fresh ``GrammarCompiler``, so no mask is cached from an earlier run.

    python benchmarks/bench_gpu_serving.py --out out/ [--tokens instance]   # on a GPU
    python benchmarks/bench_gpu_serving.py --device cpu --tiny --steps 4 --batches 1,8   # smoke
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PROMPT = "Return one JSON object that follows the schema."

# SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json), with the vocabulary replaced
SMOLLM2_135M = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                    num_key_value_heads=3, head_dim=64, tie_word_embeddings=True, rms_norm_eps=1e-5,
                    max_position_embeddings=8192, rope_theta=100000.0, initializer_range=0.02)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, tie_word_embeddings=True, max_position_embeddings=2048)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build_model(vocab_size: int, eos_id: int, bos_id: int, *, tiny: bool, device: str, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id,
                      **(TINY if tiny else SMOLLM2_135M))  # transformers 5 turns rope_theta into rope_parameters
    torch.manual_seed(seed)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with torch.device(device):  # random init of ~180M parameters is seconds on the CPU, instant on the GPU
        model = LlamaForCausalLM(cfg)
    model = model.to(dtype).eval()
    return model, cfg


def load_schemas(data: Path, n: int, seed: int) -> list[tuple[str, dict, object]]:
    """``(name, schema, instance)`` in bench_batch.py's order: from ``order.json`` when the
    folder is the device copy (.devcheck/data), else ``pick_schemas`` over the full set."""
    order = data / "order.json"
    if order.exists():
        out = []
        for name in json.loads(order.read_text())["names"][:n]:
            doc = json.loads((data / "jsonschemabench" / "maskbench" / "data" / f"{name}.json").read_text())
            valid = [t["data"] for t in doc.get("tests") or [] if t.get("valid")]
            out.append((name, doc["schema"], valid[0] if valid else None))
        return out
    from benchmarks.bench_batch import pick_schemas

    return pick_schemas(data, n, seed)


def stats_ms(xs_ns: list[int]) -> dict:
    a = np.asarray(xs_ns or [0], dtype=np.float64) / 1e6
    return {"mean": float(a.mean()), "p50": float(np.median(a)), "p99": float(np.percentile(a, 99))}


class Decoder:
    """KV-cached batched greedy decoding of one model from one prompt."""

    def __init__(self, model, prompt_ids: list[int], device: str):
        from structgen.integrations.kvcache import forward_keywords

        self.model, self.prompt, self.device = model, prompt_ids, device
        self.cache_kw, self.keep_kw = forward_keywords(model)

    def _forward(self, ids, cache):
        kw = {self.cache_kw: cache, "use_cache": True}
        if self.keep_kw:
            kw[self.keep_kw] = 1
        return self.model(input_ids=ids, **kw).logits[:, -1, :]

    def prefill(self, batch: int):
        """The cache after all prompt tokens but the last, and the last as the first step's
        input: every timed step is then the same one-token forward."""
        import torch

        from structgen.integrations.kvcache import new_cache

        cache = new_cache(self.model)
        ids = torch.tensor([self.prompt] * batch, device=self.device)
        with torch.inference_mode():
            self._forward(ids[:, :-1], cache)
        return cache, ids[:, -1]

    def step(self, tokens, cache):
        import torch

        with torch.inference_mode():
            return self._forward(tokens[:, None], cache)


def run_unconstrained(dec: Decoder, batch: int, steps: int) -> dict:
    import torch

    dev = dec.device
    cache, nxt = dec.prefill(batch)
    times = []
    for _ in range(steps):
        sync(dev)
        t0 = time.perf_counter_ns()
        logits = dec.step(nxt, cache)
        with torch.inference_mode():
            nxt = logits.argmax(-1)
        nxt.tolist()  # the host needs the tokens (detokenise, stop checks), as in the constrained loop
        times.append(time.perf_counter_ns() - t0)
    return {"step": stats_ms(times)}


def run_structgen(dec: Decoder, vocab, schemas, steps: int, threads: int, overlap: bool,
                  forced: list[list[int]] | None = None) -> tuple[dict, list]:
    """One constrained decode; per-part times (or the whole step when ``overlap``) and the
    tokens taken (``trace``: per step, the rows in the fill and every row's token).

    Tokens: greedy under the mask, EOS held back while the document can go on (as
    ``min_new_tokens`` does: a random model would otherwise end most documents at
    ``{}``); or, with ``forced``, each row's given tokens (a valid instance, then EOS:
    the masks of bench_batch.py's replay), the argmax still computed and discarded."""
    import torch

    from structgen import GrammarCompiler, apply_token_bitmask_inplace
    from structgen.mask.batch import fill_next_token_bitmask_batch
    from structgen.mask.bitmask import token_bitset

    dev = dec.device
    compiler = GrammarCompiler(vocab)  # fresh walk cache and constraints: cold masks, as for new requests
    matchers = [compiler.compile_json_schema(s, whitespace="flexible").matcher() for _, s, _ in schemas]
    b = len(matchers)
    gc.collect()  # untimed: a collection due after the compiles lands here, not in a step
    host = torch.full((b, vocab.num_words), -1, dtype=torch.int32)
    if dev.startswith("cuda"):
        host = host.pin_memory()  # the host-to-device copy can then run asynchronously
    bm_dev = host.to(dev)
    eos_words = token_bitset(vocab.num_words, vocab.eos_ids).view(np.int32)
    eos_only = torch.from_numpy(eos_words)
    eos = min(vocab.eos_ids)
    no_eos = torch.from_numpy(~eos_words)
    done = [False] * b
    hold_eos = [forced is None] * b  # rows whose EOS bits are cleared after the fill
    rejected = 0
    parts = {k: [] for k in ("forward", "fill", "mask", "argmax", "accept", "step")}
    trace = []
    cache, nxt_dev = dec.prefill(b)
    for step in range(steps):
        live = [i for i in range(b) if not done[i]]
        sync(dev)
        t0 = time.perf_counter_ns()
        logits = dec.step(nxt_dev, cache)  # launched asynchronously on CUDA
        if not overlap:
            sync(dev)
        t1 = time.perf_counter_ns()
        if live:
            fill_next_token_bitmask_batch([matchers[i] for i in live], host, threads=threads, indices=live)
        t2 = time.perf_counter_ns()
        held = [i for i in live if hold_eos[i]]
        if held:
            host[held] &= no_eos
        bm_dev.copy_(host, non_blocking=True)
        with torch.inference_mode():
            apply_token_bitmask_inplace(logits, bm_dev)
        if not overlap:
            sync(dev)
        t3 = time.perf_counter_ns()
        with torch.inference_mode():
            nxt_dev = logits.argmax(-1)
        nxt = nxt_dev.tolist()
        t4 = time.perf_counter_ns()
        if forced is not None:  # the given tokens instead of the argmax (EOS once a row is done)
            nxt = [f[step] if not done[i] and step < len(f) else eos for i, f in enumerate(forced)]
            nxt_dev = torch.tensor(nxt, device=dev)
        for i in live:
            m = matchers[i]
            if not m.accept_token(nxt[i]):  # greedy: only if every logit of the row was -inf
                rejected += 1
                done[i] = True
            elif m.is_terminated():  # EOS accepted: out of the fill, EOS from now on
                done[i] = True
            elif hold_eos[i] and m.must_terminate():
                hold_eos[i] = False  # nothing but EOS may follow: let it through
            if done[i]:
                host[i] = eos_only
        t5 = time.perf_counter_ns()
        trace.append((live, nxt))
        if overlap:
            parts["step"].append(t5 - t0)
        else:
            for k, a, z in (("forward", t0, t1), ("fill", t1, t2), ("mask", t2, t3), ("argmax", t3, t4),
                            ("accept", t4, t5), ("step", t0, t5)):
                parts[k].append(z - a)
    res = {k: stats_ms(v) for k, v in parts.items() if v}
    res.update(sequences=b, finished=sum(m.is_terminated() for m in matchers), rejected=rejected,
               live_rows_per_step=float(np.mean([len(lv) for lv, _ in trace])))
    return res, trace


def run_llguidance(eng, schemas, trace, threads: int) -> dict:
    """llguidance's batched fill over structgen's steps: same live rows, same tokens."""
    import llguidance
    import llguidance.numpy

    from structgen.bench.engines import CompileFailure, bit

    ms = []
    for _, s, _ in schemas:
        try:
            ms.append(eng.compile(s))
        except CompileFailure:
            ms.append(None)
    gc.collect()
    executor = llguidance.LLExecutor(threads)
    bm = np.full((len(ms), eng.bitmask.shape[1]), -1, np.int32)
    off = [m is None for m in ms]  # not compiled, or diverged from structgen's tokens
    disagree = 0
    times = []
    for live, toks in trace:
        rows = [i for i in live if not off[i]]
        if not rows:
            continue
        t0 = time.perf_counter_ns()
        llguidance.numpy.fill_next_token_bitmask_par(executor, [(ms[i], i) for i in rows], bm)
        times.append(time.perf_counter_ns() - t0)
        for i in rows:
            if not bit(bm[i], toks[i]):
                disagree += 1  # llguidance would not allow structgen's token here
            if not ms[i].consume_token(toks[i]) or ms[i].is_error():
                off[i] = True
    compiled = sum(m is not None for m in ms)
    return {"fill": stats_ms(times), "compiled": compiled, "diverged": sum(off) - (len(ms) - compiled),
            "disagreements": disagree, "steps": len(times)}


def versions() -> dict:
    from structgen.bench.env import version

    out = {"python": platform.python_version()}
    out.update({p: version(p) for p in ("torch", "transformers", "tokenizers", "numpy", "numba", "llguidance")})
    import structgen
    import torch

    out["structgen"] = structgen.__version__
    out["cuda"] = torch.version.cuda
    return out


def markdown(result: dict) -> str:
    lines = [f"# GPU serving step: {result['model']}", "",
             f"machine: {result['machine']}  ", f"versions: {json.dumps(result['versions'])}  ",
             f"steps: {result['steps']}, schemas: JSONSchemaBench MaskBench (bench_batch.py's pick), "
             f"whitespace flexible, tokens: "
             + ("greedy under the mask, EOS held back while the document can go on" if result["tokens"] == "greedy"
                else "each schema's valid instance, then EOS (argmax computed, not used)")
             + ("; trie walks re-jitted to release the GIL" if result.get("walks_release_gil") else ""), "",
             "Times in ms per decoding step (mean; fill also p50/p99). ratio: step time / the faster unconstrained run "
             "(measured before and after the constrained ones). "
             "llg fill: llguidance's batched fill over the same steps and tokens; fill ratio: structgen / llguidance.",
             "",
             "| B | run | forward | fill mean | fill p50 | fill p99 | mask | argmax | accept | step | ratio "
             "| llg fill mean | llg p50 | llg p99 | fill ratio |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def f(x):
        return "–" if x is None else f"{x:.3f}"

    for b, r in result["batches"].items():
        before = r["unconstrained"]["step"]["mean"]
        after = r.get("unconstrained_after", r["unconstrained"])["step"]["mean"]
        base = min(before, after)  # the ratio is against the faster of the two
        lines.append(f"| {b} | unconstrained (before) | | | | | | | | {f(before)} | {before / base:.2f} | | | | |")
        lines.append(f"| {b} | unconstrained (after) | | | | | | | | {f(after)} | {after / base:.2f} | | | | |")
        for run in r["structgen"]:
            g = lambda k, s="mean": run.get(k, {}).get(s)  # noqa: E731
            llg = r.get("llguidance", {}).get(str(run["threads"]))
            lf = llg["fill"] if llg else {}
            ratio = f"{g('fill') / lf['mean']:.2f}×" if llg and lf.get("mean") and g("fill") is not None else "–"
            name = f"structgen T={run['threads']}" + (" overlapped" if run["overlap"] else "")
            lines.append(f"| {b} | {name} | {f(g('forward'))} | {f(g('fill'))} | {f(g('fill', 'p50'))} | "
                         f"{f(g('fill', 'p99'))} | {f(g('mask'))} | {f(g('argmax'))} | {f(g('accept'))} | "
                         f"{f(g('step'))} | {g('step') / base:.2f} | "
                         f"{f(lf.get('mean')) if llg and not run['overlap'] else ''} | "
                         f"{f(lf.get('p50')) if llg and not run['overlap'] else ''} | "
                         f"{f(lf.get('p99')) if llg and not run['overlap'] else ''} | "
                         f"{ratio if not run['overlap'] else ''} |")
    lines.append("")
    for b, r in result["batches"].items():
        lines.append(f"B={b}: {r['sequences']} sequences ({', '.join(r['schemas'][:4])}"
                     f"{', ...' if len(r['schemas']) > 4 else ''}); skipped (structgen compile failure): "
                     f"{r['skipped'] or 'none'}; finished by EOS within the steps: {r['finished']}; "
                     f"mean live rows/step {r['live_rows_per_step']:.1f}; "
                     f"rows whose token the mask refused: {r['rejected']}; "
                     f"same tokens in every structgen run: {r['same_tokens']}"
                     + (f"; llguidance compiled {r['llg_compiled']}, diverged {r['llg_diverged']}, "
                        f"disallowed structgen's token {r['llg_disagreements']}×" if "llg_compiled" in r else ""))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    ap.add_argument("--tiny", action="store_true", help="2 layers, hidden 64 (smoke runs)")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--threads", default="1,2,4,8", help="structgen / llguidance fill threads, one run each")
    ap.add_argument("--no-overlap", action="store_true", help="skip the overlapped runs")
    ap.add_argument("--tokens", choices=("greedy", "instance"), default="greedy",
                    help="greedy under the mask (EOS held back while the document can go on), or each "
                         "schema's valid instance replayed (bench_batch.py's masks)")
    ap.add_argument("--no-llguidance", action="store_true")
    ap.add_argument("--walks-release-gil", action="store_true",
                    help="re-jit the trie-walk kernel to release the GIL (its behaviour before they kept it), to "
                         "compare thread scaling on one machine")
    ap.add_argument("--tokenizer", default="deepseek")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="default: .devcheck/data if present, else the shared data dir")
    ap.add_argument("--out", default=None, help="folder for gpu_serving_<tokens>.json and .md")
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from structgen import GrammarCompiler, Vocabulary
    from structgen.bench.engines import WARMUP_SCHEMA, load_tokenizer, make_engine
    from structgen.errors import StructgenError

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(1)  # torch's spinning workers would fight the fill threads for the cores
    if args.data is None:
        local = REPO / ".devcheck" / "data"
        if local.exists():
            args.data = str(local)
        else:
            from structgen.bench.env import default_data_dir

            args.data = str(default_data_dir())
    if args.walks_release_gil:
        import numba

        from structgen.mask.kernels import numba_cpu

        numba_cpu.walk_grouped = numba.njit(cache=False, nogil=True, boundscheck=False)(numba_cpu.walk_grouped.py_func)
    batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    use_llg = not args.no_llguidance and importlib.util.find_spec("llguidance") is not None

    t_setup = time.perf_counter()
    tok = load_tokenizer(args.tokenizer)
    vocab = Vocabulary.from_tokenizer(tok, vocab_size=len(tok))
    vocab.trie
    eos = sorted(vocab.eos_ids)
    model, cfg = build_model(len(tok), eos[0], tok.bos_token_id if tok.bos_token_id is not None else eos[0],
                             tiny=args.tiny, device=device, seed=args.seed)
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    machine = f"{gpu + ', ' if gpu else ''}{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
    params = sum(p.numel() for p in model.parameters())
    model_name = (f"random Llama, {'tiny' if args.tiny else 'SmolLM2-135M architecture'} "
                  f"({cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, {params / 1e6:.0f}M params), "
                  f"vocab {len(tok):,} ({args.tokenizer}), {next(model.parameters()).dtype} on {device}")
    print(f"machine: {machine}\nversions: {versions()}\nmodel: {model_name}", flush=True)

    # schemas: disjoint per batch size, skipping those structgen does not compile (a scratch compiler)
    pool = load_schemas(Path(args.data), sum(batches) + 24, args.seed)  # spares: compile failures, warm-up
    scratch = GrammarCompiler(vocab)
    chosen, skipped, k = {}, {}, 0
    for b in batches:
        chosen[b], skipped[b] = [], []
        while len(chosen[b]) < b and k < len(pool):
            name, schema, inst = pool[k]
            k += 1
            try:
                scratch.compile_json_schema(schema, whitespace="flexible")
                chosen[b].append((name, schema, inst))
            except (StructgenError, RecursionError) as e:
                skipped[b].append(f"{name} ({type(e).__name__})")
        if len(chosen[b]) < b:
            print(f"B={b}: only {len(chosen[b])} schemas available", flush=True)
    del scratch

    dec = Decoder(model, list(tok.encode(PROMPT, add_special_tokens=False)), device)
    llg_eng = make_engine("llguidance", tok) if use_llg else None
    # warm-up, untimed: numba JIT (lazily compiled kernels would otherwise land in the first timed
    # fills) and the vocabulary's slices, on schemas outside every batch; cuBLAS/attention kernels
    # for each batch shape
    warm = [("warmup", WARMUP_SCHEMA, None)] + pool[k:k + 7]
    for ok in range(len(warm), 0, -1):  # a spare schema may not compile: drop from the end
        try:
            _, tr = run_structgen(dec, vocab, warm[:ok], min(args.steps, 16), 2, False)
            warm = warm[:ok]
            break
        except (StructgenError, RecursionError):
            continue
    if llg_eng is not None:
        run_llguidance(llg_eng, warm, tr, 2)
    for b in batches:
        run_unconstrained(dec, max(1, len(chosen[b])), 3)
    print(f"setup + warm-up: {time.perf_counter() - t_setup:.1f} s", flush=True)

    result = {"machine": machine, "gpu": gpu, "cpus": os.cpu_count(), "versions": versions(), "model": model_name,
              "device": device, "steps": args.steps, "tokens": args.tokens, "threads": threads, "batches": {},
              "walks_release_gil": args.walks_release_gil}
    for b in batches:
        schemas = chosen[b]
        if not schemas:
            continue
        n = len(schemas)
        r = {"sequences": n, "schemas": [s[0] for s in schemas], "skipped": skipped[b],
             "unconstrained": run_unconstrained(dec, n, args.steps), "structgen": []}
        print(f"B={n}: unconstrained step {r['unconstrained']['step']['mean']:.3f} ms", flush=True)
        forced = None
        if args.tokens == "instance":
            forced = [list(tok.encode(json.dumps(inst), add_special_tokens=False)) + [eos[0]]
                      for _, _, inst in schemas]
        traces = []
        for t in threads:
            for overlap in ([False] if args.no_overlap else [False, True]):
                res, trace = run_structgen(dec, vocab, schemas, args.steps, t, overlap, forced)
                res.update(threads=t, overlap=overlap)
                r["structgen"].append(res)
                traces.append(trace)
                fill = res.get("fill", {}).get("mean")
                print(f"B={n}: structgen T={t}{' overlapped' if overlap else ''}: step {res['step']['mean']:.3f} ms"
                      + (f", fill {fill:.3f} ms (p99 {res['fill']['p99']:.3f})" if fill is not None else ""),
                      flush=True)
        same = all([toks for _, toks in tr] == [toks for _, toks in traces[0]] for tr in traces)
        # once more after the constrained runs: the GPU's clocks and the host's state then
        # match theirs (the first measurement of a block can be several times slower)
        r["unconstrained_after"] = run_unconstrained(dec, n, args.steps)
        print(f"B={n}: unconstrained step (after) {r['unconstrained_after']['step']['mean']:.3f} ms", flush=True)
        first = r["structgen"][0]
        r.update(finished=first["finished"], live_rows_per_step=first["live_rows_per_step"], same_tokens=same,
                 rejected=first["rejected"])
        if llg_eng is not None:
            r["llguidance"] = {}
            for t in threads:
                lr = run_llguidance(llg_eng, schemas, traces[0], t)
                r["llguidance"][str(t)] = lr
                print(f"B={n}: llguidance T={t}: fill {lr['fill']['mean']:.3f} ms (p99 {lr['fill']['p99']:.3f}); "
                      f"compiled {lr['compiled']}, diverged {lr['diverged']}", flush=True)
            last = r["llguidance"][str(threads[0])]
            r.update(llg_compiled=last["compiled"], llg_diverged=last["diverged"],
                     llg_disagreements=last["disagreements"])
        result["batches"][str(b)] = r

    md = markdown(result)
    print("\n" + md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / (f"gpu_serving_{args.tokens}" + ("_walks_nogil" if args.walks_release_gil else ""))
        stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
        stem.with_suffix(".md").write_text(md)
        print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
