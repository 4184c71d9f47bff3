"""Samplers side by side on SmolLM2 (CPU): masked decoding, AWRS, SMC (AWRS
proposals), ASAp, on a regex task and JSONSchemaBench schemas (``--per-subset``
each from Github_trivial/easy/medium by default).

Per sampler and task:

* constraint checks per token: AWRS (alone and inside SMC) counts each
  ``check_token`` and a full-mask fallback as one; masked decoding and ASAp
  compute one full mask per token (= 1).  Mean and p99 over all draws.
* ``step_ms``: time inside the token choice (masked: mask + draw; AWRS: the
  checks and the draw), p50: the cost of one full mask against AWRS's checks.
* ``overhead_ms``: sampler overhead per step excluding the forward, measured
  from one forward's end to the next forward's start (the last step: to the
  output's end); p50 and p99.  For SMC/ASAp one step serves every live row.
* ``ms_per_token``: wall time over the tokens delivered (EOS included; SMC:
  the tokens of the particle returned, as ``generate`` returns one draw from
  the weighted particles, not of all particles), and ``ms_per_sample``.
* validity of the outputs (finished and matching the regex / the schema),
  ``loglik``: mean log P(output, then EOS | prompt) under the model at
  temperature 1, over finished outputs, scored after the timed run.

Not a timed test: run it by hand, e.g.

    python benchmarks/bench_samplers.py --samples 2 --max-tokens 48

It prints a JSON line per row and a markdown table, and writes
``benchmarks/results/samplers-<time>.json`` with the machine and versions."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from structgen.bench.env import default_data_dir, environment, print_header, results_dir  # noqa: E402
from structgen.bench.jsonschemabench import check_output, list_schemas, messages_for, select  # noqa: E402
from structgen.sampling import AWRS, ASAp, masked_token, sample_tokens, smc  # noqa: E402

REGEX_TASK = ("When did Apollo 11 land on the moon? Answer with the date only (YYYY-MM-DD).",
              r"\d{4}-\d{2}-\d{2}")
SAMPLERS = ("masked", "awrs", "smc", "asap")


class TimedLM:
    """Wraps a BatchLM: time spent in ``logprobs`` (the forward) and when each call ran."""

    def __init__(self, lm):
        self.lm, self.vocab_size, self.eos_ids = lm, lm.vocab_size, lm.eos_ids
        self.forward_s = 0.0
        self.step_marks: list[tuple[float, float]] = []  # (start, end) of each forward

    def reset(self):
        self.lm.reset()

    def reorder(self, idx):
        self.lm.reorder(idx)

    def logprobs(self, prefixes):
        t = time.perf_counter()
        out = self.lm.logprobs(prefixes)
        end = time.perf_counter()
        self.forward_s += end - t
        self.step_marks.append((t, end))
        return out


class CountingAWRS(AWRS):
    """AWRS that keeps the checks of every draw (for the mean and the p99) and its time."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.per_draw: list[int] = []
        self.draw_s: list[float] = []

    def sample(self, logprobs, matcher, rng):
        t = time.perf_counter()
        d = super().sample(logprobs, matcher, rng)
        self.draw_s.append(time.perf_counter() - t)
        self.per_draw.append(d.n_checks)
        return d


def gaps_between_forwards(marks: list[tuple[float, float]], end: float) -> list[float]:
    """Per step: from one forward's end to the next forward's start (the last one: to ``end``)."""
    starts = [m[0] for m in marks[1:]] + [end]
    return [b - a[1] for a, b in zip(marks, starts)]


def pct(xs, q):
    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def rnd(x, k=2):
    return None if x is None or not np.isfinite(x) else round(float(x), k)


def log_likelihood(model, prompt: list[int], tokens: list[int], eos_ids) -> float:
    """log P(tokens, then any EOS | prompt) under ``model`` at temperature 1, one forward."""
    import torch

    ids = torch.tensor([list(prompt) + list(tokens)])
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=ids).logits[0, len(prompt) - 1:].double(), -1)
    body = float(lp[torch.arange(len(tokens)), torch.tensor(tokens, dtype=torch.long)].sum()) if tokens else 0.0
    return body + float(torch.logsumexp(lp[len(tokens), sorted(eos_ids)], 0))


