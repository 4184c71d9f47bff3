"""One error hierarchy.  Every class also inherits the builtin it refines, so
``except ValueError`` keeps working for callers who do not know structgen."""

from __future__ import annotations


class StructgenError(Exception):
    """Root of every error structgen raises on purpose."""


class ConfigurationError(StructgenError, ValueError):
    """A bad argument or option value."""


class InvalidSyntax(StructgenError, ValueError):
    """A regex or grammar text that does not parse.

    ``line`` and ``column`` are 1-based; ``context`` shows the line with a caret."""

    def __init__(self, message: str, *, text: str | None = None, line: int | None = None,
                 column: int | None = None):
        self.line, self.column = line, column
        self.context = caret_context(text, line, column) if text is not None and line else ""
        where = f" at line {line}, column {column}" if line else ""
        super().__init__(f"{message}{where}" + (f"\n{self.context}" if self.context else ""))


class GrammarError(InvalidSyntax):
    """A grammar that parses but is not a usable grammar (undefined rule, empty terminal...)."""


class RegexError(InvalidSyntax):
    """A regular expression that does not parse."""


class Unsupported(StructgenError, NotImplementedError):
    """Valid input using a construct structgen cannot compile exactly.

    ``construct`` names it (e.g. ``"lookahead"``, ``"backreference"``)."""

    def __init__(self, construct: str, detail: str = "", *, where: str | None = None):
        self.construct, self.where = construct, where
        msg = f"unsupported: {construct}"
        if where:
            msg += f" (at {where})"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class BudgetExceeded(StructgenError, RuntimeError):
    """Compilation would exceed a state, size or time budget."""


class VocabularyError(StructgenError, ValueError):
    """A tokenizer that cannot be turned into a faithful byte vocabulary."""


class StructgenWarning(UserWarning):
    """Compilation went on but the result is not exactly what was asked (a bound
    relaxed, a keyword ignored or dropped); the same entry is in ``report``."""


def caret_context(text: str, line: int | None, column: int | None, span: int = 60) -> str:
    """The offending line (trimmed to ``span`` chars around the column) and a caret under it."""
    if not line:
        return ""
    lines = text.splitlines() or [""]
    src = lines[min(line, len(lines)) - 1]
    col = max(1, column or 1)
    start = max(0, col - 1 - span // 2)
    shown = src[start:start + span]
    return f"  {shown}\n  {' ' * (col - 1 - start)}^"
