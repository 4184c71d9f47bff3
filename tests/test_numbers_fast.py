"""The numeric machine's shortcuts (exponent interval from breakpoints, state
canonicalisations) against plain definitions: a full exponent scan, and the
decimal value of random number strings."""

import random
from decimal import Decimal

from structgen.json_schema import numbers as num


def _rand_value(rng):
    k = rng.random()
    if k < 0.3:
        return Decimal(rng.randint(-10 ** rng.randint(0, 12), 10 ** rng.randint(0, 12)))
    if k < 0.6:
        return Decimal(rng.randint(-99999, 99999)).scaleb(-rng.randint(0, 6))
    if k < 0.85:
        return Decimal(rng.choice(["0", "1", "-1", "0.5", "1E+3", "2.5E-7", "-0.001", "100", "65535",
                                   "214748364", "-9007199254740991"]))
    return Decimal(repr(rng.uniform(-1e6, 1e6)))


def _rand_bounds(rng):
    lo = _rand_value(rng) if rng.random() < 0.8 else None
    hi = _rand_value(rng) if rng.random() < 0.8 else None
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return lo, rng.random() < 0.3, hi, rng.random() < 0.3, rng.random() < 0.4


def _preds(lo, lo_excl, hi, hi_excl):
    preds = []
    if lo is not None:
        preds.append((lo, "gt" if lo_excl else "ge"))
    if hi is not None:
        preds.append((hi, "lt" if hi_excl else "le"))
    return preds


def _scan_interval(m, st):
    """The exponent interval by testing every exponent in [-ecap, ecap]."""
    K = m.ecap
    ok = [e for e in range(-K, K + 1) if m._ok_exp(st, e)]
    if not ok:
        return None
    assert ok == list(range(ok[0], ok[-1] + 1))
    return ("e", "E", None if ok[0] == -K else ok[0], None if ok[-1] == K else ok[-1])


def test_exponent_interval_from_breakpoints_matches_full_scan():
    rng = random.Random(3)
    for _ in range(60):
        lo, lo_excl, hi, hi_excl, integral = _rand_bounds(rng)
        m = num._Machine(_preds(lo, lo_excl, hi, hi_excl), "all", integral)
        seen, queue = {m.start()}, [m.start()]
        for st in queue:
            if st[0] == "m" and st[1] in ("I0", "I", "F"):
                _, ph, neg, nz, pre, cmps, f, lz, tz = st
                if not nz or (num.EXP_PRE_MIN <= pre <= num.EXP_PRE_MAX and 0 <= f <= num.EXP_FRAC_MAX):
                    assert m._interval(st) == _scan_interval(m, st), (lo, hi, st)
            for _, nxt in m.row(st):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)


def _rand_number(rng):
    s = rng.choice(["", "-"])
    s += rng.choice(["0", str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 17)))])
    if rng.random() < 0.6:
        s += "." + "".join(rng.choice("0000123456789") for _ in range(rng.randint(1, 20)))
    if rng.random() < 0.5:
        s += rng.choice("eE") + rng.choice(["", "+", "-"]) + rng.choice(["0", "00", ""]) + str(rng.randint(0, 40))
    return s