def run_sampler(sampler: str, model, compiled, prompt: list[int], args, rng) -> dict:
    """Timed samples of one sampler on one task: outputs ``[(tokens, finished)]`` and the raw measurements."""
    from structgen.integrations.lm import TransformersLM

    lm = TimedLM(TransformersLM(model))
    awrs = CountingAWRS()
    outputs: list[tuple[list[int], bool]] = []
    over: list[float] = []
    step_s: list[float] = []
    extra: dict = {}
    t0 = time.perf_counter()
    if sampler in ("masked", "awrs"):
        def step(lp, m):
            if sampler == "awrs":
                d = awrs.sample(lp, m, rng)
                return None if d.token < 0 else d.token
            t = time.perf_counter()
            tok = masked_token(lp, m, rng=rng)
            step_s.append(time.perf_counter() - t)
            return tok

        for _ in range(args.samples):
            k = len(lm.step_marks)
            toks, done = sample_tokens(lm, compiled.matcher(), rng=rng, max_tokens=args.max_tokens,
                                       prompt=prompt, step=step)
            over += gaps_between_forwards(lm.step_marks[k:], time.perf_counter())
            outputs.append((toks, done))
    elif sampler == "smc":
        log_ml, particle_tokens, resamples = [], 0, 0
        for _ in range(args.samples):
            k = len(lm.step_marks)
            res = smc(lm, compiled.matcher(), n_particles=args.particles, rng=rng, max_tokens=args.max_tokens,
                      prompt=prompt, token_sampler=awrs)
            # one draw from the weighted particles, as generate(sampler="smc") returns
            lw = np.asarray(res.log_weights, dtype=np.float64)
            if np.isfinite(lw).any():
                w = np.exp(lw - lw.max())
                pick = int(rng.choice(len(w), p=w / w.sum()))
                outputs.append((list(res.particles[pick]), bool(res.finished[pick])))
            else:
                outputs.append(([], False))
            over += gaps_between_forwards(lm.step_marks[k:], time.perf_counter())
            log_ml.append(res.log_ml)
            particle_tokens += sum(len(p) + f for p, f in zip(res.particles, res.finished))
            resamples += res.n_resamples
        extra = {"log_ml_mean": rnd(np.mean(log_ml), 3), "particle_tokens": particle_tokens,
                 "resamples": resamples}
    elif sampler == "asap":
        asap = ASAp(max_tokens=args.max_tokens, batch_size=4)
        k = len(lm.step_marks)
        for s in asap.sample(lm, compiled.matcher, args.samples, rng, prompt=prompt):
            outputs.append((list(s.tokens), bool(s.finished)))
        over += gaps_between_forwards(lm.step_marks[k:], time.perf_counter())
        extra = {"trie_nodes": asap.num_nodes}
    else:
        raise SystemExit(f"unknown sampler {sampler!r} (one of {SAMPLERS})")
    wall = time.perf_counter() - t0
    if sampler in ("awrs", "smc"):
        checks, step_s = awrs.per_draw, awrs.draw_s
    else:
        checks = [1] * sum(len(t) + d for t, d in outputs)  # one full mask per token
    return {"outputs": outputs, "wall": wall, "forward_s": lm.forward_s, "steps": len(lm.step_marks),
            "over": over, "step_s": step_s, "checks": checks, "extra": extra}


def load_tasks(args, tok, vocab):
    import structgen

    def chat(text):
        return tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                       tokenize=False)

    tasks = [("regex", chat(REGEX_TASK[0]), structgen.compile_regex(REGEX_TASK[1], vocab),
              lambda s: re.fullmatch(REGEX_TASK[1], s) is not None)]
    subsets = [s for s in args.subsets.split(",") if s]
    entries = select(list_schemas(Path(args.data)), subsets, args.per_subset, args.seed) if subsets else []
    for entry in entries:
        with open(entry["path"], encoding="utf-8") as f:
            schema = json.load(f)["schema"]
        try:
            compiled = structgen.compile_json_schema(schema, vocab)
        except structgen.Unsupported:
            compiled = structgen.compile_json_schema(schema, vocab, lenient=True)
        prompt = tok.apply_chat_template(messages_for(schema), add_generation_prompt=True, tokenize=False)
        tasks.append((f"{entry['subset']}/{entry['id']}", prompt, compiled,
                      lambda s, sc=schema: check_output(s, sc)["schema_ok"]))
    return tasks


