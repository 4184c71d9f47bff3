"""Exact numeric languages: JSON numbers whose *value* satisfies bounds,
integrality, ``multipleOf`` or membership in a finite set.

A number string ``-? int (. frac)? (e exp)?`` is read left to right by an
abstract machine whose state keeps just enough to decide the predicate at the
end: the sign, ``pre`` (the decimal magnitude of the mantissa: number of
integer digits, or minus the count of leading fraction zeros), for every
threshold the comparison of the significant digits read so far with the
threshold's significant digits, and the positions needed for integrality.
The exponent is compared against an interval computed from that summary.
The explored states form a DFA table, minimised by :mod:`structgen.automata.ops`.

Value semantics are mathematical (``1 == 1.0 == 10e-1``; ``-0 == 0``).

**Domains.**  Exponent notation with an unbounded mantissa is not a regular
language once the value is constrained, so constrained numbers use a
documented sub-syntax: exponent forms are produced only with a mantissa whose
integer part has at most 3 digits (``pre`` in 0..3: ``1.5e3``, ``12e-1``,
``0.5E+2``; every serializer writes 1 digit) and at most 20 fraction digits.
Every number DFA built here is exact on its *domain* (``DOMAIN_EXP`` or, for
``multipleOf``, ``DOMAIN_NOEXP`` = no exponent at all), which is what lets
``not`` complement them exactly (within the domain).
"""

from __future__ import annotations

import functools
from decimal import Decimal

import numpy as np

from ..automata import ops
from ..automata.fsm import ByteDFA
from ..automata.kernels import backend_name
from ..automata.regex import regex_to_dfa
from ..errors import BudgetExceeded

__all__ = ["NUMBER_FULL", "INTEGER_SYNTAX", "DOMAIN_EXP", "DOMAIN_NOEXP", "number_dfa", "multiple_dfa",
           "points_dfa", "to_decimal", "EXP_PRE_MIN", "EXP_PRE_MAX", "EXP_FRAC_MAX"]

