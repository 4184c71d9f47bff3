"""Agreement with the official JSON-Schema-Test-Suite (drafts 2020-12 and 7, required
tests) and with labelled JSONSchemaBench instances.

The groups that do not pass must be exactly those listed, with their reason, in
``tests/known_failures.py``: a new failure fails the test, and so does a fix (shrink
the list).  No invalid instance may ever be accepted.  The data is read from
``$STRUCTGEN_DATA`` or ``../shared/data``; when it is missing the tests fail.

A group passes when every valid instance is accepted and every invalid one is
blocked.  Groups that raise ``Unsupported``/``BudgetExceeded`` do not pass; a
wrong acceptance never counts as a pass.  A schema whose language is empty
raises ``SchemaError`` ("accepts no JSON value"); such a group passes only when
all its instances are invalid (nothing can be generated, nothing is accepted).
"""

from __future__ import annotations

import glob
import json
import os
import warnings
from functools import lru_cache

import pytest

from known_failures import MASKBENCH_SAMPLE, SUITE_DRAFT7, SUITE_DRAFT2020_12
from structgen.bench.env import default_data_dir
from structgen.errors import BudgetExceeded, Unsupported
from structgen.json_schema import SchemaError, compile_json_schema
from structgen.vocab import Vocabulary

DATA = str(default_data_dir())  # $STRUCTGEN_DATA or ../shared/data beside the repository
SUITE = os.path.join(DATA, "json-schema-test-suite")
BENCH = os.path.join(DATA, "jsonschemabench", "maskbench", "data")
V = Vocabulary.byte_level()


def accepts(compiled, text: str) -> bool:
    m = compiled.matcher()
    return m.accept_string(text) and m.can_terminate()


@lru_cache(maxsize=1)
def remotes() -> dict:
    reg = {}
    base = os.path.join(SUITE, "remotes")
    for p in glob.glob(os.path.join(base, "**", "*.json"), recursive=True):
        with open(p, encoding="utf-8") as f:
            reg["http://localhost:1234/" + os.path.relpath(p, base).replace(os.sep, "/")] = json.load(f)
    return reg


def run_group(schema, tests, **opts) -> tuple[str, list[str]]:
    """('pass' | 'fail' | 'unsupported' | 'error', problems)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = compile_json_schema(schema, V, **opts)
    except (Unsupported, BudgetExceeded) as exc:
        return "unsupported", [str(exc)[:200]]
    except SchemaError as exc:
        if "accepts no JSON value" in str(exc) and not any(t["valid"] for t in tests):
            return "pass", []
        return "error", [str(exc)[:200]]
    problems = []
    for t in tests:
        got = accepts(c, json.dumps(t["data"]))
        if got != t["valid"]:
            problems.append(("WRONG ACCEPT " if got else "wrong reject ") + json.dumps(t["data"])[:80])
    return ("pass" if not problems else "fail"), problems


# --------------------------------------------------------------------------- helpers

def compare_with_known(failing: dict, known: dict, problems: dict) -> None:
    """Assert ``failing`` (key -> status) equals ``known``; the message says which way it moved."""
    new = {k: (v, problems.get(k)) for k, v in failing.items() if known.get(k) != v}
    fixed = sorted(k for k in known if k not in failing)
    assert not new and not fixed, (
        (f"newly failing (or failing differently) -- fix them, or list them with a reason in "
         f"tests/known_failures.py: {new}\n" if new else "")
        + (f"now passing -- remove them from tests/known_failures.py: {fixed}" if fixed else ""))


def suite_files(draft: str) -> list[str]:
    return sorted(glob.glob(os.path.join(SUITE, "tests", draft, "*.json")))


def test_data_is_present():
    """Without the data every parametrised test below would silently vanish: fail instead."""
    assert len(suite_files("draft2020-12")) >= 40 and len(suite_files("draft7")) >= 35, (
        f"JSON-Schema-Test-Suite not found under {SUITE}: set STRUCTGEN_DATA (see /work/shared/data/README.md)")
    assert len(glob.glob(os.path.join(BENCH, "*.json"))) > 1000, (
        f"JSONSchemaBench (maskbench/data) not found under {BENCH}: set STRUCTGEN_DATA")


# --------------------------------------------------------------------------- test suite

DRAFTS = {  # draft folder -> (known failures, extra compile options)
    "draft2020-12": (SUITE_DRAFT2020_12, {}),
    "draft7": (SUITE_DRAFT7, {"default_draft": "7"}),  # the draft-07 files carry no $schema
}
SUITE_CASES = [(draft, path) for draft in DRAFTS for path in suite_files(draft)]


@pytest.mark.parametrize("draft,path", SUITE_CASES,
                         ids=[f"{d}-{os.path.basename(p)[:-5]}" for d, p in SUITE_CASES])
def test_suite_file(draft, path):
    known, extra = DRAFTS[draft]
    name = os.path.basename(path)[:-5]
    with open(path, encoding="utf-8") as f:
        groups = json.load(f)
    failing, problems, wrong_accepts = {}, {}, []
    for g in groups:
        # format is an annotation by default in 2020-12: run the suite with the spec's default
        status, probs = run_group(g["schema"], g["tests"], registry=remotes(), property_order="any",
                                  format_assertion=False, **extra)
        key = (name, g["description"])
        if status != "pass":
            failing[key], problems[key] = status, probs[:3]
        wrong_accepts += [f"{g['description']}: {p}" for p in probs if p.startswith("WRONG ACCEPT")]
    assert not wrong_accepts, wrong_accepts  # never under-constrained
    compare_with_known(failing, {k: v for k, v in known.items() if k[0] == name}, problems)


@pytest.mark.parametrize("draft", list(DRAFTS))
def test_known_suite_failures_name_existing_groups(draft):
    """A known entry whose file or group is gone (renamed upstream) would never be checked."""
    known, _ = DRAFTS[draft]
    groups = set()
    for path in suite_files(draft):
        with open(path, encoding="utf-8") as f:
            groups |= {(os.path.basename(path)[:-5], g["description"]) for g in json.load(f)}
    assert set(known) <= groups, sorted(set(known) - groups)


# --------------------------------------------------------------------------- JSONSchemaBench sample

BENCH_SUBSETS = ("Github_easy", "Kubernetes", "Glaiveai2K", "Snowplow", "JsonSchemaStore")
PER_SUBSET = 20


def bench_sample() -> list[str]:
    out = []
    for sub in BENCH_SUBSETS:
        files = sorted(glob.glob(os.path.join(BENCH, f"{sub}---*.json")))
        with_tests = []
        for f in files:
            with open(f, encoding="utf-8") as fh:
                if json.load(fh)["tests"]:
                    with_tests.append(f)
        step = max(1, len(with_tests) // PER_SUBSET)
        out += with_tests[::step][:PER_SUBSET]
    return out


def test_maskbench_sample():
    files = bench_sample()
    assert len(files) == len(BENCH_SUBSETS) * PER_SUBSET, len(files)
    assert set(MASKBENCH_SAMPLE) <= {os.path.basename(p) for p in files}
    failing, problems, wrong = {}, {}, []
    for path in files:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        status, probs = run_group(d["schema"], d["tests"])
        name = os.path.basename(path)
        if status != "pass":
            failing[name], problems[name] = status, probs[:3]
        wrong += [f"{name}: {p}" for p in probs if p.startswith("WRONG ACCEPT")]
    # no invalid instance may be accepted (formats are asserted, so even the "invalid only with
    # format" instances are blocked)
    assert not wrong, wrong
    compare_with_known(failing, MASKBENCH_SAMPLE, problems)
