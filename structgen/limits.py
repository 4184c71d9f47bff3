"""The one set of resource limits every compiler and compiled constraint obeys.

``Limits`` replaces the constructor defaults that used to be scattered over the
regex compiler, the contextual lexer, the Earley parser and the mask engine.
Compile-time limits raise :class:`~structgen.errors.BudgetExceeded`; run-time
ones (rows, steps, masks) are cache sizes: past them a cache forgets and is
rebuilt on demand, so a long-lived constraint never fails mid-generation."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .automata.regex import DEFAULT_MAX_STATES
from .errors import ConfigurationError

__all__ = ["Limits", "DEFAULT_LIMITS"]


@dataclass(frozen=True, init=False)
class Limits:
    """Resource limits, validated when constructed (keyword arguments only).

    Compile time (exceeding one raises ``BudgetExceeded``):

    * ``max_regex_states``: DFA states of one regex (``compile_regex``) or one
      grammar terminal.
    * ``max_lexer_states``: states of the contextual lexer built for one set of
      allowed terminals.
    * ``max_compile_seconds``: wall time of a JSON Schema compilation (its
      ``time_budget_s`` unless given explicitly); ``None`` for no limit.

    Run time (cache sizes; exceeding one never raises):

    * ``max_earley_rows``: Earley transitions memoised per constraint; past it
      the memo restarts and rows no live matcher or cache holds are freed.
    * ``max_step_entries``: (state, token) steps memoised per constraint.
    * ``mask_cache_bytes``: bytes of token masks cached per constraint (LRU).
    """

    max_regex_states: int = DEFAULT_MAX_STATES
    max_lexer_states: int = 200_000
    max_compile_seconds: float | None = 60.0
    max_earley_rows: int = 200_000
    max_step_entries: int = 1_000_000
    mask_cache_bytes: int = 256 << 20

    def __init__(self, **overrides):
        names = [f.name for f in fields(self)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ConfigurationError(f"unknown limit(s) {unknown}; valid: {names}")
        for name in names:
            object.__setattr__(self, name, overrides.get(name, getattr(type(self), name)))
        self._validate()

    def _validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "max_compile_seconds":
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not value > 0):
                    raise ConfigurationError(f"limit max_compile_seconds={value!r}: expected None or a "
                                             f"positive number")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"limit {f.name}={value!r}: expected a positive int")

    def replace(self, **changes) -> "Limits":
        """A copy with some limits changed (unknown names raise ``ConfigurationError``)."""
        return Limits(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})

    @classmethod
    def make(cls, limits: "Limits | dict | None" = None) -> "Limits":
        """``limits`` as a ``Limits``: one, a dict of overrides, or None (the defaults)."""
        if limits is None:
            return DEFAULT_LIMITS
        if isinstance(limits, Limits):
            return limits
        if isinstance(limits, dict):
            return cls(**limits)
        raise ConfigurationError(f"limits must be a Limits or a dict, not {type(limits).__name__}")


DEFAULT_LIMITS = Limits()
