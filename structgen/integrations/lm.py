"""A ``transformers`` causal LM as a :class:`structgen.sampling.BatchLM`.

One KV cache (``DynamicCache``) holds every row; each ``logprobs`` call feeds
only the tokens a row gained since the previous call (rows of different
lengths are right-aligned in the new block, padding masked out), in one batched
forward.  ``reorder(indices)`` selects cache rows (duplicates allowed) when a
sampler drops or resamples sequences.  A call whose rows do not extend the
cached ones starts a fresh cache (correct, only slower)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigurationError
from .kvcache import forward_keywords, new_cache, next_cache

__all__ = ["TransformersLM"]


class TransformersLM:
    """``TransformersLM(model, *, device=None, eos_ids=None, temperature=1.0)``.

    ``eos_ids``: default the model config's ``eos_token_id``.  ``temperature``
    divides the logits before the log-softmax (AWRS/SMC/ASAp sample the
    distribution they are given)."""

    def __init__(self, model, *, device=None, eos_ids=None, temperature: float = 1.0):
        if temperature <= 0:
            raise ConfigurationError(f"temperature must be > 0 for sampling, got {temperature}")
        self.model = model.eval()
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        out = model.get_output_embeddings()
        self.vocab_size = int(out.weight.shape[0]) if out is not None else int(model.config.vocab_size)
        if eos_ids is None:
            eos = model.config.eos_token_id
            eos_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        self.eos_ids = frozenset(int(e) for e in eos_ids)
        self.temperature = float(temperature)
        self._cache_kw, self._keep_kw = forward_keywords(model)
        self.forward_calls = 0
        self.tokens_fed = 0
        self.reset()

    def reset(self) -> None:
        """Forget the cache."""
        self._cache = None
        self._attn: torch.Tensor | None = None
        self._rows: list[list[int]] = []
        self._last: np.ndarray | None = None

    def reorder(self, indices) -> None:
        """Row ``i`` becomes the old row ``indices[i]`` (rows may repeat or go)."""
        if self._cache is None:
            return
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=self.device)
        self._cache.batch_select_indices(idx)
        self._attn = self._attn[idx]
        self._rows = [self._rows[i] for i in indices]
        self._last = self._last[list(indices)]

    def _extends(self, prefixes) -> bool:
        return (self._cache is not None and len(prefixes) == len(self._rows)
                and all(len(p) >= len(r) and list(p[:len(r)]) == r for p, r in zip(prefixes, self._rows)))

    def logprobs(self, prefixes) -> np.ndarray:
        """log-softmax(logits / temperature) after each prefix, float64 [B, V]."""
        prefixes = [list(map(int, p)) for p in prefixes]
        if any(not p for p in prefixes):
            raise ConfigurationError("every prefix needs at least one token (a prompt or BOS)")
        extends = self._extends(prefixes)  # O(total prefix length): once per call
        if not extends and len(prefixes) > 1 and all(p == prefixes[0] for p in prefixes):
            # N particles on one prompt: prefill it once, then copy the cache row N times
            self.reset()
            one = self.logprobs(prefixes[:1])
            self.reorder([0] * len(prefixes))
            return np.repeat(one, len(prefixes), axis=0)
        if not extends:
            self._cache = new_cache(self.model)
            self._attn = torch.zeros((len(prefixes), 0), dtype=torch.long, device=self.device)
            self._rows = [[] for _ in prefixes]
            self._last = np.zeros((len(prefixes), self.vocab_size))
        new = [p[len(r):] for p, r in zip(prefixes, self._rows)]
        width = max(len(s) for s in new)
        if width == 0:
            return self._last.copy()
        b = len(prefixes)
        ids = torch.zeros((b, width), dtype=torch.long)
        attn = torch.zeros((b, width), dtype=torch.long)
        for i, s in enumerate(new):
            if s:
                ids[i, width - len(s):] = torch.tensor(s)
                attn[i, width - len(s):] = 1
        self._attn = torch.cat([self._attn, attn.to(self.device)], 1)
        pos = (self._attn.cumsum(-1) - 1).clamp_min(0)[:, -width:]
        kw = {self._cache_kw: self._cache}
        if self._keep_kw:
            kw[self._keep_kw] = 1
        with torch.no_grad():
            out = self.model(input_ids=ids.to(self.device), attention_mask=self._attn, position_ids=pos,
                             use_cache=True, **kw)
        self._cache = next_cache(out)
        self.forward_calls += 1
        self.tokens_fed += sum(len(s) for s in new)
        logits = out.logits[:, -1, :].double() / self.temperature
        lp = torch.log_softmax(logits, -1).cpu().numpy()
        result = np.where(np.array([bool(s) for s in new])[:, None], lp, self._last)
        self._rows = prefixes
        self._last = result
        return result.copy()
