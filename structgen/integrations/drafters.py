"""Draft models for speculative decoding: a smaller causal LM sharing the
tokenizer (``draft_model=``), or the target's own first layers (``"layerskip"``,
SWIFT / Kangaroo style self-speculation: no second model needed).

A :class:`DraftModel` keeps its own KV cache laid out column for column like the
target's (the loop feeds it the same pending tokens and drafts, and applies the
same attention-mask holes, row selections and crops), so one attention mask
serves both."""

from __future__ import annotations

import copy

import torch

from ..errors import ConfigurationError
from .kvcache import crop_cache, forward_keywords, new_cache, next_cache

__all__ = ["DraftModel", "layerskip_model"]


def layerskip_model(model, layers: int | None = None):
    """A view of ``model`` that runs only its first ``layers`` decoder layers, then the
    final norm and the LM head (weights shared, nothing copied).  Needs the usual
    ``model.model.layers`` layout (Llama, Mistral, Qwen2, SmolLM2 ...)."""
    inner = getattr(model, "model", None)
    stack = getattr(inner, "layers", None)
    if stack is None:
        raise ConfigurationError(f"layerskip drafting needs model.model.layers; {type(model).__name__} has none")
    total = len(stack)
    layers = max(1, total // 4) if layers is None else int(layers)
    if not 1 <= layers < total:
        raise ConfigurationError(f"layerskip layers must be in [1, {total - 1}], got {layers}")
    config = copy.copy(model.config)
    config.num_hidden_layers = layers
    draft_inner = copy.copy(inner)
    draft_inner._modules = dict(inner._modules)
    draft_inner._modules["layers"] = torch.nn.ModuleList(list(stack[:layers]))
    draft_inner.config = config
    draft = copy.copy(model)
    draft._modules = dict(model._modules)
    draft._modules["model"] = draft_inner
    draft.config = config
    return draft


class DraftModel:
    """A causal LM that proposes draft tokens; its cache mirrors the target's columns."""

    def __init__(self, model, name: str):
        self.model, self.name = model, name
        self.cache = new_cache(model)
        self.cache_kw, self.keep_kw = forward_keywords(model)

    def forward(self, ids: torch.Tensor, attn: torch.Tensor, pos: torch.Tensor, keep: int) -> torch.Tensor:
        """Logits (float32, CPU) of the last ``keep`` columns of the block ``ids``."""
        kwargs = {self.cache_kw: self.cache}
        if self.keep_kw:
            kwargs[self.keep_kw] = keep
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True, **kwargs)
        self.cache = next_cache(out)
        return out.logits[:, -keep:, :].float().cpu()

    def select(self, idx: torch.Tensor) -> None:
        self.cache.batch_select_indices(idx)

    def crop(self, n: int) -> None:
        crop_cache(self.cache, n)
