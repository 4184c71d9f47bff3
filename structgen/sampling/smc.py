"""Sequential Monte Carlo over AWRS token weights (arXiv 2504.05410, §SMC).

N particles advance together, one ``lm.logprobs`` call per step for every live
particle.  Each particle multiplies its weight by the AWRS estimate Ẑ_t of its
step's allowed mass, so weighted particles target P(x | x ∈ L) and the mean
weight, exp(``log_ml``), is an unbiased estimate of P(L) (with a critic: of
Σ_{x∈L} P(x)·critic(x)).  When the effective sample size falls below
``ess_threshold·N`` the particles are resampled (``lm.reorder`` follows) and the
weights reset to their mean, so the final weights still average to the
estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigurationError
from .awrs import AWRS
from .lm import RowMap

__all__ = ["SMCResult", "smc", "SMC", "resample_indices", "effective_sample_size"]

RESAMPLING = ("systematic", "multinomial", "stratified")


@dataclass
class SMCResult:
    particles: list[list[int]]   # each particle's tokens (EOS not included)
    log_weights: np.ndarray      # float64 [N]; -inf: the particle died (dead end, budget, critic)
    log_ml: float                # log of the mean weight: an unbiased estimate (in exp) of P(L)
    finished: list[bool]         # ended by EOS (else cut at the budget, with weight -inf)
    n_checks: int = 0            # constraint checks over the run
    n_steps: int = 0             # lm.logprobs calls
    n_resamples: int = 0
    ancestry: list[list[int]] = field(default_factory=list)  # resampling indices, per resampling

    def posterior(self) -> dict[tuple[int, ...], float]:
        """Normalised weights summed per distinct output (empty when every weight is 0)."""
        if not np.isfinite(self.log_weights).any():
            return {}
        w = np.exp(self.log_weights - np.max(self.log_weights))
        w /= w.sum()
        out: dict[tuple[int, ...], float] = {}
        for x, wi in zip(self.particles, w):
            if wi > 0:
                out[tuple(x)] = out.get(tuple(x), 0.0) + float(wi)
        return out


def _logmeanexp(lw: np.ndarray) -> float:
    top = float(np.max(lw))
    if top == -math.inf:
        return -math.inf
    return top + math.log(float(np.mean(np.exp(lw - top))))


def effective_sample_size(log_weights: np.ndarray) -> float:
    """(Σw)² / Σw² (0 when every weight is 0)."""
    top = float(np.max(log_weights))
    if top == -math.inf:
        return 0.0
    w = np.exp(log_weights - top)
    return float(w.sum() ** 2 / (w * w).sum())


def resample_indices(log_weights: np.ndarray, *, rng: np.random.Generator, method: str = "systematic") -> np.ndarray:
    """N ancestor indices drawn in proportion to the weights (unbiased for every method)."""
    n = len(log_weights)
    w = np.exp(log_weights - np.max(log_weights))
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    if method == "multinomial":
        u = rng.random(n)
    elif method == "stratified":
        u = (np.arange(n) + rng.random(n)) / n
    elif method == "systematic":
        u = (np.arange(n) + rng.random()) / n
    else:
        raise ConfigurationError(f"resampling must be one of {RESAMPLING}, got {method!r}")
    return np.minimum(np.searchsorted(cdf, u, side="right"), n - 1)


def smc(lm, matcher, *, n_particles: int, rng: np.random.Generator, max_tokens: int,
        prompt: Sequence[int] = (), ess_threshold: float = 0.5, resampling: str = "systematic",
        critic: Callable[[list[int]], float] | None = None, token_sampler: AWRS | None = None) -> SMCResult:
    """Run SMC from ``matcher``'s state (it is forked, not advanced).

    ``lm``: a :class:`~structgen.sampling.lm.BatchLM`; prefixes are ``prompt + tokens``.
    ``max_tokens``: the token budget before EOS; at the budget EOS is forced and the
    weight multiplied by its probability (0 when the output is not complete).
    ``critic(tokens) -> log potential``, added when a particle ends.
    ``token_sampler``: the :class:`AWRS` configuration (default ``AWRS()``)."""
    if n_particles < 1:
        raise ConfigurationError(f"n_particles must be >= 1, got {n_particles}")
    if not 0.0 <= ess_threshold <= 1.0:
        raise ConfigurationError(f"ess_threshold must be in [0, 1], got {ess_threshold}")
    if resampling not in RESAMPLING:
        raise ConfigurationError(f"resampling must be one of {RESAMPLING}, got {resampling!r}")
    if max_tokens < 0:
        raise ConfigurationError(f"max_tokens must be >= 0, got {max_tokens}")
    sampler = token_sampler or AWRS()
    checks_before = sampler.total_checks
    eos = frozenset(matcher.compiled.vocab.eos_ids) | frozenset(lm.eos_ids)
    prompt = list(prompt)
    n = n_particles
    tokens: list[list[int]] = [[] for _ in range(n)]
    matchers = [matcher.fork() for _ in range(n)]
    logw = np.zeros(n)
    done = [False] * n
    finished = [False] * n
    lm_row: list[int | None] = [None] * n   # the row of the last logprobs call each particle extends
    rows = RowMap(lm)
    steps = resamples = 0
    ancestry: list[list[int]] = []

    def end(i: int, ok: bool) -> None:
        done[i], finished[i] = True, ok
        if not ok:
            logw[i] = -math.inf
        elif critic is not None:
            logw[i] += float(critic(tokens[i]))

    while not all(done):
        live = [i for i in range(n) if not done[i]]
        prev = [lm_row[i] for i in live]
        lps = rows.call([prompt + tokens[i] for i in live], None if steps == 0 else prev)
        steps += 1
        for j, i in enumerate(live):
            lm_row[i] = j
            lp = lps[j]
            if len(tokens[i]) >= max_tokens:  # budget: EOS forced, weighted by its probability
                if matchers[i].can_terminate():
                    logw[i] += float(np.logaddexp.reduce(lp[[e for e in eos if e < len(lp)]]))
                    end(i, True)
                else:
                    end(i, False)
                continue
            d = sampler.sample(lp, matchers[i], rng)
            if d.token < 0:
                end(i, False)
                continue
            logw[i] += d.log_weight
            if not matchers[i].accept_token(d.token):
                raise AssertionError(f"AWRS drew token {d.token}, which the matcher refuses")
            if d.token in eos:
                end(i, True)
            else:
                tokens[i].append(d.token)
        if all(done):
            break
        if n > 1 and effective_sample_size(logw) < ess_threshold * n:
            if not np.isfinite(logw).any():
                break
            idx = resample_indices(logw, rng=rng, method=resampling)
            ancestry.append([int(a) for a in idx])
            mean = _logmeanexp(logw)
            seen: set[int] = set()
            new_m = []
            for a in idx:
                new_m.append(matchers[a] if a not in seen else matchers[a].fork())
                seen.add(int(a))
            tokens = [list(tokens[a]) for a in idx]
            matchers = new_m
            done = [done[a] for a in idx]
            finished = [finished[a] for a in idx]
            lm_row = [lm_row[a] for a in idx]
            logw = np.full(n, mean)
            resamples += 1
    return SMCResult(tokens, logw, _logmeanexp(logw), finished, sampler.total_checks - checks_before,
                     steps, resamples, ancestry)


class SMC:
    """SMC with AWRS proposals (arXiv 2504.05410): holds the configuration; ``run(lm, matcher, rng=...)``."""

    def __init__(self, *, n_particles: int = 5, ess_threshold: float = 0.5, resampling: str = "systematic",
                 max_tokens: int = 256, critic=None, token_sampler: AWRS | None = None):
        if resampling not in RESAMPLING:
            raise ConfigurationError(f"resampling must be one of {RESAMPLING}, got {resampling!r}")
        self.n_particles, self.ess_threshold, self.resampling = n_particles, ess_threshold, resampling
        self.max_tokens, self.critic = max_tokens, critic
        self.token_sampler = token_sampler or AWRS()

    def run(self, lm, matcher, *, rng: np.random.Generator, prompt: Sequence[int] = ()) -> SMCResult:
        return smc(lm, matcher, n_particles=self.n_particles, rng=rng, max_tokens=self.max_tokens, prompt=prompt,
                   ess_threshold=self.ess_threshold, resampling=self.resampling, critic=self.critic,
                   token_sampler=self.token_sampler)
