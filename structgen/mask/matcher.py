"""The per-sequence state over a ``CompiledGrammar``: the only one there is.

Every consumer (the transformers logits processor, the own generation loop,
samplers, speculative verification) holds ``Matcher`` objects and nothing
below them.

History is a persistent linked list of steps, so ``fork`` is O(1) and a fork
shares everything with its origin: a trie of matchers (the logits processor),
one fork per draft position (speculative decoding) or per particle (SMC)
costs one small tuple per accepted token."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..errors import ConfigurationError, StructgenError, VocabularyError
from ..vocab.tokenize import bytewise_tokenize, greedy_tokenize
from .bitmask import token_bitset, write_row
from .completion import greedy_completion, shortest_completion, state_key
from .engine import CompiledGrammar, State

__all__ = ["Matcher"]

# A step: (Earley row, lexer state, required prefix still to produce, terminated, depth, previous step,
# its input: the token id, or the bytes of accept_string; None at the root)
_ROW, _LEX, _PREFIX, _DONE, _DEPTH, _PREV, _INPUT = range(7)

Encoder = Callable[[bytes], list]


class Matcher:
    """Per-sequence state over a ``CompiledGrammar``: masks, accept, rollback, fork.

    ``prefix``: bytes every output must start with before the constraint applies
    (prompt healing: the popped prompt bytes, which the model may re-tokenise
    across the seam).  ``eos_ids``: the ids that end the output (default: the
    vocabulary's; pass the model's own when they differ).  Methods mirror
    xgrammar's ``GrammarMatcher`` so code written for it ports directly."""

    __slots__ = ("compiled", "eos_ids", "_top", "_root", "_extra_eos", "__weakref__")

    def __init__(self, compiled: CompiledGrammar, *, prefix: bytes = b"", eos_ids: Iterable[int] | None = None):
        self.compiled = compiled
        vocab = compiled.vocab
        self.eos_ids = vocab.eos_ids if eos_ids is None else frozenset(int(e) for e in eos_ids)
        bad = [e for e in self.eos_ids if not 0 <= e < vocab.size]
        if bad:
            raise VocabularyError(f"EOS ids {bad} are outside the vocabulary of size {vocab.size}")
        self._extra_eos = None if self.eos_ids == vocab.eos_ids else token_bitset(vocab.num_words, self.eos_ids)
        row, lex = compiled.initial_state
        self._root = self._top = (row, lex, bytes(prefix), False, 0, None, None)

    def __repr__(self) -> str:
        return f"Matcher({self.compiled!r}, accepted={self.num_accepted}, terminated={self.is_terminated()})"

    # --- state ------------------------------------------------------------------
    @property
    def state(self) -> State:
        """The parser state ``(row, lexer state)`` (for debugging and cache keys)."""
        return self._top[_ROW], self._top[_LEX]

    @property
    def pending_prefix(self) -> bytes:
        """Required prefix bytes not produced yet."""
        return self._top[_PREFIX]

    @property
    def num_accepted(self) -> int:
        return self._top[_DEPTH]

    def is_terminated(self) -> bool:
        """True once EOS has been accepted."""
        return self._top[_DONE]

    def can_terminate(self) -> bool:
        """True when the output so far is a complete sentence (EOS is allowed)."""
        top = self._top
        return not top[_DONE] and not top[_PREFIX] and self.compiled.can_end((top[_ROW], top[_LEX]))

    def must_terminate(self) -> bool:
        """True when nothing but EOS may follow (e.g. a fixed-length regex is complete)."""
        return self.is_terminated() or (self.can_terminate() and len(self.compiled.viable_bytes(self.state)) == 0)

    # --- masks ------------------------------------------------------------------
    def next_token_mask(self) -> np.ndarray:
        """The allowed-token bitset (uint32[num_words]), read-only (made from the cached mask)."""
        top, c = self._top, self.compiled
        if top[_DONE]:
            return c._eos if self._extra_eos is None else self._extra_eos
        state = (top[_ROW], top[_LEX])
        if top[_PREFIX]:
            return self._prefix_mask(top[_PREFIX], state)
        words = c.mask(state)
        if self._extra_eos is None:
            return words
        memo = c.completion_cache.prefix_masks
        key = ("eos", self.eos_ids, state_key(state))
        hit = memo.get(key)
        if hit is None:
            hit = words & ~c._eos
            if c.can_end(state):
                hit |= self._extra_eos
            hit.flags.writeable = False
            memo.put(key, hit)
        return hit

    def _prefix_mask(self, prefix: bytes, state: State) -> np.ndarray:
        """Tokens spelling a prefix of ``prefix``, or ``prefix`` and a valid continuation."""
        c = self.compiled
        memo = c.completion_cache.prefix_masks
        key = ("prefix", prefix, state_key(state))
        hit = memo.get(key)
        if hit is not None:
            return hit
        index = c.vocab.byte_index
        ids: list[int] = []
        for n in range(1, len(prefix) + 1):
            ids += index.ids.get(prefix[:n], ())
        for k in index.starting_with(prefix):
            if len(k) > len(prefix) and c.advance_bytes(state, k[len(prefix):]) is not None:
                ids += index.ids[k]
        words = token_bitset(c.vocab.num_words, ids)
        words.flags.writeable = False
        return memo.put(key, words)

    def fill_next_token_bitmask(self, bitmask, index: int = 0) -> None:
        """Write the mask into row ``index`` of an int32 ``[batch, words]`` numpy array or torch tensor."""
        top = self._top
        if top[_DONE] or top[_PREFIX] or self._extra_eos is not None:
            write_row(bitmask, index, self.next_token_mask())
        else:  # the constraint's own mask, written straight from its cache
            self.compiled.write_mask((top[_ROW], top[_LEX]), bitmask, index)

    def is_token_allowed(self, token_id: int) -> bool:
        """Is ``token_id`` in the mask (computes the mask; :meth:`check_token` does not)."""
        m = self.next_token_mask()
        return 0 <= token_id < self.compiled.vocab.size and bool((int(m[token_id >> 5]) >> (token_id & 31)) & 1)

    def check_token(self, token_id: int) -> bool:
        """Would ``token_id`` be accepted?  Advances a parser, never builds a mask: the
        cheap check rejection samplers (AWRS) and verifiers use."""
        return self._step(int(token_id)) is not None

    # --- advancing ----------------------------------------------------------------
    def _step(self, token_id: int):
        top = self._top
        if top[_DONE]:
            return None
        c, prefix = self.compiled, top[_PREFIX]
        state = (top[_ROW], top[_LEX])
        depth = top[_DEPTH] + 1
        if token_id in self.eos_ids:
            return (top[_ROW], top[_LEX], b"", True, depth, top, token_id) \
                if not prefix and c.can_end(state) else None
        if not prefix:
            nxt = c.advance_token(state, token_id)
            return None if nxt is None else (nxt[0], nxt[1], b"", False, depth, top, token_id)
        tb = c.vocab.token_bytes[token_id] if 0 <= token_id < c.vocab.size else None
        return self._step_bytes(tb, depth, token_id) if tb else None

    def _step_bytes(self, data: bytes, depth: int, given):
        """The step after raw ``data`` (the required prefix first), or None; ``given``
        is what the caller passed (a token id or the bytes), recorded in the step."""
        top, c = self._top, self.compiled
        prefix = top[_PREFIX]
        if prefix.startswith(data):
            return (top[_ROW], top[_LEX], prefix[len(data):], False, depth, top, given)
        if not data.startswith(prefix):
            return None
        nxt = c.advance_bytes((top[_ROW], top[_LEX]), data[len(prefix):])
        return None if nxt is None else (nxt[0], nxt[1], b"", False, depth, top, given)

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False (state unchanged) if it is not allowed."""
        nxt = self._step(int(token_id))
        if nxt is None:
            return False
        self._top = nxt
        return True

    def accept_tokens(self, token_ids) -> bool:
        """All or nothing: accept every token, or none (state unchanged) and return False."""
        start = self._top
        for t in token_ids:
            if not self.accept_token(t):
                self._top = start
                return False
        return True

    def validate_tokens(self, token_ids) -> int:
        """Length of the longest allowed prefix of ``token_ids``; the state is unchanged."""
        start, n = self._top, 0
        for t in token_ids:
            if not self.accept_token(t):
                break
            n += 1
        self._top = start
        return n

    def accept_string(self, text: str | bytes) -> bool:
        """Advance by raw text (bytes), ignoring token boundaries; all or nothing."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        if self._top[_DONE]:
            return False
        nxt = self._step_bytes(data, self._top[_DEPTH] + 1, data)
        if nxt is None:
            return False
        self._top = nxt
        return True

    def rollback(self, num_tokens: int = 1) -> None:
        """Undo the last ``num_tokens`` accepted tokens (or strings)."""
        if not 0 <= num_tokens <= self.num_accepted:
            raise ConfigurationError(f"cannot roll back {num_tokens} tokens: {self.num_accepted} accepted")
        top = self._top
        for _ in range(num_tokens):
            top = top[_PREV]
        self._top = top

    def reset(self) -> None:
        self._top = self._root

    def fork(self) -> "Matcher":
        """An independent copy sharing the compiled caches and the history (O(1))."""
        m = Matcher.__new__(Matcher)
        m.compiled, m.eos_ids, m._extra_eos = self.compiled, self.eos_ids, self._extra_eos
        m._root, m._top = self._root, self._top
        return m

    def _replay_from(self, step) -> tuple[int, list]:
        """How a copy of this matcher at ``step`` (a step of this matcher's history
        or a fork's) reaches the current state: ``(undo, inputs)``: roll back
        ``undo`` steps, then replay ``inputs`` in order (token ids for
        ``accept_token``, bytes for ``accept_string``).  For replicas in other
        processes (mask/procpool.py)."""
        top, inputs = self._top, []
        while top[_DEPTH] > step[_DEPTH]:
            inputs.append(top[_INPUT])
            top = top[_PREV]
        undo = 0
        while step[_DEPTH] > top[_DEPTH]:
            step, undo = step[_PREV], undo + 1
        while step is not top:  # equal depths: walk both back to the common step
            if step[_PREV] is None:
                raise ConfigurationError("the step is not of this matcher's history")
            inputs.append(top[_INPUT])
            top, step, undo = top[_PREV], step[_PREV], undo + 1
        inputs.reverse()
        return undo, inputs

    # --- forced continuations --------------------------------------------------------
    def find_jump_forward_bytes(self, limit: int = 4096) -> bytes:
        """Bytes every valid continuation starts with (empty when there is a choice)."""
        if self.is_terminated():
            return b""
        return self.pending_prefix + self.compiled.forced_bytes(self.state, limit=limit)

    def find_jump_forward_string(self) -> str:
        """The forced continuation as text, cut to whole UTF-8 characters."""
        return utf8_prefix(self.find_jump_forward_bytes())

    def forced_tokens(self) -> list[int]:
        """Tokens allowed alone at each step from here (a single allowed token, EOS excluded),
        stopping at the first choice; the matcher is not advanced."""
        out: list[int] = []
        probe = self.fork()
        while len(out) < 256 and not probe.is_terminated():
            m = probe.next_token_mask()
            nz = np.flatnonzero(m)
            if len(nz) != 1 or m[nz[0]] & (m[nz[0]] - np.uint32(1)):
                break
            tid = int(nz[0]) * 32 + int(m[nz[0]]).bit_length() - 1
            if tid in self.eos_ids or not probe.accept_token(tid):
                break
            out.append(tid)
        return out

    # --- completions (budget-safe closing) ------------------------------------------------
    def completion_bytes(self, *, shortest: bool = True) -> bytes | None:
        """Bytes that complete the output (the required prefix included): the shortest
        one (greedy when the search is too large, or with ``shortest=False``); b"" when
        already complete; None when there is none (or none was found)."""
        if self.is_terminated():
            return b""
        st = self.state
        tail = shortest_completion(self.compiled, st) if shortest else None
        if tail is None:
            tail = greedy_completion(self.compiled, st)
        return None if tail is None else self.pending_prefix + tail

    def completion_tokens(self, budget: int | None = None, encode: Encoder | None = None) -> list[int] | None:
        """Token ids that complete the output within ``budget`` tokens (EOS not included):
        the shortest completion's, else the greedy completion's; each spelled canonically
        by ``encode`` (bytes -> ids, e.g. the tokenizer's) or greedily by the vocabulary,
        and byte by byte, whichever is fewer and replays through this matcher.  None when
        no completion fits.  Memoised per state (one tokenizer per vocabulary is assumed:
        any spelling found replays, so a memo hit is always valid)."""
        if self.is_terminated():
            return []
        c, top = self.compiled, self._top
        key = (top[_PREFIX], *state_key(self.state))
        memo = c.completion_cache.closing
        ids = memo.get(key, False)
        if ids is False:
            tail = shortest_completion(c, self.state)
            ids = None if tail is None else self._spell(self.pending_prefix + tail, encode)
            memo.put(key, ids)
        if ids is not None and (budget is None or len(ids) <= budget):
            return ids
        tail = greedy_completion(c, self.state)
        if tail is None:
            return None
        ids = self._spell(self.pending_prefix + tail, encode)
        return ids if ids is not None and (budget is None or len(ids) <= budget) else None

    def fits(self, budget: int, encode: Encoder | None = None) -> bool:
        """Does some completion take at most ``budget`` tokens?  Cheap first: a greedy
        completion of at most ``budget`` bytes, each a token by itself, fits."""
        if self.is_terminated():
            return True
        tail = greedy_completion(self.compiled, self.state)
        if tail is not None:
            data = self.pending_prefix + tail
            if len(data) <= budget and all(b in self.compiled.vocab.byte_index.single for b in data):
                return True
        return self.completion_tokens(budget, encode) is not None

    def _spell(self, data: bytes, encode: Encoder | None) -> list[int] | None:
        """The fewest-token spelling of ``data`` that replays to a complete output."""
        index = self.compiled.vocab.byte_index
        best = None
        spellers = ((lambda: encode(data)) if encode is not None else (lambda: greedy_tokenize(index, data)),
                    lambda: bytewise_tokenize(index, data))
        for speller in spellers:
            try:
                ids = list(speller())
            except StructgenError:
                continue
            if (best is None or len(ids) < len(best)) and self._replays(ids):
                best = ids
        return best

    def _replays(self, ids: list[int]) -> bool:
        probe = self.fork()
        return all(t not in self.eos_ids for t in ids) and probe.accept_tokens(ids) and probe.can_terminate()


def utf8_prefix(data: bytes) -> str:
    """The longest prefix of ``data`` made of whole UTF-8 characters, decoded."""
    for cut in range(len(data), max(-1, len(data) - 4), -1):
        try:
            return data[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="ignore")
