"""The `structgen` command line."""

from __future__ import annotations

import json

import pytest

from structgen.cli import main

pytestmark = pytest.mark.hf


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_valid_and_invalid(capsys):
    code, out, _ = run(capsys, "check", "--grammar", "json", "--tokenizer", "gpt2",
                       "--text", '{"a": [1, 2.5, "x"]}', "--json")
    report = json.loads(out)
    assert code == 0 and report["summary"]["accepted"] and report["summary"]["eos_allowed"]
    assert all(t["allowed"] for t in report["tokens"])
    code, out, _ = run(capsys, "check", "--grammar", "json", "--tokenizer", "gpt2", "--text", '{"a": 1 2}')
    assert code == 1 and "BLOCKED" in out and "INVALID" in out
    code, out, _ = run(capsys, "check", "--regex", r"\d{3}-\d{4}", "--tokenizer", "gpt2", "--text", "555-12")
    assert code == 1 and "INCOMPLETE" in out


def test_errors_are_reported_not_raised(capsys, tmp_path):
    bad = tmp_path / "bad.lark"
    bad.write_text('start: "a" ]\n')
    code, _, err = run(capsys, "check", "--grammar", str(bad), "--tokenizer", "gpt2", "--text", "a")
    assert code == 2 and "line 1, column 12" in err
    code, _, err = run(capsys, "check", "--grammar", "no_such_grammar", "--tokenizer", "gpt2", "--text", "a")
    assert code == 2 and "available" in err


def test_list_grammars(capsys):
    code, out, _ = run(capsys, "grammars")
    assert code == 0 and {"json", "sql_select", "arithmetic", "minilang", "csv"} <= set(out.split())