NUMBER_REGEX = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
NUMBER_FULL = regex_to_dfa(NUMBER_REGEX)
INTEGER_SYNTAX = regex_to_dfa(r"-?(?:0|[1-9][0-9]*)")
DOMAIN_NOEXP = regex_to_dfa(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")

EXP_PRE_MIN, EXP_PRE_MAX = 0, 3
EXP_FRAC_MAX = 17
MAX_STATES = 200_000

_DIGITS = range(0x30, 0x3A)  # the digit bytes, a run in a machine's row


def to_decimal(x) -> Decimal:
    if isinstance(x, bool):
        raise TypeError("bool is not a number")
    if isinstance(x, float):
        return Decimal(repr(x))
    return Decimal(x)


class _Threshold:
    __slots__ = ("value", "zero", "neg", "digits", "mag")

    def __init__(self, value: Decimal):
        self.value = value
        self.zero = value == 0
        self.neg = value < 0
        if self.zero:
            self.digits, self.mag = "", 0
            return
        sign, digits, exp = abs(value).normalize().as_tuple()
        ds = "".join(map(str, digits)).lstrip("0")
        stripped = ds.rstrip("0")
        exp += len(ds) - len(stripped)
        self.digits = stripped
        self.mag = len(stripped) + exp  # |t| = 0.digits * 10**mag


def _cmp_step(state: int, digit: int, t: _Threshold) -> int:
    """Comparison of significant digits: -1 '<', -2 '>', j >= 0: equal so far (j matched)."""
    if state < 0:
        return state
    if state < len(t.digits):
        td = ord(t.digits[state]) - 48
        if digit < td:
            return -1
        if digit > td:
            return -2
        return state + 1
    return -2 if digit else state


def _abs_cmp(mag: int, cmp: int, t: _Threshold) -> int:
    """Sign of |v| - |t| for nonzero v with magnitude ``mag``."""
    if mag != t.mag:
        return 1 if mag > t.mag else -1
    if cmp == -1:
        return -1
    if cmp == -2:
        return 1
    return 0 if cmp == len(t.digits) else -1


def _sign_cmp(neg: bool, mag: int | None, cmp: int, t: _Threshold) -> int:
    """Sign of v - t (``mag`` None: v == 0)."""
    if mag is None:
        return 0 if t.zero else (1 if t.neg else -1)
    if t.zero:
        return -1 if neg else 1
    if neg != t.neg:
        return -1 if neg else 1
    a = _abs_cmp(mag, cmp, t)
    return -a if neg else a


_OK = {"ge": lambda c: c >= 0, "gt": lambda c: c > 0, "le": lambda c: c <= 0, "lt": lambda c: c < 0,
       "eq": lambda c: c == 0}


class _Machine:
    def __init__(self, preds, mode: str, integral: bool, count_frac: bool = True):
        self.preds = [(_Threshold(v), rel) for v, rel in preds]
        self.mode = mode  # "all" (bounds) or "any" (points)
        self.integral = integral
        # False: fraction digits are not counted, so exponent forms are allowed after
        # any number of them (the language is then intersected with DOMAIN_EXP,
        # which counts them: see _bounds_cached); integrality needs the count
        self.count_frac = count_frac or integral
        mags = [t.mag for t, _ in self.preds if not t.zero]
        self.pmax = max([EXP_PRE_MAX] + mags) + 1
        self.pmin = min([EXP_PRE_MIN] + mags) - 1
        self.ecap = max([abs(m) for m in mags] + [0]) + EXP_PRE_MAX + EXP_FRAC_MAX + 4
        self._memo: dict = {}
        self._sig_memo: dict = {}
        self._holds_memo: dict = {}
        # per sign, which comparisons are never read (zero threshold or one of the
        # other sign: ``_sign_cmp`` decides by signs alone); blanking them to -1
        # merges states that differ only there, so fewer states are explored
        self._dead = {neg: tuple(t.zero or t.neg != neg for t, _ in self.preds) for neg in (False, True)}

    def holds(self, neg, mag, cmps, integral_ok) -> bool:
        if self.integral and not integral_ok:
            return False
        if not self.preds:
            return True
        key = (neg, mag, cmps)  # many states share their summary: memoised
        hit = self._holds_memo.get(key)
        if hit is None:
            res = (_OK[rel](_sign_cmp(neg, mag, c, t)) for (t, rel), c in zip(self.preds, cmps))
            hit = self._holds_memo[key] = all(res) if self.mode == "all" else any(res)
        return hit

    # state: ("m", phase, neg, nz, pre, cmps, f, lz, tz) for the mantissa;
    #        ("e", "E", a, b) after the exponent letter (exponent interval [a, b], None: open),
    #        ("e", "ES" | "ED", lo, hi, val) once the sign is known (see _erange)
    def start(self):
        return ("m", "S0", False, False, 0, tuple(0 for _ in self.preds), 0, 0, 0)

    def _blank(self, neg, cmps):
        return tuple(-1 if dead else c for c, dead in zip(cmps, self._dead[neg]))

    def _sig(self, cmps, d):
        return self._sigs(cmps)[d]

    def _sigs(self, cmps):
        """The comparisons after each digit 0..9 (few distinct ``cmps``: memoised, the explore's hot path)."""
        hit = self._sig_memo.get(cmps)
        if hit is None:
            hit = self._sig_memo[cmps] = tuple(tuple(_cmp_step(c, d, t) for c, (t, _) in zip(cmps, self.preds))
                                               for d in range(10))
        return hit

    def _nonzero_digits(self, out, cmps, make):
        """Append the transitions on the digits 1..9.  A state after a nonzero digit
        depends on the digit only through the comparisons, and digits with equal
        comparisons are contiguous: one ``(range of bytes, make(d))`` per run."""
        sigs = self._sigs(cmps)
        d0 = 1
        for d in range(2, 11):
            if d == 10 or sigs[d] != sigs[d0]:
                out.append((range(48 + d0, 48 + d), make(d0)))
                d0 = d

    def _sat(self, pre):
        return max(self.pmin, min(self.pmax, pre))

    def step(self, st, byte):
        if st[0] == "e":
            return self._estep(st, byte)
        _, ph, neg, nz, pre, cmps, f, lz, tz = st
        ch = chr(byte)
        if ph == "S0":
            if ch == "-":
                return ("m", "NEG", True, nz, pre, cmps, f, lz, tz)
            ph = "NEG"
        if ph == "NEG":
            cmps = self._blank(neg, cmps)
            if ch == "0":
                return ("m", "I0", neg, False, 0, cmps, 0, 0, 0)
            if "1" <= ch <= "9":
                return ("m", "I", neg, True, 1, self._sig(cmps, byte - 48), 0, 0, 0)
            return None
        if ph in ("I0", "I", "F") and ch in "eE":
            return self._enter_exp(st)
        if ph in ("I0", "I") and ch == ".":
            return ("m", "DOT", neg, nz, pre, cmps, f, lz, tz)
        if not ch.isdigit() or not ch.isascii():
            return None
        d = byte - 48
        if ph == "I0":
            return None
        if ph == "I":
            ntz = min(tz + 1, EXP_PRE_MAX + 1) if d == 0 else 0
            return ("m", "I", neg, True, self._sat(pre + 1), self._sig(cmps, d), 0, 0,
                    ntz if self.integral else 0)
        return self._frac_digit(neg, nz, pre, cmps, f, lz, tz, d)

    def row(self, st) -> list:
        """Every ``(byte, step(st, byte))`` that is not None, computed together
        (the explore's hot path; tests check it against :meth:`step`)."""
        if st[0] == "e":
            if st[1] == "E":
                _, _, a, b = st
                lo, hi = _erange(a, b, False)
                return ([(0x2B, ("e", "ES", lo, hi, 0)), (0x2D, ("e", "ES") + _erange(a, b, True) + (0,))]
                        + [(48 + d, ("e", "ED", lo, hi, _edigit(lo, hi, 0, d))) for d in range(10)])
            _, _, lo, hi, val = st
            return [(48 + d, ("e", "ED", lo, hi, _edigit(lo, hi, val, d))) for d in range(10)]
        _, ph, neg, nz, pre, cmps, f, lz, tz = st
        out = []
        if ph == "S0":
            out.append((0x2D, ("m", "NEG", True, nz, pre, cmps, f, lz, tz)))
            ph = "NEG"
        if ph == "NEG":
            cmps = self._blank(neg, cmps)
            out.append((0x30, ("m", "I0", neg, False, 0, cmps, 0, 0, 0)))
            sigs = self._sigs(cmps)
            self._nonzero_digits(out, cmps, lambda d: ("m", "I", neg, True, 1, sigs[d], 0, 0, 0))
            return out
        if ph in ("I0", "I", "F"):
            e = self._enter_exp(st)
            if e is not None:
                out += [(0x45, e), (0x65, e)]
        if ph in ("I0", "I"):
            out.append((0x2E, ("m", "DOT", neg, nz, pre, cmps, f, lz, tz)))
        if ph == "I0":
            return out
        if ph == "I":
            sat = self._sat(pre + 1)
            ntz = min(tz + 1, EXP_PRE_MAX + 1) if self.integral else 0
            sigs = self._sigs(cmps)
            out.append((0x30, ("m", "I", neg, True, sat, sigs[0], 0, 0, ntz)))
            self._nonzero_digits(out, cmps, lambda d: ("m", "I", neg, True, sat, sigs[d], 0, 0, 0))
            return out
        if nz and not self.integral and max(cmps, default=-1) < 0:
            # a nonzero digit read, every comparison decided, no integrality: the next
            # state is the same for every digit (see _frac_digit) -- most fraction states
            nxt = self._frac_digit(neg, nz, pre, cmps, f, lz, tz, 1)
            out.append((_DIGITS, nxt))
            return out
        out.append((0x30, self._frac_digit(neg, nz, pre, cmps, f, lz, tz, 0)))
        self._nonzero_digits(out, cmps, lambda d: self._frac_digit(neg, nz, pre, cmps, f, lz, tz, d))
        return out

    def _frac_digit(self, neg, nz, pre, cmps, f, lz, tz, d):
        """Next state after fraction digit ``d`` (phase DOT or F)."""
        if f < 0:  # outside the exponent domain already: only "nonzero fraction digit seen" matters
            nlz = 1 if (d or lz) else 0
            if not nz and d == 0:
                return ("m", "F", neg, False, self._sat(pre - 1), cmps, -1, 0, 0)
            return ("m", "F", neg, True, pre, self._sig(cmps, d), -1, nlz if self.integral else 0, 0)
        nf = f + 1 if self.count_frac else 0
        if not nz:
            if d == 0:
                pre = self._sat(pre - 1)
                if pre < EXP_PRE_MIN or nf > EXP_FRAC_MAX:
                    return ("m", "F", neg, False, pre, cmps, -1, 0, 0)
                return ("m", "F", neg, False, pre, cmps, nf, lz, tz)
            nz = True
        nlz = (nf if d else lz) if self.integral else 0
        if nf > EXP_FRAC_MAX or not (EXP_PRE_MIN <= pre <= EXP_PRE_MAX):
            return ("m", "F", neg, nz, pre, self._sig(cmps, d), -1, (1 if nlz else 0), 0)
        # with a nonzero fraction digit the integer part's trailing zeros are never read
        # again; without thresholds an in-domain pre is only ever checked to be in it
        nxt = ("m", "F", neg, nz, pre if self.preds else EXP_PRE_MIN, self._sig(cmps, d), nf, nlz,
               0 if nlz else tz)
        if not self.integral and max(nxt[5], default=-1) < 0 and self._enter_exp(nxt) is None:
            # every comparison decided and no exponent can satisfy them: the fraction
            # count no longer matters (successors keep pre and cmps), so join the
            # out-of-domain state and spare exploring a copy per count
            return ("m", "F", neg, nz, pre, nxt[5], -1, 0, 0)
        return nxt

    def accept(self, st) -> bool:
        if st[0] == "e":
            if st[1] != "ED":
                return False
            _, _, lo, hi, val = st
            return lo <= val and (hi is None or val <= hi)
        _, ph, neg, nz, pre, cmps, f, lz, tz = st
        if ph not in ("I0", "I", "F"):
            return False
        if not nz:
            return self.holds(neg, None, cmps, True)
        return self.holds(neg, pre, cmps, lz == 0)

    def _ok_exp(self, st, e: int) -> bool:
        _, ph, neg, nz, pre, cmps, f, lz, tz = st
        if not nz:
            return self.holds(neg, None, cmps, True)
        integral_ok = (e >= lz) if lz > 0 else (e >= -tz)
        return self.holds(neg, pre + e, cmps, integral_ok)

    def _enter_exp(self, st):
        _, ph, neg, nz, pre, cmps, f, lz, tz = st
        if nz and not (EXP_PRE_MIN <= pre <= EXP_PRE_MAX and 0 <= f <= EXP_FRAC_MAX):
            return None  # outside the exponent domain
        key = (neg, nz, pre, cmps, lz, tz)
        if key not in self._memo:
            self._memo[key] = self._interval(st)
        return self._memo[key]

    def _breakpoints(self, st) -> list:
        """Exponents in ``[-ecap, ecap]`` where ``_ok_exp(st, e)`` may change:
        it depends on ``e`` only through ``pre + e`` against each threshold's
        magnitude (below / equal / above) and ``e`` against the integrality
        threshold, so it is constant from one breakpoint to the next."""
        K = self.ecap
        _, ph, neg, nz, pre, cmps, f, lz, tz = st
        pts = {-K}
        if nz:
            for t, _ in self.preds:
                if not t.zero:
                    pts.add(t.mag - pre)
                    pts.add(t.mag - pre + 1)
            if self.integral:
                pts.add(lz if lz > 0 else -tz)
        return sorted(e for e in pts if -K <= e <= K)

    def _interval(self, st):
        pts = self._breakpoints(st)
        oks = [self._ok_exp(st, e) for e in pts]  # oks[i] holds on [pts[i], pts[i + 1])
        if not any(oks):
            return None
        lo_i = oks.index(True)
        hi_i = len(oks) - 1 - oks[::-1].index(True)
        if not all(oks[lo_i:hi_i + 1]):
            raise AssertionError("exponent set is not an interval")  # pragma: no cover
        a = None if lo_i == 0 else pts[lo_i]
        b = None if hi_i == len(pts) - 1 else pts[hi_i + 1] - 1
        return ("e", "E", a, b)

    def _estep(self, st, byte):
        ch = chr(byte)
        if st[1] == "E":
            _, _, a, b = st
            if ch in "+-":
                return ("e", "ES") + _erange(a, b, ch == "-") + (0,)
            st = ("e", "ES") + _erange(a, b, False) + (0,)
        if not ("0" <= ch <= "9"):
            return None
        _, _, lo, hi, val = st
        return ("e", "ED", lo, hi, _edigit(lo, hi, val, byte - 48))


def _erange(a, b, minus: bool) -> tuple:
    """Allowed exponent *magnitudes* ``(lo, hi)`` (hi None: unbounded) for the
    exponent interval ``[a, b]`` and the sign read.  Keying exponent states by
    this instead of ``(a, b, sign)`` lets intervals that agree on one sign share
    states, so fewer are explored; an empty range is ``(1, 0)``."""
    if minus:
        a, b = (None if b is None else -b), (None if a is None else -a)
    lo = 0 if a is None else max(a, 0)
    if b is not None and b < lo:
        return (1, 0)
    return (lo, b)


def _edigit(lo: int, hi, val: int, d: int) -> int:
    """Magnitude after digit ``d``, clamped where the future no longer depends on
    it: above ``hi`` nothing is accepted again; with no ``hi``, from ``lo`` on
    everything is."""
    n = val * 10 + d
    return min(n, lo) if hi is None else min(n, hi + 1)


_ALPHABET = sorted(set(ord(c) for c in "-+.eE0123456789"))


def _explore(machine, max_states: int = MAX_STATES) -> ByteDFA:
    return ops.explore(machine.start(), machine.step, machine.accept, alphabet=_ALPHABET, max_states=max_states,
                       what="numeric constraint DFA", rows=getattr(machine, "row", None))


@functools.lru_cache(maxsize=1024)
def _bounds_cached(lo, lo_excl, hi, hi_excl, integral) -> ByteDFA:
    preds = []
    if lo is not None:
        preds.append((lo, "gt" if lo_excl else "ge"))
    if hi is not None:
        preds.append((hi, "lt" if hi_excl else "le"))
    if not preds:
        return _explore(_Machine(preds, "all", integral))
    if integral:
        # Integral and in bounds is the intersection of the two languages: the bounds
        # (cheap, below) with the integral numbers (explored once per process).  The
        # machine that tracks both explores 4-8 times longer (~10 ms for minimum 0).
        return ops.intersect(_bounds_cached(lo, lo_excl, hi, hi_excl, False),
                             _bounds_cached(None, False, None, False, True), max_states=MAX_STATES)
    # The value does not depend on how many fraction digits were read, only the
    # domain does: explore without counting them (a machine about 17 times
    # smaller) and intersect with the domain, a product kernel call.
    return ops.intersect(_explore_bounds(preds), DOMAIN_EXP, max_states=MAX_STATES)


def _explore_bounds(preds, backend: str = "auto") -> ByteDFA:
    """The bounds machine without fraction counting, explored by the numba twin
    (:mod:`.numbers_numba`, 0.2-0.4 ms with the minimisation instead of 0.7-3 ms) unless the reference
    kernels are selected (``STRUCTGEN_KERNELS=reference``, or ``backend="reference"``)."""
    machine = _Machine(preds, "all", False, count_frac=False)
    if backend_name(backend) != "numba":  # the DFA kernels' choice decides this one's too
        return _explore(machine)
    from . import numbers_numba as nb

    ts = [t for t, _ in machine.preds]
    width = max(1, max(len(t.digits) for t in ts))
    digits = np.full((len(ts), width), -1, np.int64)
    for k, t in enumerate(ts):
        digits[k, :len(t.digits)] = [ord(c) - 48 for c in t.digits]
    table, accepting = nb.bounds_table(
        digits, np.array([t.zero for t in ts]), np.array([t.neg for t in ts]),
        np.array([t.mag for t in ts], np.int64), np.array([len(t.digits) for t in ts], np.int64),
        np.array([_RELS.index(rel) for _, rel in machine.preds], np.int64),
        machine.pmin, machine.pmax, machine.ecap, MAX_STATES)
    if table.shape[0] == 0:
        raise BudgetExceeded(f"numeric constraint DFA exceeds max_states={MAX_STATES}")
    # the kernel's columns are the alphabet's, as ops.explore numbers them
    return ops.from_table(table, accepting, 0, byte_class=ops.alphabet_columns(_ALPHABET).astype(np.uint8))


_RELS = ("ge", "gt", "le", "lt")  # the kernel's relation codes


def load_kernel() -> None:
    """Read the bounds kernel from numba's disk cache (~12 ms, once per process), as
    the compiler does for the other kernels when the first one is made."""
    _explore_bounds([(Decimal(0), "ge")])


def number_dfa(lo: Decimal | None = None, lo_excl: bool = False, hi: Decimal | None = None,
               hi_excl: bool = False, integral: bool = False) -> ByteDFA:
    """Numbers in the bounds (and integral when asked), on ``DOMAIN_EXP``."""
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_excl or hi_excl))):
        return ops.empty_dfa()
    return _bounds_cached(lo, lo_excl, hi, hi_excl, integral)


