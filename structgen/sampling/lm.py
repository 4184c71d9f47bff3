"""The language-model protocol the samplers need, and a plain token loop over it.

A :class:`BatchLM` maps a batch of token prefixes to next-token log-probabilities
(float64 ``[B, V]``, rows summing to one).  ``logprobs`` is a function of the
prefixes alone; adapters with a KV cache may keep per-row state, and samplers
call the optional ``reorder(indices)`` when rows are dropped or duplicated
(row ``i`` of the next call extends row ``indices[i]`` of the previous one), so
the cache follows.  A call whose rows do not extend the cached ones is still
correct, only slower (the adapter recomputes)."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import ConfigurationError
from .warpers import apply_mask, draw

__all__ = ["BatchLM", "RowMap", "masked_token", "sample_tokens", "allowed_logprobs"]


@runtime_checkable
class BatchLM(Protocol):
    """``vocab_size`` (logits width), ``eos_ids``, and ``logprobs(prefixes) -> [B, V]``.
    Optional: ``reorder(indices)`` (KV caches), ``reset()``."""

    vocab_size: int
    eos_ids: frozenset

    def logprobs(self, prefixes: list[list[int]]) -> np.ndarray: ...


class RowMap:
    """Which row of the previous ``logprobs`` call each live sequence extends, so a
    sampler can tell the LM how its batch changed (one ``reorder`` per change)."""

    def __init__(self, lm):
        self.lm = lm
        self.prev: int | None = None  # rows in the previous call (None: nothing cached)

    def call(self, prefixes: list[list[int]], rows: Sequence[int] | None) -> np.ndarray:
        """``rows[i]``: the previous row prefix ``i`` extends (None: a fresh batch)."""
        reorder = getattr(self.lm, "reorder", None)
        if rows is None:
            reset = getattr(self.lm, "reset", None)
            if reset is not None:
                reset()
        elif reorder is not None and self.prev is not None and list(rows) != list(range(self.prev)):
            reorder(list(rows))
        out = np.asarray(self.lm.logprobs(prefixes), dtype=np.float64)
        self.prev = len(prefixes)
        return out


def allowed_logprobs(logprobs: np.ndarray, matcher) -> np.ndarray:
    """``logprobs`` with every token the matcher forbids at -inf (ids past the
    vocabulary included): log(p·m)."""
    return apply_mask(logprobs, matcher.next_token_mask())


def masked_token(logprobs: np.ndarray, matcher, *, rng: np.random.Generator, greedy: bool = False) -> int | None:
    """One grammar-constrained-decoding step: a draw from p·m/Σp·m (argmax when
    ``greedy``); None when nothing allowed has probability (a dead end)."""
    lp = allowed_logprobs(logprobs, matcher)
    top = float(np.max(lp))
    if top == -np.inf:
        return None
    if greedy:
        return int(np.argmax(lp))
    return draw(np.exp(lp - top), rng)


def sample_tokens(lm, matcher, *, rng: np.random.Generator, max_tokens: int, prompt: Sequence[int] = (),
                  greedy: bool = False,
                  step: Callable[[np.ndarray, object], int | None] | None = None) -> tuple[list[int], bool]:
    """The token loop for one sequence: masked sampling (or ``step(logprobs, matcher)``)
    until EOS or ``max_tokens``.  Returns (tokens, ended by EOS); EOS is not in the
    tokens.  ``matcher`` is advanced."""
    if max_tokens < 0:
        raise ConfigurationError(f"max_tokens must be >= 0, got {max_tokens}")
    eos = frozenset(lm.eos_ids) | matcher.compiled.vocab.eos_ids  # either side's EOS ends the output
    out: list[int] = []
    rows = RowMap(lm)
    first = True
    while True:
        lp = rows.call([list(prompt) + out], None if first else [0])[0]
        first = False
        t = step(lp, matcher) if step is not None else masked_token(lp, matcher, rng=rng, greedy=greedy)
        if t is None or not matcher.accept_token(t):
            return out, False
        if t in eos:
            return out, True
        out.append(t)
        if len(out) >= max_tokens:
            return out, False
