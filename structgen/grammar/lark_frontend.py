"""Lark grammar text -> Grammar IR.  Lark is only the front-end: it resolves
``%import``, templates, ``?rule`` and ``%ignore``; terminals become byte DFAs."""

from __future__ import annotations

import re
from functools import lru_cache

from ..automata.fsm import ByteDFA
from ..automata.regex import literal_dfa, regex_to_dfa
from ..errors import GrammarError, InvalidSyntax, StructgenError, Unsupported
from .ir import Grammar, Terminal, term_symbol

# lark's common.lark spells these with lookbehind and lazy repeats; their exact
# languages as plain regexes (a quoted string ends at its first unescaped quote).
_KNOWN_TERMINALS = {
    "ESCAPED_STRING": r'"(?:[^"\\\n]|\\[^\n])*"',
    "_STRING_ESC_INNER": r'(?:[^"\\\n]|\\[^\n])*',
}
_LAZY = re.compile(r"(?<!\\)(?:\*|\+|\?|\})\?")
_LOCATED = re.compile(r"line (\d+),? column (\d+)")
_QUOTED_NAME = re.compile(r"'([A-Za-z_][A-Za-z_0-9]*)'|\(\"?([A-Za-z_][A-Za-z_0-9]*)\"?\)")


def lark_to_grammar(text: str, *, start: str = "start", max_states: int = 100_000) -> Grammar:
    from lark.exceptions import LarkError
    from lark.load_grammar import load_grammar

    try:  # lark's grammar loader only: no lark parser or lexer is built
        lark_grammar, _ = load_grammar(text, "<grammar>", [], False)
        lark_terminals, lark_rules, ignore_names = lark_grammar.compile([start], set())
    except LarkError as e:
        raise _grammar_error(text, e) from None
    terminals: list[Terminal] = []
    index: dict[str, int] = {}
    for td in lark_terminals:
        index[td.name] = len(terminals)
        terminals.append(Terminal(td.name, _terminal_dfa(text, td, max_states), td.pattern.to_regexp()))
    names: list[str] = []
    nt: dict[str, int] = {}

    def nonterminal(name: str) -> int:
        if name not in nt:
            nt[name] = len(names)
            names.append(name)
        return nt[name]

    nonterminal(start)
    rules = []
    for r in lark_rules:
        rhs = tuple(term_symbol(index[s.name]) if s.is_term else nonterminal(s.name) for s in r.expansion)
        rules.append((nonterminal(r.origin.name), rhs))
    ignore = tuple(index[n] for n in ignore_names if n in index)
    return Grammar(terminals, names, rules, nt[start], ignore=ignore, source=text)


def _terminal_dfa(text: str, td, max_states: int) -> ByteDFA:
    from lark.lexer import PatternStr

    pat = td.pattern
    if isinstance(pat, PatternStr) and not pat.value:
        raise GrammarError(f"terminal {td.name} matches the empty string", text=text, **_locate(text, td.name))
    if isinstance(pat, PatternStr) and not pat.flags:
        return literal_dfa(pat.value.encode())
    if isinstance(pat, PatternStr) and pat.flags == {"i"} and pat.value.isascii():
        # "select"i as [sS][eE]...: exact for ASCII, and avoids Unicode case tables
        regex = "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in pat.value)
    else:
        regex = _KNOWN_TERMINALS.get(td.name) or pat.to_regexp()
    try:
        dfa = regex_to_dfa(regex, max_states=max_states)
    except Unsupported as e:
        raise Unsupported(e.construct, f"terminal {td.name} = /{regex}/", where=_where(text, td.name)) from None
    except InvalidSyntax as e:
        raise GrammarError(f"terminal {td.name}: {e}", text=text, **_locate(text, td.name)) from None
    if _LAZY.search(regex):
        # A lazy repeat ends the lexeme at its first match: cut every edge leaving
        # an accepting state (exact for lark's `"/*" /(.|\n)*?/ "*/"` idiom).
        dfa = _shortest_match(dfa)
    if dfa.accepting[dfa.start]:
        raise GrammarError(f"terminal {td.name} matches the empty string", text=text,
                           **_locate(text, td.name))
    return dfa


def _shortest_match(dfa: ByteDFA) -> ByteDFA:
    from ..automata.ops import trim

    trans = dfa.trans.copy()
    trans[dfa.accepting] = -1
    return trim(ByteDFA(trans, dfa.classes, dfa.accepting.copy(), dfa.start))


def _locate(text: str, name: str) -> dict:
    """Line/column of the first definition or use of ``name`` in ``text``."""
    for pat in (rf"^\s*[?!]?{re.escape(name)}\b", rf"\b{re.escape(name)}\b"):
        m = re.search(pat, text, re.M)
        if m:
            start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip(" \t?!")))
            line = text.count("\n", 0, start) + 1
            column = start - (text.rfind("\n", 0, start) + 1) + 1
            return {"line": line, "column": column}
    return {}


def _where(text: str, name: str) -> str:
    loc = _locate(text, name)
    return f"line {loc['line']}, column {loc['column']}" if loc else name


def _grammar_error(text: str, e: Exception) -> StructgenError:
    msg = str(e).strip().split("\n")[0]
    line, column = getattr(e, "line", None), getattr(e, "column", None)
    m = _LOCATED.search(str(e))
    if m and not (isinstance(line, int) and line > 0):
        line, column = int(m.group(1)), int(m.group(2))
    msg = _LOCATED.sub("", msg).rstrip(" ,.")
    if not (isinstance(line, int) and line > 0):
        q = _QUOTED_NAME.search(msg)
        loc = _locate(text, q.group(1) or q.group(2)) if q else {}
        line, column = loc.get("line"), loc.get("column")
    return GrammarError(msg or type(e).__name__, text=text, line=line, column=column)


_FRONTEND_MODULES = ("structgen.grammar.lark_frontend", "structgen.grammar.ir",
                     "structgen.automata.regex", "structgen.automata.ops", "structgen.automata.fsm")


@lru_cache(maxsize=64)
def cached_lark_to_grammar(text: str, start: str = "start") -> Grammar:
    """``lark_to_grammar`` memoised in-process and on disk (see structgen.cache)."""
    import lark

    from ..cache import code_digest, disk_cached

    key = f"{code_digest(*_FRONTEND_MODULES)}|lark {lark.__version__}|{start}|{text}"
    return disk_cached("grammar-ir", key, lambda: lark_to_grammar(text, start=start))
