"""The shipped grammars (``grammars/*.lark``, installed as ``structgen.grammars``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ConfigurationError


def _root():
    try:
        return resources.files("structgen.grammars")
    except ModuleNotFoundError:  # running from a source tree that is not installed
        return Path(__file__).resolve().parents[2] / "grammars"


def list_grammars() -> list[str]:
    """Names of the shipped grammars (file stems)."""
    return sorted(p.name.rsplit(".", 1)[0] for p in _root().iterdir()
                  if p.name.endswith((".lark", ".gbnf")))


def load_grammar(name: str) -> str:
    """Text of a shipped grammar, e.g. ``load_grammar("json")``."""
    for ext in (".lark", ".gbnf"):
        p = _root() / f"{name}{ext}"
        if p.is_file():
            return p.read_text(encoding="utf-8")
    raise ConfigurationError(f"no shipped grammar {name!r}; available: {', '.join(list_grammars())}")
