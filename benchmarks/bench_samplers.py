"""Samplers side by side on SmolLM2 (CPU): masked decoding, AWRS, SMC (AWRS
proposals), ASAp, on a regex task and JSONSchemaBench schemas (one each from
Github_trivial/easy/medium by default).

Per sampler and task: constraint checks per token (AWRS: mean and p99; one full
mask counts as one check), sampler overhead per step excluding the forward (p50,
p99), time per token, validity of the outputs, mean log-likelihood of the outputs
under the model.  Not a timed test: run it by hand, e.g.

    python benchmarks/bench_samplers.py --samples 2 --max-tokens 48
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from structgen.bench.env import default_data_dir, environment, print_header  # noqa: E402
from structgen.bench.jsonschemabench import check_output, list_schemas, messages_for, select  # noqa: E402
from structgen.sampling import AWRS, ASAp, masked_token, sample_tokens, smc  # noqa: E402

REGEX_TASK = ("When did Apollo 11 land on the moon? Answer with the date only (YYYY-MM-DD).",
              r"\d{4}-\d{2}-\d{2}")


class TimedLM:
    """Wraps a BatchLM: time spent in ``logprobs`` (the forward) and the calls."""

    def __init__(self, lm):
        self.lm, self.vocab_size, self.eos_ids = lm, lm.vocab_size, lm.eos_ids
        self.forward_s = 0.0
        self.calls = 0
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
        self.calls += 1
        self.step_marks.append((t, end))
        return out


def pct(xs, q):
    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def run_single(lm: TimedLM, compiled, prompt, *, step, rng, max_tokens):
    """One sequence with a per-token ``step``; returns tokens, finished, log-lik, per-step overheads."""
    over: list[float] = []
    ll = [0.0]

    def timed(lp, m):
        t = time.perf_counter()
        tok = step(lp, m)
        over.append(time.perf_counter() - t)
        if tok is not None and tok >= 0:
            ll[0] += float(lp[tok])
        return tok if tok is None or tok >= 0 else None

    toks, done = sample_tokens(lm, compiled.matcher(), rng=rng, max_tokens=max_tokens, prompt=prompt, step=timed)
    return toks, done, ll[0], over


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2, help="samples per sampler and task")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--particles", type=int, default=5)
    ap.add_argument("--subsets", default="Github_trivial,Github_easy,Github_medium")
    ap.add_argument("--samplers", default="masked,awrs,smc,asap")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    import structgen
    from structgen.integrations.lm import TransformersLM
    from structgen.integrations.transformers import vocabulary_for

    torch.set_num_threads(max(1, torch.get_num_threads()))
    env = environment()
    print_header("bench_samplers: masked / AWRS / SMC / ASAp on SmolLM2 (CPU)", env,
                 [f"samples={args.samples} max_tokens={args.max_tokens} particles={args.particles}"])
    model, tok = structgen.load_default_model()
    vocab = vocabulary_for(tok, model.config.vocab_size)

    def chat(text):
        return tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                       tokenize=False)

    tasks = [("regex", chat(REGEX_TASK[0]), structgen.compile_regex(REGEX_TASK[1], vocab),
              lambda s: re.fullmatch(REGEX_TASK[1], s) is not None)]
    for entry in select(list_schemas(default_data_dir()), args.subsets.split(","), 1, args.seed):
        with open(entry["path"], encoding="utf-8") as f:
            schema = json.load(f)["schema"]
        try:
            compiled = structgen.compile_json_schema(schema, vocab)
        except structgen.Unsupported:
            compiled = structgen.compile_json_schema(schema, vocab, lenient=True)
        prompt = tok.apply_chat_template(messages_for(schema), add_generation_prompt=True, tokenize=False)
        tasks.append((f"{entry['subset']}/{entry['id']}", prompt, compiled,
                      lambda s, sc=schema: check_output(s, sc)["schema_ok"]))

    rows = []
    for name, prompt_text, compiled, valid in tasks:
        prompt = tok.encode(prompt_text, add_special_tokens=False)
        for sampler in args.samplers.split(","):
            rng = np.random.default_rng(args.seed)
            lm = TimedLM(TransformersLM(model))
            checks: list[int] = []
            over: list[float] = []
            oks, lls, ntok = [], [], 0
            t0 = time.perf_counter()
            if sampler in ("masked", "awrs"):
                awrs = AWRS()

                def step(lp, m):
                    if sampler == "masked":
                        checks.append(1)  # one full mask
                        return masked_token(lp, m, rng=rng)
                    d = awrs.sample(lp, m, rng)
                    checks.append(d.n_checks)
                    return d.token

                for _ in range(args.samples):
                    toks, done, ll, ov = run_single(lm, compiled, prompt, step=step, rng=rng,
                                                    max_tokens=args.max_tokens)
                    over += ov
                    ntok += len(toks) + done
                    oks.append(done and valid(tok.decode(toks)))
                    lls.append(ll)
            elif sampler == "smc":
                awrs = AWRS()
                for _ in range(args.samples):
                    marks0 = len(lm.step_marks)
                    res = smc(lm, compiled.matcher(), n_particles=args.particles, rng=rng,
                              max_tokens=args.max_tokens, prompt=prompt, token_sampler=awrs)
                    marks = lm.step_marks[marks0:] + [(time.perf_counter(), 0.0)]
                    # overhead between one forward's end and the next one's start (all particles)
                    over += [b[0] - a[1] for a, b in zip(marks, marks[1:])]
                    post = res.posterior()
                    best = max(post, key=post.get) if post else None
                    ntok += sum(len(p) + f for p, f in zip(res.particles, res.finished))
                    oks.append(best is not None and valid(tok.decode(list(best))))
                    lls.append(float(np.mean([TransformersLMLogLik.of(model, prompt, list(best))]))
                               if best is not None else float("nan"))
                checks.append(awrs.total_checks / max(1, awrs.total_draws))
            elif sampler == "asap":
                asap = ASAp(max_tokens=args.max_tokens, batch_size=4)
                for _ in range(max(1, args.samples // 4) or 1):
                    marks0 = len(lm.step_marks)
                    samples = asap.sample(lm, compiled.matcher, 4, rng, prompt=prompt)
                    marks = lm.step_marks[marks0:] + [(time.perf_counter(), 0.0)]
                    over += [b[0] - a[1] for a, b in zip(marks, marks[1:])]
                    for s in samples:
                        ntok += len(s.tokens) + s.finished
                        oks.append(s.finished and valid(tok.decode(s.tokens)))
                checks.append(1)
            wall = time.perf_counter() - t0
            row = {"task": name, "sampler": sampler, "valid": f"{sum(oks)}/{len(oks)}",
                   "checks_mean": round(float(np.mean(checks)), 2) if checks else None,
                   "checks_p99": round(pct(checks, 99), 1) if sampler == "awrs" else None,
                   "overhead_ms_p50": round(pct(over, 50) * 1e3, 3), "overhead_ms_p99": round(pct(over, 99) * 1e3, 3),
                   "ms_per_token": round(wall / max(1, ntok) * 1e3, 1), "forward_share": round(lm.forward_s / wall, 2),
                   "wall_s": round(wall, 1), "tokens": ntok,
                   "loglik_mean": round(float(np.nanmean(lls)), 2) if lls else None}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return 0


class TransformersLMLogLik:
    @staticmethod
    def of(model, prompt, tokens) -> float:
        """log P(tokens | prompt) under the model (no EOS), one forward."""
        import torch

        if not tokens:
            return 0.0
        ids = torch.tensor([list(prompt) + list(tokens)])
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=ids).logits[0, len(prompt) - 1:-1].double(), -1)
        return float(lp[torch.arange(len(tokens)), torch.tensor(tokens)].sum())


if __name__ == "__main__":
    raise SystemExit(main())
