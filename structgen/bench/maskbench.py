"""MaskBench runner: JSONSchemaBench schemas with labelled instances, replayed token by
token through structgen, llguidance, xgrammar and outlines-core.

For every schema file ``<data>/jsonschemabench/maskbench/data/*.json`` and every engine:

* **TTFM** (time to first mask) = compile + the first mask fill;
* every *valid* instance is serialised in both whitespace styles -- compact
  ``json.dumps(x, separators=(",", ":"))`` and default ``json.dumps(x)`` -- tokenised once
  with ``tok.encode(text, add_special_tokens=False)`` (the same ids for every engine) and
  replayed: each mask fill is timed (**TBM**, time between masks), each next token must be
  in the mask and accepted, and EOS must be allowed at the end.  A rejection is a
  **validation error**;
* every *invalid* instance (compact style) is replayed the same way and must be *blocked*:
  some token outside the mask, or no EOS at the end.  An accepted one is an
  **invalidation error**; it is **format-only** when the instance validates with
  ``jsonschema`` once ``format`` is not asserted;
* a schema **passes** when it compiled, every valid instance was accepted (both styles) and
  every invalid one blocked.

Statuses per (schema, engine): ``ok``, ``compile_error``, ``unsupported``, ``timeout``,
``oom``, ``crash`` (worker died), ``runtime_error`` (an exception while computing masks).

    python benchmarks/maskbench.py --limit 30 --workers 2
    python -m structgen.cli bench maskbench --subsets Github_easy,Kubernetes --limit 10
    python benchmarks/maskbench.py --resume --out benchmarks/results/maskbench-20260101-120000
    python benchmarks/maskbench.py --report-only benchmarks/results/maskbench-20260101-120000

Writes ``results.jsonl`` (one line per schema x engine, all TBMs in ns), ``summary.json``,
``report.md`` and ``tbm_cdf.png``, ``ttfm_cdf.png``, ``pass_rate.png`` into ``--out``.
"""

from __future__ import annotations

import csv
import json
import random
import sys
import time
from pathlib import Path

from .engines import ALL_ENGINES, installed, short
from .figures import cdf_figure, save_figure
from .env import (REPO, default_data_dir, environment, loadavg, machine_line, print_header, results_dir,
                  runner_parser, versions_line)
from .replay import Replays, compile_timed, recording_runtime_errors, serialise
from .stats import dist, fmt, fmt_pct, fmt_ratio, geomean, md_table, ratio

HANDLER = "structgen.bench.maskbench:run_task"
FAILED_STATUSES = ("compile_error", "unsupported", "timeout", "oom", "crash", "runtime_error")


# --------------------------------------------------------------------------- schema files
def maskbench_dir(data: Path) -> Path:
    for cand in (data / "jsonschemabench" / "maskbench" / "data", data / "maskbench" / "data", data):
        if cand.is_dir() and any(cand.glob("*.json")):
            return cand
    raise SystemExit(f"no MaskBench schema files under {data} (expected jsonschemabench/maskbench/data/*.json; "
                     "set --data or STRUCTGEN_DATA)")


def subset_of(name: str) -> str:
    if "---" in name:
        return name.split("---", 1)[0]
    stem = name[:-5] if name.endswith(".json") else name
    head, _, tail = stem.rpartition("_")
    return head if tail.isdigit() and head else stem