def test_number_dfa_matches_decimal_values_on_its_domain():
    rng = random.Random(11)
    samples = [_rand_number(rng) for _ in range(3000)]
    interesting = ["0", "-0", "0e5", "1e0", "10e-1", "0.5e1", "5", "5.0", "5.00000000000000000001",
                   "4.99999999999999999999", "1e-7", "2.5e-7", "25e-8", "100e-2", "1E+3", "1.000e3"]
    safe = Decimal(2 ** 53 - 1)
    fixed = [(None, False, None, False, True), (None, False, None, False, False), (-safe, False, safe, False, False),
             (Decimal(0), False, Decimal(2 ** 31 - 1), False, True), (Decimal("0.5"), True, Decimal(5), True, False)]
    for bounds in fixed + [_rand_bounds(rng) for _ in range(40)]:
        lo, lo_excl, hi, hi_excl, integral = bounds
        if lo is not None and hi is not None and lo == hi and (lo_excl or hi_excl):
            continue
        dfa = num.number_dfa(*bounds)
        near = [str(v) for v in (lo, hi) if v is not None]
        near += [str(v.scaleb(1)) + "e-1" for v in (lo, hi) if v is not None]
        for s in samples + interesting + near:
            data = s.encode()
            if not num.DOMAIN_EXP.matches(data):
                assert not dfa.matches(data), (bounds, s)
                continue
            v = Decimal(s)
            want = ((lo is None or (v > lo if lo_excl else v >= lo))
                    and (hi is None or (v < hi if hi_excl else v <= hi))
                    and (not integral or v == v.to_integral_value()))
            assert dfa.matches(data) == want, (bounds, s)


def test_bounds_explored_without_counting_fraction_digits_equal_the_counting_machine():
    """_bounds_cached explores non-integral bounds without the fraction-digit count
    and intersects with DOMAIN_EXP, and integral bounds as the bounds intersected with
    the integral numbers: the same minimal DFA as the one machine that counts and
    tracks both."""
    from structgen.automata import ops

    rng = random.Random(7)
    cases = [(Decimal(1), False, Decimal(2 ** 31 - 1), False, False), (Decimal(-90), False, Decimal(90), False, False),
             (Decimal(0), True, None, False, False), (None, False, Decimal("0.001"), True, False),
             (Decimal("0.5"), True, Decimal(5), True, False), (Decimal(1000), False, Decimal(9999), False, False)]
    cases += [b[:4] + (False,) for b in (_rand_bounds(rng) for _ in range(40))]
    cases += [(Decimal(0), False, None, False, True), (Decimal(1), False, Decimal(65535), False, True),
              (Decimal("-90"), True, Decimal("90"), False, True), (Decimal("0.5"), False, Decimal("7.25"), True, True)]
    cases += [b[:4] + (True,) for b in (_rand_bounds(rng) for _ in range(12))]
    for lo, lo_excl, hi, hi_excl, integral in cases:
        if lo is not None and hi is not None and lo == hi and (lo_excl or hi_excl):
            continue
        counting = num._explore(num._Machine(_preds(lo, lo_excl, hi, hi_excl), "all", integral))
        fast = num._bounds_cached.__wrapped__(lo, lo_excl, hi, hi_excl, integral)
        assert ops.dfa_key(fast) == ops.dfa_key(counting), (lo, lo_excl, hi, hi_excl)


def test_bounds_kernel_equals_the_python_machine():
    """The numba exploration of the bounds machine (numbers_numba.bounds_table) gives
    the same minimal DFA as the Python machine explored by ops.explore, for one and
    two bounds, inclusive and exclusive, of every sign and scale."""
    from structgen.automata import ops

    rng = random.Random(23)
    cases = [(Decimal(0), False, Decimal(1), False), (Decimal(1), False, Decimal(2 ** 31 - 1), False),
             (Decimal(-180), False, Decimal(180), False), (Decimal(0), True, None, False),
             (None, False, Decimal("0.001"), True), (Decimal("-1E+20"), False, Decimal("1E-20"), True),
             (Decimal("1E+300"), False, None, False), (Decimal("-0.5"), True, Decimal("-0.25"), True)]
    cases += [b[:4] for b in (_rand_bounds(rng) for _ in range(150))]
    served = 0
    for lo, lo_excl, hi, hi_excl in cases:
        preds = _preds(lo, lo_excl, hi, hi_excl)
        if not preds or (lo is not None and hi is not None and lo == hi and (lo_excl or hi_excl)):
            continue
        fast = num._explore_bounds(preds, "numba")
        slow = num._explore_bounds(preds, "reference")
        assert ops.dfa_key(fast) == ops.dfa_key(slow), (lo, lo_excl, hi, hi_excl)
        served += 1
    assert served > 100
