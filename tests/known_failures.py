"""Groups and schemas structgen is known not to pass, measured on the pinned data
(``../shared/data``, see its SOURCE.json files) over the byte-level vocabulary.

``tests/test_json_schema_suite.py`` asserts that the set of failing groups equals these
lists exactly: a new failure (a wrong reject, a new ``Unsupported``) fails the test, and
so does a fix (remove the entry: the list only shrinks).  A wrong *accept* is never
listed: it fails the tests wherever it happens.

Status: ``"unsupported"`` (the compiler raises ``Unsupported``/``BudgetExceeded``) or
``"fail"`` (it compiles but rejects a valid instance)."""

from __future__ import annotations

#: JSON-Schema-Test-Suite, tests/draft2020-12: (file, group description) -> status
SUITE_DRAFT2020_12 = {
    # uniqueItems over an open item domain (any string/array): no finite automaton expresses
    # "all items distinct"; only small finite domains (<= max_unique_domain values) compile.
    ("uniqueItems", "uniqueItems validation"): "unsupported",
    ("uniqueItems", "uniqueItems with an array of items"): "unsupported",
    # ... reached through the 2020-12 meta-schema (its stringArray has uniqueItems)
    ("defs", "validate definition against metaschema"): "unsupported",
    ("ref", "remote ref, containing refs itself"): "unsupported",
    # multipleOf 0.123456789: the exact divisibility automaton would have ~1.4e9 states
    ("multipleOf", "float division = inf"): "unsupported",
    # nested $dynamicRef + unevaluatedProperties: the oneOf expansion passes the 256-alternative budget
    ("unevaluatedProperties", "dynamic evalation inside nested refs"): "unsupported",
    # a custom meta-schema without the validation vocabulary turns "type"/"minimum" into
    # annotations; structgen still applies them ($vocabulary is not read)
    ("vocabulary", "schema that uses custom metaschema with with no validation vocabulary"): "fail",
}

#: JSON-Schema-Test-Suite, tests/draft7 (run with default_draft="7"): (file, group description) -> status
SUITE_DRAFT7 = {
    # uniqueItems over an open item domain (see above), directly or through the draft-07 meta-schema
    ("uniqueItems", "uniqueItems validation"): "unsupported",
    ("uniqueItems", "uniqueItems with an array of items"): "unsupported",
    ("definitions", "validate definition against metaschema"): "unsupported",
    ("ref", "remote ref, containing refs itself"): "unsupported",
    # multipleOf 0.123456789: ~1.4e9-state divisibility automaton
    ("multipleOf", "float division = inf"): "unsupported",
}

#: MaskBench sample of test_json_schema_suite.bench_sample() (100 schemas): file -> status
MASKBENCH_SAMPLE = {
    # uniqueItems over open string domains
    "JsonSchemaStore---KSP-AVC.schema.json": "unsupported",
    "JsonSchemaStore---asmdef.json": "unsupported",
    "JsonSchemaStore---cosmos-config.json": "unsupported",
    "JsonSchemaStore---project-1.0.0-beta8.json": "unsupported",
    "JsonSchemaStore---servicehub.config.schema.json": "unsupported",
    # property_order="schema" (the default): a valid instance lists its keys out of the
    # declared order (objects of 9 and 15 declared properties)
    "JsonSchemaStore---lintstagedrc.schema.json": "fail",
    "JsonSchemaStore---tmlanguage.json": "fail",
}
