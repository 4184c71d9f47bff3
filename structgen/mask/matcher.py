"""The per-sequence state over a ``CompiledGrammar``: the only one there is.

Every consumer (the transformers logits processor, the own generation loop,
samplers, speculative verification) holds ``Matcher`` objects and nothing
below them."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError
from .engine import CompiledGrammar, State


class Matcher:
    """Per-sequence state over a ``CompiledGrammar``: masks, accept, rollback, fork.

    Cheap to create and fork (a list of ints).  Methods mirror xgrammar's
    ``GrammarMatcher`` so code written for it ports directly."""

    __slots__ = ("compiled", "_history")

    def __init__(self, compiled: CompiledGrammar):
        self.compiled = compiled
        # (row, lexer state, terminated) after each accepted token, initial first
        self._history: list[tuple[int, int, bool]] = [(*compiled.initial_state, False)]

    @property
    def state(self) -> State:
        row, s, _ = self._history[-1]
        return row, s

    @property
    def num_accepted(self) -> int:
        return len(self._history) - 1

    def is_terminated(self) -> bool:
        """True once EOS has been accepted."""
        return self._history[-1][2]

    def can_terminate(self) -> bool:
        """True when the output so far is a complete sentence (EOS is allowed)."""
        return not self.is_terminated() and self.compiled.can_end(self.state)

    def next_token_mask(self) -> np.ndarray:
        """The allowed-token bitset (uint32[num_words]); read-only, cached."""
        if self.is_terminated():
            return self.compiled._eos
        return self.compiled.mask(self.state)

    def fill_next_token_bitmask(self, bitmask, index: int = 0) -> None:
        """Write the mask into row ``index`` of an int32 ``[batch, words]`` numpy array or torch tensor."""
        from .bitmask import write_row

        write_row(bitmask, index, self.next_token_mask())

    def is_token_allowed(self, token_id: int) -> bool:
        m = self.next_token_mask()
        return 0 <= token_id < self.compiled.vocab.size and bool((int(m[token_id >> 5]) >> (token_id & 31)) & 1)

    def _step(self, token_id: int) -> tuple[int, int, bool] | None:
        row, s, done = self._history[-1]
        if done:
            return None
        c = self.compiled
        if token_id in c.vocab.eos_ids:
            return (row, s, True) if c.can_end((row, s)) else None
        nxt = c.advance_token((row, s), token_id)
        return None if nxt is None else (nxt[0], nxt[1], False)

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False (state unchanged) if it is not allowed."""
        nxt = self._step(int(token_id))
        if nxt is None:
            return False
        self._history.append(nxt)
        return True

    def accept_tokens(self, token_ids) -> bool:
        """All or nothing: accept every token, or none (state unchanged) and return False."""
        n = self.validate_tokens(token_ids)
        ids = list(token_ids)
        if n < len(ids):
            return False
        for t in ids:
            self._history.append(self._step(int(t)))  # type: ignore[arg-type]
        return True

    def validate_tokens(self, token_ids) -> int:
        """Length of the longest allowed prefix of ``token_ids``; the state is unchanged."""
        n = 0
        base = len(self._history)
        try:
            for t in token_ids:
                if not self.accept_token(int(t)):
                    break
                n += 1
        finally:
            del self._history[base:]
        return n

    def accept_string(self, text: str | bytes) -> bool:
        """Advance by raw text (bytes), ignoring token boundaries; all or nothing."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        row, s, done = self._history[-1]
        nxt = None if done else self.compiled.advance_bytes((row, s), data)
        if nxt is None:
            return False
        self._history.append((nxt[0], nxt[1], False))
        return True

    def rollback(self, num_tokens: int = 1) -> None:
        """Undo the last ``num_tokens`` accepted tokens (or strings)."""
        if not 0 <= num_tokens <= self.num_accepted:
            raise ConfigurationError(f"cannot roll back {num_tokens} tokens: {self.num_accepted} accepted")
        if num_tokens:
            del self._history[-num_tokens:]

    def reset(self) -> None:
        del self._history[1:]

    def fork(self) -> "Matcher":
        """An independent copy sharing the compiled caches."""
        m = Matcher.__new__(Matcher)
        m.compiled = self.compiled
        m._history = list(self._history)
        return m

    def find_jump_forward_bytes(self) -> bytes:
        """Bytes every valid continuation starts with (empty when there is a choice)."""
        if self.is_terminated():
            return b""
        return self.compiled.forced_bytes(self.state)

    def find_jump_forward_string(self) -> str:
        """The forced continuation as text, cut to whole UTF-8 characters."""
        return _utf8_prefix(self.find_jump_forward_bytes())

    def forced_tokens(self) -> list[int]:
        """Tokens allowed alone at each step from here (a single allowed token, EOS excluded),
        stopping at the first choice; the matcher is not advanced."""
        out: list[int] = []
        probe = self.fork()
        vocab = self.compiled.vocab
        while len(out) < 256 and not probe.is_terminated():
            m = probe.next_token_mask()
            nz = np.flatnonzero(m)
            if len(nz) != 1 or m[nz[0]] & (m[nz[0]] - np.uint32(1)):
                break
            tid = int(nz[0]) * 32 + int(m[nz[0]]).bit_length() - 1
            if tid in vocab.eos_ids or not probe.accept_token(tid):
                break
            out.append(tid)
        return out


def _utf8_prefix(data: bytes) -> str:
    for cut in range(len(data), max(-1, len(data) - 4), -1):
        try:
            return data[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="ignore")
