"""genlm-control's side of ``bench_genlm.py``; runs inside ``.venv-genlm``
(``scripts/setup_genlm.sh``), never imports structgen.

Reads one JSON job on stdin::

    {"model_dir", "prompt_ids", "eos_ids", "regex", "samples", "particles",
     "max_tokens", "ess_threshold", "seed", "threads", "keep_cache", "probe_ids"}

loads SmolLM2 from structgen's converted checkpoint directory (no hub), wraps it
as ``AsyncTransformer`` → ``PromptedLLM`` (the same prompt ids, the same EOS
ids as byte strings), builds ``BoolFSA.from_regex`` coerced to the LM's tokens,
and runs ``AWRS(llm, fsa).smc(...)`` once per sample.  Each sample is one draw
from the run's weighted, completed particles (the weights normalised with the
max subtracted), as structgen's ``generate(sampler="smc")`` returns.  Writes one
JSON object on stdout: per sample the text (None when every weight is 0), the
wall time, log_ml; plus the prompt's next-token log-probabilities at
``probe_ids`` (to check both sides run the same weights) and the versions."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from importlib import metadata


def main() -> int:
    job = json.loads(sys.stdin.read())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genlm.backend.llm import AsyncTransformer
    from genlm.control import AWRS, BoolFSA, PromptedLLM

    torch.set_num_threads(int(job.get("threads", 1)))
    seed = int(job["seed"])
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(job["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32).eval()
    llm = AsyncTransformer(model, tok)
    eos_bytes = [llm.byte_vocab[i].byte_string for i in job["eos_ids"]]
    lm = PromptedLLM(llm, prompt_ids=list(job["prompt_ids"]), eos_byte_strings=eos_bytes, temperature=1.0)
    fsa = BoolFSA.from_regex(job["regex"]).coerce(lm, f=b"".join)
    sampler = AWRS(lm, fsa, seed=seed)
    setup_s = time.perf_counter() - t

    async def probe():
        lp = await llm.next_token_logprobs(list(job["prompt_ids"]))
        return [float(lp[i]) for i in job["probe_ids"]]

    probe_lp = asyncio.run(probe())

    samples = []
    for _ in range(int(job["samples"])):
        if not job.get("keep_cache"):
            llm.clear_cache()  # every sample starts cold, as structgen's generate does
        t = time.perf_counter()
        seqs = asyncio.run(sampler.smc(n_particles=int(job["particles"]), ess_threshold=float(job["ess_threshold"]),
                                       max_tokens=int(job["max_tokens"])))
        wall = time.perf_counter() - t
        texts, logw = [], []
        for ctx, w in zip(seqs.contexts, np.asarray(seqs.log_weights, dtype=np.float64)):
            if ctx and type(ctx[-1]).__name__ == "EndOfSequence" and w > -math.inf:
                try:
                    texts.append(b"".join(ctx[:-1]).decode("utf-8"))
                    logw.append(float(w))
                except UnicodeDecodeError:
                    pass
        text = None
        if texts:
            lw = np.asarray(logw)
            p = np.exp(lw - lw.max())
            text = texts[int(rng.choice(len(p), p=p / p.sum()))]
        samples.append({"text": text, "wall_s": wall, "log_ml": float(seqs.log_ml),
                        "particles": [b"".join(c[:-1] if c and type(c[-1]).__name__ == "EndOfSequence" else c)
                                      .decode("utf-8", "replace") for c in seqs.contexts]})
    versions = {p: _version(p) for p in ("genlm-control", "genlm-backend", "genlm-grammar", "transformers", "torch",
                                         "numpy")}
    json.dump({"samples": samples, "setup_s": setup_s, "probe_logprobs": probe_lp, "versions": versions,
               "eos_byte_strings": [e.decode("utf-8", "replace") for e in eos_bytes]}, sys.stdout)
    return 0


def _version(pkg):
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