def table(rows: list[dict]) -> str:
    cols = ["task", "sampler", "valid", "checks_mean", "checks_p99", "step_ms_p50", "overhead_ms_p50",
            "overhead_ms_p99", "ms_per_token", "ms_per_sample", "loglik_mean"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2, help="samples per sampler and task")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--particles", type=int, default=5)
    ap.add_argument("--subsets", default="Github_trivial,Github_easy,Github_medium",
                    help="JSONSchemaBench subsets ('' for the regex task alone)")
    ap.add_argument("--per-subset", type=int, default=2, help="schemas per subset")
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--tasks", default="", help="only tasks whose name contains one of these (comma-separated)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steady numbers on a shared box)")
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--out", default=None, help="JSON report path (default benchmarks/results/samplers-<time>.json)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)

    import torch

    import structgen
    from structgen.integrations.transformers import vocabulary_for

    torch.set_num_threads(args.threads)
    env = environment()
    print_header("bench_samplers: masked / AWRS / SMC / ASAp on SmolLM2 (CPU)", env,
                 [f"samples={args.samples} max_tokens={args.max_tokens} particles={args.particles} "
                  f"per_subset={args.per_subset} torch_threads={args.threads}"])
    model, tok = structgen.load_default_model()
    vocab = vocabulary_for(tok, model.config.vocab_size)
    eos_ids = frozenset(vocab.eos_ids) | {int(model.config.eos_token_id)}
    tasks = load_tasks(args, tok, vocab)
    if args.tasks:
        keep = args.tasks.split(",")
        tasks = [t for t in tasks if any(k in t[0] for k in keep)]

    rows = []
    for name, prompt_text, compiled, valid in tasks:
        prompt = tok.encode(prompt_text, add_special_tokens=False)
        for sampler in args.samplers.split(","):
            rng = np.random.default_rng(args.seed)
            r = run_sampler(sampler, model, compiled, prompt, args, rng)
            outs = r["outputs"]
            oks = [done and valid(tok.decode(t)) for t, done in outs]
            lls = [log_likelihood(model, prompt, t, eos_ids) for t, done in outs if done]
            ntok = sum(len(t) + done for t, done in outs)
            row = {"task": name, "sampler": sampler, "valid": f"{sum(oks)}/{len(oks)}",
                   "checks_mean": rnd(np.mean(r["checks"])) if r["checks"] else None,
                   "checks_p99": rnd(pct(r["checks"], 99), 1) if r["checks"] else None,
                   "step_ms_p50": rnd(pct(r["step_s"], 50) * 1e3, 3),
                   "overhead_ms_p50": rnd(pct(r["over"], 50) * 1e3, 3),
                   "overhead_ms_p99": rnd(pct(r["over"], 99) * 1e3, 3),
                   "ms_per_token": rnd(r["wall"] / max(1, ntok) * 1e3, 1),
                   "ms_per_sample": rnd(r["wall"] / max(1, len(outs)) * 1e3, 1),
                   "forward_share": rnd(r["forward_s"] / r["wall"]), "forwards": r["steps"],
                   "wall_s": rnd(r["wall"], 1), "tokens": ntok,
                   "loglik_mean": rnd(np.mean(lls)) if lls else None, **r["extra"],
                   "outputs": [tok.decode(t) for t, _ in outs]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(table(rows))
    if not args.no_save:
        out = Path(args.out) if args.out else results_dir() / f"samplers-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"command": " ".join(["python", "benchmarks/bench_samplers.py", *sys.argv[1:]]),
                                   "args": vars(args), "environment": env, "rows": rows}, indent=1, default=str))
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
