"""Exact verification of drafted tokens under a constraint (speculative sampling).

At each draft position the target distribution ``p`` and the draft distribution
``q`` are masked by the *same* mask (the constraint's, at the prefix the draft
extends) and renormalised.  Draft ``x`` is accepted with probability
``min(1, p(x) / q(x))``; on rejection the replacement is drawn from the
normalised residual ``max(0, p - q)``.  The output then has exactly the
distribution of masked decoding from ``p`` (Leviathan et al. 2023; Chen et al.
2023).  A one-hot ``q`` (forced continuations, n-gram drafts) accepts with
probability ``p(x)`` and resamples from ``p`` without ``x``.

The classic bug is mixing raw and masked distributions in the ratio: ``p`` and
``q`` here are both masked and normalised by the caller."""

from __future__ import annotations

import numpy as np

from .warpers import draw

__all__ = ["verify_draft"]


def verify_draft(p: np.ndarray, draft: int, rng: np.random.Generator, q: np.ndarray | None = None) -> tuple[int, bool]:
    """(token, accepted) for one draft position.  ``p``: the masked, normalised target
    distribution; ``q``: the masked, normalised draft distribution (None: one-hot at
    ``draft``)."""
    qx = 1.0 if q is None else float(q[draft])
    px = float(p[draft])
    if qx <= 0.0:  # the draft could not have been proposed under q: reject outright
        return draw(p, rng), False
    if rng.random() < min(1.0, px / qx):
        return draft, True
    if q is None:
        residual = np.array(p, dtype=np.float64)
        residual[draft] = 0.0
    else:
        residual = np.maximum(np.asarray(p, dtype=np.float64) - q, 0.0)
    if residual.sum() <= 0.0:  # p == q up to rounding: the draft is always right
        return draft, True
    return draw(residual, rng), False

