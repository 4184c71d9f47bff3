"""The one table of JSON Schema keywords: how each is compiled.

It drives three things: which keywords the compiler treats as known (anything
not listed is ignored, as validators ignore unknown keywords), the wording of
:class:`~structgen.errors.Unsupported` errors and lenient-mode warnings, and
the generated document ``docs/json_schema_support.md``
(:func:`support_matrix_markdown`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KEYWORDS", "Keyword", "support_matrix_markdown", "status_of"]

EXACT = "exact"
PARTIAL = "partial"
UNSUPPORTED = "unsupported"
ANNOTATION = "annotation"


@dataclass(frozen=True)
class Keyword:
    name: str
    status: str
    notes: str
    drafts: str = "all"


KEYWORDS: dict[str, Keyword] = {k.name: k for k in [
    # -- core
    Keyword("$schema", EXACT, "Selects the draft (04, 06, 07, 2019-09, 2020-12) for the resource; without it, "
            "2020-12 semantics that also accept draft-04..07 spellings (`definitions`, `id`, boolean "
            "`exclusiveMaximum`, `items` arrays + `additionalItems`, `dependencies`)."),
    Keyword("$id", EXACT, "Base URI changes and embedded resources; draft-06/07 `\"$id\": \"#name\"` is an anchor."),
    Keyword("id", EXACT, "draft-04 spelling of `$id`. Without `$schema` it is honoured only when it is an absolute "
            "URI or a `#name` fragment (otherwise it is a plain unknown keyword).", "4"),
    Keyword("$ref", EXACT, "One nonterminal per (location, dynamic scope): recursion is free. Local pointers, "
            "anchors, embedded `$id` resources and remote documents given in `registry={uri: schema}` "
            "(never the network; the official meta-schemas are taken from `jsonschema-specifications` when "
            "installed). Siblings are ignored for drafts <= 07, applied for 2019-09+."),
    Keyword("$defs", EXACT, "Container only."),
    Keyword("definitions", EXACT, "Container only (draft-04..07 spelling)."),
    Keyword("$anchor", EXACT, "Plain-name fragments.", "2019-09+"),
    Keyword("$dynamicRef", EXACT, "Resolved against the dynamic scope (outermost resource with a matching "
            "`$dynamicAnchor`); the scope is part of the nonterminal key.", "2020-12"),
    Keyword("$dynamicAnchor", EXACT, "See `$dynamicRef`.", "2020-12"),
    Keyword("$recursiveRef", EXACT, "As `$dynamicRef`, 2019-09 style.", "2019-09"),
    Keyword("$recursiveAnchor", EXACT, "See `$recursiveRef`.", "2019-09"),
    Keyword("$vocabulary", ANNOTATION, "Ignored: all standard vocabularies are assumed."),
    Keyword("$comment", ANNOTATION, "Ignored."),
    # -- any type
    Keyword("type", EXACT, "Type arrays are unions. `integer` = numbers with an integral value "
            "(`1.0` and `1e2` included) from draft-06 on, the `-?(0|[1-9][0-9]*)` syntax in draft-04."),
    Keyword("enum", EXACT, "JSON equality: `1` matches `1.0`/`10e-1`, strings match every JSON escape spelling, "
            "objects in any key order allowed by `property_order`."),
    Keyword("const", EXACT, "As `enum` with one value."),
    # -- strings
    Keyword("minLength", EXACT, "Counted in code points; a string is one terminal DFA (the content DFA "
            "intersected with the JSON-escaped length automaton)."),
    Keyword("maxLength", EXACT, "As `minLength`. Bounds above 128 on a string without pattern/format are "
            "compiled as 64-character chunk terminals counted by nonterminals (no state blow-up). With a "
            "pattern/format the bound is dropped when the pattern already implies it, exact up to 4096, else "
            "BudgetExceeded. Bounds >= the `huge_bound` option (default 1,000,000) are treated as unbounded "
            "(a `StructgenWarning` and an entry in `report`)."),
    Keyword("pattern", EXACT, "ECMA-262 syntax, search semantics (unanchored unless `^`/`$`; anchors inside "
            "groups too); `\\d`,`\\w` ASCII, `\\s` ECMA whitespace, `.` excludes line terminators, `\\p{..}` "
            "General_Category, lookaheads directly after a leading `^` (DFA intersection/difference). The "
            "pattern constrains the decoded string; its DFA is then JSON-quoted (see option `escapes`). "
            "Other lookarounds, backreferences and `\\b` raise Unsupported. Strings containing U+FDD0/U+FDD1 "
            "(noncharacters used as anchor sentinels) never match a pattern with inner anchors."),
    Keyword("format", PARTIAL, "Asserted (option `format_assertion=True`) for date-time, date, time, duration, "
            "email, idn-email, hostname, ipv4, ipv6, uuid, uri, uri-reference, iri, iri-reference, json-pointer, "
            "relative-json-pointer (regular languages matching Python jsonschema's checkers; see "
            "`formats.FORMATS` notes for hostname and uuid spellings). `regex`, `idn-hostname`, "
            "`uri-template` raise Unsupported. Formats no validator knows are not asserted (a "
            "`StructgenWarning` and an entry in `report`)."),
    Keyword("contentEncoding", ANNOTATION, "Annotation since 2019-09; ignored."),
    Keyword("contentMediaType", ANNOTATION, "Annotation since 2019-09; ignored."),
    Keyword("contentSchema", ANNOTATION, "Annotation; ignored."),
    # -- numbers
    Keyword("minimum", EXACT, "Exact decimal comparison (value semantics, `-0 == 0`). Exponent notation is "
            "produced for mantissas with at most 3 integer digits and 17 fraction digits (every serializer "
            "writes 1 integer digit)."),
    Keyword("maximum", EXACT, "As `minimum`."),
    Keyword("exclusiveMinimum", EXACT, "Number (draft-06+) or boolean modifier (draft-04)."),
    Keyword("exclusiveMaximum", EXACT, "Number (draft-06+) or boolean modifier (draft-04)."),
    Keyword("multipleOf", PARTIAL, "Exact divisibility automaton on the scaled decimal when the scaled "
            "numerator is <= 100000 (e.g. 0.01, 1.5, 1e-8, 7); larger numerators raise BudgetExceeded. Numbers "
            "with `multipleOf` are produced without exponent notation."),
    # -- objects
    Keyword("properties", PARTIAL, "Each declared key is one literal terminal. Default "
            "`property_order=\"schema\"`: declared keys in schema order (small grammars, fast closing). "
            "`\"any\"` accepts every order without duplicate keys for objects with <= `max_any_order` "
            "(default 8) declared keys, by subset-tracking nonterminals (2^k states); objects with more "
            "declared keys stay in schema order (an entry in `report`). With `allOf`/`$ref` merges, schema order is: `$ref` target, "
            "`allOf` members, own `properties`, then `anyOf`/`oneOf` members; a key named only by a `required` "
            "list (no `properties` entry there) takes its place from the `properties` that declare it, and "
            "comes last otherwise (a required list sets no order)."),
    Keyword("required", EXACT, "Required keys not declared in `properties` become explicit keys whose value "
            "schema comes from `patternProperties`/`additionalProperties`. A draft-03 boolean `required` is "
            "ignored (a `StructgenWarning` and an entry in `report`)."),
    Keyword("additionalProperties", EXACT, "Key DFA = any key minus declared names minus patterns (DFA "
            "difference). Option `additional_properties=\"forbid\"` forbids undeclared keys everywhere. "
            "Duplicate *undeclared* keys are not prevented."),
    Keyword("patternProperties", EXACT, "Keys are split into regions by which patterns match (DFA "
            "intersections); a key's value must satisfy every matching pattern's schema."),
    Keyword("propertyNames", EXACT, "Intersected into every key terminal."),
    Keyword("minProperties", EXACT, "Counted by the grammar (nonterminals per count)."),
    Keyword("maxProperties", EXACT, "As `minProperties`."),
    Keyword("dependentRequired", EXACT, "Expanded to a union: trigger absent, or trigger and dependents present."),
    Keyword("dependentSchemas", EXACT, "Expanded to a union: trigger absent, or present and the schema holds."),
    Keyword("dependencies", EXACT, "draft-04..07 spelling of both of the above."),
    Keyword("unevaluatedProperties", PARTIAL, "Exact through `properties`/`patternProperties`/"
            "`additionalProperties`, `allOf`, `$ref`, `oneOf`, `if`/`then`/`else`, `dependentSchemas`, and "
            "`anyOf` (split by which branches hold); needs the complement of the other branches, so "
            "branches whose negation is unsupported raise Unsupported."),
    # -- arrays
    Keyword("prefixItems", EXACT, "Positional item nonterminals."),
    Keyword("items", EXACT, "Schema for the remaining items; an array of schemas is draft-04..2019-09 "
            "`items` (positional)."),
    Keyword("additionalItems", EXACT, "With an `items` array (draft-04..2019-09 / default mode)."),
    Keyword("minItems", EXACT, "Counted by the grammar; bounds >= `huge_bound` are treated as unbounded."),
    Keyword("maxItems", EXACT, "As `minItems`."),
    Keyword("contains", EXACT, "At-least counts use an ambiguous grammar (no complement needed); "
            "`maxContains` needs the complement of the `contains` schema."),
    Keyword("minContains", EXACT, "See `contains`."),
    Keyword("maxContains", PARTIAL, "Needs `not` of the `contains` schema (see `not`)."),
    Keyword("uniqueItems", PARTIAL, "Exact when the item values range over a finite set of at most "
            "`max_unique_domain` values (enums, booleans, null: subset-tracking nonterminals) or when at most "
            "one item fits; otherwise Unsupported."),
    Keyword("unevaluatedItems", PARTIAL, "As `unevaluatedProperties` (items evaluated by `prefixItems`, "
            "`items`, `contains`)."),
    # -- combinators
    Keyword("allOf", EXACT, "Merged (intersection of the normal forms), not concatenated."),
    Keyword("anyOf", EXACT, "Union."),
    Keyword("oneOf", PARTIAL, "Union of `branch_i and not(other branches)`; complements are only built for "
            "types where branches overlap, and provably disjoint branches need none. Fails (Unsupported) "
            "when a needed complement is not expressible (see `not`)."),
    Keyword("not", PARTIAL, "Exact complement for null/boolean/number/string (any pattern/length/format with an "
            "exact language) and for object/array conditions on required keys, declared properties, counts, "
            "positional items, `items` (becomes `contains`) and `contains`; Unsupported for "
            "additional/pattern properties with a schema, `propertyNames` and `uniqueItems`."),
    Keyword("if", PARTIAL, "`(if and then) or (not if and else)`; needs `not` of `if`."),
    Keyword("then", PARTIAL, "See `if`."),
    Keyword("else", PARTIAL, "See `if`."),
    # -- annotations
    Keyword("title", ANNOTATION, "Ignored."),
    Keyword("description", ANNOTATION, "Ignored."),
    Keyword("default", ANNOTATION, "Ignored."),
    Keyword("examples", ANNOTATION, "Ignored."),
    Keyword("deprecated", ANNOTATION, "Ignored."),
    Keyword("readOnly", ANNOTATION, "Ignored."),
    Keyword("writeOnly", ANNOTATION, "Ignored."),
]}


def status_of(keyword: str) -> str | None:
    k = KEYWORDS.get(keyword)
    return k.status if k else None


def hint(keyword: str) -> str:
    """Suffix for error/warning messages pointing at the keyword's row in the table."""
    name = keyword.split()[0].split("(")[0]
    k = KEYWORDS.get(name)
    return f" [support table: {name} is {k.status}; see docs/json_schema_support.md]" if k else ""


