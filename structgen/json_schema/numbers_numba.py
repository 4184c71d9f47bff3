"""numba twin of the bounds exploration in :mod:`.numbers`: ``_Machine(preds, "all",
integral=False, count_frac=False)`` explored by ``ops.explore``, the language of
numbers within one or two bounds before the intersection with ``DOMAIN_EXP``.

The Python machine is the readable definition (and what ``STRUCTGEN_KERNELS=reference``
runs); this kernel takes the same steps on arrays: a state is 8 ints (below), found
again through an open-addressing table, and the result is the explored table over
the machine's 15-byte alphabet (minimised by the caller, so the numbering does not
matter).  Tests compare the two DFAs for random bounds.

State fields: ``[0, phase, neg, nz, pre, cmp0, cmp1, out]`` for the mantissa (phase
S0 NEG I0 I DOT F = 0..5; ``out``: 1 once outside the exponent domain, the
machine's ``f = -1``), ``[1, a, b]`` after the exponent letter (exponent interval,
``NONE``: open) and ``[2 | 3, lo, hi, val]`` once its sign (2, "ES") or a digit
(3, "ED") is read."""

from __future__ import annotations

import numba
import numpy as np

_JIT = dict(cache=True, nogil=True)
_INLINE = dict(_JIT, inline="always")  # helpers: no call (and no array reference counting) per step

NONE = -(1 << 40)  # an absent bound (the machine's None)
S0, NEG, I0, I, DOT, F = 0, 1, 2, 3, 4, 5
EXP_PRE_MIN, EXP_PRE_MAX = 0, 3
# columns: the machine's alphabet, sorted (as ops.explore numbers them)
_COL_PLUS, _COL_MINUS, _COL_DOT, _COL_D0, _COL_E_UPPER, _COL_E_LOWER = 0, 1, 2, 3, 13, 14
WIDTH = 16  # 15 alphabet columns and a dead one (ops.alphabet_columns)


@numba.njit(**_INLINE)
def _cmp_step(c, d, digits, t_len, k):
    if c < 0:
        return c
    if c < t_len[k]:
        td = digits[k, c]
        if d < td:
            return -1
        if d > td:
            return -2
        return c + 1
    return -2 if d else c


@numba.njit(**_INLINE)
def _sign_cmp(neg, has_mag, mag, c, k, t_zero, t_neg, t_mag, t_len):
    if not has_mag:
        return 0 if t_zero[k] else (1 if t_neg[k] else -1)
    if t_zero[k]:
        return -1 if neg else 1
    if neg != t_neg[k]:
        return -1 if neg else 1
    if mag != t_mag[k]:
        a = 1 if mag > t_mag[k] else -1
    elif c == -1:
        a = -1
    elif c == -2:
        a = 1
    else:
        a = 0 if c == t_len[k] else -1
    return -a if neg else a


@numba.njit(**_INLINE)
def _holds(neg, has_mag, mag, c0, c1, n, t_zero, t_neg, t_mag, t_len, rel):
    for k in range(n):
        s = _sign_cmp(neg, has_mag, mag, c0 if k == 0 else c1, k, t_zero, t_neg, t_mag, t_len)
        r = rel[k]
        if r == 0 and not s >= 0:  # ge
            return False
        if r == 1 and not s > 0:  # gt
            return False
        if r == 2 and not s <= 0:  # le
            return False
        if r == 3 and not s < 0:  # lt
            return False
    return True


@numba.njit(**_INLINE)
def _interval(neg, nz, pre, c0, c1, n, t_zero, t_neg, t_mag, t_len, rel, ecap, out, pts):
    """The exponent interval ``(a, b)`` into ``out`` (NONE: open); False when empty
    (the machine's ``_interval`` from its breakpoints; ``pts``: room for 5)."""
    K = ecap
    m = 0
    pts[m] = -K
    m += 1
    if nz:
        for k in range(n):
            if not t_zero[k]:
                for e in (t_mag[k] - pre, t_mag[k] - pre + 1):
                    if -K <= e <= K:
                        dup = False
                        for j in range(m):
                            if pts[j] == e:
                                dup = True
                        if not dup:
                            j = m  # insertion: pts[:m] stays sorted
                            while j > 0 and pts[j - 1] > e:
                                pts[j] = pts[j - 1]
                                j -= 1
                            pts[j] = e
                            m += 1
    lo_i, hi_i = -1, -1
    for j in range(m):
        if _holds(neg, nz, pre + pts[j], c0, c1, n, t_zero, t_neg, t_mag, t_len, rel):
            if lo_i < 0:
                lo_i = j
            hi_i = j
    if lo_i < 0:
        return False
    out[0] = NONE if lo_i == 0 else pts[lo_i]
    out[1] = NONE if hi_i == m - 1 else pts[hi_i + 1] - 1
    return True


