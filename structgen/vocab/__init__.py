"""Vocabularies: token ids to exact bytes, and the token trie."""

from .vocabulary import TokenTrie, Vocabulary

__all__ = ["TokenTrie", "Vocabulary"]