_INTRO = """# JSON Schema support

`structgen.json_schema.compile_json_schema(schema, vocab, **options)` compiles a JSON
Schema to a grammar whose language is the set of JSON documents valid under the schema,
serialised in the configured whitespace style (default: any JSON whitespace, at most
`max_whitespace` characters per gap; compact `separators=(",", ":")`, `json.dumps` defaults
and `indent=2` output nest up to 11 levels deep all fit), with the string spellings of standard
serializers (option `escapes`), and with declared properties in schema order (option
`property_order="any"`: any order for objects that declare at most 8 properties).

*Exact* means the compiled language is exactly the valid instances (modulo the
documented whitespace/property-order policy). What is not exact raises
`structgen.Unsupported` naming the keyword and its JSON pointer; with `lenient=True`
the keyword is dropped instead, with a warning (`structgen.errors.StructgenWarning`)
and an entry in `compiled.report`; relaxations that are not errors (`huge_bound`,
unknown formats, draft-03 `required`) warn the same way. Keywords that appear in no draft's vocabulary are ignored, as
validators ignore them.

This file is generated from `structgen/json_schema/support.py`
(`support_matrix_markdown()`); edit the table there.
"""

_OPTIONS = """
## Options (`JsonSchemaOptions`)

| option | default | meaning |
|---|---|---|
| `whitespace` | `"flexible"` | `"compact"`: none; `"canonical"`: exactly `json.dumps`' default separators `", "` and `": "` (what models imitate; keys and separators become forced, so fast-forward covers them); `"flexible"`: any JSON whitespace, at most `max_whitespace` per gap; `"pretty"`: a newline + indentation or one space where `json.dumps` puts them |
| `max_whitespace` | `24` | bound for the flexible/pretty policies |
| `escapes` | `"canonical"` | string spellings: `"canonical"` = raw UTF-8, or `\\uXXXX` (either hex case, surrogate pairs) for non-ASCII/control characters, short escapes (`\\"`, `\\\\`, `\\/`, `\\n`...): what Python `json.dumps` (either `ensure_ascii`), JavaScript and PHP produce; `"all"` also accepts `\\u`-escaped printable ASCII such as `\\u0041` (exact, but literal and key DFAs grow ~7x) |
| `property_order` | `"schema"` | schema order; `"any"`: any order without duplicate declared keys (up to `max_any_order` declared keys) |
| `max_any_order` | `8` | declared keys above which an object is generated in schema order |
| `additional_properties` | `"schema"` | `"forbid"`: keys matching neither `properties` nor `patternProperties` are never generated (required ones excepted) |
| `format_assertion` | `True` | `False`: `format` is an annotation |
| `lenient` | `False` | drop what cannot be compiled exactly (`StructgenWarning` + `report`) |
| `max_recursion_depth` | `None` | maximum nesting depth of objects/arrays (deeper containers are not generated; bounds recursive schemas) |
| `huge_bound` | `1_000_000` | length/count bounds at or above this are treated as unbounded (`StructgenWarning` + `report`) |
| `max_unique_domain` | `10` | largest finite item domain for `uniqueItems` |
| `default_draft` | `"2020-12+legacy"` | semantics when `$schema` is absent |
| `registry` | `None` | `{uri: schema}` for remote `$ref`s |
| `max_terminals`, `max_rules`, `time_budget_s` | 20000, 500000, 60 | compile budgets (`BudgetExceeded`) |
"""