def list_schemas(data: Path) -> list[dict]:
    """[{file, path, subset}] sorted by file name (subset from ``index.csv`` when present)."""
    d = maskbench_dir(data)
    subsets: dict[str, str] = {}
    index = d.parent.parent / "index.csv"
    if index.exists():
        with open(index, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                subsets[Path(row["file"]).name] = row["subset"]
    return [{"file": p.name, "path": str(p), "subset": subsets.get(p.name) or subset_of(p.name)}
            for p in sorted(d.glob("*.json"))]


def select(schemas: list[dict], subsets: list[str] | None, limit: int | None, seed: int | None,
           names: list[str] | None = None) -> list[dict]:
    if names:
        want = {n if n.endswith(".json") else n + ".json" for n in names}
        return [s for s in schemas if s["file"] in want]
    by: dict[str, list[dict]] = {}
    for s in schemas:
        by.setdefault(s["subset"], []).append(s)
    if subsets:
        unknown = [x for x in subsets if x not in by]
        if unknown:
            raise SystemExit(f"unknown subset(s) {', '.join(unknown)}; known: {', '.join(sorted(by))}")
    out = []
    for sub in sorted(by):
        if subsets and sub not in subsets:
            continue
        items = by[sub]
        if limit is not None and len(items) > limit:
            if seed is None:
                items = items[:limit]
            else:  # a seeded shuffle, then the first N: a smaller --limit picks a subset of a larger one
                shuffled = list(items)
                random.Random(f"{seed}:{sub}").shuffle(shuffled)
                items = sorted(shuffled[:limit], key=lambda s: s["file"])
        out.extend(items)
    return out


# --------------------------------------------------------------------------- worker side
def format_only_flags(schema, instances: list) -> list[bool | None]:
    """For each (invalid-labelled) instance: True when it validates once ``format`` is not
    asserted (so it is invalid only because of ``format``); None if jsonschema fails."""
    try:
        import jsonschema
        from jsonschema import validators

        cls = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        v = cls(schema)  # no format_checker: format is an annotation
    except Exception:  # noqa: BLE001
        return [None] * len(instances)
    out: list[bool | None] = []
    for x in instances:
        try:
            out.append(bool(v.is_valid(x)))
        except Exception:  # noqa: BLE001
            out.append(None)
    return out


def run_task(task: dict, ctx) -> None:
    """Worker: one schema file, the engines in ``task['engines']``."""
    doc = json.loads(Path(task["path"]).read_text(encoding="utf-8"))
    schema = doc.get("schema")
    tests = doc.get("tests") or []
    ascii_ = bool(ctx.cfg.get("ensure_ascii"))
    ctx.begin(task["id"], "__prep__")
    tok = None
    valid, invalid = [], []
    for i, t in enumerate(tests):
        (valid if t.get("valid") else invalid).append((i, t.get("data")))
    fo = format_only_flags(schema, [x for _, x in invalid]) if invalid else []
    engines = [e for e in task["engines"]]
    for e in engines:
        eng = ctx.engine(e)  # setup (not timed, own limit) on first use
        if eng is None:
            continue
        if tok is None:
            tok = ctx.tok
            vitems = []
            for i, x in valid:
                for style in ("compact", "default"):
                    text = serialise(x, style, ascii_)
                    vitems.append((i, style, list(tok.encode(text, add_special_tokens=False)), text))
            iitems = []
            for (i, x), f in zip(invalid, fo):
                text = serialise(x, "compact", ascii_)
                iitems.append((i, list(tok.encode(text, add_special_tokens=False)), f, text))
            roundtrip = sum(tok.decode(ids) != text for _, _, ids, text in vitems) + \
                sum(tok.decode(ids) != text for _, ids, _, text in iitems)
        ctx.begin(task["id"], e)
        t0 = time.monotonic()
        try:
            rec = run_schema_engine(eng, schema, vitems, iitems, tok,
                                    on_compiled=lambda c: ctx.send(t="stage", task=task["id"], engine=e,
                                                                   stage="replay", info=c))
        except MemoryError:
            ctx.tainted = True
            rec = {"status": "oom", "error": "MemoryError (address-space limit)"}
        rec["wall_s"] = round(time.monotonic() - t0, 4)
        rec["n_valid"], rec["n_invalid"] = len(valid), len(invalid)
        if roundtrip:
            rec["roundtrip_failures"] = roundtrip
        ctx.result(task["id"], e, rec)
        if ctx.tainted:
            return


def run_schema_engine(eng, schema, vitems, iitems, tok, on_compiled=None) -> dict:
    m, rec = compile_timed(eng, schema)
    if m is None:
        return rec
    if on_compiled is not None:
        on_compiled(dict(rec))
    replay = Replays(eng, m, tok)
    valid_out, invalid_out = [], []
    mismatch = 0
    with recording_runtime_errors(rec):
        for i, style, ids, _text in vitems:
            r = replay(ids)
            mismatch += bool(r.pop("can_end_mismatch", False))
            valid_out.append({"i": i, "style": style, **r})
        for i, ids, f, _text in iitems:
            r = replay(ids)
            mismatch += bool(r.pop("can_end_mismatch", False))
            item = {"i": i, "blocked": not r["ok"], "format_only": f, "tokens": r["tokens"], "tbm_ns": r["tbm_ns"]}
            if "fail" in r:
                item["at"] = r["fail"]["pos"]
                item["why"] = r["fail"]["why"]
            invalid_out.append(item)
    rec["valid"] = valid_out
    rec["invalid"] = invalid_out
    bad_valid = sorted({v["i"] for v in valid_out if not v["ok"]})
    accepted = [v for v in invalid_out if not v["blocked"]]
    rec["validation_errors"] = len(bad_valid)
    rec["invalidation_errors"] = len(accepted)
    rec["invalidation_errors_format_only"] = sum(1 for v in accepted if v["format_only"])
    if mismatch:
        rec["can_end_mismatch"] = mismatch
    rec["passing"] = rec["status"] == "ok" and not bad_valid and not accepted
    return rec


# --------------------------------------------------------------------------- aggregation
def load_records(path: Path) -> list[dict]:
    recs = []
    if not path.exists():
        return recs
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a line cut by a kill: the schema runs again with --resume
    # the last record of each (schema, engine) wins
    last = {}
    for r in recs:
        last[(r["schema"], r["engine"])] = r
    return list(last.values())


def valid_tbms(r: dict) -> list[int]:
    return [t for v in r.get("valid", ()) for t in v["tbm_ns"]]


def aggregate(records: list[dict], engines: list[str]) -> dict:
    """Per (subset, engine) and per engine over all subsets."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["subset"], r["engine"]), []).append(r)
        groups.setdefault(("ALL", r["engine"]), []).append(r)
    out = {}
    for (sub, eng), rs in groups.items():
        st = {s: sum(1 for r in rs if r["status"] == s) for s in ("ok",) + FAILED_STATUSES}
        ttfm = [r["ttfm_ms"] for r in rs if r.get("ttfm_ms") is not None]
        tbm = [t for r in rs for t in valid_tbms(r)]
        n_valid = sum(r.get("n_valid", 0) for r in rs)
        n_invalid = sum(r.get("n_invalid", 0) for r in rs)
        out[f"{sub}|{eng}"] = {
            "subset": sub, "engine": eng, "schemas": len(rs),
            "passing": sum(1 for r in rs if r.get("passing")),
            "passing_format_excused": sum(
                1 for r in rs if r["status"] == "ok" and not r.get("validation_errors")
                and r.get("invalidation_errors", 0) == r.get("invalidation_errors_format_only", 0)),
            "status": st,
            "valid_instances": n_valid, "invalid_instances": n_invalid,
            "validation_errors": sum(r.get("validation_errors", 0) for r in rs),
            "schemas_with_validation_errors": sum(1 for r in rs if r.get("validation_errors")),
            "invalidation_errors": sum(r.get("invalidation_errors", 0) for r in rs),
            "invalidation_errors_format_only": sum(r.get("invalidation_errors_format_only", 0) for r in rs),
            "ttfm_ms": dist(ttfm, qs=(50, 90, 99)),
            "tbm_us": dist(tbm, 1e-3, qs=(50, 90, 99, 99.9)),
            "compiled_valid_instances": sum(r.get("n_valid", 0) for r in rs if r["status"] == "ok"),
        }
    return out


def compare(records: list[dict], a: str, b: str, subset: str | None = None) -> dict:
    """``a`` / ``b`` on what both did: TTFM over schemas both compiled, TBM over the
    (schema, instance, style) replays both accepted (the same token positions)."""
    by: dict[tuple[str, str], dict] = {}
    for r in records:
        if subset is None or r["subset"] == subset:
            by[(r["schema"], r["engine"])] = r
    schemas = sorted({s for s, _ in by})
    tt_a, tt_b, per_ratio = [], [], []
    tbm_a, tbm_b = [], []
    both_pass = a_only = b_only = both_seen = 0
    for s in schemas:
        ra, rb = by.get((s, a)), by.get((s, b))
        if ra is None or rb is None:
            continue
        both_seen += 1
        pa, pb = bool(ra.get("passing")), bool(rb.get("passing"))
        both_pass += pa and pb
        a_only += pa and not pb
        b_only += pb and not pa
        if ra.get("ttfm_ms") is not None and rb.get("ttfm_ms") is not None:
            tt_a.append(ra["ttfm_ms"])
            tt_b.append(rb["ttfm_ms"])
            per_ratio.append(ra["ttfm_ms"] / rb["ttfm_ms"] if rb["ttfm_ms"] > 0 else None)
        va = {(v["i"], v["style"]): v for v in ra.get("valid", ())}
        vb = {(v["i"], v["style"]): v for v in rb.get("valid", ())}
        for k, x in va.items():
            y = vb.get(k)
            if y is not None and x["ok"] and y["ok"]:
                # a replay whose first mask was the TTFM fill has one time fewer: align on the end
                n = min(len(x["tbm_ns"]), len(y["tbm_ns"]))
                tbm_a.extend(x["tbm_ns"][len(x["tbm_ns"]) - n:])
                tbm_b.extend(y["tbm_ns"][len(y["tbm_ns"]) - n:])
    da, db = dist(tbm_a, 1e-3), dist(tbm_b, 1e-3)
    ta, tb = dist(tt_a, qs=(50, 99)), dist(tt_b, qs=(50, 99))
    return {
        "a": a, "b": b, "subset": subset or "ALL", "schemas": both_seen,
        "both_pass": both_pass, "a_only_pass": a_only, "b_only_pass": b_only,
        "common_compiled": len(tt_a),
        "ttfm_p50_ratio": ratio(ta["p50"], tb["p50"]), "ttfm_p99_ratio": ratio(ta["p99"], tb["p99"]),
        "ttfm_geomean_ratio": geomean(per_ratio),
        "ttfm_p50_ms": [ta["p50"], tb["p50"]],
        "common_masks": da["n"],
        "tbm_mean_ratio": ratio(da["mean"], db["mean"]), "tbm_p50_ratio": ratio(da["p50"], db["p50"]),
        "tbm_p99_ratio": ratio(da["p99"], db["p99"]), "tbm_p99.9_ratio": ratio(da["p99.9"], db["p99.9"]),
        "tbm_mean_us": [da["mean"], db["mean"]], "tbm_p99_us": [da["p99"], db["p99"]],
    }


# --------------------------------------------------------------------------- report
def _engines_in(records, engines):
    seen = {r["engine"] for r in records}
    return [e for e in engines if e in seen] + sorted(seen - set(engines))


def report_md(summary: dict, records: list[dict]) -> str:
    env = summary["environment"]
    engines = summary["engines"]
    agg = summary["aggregate"]
    subsets = sorted({r["subset"] for r in records})
    L: list[str] = []
    L.append(f"# MaskBench: structgen vs other engines ({summary['started']})\n")
    L.append(f"- command: `{summary['command']}`")
    for r in summary.get("resumed") or []:
        L.append(f"- resumed {r['started']}: `{r['command']}` (load average {r.get('loadavg')})")
    L.append(f"- machine: {machine_line(env)}; load average at end {env.get('loadavg_end')}")
    L.append(f"- versions: {versions_line(env)}")
    p = summary["protocol"]
    L.append(f"- protocol: tokenizer `{p['tokenizer']}` (the same token ids for every engine), "
             f"{p['workers']} worker process(es), one compute thread each, per (schema, engine) wall-time "
             f"limit {p['timeout_s']:.0f} s"
             + "".join(f" ({e}: {t:.0f} s)" for e, t in (p.get("engine_timeouts_s") or {}).items())
             + f", address-space limit {p['memory_gb']} GB per worker; "
             f"valid instances replayed compact and default-style, invalid ones compact; "
             f"non-ASCII {'escaped (ensure_ascii)' if p['ensure_ascii'] else 'kept as UTF-8'}; "
             f"structgen disk cache {'on' if p['structgen_disk_cache'] else 'off'}"
             + ("; setup objects frozen out of full garbage collections (--gc-freeze)" if p.get("gc_freeze") else ""))
    setup = summary.get("setup", {})
    for e in [x for x in engines if x in setup] + [x for x in setup if x not in engines and x != "tokenizer"]:
        info = setup[e]
        L.append(f"- {e}: vocabulary setup {fmt(info.get('vocab_setup_s'), 2)} s, mask width "
                 f"{info.get('mask_width')}, eos {info.get('eos_ids')}, options {json.dumps(info.get('options'))}"
                 + (f", **warm-up problem: {info['warmup_problem']}**" if info.get("warmup_problem") else ""))
    L.append(f"- schemas: {summary['n_schemas']} ({', '.join(f'{s} {n}' for s, n in summary['per_subset'].items())})")
    L.append(f"- wall time {fmt(summary.get('wall_s'), 0)} s; worker restarts {summary.get('worker_restarts', 0)}")
    for n in summary.get("notes", []):
        L.append(f"- note: {n}")
    counts = {e: agg.get(f"ALL|{e}", {}).get("schemas", 0) for e in engines}
    if len(set(counts.values())) > 1:
        L.append("- note: **the engines ran on different numbers of schemas** ("
                 + ", ".join(f"{e} {n}" for e, n in counts.items())
                 + "): compare totals with care; the side-by-side tables use the schemas both ran")
    L.append("")
    L.append("TTFM = compile + first mask (ms).  TBM = one mask fill (µs), over the valid-instance replays "
             "(an engine's replays stop at its first rejected token).  `val. err` = valid instances rejected "
             "(in either whitespace style); `inval. err` = invalid instances accepted, `(fmt)` of which are "
             "invalid only because of `format`.  `pass (fmt ok)` also passes schemas whose only invalidation "
             "errors are format-only.\n")

    header = ["subset", "engine", "schemas", "pass", "pass %", "pass (fmt ok)", "compile err", "unsupported",
              "timeout", "oom", "crash", "val. err", "inval. err (fmt)", "TTFM p50", "TTFM p99",
              "TBM mean", "TBM p50", "TBM p99", "TBM p99.9", "TBM max", "masks"]

    def row(key, label):
        a = agg.get(key)
        if a is None:
            return None
        st = a["status"]
        return [label, a["engine"], a["schemas"], a["passing"], fmt_pct(a["passing"], a["schemas"]),
                a["passing_format_excused"], st["compile_error"], st["unsupported"], st["timeout"], st["oom"],
                st["crash"] + st["runtime_error"], a["validation_errors"],
                f"{a['invalidation_errors']} ({a['invalidation_errors_format_only']})",
                fmt(a["ttfm_ms"]["p50"], 2), fmt(a["ttfm_ms"]["p99"], 2), fmt(a["tbm_us"]["mean"]),
                fmt(a["tbm_us"]["p50"]), fmt(a["tbm_us"]["p99"]), fmt(a["tbm_us"]["p99.9"]),
                fmt(a["tbm_us"]["max"]), fmt(a["tbm_us"]["n"])]

    L.append("## Totals\n")
    L.append(md_table(header, [r for e in engines if (r := row(f"ALL|{e}", "**all**"))]))
    L.append("\n## Per subset\n")
    rows = []
    for s in subsets:
        for e in engines:
            r = row(f"{s}|{e}", s)
            if r:
                rows.append(r)
    L.append(md_table(header, rows))

    if "structgen" in engines:
        for other in [e for e in engines if e != "structgen"]:
            L.append(f"\n## Side by side: structgen / {other}\n")
            L.append("Over the schemas both engines ran.  Ratios < 1: structgen is faster.  TTFM over the schemas "
                     "both compiled; TBM over the replays both accepted (the same token positions).  `both / sg "
                     f"only / {other[:3]} only` count passing schemas.\n")
            hdr = ["subset", "schemas", f"pass sg / {other[:3]}", "both / sg only / " + other[:3] + " only",
                   "TTFM p50 sg / " + other[:3] + " (ms)", "TTFM p50 ratio", "TTFM geomean ratio",
                   "TBM mean sg / " + other[:3] + " (µs)", "TBM mean ratio", "TBM p99 ratio", "masks"]
            rows = []
            for s in subsets + [None]:
                c = compare(records, "structgen", other, s)
                if not c["schemas"]:
                    continue
                rows.append([s or "**all**", c["schemas"],
                             f"{c['both_pass'] + c['a_only_pass']} / {c['both_pass'] + c['b_only_pass']}",
                             f"{c['both_pass']} / {c['a_only_pass']} / {c['b_only_pass']}",
                             f"{fmt(c['ttfm_p50_ms'][0], 2)} / {fmt(c['ttfm_p50_ms'][1], 2)}",
                             fmt_ratio(c["ttfm_p50_ratio"]), fmt_ratio(c["ttfm_geomean_ratio"]),
                             f"{fmt(c['tbm_mean_us'][0])} / {fmt(c['tbm_mean_us'][1])}",
                             fmt_ratio(c["tbm_mean_ratio"]), fmt_ratio(c["tbm_p99_ratio"]), fmt(c["common_masks"])])
            L.append(md_table(hdr, rows))

    L.append("\n## Plots\n")
    for name, what in (("pass_rate.png", "passing schemas per subset"), ("ttfm_cdf.png", "TTFM CDF"),
                       ("tbm_cdf.png", "TBM CDF")):
        L.append(f"![{what}]({name})")
    L.append("")
    L.append(problems_md(records, engines))
    return "\n".join(L) + "\n"


def problems_md(records: list[dict], engines: list[str], limit: int = 60) -> str:
    """structgen's failures, instance by instance, plus where others pass and structgen does not."""
    L = ["## structgen problems\n"]
    sg = sorted((r for r in records if r["engine"] == "structgen"), key=lambda r: r["schema"])
    if not sg:
        return ""
    if all(r.get("passing") for r in sg):
        return "\n".join(L + [f"(none: structgen passes all {len(sg)} schemas)"]) + "\n"
    passed = {(r["schema"], r["engine"]) for r in records if r.get("passing")}

    def others_passing(schema):
        return [e for e in engines if e != "structgen" and (schema, e) in passed]

    sections = {
        "Internal errors (exceptions that are not structgen errors: likely bugs)":
            [r for r in sg if r.get("internal")],
        "Crashes, runtime errors, out of memory": [r for r in sg if r["status"] in ("crash", "runtime_error", "oom")],
        "Timeouts": [r for r in sg if r["status"] == "timeout"],
        "Compile errors": [r for r in sg if r["status"] == "compile_error" and not r.get("internal")],
        "Unsupported": [r for r in sg if r["status"] == "unsupported"],
    }
    for title, rs in sections.items():
        if not rs:
            continue
        L.append(f"### {title} ({len(rs)})\n")
        for r in rs[:limit]:
            o = others_passing(r["schema"])
            L.append(f"- `{r['schema']}`: {r['status']}: {short(r.get('error', ''), 220)}"
                     + (f" (passes with {', '.join(o)})" if o else ""))
        if len(rs) > limit:
            L.append(f"- … {len(rs) - limit} more in results.jsonl")
        L.append("")
    accepted_by: dict[tuple, list[str]] = {}
    for r in records:
        if r["engine"] != "structgen":
            for v in r.get("valid", ()):
                if v["ok"]:
                    accepted_by.setdefault((r["schema"], v["i"], v["style"]), []).append(r["engine"])
    val = [(r, v) for r in sg for v in r.get("valid", ()) if not v["ok"]]
    if val:
        L.append(f"### Validation errors: valid instances rejected ({len(val)} replays, "
                 f"{len({r['schema'] for r, _ in val})} schemas)\n")
        L.append("`accepted by` names the other engines that accepted the same tokens: a rejection that another "
                 "engine accepts is worth a look (a rejection they share is often an instance whose keys are not "
                 "in the schema's `properties` order).\n")
        for r, v in val[:limit]:
            f = v.get("fail", {})
            others = accepted_by.get((r["schema"], v["i"], v["style"]))
            L.append(f"- `{r['schema']}` instance {v['i']} ({v['style']}): token #{f.get('pos')} "
                     f"{f.get('token')!r} after …{f.get('prefix_tail')!r}: {f.get('why')}"
                     + (f" (accepted by {', '.join(others)})" if others else ""))
        if len(val) > limit:
            L.append(f"- … {len(val) - limit} more in results.jsonl")
        L.append("")
    inv = [(r, v) for r in sg for v in r.get("invalid", ()) if not v["blocked"]]
    if inv:
        nf = sum(1 for _, v in inv if v.get("format_only"))
        L.append(f"### Invalidation errors: invalid instances accepted ({len(inv)}, of which {nf} format-only)\n")
        for r, v in sorted(inv, key=lambda x: bool(x[1].get("format_only")))[:limit]:
            L.append(f"- `{r['schema']}` instance {v['i']}" + (" (format-only)" if v.get("format_only") else ""))
        if len(inv) > limit:
            L.append(f"- … {len(inv) - limit} more in results.jsonl")
        L.append("")
    mism = [r for r in sg if r.get("can_end_mismatch")]
    if mism:
        L.append(f"### can_terminate() disagreeing with the EOS bit ({len(mism)} schemas)\n")
        for r in mism[:limit]:
            L.append(f"- `{r['schema']}`: {r['can_end_mismatch']} replay end(s)")
        L.append("")
    return "\n".join(L)


ENGINE_COLORS = {"structgen": "#1f77b4", "llguidance": "#2ca02c", "xgrammar": "#d62728", "outlines-core": "#9467bd"}


def plots(out: Path, records: list[dict], engines: list[str]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except Exception as e:  # noqa: BLE001
        return [f"plots skipped: matplotlib not importable ({short(e, 100)})"]
    made = []
    tbm_us = {e: [x / 1e3 for r in records if r["engine"] == e for x in valid_tbms(r)] for e in engines}
    fig = cdf_figure([(t, len(t), f"{e} (n={len(t):,})", ENGINE_COLORS.get(e)) for e, t in tbm_us.items()],
                     xlabel="time per mask (µs, log)", ylabel="fraction of masks",
                     title="TBM: mask fill time, valid-instance replays")
    made.append(save_figure(fig, out, "tbm_cdf.png"))
    # over all schemas: one that did not compile never reaches the curve
    curves = []
    for e in engines:
        rs = [r for r in records if r["engine"] == e]
        t = [r["ttfm_ms"] for r in rs if r.get("ttfm_ms") is not None]
        curves.append((t, len(rs), f"{e} ({len(t)}/{len(rs)} compiled)", ENGINE_COLORS.get(e)))
    fig = cdf_figure(curves, xlabel="TTFM: compile + first mask (ms, log)", ylabel="fraction of all schemas",
                     title="TTFM (schemas that did not compile never reach the curve)")
    made.append(save_figure(fig, out, "ttfm_cdf.png"))
    # pass rate per subset
    subsets = sorted({r["subset"] for r in records})
    fig, ax = plt.subplots(figsize=(min(16.0, max(7.0, 0.65 * len(subsets))), 5.0))
    w = 0.8 / max(1, len(engines))
    for k, e in enumerate(engines):
        vals = []
        for s in subsets:
            rs = [r for r in records if r["engine"] == e and r["subset"] == s]
            vals.append(100.0 * sum(1 for r in rs if r.get("passing")) / len(rs) if rs else 0.0)
        ax.bar(np.arange(len(subsets)) + k * w - 0.4 + w / 2, vals, w, label=e, color=ENGINE_COLORS.get(e))
    ax.set_xticks(np.arange(len(subsets)))
    ax.set_xticklabels(subsets, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("passing schemas (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Schemas passing (compiled, valid accepted, invalid blocked)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(True, axis="y", alpha=0.3)
    made.append(save_figure(fig, out, "pass_rate.png"))
    return made


def write_outputs(out: Path, records: list[dict], meta: dict, make_plots: bool = True) -> dict:
    engines = _engines_in(records, meta.get("engines") or list(ALL_ENGINES))
    summary = dict(meta)
    summary["engines"] = engines
    summary["n_schemas"] = len({r["schema"] for r in records})
    per_subset: dict[str, int] = {}
    for s, sub in {(r["schema"], r["subset"]) for r in records}:
        per_subset[sub] = per_subset.get(sub, 0) + 1
    summary["per_subset"] = dict(sorted(per_subset.items()))
    summary["aggregate"] = aggregate(records, engines)
    summary["comparisons"] = {}
    if "structgen" in engines:
        for other in engines:
            if other != "structgen":
                summary["comparisons"][other] = [compare(records, "structgen", other, s)
                                                 for s in sorted(per_subset) + [None]]
    notes = list(summary.get("notes", []))
    if make_plots and records:
        made = plots(out, records, engines)
        if made and made[0].startswith("plots skipped"):
            notes.append(made[0])
    summary["notes"] = notes
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=str))
    (out / "report.md").write_text(report_md(summary, records), encoding="utf-8")
    return summary


# --------------------------------------------------------------------------- main
def parse_args(argv):
    ap = runner_parser("maskbench", __doc__)
    ap.add_argument("--data", type=Path, default=None,
                    help="data directory (default: $STRUCTGEN_DATA or ../shared/data from the repo root)")
    ap.add_argument("--tokenizer", default="deepseek", help="structgen.vocab.known name (default deepseek)")
    ap.add_argument("--engines", default=None,
                    help=f"comma list (default: those installed of {','.join(ALL_ENGINES)})")
    ap.add_argument("--subsets", default=None, help="comma list of subsets (default: all)")
    ap.add_argument("--schemas", default=None, help="comma list of schema file names (overrides --subsets/--limit)")
    ap.add_argument("--limit", type=int, default=None, help="at most N schemas per subset")
    ap.add_argument("--sample-seed", type=int, default=0,
                    help="seed for picking --limit schemas per subset at random (default 0); -1: the first N by name")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--timeout", type=float, default=60.0, help="wall-time limit per (schema, engine), s (default 60)")
    ap.add_argument("--engine-timeout", action="append", default=[], metavar="ENGINE=S",
                    help="a different wall-time limit for one engine, repeatable (e.g. outlines-core=10)")
    ap.add_argument("--late-engines", default="outlines-core",
                    help="engines run after all the others (default outlines-core: its frequent timeouts "
                         "restart workers, which then need to load only that engine); '' to interleave all")
    ap.add_argument("--memory-gb", type=float, default=8.0, help="address-space limit per worker, GB (default 8)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output directory (default benchmarks/results/maskbench-<timestamp>/)")
    ap.add_argument("--resume", action="store_true",
                    help="skip (schema, engine) pairs already in --out/results.jsonl (default --out: the newest run)")
    ap.add_argument("--report-only", type=Path, default=None, metavar="DIR",
                    help="rebuild summary/report/plots from DIR/results.jsonl without running anything")
    ap.add_argument("--ensure-ascii", action="store_true",
                    help="serialise instances with \\uXXXX escapes for non-ASCII (default: raw UTF-8)")
    ap.add_argument("--outlines-whitespace", default=None,
                    help="outlines-core whitespace_pattern (default: its own, '[ ]?')")
    ap.add_argument("--structgen-option", action="append", default=[], metavar="KEY=VALUE",
                    help="extra compile_json_schema option for structgen (JSON value or string), repeatable, "
                         "e.g. property_order=any")
    ap.add_argument("--structgen-disk-cache", action="store_true",
                    help="leave structgen's on-disk cache on (default: STRUCTGEN_DISK_CACHE=0 in workers)")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="after each engine's setup, gc.collect() then gc.freeze() in the worker (as a server "
                         "does after loading its model): full collections then scan only what the run "
                         "allocates, not the ~300k objects of the imports")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def parse_options(items: list[str]) -> dict:
    out = {}
    for it in items or ():
        if "=" not in it:
            raise SystemExit(f"--structgen-option {it!r}: expected KEY=VALUE")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def resolve_engines(spec: str | None) -> tuple[list[str], list[str]]:
    notes = []
    if spec:
        wanted = [e.strip() for e in spec.split(",") if e.strip()]
        bad = [e for e in wanted if e not in ALL_ENGINES]
        if bad:
            raise SystemExit(f"unknown engine(s) {', '.join(bad)} (choose from {', '.join(ALL_ENGINES)})")
    else:
        wanted = list(ALL_ENGINES)
    engines = []
    for e in wanted:
        ok, why = installed(e)
        if ok:
            engines.append(e)
        else:
            notes.append(f"engine {e} skipped: {why}")
    return engines, notes


def run_maskbench(argv=None) -> int:
    from .pool import Pool, RecordLog, logging_callbacks, run_interruptible

    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    command = "python benchmarks/maskbench.py " + " ".join(argv)
    if args.report_only is not None:
        out = args.report_only
        meta_path = out / "summary.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        meta = {k: meta[k] for k in ("started", "command", "protocol", "environment", "setup", "notes", "engines",
                                      "wall_s", "worker_restarts", "resumed") if k in meta}
        meta.setdefault("started", "?")
        meta.setdefault("command", command)
        meta.setdefault("environment", environment())
        meta.setdefault("protocol", {"tokenizer": "?", "workers": "?", "timeout_s": 0, "memory_gb": "?",
                                     "ensure_ascii": False, "structgen_disk_cache": False})
        records = load_records(out / "results.jsonl")
        write_outputs(out, records, meta, not args.no_plots)
        print(f"report rebuilt: {out / 'report.md'}")
        return 0

    engines, notes = resolve_engines(args.engines)
    if not engines:
        print("\n".join(notes) or "no engine to run", file=sys.stderr)
        return 2
    engine_timeouts = {}
    for it in args.engine_timeout:
        k, _, v = it.partition("=")
        if k not in ALL_ENGINES or not v:
            raise SystemExit(f"--engine-timeout {it!r}: expected ENGINE=SECONDS with ENGINE in {', '.join(ALL_ENGINES)}")
        engine_timeouts[k] = float(v)
    data = args.data or default_data_dir()
    schemas = select(list_schemas(data), [s.strip() for s in args.subsets.split(",")] if args.subsets else None,
                     args.limit, None if args.sample_seed is not None and args.sample_seed < 0 else args.sample_seed,
                     [s.strip() for s in args.schemas.split(",")] if args.schemas else None)
    if not schemas:
        print("no schemas selected", file=sys.stderr)
        return 2
    started = time.strftime("%Y%m%d-%H%M%S")
    out = args.out
    if args.resume and out is None:
        runs = sorted(results_dir().glob("maskbench-*"))
        if not runs:
            raise SystemExit("--resume: no earlier run in benchmarks/results/ (give --out)")
        out = runs[-1]
    if out is None:
        out = results_dir() / f"maskbench-{started}"
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "results.jsonl"
    done = set()
    if args.resume:
        done = {(r["schema"], r["engine"]) for r in load_records(jsonl)}
    elif jsonl.exists() and jsonl.stat().st_size:
        raise SystemExit(f"{jsonl} exists: use --resume to continue it, or another --out")
    late = [e.strip() for e in (args.late_engines or "").split(",") if e.strip()]
    tasks, late_tasks = [], []
    for s in schemas:
        todo = [e for e in engines if (s["file"], e) not in done]
        first = [e for e in todo if e not in late]
        if first:
            tasks.append({"id": s["file"], "path": s["path"], "subset": s["subset"], "engines": first})
        if len(first) < len(todo):
            late_tasks.append({"id": s["file"], "path": s["path"], "subset": s["subset"],
                               "engines": [e for e in todo if e in late]})
    tasks += late_tasks
    total = sum(len(t["engines"]) for t in tasks)

    env = environment()
    protocol = {"tokenizer": args.tokenizer, "workers": args.workers, "timeout_s": args.timeout,
                "engine_timeouts_s": engine_timeouts, "late_engines": args.late_engines,
                "memory_gb": args.memory_gb, "ensure_ascii": args.ensure_ascii,
                "structgen_disk_cache": args.structgen_disk_cache, "outlines_whitespace": args.outlines_whitespace,
                "gc_freeze": args.gc_freeze, "structgen_options": parse_options(args.structgen_option),
                "limit": args.limit, "sample_seed": args.sample_seed, "subsets": args.subsets,
                "data": str(maskbench_dir(data)), "timer": "time.perf_counter_ns", "threads": 1,
                "styles": {"valid": ["compact", "default"], "invalid": ["compact"]}}
    print_header(f"# MaskBench {started}: {len(schemas)} schemas x {len(engines)} engines "
          f"({', '.join(engines)}), {total} runs to do{' (resumed)' if done else ''} -> {out}", env, notes)

    setup_info: dict = {}
    log = RecordLog(jsonl, engines, total, progress=not args.no_progress, good="passing", every=50)

    callbacks = logging_callbacks(log, notes, setup_info, lambda task, engine, rec: {
        "schema": task["id"], "subset": task["subset"], "engine": engine, "tokenizer": args.tokenizer, **rec})
    cfg = {"handler": HANDLER, "tokenizer": args.tokenizer, "memory_limit": int(args.memory_gb * 2**30),
           "ensure_ascii": args.ensure_ascii, "structgen_disk_cache": args.structgen_disk_cache,
           "gc_freeze": args.gc_freeze, "engine_opts": {"outlines_whitespace": args.outlines_whitespace,
                           "structgen_options": parse_options(args.structgen_option)}}
    pool = Pool(args.workers, cfg, log_dir=out / "logs", timeout=args.timeout, engine_timeouts=engine_timeouts,
                **callbacks)
    t0 = time.perf_counter()
    run_interruptible(pool, tasks, notes=notes, interrupted_note="interrupted: run again with --resume",
                      close=[log.close])
    wall = time.perf_counter() - t0
    env["loadavg_end"] = loadavg()
    for e, why in pool.unavailable.items():
        notes.append(f"engine {e} unavailable: {why}")
    prev = {}
    if done and (out / "summary.json").exists():
        try:
            prev = json.loads((out / "summary.json").read_text())
        except json.JSONDecodeError:
            prev = {}
    if prev.get("setup"):
        for k, v in prev["setup"].items():
            setup_info.setdefault(k, v)
    busy = [x for x in (env.get("loadavg_start"), env.get("loadavg_end"))
            if x and x[0] > (env.get("cores_available") or 1)]
    if busy:
        notes.append(f"the machine was busy (1-min load average {env.get('loadavg_start')} at start, "
                     f"{env.get('loadavg_end')} at end, {env.get('cores_available')} cores): timings are noisy")
    all_engines = list(dict.fromkeys((prev.get("engines") or []) + engines))
    if prev.get("protocol"):
        # a resumed run: keep the first run's protocol and list what the later ones changed
        resumed = list(prev.get("resumed") or []) + [{"started": started, "command": command, "protocol": protocol,
                                                      "loadavg": [env.get("loadavg_start"), env.get("loadavg_end")]}]
        notes = list(prev.get("notes") or []) + notes
        protocol = prev["protocol"]
    else:
        resumed = []
    meta = {"started": prev.get("started", started), "command": prev.get("command", command), "protocol": protocol,
            "environment": env, "setup": setup_info, "notes": list(dict.fromkeys(notes)), "engines": all_engines,
            "wall_s": wall + (prev.get("wall_s") or 0),
            "worker_restarts": pool.restarts + (prev.get("worker_restarts") or 0), "resumed": resumed}
    records = load_records(jsonl)
    summary = write_outputs(out, records, meta, not args.no_plots)
    print()
    agg = summary["aggregate"]
    rows = []
    for e in summary["engines"]:
        a = agg.get(f"ALL|{e}")
        if a:
            rows.append([e, a["schemas"], a["passing"], fmt_pct(a["passing"], a["schemas"]),
                         a["status"]["compile_error"] + a["status"]["unsupported"],
                         a["status"]["timeout"] + a["status"]["oom"] + a["status"]["crash"],
                         a["validation_errors"], f"{a['invalidation_errors']} ({a['invalidation_errors_format_only']})",
                         fmt(a["ttfm_ms"]["p50"], 2), fmt(a["tbm_us"]["mean"]), fmt(a["tbm_us"]["p99"])])
    print(md_table(["engine", "schemas", "pass", "pass %", "not compiled", "timeout/oom/crash", "val. err",
                    "inval. err (fmt)", "TTFM p50 ms", "TBM mean µs", "TBM p99 µs"], rows))
    print(f"\nwall time {wall:.0f} s; results in {out.relative_to(REPO) if out.is_relative_to(REPO) else out}/")
    return 0


if __name__ == "__main__":
    sys.exit(run_maskbench())
