"""Model-free draft sources for speculative decoding under a constraint, and the
acceptance statistics that size drafts and switch sources off.

A draft is a list of tokens proposed after the current output, each tagged with
its source; one-hot drafts (these) are verified with
:func:`structgen.sampling.speculative.verify_draft` and ``q=None``, which keeps
the output distribution exactly that of masked decoding whatever the proposal.

* :class:`GrammarDrafts`: the forced continuation (every valid output takes
  it), spelled canonically.  In ``verify`` mode nothing is held back: a
  canonical spelling that the model would merge across the seam is simply
  rejected at the seam, which costs no extra forward pass (holding back the
  last tokens would).  In ``inject`` mode (no verification) the last two
  tokens / 7 bytes are held back, llguidance's rule.
* :class:`PromptLookupDrafts`: n-gram lookup (REST / prompt lookup decoding) in
  the prompt, the constraint's literals (JSON keys, enum values) and the output
  so far, cut to the prefix the matcher accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

__all__ = ["GrammarDrafts", "PromptLookupDrafts", "SourceStats", "DRAFT_SOURCES"]

#: the sources ``generate(draft=...)`` knows; "model" and "layerskip" need a draft model (integrations)
DRAFT_SOURCES = ("grammar", "prompt", "model", "layerskip")

Encoder = Callable[[bytes], list]


class GrammarDrafts:
    name = "grammar"

    def __init__(self, encode: Encoder, *, hold_back: bool = False, limit: int = 32):
        self.encode, self.hold_back, self.limit = encode, hold_back, limit

    def propose(self, matcher, vocab) -> list[int]:
        if matcher.is_terminated():
            return []
        forced = matcher.find_jump_forward_string().encode()
        if not forced:
            return []
        ids = self.encode(forced)[:self.limit]
        if self.hold_back:
            dropped, nbytes = 0, 0
            while ids and dropped < 2 and nbytes < 7:
                nbytes += len(vocab.token_bytes[ids.pop()] or b"")
                dropped += 1
        return ids[:matcher.validate_tokens(ids)]


class PromptLookupDrafts:
    """Continuations of the longest n-gram (``max_ngram`` down to ``min_ngram``
    tokens) ending the current context that occurs earlier in the corpus (the
    prompt, extra token sequences such as the schema's literals, the output so
    far); the most recent occurrence wins.  Only the prefix the matcher accepts
    is proposed."""

    name = "prompt"

    def __init__(self, prompt_ids: Sequence[int], extra: Sequence[Sequence[int]] = (), *,
                 max_ngram: int = 3, min_ngram: int = 1, limit: int = 8):
        self.max_ngram, self.min_ngram, self.limit = max_ngram, min_ngram, limit
        self.corpus = [list(prompt_ids)] + [list(e) for e in extra if e]

    def propose(self, matcher, output: Sequence[int], limit: int | None = None) -> list[int]:
        limit = self.limit if limit is None else limit
        if limit <= 0 or matcher.is_terminated():
            return []
        context = list(self.corpus[0]) + list(output)
        for n in range(min(self.max_ngram, len(context)), self.min_ngram - 1, -1):
            key = context[-n:]
            for seq in [list(output)] + self.corpus[::-1]:
                draft = _continuation(seq, key, limit)
                if draft:
                    draft = draft[:matcher.validate_tokens(draft)]
                    if draft:
                        return draft
        return []


def _continuation(seq: list[int], key: list[int], limit: int) -> list[int]:
    """The tokens after the last occurrence of ``key`` in ``seq`` that has a continuation."""
    n = len(key)
    for start in range(len(seq) - n - 1, -1, -1):
        if seq[start:start + n] == key and start + n < len(seq):
            return seq[start + n:start + n + limit]
    return []


@dataclass
class SourceStats:
    """Acceptance of one draft source, and the draft length it earns (SpecDec++-style:
    the length grows while most drafts are accepted and shrinks when they are not); a
    source whose expected gain falls below its cost is switched off."""

    name: str
    cost: float = 0.0  # cost of one drafted token, in target forward passes (0 for model-free sources)
    verify_cost: float = 0.02  # extra cost of one more token in the target's forward pass
    max_len: int = 8
    proposed: int = 0
    accepted: int = 0
    length: int = field(default=4)
    enabled: bool = True
    warmup: int = 32

    def record(self, proposed: int, accepted: int) -> None:
        self.proposed += proposed
        self.accepted += accepted
        if not proposed:
            return
        if accepted == proposed:
            self.length = min(self.max_len, self.length + 1)
        elif accepted < proposed // 2:
            self.length = max(1, self.length - 1)
        if self.proposed >= self.warmup and self.gain() < 1.0:
            self.enabled = False

    @property
    def rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0

    def gain(self) -> float:
        """Expected tokens per unit of cost with this source, relative to none (1.0)."""
        a, k = min(self.rate, 0.999), self.length
        tokens = (1 - a ** (k + 1)) / (1 - a)
        return tokens / (1 + k * (self.cost + self.verify_cost))
