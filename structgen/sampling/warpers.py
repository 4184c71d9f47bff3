"""Masked token sampling: mask, temperature, top-k, top-p, draw, in that order (as
``model.generate`` does).  Pure functions over numpy arrays with an explicit
``numpy.random.Generator``; :class:`TokenSampler` holds one configuration."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError
from ..mask.bitmask import bitset_to_bool

__all__ = ["TokenSampler", "apply_mask", "warped_probs", "draw"]


def apply_mask(logits: np.ndarray, words: np.ndarray | None) -> np.ndarray:
    """A float64 copy of 1-D ``logits`` with tokens outside the bitset ``words``
    (uint32, bit t of word t >> 5; ids past it too) at -inf.  ``None``: no mask."""
    out = np.array(logits, dtype=np.float64)
    if words is None:
        return out
    out[~bitset_to_bool(words, len(out))] = -np.inf
    return out


def warped_probs(logits: np.ndarray, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """Probabilities after temperature, then top-k (0: off), then top-p (1.0: off);
    -inf logits get probability 0.  Ties at the top-k boundary are all kept."""
    x = np.asarray(logits, dtype=np.float64) / temperature
    if top_k and top_k < len(x):
        kth = np.partition(x, -top_k)[-top_k]
        x = np.where(x < kth, -np.inf, x)
    p = np.exp(x - np.max(x))
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        cut = int(np.searchsorted(cum, top_p, side="left")) + 1  # smallest set with mass >= top_p
        keep = np.zeros(len(p), dtype=bool)
        keep[order[:cut]] = True
        p = np.where(keep, p, 0.0)
        p /= p.sum()
    return p


def draw(p: np.ndarray, rng: np.random.Generator) -> int:
    """One draw from the (possibly unnormalised) probabilities ``p`` by inverse CDF."""
    c = np.cumsum(p)
    u = rng.random() * c[-1]
    return min(int(np.searchsorted(c, u, side="right")), len(p) - 1)


class TokenSampler:
    """Greedy (``temperature=0``) or sampled decoding with one seeded generator."""

    def __init__(self, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None):
        if temperature < 0:
            raise ConfigurationError(f"temperature must be >= 0, got {temperature}")
        if top_k < 0:
            raise ConfigurationError(f"top_k must be >= 0, got {top_k}")
        if not 0 < top_p <= 1:
            raise ConfigurationError(f"top_p must be in (0, 1], got {top_p}")
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.greedy = temperature == 0
        self.rng = np.random.default_rng(seed)

    def probs(self, masked_logits: np.ndarray) -> np.ndarray:
        return warped_probs(masked_logits, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)

    def draw(self, p: np.ndarray) -> int:
        return draw(p, self.rng)

    def uniform(self) -> float:
        return float(self.rng.random())
