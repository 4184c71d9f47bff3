"""The generation runners (``structgen bench jsonschemabench`` / ``last-letters``): their pure
parts on synthetic records, and a CI-sized smoke run on the tiny random model (sharded, merged,
resumed)."""

import json

import pytest

from structgen.bench import genrun
from structgen.bench import jsonschemabench as jsb
from structgen.bench import lastletters as llc
from structgen.bench.env import default_data_dir

DATA = default_data_dir()


# --------------------------------------------------------------------------- pure parts
def test_prompt_has_instruction_two_examples_and_the_schema_last():
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    msgs = jsb.messages_for(schema)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert json.loads(msgs[-1]["content"]) == schema
    import jsonschema

    for (ex_schema, ex_value), (u, a) in zip(jsb.EXAMPLES, [(msgs[1], msgs[2]), (msgs[3], msgs[4])]):
        assert json.loads(u["content"]) == ex_schema
        jsonschema.Draft202012Validator(ex_schema).validate(json.loads(a["content"]))  # the examples are valid


def test_select_is_seeded_limited_and_interleaved():
    schemas = [{"id": f"{s}-{i}", "subset": s, "path": ""} for s in ("A", "B") for i in range(10)]
    a = jsb.select(schemas, ["A", "B"], 3, seed=1)
    assert [s["subset"] for s in a] == ["A", "B"] * 3
    assert a == jsb.select(schemas, ["A", "B"], 3, seed=1)
    assert a != jsb.select(schemas, ["A", "B"], 3, seed=2)
    assert len(jsb.select(schemas, ["A"], None, seed=0)) == 10
    with pytest.raises(SystemExit):
        jsb.select(schemas, ["C"], 3, seed=0)


def test_check_output_json_schema_and_format():
    schema = {"type": "object", "properties": {"e": {"type": "string", "format": "email"}}, "required": ["e"]}
    assert jsb.check_output('{"e": "a@b.c"}', schema)["schema_ok"]
    assert jsb.check_output('```json\n{"e": "a@b.c"}\n```', schema)["schema_ok"]  # a fence is removed
    r = jsb.check_output('{"e": "nope"}', schema)
    assert r["json_ok"] and not r["schema_ok"] and "email" in r["check_error"]
    r = jsb.check_output('{"e": "a@b.c"', schema)
    assert not r["json_ok"] and not r["schema_ok"]
    assert not jsb.check_output("{}", schema)["schema_ok"]


def _rec(task, engine, subset="S", **kw):
    return {"task": task, "engine": engine, "subset": subset, **kw}


def test_aggregate_follows_the_paper_definitions():
    ok = dict(status="ok", schema_ok=True, json_ok=True, compile_s=0.1, ttft_s=1.0, tpot_ms=10.0, tokens=5)
    recs = [
        _rec("t1", "unconstrained", **dict(ok, compile_s=None, schema_ok=False)),
        _rec("t2", "unconstrained", **dict(ok, compile_s=None)),
        _rec("t3", "unconstrained", status="prompt_too_long"),
        _rec("t1", "structgen", **dict(ok, tpot_ms=8.0, forced_tokens=2)),
        _rec("t2", "structgen", **dict(ok, tpot_ms=6.0, forced_tokens=1)),
        _rec("t3", "structgen", status="prompt_too_long"),
        _rec("t1", "peer", **ok),
        _rec("t2", "peer", status="unsupported"),
        _rec("t3", "peer", status="prompt_too_long"),
    ]
    agg = jsb.aggregate(recs, ["unconstrained", "structgen", "peer"], ["S"])
    s, p, u = agg["S"]["structgen"], agg["S"]["peer"], agg["S"]["unconstrained"]
    assert (s["schemas"], s["declared"], s["empirical"], s["compliance"]) == (2, 2, 2, 1.0)
    assert (p["declared_cov"], p["empirical_cov"], p["compliance"]) == (0.5, 0.5, 1.0)
    assert (u["declared_cov"], u["empirical_cov"]) == (1.0, 0.5)
    assert s["common"] == 1 and s["tpot_ms"] == 8.0  # medians over t1 only: the schema every engine completed
    assert s["own_tpot_ms"] == 7.0 and s["ff_share"] == pytest.approx(3 / 10)
    assert s["prompt_too_long"] == 1
    assert agg["ALL"]["structgen"]["empirical"] == 2
    lines = jsb.targets(agg, ["unconstrained", "structgen", "peer"], ["S"])
    assert "met" in lines[0] and "TPOT 8.0 ms" in lines[0]
    # a peer killed while compiling did not compile; one killed while generating did
    assert not jsb.compiled({"status": "timeout", "stage": "compile"})
    assert jsb.compiled({"status": "timeout", "stage": "generate"})