def support_matrix_markdown() -> str:
    groups = [
        ("Core", ["$schema", "$id", "id", "$ref", "$defs", "definitions", "$anchor", "$dynamicRef",
                  "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "$vocabulary", "$comment"]),
        ("Any type", ["type", "enum", "const"]),
        ("Strings", ["minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType",
                     "contentSchema"]),
        ("Numbers", ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]),
        ("Objects", ["properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                     "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies",
                     "unevaluatedProperties"]),
        ("Arrays", ["prefixItems", "items", "additionalItems", "minItems", "maxItems", "contains",
                    "minContains", "maxContains", "uniqueItems", "unevaluatedItems"]),
        ("Combinators", ["allOf", "anyOf", "oneOf", "not", "if", "then", "else"]),
        ("Annotations", ["title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"]),
    ]
    out = [_INTRO]
    listed = set()
    for title, names in groups:
        out.append(f"\n## {title}\n\n| keyword | status | notes |\n|---|---|---|")
        for n in names:
            k = KEYWORDS[n]
            listed.add(n)
            notes = k.notes.replace("|", "\\|")
            out.append(f"| `{n}` | {k.status} | {notes} |")
    assert listed == set(KEYWORDS), set(KEYWORDS) - listed
    from .formats import FORMATS, KNOWN_UNSUPPORTED_FORMATS
    out.append("\n## Formats\n\n| format | exact | notes |\n|---|---|---|")
    for name, spec in FORMATS.items():
        out.append(f"| `{name}` | {'yes' if spec.exact else 'approximate'} | {spec.notes} |")
    for name, why in KNOWN_UNSUPPORTED_FORMATS.items():
        out.append(f"| `{name}` | unsupported | {why} |")
    out.append(_OPTIONS)
    return "\n".join(out) + "\n"
