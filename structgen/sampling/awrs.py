"""Adaptive weighted rejection sampling (AWRS; Lipkin et al., arXiv 2504.05410).

Draw x ∝ p(x)·c(x) for a constraint c checked one token at a time, with an
unbiased estimate Ẑ of Z = Σ p·c, without computing a mask.  The pair
(x, Ẑ) is *properly weighted*: E[Ẑ·f(x)] = Σ p·c·f for every f, which is what
SMC needs (:mod:`structgen.sampling.smc`).

* :func:`recursive_awrs` walks a without-replacement order of p (one check per
  draw; a rejection removes the token); at the first accept x it checks one more
  token y: Ẑ = (mass left before x) if y is valid, else p(x).  This follows from
  Z(S)/m(S) = q_x·c(x) + (1−q_x)·Z(S∖x)/m(S∖x) with c(y) estimating the tail.
* :func:`geometric_awrs` emulates sampling with replacement until
  ``max_accepts`` accepts: draws landing on known-rejected tokens cost no check
  (their number is drawn as a geometric variable: "phantom" rejections), and
  Ẑ = m·(M−1)/(N−1), the negative-binomial estimate.

Both cap the checks: past the cap the rest of the work is done exactly with the
full mask (``matcher.next_token_mask()``), which keeps them exact.  The order
is drawn by inverse CDF with rejection of tokens already seen, which has the
distribution of the Gumbel-top-k order but costs O(V) once, not V Gumbels.

Samplers draw from the log-probabilities they are given: apply temperature
first.  Top-k and top-p are refused, because they change the target
distribution (and with it what Ẑ estimates)."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ..errors import ConfigurationError
from ..mask.bitmask import bitset_to_bool

__all__ = ["AWRS", "AWRSDraw", "recursive_awrs", "geometric_awrs", "awrs_step", "matcher_check",
           "never_allowed", "allowed_bool"]

Check = Callable[[int], bool]
FullMask = Callable[[], np.ndarray]  # -> bool[V] allowed


class AWRSDraw(NamedTuple):
    token: int          # -1 when nothing is allowed (log_weight is then -inf)
    log_weight: float   # log Ẑ, an unbiased estimate of log Σ p·c (in expectation of exp)
    n_checks: int       # constraint checks spent (a full-mask fallback counts as one)


class _Order:
    """Tokens in a random without-replacement order of p (unnormalised ``p``;
    tokens with p = 0 never come)."""

    def __init__(self, p: np.ndarray, rng: np.random.Generator):
        self.p, self.rng = p, rng
        self.seen: set[int] = set()
        self.seen_mass = 0.0
        self._rebuild()

    def _rebuild(self) -> None:
        p = self.p
        if self.seen:
            p = p.copy()
            p[list(self.seen)] = 0.0
        self.cdf = np.cumsum(p)
        self.base_seen = self.seen_mass  # mass already excluded from the cdf

    def remaining(self) -> float:
        if not self.seen:
            return float(self.cdf[-1])
        return float(self.cdf[-1]) - (self.seen_mass - self.base_seen)

    def next(self) -> int | None:
        total = float(self.cdf[-1])
        if total <= 0.0 or len(self.seen) >= len(self.p):
            return None
        # redraw while landing on a seen token; rebuild once they weigh half the cdf
        while True:
            if self.seen_mass - self.base_seen > 0.5 * total:
                self._rebuild()
                total = float(self.cdf[-1])
                if total <= 0.0:
                    return None
            u = self.rng.random() * total
            t = min(int(np.searchsorted(self.cdf, u, side="right")), len(self.p) - 1)
            if t not in self.seen and self.p[t] > 0.0:
                self.seen.add(t)
                self.seen_mass += float(self.p[t])
                return t

    def remaining_exact(self) -> float:
        """The unseen mass summed directly (no cancellation when it is tiny)."""
        if not self.seen:
            return float(self.p.sum())
        q = self.p.copy()
        q[list(self.seen)] = 0.0
        return float(q.sum())


def _probs(logprobs: np.ndarray, invalid: np.ndarray | None) -> np.ndarray:
    p = np.exp(np.asarray(logprobs, dtype=np.float64))
    if invalid is not None:
        p = np.where(invalid[: len(p)], 0.0, p)
    return p


def _masked_draw(p: np.ndarray, allowed: np.ndarray, rng: np.random.Generator) -> tuple[int, float]:
    """Exact fallback: x ~ p·m, and Z = Σ p·m."""
    pm = np.where(allowed[: len(p)], p, 0.0)
    c = np.cumsum(pm)
    z = float(c[-1])
    if z <= 0.0:
        return -1, 0.0
    return min(int(np.searchsorted(c, rng.random() * z, side="right")), len(p) - 1), z


def _log(x: float) -> float:
    return math.log(x) if x > 0.0 else -math.inf


def recursive_awrs(logprobs: np.ndarray, check: Check, *, rng: np.random.Generator, max_rejects: int = 64,
                   full_mask: FullMask | None = None, invalid: np.ndarray | None = None) -> AWRSDraw:
    """Recursive AWRS over ``logprobs`` (normalised or not: Ẑ estimates Σ p·c with p = exp).

    ``invalid`` (bool[V]): tokens known to be rejected (pruned, no check).
    After ``max_rejects`` rejections ``full_mask()`` finishes exactly (when given;
    otherwise the walk goes on)."""
    p = _probs(logprobs, invalid)
    order = _Order(p, rng)
    checks = 0
    rejects = 0
    while True:
        if full_mask is not None and rejects >= max_rejects:
            # the rest of the recursion, exactly: rejected tokens have m = 0 anyway
            t, z = _masked_draw(p, full_mask(), rng)
            return AWRSDraw(t, _log(z), checks + 1)
        left = order.remaining()
        x = order.next()
        if x is None:
            return AWRSDraw(-1, -math.inf, checks)
        checks += 1
        if not check(x):
            rejects += 1
            continue
        if left < 1e-3 * float(p.sum()):
            left = order.remaining_exact() + float(p[x])  # avoid cancellation in m - R
        y = order.next()
        if y is None:  # x was the last token: the tail is empty, so Ẑ = p(x) = left
            return AWRSDraw(x, _log(float(p[x])), checks)
        checks += 1
        return AWRSDraw(x, _log(left if check(y) else float(p[x])), checks)


def geometric_awrs(logprobs: np.ndarray, check: Check, *, rng: np.random.Generator, max_accepts: int = 2,
                   max_rejects: int = 64, full_mask: FullMask | None = None,
                   invalid: np.ndarray | None = None) -> AWRSDraw:
    """Geometric AWRS: sampling with replacement until ``max_accepts`` (≥ 2) accepts,
    checking each distinct token once; Ẑ = m·(M−1)/(N−1) with N all draws."""
    if max_accepts < 2:
        raise ConfigurationError(f"max_accepts must be >= 2, got {max_accepts}")
    p = _probs(logprobs, invalid)
    m = float(p.sum())
    if m <= 0.0:
        return AWRSDraw(-1, -math.inf, 0)
    pn = p / m
    cdf, base = np.cumsum(pn), 0.0  # base: rejected mass already out of the cdf
    valid: set[int] = set()
    rejected: set[int] = set()
    rej_mass = 0.0
    draws = accepts = checks = 0
    first = -1
    while accepts < max_accepts:
        if full_mask is not None and len(rejected) >= max_rejects:
            # finish the same process with the exact mask: each further accept
            # costs Geometric(Z) draws
            allowed = full_mask()
            checks += 1
            z = float(np.where(allowed[: len(p)], pn, 0.0).sum())
            if z <= 0.0:
                return AWRSDraw(-1, -math.inf, checks)
            if first < 0:
                first, _ = _masked_draw(p, allowed, rng)
            need = max_accepts - accepts
            draws += int(rng.geometric(z, size=need).sum()) if z < 1.0 else need
            accepts = max_accepts
            break
        if rej_mass >= 1.0 - 1e-12 and not valid:
            return AWRSDraw(-1, -math.inf, checks)
        # phantom rejections: draws landing on known-invalid tokens, no check needed
        if rej_mass > 0.0:
            draws += int(rng.geometric(1.0 - rej_mass)) - 1
        # one draw from p outside the rejected set (redraw; drop them from the cdf
        # once they weigh half of it)
        if rej_mass - base > 0.5 * (1.0 - base):
            q = pn.copy()
            q[list(rejected)] = 0.0
            cdf, base = np.cumsum(q), rej_mass
        while True:
            t = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(p) - 1)
            if t not in rejected and pn[t] > 0.0:
                break
        draws += 1
        if t in valid:
            ok = True
        else:
            checks += 1
            ok = check(t)
        if ok:
            valid.add(t)
            accepts += 1
            if first < 0:
                first = t
        else:
            rejected.add(t)
            rej_mass += float(pn[t])
    return AWRSDraw(first, _log(m * (max_accepts - 1) / (draws - 1)), checks)


# --- on a matcher ------------------------------------------------------------------------

def never_allowed(vocab, width: int) -> np.ndarray:
    """bool[width]: ids no constraint can allow (special non-EOS tokens, ids past the vocabulary)."""
    bad = np.ones(width, dtype=bool)
    n = min(width, vocab.size)
    bad[:n] = vocab.non_text[:n]  # computed once per vocabulary
    return bad


def matcher_check(matcher) -> Check:
    """The constraint as a per-token check: EOS iff the output is complete, other
    ids iff the matcher would accept them (``validate_tokens``: no mask)."""
    eos = matcher.compiled.vocab.eos_ids
    size = matcher.compiled.vocab.size

    def check(t: int) -> bool:
        if t in eos:
            return matcher.can_terminate()
        return t < size and matcher.validate_tokens([t]) == 1

    return check


def allowed_bool(matcher, width: int) -> np.ndarray:
    """``matcher``'s next-token mask as bool[``width``] (ids past the mask: not allowed)."""
    return bitset_to_bool(matcher.next_token_mask(), width)


