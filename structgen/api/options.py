"""The options ``@structured`` accepts, checked when the function is decorated.

Extra keywords of ``@structured(...)`` go to
:func:`structgen.integrations.generate.generate`; each one is listed here with a
check of its value, so a typo (``max_new_token=``) or an impossible value
(``top_p=0``) raises :class:`~structgen.errors.ConfigurationError` at import time
instead of at the first call.  ``tests/test_decorator.py`` checks that this table
covers ``generate``'s keywords exactly."""

from __future__ import annotations

import difflib
from numbers import Real
from typing import Any, Callable

from ..errors import ConfigurationError

__all__ = ["GENERATE_OPTIONS", "CONSTRAINT_KEYWORDS", "check_options"]


def _int_at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _draft_sources(v) -> bool:
    from ..sampling.drafts import DRAFT_SOURCES

    sources = [v] if isinstance(v, str) else v
    return v is None or (isinstance(sources, (list, tuple)) and all(s in DRAFT_SOURCES for s in sources))


def _sampling():
    from .. import sampling  # numpy only; imported when an option is checked

    return sampling


#: generate() keyword -> (value check, what the value must be)
GENERATE_OPTIONS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_new_tokens": (_int_at_least(1), "an int >= 1"),
    "temperature": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "top_p": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "top_k": (_int_at_least(0), "an int >= 0 (0: off)"),
    "seed": (lambda v: v is None or _int_at_least(0)(v), "None or an int >= 0"),
    "heal_prompt": (lambda v: isinstance(v, bool), "a bool"),
    "chat": (lambda v: isinstance(v, bool), "a bool"),
    "system": (lambda v: v is None or isinstance(v, str), "None or a string"),
    "fast_forward": (lambda v: v in ("verify", "inject", False, None), "'verify', 'inject' or False"),
    "budget_safe": (lambda v: isinstance(v, bool), "a bool"),
    "max_time": (lambda v: v is None or (_number(v) and v > 0), "None or a number of seconds > 0"),
    "json_options": (lambda v: v is None or isinstance(v, dict), "None or a dict of compile_json_schema options"),
    "draft": (_draft_sources, "None, or one or a list of 'grammar', 'prompt', 'model', 'layerskip'"),
    "draft_model": (lambda v: True, "a causal LM sharing the tokenizer"),
    "layerskip_layers": (lambda v: v is None or _int_at_least(1)(v), "None or an int >= 1"),
    "sampler": (lambda v: v in _sampling().SAMPLERS, "'masked', 'awrs', 'smc' or 'asap'"),
    "particles": (_int_at_least(1), "an int >= 1"),
    "ess_threshold": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "resampling": (lambda v: v in _sampling().RESAMPLING,
                   "'systematic', 'multinomial' or 'stratified'"),
    "critic": (lambda v: v is None or callable(v), "None or a callable value -> log-potential"),
    "asap": (lambda v: v is None or type(v).__name__ == "ASAp", "None or a structgen.sampling.ASAp"),
}

#: generate() keywords that make no sense on a decorated function: the return annotation is
#: the constraint and a call returns a value, not a stream.
CONSTRAINT_KEYWORDS = ("schema", "regex", "grammar", "type", "stream")


def check_options(options: dict, where: str) -> None:
    """Raise :class:`ConfigurationError` naming the first unknown option or bad value."""
    for name, value in options.items():
        if name in CONSTRAINT_KEYWORDS:
            raise ConfigurationError(f"{where}: {name}= is not an option here "
                                     "(the constraint comes from the return annotation)")
        if name not in GENERATE_OPTIONS:
            close = difflib.get_close_matches(name, list(GENERATE_OPTIONS) + ["model", "tokenizer", "prompt",
                                                                              "schema_in_prompt"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(f"{where}: unknown option {name!r}{hint} "
                                     f"(options: model, tokenizer, prompt, schema_in_prompt, "
                                     f"{', '.join(sorted(GENERATE_OPTIONS))})")
        ok, expected = GENERATE_OPTIONS[name]
        if not ok(value):
            raise ConfigurationError(f"{where}: {name}={value!r}, expected {expected}")
