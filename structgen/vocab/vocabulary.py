"""The immutable byte vocabulary and its DFS-ordered token trie."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np

from ..errors import VocabularyError


@dataclass(frozen=True, eq=False)
class TokenTrie:
    """Every distinct token byte string in one trie, nodes in DFS (= byte-sorted) order.

    Node ``i`` stands for the byte string spelled from the root down to it.
    ``depth[i]`` is that string's length (root children have depth 1) and the
    subtree of ``i`` is the node range ``[i, subtree_end[i])``.  Tokens whose
    bytes end exactly at node ``i`` are ``tok_ids[tok_start[i]:tok_start[i+1]]``
    (several ids when the vocabulary has duplicate byte strings)."""

    byte: np.ndarray  # uint8[N]
    depth: np.ndarray  # int32[N]
    subtree_end: np.ndarray  # int32[N]
    tok_start: np.ndarray  # int32[N+1]
    tok_ids: np.ndarray  # int32[M]

    @property
    def num_nodes(self) -> int:
        return len(self.byte)

    @cached_property
    def max_depth(self) -> int:
        """Length of the longest token (sizes the walk kernels' stacks)."""
        return int(self.depth.max()) if len(self.depth) else 0

    @classmethod
    def build(cls, token_bytes: Sequence[bytes | None]) -> "TokenTrie":
        by_bytes: dict[bytes, list[int]] = {}
        for tid, b in enumerate(token_bytes):
            if b:  # None (special) and b"" (empty) never enter the trie
                by_bytes.setdefault(b, []).append(tid)
        keys = sorted(by_bytes)
        node_byte: list[int] = []
        node_depth: list[int] = []
        node_toks: list[list[int]] = []
        path: list[int] = []  # node index at each depth of the previous key
        prev = b""
        for key in keys:
            lcp = 0
            limit = min(len(prev), len(key))
            while lcp < limit and prev[lcp] == key[lcp]:
                lcp += 1
            del path[lcp:]
            for d in range(lcp, len(key)):
                path.append(len(node_byte))
                node_byte.append(key[d])
                node_depth.append(d + 1)
                node_toks.append([])
            node_toks[path[-1]].extend(by_bytes[key])
            prev = key
        n = len(node_byte)
        depth = np.asarray(node_depth, dtype=np.int32)
        subtree_end = np.empty(n, dtype=np.int32)
        stack: list[int] = []
        for i in range(n):
            while stack and node_depth[stack[-1]] >= node_depth[i]:
                subtree_end[stack.pop()] = i
            stack.append(i)
        for j in stack:
            subtree_end[j] = n
        counts = np.fromiter((len(t) for t in node_toks), dtype=np.int32, count=n)
        tok_start = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(counts, out=tok_start[1:])
        tok_ids = np.fromiter((t for ts in node_toks for t in ts), dtype=np.int32,
                              count=int(tok_start[-1]))
        return cls(np.asarray(node_byte, dtype=np.uint8), depth, subtree_end, tok_start, tok_ids)


class Vocabulary:
    """Token id -> exact bytes, for one model.

    ``token_bytes[i]`` is ``None`` for special tokens and unused (padding) ids:
    those never enter the trie and are never allowed as text.  ``size`` is the
    width of the model's logits (may exceed ``len(token_bytes)``)."""

    def __init__(self, token_bytes: Sequence[bytes | None], eos_ids: Iterable[int], *,
                 special_ids: Iterable[int] = (), size: int | None = None, name: str = "",
                 prefix_space: bool = False):
        tb = list(token_bytes)
        self.size = len(tb) if size is None else int(size)
        if self.size < len(tb):
            raise VocabularyError(f"size {self.size} is smaller than the {len(tb)} tokens given")
        tb += [None] * (self.size - len(tb))
        self.special_ids = frozenset(int(i) for i in special_ids)
        for i in self.special_ids:
            tb[i] = None
        self.token_bytes: tuple[bytes | None, ...] = tuple(tb)
        self.eos_ids = frozenset(int(i) for i in eos_ids)
        bad = [i for i in self.eos_ids if not 0 <= i < self.size]
        if bad:
            raise VocabularyError(f"EOS ids {bad} are outside the vocabulary of size {self.size}")
        self.name = name
        self.prefix_space = prefix_space

    def __reduce__(self):
        # its defining arguments only: the trie and the fingerprint are rebuilt where it lands
        return _vocabulary, (self.token_bytes, sorted(self.eos_ids), sorted(self.special_ids), self.size,
                             self.name, self.prefix_space)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (f"Vocabulary({self.name or 'unnamed'}, size={self.size}, "
                f"eos={sorted(self.eos_ids)}, fingerprint={self.fingerprint[:12]})")

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over (id, bytes, special flag); keys every cache."""
        h = hashlib.sha256()
        h.update(f"{self.size}|{sorted(self.eos_ids)}|".encode())
        for i, b in enumerate(self.token_bytes):
            if b is None:
                h.update(b"\xff%d\xfe" % i)
            else:
                h.update(b"%d:%d:" % (i, len(b)) + b)
        return h.hexdigest()

    @cached_property
    def trie(self) -> TokenTrie:
        return TokenTrie.build(self.token_bytes)

    @cached_property
    def non_text(self) -> np.ndarray:
        """bool[size]: special and unused ids that are not EOS (never allowed by any constraint)."""
        bad = np.array([b is None for b in self.token_bytes], dtype=bool)
        bad[list(self.eos_ids)] = False
        bad.flags.writeable = False
        return bad

    @cached_property
    def byte_index(self):
        """The :class:`~structgen.vocab.tokenize.ByteIndex` of the token byte strings."""
        from .tokenize import ByteIndex

        return ByteIndex(self.token_bytes)

    @property
    def num_words(self) -> int:
        """Width of one bitmask row in 32-bit words."""
        return (self.size + 31) // 32

    def decode(self, ids: Iterable[int]) -> bytes:
        """Concatenated bytes of text tokens (special tokens contribute nothing)."""
        return b"".join(self.token_bytes[i] or b"" for i in ids)

    def token_id(self, data: bytes) -> int | None:
        """Some id whose bytes are exactly ``data`` (None if there is none)."""
        return self._index.get(data)

    @cached_property
    def _index(self) -> dict[bytes, int]:
        idx: dict[bytes, int] = {}
        for i, b in enumerate(self.token_bytes):
            if b and b not in idx:
                idx[b] = i
        return idx

    # --- constructors -------------------------------------------------
    @classmethod
    def from_tokenizer(cls, tokenizer, vocab_size: int | None = None) -> "Vocabulary":
        """Build from a transformers tokenizer (byte-level BPE, SentencePiece with
        byte fallback, tiktoken-style).  ``vocab_size``: the model's logits width."""
        from .hf import vocabulary_from_tokenizer

        return vocabulary_from_tokenizer(tokenizer, vocab_size=vocab_size)

    @classmethod
    def from_strings(cls, tokens: Sequence[str | bytes], *, eos: str | bytes | None = "<eos>",
                     name: str = "toy") -> "Vocabulary":
        """A toy vocabulary: each entry's UTF-8 bytes; ``eos`` is appended as a special id."""
        tb = [t.encode() if isinstance(t, str) else bytes(t) for t in tokens]
        if eos is None:
            return cls(tb, (), name=name)
        return cls(tb + [None], [len(tb)], special_ids=[len(tb)], name=name)

    @classmethod
    def byte_level(cls, name: str = "bytes") -> "Vocabulary":
        """256 single-byte tokens plus EOS (id 256)."""
        return cls.from_strings([bytes([b]) for b in range(256)], name=name)


def _vocabulary(token_bytes, eos_ids, special_ids, size, name, prefix_space) -> Vocabulary:
    return Vocabulary(token_bytes, eos_ids, special_ids=special_ids, size=size, name=name, prefix_space=prefix_space)