def awrs_step(logprobs: np.ndarray, matcher, *, rng: np.random.Generator, variant: str = "auto",
              max_rejects: int = 64, max_accepts: int = 2, invalid: np.ndarray | None = None) -> AWRSDraw:
    """One AWRS token for ``matcher`` (not advanced).  ``variant``: ``"recursive"``,
    ``"geometric"`` or ``"auto"`` (geometric when the top probability ≥ 2/3, as genlm-control)."""
    if variant == "auto":
        variant = "geometric" if float(np.max(logprobs)) >= math.log(2 / 3) else "recursive"
    fallback = lambda: allowed_bool(matcher, len(logprobs))  # noqa: E731
    kw = dict(rng=rng, max_rejects=max_rejects, full_mask=fallback, invalid=invalid)
    if variant == "recursive":
        return recursive_awrs(logprobs, matcher_check(matcher), **kw)
    if variant == "geometric":
        return geometric_awrs(logprobs, matcher_check(matcher), max_accepts=max_accepts, **kw)
    raise ConfigurationError(f"variant must be 'auto', 'recursive' or 'geometric', got {variant!r}")


class AWRS:
    """AWRS token sampler (arXiv 2504.05410): ``sample(logprobs, matcher, rng)``.

    Draws from ``logprobs`` as given (apply temperature before).  ``top_k``/``top_p``
    are refused: they change the distribution Ẑ is an estimate for."""

    def __init__(self, *, variant: str = "auto", max_rejects: int = 64, max_accepts: int = 2,
                 top_k: int = 0, top_p: float = 1.0):
        if top_k or top_p < 1.0:
            raise ConfigurationError(
                "AWRS/SMC sample the model's own distribution restricted to the constraint; top_k/top_p "
                "truncate it, so the weights would estimate a different target. Use temperature only, "
                "or sampler='masked' for top-k/top-p.")
        if variant not in ("auto", "recursive", "geometric"):
            raise ConfigurationError(f"variant must be 'auto', 'recursive' or 'geometric', got {variant!r}")
        if max_rejects < 0:
            raise ConfigurationError(f"max_rejects must be >= 0, got {max_rejects}")
        self.variant, self.max_rejects, self.max_accepts = variant, max_rejects, max_accepts
        self.total_checks = 0
        self.total_draws = 0
        self._invalid: dict[tuple[str, int], np.ndarray] = {}

    def sample(self, logprobs: np.ndarray, matcher, rng: np.random.Generator) -> AWRSDraw:
        vocab = matcher.compiled.vocab
        key = (vocab.fingerprint, len(logprobs))
        invalid = self._invalid.get(key)
        if invalid is None:
            invalid = self._invalid[key] = never_allowed(vocab, len(logprobs))
        d = awrs_step(logprobs, matcher, rng=rng, variant=self.variant, max_rejects=self.max_rejects,
                      max_accepts=self.max_accepts, invalid=invalid)
        self.total_checks += d.n_checks
        self.total_draws += 1
        return d
