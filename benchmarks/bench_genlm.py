"""structgen's exact samplers side by side with genlm-control 0.4.1 (AWRS + SMC) on
SmolLM2-135M-Instruct (CPU), the same weights, prompt ids and EOS ids.

* structgen: ``generate(model, tok, prompt, regex=..., sampler="smc",
  particles=N, temperature=1.0, resampling="multinomial")`` and
  ``sampler="awrs"``, one call per sample (``seed=seed+i``), the regex compiled
  once and one untimed warm-up call first (genlm-control's setup is untimed too).
* genlm-control: ``benchmarks/genlm_worker.py`` in ``.venv-genlm``
  (``scripts/setup_genlm.sh``): ``AsyncTransformer`` over structgen's converted
  checkpoint → ``PromptedLLM`` → ``AWRS(llm, BoolFSA.from_regex(...).coerce(llm))``
  → ``.smc(N, ess_threshold=0.5)`` (its default multinomial resampling); its output
  cache is cleared before each sample (each sample starts cold, as ``generate`` does).

Reported per sampler: wall time per sample (p50, mean), and a two-sample test
that structgen's SMC and genlm-control's SMC draw the same distribution:

* each sample is one draw from one SMC run's weighted particles (weights
  normalised within the run; exactly what ``generate(sampler="smc")`` returns),
  so the samples of a side are i.i.d.;
* a chi-squared test of homogeneity on the 2×K table of counts of distinct
  output strings, strings whose pooled expected count is below 5 merged into
  one "other" column (asymptotic p-value), and a permutation p-value of the
  same statistic (``--permutations`` label shuffles, seeded: valid for small
  counts); the same on the year/first field (coarser, more power).
* structgen's AWRS outputs are locally-renormalised draws with a weight;
  they enter the test only after importance resampling by ``log_weight``
  (reported with the pool's effective sample size).

Prints the machine and versions and writes ``benchmarks/results/genlm-<time>.json``.

    bash scripts/setup_genlm.sh                      # once: .venv-genlm
    python benchmarks/bench_genlm.py --samples 40 --particles 5 --task color
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from structgen.bench.env import environment, print_header, results_dir  # noqa: E402

# (prompt, regex, coarse key): explicit classes ([0-9], not \d) so both engines read one byte language
TASKS = {
    "date": ("When did Apollo 11 land on the moon? Answer with the date only (YYYY-MM-DD).",
             r"[0-9]{4}-[0-9]{2}-[0-9]{2}", lambda s: s[:4]),
    "color": ("Pick one colour at random from: red, green, blue, yellow, purple, orange. "
              "Answer with the colour only, in lower case.",
              r"(red|green|blue|yellow|purple|orange)", lambda s: s),
}


# --------------------------------------------------------------------------- statistics
def chi2_sf(x: float, dof: int) -> float:
    """P(χ²_dof ≥ x): the regularised upper incomplete gamma Q(dof/2, x/2)."""
    if dof <= 0:
        return float("nan")
    a, z = dof / 2.0, x / 2.0
    if z <= 0:
        return 1.0
    log_pre = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1:  # series for P, then Q = 1 - P
        term = total = 1.0 / a
        k = a
        while term > total * 1e-15:
            k += 1
            term *= z / k
            total += term
        return max(0.0, 1.0 - math.exp(log_pre) * total)
    # Lentz continued fraction for Q
    b, c, d = z + 1 - a, 1e300, 1.0 / (z + 1 - a)
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(log_pre) * h


def pooled_table(a: list[str], b: list[str], min_expected: float = 5.0) -> tuple[list[str], np.ndarray]:
    """2×K counts; columns whose smallest expected count is below ``min_expected`` merged into "other"."""
    ca, cb = Counter(a), Counter(b)
    n_a, n_b = len(a), len(b)
    keep, other = [], np.zeros(2)
    for key in sorted(set(ca) | set(cb), key=lambda k: -(ca[k] + cb[k])):
        tot = ca[key] + cb[key]
        if min(n_a, n_b) * tot / (n_a + n_b) >= min_expected:
            keep.append(key)
        else:
            other += (ca[key], cb[key])
    cols = [[ca[k], cb[k]] for k in keep]
    labels = list(keep)
    if other.sum() > 0:
        cols.append(list(other))
        labels.append("<other>")
    return labels, np.array(cols, dtype=float).T.reshape(2, -1)


def chi2_stat(table: np.ndarray) -> float:
    rows, cols, n = table.sum(1, keepdims=True), table.sum(0, keepdims=True), table.sum()
    exp = rows * cols / n
    ok = exp > 0
    return float((((table - exp) ** 2)[ok] / exp[ok]).sum())


def two_sample_test(a: list[str], b: list[str], *, permutations: int, seed: int) -> dict:
    """Chi-squared homogeneity (pooled, asymptotic) plus a permutation p-value of the same statistic."""
    if not a or not b:
        return {"note": "a side has no samples"}
    labels, table = pooled_table(a, b)
    stat = chi2_stat(table)
    dof = table.shape[1] - 1
    rng = np.random.default_rng(seed)
    both = np.array(a + b, dtype=object)
    hits = 0
    for _ in range(permutations):
        perm = rng.permutation(len(both))
        _, t = pooled_table(list(both[perm[:len(a)]]), list(both[perm[len(a):]]))
        hits += chi2_stat(t) >= stat - 1e-12
    return {"columns": labels, "counts": table.astype(int).tolist(), "chi2": round(stat, 3), "dof": dof,
            "p_chi2": round(chi2_sf(stat, dof), 4) if dof > 0 else None,
            "p_permutation": round((hits + 1) / (permutations + 1), 4), "permutations": permutations}


def weighted_posterior(texts: list[str], log_weights: list[float], top: int = 8) -> dict:
    """Pooled particles of every run, weighted by their (unnormalised, unbiased) weights."""
    lw = np.asarray(log_weights, dtype=float)
    if not len(lw) or not np.isfinite(lw).any():
        return {}
    w = np.exp(lw - lw.max())
    post: dict[str, float] = {}
    for t, wi in zip(texts, w / w.sum()):
        post[t] = post.get(t, 0.0) + float(wi)
    return {k: round(v, 3) for k, v in sorted(post.items(), key=lambda kv: -kv[1])[:top]}


def importance_resample(texts: list[str], log_weights: list[float], rng) -> tuple[list[str], float]:
    """len(texts) draws by weight from the pool, and the pool's effective sample size."""
    lw = np.asarray(log_weights, dtype=float)
    if not np.isfinite(lw).any():
        return [], 0.0
    w = np.exp(lw - lw.max())
    w /= w.sum()
    ess = float(1.0 / (w * w).sum())
    return [texts[i] for i in rng.choice(len(texts), size=len(texts), p=w)], ess


