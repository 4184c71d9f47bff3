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
# Keyed by name *and* matched on lark's pattern text (see _common_regex), so a
# user's own terminal that merely shares the name keeps its own definition.
_KNOWN_TERMINALS = {
    "ESCAPED_STRING": r'"(?:[^"\\\n]|\\[^\n])*"',
    "_STRING_ESC_INNER": r'(?:[^"\\\n]|\\[^\n])*',
}
_LOCATED = re.compile(r"line (\d+),? column (\d+)")
_QUOTED_NAME = re.compile(r"'([A-Za-z_][A-Za-z_0-9]*)'|\(\"?([A-Za-z_][A-Za-z_0-9]*)\"?\)")


def lark_to_grammar(text: str, *, start: str = "start", max_states: int = 100_000) -> Grammar:
    from lark.exceptions import LarkError
    from lark.grammar import TOKEN_DEFAULT_PRIORITY
    from lark.load_grammar import load_grammar

    try:  # lark's grammar loader only: no lark parser or lexer is built
        lark_grammar, _ = load_grammar(text, "<grammar>", [], False)
        lark_terminals, lark_rules, ignore_names = lark_grammar.compile([start], set())
    except LarkError as e:
        raise _grammar_error(text, e) from None
    terminals: list[Terminal] = []
    index: dict[str, int] = {}
    for td in lark_terminals:
        if td.priority != TOKEN_DEFAULT_PRIORITY:  # they reorder lark's lexer; ours is maximal munch
            raise Unsupported("terminal priority", f"{td.name}.{td.priority} (the greedy lexer has no "
                              "priorities: drop it or make the terminals disjoint)",
                              where=_where(text, td.name))
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
        for s in r.expansion:
            if s.is_term and s.name not in index:  # %declare: produced by a custom lexer we do not have
                raise Unsupported("%declare", f"terminal {s.name} is declared without a definition",
                                  where=_where(text, s.name))
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
        regex = _common_regex().get(pat.to_regexp(), pat.to_regexp())
    try:
        dfa = regex_to_dfa(regex, max_states=max_states)
    except Unsupported as e:
        raise Unsupported(e.construct, f"terminal {td.name} = /{regex}/", where=_where(text, td.name)) from None
    except InvalidSyntax as e:
        raise GrammarError(f"terminal {td.name}: {e}", text=text, **_locate(text, td.name)) from None
    if _ends_at_first_match(regex):
        dfa = _shortest_match(dfa)
    if dfa.accepting[dfa.start]:
        raise GrammarError(f"terminal {td.name} matches the empty string", text=text,
                           **_locate(text, td.name))
    return dfa


@lru_cache(maxsize=1)
def _common_regex() -> dict[str, str]:
    """lark's pattern text of the common.lark terminals in _KNOWN_TERMINALS -> our regex."""
    from lark.load_grammar import load_grammar

    names = list(_KNOWN_TERMINALS)
    text = f"start: {' '.join(names)}\n%import common ({', '.join(names)})\n"
    lark_terminals = load_grammar(text, "<common>", [], False)[0].compile(["start"], set())[0]
    return {td.pattern.to_regexp(): _KNOWN_TERMINALS[td.name] for td in lark_terminals}


def _ends_at_first_match(regex: str) -> bool:
    """Does a lazy quantifier make this terminal's lexeme end at its first match?

    Lazy quantifiers never change a terminal's language (``re.fullmatch``'s); they
    only decide where a lexeme ends.  Exactly one form ends it early: ``P X*? S``
    (also ``+?``, ``??``, ``{m,n}?``) with ``X`` one character wide, ``P`` and ``S``
    of fixed width and no other lazy quantifier -- lark's ``"/*" /(.|\\n)*?/ "*/"``
    idiom.  There Python's ``re.match`` (lark's lexer) returns the shortest match,
    and so do we.  Every other lazy quantifier is a plain repeat (maximal munch, like
    any terminal): ``/a+?b*/`` reads ``aab`` as one lexeme where lark reads ``a``."""
    try:
        from re import _constants as sre_c, _parser as sre
    except ImportError:  # Python < 3.11
        import sre_constants as sre_c  # type: ignore[no-redef]
        import sre_parse as sre  # type: ignore[no-redef]

    try:
        parsed = sre.parse(regex)
    except re.error:
        return False
    lazy: list = []

    def walk(items) -> None:
        for item in items:
            op, av = item
            if op is sre_c.MIN_REPEAT and av[0] != av[1]:
                lazy.append(item)
            if op in (sre_c.MIN_REPEAT, sre_c.MAX_REPEAT):
                walk(av[2])
            elif op is sre_c.SUBPATTERN:
                walk(av[-1])
            elif op is sre_c.BRANCH:
                for alt in av[1]:
                    walk(alt)

    walk(parsed)
    if len(lazy) != 1:
        return False
    items = list(parsed)
    while len(items) == 1 and items[0][0] is sre_c.SUBPATTERN:  # e.g. (?i:...) around it all
        items = list(items[0][1][-1])
    at = [i for i, item in enumerate(items) if item is lazy[0]]
    if not at:
        return False

    def fixed_width(part) -> bool:
        lo, hi = sre.SubPattern(parsed.state, list(part)).getwidth()
        return lo == hi

    i = at[0]
    body = items[i][1][2]
    return (sre.SubPattern(parsed.state, list(body)).getwidth() == (1, 1)
            and fixed_width(items[:i]) and fixed_width(items[i + 1:]))


def _shortest_match(dfa: ByteDFA) -> ByteDFA:
    """Cut every edge leaving an accepting state: the lexeme ends at its first match."""
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
def cached_lark_to_grammar(text: str, start: str = "start", max_states: int = 100_000) -> Grammar:
    """``lark_to_grammar`` memoised in-process and on disk (see structgen.cache); the
    state budget is part of the key."""
    import lark

    from ..cache import code_digest, disk_cached

    key = f"{code_digest(*_FRONTEND_MODULES)}|lark {lark.__version__}|{start}|{max_states}|{text}"
    return disk_cached("grammar-ir", key, lambda: lark_to_grammar(text, start=start, max_states=max_states))
