"""JSON-Schema-Test-Suite runner: every group (one schema + labelled instances) of
``tests/draft2020-12`` and ``tests/draft7`` compiled by each engine; each instance replayed
token by token.

* A *valid* instance must be accepted in both whitespace styles (compact
  ``json.dumps(x, separators=(",", ":"))`` and default ``json.dumps(x)``); a rejection is
  **over-constrained**.
* An *invalid* instance (compact) must be blocked (a token outside the mask, or no EOS at
  the end); an accepted one is **under-constrained**.
* A group **passes** when it compiles and every instance is handled correctly.

``$ref`` to ``http://localhost:1234/<path>`` resolves to ``remotes/<path>`` (loaded from
disk into the ``registry`` structgen gets; the other engines take no registry).  The draft
metaschemas are not in the data: a group that references one and does not compile counts as
``unsupported`` (``needs metaschema``).  draft7 schemas do not declare ``$schema``; the
runner adds ``"$schema": "http://json-schema.org/draft-07/schema#"`` to their root.

By default only structgen runs, over ``Vocabulary.byte_level()`` (one token per byte, so
"accepted" is exact and fast).  ``--compare`` runs structgen, llguidance and xgrammar over one real
tokenizer (gpt2 unless ``--tokenizer`` says otherwise).

    python benchmarks/schema_test_suite.py                       # draft2020-12 + draft7, structgen
    python benchmarks/schema_test_suite.py --drafts draft2020-12 --compare
    python benchmarks/schema_test_suite.py --files ref,allOf --optional-format
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .engines import ALL_ENGINES, short
from .env import (REPO, default_data_dir, environment, loadavg, machine_line, results_dir, runner_parser,
                  versions_line)
from .replay import Replays, compile_timed, recording_runtime_errors, serialise
from .stats import fmt_pct, md_table

HANDLER = "structgen.bench.testsuite:run_task"
DRAFTS = ("draft2020-12", "draft7")
DRAFT_URI = {"draft7": "http://json-schema.org/draft-07/schema#",
             "draft2020-12": "https://json-schema.org/draft/2020-12/schema"}
DRAFT_NAME = {"draft7": "draft-07", "draft2020-12": "2020-12"}  # structgen's default_draft
REMOTE_BASE = "http://localhost:1234/"
METASCHEMA_HOSTS = ("http://json-schema.org/", "https://json-schema.org/")


def suite_dir(data: Path) -> Path:
    for cand in (data / "json-schema-test-suite", data):
        if (cand / "tests").is_dir():
            return cand
    raise SystemExit(f"no JSON-Schema-Test-Suite under {data} (expected json-schema-test-suite/tests; "
                     "set --data or STRUCTGEN_DATA)")


def list_files(suite: Path, drafts, optional_format: bool, only: list[str] | None) -> list[tuple[str, str]]:
    """[(draft, relative path without .json)] e.g. ("draft2020-12", "ref"), (.., "optional/format/date")."""
    out = []
    for d in drafts:
        base = suite / "tests" / d
        files = sorted(p for p in base.glob("*.json"))
        if optional_format:
            files += sorted((base / "optional" / "format").glob("*.json"))
        for p in files:
            rel = p.relative_to(base).with_suffix("").as_posix()
            if only and rel not in only and p.stem not in only:
                continue
            out.append((d, rel))
    return out


def load_remotes(suite: Path) -> dict:
    reg = {}
    base = suite / "remotes"
    for p in sorted(base.rglob("*.json")):
        try:
            reg[REMOTE_BASE + p.relative_to(base).as_posix()] = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            pass
    return reg


def _refs(schema, keys=("$ref", "$dynamicRef", "$recursiveRef")):
    stack = [schema]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            for k, v in x.items():
                if k in keys and isinstance(v, str):
                    yield v
                elif k not in ("const", "enum", "default", "examples"):
                    stack.append(v)
        elif isinstance(x, list):
            stack.extend(x)


def needs(schema, registry: dict | None = None) -> dict:
    """Does the group reference a metaschema or a remote (directly or through a remote)?"""
    meta = remote = False
    seen = set()
    todo = [schema]
    while todo:
        for ref in _refs(todo.pop()):
            if ref.startswith(METASCHEMA_HOSTS):
                meta = True
            elif ref.startswith(REMOTE_BASE):
                remote = True
                doc = ref.split("#", 1)[0]
                if registry and doc in registry and doc not in seen:
                    seen.add(doc)
                    todo.append(registry[doc])
    return {"metaschema": meta, "remote": remote}


def with_draft(schema, draft: str):
    if isinstance(schema, dict) and "$schema" not in schema and draft in DRAFT_URI:
        return dict({"$schema": DRAFT_URI[draft]}, **schema)
    return schema


# --------------------------------------------------------------------------- worker side
def run_task(task: dict, ctx) -> None:
    suite = Path(task["suite"])
    key = (task["draft"], task["file"])
    cache = ctx.cache
    if "registry" not in cache:
        cache["registry"] = load_remotes(suite)
    if cache.get("file_key") != key:
        cache["file_key"] = key
        cache["file"] = json.loads((suite / "tests" / task["draft"] / (task["file"] + ".json")).read_text("utf-8"))
    group = cache["file"][task["group"]]
    registry = cache["registry"]
    schema = with_draft(group["schema"], task["draft"])
    need = needs(group["schema"], registry)
    ascii_ = bool(ctx.cfg.get("ensure_ascii"))
    for e in task["engines"]:
        eng = ctx.engine(e)
        if eng is None:
            continue
        tok = ctx.tok
        items = []
        for i, t in enumerate(group["tests"]):
            styles = ("compact", "default") if t["valid"] else ("compact",)
            texts = {s: serialise(t["data"], s, ascii_) for s in styles}
            if t["valid"] and texts["default"] == texts["compact"]:
                texts.pop("default")
            items.append((i, t, {s: list(tok.encode(x, add_special_tokens=False)) for s, x in texts.items()}))
        ctx.begin(task["id"], e)
        t0 = time.monotonic()
        try:
            rec = run_group(eng, schema, items, tok, registry if e == "structgen" else None,
                            DRAFT_NAME.get(task["draft"]), task.get("options"))
        except MemoryError:
            ctx.tainted = True
            rec = {"status": "oom", "error": "MemoryError (address-space limit)"}
        rec["wall_s"] = round(time.monotonic() - t0, 4)
        rec["needs_metaschema"] = need["metaschema"]
        rec["needs_remote"] = need["remote"]
        if need["metaschema"] and rec["status"] in ("compile_error", "unsupported"):
            rec["status"] = "unsupported"
            rec["error"] = "needs metaschema: " + rec.get("error", "")
        ctx.result(task["id"], e, rec)
        if ctx.tainted:
            return


def run_group(eng, schema, items, tok, registry, draft=None, options=None) -> dict:
    m, rec = compile_timed(eng, schema, registry=registry, draft=draft, options=options)
    insts = []
    if m is None:
        rec.update(instances=[], correct=0, over=0, under=0, passing=False, n_instances=len(items))
        return rec
    replay = Replays(eng, m, tok)
    with recording_runtime_errors(rec):
        for i, t, ids_by_style in items:
            res = {"i": i, "valid": bool(t["valid"])}
            accepted = {}
            for style, ids in ids_by_style.items():
                r = replay(ids)
                accepted[style] = r["ok"]
                if not r["ok"] and t["valid"]:
                    res.setdefault("fail", dict(r["fail"], style=style))
            res["accepted"] = accepted
            res["correct"] = all(accepted.values()) if t["valid"] else not accepted["compact"]
            insts.append(res)
    rec["instances"] = insts
    rec["n_instances"] = len(items)
    rec["correct"] = sum(1 for x in insts if x["correct"])
    rec["over"] = sum(1 for x in insts if x["valid"] and not x["correct"])
    rec["under"] = sum(1 for x in insts if not x["valid"] and not x["correct"])
    rec["passing"] = rec["status"] == "ok" and rec["correct"] == len(items)
    return rec


# --------------------------------------------------------------------------- report
def aggregate(records: list[dict]) -> dict:
    out: dict = {}
    for r in records:
        for key in (f"{r['draft']}|{r['file']}|{r['engine']}", f"{r['draft']}|ALL|{r['engine']}"):
            a = out.setdefault(key, {"draft": r["draft"], "file": key.split("|")[1], "engine": r["engine"],
                                     "groups": 0, "passing": 0, "instances": 0, "correct": 0, "over": 0,
                                     "under": 0, "compile_error": 0, "unsupported": 0, "needs_metaschema": 0,
                                     "timeout": 0, "oom": 0, "crash": 0, "runtime_error": 0, "internal": 0})
            a["groups"] += 1
            a["passing"] += bool(r.get("passing"))
            a["instances"] += r.get("n_instances", 0)
            a["correct"] += r.get("correct", 0)
            a["over"] += r.get("over", 0)
            a["under"] += r.get("under", 0)
            if r["status"] in a:
                a[r["status"]] += 1
            a["needs_metaschema"] += bool(r.get("needs_metaschema") and r["status"] == "unsupported")
            a["internal"] += bool(r.get("internal"))
    return out


def report_md(summary: dict, records: list[dict]) -> str:
    env = summary["environment"]
    engines = summary["engines"]
    agg = summary["aggregate"]
    p = summary["protocol"]
    L = [f"# JSON-Schema-Test-Suite ({summary['started']})\n",
         f"- command: `{summary['command']}`",
         f"- machine: {machine_line(env)}",
         f"- versions: {versions_line(env)}",
         f"- tokenizer: `{p['tokenizer']}`; engines: {', '.join(engines)}; per (group, engine) limit "
         f"{p['timeout_s']:.0f} s; optional/format {'included' if p['optional_format'] else 'not included'}; "
         f"structgen format_assertion {p.get('format_assertion')} (auto: off for required files, on for "
         f"optional/format); structgen options {json.dumps(p.get('structgen_options') or {})}; "
         f"non-ASCII {'escaped' if p['ensure_ascii'] else 'raw UTF-8'}",
         "- remotes: `http://localhost:1234/<path>` -> `remotes/<path>`, given to structgen as `registry=` "
         "(other engines take no registry); draft7 roots get `$schema` draft-07 (structgen also gets "
         "`default_draft`)",
         f"- wall time {summary.get('wall_s', 0):.0f} s"]
    for n in summary.get("notes", []):
        L.append(f"- note: {n}")
    L.append("\n`groups` = groups passing / total (compiled, every valid instance accepted in both whitespace "
             "styles, every invalid one blocked).  `over` = valid instances rejected (over-constrained), "
             "`under` = invalid instances accepted (under-constrained).  `not compiled` = compile errors + "
             "unsupported (`meta` of which need a draft metaschema) + timeouts/crashes.\n")
    for draft in summary["drafts"]:
        files = sorted({r["file"] for r in records if r["draft"] == draft})
        if not files:
            continue
        L.append(f"## {draft}\n")
        header = ["file"]
        for e in engines:
            header += [f"{e} groups", f"{e} instances", f"{e} over / under / not compiled"]
        rows = []
        for f in files + ["ALL"]:
            row = ["**all**" if f == "ALL" else f]
            for e in engines:
                a = agg.get(f"{draft}|{f}|{e}")
                if a is None:
                    row += ["–"] * 3
                    continue
                nc = a["compile_error"] + a["unsupported"] + a["timeout"] + a["oom"] + a["crash"]
                nc_txt = f"{nc}" + (f" (meta {a['needs_metaschema']})" if a["needs_metaschema"] else "")
                row += [f"{a['passing']}/{a['groups']}", f"{a['correct']}/{a['instances']}",
                        f"{a['over']} / {a['under']} / {nc_txt}"]
            rows.append(row)
        L.append(md_table(header, rows))
        L.append("")
        tot = []
        for e in engines:
            a = agg.get(f"{draft}|ALL|{e}")
            if a:
                tot.append([e, f"{a['passing']}/{a['groups']} ({fmt_pct(a['passing'], a['groups'])})",
                            f"{a['correct']}/{a['instances']} ({fmt_pct(a['correct'], a['instances'])})",
                            a["over"], a["under"], a["compile_error"], a["unsupported"], a["needs_metaschema"],
                            a["timeout"] + a["oom"] + a["crash"], a["runtime_error"], a["internal"]])
        L.append(f"### {draft} overall\n")
        L.append(md_table(["engine", "groups passing", "instances correct", "over-constrained", "under-constrained",
                           "compile errors", "unsupported", "of which need metaschema", "timeout/oom/crash",
                           "runtime errors", "internal errors"], tot))
        L.append("")
    L.append(problems_md(records))
    return "\n".join(L) + "\n"


def problems_md(records: list[dict], limit: int = 150) -> str:
    sg = [r for r in records if r["engine"] == "structgen"]
    if not sg:
        return ""
    L = ["## structgen: groups not passing\n"]
    n = 0
    for r in sorted(sg, key=lambda r: (r["draft"], r["file"], r["group"])):
        if r.get("passing"):
            continue
        n += 1
        if n > limit:
            continue
        head = f"- {r['draft']}/{r['file']} #{r['group']} “{r['description']}”: "
        if r["status"] != "ok":
            L.append(head + f"**{r['status']}**{' (internal)' if r.get('internal') else ''}: "
                     f"{short(r.get('error', ''), 200)}")
            continue
        bad = [x for x in r.get("instances", []) if not x["correct"]]
        parts = []
        for x in bad[:4]:
            if x["valid"]:
                f = x.get("fail", {})
                parts.append(f"valid #{x['i']} “{x.get('description', '')}” rejected ({f.get('style')}, token "
                             f"#{f.get('pos')} {f.get('token')!r}: {f.get('why')})")
            else:
                parts.append(f"invalid #{x['i']} “{x.get('description', '')}” accepted")
        L.append(head + "; ".join(parts) + (f"; … {len(bad) - 4} more" if len(bad) > 4 else ""))
    if n > limit:
        L.append(f"- … {n - limit} more in results.jsonl")
    if n == 0:
        L.append("(none)")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main
def parse_args(argv):
    ap = runner_parser("test-suite", __doc__)
    ap.add_argument("--data", type=Path, default=None,
                    help="data directory (default: $STRUCTGEN_DATA or ../shared/data from the repo root)")
    ap.add_argument("--drafts", default=",".join(DRAFTS), help=f"comma list (default {','.join(DRAFTS)})")
    ap.add_argument("--files", default=None,
                    help="comma list of test files (stem like 'ref' or 'optional/format/date'; default: all required)")
    ap.add_argument("--optional-format", action="store_true", help="also run optional/format/*.json")
    ap.add_argument("--compare", action="store_true",
                    help="structgen, llguidance and xgrammar (those installed) side by side, all over one real "
                         "tokenizer (gpt2 by default)")
    ap.add_argument("--engines", default=None,
                    help=f"comma list of {','.join(ALL_ENGINES)} (default: structgen; with --compare "
                         "structgen,llguidance,xgrammar)")
    ap.add_argument("--tokenizer", default=None,
                    help="'bytes' (default without --compare: structgen's byte-level vocabulary) or a "
                         "structgen.vocab.known name (default with --compare: gpt2)")
    ap.add_argument("--format-assertion", choices=("auto", "on", "off"), default="auto",
                    help="structgen's format_assertion: auto (default) = off for the required files, where "
                         "`format` is an annotation, on for optional/format/*")
    ap.add_argument("--structgen-option", action="append", default=[], metavar="KEY=VALUE",
                    help="extra compile_json_schema option for structgen, repeatable (e.g. property_order=any)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=30.0, help="wall-time limit per (group, engine), s (default 30)")
    ap.add_argument("--memory-gb", type=float, default=8.0)
    ap.add_argument("--ensure-ascii", action="store_true", help="serialise non-ASCII as \\uXXXX (default raw UTF-8)")
    ap.add_argument("--out", type=Path, default=None, help="output dir (default benchmarks/results/test-suite-<ts>/)")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def run_schema_test_suite(argv=None) -> int:
    from .maskbench import parse_options, resolve_engines
    from .pool import Pool, RecordLog, logging_callbacks, run_interruptible

    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    command = "python benchmarks/schema_test_suite.py " + " ".join(argv)
    if args.engines:
        engines, notes = resolve_engines(args.engines)
    elif args.compare:  # outlines-core only on request (--engines): many groups time out
        engines, notes = resolve_engines("structgen,llguidance,xgrammar")
    else:
        engines, notes = resolve_engines("structgen")
    if not engines:
        print("\n".join(notes) or "no engine to run", file=sys.stderr)
        return 2
    tokenizer = args.tokenizer or ("gpt2" if args.compare or set(engines) - {"structgen"} else "bytes")
    if tokenizer in ("bytes", "byte", "byte-level") and set(engines) - {"structgen"}:
        raise SystemExit("only structgen runs over the byte-level vocabulary: give --tokenizer gpt2 (or --compare)")
    drafts = [d.strip() for d in args.drafts.split(",") if d.strip()]
    bad = [d for d in drafts if d not in DRAFTS]
    if bad:
        raise SystemExit(f"unknown draft(s) {', '.join(bad)} (choose from {', '.join(DRAFTS)})")
    suite = suite_dir(args.data or default_data_dir())
    only = [f.strip() for f in args.files.split(",")] if args.files else None
    files = list_files(suite, drafts, args.optional_format or bool(only and any("format/" in f for f in only)), only)
    if not files:
        print("no test files selected", file=sys.stderr)
        return 2
    tasks = []
    sg_options = parse_options(args.structgen_option)
    for draft, rel in files:
        groups = json.loads((suite / "tests" / draft / (rel + ".json")).read_text("utf-8"))
        fa = {"on": True, "off": False}.get(args.format_assertion, rel.startswith("optional/format/"))
        for g in range(len(groups)):
            tasks.append({"options": {"format_assertion": fa},"id": f"{draft}/{rel}#{g}", "suite": str(suite), "draft": draft, "file": rel, "group": g,
                          "description": groups[g].get("description", ""),
                          "test_descriptions": [t.get("description", "") for t in groups[g]["tests"]],
                          "engines": list(engines)})
    started = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or results_dir() / f"test-suite-{started}"
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    print(f"# JSON-Schema-Test-Suite {started}: {len(files)} files, {len(tasks)} groups x {len(engines)} engine(s) "
          f"({', '.join(engines)}), tokenizer {tokenizer} -> {out}", flush=True)
    for n in notes:
        print(f"note: {n}", flush=True)
    records: list[dict] = []
    log = RecordLog(out / "results.jsonl", engines, len(tasks) * len(engines), progress=not args.no_progress,
                    good="passing", every=10**9, append=False, unit="group")

    def line_for(task, engine, rec):
        line = {"draft": task["draft"], "file": task["file"], "group": task["group"],
                "description": task["description"], "engine": engine, "tokenizer": tokenizer}
        line.update(rec)
        for x in line.get("instances", []):
            x["description"] = task["test_descriptions"][x["i"]]
        if "n_instances" not in line:
            line["n_instances"] = len(task["test_descriptions"])
            line.setdefault("correct", 0)
            line.setdefault("over", 0)
            line.setdefault("under", 0)
            line.setdefault("passing", False)
        return line

    setup_info: dict = {}
    cfg = {"handler": HANDLER, "tokenizer": tokenizer, "memory_limit": int(args.memory_gb * 2**30),
           "ensure_ascii": args.ensure_ascii, "structgen_disk_cache": False,
           "engine_opts": {"structgen_options": sg_options}}
    pool = Pool(args.workers, cfg, log_dir=out / "logs", timeout=args.timeout,
                **logging_callbacks(log, notes, setup_info, line_for, records))
    t0 = time.perf_counter()
    run_interruptible(pool, tasks, notes=notes, interrupted_note="interrupted",
                      close=[log.close])
    env["loadavg_end"] = loadavg()
    for e, why in pool.unavailable.items():
        notes.append(f"engine {e} unavailable: {why}")
    records.sort(key=lambda r: (drafts.index(r["draft"]), r["file"], r["group"], engines.index(r["engine"])
                                if r["engine"] in engines else 99))
    summary = {"started": started, "command": command, "environment": env, "engines": engines, "drafts": drafts,
               "protocol": {"tokenizer": tokenizer, "timeout_s": args.timeout, "workers": args.workers,
                            "optional_format": args.optional_format, "ensure_ascii": args.ensure_ascii,
                            "format_assertion": args.format_assertion, "structgen_options": sg_options,
                            "files": [f"{d}/{r}" for d, r in files], "suite": str(suite)},
               "setup": setup_info, "notes": list(dict.fromkeys(notes)), "wall_s": time.perf_counter() - t0,
               "aggregate": aggregate(records)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=str))
    md = report_md(summary, records)
    (out / "report.md").write_text(md, encoding="utf-8")
    rows = []
    for d in drafts:
        for e in engines:
            a = summary["aggregate"].get(f"{d}|ALL|{e}")
            if a:
                rows.append([d, e, f"{a['passing']}/{a['groups']}", f"{a['correct']}/{a['instances']}", a["over"],
                             a["under"], a["compile_error"] + a["unsupported"],
                             a["timeout"] + a["oom"] + a["crash"] + a["runtime_error"]])
    print(md_table(["draft", "engine", "groups passing", "instances correct", "over", "under", "not compiled",
                    "timeout/crash/runtime"], rows))
    print(f"\nresults in {out.relative_to(REPO) if out.is_relative_to(REPO) else out}/")
    return 0


if __name__ == "__main__":
    sys.exit(run_schema_test_suite())
