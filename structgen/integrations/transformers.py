"""structgen constraints inside ``transformers``' ``model.generate``.

::

    from structgen import Vocabulary, compile_regex
    from structgen.integrations.transformers import StructgenLogitsProcessor, StructgenStoppingCriteria

    vocab = Vocabulary.from_tokenizer(tok, vocab_size=model.config.vocab_size)
    proc = StructgenLogitsProcessor([compile_regex(r"\\d+", vocab), compile_regex("yes|no", vocab)])
    out = model.generate(**batch, logits_processor=[proc],
                         stopping_criteria=[StructgenStoppingCriteria(proc)], ...)

**State comes from ``input_ids``, never from a call counter.**  Each batch row's
generated tokens (everything after the prompt length seen at the first call) are
walked down a *prefix trie of matcher snapshots*, one trie per constraint; a node
holds the parser state reached by that prefix.  Rows share nodes, and a walk
only computes states for tokens not seen before.  So the processor is correct
whatever order and shape its calls come in:

* sampling / greedy: one new node per row and step;
* beam search: rows are permuted between steps (each finds its own prefix);
* assisted decoding: the target model calls the processor once per candidate
  prefix ``candidate_input_ids[:, :cur_len + i]``, and the assistant model calls
  the *same* processor with its own (longer) prompt: both are just prefixes;
* left padding: the prompt length is fixed at the first call, so padding is
  never looked at;
* finished rows (EOS accepted, then padding): only EOS and the pad token stay
  allowed; a prefix the constraint rejects (an unverified assisted-decoding
  candidate, a beam that took a ``-inf`` token) gets the same mask.

Row ``r`` of a call with ``R`` rows uses constraint ``r // (R // n)`` for ``n``
constraints: ``num_beams``/``num_return_sequences`` expansions and beam search's
``2 * num_beams`` candidate rows (seen by stopping criteria) all keep prompts
contiguous.  ``None`` in the list leaves that prompt unconstrained.

transformers 5 (and 4.4x) merge user logits processors *before* the sampling
warpers (temperature, top-k, top-p, min-p), so the mask is applied first and the
warpers renormalise over allowed tokens only.

The prompt length and prompts are fixed at the first call; a later call whose
prompt columns differ is taken as a new ``generate`` call and starts over, so a
processor can be reused -- except with a new prompt that *extends* the old one
(a chat continuation): use a new processor, or :meth:`StructgenLogitsProcessor.reset`.  Also here: :func:`vocabulary_for` (a cached ``Vocabulary`` per
tokenizer) and :func:`encode_bytes` (canonical tokenisation of exact bytes).
"""

from __future__ import annotations

import weakref
from typing import Iterable, Sequence

import numpy as np
import torch

from ..errors import ConfigurationError, VocabularyError
from ..mask.engine import CompiledGrammar
from ..mask.batch import fill_next_token_bitmask_batch
from ..mask.bitmask import bitset_to_bool, token_bitset
from ..mask.matcher import Matcher
from ..vocab import Vocabulary
from ..vocab.tokenize import greedy_tokenize

try:  # subclass the real bases when transformers is importable (it always is in practice)
    from transformers import LogitsProcessor as _LPBase
    from transformers import StoppingCriteria as _SCBase
except ImportError:  # pragma: no cover
    _LPBase = _SCBase = object

__all__ = ["StructgenLogitsProcessor", "StructgenStoppingCriteria", "vocabulary_for", "encode_bytes"]


# --- vocabulary and tokenisation helpers -----------------------------------------

_VOCABS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_VOCABS_STRONG: dict[int, tuple[object, dict]] = {}


def vocabulary_for(tokenizer, vocab_size: int | None = None) -> Vocabulary:
    """``Vocabulary.from_tokenizer(tokenizer, vocab_size)``, cached per tokenizer object."""
    try:
        per = _VOCABS.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable
        per = _VOCABS_STRONG.setdefault(id(tokenizer), (tokenizer, {}))[1]
    v = per.get(vocab_size)
    if v is None:
        v = per[vocab_size] = Vocabulary.from_tokenizer(tokenizer, vocab_size=vocab_size)
    return v


