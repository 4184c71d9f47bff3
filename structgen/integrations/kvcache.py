"""Version shims for transformers KV caches: a new cache, cropping it, and the
forward keywords (``cache`` on recent transformers, ``past_key_values`` before)."""

from __future__ import annotations

import inspect

__all__ = ["new_cache", "crop_cache", "forward_keywords", "next_cache"]


def new_cache(model):
    """An empty ``DynamicCache`` (configured from the model on transformers 5)."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers 4.x
        return DynamicCache()


def crop_cache(cache, tokens_to_remove: int) -> None:
    """Drop the last ``tokens_to_remove`` positions: transformers 5's ``crop`` takes
    ``-n`` (a positive value raises), 4.x's takes the new absolute length."""
    if tokens_to_remove <= 0:
        return
    params = inspect.signature(cache.crop).parameters
    if "tokens_to_remove" in params:
        cache.crop(-tokens_to_remove)
    else:
        cache.crop(cache.get_seq_length() - tokens_to_remove)


def forward_keywords(model) -> tuple[str, str | None]:
    """(the cache keyword, the logits-to-keep keyword) of ``model.forward``: recent
    transformers call the cache ``cache`` (``past_key_values`` is deprecated there)."""
    params = inspect.signature(model.forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"
    keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return cache_kw, keep_kw


def next_cache(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values
