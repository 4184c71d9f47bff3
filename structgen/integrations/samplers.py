"""The exact samplers behind ``generate(sampler=...)``, on a ``transformers`` model.

* ``"awrs"``: adaptive weighted rejection sampling (arXiv 2504.05410): tokens are
  drawn from the model and checked one by one, no full mask unless the checks run
  out; each output carries the log-weight ``log_weight`` (an unbiased estimate
  of the probability mass of valid continuations, multiplied over the steps).
* ``"smc"``: ``particles`` AWRS particles in one batched forward per step,
  resampled when the effective sample size falls below ``ess_threshold``; the
  chosen output is a draw from the weighted particles, all of them are in
  ``particles`` / ``log_weights``, and ``log_ml`` estimates log P(constraint).
* ``"asap"``: grammar-aligned decoding (arXiv 2405.21047): an :class:`~structgen.sampling.ASAp`
  trie (``asap=``, reused across calls) reweights tokens by their estimated
  future grammaticality; it converges to P(x | x in L) as it samples.

These sample the model's own distribution (``temperature`` applied); top-k/top-p
are refused, budget-safe closing and drafts do not apply (a cut output gets
weight 0 in SMC, ``finish_reason="length"`` otherwise)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError
from ..sampling import AWRS, SAMPLERS, ASAp, sample_tokens, smc
from .lm import TransformersLM

__all__ = ["SAMPLERS", "check_sampler_options", "sample_exact"]



def check_sampler_options(sampler: str, *, temperature: float, top_k: int, top_p: float, draft, stream,
                          particles: int, asap) -> None:
    if sampler not in SAMPLERS:
        raise ConfigurationError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if sampler == "masked":
        if asap is not None:
            raise ConfigurationError("asap= is only used with sampler='asap'")
        return
    if temperature <= 0:
        raise ConfigurationError(f"sampler={sampler!r} samples the model's distribution: temperature must be > 0")
    if top_k or top_p < 1.0:
        raise ConfigurationError(f"sampler={sampler!r} targets the model's distribution restricted to the "
                                 "constraint; top_k/top_p would change it (use sampler='masked' for them)")
    if draft:
        raise ConfigurationError(f"draft= works with sampler='masked' only, not {sampler!r}")
    if stream is not None:
        raise ConfigurationError(f"stream= works with sampler='masked' only, not {sampler!r}")
    if sampler == "smc" and particles < 1:
        raise ConfigurationError(f"particles must be >= 1, got {particles}")
    if asap is not None and not isinstance(asap, ASAp):
        raise ConfigurationError(f"asap= takes a structgen.sampling.ASAp, got {type(asap).__name__}")


def sample_exact(model, sampler: str, prompt_ids: list[int], matcher, *, max_new_tokens: int, temperature: float,
                 seed: int | None, eos_ids, particles: int = 4, ess_threshold: float = 0.5,
                 resampling: str = "systematic", critic=None, asap: ASAp | None = None) -> dict:
    """One output: ``{"tokens", "finish", "log_weight", "particles", "log_weights", "log_ml", "stats"}``."""
    rng = np.random.default_rng(seed)
    lm = TransformersLM(model, eos_ids=eos_ids, temperature=temperature)
    out = {"log_weight": None, "particles": None, "log_weights": None, "log_ml": None}
    if sampler == "awrs":
        awrs = AWRS()
        log_w = 0.0

        def step(lp, m):
            nonlocal log_w
            d = awrs.sample(lp, m, rng)
            log_w += d.log_weight
            return None if d.token < 0 else d.token

        tokens, ended = sample_tokens(lm, matcher, rng=rng, max_tokens=max_new_tokens, prompt=prompt_ids, step=step)
        out.update(tokens=tokens, finish="eos" if ended else "length", log_weight=log_w,
                   stats={"constraint_checks": awrs.total_checks, "draws": awrs.total_draws})
    elif sampler == "smc":
        r = smc(lm, matcher, n_particles=particles, rng=rng, max_tokens=max_new_tokens, prompt=prompt_ids,
                ess_threshold=ess_threshold, resampling=resampling, critic=critic)
        lw = np.asarray(r.log_weights, dtype=np.float64)
        if np.isfinite(lw).any():
            w = np.exp(lw - lw.max())
            pick = int(rng.choice(len(w), p=w / w.sum()))
        else:
            pick = 0
        out.update(tokens=list(r.particles[pick]), finish="eos" if r.finished[pick] else "length",
                   log_weight=float(lw[pick]), particles=[list(p) for p in r.particles],
                   log_weights=lw.tolist(), log_ml=float(r.log_ml),
                   stats={"constraint_checks": r.n_checks, "steps": r.n_steps, "resamples": r.n_resamples})
    elif sampler == "asap":
        trie = asap if asap is not None else ASAp(max_tokens=max_new_tokens)
        s = trie.sample(lm, matcher.fork, 1, rng, prompt=prompt_ids)[0]
        out.update(tokens=list(s.tokens), finish="eos" if s.finished else "length",
                   stats={"trie_nodes": trie.num_nodes})
    else:  # pragma: no cover - check_sampler_options guards this
        raise ConfigurationError(f"unknown sampler {sampler!r}")
    out["stats"]["forward_calls"] = lm.forward_calls
    return out