def timing(walls: list[float]) -> dict:
    return {"n": len(walls), "wall_s_per_sample_p50": round(float(np.median(walls)), 3) if walls else None,
            "wall_s_per_sample_mean": round(float(np.mean(walls)), 3) if walls else None}


# --------------------------------------------------------------------------- the two sides
def run_structgen(model, tok, prompt: str, regex: str, sampler: str, args) -> dict:
    import structgen
    from structgen.integrations.transformers import vocabulary_for

    walls, texts, weights, pool_t, pool_w, log_ml = [], [], [], [], [], []
    # compiled once and warmed up untimed, like genlm-control's FSA and first forward
    regex = structgen.compile_regex(regex, vocabulary_for(tok, model.config.vocab_size))
    structgen.generate(model, tok, prompt, regex=regex, sampler=sampler, particles=args.particles, temperature=1.0,
                       max_new_tokens=args.max_tokens, seed=args.seed + 10_000)
    for i in range(args.samples):
        t = time.perf_counter()
        r = structgen.generate(model, tok, prompt, regex=regex, sampler=sampler, particles=args.particles,
                               temperature=1.0, resampling="multinomial", ess_threshold=args.ess_threshold,
                               max_new_tokens=args.max_tokens, seed=args.seed + i)
        walls.append(time.perf_counter() - t)
        ok = r.finish_reason in ("eos", "complete")
        texts.append(r.text if ok else None)
        weights.append(r.log_weight if r.log_weight is not None else 0.0)
        if sampler == "smc":
            log_ml.append(r.log_ml)
            pool_t += [tok.decode(p) for p in r.particles]
            pool_w += list(r.log_weights)
    out = {"timing": timing(walls), "texts": texts, "failed": sum(t is None for t in texts)}
    if sampler == "smc":
        out.update(log_ml_mean=round(float(np.mean(log_ml)), 3), weighted_posterior=weighted_posterior(pool_t, pool_w))
    else:
        out["log_weights"] = weights
    return out