def points_dfa(values) -> ByteDFA:
    """Numbers equal to one of ``values`` (Decimals), on ``DOMAIN_EXP``."""
    vals = tuple(sorted(set(Decimal(v).normalize() if v != 0 else Decimal(0) for v in values)))
    if not vals:
        return ops.empty_dfa()
    return _points_cached(vals)


@functools.lru_cache(maxsize=1024)
def _points_cached(vals) -> ByteDFA:
    return _spellings_dfa([sp for v in vals for sp in _spellings(v)])


def _exp_regex(e: int) -> str:
    if e == 0:
        return "[eE][+-]?0+"
    return ("[eE]\\+?0*%d" % e) if e > 0 else ("[eE]-0*%d" % -e)


def _spellings(v: Decimal) -> list:
    """Every spelling of the value ``v`` on ``DOMAIN_EXP``, as ``(head, tail)``
    pairs: a literal head (sign, digits, ``.``) followed by a regex tail."""
    if v == 0:
        return [("", r"-?0(?:\.0+)?(?:[eE][+-]?[0-9]+)?")]
    t = _Threshold(v)
    sign = "-" if t.neg else ""
    D, m = t.digits, t.mag
    if m >= len(D):
        out = [(sign + D + "0" * (m - len(D)), r"(?:\.0+)?")]
    elif m > 0:
        out = [(sign + D[:m] + "." + D[m:], "0*")]
    else:
        out = [(sign + "0." + "0" * (-m) + D, "0*")]
    for p in range(EXP_PRE_MIN, EXP_PRE_MAX + 1):
        if p == 0:
            ip, frac = "0", D
        else:
            ip, frac = (D + "0" * p)[:p], D[p:]
        if len(frac) > EXP_FRAC_MAX:
            continue
        room = EXP_FRAC_MAX - len(frac)
        if frac:
            out.append((sign + ip + "." + frac, "0{0,%d}" % room + _exp_regex(m - p)))
        else:
            out.append((sign + ip, r"(?:\.0{1,%d})?" % room + _exp_regex(m - p)))
    return out


