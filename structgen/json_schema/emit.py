"""The normal form -> a :class:`~structgen.grammar.ir.Grammar`.

Terminals are chosen for the greedy contextual lexer: whitespace is folded into
punctuation (``{ws``, ``ws}``, ``ws,ws``, ``ws:ws``, ``[ws``, ``ws]``), a declared key is
one literal terminal (every JSON spelling of it), and all scalar alternatives of a value
are one terminal (null | booleans | number DFA | quoted string DFA).  No value
terminal can be extended by the punctuation that may follow it, so a lexeme
always ends exactly where the next one starts.  Long strings without a pattern
are the exception: ``"`` + 64-character chunk terminals counted by
nonterminals + ``"``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import partial
from itertools import combinations

from ..automata import ops
from ..automata.finite import enumerate_strings, max_length
from ..automata.fsm import ByteDFA
from ..automata.regex import literal_dfa, regex_to_dfa
from ..errors import BudgetExceeded, Unsupported
from ..grammar.ir import Grammar, LazyTerminal, Terminal, symbol_term, term_symbol
from . import numbers as num
from .json_strings import (
    ANY_STRING,
    encoded_length_chain,
    quoted,
    quoted_literal_bytes,
    quoted_literals,
)
from .model import FALSE, TRUE, ArrAlt, ObjAlt, TypeSets, _length_body, f_and, f_not
from .support import hint

CHUNK = 64
DIRECT_MAX_LENGTH = 128  # longer unconstrained strings use chunk terminals
DIRECT_MAX_WITH_BODY = 4096
MAX_STRING_BODY_STATES = 6000
_NULL, _TRUE, _FALSE = literal_dfa(b"null"), literal_dfa(b"true"), literal_dfa(b"false")  # read-only: shared
_QUOTE = literal_dfa(b'"')


class _LazyNonterminals:
    """Nonterminals made on demand, one per state key (``N(*key)``); :meth:`drain`
    gives each its rules in creation order, and rules may create more."""

    def __init__(self, emitter: "Emitter", name):
        self.em, self.name = emitter, name
        self.ids: dict = {}
        self.todo: list = []

    def __call__(self, *key) -> int:
        nt = self.ids.get(key)
        if nt is None:
            nt = self.ids[key] = self.em.nt(self.name(*key))
            self.todo.append((nt, *key))
        return nt

    def drain(self, body) -> None:
        j = 0
        while j < len(self.todo):
            body(*self.todo[j])
            j += 1
            if j % 2048 == 0:
                self.em.check_budget()


class _AnyValue:
    """The rules of "any JSON value" (``value(TRUE)``: every open object's undeclared
    values), emitted once per options and replayed into each emitter that needs them,
    instead of emitted again per schema (~45 us, its generic object and array
    machinery).  Replayed only where direct emission would make exactly these rules:
    no memo entry it made is in the emitter already; its terminals go through
    ``terminal`` (merged with equal automata, as emission would), its nonterminals
    are appended in its order (so the grammar is the one emission gives, names aside)."""

    __slots__ = ("memo", "n_terms", "names", "root", "rules", "terms")

    def __init__(self, evaluator, options):
        em = Emitter(evaluator, options)
        self.n_terms, n_nts = len(em.terminals), len(em.nonterminals)
        assert n_nts == 0 and not em.rules  # (an emitter starts with terminals only)
        before = {m: set(getattr(em, m)) for m in _MEMOS}
        em.replays = False
        self.root = em.value(TRUE)
        self.terms = [(t.name.rsplit("_", 1)[0], t.dfa, t.source) for t in em.terminals[self.n_terms:]]
        self.names = list(em.nonterminals)
        self.rules = list(em.rules)
        self.memo = [(m, k, v) for m in _MEMOS for k, v in getattr(em, m).items() if k not in before[m]]
        if any(type(t) is not Terminal for t in em.terminals[self.n_terms:]):
            self.memo = None  # a lazy terminal is never merged, so not replayed (none today): emit directly

    def replay(self, em: Emitter) -> int | None:
        """Add the rules to ``em``: the nonterminal of any value (None: emit directly)."""
        if self.memo is None:
            return None
        for m, k, _ in self.memo:
            if k in getattr(em, m):
                return None
        n_terms, off = self.n_terms, len(em.nonterminals)
        terms = [em.terminal(dfa, name, source) for name, dfa, source in self.terms]

        def sym(s):
            if s >= 0:
                return s + off
            t = symbol_term(s)
            return s if t < n_terms else terms[t - n_terms]
        em.nonterminals.extend(self.names)
        em.rules.extend([(lhs + off, tuple([sym(x) for x in rhs])) for lhs, rhs in self.rules])
        em.check_budget()
        for m, k, v in self.memo:
            getattr(em, m)[k] = v if v is None else sym(v)
        return self.root + off


_MEMOS = ("_values", "_objects", "_arrays", "_misc")
_ANY_VALUES: dict = {}  # options -> _AnyValue


class Emitter:
    replays = True  # any value from its template (see _AnyValue; not in the template's own emitter)

    def __init__(self, evaluator, options):
        self.ev = evaluator
        self.opt = options
        self.terminals: list[Terminal] = []
        self._term_index: dict = {}
        self.nonterminals: list[str] = []
        self.rules: list[tuple[int, tuple[int, ...]]] = []
        self._values: dict = {}
        self._objects: dict = {}
        self._arrays: dict = {}
        self._misc: dict = {}
        self.canon = options.escapes == "canonical"
        self.schema_ordered = 0  # objects above max_any_order (property_order="any")
        self._ws()

    # ------------------------------------------------------------------ basics
    def _ws(self):
        w = self.opt.whitespace
        n = self.opt.max_whitespace
        if w == "compact":
            ws = ""
            lb, rb, lk, rk, comma, colon = r"\{", r"\}", r"\[", r"\]", ",", ":"
        elif w == "canonical":  # json.dumps' defaults: separators ", " and ": ", nothing else
            lb, rb, lk, rk, comma, colon = r"\{", r"\}", r"\[", r"\]", ", ", ": "
        elif w == "flexible":
            ws = r"[ \t\n\r]{0,%d}" % n
            lb, rb, lk, rk = r"\{" + ws, ws + r"\}", r"\[" + ws, ws + r"\]"
            comma, colon = ws + "," + ws, ws + ":" + ws
        else:  # pretty
            nl = r"(?:\n[ ]{0,%d})?" % n
            lb, rb, lk, rk = r"\{" + nl, nl + r"\}", r"\[" + nl, nl + r"\]"
            comma = r",(?:[ ]|\n[ ]{0,%d})?" % n
            colon = ":[ ]?"
        self.LBRACE = self.terminal(regex_to_dfa(lb), "LBRACE", lb)
        self.RBRACE = self.terminal(regex_to_dfa(rb), "RBRACE", rb)
        self.LBRACK = self.terminal(regex_to_dfa(lk), "LBRACK", lk)
        self.RBRACK = self.terminal(regex_to_dfa(rk), "RBRACK", rk)
        self.COMMA = self.terminal(regex_to_dfa(comma), "COMMA", comma)
        self.COLON = self.terminal(regex_to_dfa(colon), "COLON", colon)
        self.QUOTE = self.terminal(_QUOTE, "QUOTE", '"')

    def check_budget(self):
        if len(self.terminals) > self.opt.max_terminals:
            raise BudgetExceeded(f"grammar needs more than max_terminals={self.opt.max_terminals} terminals")
        if len(self.rules) > self.opt.max_rules:
            raise BudgetExceeded(f"grammar needs more than max_rules={self.opt.max_rules} rules")

    def terminal(self, dfa: ByteDFA, name: str, source: str = "") -> int:
        key = ops.dfa_key(dfa)
        t = self._term_index.get(key)
        if t is None:
            t = self._term_index[key] = self._add(Terminal, name, dfa, source)
        return term_symbol(t)

    def nt(self, name: str) -> int:
        self.nonterminals.append(name)
        return len(self.nonterminals) - 1

    def rule(self, lhs: int, *rhs: int) -> None:
        self.rules.append((lhs, tuple(rhs)))
        if len(self.rules) % 4096 == 0:
            self.check_budget()
            self.ev.check_time()

    # ------------------------------------------------------------------ values
    def value(self, f, depth: int = 0) -> int:
        limit = self.opt.max_recursion_depth
        key = (f, min(depth, limit)) if limit is not None else f
        hit = self._values.get(key)
        if hit is not None:
            return hit
        if f == TRUE and limit is None and self.replays:
            nt = self._any_value()
            if nt is not None:
                return nt
        nt = self._values[key] = self.nt(f"value{len(self._values)}")
        ts = self.ev.eval(f)
        scalars = []
        if ts.null:
            scalars.append(_NULL)
        if True in ts.booleans:
            scalars.append(_TRUE)
        if False in ts.booleans:
            scalars.append(_FALSE)
        if ts.number is not None:
            scalars.append(ts.number.dfa)
        if ts.string is not None:
            s = self.string(ts.string)
            if isinstance(s, ByteDFA):
                scalars.append(s)
            else:
                self.rule(nt, s)
        if scalars:
            dfa = scalars[0] if len(scalars) == 1 else ops.union_all(scalars)
            if not ops.is_empty(dfa):
                self.rule(nt, self.terminal(dfa, "SCALAR"))
        nested = limit is None or depth < limit
        if nested:
            for alt in ts.objects:
                o = self.object(alt, depth + 1)
                if o is not None:
                    self.rule(nt, o)
            for alt in ts.arrays:
                a = self.array(alt, depth + 1)
                if a is not None:
                    self.rule(nt, a)
        return nt

    def _any_value(self) -> int | None:
        """``value(TRUE)`` replayed from its template (see :class:`_AnyValue`), or None."""
        try:
            template = _ANY_VALUES.get(self.opt)
        except TypeError:  # options that do not hash (a registry): emit directly
            return None
        if template is None:
            if len(_ANY_VALUES) >= 16:
                _ANY_VALUES.clear()
            template = _ANY_VALUES[self.opt] = _AnyValue(self.ev, self.opt)
        return template.replay(self)

    # ------------------------------------------------------------------ strings
    def string(self, st):
        """A DFA terminal for the string set, or a nonterminal (chunked long strings)."""
        lo, hi, body = st.lo, st.hi, st.body
        if st.members is not None:
            ms = [m for m in st.members if lo <= len(m) and (hi is None or len(m) <= hi)
                  and (body is None or body.matches(m.encode("utf-8", "surrogatepass")))]
            return quoted_literals(ms, canonical=self.canon)
        if body is not None and hi is not None:
            ml = max_length(body)
            if ml is not None and ml <= hi:
                hi = None
        if body is None and ((hi is not None and hi > DIRECT_MAX_LENGTH) or lo > DIRECT_MAX_LENGTH):
            return self.chunked_string(lo, hi)
        if body is not None and (hi is not None or lo > 0):
            msg = None
            if hi is not None and hi > DIRECT_MAX_WITH_BODY:
                msg = f"maxLength {hi} together with a pattern/format (limit {DIRECT_MAX_WITH_BODY})"
            else:
                try:
                    both = ops.product(body, _length_body(lo, hi), "and", minimal=False,
                                       max_states=MAX_STRING_BODY_STATES)
                except BudgetExceeded:
                    msg = (f"length {lo}..{hi} together with a pattern/format needs a DFA with more than "
                           f"{MAX_STRING_BODY_STATES} states")
                else:
                    return quoted(both, canonical=self.canon)
            where = st.where or "(string with a pattern and a length bound)"
            if not self.opt.lenient:
                raise BudgetExceeded(f"{msg} at {where}")
            self.ev.note("maxLength", where, msg + ": length bound dropped")
            lo, hi = 0, None
        return quoted(body, lo, hi, canonical=self.canon)

    def chunked_string(self, lo: int, hi: int | None) -> int:
        key = ("chunked", lo, hi)
        hit = self._misc.get(key)
        if hit is not None:
            return hit
        top = hi if hi is not None else lo
        q = top // CHUNK
        full = self.terminal(encoded_length_chain(CHUNK, CHUNK, self.canon), "CHUNK")
        nts = [self.nt(f"chunk{lo}_{hi}_{k}") for k in range(q + 1)]
        sat = None
        if hi is None:  # past the minimum: any number of chunks
            sat = self.nt(f"chunk{lo}_sat")
            self.rule(sat, full, sat)
            self.rule(sat, self.terminal(encoded_length_chain(1, CHUNK - 1, self.canon), "PART"), self.QUOTE)
            self.rule(sat, self.QUOTE)
        for k in range(q, -1, -1):
            base = k * CHUNK
            if hi is None or base + CHUNK <= hi:
                nxt = nts[k + 1] if k < q else sat
                if nxt is not None:
                    self.rule(nts[k], full, nxt)
            a = max(1, lo - base)
            b = CHUNK - 1 if hi is None else min(CHUNK - 1, hi - base)
            if a <= b:
                self.rule(nts[k], self.terminal(encoded_length_chain(a, b, self.canon), "PART"), self.QUOTE)
            if base >= lo and (hi is None or base <= hi):
                self.rule(nts[k], self.QUOTE)
        nt = self.nt(f"string{lo}_{hi}")
        self.rule(nt, self.QUOTE, nts[0])
        self._misc[key] = nt
        return nt

    # ------------------------------------------------------------------ objects
    def key_terminal(self, body: ByteDFA | None, name: str, exclude: tuple = ()) -> int:
        """Terminal for ``"key"ws:ws`` with the key's content in ``body`` (None: any) minus ``exclude``."""
        ck = ("keys", None if body is None else ops.dfa_key(body), exclude)
        hit = self._misc.get(ck)
        if hit is not None:
            return hit
        q = quoted(body, canonical=self.canon)
        if exclude:  # built at once (a lazy one cost a fresh process's fills ~7 % at p99: one product per object)
            q = ops.product(q, quoted_literals(exclude, canonical=self.canon), "diff", minimal=False,
                            max_states=400_000, sinks_only=body is None)
        t = None if ops.is_empty(q) else self.terminal(q, name)
        self._misc[ck] = t
        return t

    def name_terminal(self, name: str) -> int:
        """The terminal of a declared key (every JSON spelling of it)."""
        hit = self._misc.get(("key", name))
        if hit is None:
            hit = self._misc[("key", name)] = self.lazy_terminal(
                partial(quoted_literals, (name,), canonical=self.canon), "KEY", name,
                quoted_literal_bytes(name, self.canon))
        return hit

    def lazy_terminal(self, build, name: str, source: str = "", literal: bytes | None = None) -> int:
        """A terminal whose DFA ``build()`` makes when a lexer first allows it (see
        :class:`~structgen.grammar.ir.LazyTerminal`: it must not fail nor be empty):
        most keys of a schema are not read before the first mask, nor ever in the
        branches a document does not take.  Not merged with equal automata."""
        return term_symbol(self._add(LazyTerminal, name, build, source, literal))

    def _add(self, kind, name: str, *args) -> int:
        """A new terminal ``kind(name_index, *args)``; its index."""
        t = len(self.terminals)
        self.terminals.append(kind(f"{name}_{t}", *args))
        if t >= self.opt.max_terminals:
            self.check_budget()
        return t

    def object(self, alt: ObjAlt, depth: int):
        key = (alt, depth if self.opt.max_recursion_depth is not None else 0)
        if key in self._objects:
            return self._objects[key]
        obj = self._objects[key] = self.nt("object")
        self._object(obj, alt, depth)  # no rules when the alternative is empty (pruned later)
        return obj

    def _object(self, obj: int, alt: ObjAlt, depth: int):
        ev = self.ev
        names = []
        for n, f in alt.names:
            if f == FALSE or ev.is_empty(f, 0):
                if n in alt.required:
                    return None
                continue
            names.append((n, f, n in alt.required))
        explicit = tuple(sorted(n for n, _ in alt.names))
        extras = []
        for r in alt.regions:
            if r.formula == FALSE or ev.is_empty(r.formula, 0):
                continue
            extras.append((r.keys, r.formula))
        exists = []
        for keys, f in alt.exists:
            if f == FALSE or ev.is_empty(f, 0):
                return None
            exists.append((keys if keys is not None else ANY_STRING, f))
        full = (1 << len(exists)) - 1
        k = len(names)
        lo, hi = alt.min_props, alt.max_props
        if hi is not None and not extras and hi >= k:
            hi = None
        if lo <= sum(1 for *_, req in names if req):
            lo = 0
        if hi is not None and hi < lo:
            return None
        kv = []  # per declared key: [(nonterminal, witness mask)], required flag
        for n, f, req in names:
            key_t = self.name_terminal(n)
            data = n.encode("utf-8", "surrogatepass")
            applicable = [j for j, (keys, _) in enumerate(exists) if keys.matches(data)]
            variants = []
            for r in range(len(applicable) + 1):
                for sub in combinations(applicable, r):
                    g = f_and(f, *[exists[j][1] for j in sub])
                    if g == FALSE or (sub and ev.is_empty(g, 0)):
                        continue
                    knt = self.nt(f"kv_{n[:20]}")
                    self.rule(knt, key_t, self.COLON, self.value(g, depth))
                    variants.append((knt, sum(1 << j for j in sub)))
            if not variants:
                if req:
                    return None
                continue
            kv.append((variants, req))
        k = len(kv)
        xs = {}  # witness mask -> nonterminal for one undeclared key/value pair
        for keys, f in extras:
            for r in range(len(exists) + 1):
                for sub in combinations(range(len(exists)), r):
                    kk = keys
                    for j in sub:
                        kk = exists[j][0] if kk is None else ops.intersect(kk, exists[j][0])
                    if kk is not None and ops.is_empty(kk):
                        continue
                    g = f_and(f, *[exists[j][1] for j in sub])
                    if g == FALSE or (sub and ev.is_empty(g, 0)):
                        continue
                    kt = self.key_terminal(kk, "KEYS", explicit)
                    if kt is None:
                        continue
                    m = sum(1 << j for j in sub)
                    if m not in xs:
                        xs[m] = self.nt("extra_kv")
                    self.rule(xs[m], kt, self.COLON, self.value(g, depth))
        cap = max(lo, 1) if hi is None else hi
        any_order = self.opt.property_order == "any" and (k > 1 or (k == 1 and bool(xs)))
        if any_order and k > self.opt.max_any_order:
            any_order = False
            self.schema_ordered += 1
        N = _LazyNonterminals(self, lambda a, c, w: f"obj{a}_{c}")

        def sat(c):
            return min(c, cap)

        def lead(c):
            return (self.COMMA,) if c > 0 else ()

        def extras_and_end(nt, a, c, w, complete):
            if complete and c >= lo and w == full:
                self.rule(nt)
            if hi is None or c + 1 <= hi:
                for m, xnt in xs.items():
                    self.rule(nt, *lead(c), xnt, N(a, sat(c + 1), w | m))

        if not any_order:
            def body(nt, i, c, w):
                if i < k:
                    variants, req = kv[i]
                    if hi is None or c + 1 <= hi:
                        for knt, m in variants:
                            self.rule(nt, *lead(c), knt, N(i + 1, sat(c + 1), w | m))
                    if not req:
                        self.rule(nt, N(i + 1, c, w))
                else:
                    extras_and_end(nt, i, c, w, True)
        else:
            req_mask = sum(1 << i for i, (_, r) in enumerate(kv) if r)

            def body(nt, S, c, w):
                if hi is None or c + 1 <= hi:
                    for i in range(k):
                        if not S >> i & 1:
                            for knt, m in kv[i][0]:
                                self.rule(nt, *lead(c), knt, N(S | 1 << i, sat(c + 1), w | m))
                extras_and_end(nt, S, c, w, S & req_mask == req_mask)
        start = N(0, 0, 0)
        N.drain(body)
        self.rule(obj, self.LBRACE, start, self.RBRACE)

    # ------------------------------------------------------------------ arrays
    def array(self, alt: ArrAlt, depth: int):
        key = (alt, depth if self.opt.max_recursion_depth is not None else 0)
        if key in self._arrays:
            return self._arrays[key]
        arr = self._arrays[key] = self.nt("array")
        self._array(arr, alt, depth)
        return arr

    def _array(self, arr: int, alt: ArrAlt, depth: int):
        ev = self.ev
        P = len(alt.prefix)
        lo, hi = alt.min_items, alt.max_items
        # the first impossible position bounds the length
        for i in range(P + 1):
            if ev.is_empty(alt.item(i), 0):
                hi = i if hi is None else min(hi, i)
                break
        if hi is not None and lo > hi:
            return None
        if alt.unique and not (hi is not None and hi <= 1):
            try:
                return self._unique_array(arr, alt, lo, hi, depth)
            except Unsupported as exc:
                if not self.opt.lenient:
                    raise
                self.ev.note("uniqueItems", alt.where or "(array)", str(exc))
        cons = list(alt.contains)
        for c in cons:
            if c.hi is not None and c.lo > c.hi:
                return None
        icap = max([P, lo, 1] + [c.start for c in cons]) if hi is None else hi
        ccaps = [c.lo if c.hi is None else c.hi for c in cons]
        A = _LazyNonterminals(self, lambda i, counts: f"arr{i}")
        item_memo: dict = {}
        vcap = max([P] + [c.start for c in cons])

        def variants(i):
            """(value nonterminal, counts increment tuple) for an item at index i."""
            if i in item_memo:
                return item_memo[i]
            base = alt.item(i)
            out = []
            active = [j for j, c in enumerate(cons) if c.start <= i]
            for r in range(len(active) + 1):
                for sub in combinations(active, r):
                    parts = [base] + [cons[j].formula for j in sub]
                    parts += [f_not(cons[j].formula) for j in active if j not in sub and cons[j].hi is not None]
                    f = f_and(*parts)
                    if f == FALSE or ev.is_empty(f, 0):
                        continue
                    inc = tuple(1 if j in sub else 0 for j in range(len(cons)))
                    out.append((self.value(f, depth), inc))
            item_memo[i] = out
            return out

        def body(nt, i, counts):
            done = i >= lo and all(cnt >= c.lo for cnt, c in zip(counts, cons))
            if done:
                self.rule(nt)
            if hi is not None and i >= hi:
                return
            ni = i + 1 if (hi is not None or i < icap) else i
            for vnt, inc in variants(min(i, vcap)):
                nc = []
                ok = True
                for cnt, d, c, cap in zip(counts, inc, cons, ccaps):
                    v = cnt + d
                    if c.hi is not None and v > c.hi:
                        ok = False
                        break
                    nc.append(min(v, cap) if c.hi is None else v)
                if not ok:
                    continue
                self.rule(nt, *((self.COMMA,) if i > 0 else ()), vnt, A(ni, tuple(nc)))
        start = A(0, tuple(0 for _ in cons))
        A.drain(body)
        self.rule(arr, self.LBRACK, start, self.RBRACK)

    # ------------------------------------------------------------------ uniqueItems
    def _unique_array(self, arr: int, alt: ArrAlt, lo, hi, depth):
        ev = self.ev
        if alt.contains:
            raise Unsupported("uniqueItems", "together with contains" + hint("uniqueItems"), where=self._where(alt))
        P = len(alt.prefix)
        forms = [alt.item(i) for i in range(P)] + ([alt.rest] if alt.rest != FALSE else [])
        values: list = []
        for f in forms:
            vs = self._finite_values(ev.eval(f))
            if vs is None:
                raise Unsupported("uniqueItems", "item values do not range over a small finite set (at most "
                                  f"max_unique_domain={self.opt.max_unique_domain} values)" + hint("uniqueItems"),
                                  where=self._where(alt))
            for v in vs:
                if v not in values:
                    values.append(v)
        if len(values) > self.opt.max_unique_domain:
            raise Unsupported("uniqueItems", f"{len(values)} possible item values > max_unique_domain="
                              f"{self.opt.max_unique_domain}" + hint("uniqueItems"), where=self._where(alt))
        lits = [self._value_literal(v) for v in values]
        allowed = []  # per position: indices of values allowed there
        for f in forms:
            vs = self._finite_values(ev.eval(f))
            allowed.append([values.index(v) for v in vs])
        top = len(values) if hi is None else min(hi, len(values))
        if alt.rest == FALSE:
            top = min(top, P)
        A = _LazyNonterminals(self, lambda i, used: f"uarr{i}")

        def body(nt, i, used):
            if i >= lo:
                self.rule(nt)
            if i >= top:
                return
            pos = min(i, len(forms) - 1) if i >= P else i
            if i >= P and alt.rest == FALSE:
                return
            for v in allowed[pos]:
                if not used >> v & 1:
                    self.rule(nt, *((self.COMMA,) if i > 0 else ()), lits[v], A(i + 1, used | 1 << v))
        start = A(0, 0)
        A.drain(body)
        self.rule(arr, self.LBRACK, start, self.RBRACK)

    @staticmethod
    def _where(alt) -> str:
        return alt.where or "(array with uniqueItems)"

    def _finite_values(self, ts: TypeSets):
        """Canonical JSON texts of the values of ``ts`` if finite and small, else None."""
        if ts.objects or ts.arrays:
            return None
        out = []
        if ts.null:
            out.append("null")
        for b in (True, False):
            if b in ts.booleans:
                out.append(json.dumps(b))
        if ts.number is not None:
            if ts.number_points is None:
                return None
            for p in ts.number_points:
                text = _canon_number(p)
                if ts.number.dfa.matches(text.encode()):
                    out.append(text)
        if ts.string is not None:
            st = ts.string
            members = st.members
            if members is None:
                if st.body is None:
                    return None
                raw = enumerate_strings(st.body, self.opt.max_unique_domain)
                if raw is None:
                    return None
                members = [r.decode("utf-8") for r in raw]
            for m in members:
                if st.lo <= len(m) and (st.hi is None or len(m) <= st.hi) and \
                        (st.body is None or st.body.matches(m.encode("utf-8"))):
                    out.append(json.dumps(m))
        if len(out) > self.opt.max_unique_domain:
            return None
        return list(dict.fromkeys(out))

    def _value_literal(self, text: str) -> int:
        v = json.loads(text)
        if isinstance(v, str):
            dfa = quoted_literals([v], canonical=self.canon)
        elif v is None or isinstance(v, bool):
            dfa = literal_dfa(text.encode())
        else:
            dfa = num.points_dfa([Decimal(text)])
        return self.terminal(dfa, "UVAL")

    # ------------------------------------------------------------------ finish
    def finish(self, start: int) -> Grammar:
        if self.schema_ordered:
            self.ev.note("property_order", "(objects)", f"{self.schema_ordered} object(s) declare more than "
                         f"max_any_order={self.opt.max_any_order} properties: their declared properties are "
                         "generated in schema order", warn=False, kind="restricted")
        # keep the rules of the nonterminals reachable from start (breadth first: the
        # fixpoints after this are worklists, so no order makes them converge faster)
        by_lhs: dict[int, list] = {}
        for lhs, rhs in self.rules:
            got = by_lhs.get(lhs)
            if got is None:
                by_lhs[lhs] = [rhs]
            else:
                got.append(rhs)
        seen = {start}
        order = [start]
        for nt in order:
            for rhs in by_lhs.get(nt, ()):
                for x in rhs:
                    if x >= 0 and x not in seen:
                        seen.add(x)
                        order.append(x)
        rules = [(nt, rhs) for nt in order for rhs in by_lhs.get(nt, ())]
        return Grammar(list(self.terminals), list(self.nonterminals), rules, start)


def _canon_number(p: Decimal) -> str:
    if p == p.to_integral_value():
        return str(int(p))
    return format(p.normalize(), "f")