def encode_bytes(tokenizer, vocab: Vocabulary, data: bytes) -> list[int]:
    """Token ids whose bytes concatenate to exactly ``data``.

    The tokenizer's own (canonical) encoding when it reproduces ``data`` (valid
    UTF-8, no special-token text, no SentencePiece prefix space in the way);
    otherwise a greedy longest-match over the vocabulary's byte strings (never
    fails on byte-level BPE or SentencePiece with byte fallback)."""
    if not data:
        return []
    if tokenizer is not None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            try:
                ids = list(tokenizer.encode(text, add_special_tokens=False))
            except Exception:  # noqa: BLE001 - any tokenizer failure: use the fallback
                ids = []
            if ids and all(0 <= i < vocab.size and vocab.token_bytes[i] for i in ids) \
                    and vocab.decode(ids) == data:
                return ids
    return greedy_tokenize(vocab.byte_index, data)


def mask_scores(scores: torch.Tensor, bitmask: np.ndarray, rows: list[int], vocab_size: int) -> torch.Tensor:
    """Set disallowed scores to -inf in place, for the listed ``rows`` of an int32
    ``[rows, words]`` numpy bitmask; ids at or past ``vocab_size`` are disallowed.
    (``numpy.unpackbits`` on the CPU, then one ``masked_fill_``.)"""
    allowed = torch.from_numpy(bitset_to_bool(bitmask[rows], scores.shape[-1], vocab_size))
    blocked = (~allowed).to(scores.device, non_blocking=True)
    if len(rows) == scores.shape[0]:
        scores.masked_fill_(blocked, float("-inf"))
    else:
        idx = torch.tensor(rows, device=scores.device)
        scores[idx] = scores[idx].masked_fill(blocked, float("-inf"))
    return scores


# --- the prefix trie of matchers ------------------------------------------------------

class _Prefix:
    """A trie node: the matcher after this prefix of generated tokens (None: the prefix
    is not allowed), and its children by token."""

    __slots__ = ("matcher", "children")

    def __init__(self, matcher: Matcher | None):
        self.matcher, self.children = matcher, {}

    @property
    def live(self) -> bool:
        return self.matcher is not None and not self.matcher.is_terminated()


class _MatcherTrie:
    """The matchers of one constraint, one per distinct prefix seen (forks are O(1))."""

    def __init__(self, constraint, eos_ids: frozenset[int]):
        if isinstance(constraint, Matcher):  # keeps its own EOS ids
            matcher = constraint.fork()
        elif isinstance(constraint, CompiledGrammar):
            matcher = constraint.matcher(eos_ids=constraint.vocab.eos_ids | eos_ids)
        else:
            raise ConfigurationError(
                f"constraints must be CompiledGrammar, Matcher or None, got {type(constraint).__name__}")
        self.vocab = matcher.compiled.vocab
        self.eos = matcher.eos_ids
        self.root = _Prefix(matcher)
        self.nodes = 1

    def child(self, node: _Prefix, token: int) -> _Prefix:
        if not node.live:
            return node  # absorbing: padding after EOS, or an already rejected prefix
        nxt = node.children.get(token)
        if nxt is None:
            m = node.matcher.fork()
            ok = m.accept_token(token)
            nxt = node.children[token] = _Prefix(m if ok else None)
            self.nodes += 1
        return nxt

    def walk(self, tokens: Iterable[int]) -> _Prefix:
        node = self.root
        for t in tokens:
            node = self.child(node, t)
            if not node.live:
                break
        return node


