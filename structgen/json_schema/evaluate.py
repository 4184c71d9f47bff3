"""Schema locations -> the normal form of :mod:`.model` (one keyword at a time).

Evaluation is *shallow*: the values of properties and items stay formulas, so a
recursive schema is evaluated once per (location, dynamic scope)."""

from __future__ import annotations

import json
import time
import warnings
from itertools import combinations

from ..automata import ops
from ..automata.finite import strings_dfa
from ..errors import BudgetExceeded, StructgenWarning, Unsupported
from . import numbers as num
from .json_strings import ANY_STRING
from .ecma_regex import pattern_dfa
from .formats import FORMATS, KNOWN_UNSUPPORTED_FORMATS, format_dfa
from .model import (
    ALL,
    ARR_ANY,
    FALSE,
    NONE,
    NUM_ALL,
    OBJ_ANY,
    STR_ALL,
    TRUE,
    ArrAlt,
    Contains,
    NumSet,
    ObjAlt,
    Region,
    StrSet,
    TypeSets,
    _cross,
    arr_and,
    dfa_and,
    dfa_minus,
    f_and,
    f_or,
    obj_and,
    obj_make,
    restrict_types,
    str_fold,
    ts_and,
    ts_and_not,
    ts_not,
    ts_or,
    ts_strip,
    ts_union,
)
from .registry import D4, D6, D7, D2019, D2020, DEFAULT, Node, Registry, SchemaError
from .support import hint

_TYPE_NAMES = ("null", "boolean", "object", "array", "number", "string", "integer")
_TYPE_SETS: dict = {}  # (type names, draft where it matters) -> TypeSets
_OBJECT_KWS = ("properties", "patternProperties", "additionalProperties", "required", "propertyNames",
               "minProperties", "maxProperties")
_OBJECT_PIECE_KWS = frozenset(_OBJECT_KWS + ("dependentRequired", "dependentSchemas", "dependencies"))
_ARRAY_PIECE_KWS = frozenset(("items", "prefixItems", "additionalItems", "minItems", "maxItems", "contains",
                              "uniqueItems", "minContains", "maxContains"))
_STRING_KWS = frozenset(("minLength", "maxLength", "pattern", "format"))  # what string_piece reads
_NUMBER_KWS = frozenset(("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"))  # number_piece


class LenientDrop(Exception):
    pass


