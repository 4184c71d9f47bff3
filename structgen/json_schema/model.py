"""The normal form schemas are evaluated to: per JSON type, a union of
conjunctive alternatives.

* ``null``: present or not; ``boolean``: a subset of {true, false};
* ``number``: a :class:`NumSet` -- a DFA over number text, exact on a domain DFA;
* ``string``: a :class:`StrSet` -- a DFA over the decoded content (None = any)
  plus a character-count interval kept apart (long bounds are compiled
  without unrolling);
* ``object``/``array``: a tuple of :class:`ObjAlt`/:class:`ArrAlt`; their member
  values are *formulas* (symbolic, evaluated lazily, so recursion costs nothing).

Formulas are hashable tuples: ``TRUE``, ``FALSE``, ``("ref", node_id, scope)``,
``("and", frozenset)``, ``("or", frozenset)``, ``("not", f)``, ``("strip", f)``
(``f`` without annotations), ``("const", canonical_json)``.

Intersection, union and complement are exact; where a complement has no
representation (an "exists a key matching ..." or "has duplicate items"
condition) :class:`Unsupported` is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from ..automata import ops
from ..automata.finite import strings_dfa
from ..automata.fsm import ByteDFA
from ..errors import Unsupported
from . import numbers as num
from .json_strings import ANY_STRING

TRUE = ("T",)
FALSE = ("F",)


def f_and(*fs):
    items = set()
    for f in fs:
        if f == FALSE:
            return FALSE
        if f == TRUE:
            continue
        if f[0] == "and":
            items |= f[1]
        else:
            items.add(f)
    if not items:
        return TRUE
    if len(items) == 1:
        return next(iter(items))
    return ("and", frozenset(items))


def f_or(*fs):
    items = set()
    for f in fs:
        if f == TRUE:
            return TRUE
        if f == FALSE:
            continue
        if f[0] == "or":
            items |= f[1]
        else:
            items.add(f)
    if not items:
        return FALSE
    if len(items) == 1:
        return next(iter(items))
    return ("or", frozenset(items))


def f_not(f):
    if f == TRUE:
        return FALSE
    if f == FALSE:
        return TRUE
    if f[0] == "not":
        return ("strip", f[1])
    return ("not", f)


# ---------------------------------------------------------------- DFA op cache

_OPS: dict = {}


def _cached(op, a: ByteDFA, b: ByteDFA):
    key = (op, id(a), id(b))
    hit = _OPS.get(key)
    if hit is not None:
        return hit[0]
    if len(_OPS) > 20000:
        _OPS.clear()
    r = getattr(ops, op)(a, b)
    _OPS[key] = (r, a, b)  # keep a, b alive so ids stay valid
    return r


def dfa_and(a, b):
    if a is None:
        return b
    if b is None or a is b:
        return a
    return _cached("intersect", a, b)


def dfa_or(a, b):
    if a is None or b is None:
        return None
    if a is b:
        return a
    return _cached("union", a, b)


def dfa_minus(a, b):
    return _cached("difference", a, b)


# ---------------------------------------------------------------- scalars


@dataclass(frozen=True, eq=False)
class NumSet:
    dfa: ByteDFA
    dom: ByteDFA

    @property
    def empty(self) -> bool:
        return ops.is_empty(self.dfa)


NUM_ALL = NumSet(num.NUMBER_FULL, num.NUMBER_FULL)


def num_and(a: NumSet | None, b: NumSet | None) -> NumSet | None:
    if a is None or b is None:
        return None
    if a is NUM_ALL:
        return b
    if b is NUM_ALL:
        return a
    r = NumSet(dfa_and(a.dfa, b.dfa), dfa_and(a.dom, b.dom))
    return None if r.empty else r


def num_or(a: NumSet | None, b: NumSet | None) -> NumSet | None:
    if a is None:
        return b
    if b is None:
        return a
    if a is NUM_ALL or b is NUM_ALL:
        return NUM_ALL
    dom = dfa_or(dfa_or(dfa_and(a.dom, b.dom), a.dfa), b.dfa)
    return NumSet(dfa_or(a.dfa, b.dfa), dom)


def num_not(a: NumSet | None) -> NumSet | None:
    if a is None:
        return NUM_ALL
    if a is NUM_ALL:
        return None
    d = dfa_minus(a.dom, a.dfa)
    return None if ops.is_empty(d) else NumSet(d, a.dom)


@dataclass(frozen=True, eq=False)
class StrSet:
    """Strings whose UTF-8 content is in ``body`` (None: any) with ``lo..hi`` characters."""

    body: ByteDFA | None = None
    lo: int = 0
    hi: int | None = None
    exact: bool = True
    # finite member list when known (enum/const), for uniqueItems
    members: tuple | None = None
    where: str = ""  # JSON pointer of the schema that set the length (messages)

    @property
    def empty(self) -> bool:
        if self.hi is not None and self.lo > self.hi:
            return True
        return self.body is not None and ops.is_empty(self.body)


STR_ALL = StrSet()


def _length_body(lo: int, hi: int | None) -> ByteDFA:
    from ..automata.regex import regex_to_dfa
    from ..errors import BudgetExceeded
    top = hi if hi is not None else lo
    if top > 5000:  # pragma: no cover - callers check first
        raise BudgetExceeded(f"a string length bound of {top} cannot be combined with another string "
                             "constraint here (it would need a DFA with one state per character)")
    # the minimal DFA of (?s:.{lo,hi}), one copy of a character per repetition
    # (regex_to_dfa's subset construction takes ~0.2 s for 1000 copies; this ~7 ms)
    return ops.repeat_chain(regex_to_dfa("(?s:.)"), lo, hi, minimal=True)


def str_fold(s: StrSet) -> ByteDFA:
    """The set as a single body DFA (lengths folded in)."""
    if s.lo == 0 and s.hi is None:
        return s.body if s.body is not None else ANY_STRING
    return dfa_and(s.body, _length_body(s.lo, s.hi)) if s.body is not None else _length_body(s.lo, s.hi)


def str_and(a: StrSet | None, b: StrSet | None) -> StrSet | None:
    if a is None or b is None:
        return None
    if a is STR_ALL:
        return b
    if b is STR_ALL:
        return a
    hi = a.hi if b.hi is None else (b.hi if a.hi is None else min(a.hi, b.hi))
    members = None
    if a.members is not None or b.members is not None:
        ms = [m for m in (a.members if a.members is not None else b.members)]
        other = b if a.members is not None else a
        members = tuple(m for m in ms if other.body is None or other.body.matches(m.encode("utf-8")))
    r = StrSet(dfa_and(a.body, b.body), max(a.lo, b.lo), hi, a.exact and b.exact, members, a.where or b.where)
    return None if r.empty else r


def _subsumes(big: StrSet, small: StrSet) -> bool:
    """Cheap sufficient test that small ⊆ big."""
    if big.body is None and small.members is not None:
        return all(big.lo <= len(m) and (big.hi is None or len(m) <= big.hi) for m in small.members)
    if big.lo <= small.lo and (big.hi is None or (small.hi is not None and small.hi <= big.hi)):
        if big.body is None or big.body is small.body:
            return True
    return False


def str_or(a: StrSet | None, b: StrSet | None) -> StrSet | None:
    if a is None:
        return b
    if b is None:
        return a
    if a is STR_ALL or b is STR_ALL:
        return STR_ALL
    if _subsumes(a, b):
        return a
    if _subsumes(b, a):
        return b
    members = a.members + b.members if a.members is not None and b.members is not None else None
    if a.lo == b.lo and a.hi == b.hi:
        return StrSet(dfa_or(a.body, b.body), a.lo, a.hi, a.exact and b.exact, members)
    return StrSet(dfa_or(str_fold(a), str_fold(b)), 0, None, a.exact and b.exact, members)


def str_not(a: StrSet | None, where: str = "") -> StrSet | None:
    if a is None:
        return STR_ALL
    if a is STR_ALL:
        return None
    if not a.exact:
        raise Unsupported("not/oneOf over an approximate string format", "the format's language is not "
                          "exact, so its complement cannot be produced faithfully", where=where)
    d = dfa_minus(ANY_STRING, str_fold(a))
    return None if ops.is_empty(d) else StrSet(d)


# ---------------------------------------------------------------- objects and arrays


def _hash_once(self) -> int:
    """The hash of an alternative's compared fields, computed once: alternatives key the
    emitter's memos and hold deep formula tuples, which Python rehashes on every lookup.
    (A dataclass keeps a ``__hash__`` set in its body.)"""
    h = self.__dict__.get("_hash")
    if h is None:
        h = self.__dict__["_hash"] = hash(tuple([getattr(self, f.name) for f in fields(self) if f.compare]))
    return h


@dataclass(frozen=True)
class Region:
    """Keys (decoded, UTF-8 DFA; None = any key) not among the explicit names."""

    keys: ByteDFA | None
    formula: tuple
    evaluated: bool = False


@dataclass(frozen=True)
class ObjAlt:
    names: tuple = ()  # ((name, formula), ...) in schema order
    regions: tuple = (Region(None, TRUE),)  # partition of all other keys
    required: frozenset = frozenset()
    min_props: int = 0
    max_props: int | None = None
    evaluated: frozenset = frozenset()  # names evaluated (for unevaluatedProperties)
    # ((keys DFA or None, formula), ...): some key in `keys` must be present with a value in `formula`
    exists: tuple = ()

    __hash__ = _hash_once

    def name_map(self) -> dict:
        return dict(self.names)

    def assign(self, name: str):
        """(formula, evaluated) for a key under this alternative."""
        for n, f in self.names:
            if n == name:
                return f, name in self.evaluated
        data = name.encode("utf-8", "surrogatepass")
        for r in self.regions:
            if r.keys is None or r.keys.matches(data):
                return r.formula, r.evaluated
        return FALSE, False

    def trivially_empty(self) -> bool:
        if self.max_props is not None and (self.min_props > self.max_props or len(self.required) > self.max_props):
            return True
        nm = self.name_map()
        if any(nm.get(r, FALSE) == FALSE for r in self.required):
            return True
        for keys, f in self.exists:  # some key of `keys` must be present: is any allowed at all?
            if f == FALSE:
                return True
            ok = any(g != FALSE and (keys is None or keys.matches(n.encode("utf-8", "surrogatepass")))
                     for n, g in self.names)
            if not ok:
                for r in self.regions:
                    if r.formula == FALSE:
                        continue
                    k = dfa_and(keys, r.keys)
                    if k is None or not ops.is_empty(k):
                        # keys matching explicit names are not in the region
                        ok = True
                        break
            if not ok:
                return True
        return False


OBJ_ANY = ObjAlt()


def obj_make(names=(), regions=(Region(None, TRUE),), required=frozenset(), min_props=0, max_props=None,
             evaluated=frozenset()) -> ObjAlt:
    """An alternative whose required names are all explicit."""
    alt = ObjAlt(tuple(names), tuple(regions), frozenset(required), min_props, max_props, frozenset(evaluated))
    missing = [r for r in sorted(alt.required) if r not in alt.name_map()]
    if missing:
        extra = []
        ev = set(alt.evaluated)
        for r in missing:
            f, e = alt.assign(r)
            extra.append((r, f))
            if e:
                ev.add(r)
        alt = replace(alt, names=alt.names + tuple(extra), evaluated=frozenset(ev))
    return alt


def obj_and(a: ObjAlt, b: ObjAlt) -> ObjAlt | None:
    if a is OBJ_ANY:
        return b
    if b is OBJ_ANY:
        return a
    # a's names then b's, except that names standing only for a required key (formula
    # TRUE, not from ``properties``) come last: a required list sets no order
    order = dict.fromkeys([n for alt in (a, b) for n, f in alt.names if f != TRUE or n in alt.evaluated])
    order.update(dict.fromkeys([n for alt in (a, b) for n, _ in alt.names]))
    names = []
    evaluated = set()
    for n in order:
        fa, ea = a.assign(n)
        fb, eb = b.assign(n)
        names.append((n, f_and(fa, fb)))
        if ea or eb:
            evaluated.add(n)
    regions = []
    for ra in a.regions:
        for rb in b.regions:
            keys = dfa_and(ra.keys, rb.keys)
            if keys is not None and ops.is_empty(keys):
                continue
            regions.append(Region(keys, f_and(ra.formula, rb.formula), ra.evaluated or rb.evaluated))
    mx = a.max_props if b.max_props is None else (b.max_props if a.max_props is None else min(a.max_props, b.max_props))
    alt = ObjAlt(tuple(names), tuple(regions), a.required | b.required, max(a.min_props, b.min_props), mx,
                 frozenset(evaluated), tuple(dict.fromkeys(a.exists + b.exists)))
    return None if alt.trivially_empty() else alt


def obj_strip(a: ObjAlt) -> ObjAlt:
    if not a.evaluated and not any(r.evaluated for r in a.regions):
        return a
    return replace(a, evaluated=frozenset(), regions=tuple(replace(r, evaluated=False) for r in a.regions))


def obj_violations(a: ObjAlt, where: str) -> list[ObjAlt]:
    """Alternatives whose union is the set of objects *not* in ``a``."""
    out = []
    for r in sorted(a.required):
        out.append(obj_make(names=((r, FALSE),)))
    for n, f in a.names:
        if f != TRUE:
            out.append(obj_make(names=((n, f_not(f)),), required={n}))
    explicit = None
    if a.names:
        explicit = strings_dfa([n for n, _ in a.names])
    for r in a.regions:
        if r.formula != TRUE:
            keys = r.keys if r.keys is not None else ANY_STRING
            if explicit is not None:
                keys = dfa_minus(keys, explicit)
            if not ops.is_empty(keys):
                out.append(ObjAlt(exists=((keys, f_not(r.formula)),)))
    if not any(r.keys is None for r in a.regions):  # keys outside every region are forbidden
        rest = ANY_STRING
        for r in a.regions:
            rest = dfa_minus(rest, r.keys)
        if explicit is not None:
            rest = dfa_minus(rest, explicit)
        if not ops.is_empty(rest):
            out.append(ObjAlt(exists=((rest, TRUE),)))
    for keys, f in a.exists:  # not (some key in K has a value in f) = every key in K has a value in not f
        k = keys if keys is not None else ANY_STRING
        regions = [Region(k, f_not(f))]
        other = dfa_minus(ANY_STRING, k)
        if not ops.is_empty(other):
            regions.append(Region(other, TRUE))
        out.append(ObjAlt(regions=tuple(regions)))
    if a.min_props > 0:
        out.append(ObjAlt(max_props=a.min_props - 1))
    if a.max_props is not None:
        out.append(ObjAlt(min_props=a.max_props + 1))
    return [o for o in out if not o.trivially_empty()]


@dataclass(frozen=True)
class Contains:
    formula: tuple
    lo: int = 1
    hi: int | None = None
    start: int = 0  # only items at index >= start count


@dataclass(frozen=True)
class ArrAlt:
    prefix: tuple = ()
    rest: tuple = TRUE
    min_items: int = 0
    max_items: int | None = None
    contains: tuple = ()
    unique: bool = False
    eval_prefix: int = 0  # items [0, eval_prefix) evaluated
    eval_rest: bool = False
    eval_contains: tuple = ()  # formulas whose matching items are evaluated
    where: str = field(default="", compare=False)  # JSON pointer of uniqueItems (messages)

    __hash__ = _hash_once

    def item(self, i: int):
        return self.prefix[i] if i < len(self.prefix) else self.rest

    def trivially_empty(self) -> bool:
        if self.max_items is not None and self.min_items > self.max_items:
            return True
        for i in range(min(self.min_items, len(self.prefix) + 1)):
            if self.item(i) == FALSE:
                return True
        for c in self.contains:
            if c.hi is not None and c.lo > c.hi:
                return True
            if self.max_items is not None and c.lo > self.max_items - c.start:
                return True
        return False


ARR_ANY = ArrAlt()


def arr_and(a: ArrAlt, b: ArrAlt) -> ArrAlt | None:
    if a is ARR_ANY:
        return b
    if b is ARR_ANY:
        return a
    n = max(len(a.prefix), len(b.prefix))
    prefix = tuple(f_and(a.item(i), b.item(i)) for i in range(n))
    rest = f_and(a.rest, b.rest)
    while prefix and prefix[-1] == rest:
        prefix = prefix[:-1]
    mx = a.max_items if b.max_items is None else (b.max_items if a.max_items is None else min(a.max_items, b.max_items))
    alt = ArrAlt(prefix, rest, max(a.min_items, b.min_items), mx, a.contains + b.contains,
                 a.unique or b.unique, max(a.eval_prefix, b.eval_prefix), a.eval_rest or b.eval_rest,
                 a.eval_contains + b.eval_contains, a.where if a.unique else b.where)
    # an item past a FALSE position cannot exist
    for i, f in enumerate(alt.prefix + (alt.rest,)):
        if f == FALSE:
            cap = i
            if alt.max_items is None or alt.max_items > cap:
                alt = replace(alt, max_items=cap)
            break
    return None if alt.trivially_empty() else alt


def arr_strip(a: ArrAlt) -> ArrAlt:
    if not (a.eval_prefix or a.eval_rest or a.eval_contains):
        return a
    return replace(a, eval_prefix=0, eval_rest=False, eval_contains=())


def arr_violations(a: ArrAlt, where: str) -> list[ArrAlt]:
    if a.unique:
        raise Unsupported("not/oneOf/if over uniqueItems", "'has duplicate items' is not expressible",
                          where=where)
    out = []
    for i, f in enumerate(a.prefix):
        if f != TRUE:
            out.append(ArrAlt(prefix=(TRUE,) * i + (f_not(f),), min_items=i + 1))
    if a.rest != TRUE:
        out.append(ArrAlt(contains=(Contains(f_not(a.rest), 1, None, len(a.prefix)),)))
    for c in a.contains:
        if c.lo > 0:
            out.append(ArrAlt(contains=(Contains(c.formula, 0, c.lo - 1, c.start),)))
        if c.hi is not None:
            out.append(ArrAlt(contains=(Contains(c.formula, c.hi + 1, None, c.start),)))
    if a.min_items > 0:
        out.append(ArrAlt(max_items=a.min_items - 1))
    if a.max_items is not None:
        out.append(ArrAlt(min_items=a.max_items + 1))
    return [o for o in out if not o.trivially_empty()]


# ---------------------------------------------------------------- type sets


@dataclass(frozen=True, eq=False)
class TypeSets:
    null: bool = False
    booleans: frozenset = frozenset()
    number: NumSet | None = None
    string: StrSet | None = None
    objects: tuple = ()
    arrays: tuple = ()
    # value-level annotation: set when numbers came from an enum (finite values), for uniqueItems
    number_points: tuple | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def is_empty(self) -> bool:
        return not (self.null or self.booleans or self.number is not None or self.string is not None
                    or self.objects or self.arrays)

    def types(self) -> set[str]:
        t = set()
        if self.null:
            t.add("null")
        if self.booleans:
            t.add("boolean")
        if self.number is not None:
            t.add("number")
        if self.string is not None:
            t.add("string")
        if self.objects:
            t.add("object")
        if self.arrays:
            t.add("array")
        return t


ALL = TypeSets(True, frozenset({True, False}), NUM_ALL, STR_ALL, (OBJ_ANY,), (ARR_ANY,))
NONE = TypeSets()

MAX_ALTS = 256


def _implies(fx, fy) -> bool:
    """Syntactic sufficient test that formula fx implies fy."""
    if fy == TRUE or fx == FALSE or fx == fy:
        return True
    if fx[0] == "and":
        if fy[0] == "and":
            return fy[1] <= fx[1]
        return fy in fx[1]
    return False


def _obj_within(x: ObjAlt, y: ObjAlt) -> bool:
    """Sufficient test that every object matching x matches y (x ⊆ y)."""
    if not y.required <= x.required or x.min_props < y.min_props:
        return False
    if y.max_props is not None and (x.max_props is None or x.max_props > y.max_props):
        return False
    if not set(y.exists) <= set(x.exists) or y.evaluated or x.evaluated:
        return False
    if x.regions != y.regions:
        return False
    xm = x.name_map()
    for n, fy in y.names:
        fx = xm.get(n)
        if fx is None:
            return False
        if not _implies(fx, fy):
            return False
    for n, fx in x.names:
        if n not in y.name_map():
            return False
    return True


def _prune_objects(alts: list) -> list:
    """Drop alternatives contained in another one (the union is unchanged)."""
    if len(alts) < 8 or not all(isinstance(a, ObjAlt) for a in alts):
        return alts
    # _obj_within(x, y) holds only for the same regions and property names, neither
    # alternative tracking evaluated names: compare within those groups (not all pairs)
    groups: dict = {}
    for j, b in enumerate(alts):
        if not b.evaluated:
            groups.setdefault((b.regions, frozenset(n for n, _ in b.names)), []).append(j)
    keep = []
    for i, a in enumerate(alts):
        peers = () if a.evaluated else groups[(a.regions, frozenset(n for n, _ in a.names))]
        if any(j != i and _obj_within(a, alts[j]) and not (_obj_within(alts[j], a) and j > i) for j in peers):
            continue
        keep.append(a)
    return keep


def _cross(xs, ys, fn, where):
    out = []
    for x in xs:
        for y in ys:
            r = fn(x, y)
            if r is not None:
                out.append(r)
    out = _prune_objects(_dedup(out))
    if len(out) > MAX_ALTS:
        from ..errors import BudgetExceeded
        raise BudgetExceeded(f"more than {MAX_ALTS} object/array alternatives (combinators multiply) at {where}")
    return tuple(_dedup(out))


def _dedup(alts):
    seen = set()
    out = []
    for a in alts:
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


def ts_and(a: TypeSets, b: TypeSets, where: str = "") -> TypeSets:
    if a is ALL:
        return b
    if b is ALL:
        return a
    pts = None
    if a.number_points is not None or b.number_points is not None:
        pts = a.number_points if a.number_points is not None else b.number_points
    objs = a.objects if b.objects == (OBJ_ANY,) else (b.objects if a.objects == (OBJ_ANY,) else
                                                      _cross(a.objects, b.objects, obj_and, where))
    arrs = a.arrays if b.arrays == (ARR_ANY,) else (b.arrays if a.arrays == (ARR_ANY,) else
                                                    _cross(a.arrays, b.arrays, arr_and, where))
    return TypeSets(a.null and b.null, a.booleans & b.booleans, num_and(a.number, b.number),
                    str_and(a.string, b.string), objs, arrs, pts)


def ts_or(a: TypeSets, b: TypeSets) -> TypeSets:
    if a is ALL or b is ALL:
        return ALL
    pts = None
    if (a.number is None or a.number_points is not None) and (b.number is None or b.number_points is not None):
        pts = (a.number_points or ()) + (b.number_points or ())
        if a.number is None and b.number is None:
            pts = None
    objs = (OBJ_ANY,) if (OBJ_ANY in a.objects or OBJ_ANY in b.objects) else tuple(_dedup(a.objects + b.objects))
    arrs = (ARR_ANY,) if (ARR_ANY in a.arrays or ARR_ANY in b.arrays) else tuple(_dedup(a.arrays + b.arrays))
    return TypeSets(a.null or b.null, a.booleans | b.booleans, num_or(a.number, b.number),
                    str_or(a.string, b.string), objs, arrs, pts)


def ts_union(items) -> TypeSets:
    """Union of many type sets, merged pairwise in a balanced tree (DFA unions stay small)."""
    items = list(items)
    if not items:
        return NONE
    while len(items) > 1:
        nxt = [ts_or(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def ts_strip(a: TypeSets) -> TypeSets:
    return replace(a, objects=tuple(obj_strip(o) for o in a.objects), arrays=tuple(arr_strip(x) for x in a.arrays))


def ts_not(a: TypeSets, where: str = "") -> TypeSets:
    if a is ALL:
        return NONE
    if a.is_empty():
        return ALL
    objs: tuple = ()
    if not a.objects:
        objs = (OBJ_ANY,)
    elif OBJ_ANY not in a.objects:
        acc = [OBJ_ANY]
        for alt in a.objects:
            acc = list(_cross(acc, obj_violations(alt, where), obj_and, where))
            if not acc:
                break
        objs = tuple(acc)
    arrs: tuple = ()
    if not a.arrays:
        arrs = (ARR_ANY,)
    elif ARR_ANY not in a.arrays:
        acc = [ARR_ANY]
        for alt in a.arrays:
            acc = list(_cross(acc, arr_violations(alt, where), arr_and, where))
            if not acc:
                break
        arrs = tuple(acc)
    return TypeSets(not a.null, frozenset({True, False}) - a.booleans, num_not(a.number),
                    str_not(a.string, where), objs, arrs)


def ts_and_not(a: TypeSets, b: TypeSets, where: str = "") -> TypeSets:
    """``a and not b``; object/array alternatives are intersected with b's violations one
    alternative at a time, so empty combinations are pruned before they multiply."""
    scal = ts_and(TypeSets(a.null, a.booleans, a.number, a.string, (), (), a.number_points),
                  ts_not(TypeSets(b.null, b.booleans, b.number, b.string, (), (), b.number_points), where), where)
    objs = list(a.objects)
    if OBJ_ANY in b.objects:
        objs = []
    for alt in b.objects:
        if not objs:
            break
        objs = list(_cross(objs, obj_violations(alt, where), obj_and, where))
    arrs = list(a.arrays)
    if ARR_ANY in b.arrays:
        arrs = []
    for alt in b.arrays:
        if not arrs:
            break
        arrs = list(_cross(arrs, arr_violations(alt, where), arr_and, where))
    return TypeSets(scal.null, scal.booleans, scal.number, scal.string, tuple(objs), tuple(arrs), scal.number_points)


def restrict_types(a: TypeSets, types: set[str]) -> TypeSets:
    return TypeSets(a.null if "null" in types else False,
                    a.booleans if "boolean" in types else frozenset(),
                    a.number if "number" in types else None,
                    a.string if "string" in types else None,
                    a.objects if "object" in types else (),
                    a.arrays if "array" in types else (),
                    a.number_points if "number" in types else None)
