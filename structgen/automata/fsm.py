"""Dense byte-level DFA: the one automaton format every compiler lowers to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ByteDFA:
    """A deterministic automaton over bytes.

    ``trans[s, classes[b]]`` is the next state or -1 (dead).  Invariant kept by
    every constructor: all states are reachable from ``start`` and can reach an
    accepting state (trimmed), so "not -1" means "still a viable prefix"."""

    trans: np.ndarray  # int32[S, C]
    classes: np.ndarray  # uint8[256] -> class index in [0, C)
    accepting: np.ndarray  # bool[S]
    start: int = 0

    def __getstate__(self):
        # numpy unpickles arrays writeable: note the read-only ones (a compiler's shared
        # DFAs: kernels see one array type, and their content digest stays memoised)
        state = dict(self.__dict__)
        state["_readonly"] = tuple(k for k, v in self.__dict__.items()
                                   if isinstance(v, np.ndarray) and not v.flags.writeable)
        return state

    def __setstate__(self, state):
        state = dict(state)
        for k in state.pop("_readonly", ()):
            state[k].setflags(write=False)
        self.__dict__.update(state)

    @property
    def num_states(self) -> int:
        return self.trans.shape[0]

    def step(self, state: int, byte: int) -> int:
        return int(self.trans[state, self.classes[byte]])

    def walk(self, data: bytes, state: int | None = None) -> int:
        """State after ``data`` from ``state`` (default: start); -1 once dead."""
        s = self.start if state is None else state
        for b in data:
            if s < 0:
                return -1
            s = int(self.trans[s, self.classes[b]])
        return s

    def matches(self, data: bytes) -> bool:
        s = self.walk(data)
        return s >= 0 and bool(self.accepting[s])

    def is_prefix(self, data: bytes) -> bool:
        return self.walk(data) >= 0