def _point_regex(v: Decimal) -> str:
    """Every spelling of the value ``v`` on ``DOMAIN_EXP`` as one regex (the plain
    definition :func:`_spellings_dfa` is tested against)."""
    return "|".join(head.replace(".", r"\.") + tail for head, tail in _spellings(v))


@functools.lru_cache(maxsize=256)
def _tail_dfa(tail: str) -> ByteDFA:
    return regex_to_dfa(tail)


def _spellings_dfa(spellings) -> ByteDFA:
    """Minimal DFA of the union of ``head + tail`` languages (:func:`_spellings`).

    The heads form a trie; a state is (trie node or -1, the tails being read with
    their DFA states).  Few tails are alive at once, so this explores far fewer
    states than determinising the union as one regex (and parses no regex text but
    the few distinct tails, cached)."""
    children: list[dict] = [{}]
    tails: list[list] = [[]]
    for head, tail in spellings:
        n = 0
        for b in head.encode():
            nxt = children[n].get(b)
            if nxt is None:
                nxt = children[n][b] = len(children)
                children.append({})
                tails.append([])
            n = nxt
        tails[n].append(tail)
    dfas: dict[str, int] = {}
    tables, accs, starts = [], [], []
    entering = []  # per trie node: the (tail, state) pairs that begin where its head ends
    for ts in tails:
        got = []
        for tail in dict.fromkeys(ts):
            k = dfas.get(tail)
            if k is None:
                d = _tail_dfa(tail)
                k = dfas[tail] = len(tables)
                tables.append(ops.expand(d).tolist())
                accs.append(np.asarray(d.accepting, bool).tolist())
                starts.append(d.start)
            got.append((k, starts[k]))
        entering.append(tuple(got))

    def row(st):
        n, active = st
        out = []
        for b in _ALPHABET:
            m = children[n].get(b, -1) if n >= 0 else -1
            nxt = {(k, tables[k][q][b]) for k, q in active if tables[k][q][b] >= 0}
            if m >= 0:
                nxt.update(entering[m])
            elif not nxt:
                continue
            out.append((b, (m, frozenset(nxt))))
        return out

    return ops.explore((0, frozenset(entering[0])), None, lambda st: any(accs[k][q] for k, q in st[1]),
                       alphabet=_ALPHABET, max_states=MAX_STATES, what="numeric enum DFA", rows=row)