def run_genlm(prompt_ids: list[int], eos_ids: list[int], regex: str, model_dir: str, probe_ids: list[int],
              args) -> dict:
    py = Path(args.genlm_python)
    if not py.exists():
        return {"error": f"{py} not found: run `bash scripts/setup_genlm.sh` first"}
    job = {"model_dir": model_dir, "prompt_ids": prompt_ids, "eos_ids": eos_ids, "regex": regex,
           "samples": args.samples, "particles": args.particles, "max_tokens": args.max_tokens + 1,  # + EOS
           "ess_threshold": args.ess_threshold, "seed": args.seed, "threads": args.threads,
           "keep_cache": args.genlm_keep_cache, "probe_ids": probe_ids}
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", PYTHONWARNINGS="ignore",
               OMP_NUM_THREADS=str(args.threads))
    p = subprocess.run([str(py), str(REPO / "benchmarks" / "genlm_worker.py")], input=json.dumps(job),
                       capture_output=True, text=True, env=env, timeout=args.genlm_timeout)
    if p.returncode != 0:
        return {"error": f"worker exited {p.returncode}", "stderr_tail": p.stderr[-3000:]}
    res = json.loads(p.stdout)
    walls = [s["wall_s"] for s in res["samples"]]
    texts = [s["text"] for s in res["samples"]]
    return {"timing": timing(walls), "texts": texts, "failed": sum(t is None for t in texts),
            "log_ml_mean": round(float(np.mean([s["log_ml"] for s in res["samples"]])), 3),
            "setup_s": round(res["setup_s"], 2), "versions": res["versions"],
            "eos_byte_strings": res["eos_byte_strings"], "probe_logprobs": res["probe_logprobs"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=sorted(TASKS), default="color")
    ap.add_argument("--samples", type=int, default=40, help="samples per sampler (one SMC run each)")
    ap.add_argument("--particles", type=int, default=5)
    ap.add_argument("--ess-threshold", type=float, default=0.5)
    ap.add_argument("--max-tokens", type=int, default=24, help="tokens before EOS (genlm-control gets +1 for EOS)")
    ap.add_argument("--samplers", default="smc,awrs,genlm", help="any of smc, awrs (structgen), genlm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    ap.add_argument("--permutations", type=int, default=2000)
    ap.add_argument("--genlm-python", default=str(REPO / ".venv-genlm" / "bin" / "python"))
    ap.add_argument("--genlm-keep-cache", action="store_true", help="keep genlm's output cache across samples")
    ap.add_argument("--genlm-timeout", type=float, default=3600)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    import structgen
    from structgen.integrations.transformers import vocabulary_for
    from structgen.models import apply_chat_template, default_model_dir

    torch.set_num_threads(args.threads)
    env = environment()
    question, regex, coarse = TASKS[args.task]
    print_header("bench_genlm: structgen SMC/AWRS vs genlm-control AWRS+SMC on SmolLM2 (CPU)", env,
                 [f"task={args.task} regex={regex!r} samples={args.samples} particles={args.particles} "
                  f"max_tokens={args.max_tokens} ess_threshold={args.ess_threshold} torch_threads={args.threads}"])
    model, tok = structgen.load_default_model()
    vocab = vocabulary_for(tok, model.config.vocab_size)
    # the prompt ids and EOS ids generate() uses, handed to genlm-control unchanged
    prompt_ids = list(tok(apply_chat_template(tok, question), add_special_tokens=False)["input_ids"])
    eos_ids = sorted(set(vocab.eos_ids) | {int(tok.eos_token_id)} | {int(model.config.eos_token_id)})
    with torch.no_grad():  # the top-5 next tokens after the prompt: both sides must agree on them
        ours = torch.log_softmax(model(input_ids=torch.tensor([prompt_ids])).logits[0, -1].double(), -1)
    probe_ids = [int(i) for i in torch.topk(ours, 5).indices]
    probe_ours = [float(ours[i]) for i in probe_ids]

    report = {"command": " ".join(["python", "benchmarks/bench_genlm.py", *sys.argv[1:]]) if argv is None else argv,
              "args": vars(args), "environment": env, "task": {"name": args.task, "prompt": question, "regex": regex},
              "prompt_tokens": len(prompt_ids), "eos_ids": eos_ids, "results": {}}
    for s in args.samplers.split(","):
        t = time.perf_counter()
        if s in ("smc", "awrs"):
            r = run_structgen(model, tok, question, regex, s, args)
            name = f"structgen-{s}"
        elif s == "genlm":
            r = run_genlm(prompt_ids, eos_ids, regex, default_model_dir(), probe_ids, args)
            name = "genlm-control-smc"
            if "probe_logprobs" in r:
                r["probe_max_abs_diff"] = float(np.max(np.abs(np.subtract(r["probe_logprobs"], probe_ours))))
        else:
            raise SystemExit(f"unknown sampler {s!r}")
        r["total_s"] = round(time.perf_counter() - t, 1)
        report["results"][name] = r
        show = {k: v for k, v in r.items() if k not in ("texts", "log_weights", "stderr_tail")}
        print(f"{name}: {json.dumps(show, default=str)}", flush=True)
        if "stderr_tail" in r:
            print(r["stderr_tail"], file=sys.stderr)

    res = report["results"]
    tests = {}
    rng = np.random.default_rng(args.seed)
    samples = {k: [t for t in v.get("texts", []) if t is not None] for k, v in res.items()}
    if "structgen-awrs" in res and "texts" in res["structgen-awrs"]:
        a = res["structgen-awrs"]
        pairs = [(t, w) for t, w in zip(a["texts"], a["log_weights"]) if t is not None]
        drawn, ess = importance_resample([p[0] for p in pairs], [p[1] for p in pairs], rng) if pairs else ([], 0.0)
        samples["structgen-awrs-resampled"] = drawn
        a["importance_ess"] = round(ess, 1)
    for x, y in (("structgen-smc", "genlm-control-smc"), ("structgen-awrs-resampled", "genlm-control-smc"),
                 ("structgen-smc", "structgen-awrs-resampled")):
        if samples.get(x) and samples.get(y):
            tests[f"{x} vs {y}"] = {
                "strings": two_sample_test(samples[x], samples[y], permutations=args.permutations, seed=args.seed),
                "coarse": two_sample_test([coarse(t) for t in samples[x]], [coarse(t) for t in samples[y]],
                                          permutations=args.permutations, seed=args.seed)}
    report["tests"] = tests
    print()
    for k, v in res.items():
        tm = v.get("timing", {})
        print(f"| {k} | {tm.get('wall_s_per_sample_p50')} s/sample (p50) | {tm.get('wall_s_per_sample_mean')} "
              f"s/sample (mean) | failed {v.get('failed')} | {v.get('error', '')}")
    sg, gl = res.get("structgen-smc", {}).get("timing", {}), res.get("genlm-control-smc", {}).get("timing", {})
    if sg.get("wall_s_per_sample_mean") and gl.get("wall_s_per_sample_mean"):
        report["speedup_smc_mean"] = round(gl["wall_s_per_sample_mean"] / sg["wall_s_per_sample_mean"], 2)
        print(f"genlm-control / structgen SMC wall time per sample: {report['speedup_smc_mean']}x")
    for k, v in tests.items():
        print(f"{k}: strings chi2={v['strings'].get('chi2')} dof={v['strings'].get('dof')} "
              f"p={v['strings'].get('p_chi2')} p_perm={v['strings'].get('p_permutation')}; "
              f"coarse p={v['coarse'].get('p_chi2')} p_perm={v['coarse'].get('p_permutation')}")
    if not args.no_save:
        out = Path(args.out) if args.out else results_dir() / f"genlm-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=str))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