@numba.njit(**_INLINE)
def _enter_exp(st, n, t_zero, t_neg, t_mag, t_len, rel, ecap, out, scratch):
    """The state after ``e``/``E`` into ``out``; False when none (the machine's
    ``_enter_exp``).  ``scratch``: 7 ints of room."""
    nz, pre = st[3], st[4]
    if nz and not (EXP_PRE_MIN <= pre <= EXP_PRE_MAX and st[7] == 0):
        return False
    if not _interval(st[2], nz, pre, st[5], st[6], n, t_zero, t_neg, t_mag, t_len, rel, ecap, scratch[:2],
                     scratch[2:]):
        return False
    out[:] = 0
    out[0], out[1], out[2] = 1, scratch[0], scratch[1]
    return True


@numba.njit(**_INLINE)
def _erange(a, b, minus, out):
    if minus:
        a, b = (NONE if b == NONE else -b), (NONE if a == NONE else -a)
    lo = 0 if a == NONE else max(a, 0)
    if b != NONE and b < lo:
        out[0], out[1] = 1, 0
    else:
        out[0], out[1] = lo, b


@numba.njit(**_INLINE)
def _edigit(lo, hi, val, d):
    v = val * 10 + d
    return min(v, lo) if hi == NONE else min(v, hi + 1)


@numba.njit(**_INLINE)
def _mantissa(out, ph, neg, nz, pre, c0, c1, off):
    out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7] = 0, ph, neg, nz, pre, c0, c1, off


@numba.njit(**_INLINE)
def _frac_digit(st, d, s0, s1, n, t_zero, t_neg, t_mag, t_len, rel, pmin, pmax, ecap, out, probe, scratch):
    """The state after fraction digit ``d`` into ``out``, ``s0``, ``s1`` being the
    comparisons after it (the machine's ``_frac_digit`` without fraction counting or
    integrality; ``probe``, ``scratch``: room)."""
    neg, nz, pre, c0, c1, off = st[2], st[3], st[4], st[5], st[6], st[7]
    if off:
        if not nz and d == 0:
            _mantissa(out, F, neg, 0, max(pmin, min(pmax, pre - 1)), c0, c1, 1)
        else:
            _mantissa(out, F, neg, 1, pre, s0, s1, 1)
        return
    if not nz:
        if d == 0:
            pre = max(pmin, min(pmax, pre - 1))
            _mantissa(out, F, neg, 0, pre, c0, c1, 1 if pre < EXP_PRE_MIN else 0)
            return
        nz = 1
    if not (EXP_PRE_MIN <= pre <= EXP_PRE_MAX):
        _mantissa(out, F, neg, nz, pre, s0, s1, 1)
        return
    _mantissa(out, F, neg, nz, pre, s0, s1, 0)
    if max(s0 if n > 0 else -1, s1 if n > 1 else -1) < 0:
        if not _enter_exp(out, n, t_zero, t_neg, t_mag, t_len, rel, ecap, probe, scratch):
            out[7] = 1  # every comparison decided and no exponent fits: join the out-of-domain state


@numba.njit(**_INLINE)
def _accepts(st, n, t_zero, t_neg, t_mag, t_len, rel):
    kind = st[0]
    if kind == 3:
        return st[1] <= st[3] and (st[2] == NONE or st[3] <= st[2])
    if kind != 0:
        return False
    ph = st[1]
    if ph != I0 and ph != I and ph != F:
        return False
    return _holds(st[2], st[3], st[4], st[5], st[6], n, t_zero, t_neg, t_mag, t_len, rel)


@numba.njit(**_INLINE)
def _hash(st):
    h = np.int64(0x345678)
    for j in range(8):
        h = (h ^ st[j]) * np.int64(0x100000001B3)
    return h ^ (h >> 29)