def test_shards_and_records_merge(tmp_path):
    assert genrun.parse_shard("1/4") == (1, 4) and genrun.parse_shard(None) == (0, 1)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(SystemExit):
            genrun.parse_shard(bad)
    (tmp_path / "results-shard0of2.jsonl").write_text(
        json.dumps(_rec("a", "e", ok=False)) + "\n" + json.dumps(_rec("a", "e", ok=True)) + "\n{cut")
    (tmp_path / "results-shard1of2.jsonl").write_text(json.dumps(_rec("b", "e")) + "\n")
    recs = genrun.load_records(tmp_path)
    assert sorted(r["task"] for r in recs) == ["a", "b"]
    assert [r["ok"] for r in recs if r["task"] == "a"] == [True]  # the last record of a pair wins


def test_last_letters_data_and_scoring():
    ex = llc.make_examples(20, 4, seed=3)
    assert ex == llc.make_examples(20, 4, seed=3) and ex != llc.make_examples(20, 4, seed=4)
    for x in ex:
        words = x["words"].split()
        assert len(words) == 4 and len(set(words)) == 4
        assert x["target"] == "".join(w[-1] for w in words).lower()
    for _, reasoning, answer in llc.SHOTS:  # the worked examples are right
        assert reasoning.endswith(f'"{answer}".')
    assert llc.read_answer('{"reasoning": "r", "answer": "ab"}') == ("ab", True)
    assert llc.read_answer('Sure! {"reasoning": "r", "answer": "ab"} done') == ("ab", False)
    assert llc.read_answer("no idea") == (None, False)
    assert llc.normalise(' "AB". ') == "ab"
    lo, hi = llc.wilson(5, 10)
    assert lo < 0.5 < hi and llc.wilson(0, 0) is None


# --------------------------------------------------------------------------- smoke run
SMOKE_SCHEMAS = ["Github_trivial---o25183", "Github_trivial---o77414", "Glaiveai2K---calculate_area_d4988fd1"]


@pytest.mark.hf
def test_jsonschemabench_smoke_tiny_model(tmp_path):
    assert (DATA / "jsonschemabench" / "index.csv").exists(), f"benchmark data not found at {DATA} (set STRUCTGEN_DATA)"
    out = tmp_path / "jsb"
    common = ["--model", "tiny-random", "--schemas", ",".join(SMOKE_SCHEMAS), "--engines",
              "unconstrained,structgen,structgen-lp", "--max-new-tokens", "48", "--out", str(out),
              "--no-progress", "--no-plots", "--data", str(DATA)]
    for shard in ("0/2", "1/2"):  # two shards into one folder: the report merges them
        assert jsb.run_jsonschemabench(common + ["--shard", shard]) == 0
    recs = genrun.load_records(out)
    assert {(r["task"], r["engine"]) for r in recs} == {(s, e) for s in SMOKE_SCHEMAS
                                                        for e in ("unconstrained", "structgen", "structgen-lp")}
    for r in recs:
        assert r["status"] == "ok", r
        assert r["subset"] in ("Github_trivial", "Glaiveai2K")
        assert r["tokens"] <= 48 and r["ttft_s"] >= r["first_token_s"] > 0
    # structgen's own loop never ends an output short: with budget-safe closing every one is valid
    assert all(r["schema_ok"] for r in recs if r["engine"] == "structgen")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aggregate"]["ALL"]["structgen"]["compliance"] == 1.0
    report = (out / "report.md").read_text()
    assert "declared / empirical / compliance" in report and "Glaiveai2K (1)" in report
    assert len(genrun.load_meta(out)) == 2
    # resuming a finished run does nothing and keeps every record
    assert jsb.run_jsonschemabench(common + ["--shard", "0/2", "--resume"]) == 0
    assert len(genrun.load_records(out)) == len(recs)
    with pytest.raises(SystemExit):  # an existing results file is never overwritten without --resume
        jsb.run_jsonschemabench(common + ["--shard", "0/2"])


@pytest.mark.hf
def test_last_letters_smoke_tiny_model(tmp_path):
    out = tmp_path / "llc"
    assert llc.run_last_letters(["--model", "tiny-random", "--n", "2", "--engines", "unconstrained,structgen",
                                 "--max-new-tokens", "24", "--out", str(out), "--no-progress"]) == 0
    recs = genrun.load_records(out)
    assert len(recs) == 4
    for r in recs:
        if r["engine"] == "structgen":  # the constrained output is always the JSON format
            assert r["format_ok"], r
            assert json.loads(r["text"]).keys() == {"reasoning", "answer"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["structgen"]["format_ok"] == 2
