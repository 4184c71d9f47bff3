"""Spelling exact bytes with a vocabulary's tokens (no tokenizer needed): the
index of every byte string a token spells, greedy longest-match and byte-by-byte
tokenisation.  Completions, forced continuations and prompt healing use these."""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterator

from ..errors import VocabularyError

__all__ = ["ByteIndex", "greedy_tokenize", "bytewise_tokenize"]


class ByteIndex:
    """bytes -> every id spelling them, the sorted distinct byte strings, the longest
    length, and the bytes that are tokens by themselves."""

    def __init__(self, token_bytes):
        self.ids: dict[bytes, list[int]] = {}
        for i, b in enumerate(token_bytes):
            if b:
                self.ids.setdefault(b, []).append(i)
        self.keys = sorted(self.ids)
        self.max_len = max((len(k) for k in self.keys), default=1)
        self.single = frozenset(k[0] for k in self.keys if len(k) == 1)

    def starting_with(self, prefix: bytes) -> Iterator[bytes]:
        """The distinct token byte strings that start with ``prefix`` (``prefix`` itself included)."""
        i = bisect_left(self.keys, prefix)
        while i < len(self.keys) and self.keys[i].startswith(prefix):
            yield self.keys[i]
            i += 1


def greedy_tokenize(index: ByteIndex, data: bytes) -> list[int]:
    """Longest-match tokenisation of ``data`` over the vocabulary's byte strings."""
    out, i = [], 0
    while i < len(data):
        for n in range(min(index.max_len, len(data) - i), 0, -1):
            ids = index.ids.get(data[i:i + n])
            if ids:
                out.append(ids[0])
                i += n
                break
        else:
            raise VocabularyError(f"no token spells byte {data[i]:#04x}: cannot tokenise {data!r}")
    return out


def bytewise_tokenize(index: ByteIndex, data: bytes) -> list[int]:
    """One single-byte token per byte of ``data``."""
    out = []
    for b in data:
        ids = index.ids.get(bytes((b,)))
        if not ids:
            raise VocabularyError(f"no single-byte token for {b:#04x}")
        out.append(ids[0])
    return out