@numba.njit(**_JIT)
def bounds_table(digits, t_zero, t_neg, t_mag, t_len, rel, pmin, pmax, ecap, max_states):
    """Explore the machine for ``n = len(rel)`` thresholds (``digits[k]``: significant
    digits, -1 padded).  Returns ``(table, accepting)``: ``table[s, col]`` over the
    alphabet columns (-1 dead), empty when more than ``max_states`` states are reached."""
    n = rel.shape[0]
    cap = 256
    keys = np.full(cap, -1, np.int64)  # slot -> state id
    states = np.zeros((64, 8), np.int64)
    table = np.full((64, WIDTH), -1, np.int32)
    count = 1  # the start state: mantissa S0, everything 0
    slot0 = _hash(states[0]) & (cap - 1)
    keys[slot0] = 0
    nxt = np.empty(8, np.int64)
    tmp = np.empty(2, np.int64)
    cur = np.empty(8, np.int64)
    probe = np.empty(8, np.int64)
    scratch = np.empty(7, np.int64)
    exp_state = np.empty(8, np.int64)
    i = 0
    while i < count:
        cur[:] = states[i]
        has_exp = cur[0] == 0 and (cur[1] == I0 or cur[1] == I or cur[1] == F) and _enter_exp(
            cur, n, t_zero, t_neg, t_mag, t_len, rel, ecap, exp_state, scratch)
        # the previous digit column's comparisons: a digit that compares alike shares its successor
        last_uniform, last0, last1 = False, 0, 0
        for col in range(WIDTH - 1):
            ok = False
            kind = cur[0]
            if kind == 0:
                ph, neg = cur[1], cur[2]
                if _COL_D0 <= col < _COL_D0 + 10 and ph != I0:
                    d = col - _COL_D0
                    c0, c1 = cur[5], cur[6]
                    if ph == S0 or ph == NEG:
                        # blank comparisons this sign never reads (zero threshold or the other sign)
                        if n > 0 and (t_zero[0] or t_neg[0] != neg):
                            c0 = -1
                        if n > 1 and (t_zero[1] or t_neg[1] != neg):
                            c1 = -1
                    s0 = _cmp_step(c0, d, digits, t_len, 0) if n > 0 else c0
                    s1 = _cmp_step(c1, d, digits, t_len, 1) if n > 1 else c1
                    # the successor depends on the digit only through the comparisons, but for
                    # a leading zero (of the integer part, or of the fraction before a nonzero
                    # digit): a digit comparing as the one before shares its successor
                    uniform = d > 0 or ((ph == I or ph == DOT or ph == F) and cur[3] == 1)
                    if uniform and last_uniform and s0 == last0 and s1 == last1:
                        table[i, col] = table[i, col - 1]
                        continue
                    last_uniform, last0, last1 = uniform, s0, s1
                    if ph == S0 or ph == NEG:
                        if d == 0:
                            _mantissa(nxt, I0, neg, 0, 0, c0, c1, 0)
                        else:
                            _mantissa(nxt, I, neg, 1, 1, s0, s1, 0)
                    elif ph == I:
                        _mantissa(nxt, I, neg, 1, max(pmin, min(pmax, cur[4] + 1)), s0, s1, 0)
                    else:
                        _frac_digit(cur, d, s0, s1, n, t_zero, t_neg, t_mag, t_len, rel, pmin, pmax, ecap, nxt,
                                    probe, scratch)
                    ok = True
                elif ph == S0 and col == _COL_MINUS:
                    _mantissa(nxt, NEG, 1, cur[3], cur[4], cur[5], cur[6], cur[7])
                    ok = True
                elif col == _COL_E_UPPER or col == _COL_E_LOWER:
                    if has_exp:
                        nxt[:] = exp_state
                        ok = True
                elif col == _COL_DOT:
                    if ph == I0 or ph == I:
                        _mantissa(nxt, DOT, neg, cur[3], cur[4], cur[5], cur[6], cur[7])
                        ok = True
            elif kind == 1:
                if col == _COL_PLUS or col == _COL_MINUS:
                    _erange(cur[1], cur[2], col == _COL_MINUS, tmp)
                    nxt[:] = 0
                    nxt[0], nxt[1], nxt[2], nxt[3] = 2, tmp[0], tmp[1], 0
                    ok = True
                elif _COL_D0 <= col < _COL_D0 + 10:
                    _erange(cur[1], cur[2], False, tmp)
                    nxt[:] = 0
                    nxt[0], nxt[1], nxt[2] = 3, tmp[0], tmp[1]
                    nxt[3] = _edigit(tmp[0], tmp[1], 0, col - _COL_D0)
                    ok = True
            else:
                if _COL_D0 <= col < _COL_D0 + 10:
                    nxt[:] = 0
                    nxt[0], nxt[1], nxt[2] = 3, cur[1], cur[2]
                    nxt[3] = _edigit(cur[1], cur[2], cur[3], col - _COL_D0)
                    ok = True
            if not ok:
                continue
            slot = _hash(nxt) & (cap - 1)
            found = -1
            while keys[slot] >= 0:
                k = keys[slot]
                same = True
                for j in range(8):
                    if states[k, j] != nxt[j]:
                        same = False
                        break
                if same:
                    found = k
                    break
                slot = (slot + 1) & (cap - 1)
            if found < 0:
                if count >= max_states:
                    return np.empty((0, WIDTH), np.int32), np.empty(0, np.bool_)
                found = count
                keys[slot] = found
                if count == states.shape[0]:
                    s2 = np.zeros((2 * count, 8), np.int64)
                    t2 = np.full((2 * count, WIDTH), -1, np.int32)
                    s2[:count], t2[:count] = states, table
                    states, table = s2, t2
                states[count] = nxt
                count += 1
                if 2 * count > cap:
                    cap *= 2
                    keys = np.full(cap, -1, np.int64)
                    for s in range(count):
                        h = _hash(states[s]) & (cap - 1)
                        while keys[h] >= 0:
                            h = (h + 1) & (cap - 1)
                        keys[h] = s
            table[i, col] = found
        i += 1
    accepting = np.empty(count, np.bool_)
    for s in range(count):
        accepting[s] = _accepts(states[s], n, t_zero, t_neg, t_mag, t_len, rel)
    return table[:count].copy(), accepting