class _MultipleMachine:
    """Multiples of ``a * 10**-k`` without exponent notation."""

    def __init__(self, a: int, k: int):
        self.a, self.k = a, k

    def start(self):
        return ("S0", 0, 0)

    def step(self, st, byte):
        ph, w, j = st
        ch = chr(byte)
        if ph == "S0":
            if ch == "-":
                return ("NEG", 0, 0)
            ph = "NEG"
        if ph == "NEG":
            if ch == "0":
                return ("I0", 0, 0)
            if "1" <= ch <= "9":
                return ("I", (byte - 48) % self.a, 0)
            return None
        if ph in ("I0", "I") and ch == ".":
            return ("DOT", w, 0)
        if not ("0" <= ch <= "9") or ph == "I0":
            return None
        d = byte - 48
        if ph == "I":
            return ("I", (w * 10 + d) % self.a, 0)
        if j >= self.k:
            return ("F", w, j) if d == 0 else None
        return ("F", (w * 10 + d) % self.a, j + 1)

    def accept(self, st):
        ph, w, j = st
        if ph not in ("I0", "I", "F"):
            return False
        return (w * pow(10, self.k - j, self.a)) % self.a == 0


def multiple_dfa(q: Decimal) -> ByteDFA:
    """Multiples of ``q`` (> 0), on ``DOMAIN_NOEXP``."""
    q = Decimal(q)
    sign, digits, exp = q.normalize().as_tuple()
    a = int("".join(map(str, digits)))
    if exp >= 0:
        a *= 10 ** exp
        k = 0
    else:
        k = -exp
    if a > 100_000 or k > 400:
        raise BudgetExceeded(f"multipleOf {q}: the divisibility automaton would have {a * (k + 2)} states")
    return _multiple_cached(a, k)


@functools.lru_cache(maxsize=256)
def _multiple_cached(a: int, k: int) -> ByteDFA:
    return _explore(_MultipleMachine(a, k))


#: numbers whose exponent form (if any) is inside the produced sub-syntax (see module docstring)
DOMAIN_EXP = _bounds_cached(None, False, None, False, False)