class Evaluator:
    def __init__(self, registry: Registry, options, report: list):
        self.reg = registry
        self.opt = options
        self.report = report
        self.memo: dict = {}
        self.active: set = set()
        self.split_any_of = registry.uses_unevaluated
        self.deadline = time.monotonic() + options.time_budget_s if options.time_budget_s else None
        self.dynamic = registry.uses_dynamic

    # ------------------------------------------------------------------ helpers
    def check_time(self):
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExceeded(f"JSON Schema compilation exceeded time_budget_s={self.opt.time_budget_s}")

    def note(self, keyword: str, where: str, detail: str, *, warn: bool = True, kind: str = "dropped"):
        entry = {"keyword": keyword, "where": where, "detail": detail, "kind": kind}
        if entry not in self.report:
            self.report.append(entry)
            if warn:
                warnings.warn(f"structgen JSON Schema: {kind} {keyword!r} at {where}: {detail}", StructgenWarning,
                              stacklevel=4)

    def unsupported(self, keyword: str, where: str, detail: str):
        if self.opt.lenient:
            self.note(keyword, where, detail)
            raise LenientDrop()
        raise Unsupported(keyword, detail + hint(keyword), where=where)

    def guard(self, keyword: str, node: Node, fn):
        """Run ``fn``; in lenient mode an Unsupported/BudgetExceeded drops the keyword (None)."""
        try:
            return fn()
        except LenientDrop:
            return None
        except (Unsupported, BudgetExceeded) as exc:
            if not self.opt.lenient:
                if isinstance(exc, Unsupported) and not exc.where:
                    raise Unsupported(exc.construct, str(exc) + hint(keyword),
                                      where=f"{node.where}/{keyword}") from None
                raise
            self.note(keyword, f"{node.where}/{keyword}", str(exc))
            return None

    def ref(self, node: Node, scope: tuple) -> tuple:
        s = node.schema
        if s is True or (isinstance(s, dict) and not s):
            return TRUE
        if s is False:
            return FALSE
        return ("ref", node.id, scope)

    def child(self, node: Node, scope: tuple, *path) -> tuple:
        return self.ref(self.reg.child(node, *path), scope)

    # ------------------------------------------------------------------ formulas
    def eval(self, f) -> TypeSets:
        hit = self.memo.get(f)
        if hit is not None:
            return hit
        kind = f[0]
        if kind == "T":
            r = ALL
        elif kind == "F":
            r = NONE
        elif kind == "ref":
            r = self.eval_node(self.reg.nodes[f[1]], f[2])
        elif kind == "and":
            r = ALL
            for g in sorted(f[1], key=repr):
                r = ts_and(r, self.eval(g), "allOf")
                if r.is_empty():
                    break
        elif kind == "or":
            r = ts_union(self.eval(g) for g in sorted(f[1], key=repr))
        elif kind == "not":
            r = ts_not(self.eval(f[1]), "not")
        elif kind == "strip":
            r = ts_strip(self.eval(f[1]))
        elif kind == "const":
            r = self.const_ts(json.loads(f[1]))
        else:  # pragma: no cover
            raise AssertionError(f)
        self.memo[f] = r
        return r

    def is_empty(self, f, depth: int = 2) -> bool:
        """Sound emptiness test (False when unsure)."""
        if f == FALSE:
            return True
        if f == TRUE:
            return False
        ts = self.eval(f)
        if ts.is_empty():
            return True
        if depth <= 0 or ts.null or ts.booleans or ts.number is not None or ts.string is not None:
            return False
        for o in ts.objects:
            if not any(self.is_empty(fn, depth - 1) for n, fn in o.names if n in o.required):
                return False
        for a in ts.arrays:
            if not any(self.is_empty(a.item(i), depth - 1) for i in range(min(a.min_items, len(a.prefix) + 1))):
                return False
        return True

    # ------------------------------------------------------------------ constants
    def const_formula(self, value) -> tuple:
        return ("const", json.dumps(value, sort_keys=True, allow_nan=False))

    def const_ts(self, value) -> TypeSets:
        return self.enum_ts([value])

    def enum_ts(self, values) -> TypeSets:
        null = False
        bools = set()
        nums = []
        strs = []
        objs = []
        arrs = []
        for v in values:
            if v is None:
                null = True
            elif isinstance(v, bool):
                bools.add(v)
            elif isinstance(v, (int, float)):
                if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
                    continue
                nums.append(num.to_decimal(v))
            elif isinstance(v, str):
                strs.append(v)
            elif isinstance(v, list):
                arrs.append(ArrAlt(prefix=tuple(self.const_formula(x) for x in v), rest=FALSE,
                                   min_items=len(v), max_items=len(v)))
            elif isinstance(v, dict):
                objs.append(ObjAlt(names=tuple((k, self.const_formula(x)) for k, x in v.items()),
                                   regions=(Region(None, FALSE),), required=frozenset(v)))
        number = NumSet(num.points_dfa(nums), num.DOMAIN_EXP) if nums else None
        string = StrSet(strings_dfa(strs), members=tuple(dict.fromkeys(strs))) if strs else None
        return TypeSets(null, frozenset(bools), number, string, tuple(dict.fromkeys(objs)),
                        tuple(dict.fromkeys(arrs)), tuple(dict.fromkeys(nums)) if nums else None)

    # ------------------------------------------------------------------ nodes
    def eval_node(self, node: Node, scope: tuple) -> TypeSets:
        s = node.schema
        if s is True:
            return ALL
        if s is False:
            return NONE
        if not isinstance(s, dict):
            raise SchemaError(f"a schema must be an object or a boolean, got {type(s).__name__}",
                              where=node.where)
        self.check_time()
        if self.dynamic and self.reg.is_dynamic_resource(node.resource) and node.resource not in scope:
            scope = scope + (node.resource,)
        key = (node.id, scope)
        if key in self.active:
            raise SchemaError("circular $ref: the schema refers to itself without descending into a property "
                              "or item, so it has no finite meaning", where=node.where)
        self.active.add(key)
        try:
            return self._eval_dict(node, s, scope)
        finally:
            self.active.discard(key)

    def _eval_dict(self, node: Node, s: dict, scope: tuple) -> TypeSets:
        draft = node.draft
        where = node.where
        ts = ALL

        def conj(piece):
            nonlocal ts
            if piece is not None:
                ts = ts_and(ts, piece, where)

        # $ref (siblings ignored before 2019-09)
        if "$ref" in s:
            target = self.reg.resolve(node, s["$ref"], f"{where}/$ref")
            sub = self.eval(self.ref(target, scope))
            if draft in (D4, D6, D7):
                return sub
            conj(sub)
        if "$dynamicRef" in s and draft in (D2020, DEFAULT):
            target = self.reg.dynamic_target(node, s["$dynamicRef"], scope, f"{where}/$dynamicRef")
            conj(self.eval(self.ref(target, scope)))
        if "$recursiveRef" in s and draft in (D2019, DEFAULT):
            target = self.reg.recursive_target(node, s["$recursiveRef"], scope, f"{where}/$recursiveRef")
            conj(self.eval(self.ref(target, scope)))

        if isinstance(s.get("required"), bool):  # draft-03 spelling (a flag on the property's own schema)
            self.note("required", f"{where}/required", "draft-03 boolean `required` is not a draft-04+ "
                      "keyword: ignored", kind="ignored")
        if "type" in s:
            conj(self.type_ts(s["type"], draft, where))
        if "enum" in s:
            if not isinstance(s["enum"], list):
                raise SchemaError("enum must be an array", where=f"{where}/enum")
            conj(self.enum_ts(s["enum"]))
        if "const" in s:
            conj(self.const_ts(s["const"]))

        if "allOf" in s:
            for i, _ in enumerate(self._list(s, "allOf", where)):
                conj(self.eval(self.child(node, scope, "allOf", i)))
        # (the pieces are None without their keywords: most nodes skip them at once)
        st = None if _STRING_KWS.isdisjoint(s) else self.guard("string", node, lambda: self.string_piece(node, s))
        if st is not None:
            conj(TypeSets(True, frozenset({True, False}), NUM_ALL, st, (OBJ_ANY,), (ARR_ANY,)))
        nm = None if _NUMBER_KWS.isdisjoint(s) else self.number_piece(node, s, draft)
        if nm is not None:
            conj(TypeSets(True, frozenset({True, False}), nm, STR_ALL, (OBJ_ANY,), (ARR_ANY,)))
        if ts.objects and not _OBJECT_PIECE_KWS.isdisjoint(s):
            objs = self.object_piece(node, s, scope)
            conj(TypeSets(True, frozenset({True, False}), NUM_ALL, STR_ALL, objs, (ARR_ANY,)))
        if ts.arrays and not _ARRAY_PIECE_KWS.isdisjoint(s):
            arrs = self.array_piece(node, s, scope, draft)
            if arrs is not None:
                conj(TypeSets(True, frozenset({True, False}), NUM_ALL, STR_ALL, (OBJ_ANY,), arrs))

        # in-place applicators
        if "anyOf" in s:
            branches = [self.eval(self.child(node, scope, "anyOf", i))
                        for i, _ in enumerate(self._list(s, "anyOf", where))]
            conj(self.guard("anyOf", node, lambda: self.any_of(branches, f"{where}/anyOf")))
        if "oneOf" in s:
            branches = [self.eval(self.child(node, scope, "oneOf", i))
                        for i, _ in enumerate(self._list(s, "oneOf", where))]
            conj(self.guard("oneOf", node, lambda: self.one_of(branches, f"{where}/oneOf")))
        if "not" in s:
            sub = self.eval(self.child(node, scope, "not"))
            conj(self.guard("not", node, lambda: ts_not(sub, f"{where}/not")))
        if "if" in s and (("then" in s or "else" in s) or self.split_any_of):
            conj(self.guard("if", node, lambda: self.if_then_else(node, s, scope)))
        if ts.objects and ("unevaluatedProperties" in s):
            ts = self.apply_uneval_props(ts, self.child(node, scope, "unevaluatedProperties"))
        if ts.arrays and ("unevaluatedItems" in s):
            ts = self.apply_uneval_items(ts, self.child(node, scope, "unevaluatedItems"))
        return ts

    @staticmethod
    def _list(s, key, where):
        v = s[key]
        if not isinstance(v, list) or not v:
            raise SchemaError(f"{key} must be a non-empty array", where=f"{where}/{key}")
        return v

    # ------------------------------------------------------------------ type
    def integer_numset(self, draft) -> NumSet:
        if draft == D4:
            return NumSet(num.INTEGER_SYNTAX, num.NUMBER_FULL)
        return NumSet(num.number_dfa(integral=True), num.DOMAIN_EXP)

    def type_ts(self, t, draft, where) -> TypeSets:
        names = tuple(t) if isinstance(t, list) else (t,)
        for n in names:
            if n not in _TYPE_NAMES:
                raise SchemaError(f"unknown type {n!r}", where=f"{where}/type")
        key = (names, draft if "integer" in names else None)  # immutable results: shared by all schemas
        ts = _TYPE_SETS.get(key)
        if ts is None:
            ts = NONE
            for n in names:
                if n == "null":
                    piece = TypeSets(null=True)
                elif n == "boolean":
                    piece = TypeSets(booleans=frozenset({True, False}))
                elif n == "number":
                    piece = TypeSets(number=NUM_ALL)
                elif n == "integer":
                    piece = TypeSets(number=self.integer_numset(draft))
                elif n == "string":
                    piece = TypeSets(string=STR_ALL)
                elif n == "object":
                    piece = TypeSets(objects=(OBJ_ANY,))
                else:
                    piece = TypeSets(arrays=(ARR_ANY,))
                ts = ts_or(ts, piece)
            if len(_TYPE_SETS) > 1024:  # type lists are few; bounded anyway
                _TYPE_SETS.clear()
            _TYPE_SETS[key] = ts
        return ts

    # ------------------------------------------------------------------ strings
    def _count(self, node, s, key, where) -> int | None:
        if key not in s:
            return None
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or int(v) != v:
            raise SchemaError(f"{key} must be a non-negative integer, got {v!r}", where=f"{where}/{key}")
        v = int(v)
        if key.startswith("max") and v >= self.opt.huge_bound:
            self.note(key, f"{where}/{key}", f"{v} >= huge_bound={self.opt.huge_bound}: treated as unbounded",
                      kind="relaxed")
            return None
        return v

    def string_piece(self, node: Node, s: dict) -> StrSet | None:
        where = node.where
        lo = self._count(node, s, "minLength", where)
        hi = self._count(node, s, "maxLength", where)
        body = None
        exact = True
        present = lo is not None or hi is not None
        if "pattern" in s:
            p = s["pattern"]
            if not isinstance(p, str):
                raise SchemaError("pattern must be a string", where=f"{where}/pattern")
            dfa = self.guard("pattern", node, lambda: pattern_dfa(p, where=f"{where}/pattern"))
            if dfa is not None:
                body = dfa
                present = True
        if "format" in s and self.opt.format_assertion:
            f = self.guard("format", node, lambda: self.format_body(s["format"], f"{where}/format"))
            if f is not None:
                dfa, ex = f
                body = dfa_and(body, dfa)
                exact = exact and ex
                present = True
        if not present:
            return None
        return StrSet(body, lo or 0, hi, exact, None, where if (lo or hi is not None) else "")

    def format_body(self, name, where):
        if not isinstance(name, str):
            raise SchemaError("format must be a string", where=where)
        if name in FORMATS:
            return format_dfa(name), FORMATS[name].exact
        if name in KNOWN_UNSUPPORTED_FORMATS:
            self.unsupported(f"format {name!r}", where, KNOWN_UNSUPPORTED_FORMATS[name])
        self.note(f"format {name!r}", where, "unknown format: an annotation, not asserted", kind="ignored")
        return None

    # ------------------------------------------------------------------ numbers
    def _num(self, s, key, where):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SchemaError(f"{key} must be a number, got {v!r}", where=f"{where}/{key}")
        return num.to_decimal(v)

    def number_piece(self, node: Node, s: dict, draft) -> NumSet | None:
        where = node.where
        lo = hi = None
        lo_x = hi_x = False
        if "minimum" in s:
            lo = self._num(s, "minimum", where)
        if "maximum" in s:
            hi = self._num(s, "maximum", where)
        xmin, xmax = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
        if isinstance(xmin, bool):
            lo_x = xmin and lo is not None
        elif xmin is not None:
            v = self._num(s, "exclusiveMinimum", where)
            if lo is None or v >= lo:
                lo, lo_x = v, True
        if isinstance(xmax, bool):
            hi_x = xmax and hi is not None
        elif xmax is not None:
            v = self._num(s, "exclusiveMaximum", where)
            if hi is None or v <= hi:
                hi, hi_x = v, True
        out = None
        if lo is not None or hi is not None:
            out = NumSet(num.number_dfa(lo, lo_x, hi, hi_x), num.DOMAIN_EXP)
        if "multipleOf" in s:
            q = self._num(s, "multipleOf", where)
            if q <= 0:
                raise SchemaError("multipleOf must be > 0", where=f"{where}/multipleOf")

            def mk():
                return NumSet(num.multiple_dfa(q), num.DOMAIN_NOEXP)
            m = self.guard("multipleOf", node, mk)
            if m is not None:
                out = m if out is None else NumSet(dfa_and(out.dfa, m.dfa), dfa_and(out.dom, m.dom))
        return out

    # ------------------------------------------------------------------ objects
    def object_piece(self, node: Node, s: dict, scope: tuple) -> tuple:
        where = node.where
        props = s.get("properties", {})
        pats = s.get("patternProperties", {})
        if not isinstance(props, dict) or not isinstance(pats, dict):
            raise SchemaError("properties/patternProperties must be objects", where=where)
        pat_dfas = []
        for p in pats:
            d = self.guard("patternProperties", node, lambda p=p: pattern_dfa(p, where=f"{where}/patternProperties"))
            if d is None:  # lenient: the pattern's schema is dropped
                continue
            pat_dfas.append((p, d, self.child(node, scope, "patternProperties", p)))
        names = []
        evaluated = set()
        for name in props:
            f = self.child(node, scope, "properties", name)
            data = name.encode("utf-8", "surrogatepass")
            for _p, d, pf in pat_dfas:
                if d.matches(data):
                    f = f_and(f, pf)
            names.append((name, f))
            evaluated.add(name)
        has_add = "additionalProperties" in s
        add = self.child(node, scope, "additionalProperties") if has_add else TRUE
        req = s.get("required", [])
        if self.opt.additional_properties == "forbid":
            # undeclared keys are never generated -- except the required ones
            for name in req if isinstance(req, list) else ():
                if isinstance(name, str) and name not in props:
                    data = name.encode("utf-8", "surrogatepass")
                    matched = [pf for _p, d, pf in pat_dfas if d.matches(data)]
                    names.append((name, f_and(*matched) if matched else add))
            add = FALSE
        regions = [(None, ())]
        for i, (_p, d, _pf) in enumerate(pat_dfas):
            nxt = []
            for keys, matched in regions:
                inside = dfa_and(keys, d)
                outside = dfa_minus(keys if keys is not None else ANY_STRING, d)
                if not ops.is_empty(inside):
                    nxt.append((inside, matched + (i,)))
                if not ops.is_empty(outside):
                    nxt.append((outside, matched))
            regions = nxt
            if len(regions) > 64:
                self.unsupported("patternProperties", f"{where}/patternProperties",
                                 "too many overlapping patterns")
        regs = []
        for keys, matched in regions:
            if matched:
                regs.append(Region(keys, f_and(*[pat_dfas[i][2] for i in matched]), True))
            else:
                regs.append(Region(keys, add, has_add))
        if not isinstance(req, list):
            if isinstance(req, bool):  # draft-03 spelling, noted by _eval_dict
                req = []
            else:
                raise SchemaError("required must be an array of strings", where=f"{where}/required")
        lo = self._count(node, s, "minProperties", where) or 0
        hi = self._count(node, s, "maxProperties", where)
        alt = obj_make(names, regs, set(req), lo, hi, evaluated)
        if "propertyNames" in s:
            pn = self.guard("propertyNames", node,
                            lambda: self._property_names(alt, self.eval(self.child(node, scope, "propertyNames"))))
            if pn is not None:
                alt = pn
        alts = [] if alt is None or alt.trivially_empty() else [alt]
        # dependencies
        deps_req = {}
        deps_sch = {}
        if isinstance(s.get("dependentRequired"), dict):
            deps_req.update(s["dependentRequired"])
        if isinstance(s.get("dependentSchemas"), dict):
            for k in s["dependentSchemas"]:
                deps_sch[k] = self.child(node, scope, "dependentSchemas", k)
        if isinstance(s.get("dependencies"), dict) and node.draft in (D4, D6, D7, DEFAULT):
            for k, v in s["dependencies"].items():
                if isinstance(v, list):
                    deps_req[k] = v
                elif isinstance(v, (dict, bool)):
                    deps_sch[k] = self.child(node, scope, "dependencies", k)
        for trig, needed in deps_req.items():
            if not isinstance(needed, list):
                raise SchemaError("dependentRequired values must be arrays", where=where)
            choice = [obj_make(names=((trig, FALSE),)), obj_make(required={trig, *needed})]
            alts = list(_cross(alts, choice, obj_and, where))
        for trig, f in deps_sch.items():
            sub = self.eval(f)
            present = obj_make(required={trig})
            choice = [obj_make(names=((trig, FALSE),))] + [a for a in (obj_and(present, o) for o in sub.objects)
                                                             if a is not None]
            alts = list(_cross(alts, choice, obj_and, where))
        return tuple(alts)

    def _property_names(self, alt: ObjAlt, pn: TypeSets) -> ObjAlt | None:
        st = pn.string
        if st is None:
            keys = None  # no key is valid
        elif st.lo == 0 and st.hi is None and st.body is None:
            return alt
        else:
            keys = str_fold(st)
        names = []
        for n, f in alt.names:
            ok = keys is not None and keys.matches(n.encode("utf-8", "surrogatepass"))
            names.append((n, f if ok else FALSE))
        regions = []
        for r in alt.regions:
            if keys is None:
                continue
            k = dfa_and(r.keys, keys)
            if not ops.is_empty(k):
                regions.append(Region(k, r.formula, r.evaluated))
        return ObjAlt(tuple(names), tuple(regions), alt.required, alt.min_props, alt.max_props, alt.evaluated,
                      alt.exists)

    # ------------------------------------------------------------------ arrays
    def array_piece(self, node: Node, s: dict, scope: tuple, draft) -> tuple | None:
        where = node.where
        prefix = ()
        rest = TRUE
        eval_prefix = 0
        eval_rest = False
        items = s.get("items")
        if "prefixItems" in s and draft in (D2020, DEFAULT):
            n = len(self._list(s, "prefixItems", where))
            prefix = tuple(self.child(node, scope, "prefixItems", i) for i in range(n))
            eval_prefix = n
            if isinstance(items, (dict, bool)):
                rest = self.child(node, scope, "items")
                eval_rest = True
        elif isinstance(items, list):
            prefix = tuple(self.child(node, scope, "items", i) for i in range(len(items)))
            eval_prefix = len(items)
            if "additionalItems" in s:
                rest = self.child(node, scope, "additionalItems")
                eval_rest = True
        elif isinstance(items, (dict, bool)):
            rest = self.child(node, scope, "items")
            eval_rest = True
        lo = self._count(node, s, "minItems", where) or 0
        hi = self._count(node, s, "maxItems", where)
        contains = ()
        eval_contains = ()
        if "contains" in s:
            cf = self.child(node, scope, "contains")
            cmin = 1
            cmax = None
            if draft in (D2019, D2020, DEFAULT):
                if "minContains" in s:
                    cmin = self._count(node, s, "minContains", where)
                    cmin = 0 if cmin is None else cmin
                cmax = self._count(node, s, "maxContains", where)
            contains = (Contains(cf, cmin, cmax, 0),)
            eval_contains = (cf,)
        unique = s.get("uniqueItems") is True
        alt = ArrAlt(prefix, rest, lo, hi, contains, unique, eval_prefix, eval_rest, eval_contains,
                     f"{where}/uniqueItems" if unique else "")
        if alt.trivially_empty():
            return ()
        return (alt,)

    # ------------------------------------------------------------------ combinators
    def any_of(self, branches, where) -> TypeSets:
        plain = ts_union(branches)
        if not self.split_any_of or len(branches) == 1:
            return plain
        structured = [b for b in branches if b.objects or b.arrays]
        if len(structured) <= 1 or len(branches) > 6:
            return plain
        # annotations (unevaluated*) depend on which branches hold: split by subsets
        negs = [restrict_types(ts_not(b, where), {"object", "array"}) for b in branches]
        acc = NONE
        idx = range(len(branches))
        for k in range(1, len(branches) + 1):
            for sub in combinations(idx, k):
                part = TypeSets(objects=(OBJ_ANY,), arrays=(ARR_ANY,))
                for i in idx:
                    part = ts_and(part, branches[i] if i in sub else negs[i], where)
                    if not part.objects and not part.arrays:
                        break
                acc = ts_or(acc, part)
        scalars = restrict_types(plain, {"null", "boolean", "number", "string"})
        return ts_or(scalars, acc)

    def _overlap(self, a: TypeSets, b: TypeSets, where) -> set[str]:
        both = ts_and(a, b, where)
        out = set()
        for t in both.types():
            if t == "object":
                if all(any(self.is_empty(f) for n, f in o.names if n in o.required) for o in both.objects):
                    continue
            if t == "array":
                if all(any(self.is_empty(x.item(i)) for i in range(min(x.min_items, len(x.prefix) + 1)))
                       for x in both.arrays):
                    continue
            out.add(t)
        return out

    def one_of(self, branches, where) -> TypeSets:
        n = len(branches)
        if n == 1:
            return branches[0]
        overl = {}
        for i in range(n):
            for j in range(i + 1, n):
                ov = self._overlap(branches[i], branches[j], where)
                if ov:
                    overl[(i, j)] = overl[(j, i)] = ov
        if not overl:
            return ts_union(branches)
        acc = NONE
        for i in range(n):
            part = branches[i]
            for j in range(n):
                if j == i or (i, j) not in overl:
                    continue
                types = overl[(i, j)]
                keep_other = restrict_types(part, set(part.types()) - types)
                cut = ts_and_not(restrict_types(part, types), restrict_types(branches[j], types), where)
                part = ts_or(keep_other, cut)
            acc = ts_or(acc, part)
        return acc

    def if_then_else(self, node, s, scope) -> TypeSets:
        cond = self.eval(self.child(node, scope, "if"))
        then = self.eval(self.child(node, scope, "then")) if "then" in s else ALL
        other = self.eval(self.child(node, scope, "else")) if "else" in s else ALL
        if "then" not in s and "else" not in s:
            # only annotations matter (unevaluated*): when `if` holds its annotations count
            return ts_or(cond, ts_not(cond, f"{node.where}/if"))
        neg = ts_not(cond, f"{node.where}/if")
        return ts_or(ts_and(cond, then, node.where), ts_and(neg, other, node.where))

    # ------------------------------------------------------------------ unevaluated
    def apply_uneval_props(self, ts: TypeSets, u) -> TypeSets:
        out = []
        for o in ts.objects:
            names = tuple((n, f if n in o.evaluated else f_and(f, u)) for n, f in o.names)
            regions = tuple(Region(r.keys, r.formula if r.evaluated else f_and(r.formula, u), True)
                            for r in o.regions)
            alt = ObjAlt(names, regions, o.required, o.min_props, o.max_props, frozenset(n for n, _ in o.names),
                         o.exists)
            if not alt.trivially_empty():
                out.append(alt)
        return TypeSets(ts.null, ts.booleans, ts.number, ts.string, tuple(out), ts.arrays, ts.number_points)

    def apply_uneval_items(self, ts: TypeSets, u) -> TypeSets:
        out = []
        for a in ts.arrays:
            if a.eval_rest:
                out.append(a)
                continue
            cond = f_or(u, *a.eval_contains)
            n = max(len(a.prefix), a.eval_prefix)
            prefix = tuple(a.item(i) if i < a.eval_prefix else f_and(a.item(i), cond) for i in range(n))
            rest = f_and(a.rest, cond)
            alt = ArrAlt(prefix, rest, a.min_items, a.max_items, a.contains, a.unique, n, True, a.eval_contains,
                         a.where)
            alt = arr_and(alt, ArrAlt(max_items=alt.max_items)) if rest == FALSE else alt
            if alt is not None and not alt.trivially_empty():
                out.append(alt)
        return TypeSets(ts.null, ts.booleans, ts.number, ts.string, ts.objects, tuple(out), ts.number_points)
