"""JSON Schema engine adapters: structgen, llguidance, xgrammar and outlines-core behind one
driver, so that every runner calls every engine the same way.

The conventions are those of ``benchmarks/bench_mask.py``:

* vocabularies / tokenizer infos are built once per process from the same HF tokenizer
  and are all ``len(tok)`` wide (``Vocabulary.from_tokenizer(tok, vocab_size=len(tok))``,
  ``llguidance.hf.from_tokenizer(tok, n_vocab=len(tok))``,
  ``TokenizerInfo.from_huggingface(tok, vocab_size=len(tok))``); outlines-core gets a
  ``Vocabulary(eos_id, {token_bytes: [ids]})`` built from the tokenizer's own vocab dict
  (byte-level or SentencePiece pieces turned into bytes; no hub access);
* ``compile`` returns a ready matcher and raises :class:`CompileFailure`;
* ``fill`` writes the mask into row 0 of a preallocated int32 bitmask and ``row`` is a
  numpy view of that row, so a token's bit is read the same way for every engine;
* one compute thread (the caller sets ``RAYON/NUMBA/OMP_NUM_THREADS=1`` before import;
  xgrammar's compiler runs with ``max_threads=1`` and its compile cache off).

Whitespace: every engine is asked for flexible JSON whitespace (structgen ``whitespace=``
its flexible mode, llguidance ``whitespace_flexible``, xgrammar ``any_whitespace=True``).
outlines-core uses its own default ``whitespace_pattern`` (``[ ]?``) unless
``outlines_whitespace`` is given: an unbounded pattern makes its index much larger.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from typing import Any

import numpy as np

from ..vocab.hf import unicode_to_bytes

ALL_ENGINES = ("structgen", "llguidance", "xgrammar", "outlines-core")
MODULES = {"structgen": "structgen", "llguidance": "llguidance", "xgrammar": "xgrammar",
           "outlines-core": "outlines_core"}

#: Small schema + instance replayed (untimed) after setup so that imports, numba JIT and
#: lazily built tables stay out of the first measured compile.
WARMUP_SCHEMA = {"type": "object", "properties": {"warm": {"type": "integer"}, "up": {"type": "string"}},
                 "required": ["warm"]}
WARMUP_TEXT = '{"warm": 12, "up": "x"}'


class CompileFailure(Exception):
    """The engine refused or failed to compile a schema.

    ``status`` is ``"unsupported"`` (the engine says it does not implement something) or
    ``"compile_error"``; ``internal`` marks exceptions that are not the engine's own error
    types (likely bugs)."""

    def __init__(self, status: str, message: str, error_type: str = "", internal: bool = False):
        super().__init__(message)
        self.status, self.message, self.error_type, self.internal = status, message, error_type, internal


_UNSUPPORTED_WORDS = ("unsupported", "not supported", "unimplemented", "not implemented",
                      "does not support", "is not yet supported", "cannot handle")


def classify_message(msg: str) -> str:
    low = msg.lower()
    return "unsupported" if any(w in low for w in _UNSUPPORTED_WORDS) else "compile_error"


def short(msg: Any, n: int = 300) -> str:
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def foreign_failure(e: Exception) -> CompileFailure:
    """A foreign engine's compile error as a :class:`CompileFailure`, classified by its
    message (their error types say nothing portable)."""
    msg = short(f"{type(e).__name__}: {e}", 500)
    return CompileFailure(classify_message(msg), msg, type(e).__name__)


@contextlib.contextmanager
def foreign_compile_errors():
    """:func:`foreign_failure` for whatever the block raises; MemoryError passes, for
    the worker to handle."""
    try:
        yield
    except (MemoryError, CompileFailure):
        raise
    except Exception as e:  # noqa: BLE001
        raise foreign_failure(e) from None


def bit(row: np.ndarray, tid: int) -> bool:
    return bool((int(row[tid >> 5]) >> (tid & 31)) & 1)


def popcount(row: np.ndarray) -> int:
    return int(np.unpackbits(row.view(np.uint8)).sum())


class ByteTokenizer:
    """Stand-in for an HF tokenizer over ``Vocabulary.byte_level()``: ids are UTF-8 bytes."""

    name = "bytes"

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", "replace")

    def __len__(self) -> int:
        return 257


def load_tokenizer(name: str):
    if name in ("bytes", "byte", "byte-level"):
        return ByteTokenizer()
    from structgen.vocab.known import load_tokenizer as sg_load

    return sg_load(name)


# --------------------------------------------------------------------------- base
class JsonEngine:
    name = "?"
    vocab_size = 0
    eos_ids: list[int] = []
    row: np.ndarray

    def compile(self, schema, *, registry: dict | None = None, draft: str | None = None, options=None):
        raise NotImplementedError

    def fill(self, m) -> None:
        raise NotImplementedError

    def accept(self, m, tid: int) -> bool:
        raise NotImplementedError

    def reset(self, m) -> None:
        m.reset()

    def can_end(self, m) -> bool | None:
        return None

    def eos_allowed(self) -> bool:
        return any(bit(self.row, e) for e in self.eos_ids)


class GrammarMatcherAPI:
    """``fill``/``accept`` for matchers with xgrammar's ``GrammarMatcher`` methods
    (structgen's ``Matcher`` has the same ones)."""

    bitmask: Any

    def fill(self, m) -> None:
        m.fill_next_token_bitmask(self.bitmask, 0)

    def accept(self, m, tid: int) -> bool:
        return bool(m.accept_token(tid))


# --------------------------------------------------------------------------- structgen
def structgen_compiler():
    """``structgen.json_schema.compile_json_schema`` (ImportError while it does not exist)."""
    from structgen.json_schema import compile_json_schema

    return compile_json_schema


def structgen_option_names() -> set[str]:
    """Names ``compile_json_schema`` accepts: its keyword parameters plus the fields of
    ``JsonSchemaOptions`` (passed through ``**kwargs``)."""
    names: set[str] = set()
    try:
        names |= set(inspect.signature(structgen_compiler()).parameters)
    except (TypeError, ValueError, ImportError):
        pass
    try:
        import dataclasses

        from structgen.json_schema import JsonSchemaOptions

        names |= {f.name for f in dataclasses.fields(JsonSchemaOptions)}
    except Exception:  # noqa: BLE001
        pass
    return names


class StructgenEngine(GrammarMatcherAPI, JsonEngine):
    name = "structgen"

    def __init__(self, tok, *, whitespace: str | None = None, lenient: bool = False,
                 structgen_options: dict | None = None, **_):
        import structgen

        self.sg = structgen
        if isinstance(tok, ByteTokenizer):
            self.vocab = structgen.Vocabulary.byte_level()
        else:
            try:
                self.vocab = structgen.Vocabulary.from_tokenizer(tok, vocab_size=len(tok))
            except TypeError:
                self.vocab = structgen.Vocabulary.from_tokenizer(tok)
        self.vocab.trie  # built with the vocabulary, not with the first compile
        self.vocab_size = self.vocab.size
        self.eos_ids = sorted(self.vocab.eos_ids)
        self.bitmask = structgen.allocate_token_bitmask(1, self.vocab.size)
        self.row = self.bitmask[0]
        self.compile_fn = structgen_compiler()
        self.params = structgen_option_names()
        self.kwargs: dict = {}
        if "lenient" in self.params:
            self.kwargs["lenient"] = lenient
        if "whitespace" in self.params:
            self.kwargs["whitespace"] = whitespace or "flexible"
        for k, v in (structgen_options or {}).items():
            if k not in self.params:
                raise RuntimeError(f"compile_json_schema has no option {k!r} (known: {sorted(self.params)})")
            self.kwargs[k] = v

    def describe(self) -> dict:
        return {"compile_kwargs": dict(self.kwargs)}

    def compile(self, schema, *, registry=None, draft=None, options: dict | None = None):
        from structgen.errors import BudgetExceeded, StructgenError, Unsupported

        kw = dict(self.kwargs)
        for k, v in (options or {}).items():
            if k in self.params:
                kw[k] = v
        if registry and "registry" in self.params:
            kw["registry"] = registry
        if draft is not None and "default_draft" in self.params:
            kw["default_draft"] = draft
        try:
            compiled = self.compile_fn(schema, self.vocab, **kw)
            return compiled.matcher()
        except MemoryError:
            raise
        except Unsupported as e:
            raise CompileFailure("unsupported", short(e, 500), type(e).__name__) from None
        except BudgetExceeded as e:
            raise CompileFailure("compile_error", short(f"budget: {e}", 500), type(e).__name__) from None
        except StructgenError as e:
            raise CompileFailure("compile_error", short(e, 500), type(e).__name__) from None
        except RecursionError as e:
            raise CompileFailure("compile_error", short(f"RecursionError: {e}", 500), "RecursionError",
                                 internal=True) from None
        except Exception as e:  # noqa: BLE001  (not structgen's own error: a bug)
            raise CompileFailure("compile_error", short(f"{type(e).__name__}: {e}", 500), type(e).__name__,
                                 internal=True) from None

    def can_end(self, m):
        return bool(m.can_terminate())


# --------------------------------------------------------------------------- llguidance
class LLGuidanceEngine(JsonEngine):
    name = "llguidance"

    def __init__(self, tok, vocab_size: int | None = None, **_):
        import llguidance
        import llguidance.hf
        import llguidance.numpy

        self.llg = llguidance
        self.fill_fn = llguidance.numpy.fill_next_token_bitmask
        self.lltok = llguidance.hf.from_tokenizer(tok, n_vocab=vocab_size or len(tok))
        self.vocab_size = self.lltok.vocab_size
        self.eos_ids = sorted(set(getattr(self.lltok, "eos_tokens", None) or [self.lltok.eos_token]))
        self.bitmask = llguidance.numpy.allocate_token_bitmask(1, self.vocab_size)
        self.row = self.bitmask[0]
        self.options = {"whitespace_flexible": True}

    def describe(self) -> dict:
        return {"defaults": self.options}

    def compile(self, schema, *, registry=None, draft=None, options=None):
        M = self.llg.LLMatcher
        with foreign_compile_errors():
            if isinstance(schema, dict):
                g = M.grammar_from_json_schema(schema, defaults=self.options)
            else:  # true / false: options can only be applied to an object schema
                g = M.grammar_from_json_schema(json.dumps(schema))
            m = M(self.lltok, g, log_level=0)
        if m.is_error():
            msg = short(m.get_error(), 500)
            raise CompileFailure(classify_message(msg), msg, "LLMatcher.is_error")
        return m

    def fill(self, m):
        self.fill_fn(m, self.bitmask, 0)

    def accept(self, m, tid):
        return bool(m.consume_token(tid)) and not m.is_error()

    def can_end(self, m):
        return bool(m.is_accepting())


# --------------------------------------------------------------------------- xgrammar
class XGrammarEngine(GrammarMatcherAPI, JsonEngine):
    name = "xgrammar"

    def __init__(self, tok, vocab_size: int | None = None, **_):
        import xgrammar

        self.xgr = xgrammar
        self.info = xgrammar.TokenizerInfo.from_huggingface(tok, vocab_size=vocab_size or len(tok))
        self.compiler = xgrammar.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        self.vocab_size = self.info.vocab_size
        self.eos_ids = sorted(self.info.stop_token_ids)
        self.bitmask = xgrammar.allocate_token_bitmask(1, self.vocab_size)  # torch int32, CPU
        self.row = self.bitmask.numpy()[0]
        self.options = {"any_whitespace": True}  # strict_mode: xgrammar's default (True)

    def describe(self) -> dict:
        return {"compile_json_schema": self.options}

    def compile(self, schema, *, registry=None, draft=None, options=None):
        with foreign_compile_errors():
            cg = self.compiler.compile_json_schema(json.dumps(schema), **self.options)
            return self.xgr.GrammarMatcher(cg)


# --------------------------------------------------------------------------- outlines-core
def hf_token_bytes(tok) -> tuple[dict[int, bytes], str]:
    """id -> bytes for the base vocabulary of an HF tokenizer, from its own vocab dict.

    Byte-level BPE pieces are mapped back through the GPT-2 byte table; SentencePiece
    pieces get ``▁`` -> space and ``<0xNN>`` -> that byte.  Added/special tokens are left
    out (they are never part of an instance's encoding here)."""
    backend = getattr(tok, "backend_tokenizer", None)
    kind = "sentencepiece"
    if backend is not None:
        try:
            dec = json.loads(backend.to_str()).get("decoder") or {}
            kinds = [dec.get("type")] + [d.get("type") for d in dec.get("decoders", []) or []]
            if "ByteLevel" in kinds:
                kind = "byte-level"
        except Exception:  # noqa: BLE001
            pass
        vocab = backend.get_vocab(with_added_tokens=False)
    else:
        vocab = tok.get_vocab()
    special = set(getattr(tok, "all_special_ids", []) or [])
    try:
        special |= set(tok.get_added_vocab().values())
    except Exception:  # noqa: BLE001
        pass
    out: dict[int, bytes] = {}
    if kind == "byte-level":
        u2b = unicode_to_bytes()  # structgen's own GPT-2 byte table
        for piece, i in vocab.items():
            if i in special:
                continue
            try:
                out[i] = bytes(u2b[c] for c in piece)
            except KeyError:
                continue
    else:
        for piece, i in vocab.items():
            if i in special:
                continue
            if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                try:
                    out[i] = bytes([int(piece[3:5], 16)])
                    continue
                except ValueError:
                    pass
            out[i] = piece.replace("\u2581", " ").encode("utf-8")
    return out, kind


class OutlinesCoreEngine(JsonEngine):
    name = "outlines-core"

    def __init__(self, tok, *, outlines_whitespace: str | None = None, **_):
        import outlines_core
        from outlines_core.json_schema import build_regex_from_schema

        self.oc = outlines_core
        self.build_regex = build_regex_from_schema
        self.whitespace = outlines_whitespace
        eos = tok.eos_token_id
        if eos is None:
            raise RuntimeError("the tokenizer has no eos_token_id")
        pieces, self.token_kind = hf_token_bytes(tok)
        mapping: dict[bytes, list[int]] = {}
        for i, b in pieces.items():
            if i != eos and b:
                mapping.setdefault(b, []).append(i)
        self.vocab = outlines_core.Vocabulary(eos, mapping)
        self.vocab_size = len(tok)
        self.eos_ids = [eos]
        self.bitmask = np.zeros((1, (self.vocab_size + 31) // 32), dtype=np.int32)
        self.row = self.bitmask[0]

    def describe(self) -> dict:
        return {"whitespace_pattern": self.whitespace, "token_bytes": self.token_kind}

    def compile(self, schema, *, registry=None, draft=None, options=None):
        with foreign_compile_errors():
            if self.whitespace is None:
                regex = self.build_regex(json.dumps(schema))
            else:
                regex = self.build_regex(json.dumps(schema), self.whitespace)
            index = self.oc.Index(regex, self.vocab)
            return self.oc.Guide(index)

    def fill(self, m):
        m.write_mask_into(self.bitmask.ctypes.data, self.bitmask.size, self.bitmask.itemsize)

    def accept(self, m, tid):
        try:
            m.advance(tid, False)
            return True
        except ValueError:
            return False

    def can_end(self, m):
        return bool(m.is_finished())


ENGINE_CLASSES = {"structgen": StructgenEngine, "llguidance": LLGuidanceEngine, "xgrammar": XGrammarEngine,
                  "outlines-core": OutlinesCoreEngine}


def installed(name: str) -> tuple[bool, str]:
    """(available, why not) without importing the heavy engines."""
    import importlib.util

    if name == "structgen":
        try:
            structgen_compiler()
        except Exception as e:  # noqa: BLE001
            return False, f"structgen.json_schema.compile_json_schema is not importable ({short(e, 120)})"
        return True, ""
    mod = MODULES.get(name)
    if mod is None:
        return False, f"unknown engine {name!r}"
    if importlib.util.find_spec(mod) is None:
        return False, f"{name} is not installed"
    return True, ""


def make_engine(name: str, tok, **opts) -> JsonEngine:
    if isinstance(tok, ByteTokenizer) and name != "structgen":
        raise RuntimeError(f"{name} needs a real tokenizer (use --tokenizer, e.g. gpt2)")
    return ENGINE_CLASSES[name](tok, **opts)