class StructgenLogitsProcessor(_LPBase):
    """Mask each row's logits to the tokens its constraint allows next.

    ``constraints``: one ``CompiledGrammar`` (or ``Matcher``, to start from its
    state) for every row, or a list with one entry per prompt (``None`` = no
    constraint).  ``eos_token_id``: extra ids treated as EOS besides the
    vocabulary's (e.g. the model's ``generation_config.eos_token_id``);
    ``pad_token_id``: allowed, with EOS, in finished rows; ``threads``: worker threads for
    the rows' masks, or ``processes``: fill them on this many processes
    (:func:`structgen.mask.batch.fill_next_token_bitmask_batch`)."""

    def __init__(self, constraints, *, eos_token_id: int | Sequence[int] | None = None,
                 pad_token_id: int | None = None, threads: int = 1, processes: int = 1):
        if not isinstance(constraints, (list, tuple)):
            constraints = [constraints]
        if not constraints:
            raise ConfigurationError("StructgenLogitsProcessor needs at least one constraint")
        extra = frozenset() if eos_token_id is None else frozenset(
            [int(eos_token_id)] if isinstance(eos_token_id, int) else (int(e) for e in eos_token_id))
        self.tries: list[_MatcherTrie | None] = [None if c is None else _MatcherTrie(c, extra) for c in constraints]
        live = [g for g in self.tries if g is not None]
        sizes = {g.vocab.size for g in live}
        if len(sizes) > 1:
            raise ConfigurationError(f"all constraints must share one vocabulary size, got {sorted(sizes)}")
        self.vocab_size = sizes.pop() if sizes else None
        self.num_words = (self.vocab_size + 31) // 32 if self.vocab_size else 0
        self.pad_token_id = pad_token_id
        self.threads, self.processes = threads, processes
        self._finished_words: dict[int, np.ndarray] = {}
        self.prompt_length: int | None = None
        self._prompts: set[tuple[int, ...]] | None = None

    def reset(self) -> None:
        """Forget the prompts (the tries stay: they are keyed by generated tokens only)."""
        self.prompt_length = None
        self._prompts = None

    def _check_prompts(self, rows: list[list[int]]) -> None:
        """Fix the prompt length and prompts at the first call; a later call with a row
        whose prompt columns are none of them belongs to a new ``generate`` call: start
        over (reuse is safe unless a new prompt extends an old one)."""
        if self.prompt_length is not None:
            start = self.prompt_length
            if all(len(r) >= start and tuple(r[:start]) in self._prompts for r in rows):
                return
            self.reset()
        self.prompt_length = len(rows[0])
        self._prompts = {tuple(r) for r in rows}

    # --- rows -> nodes
    def _trie_of(self, row: int, rows: int) -> int:
        n = len(self.tries)
        if rows % n:
            raise ConfigurationError(
                f"{rows} rows cannot be split among {n} constraints: pass one constraint per prompt")
        return row // (rows // n)

    def nodes(self, input_ids: torch.Tensor) -> list[tuple[_MatcherTrie | None, _Prefix | None]]:
        """(trie, node) of every row of ``input_ids``; fixes the prompt length at the first call."""
        full = input_ids.tolist()
        self._check_prompts(full)
        start = self.prompt_length
        rows = len(full)
        gen = [r[start:] for r in full]
        out = []
        for r in range(rows):
            g = self.tries[self._trie_of(r, rows)]
            out.append((g, None if g is None else g.walk(gen[r])))
        return out

    def _finished_mask(self, g: _MatcherTrie) -> np.ndarray:
        key = id(g)
        words = self._finished_words.get(key)
        if words is None:
            words = token_bitset(self.num_words, set(g.eos) | ({self.pad_token_id} if self.pad_token_id is not None
                                                                else set()))
            self._finished_words[key] = words
        return words

    def masks(self, input_ids: torch.Tensor) -> tuple[np.ndarray, list[int]]:
        """int32 ``[rows, words]`` bitmask and the indices of the constrained rows."""
        pairs = self.nodes(input_ids)
        bitmask = np.full((len(pairs), max(self.num_words, 1)), -1, np.int32)
        rows, live, live_rows = [], [], []
        for r, (g, node) in enumerate(pairs):
            if g is None:
                continue
            rows.append(r)
            if node.live:
                live.append(node.matcher)
                live_rows.append(r)
            else:
                bitmask[r] = self._finished_mask(g).view(np.int32)
        if live:  # one call for the batch (threads: see mask/batch.py's default_threads)
            fill_next_token_bitmask_batch(live, bitmask, threads=self.threads, indices=live_rows,
                                          processes=self.processes)
        return bitmask, rows

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        bitmask, rows = self.masks(input_ids)
        if not rows:
            return scores
        return mask_scores(scores, bitmask, rows, self.vocab_size)

    # --- used by the stopping criteria
    def finished(self, input_ids: torch.Tensor) -> list[bool]:
        """Per row: EOS accepted, or the output is complete and nothing may follow."""
        out = []
        for g, node in self.nodes(input_ids):
            out.append(g is not None and node.matcher is not None and node.matcher.must_terminate())
        return out


class StructgenStoppingCriteria(_SCBase):
    """Ends the rows whose constraint is terminated (EOS accepted) or complete with
    no possible continuation (e.g. a fixed-length regex), so they do not wait for
    an EOS step.  Shares the processor's tries."""

    def __init__(self, processor: StructgenLogitsProcessor):
        self.processor = processor

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        done = self.processor.finished(input_ids)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
