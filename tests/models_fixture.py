"""Tiny random Llama models for the integration tests (mechanics, not quality).

Import from a test module as ``from models_fixture import tiny_llama`` (``tests/`` is on
``sys.path``, as for ``tokenizers_fixture``)."""

from __future__ import annotations

import torch
import transformers

__all__ = ["tiny_llama", "tiny_llama_for"]


def tiny_llama(vocab_size: int, eos_id: int, *, seed: int, hidden_size: int = 64, heads: int = 4,
               init: float = 0.3, bos_id: int | None = None) -> transformers.LlamaForCausalLM:
    """A seeded 2-layer Llama in eval mode; ``init`` (the weights' std) sets how peaked
    its logits are.  ``bos_id`` None keeps the config's default."""
    torch.manual_seed(seed)
    extra = {} if bos_id is None else {"bos_token_id": bos_id}
    cfg = transformers.LlamaConfig(hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=heads,
                                   intermediate_size=2 * hidden_size, vocab_size=vocab_size,
                                   initializer_range=init, eos_token_id=eos_id, pad_token_id=eos_id, **extra)
    return transformers.LlamaForCausalLM(cfg).eval()


def tiny_llama_for(tok, seed: int, init: float = 0.3) -> transformers.LlamaForCausalLM:
    """:func:`tiny_llama` over an HF tokenizer's whole vocabulary, its EOS also BOS and padding."""
    return tiny_llama(len(tok), tok.eos_token_id, seed=seed, init=init, bos_id=tok.eos_token_id)
