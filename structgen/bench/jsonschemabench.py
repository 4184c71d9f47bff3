"""JSONSchemaBench generation runs: the protocol of "Generating Structured Outputs from Language
Models: Benchmark and Studies" (arXiv 2501.10868), for structgen and the other engines on one model.

    structgen bench jsonschemabench --limit 5                 # 5 schemas per subset, SmolLM2 on CPU
    structgen bench jsonschemabench --shard 0/4 --out DIR     # one of 4 shards; merge: same DIR
    structgen bench jsonschemabench --report-only DIR         # rebuild the report

Protocol.  For each schema: the chat prompt is a system instruction ("You need to generate a JSON
object that matches the schema below."), two fixed in-context examples (an example schema as the
user turn, a JSON instance of it as the assistant turn), then the schema itself as the last user
turn (compact JSON); greedy decoding; one sample.  A prompt longer than ``--max-prompt-tokens``
(default 80% of the model's context, the paper's margin) is left out for every engine and counted
apart.  Grammar compilation and generation have their own limits (``--compile-timeout`` 40 s,
``--gen-timeout`` 60 s, the paper's); a worker that overruns both is killed.

Metrics, per subset and overall, as the paper defines them:

* declared coverage: the share of schemas the engine compiles (no rejection, error or timeout;
  structgen's engines compile strictly and, when a keyword cannot be compiled exactly, again in
  lenient mode, which drops it -- the per-engine table counts those as "compiled (lenient)");
* empirical coverage: the share whose output passes ``json.loads`` and ``jsonschema``'s
  ``Draft202012Validator`` with its format checker (formats it has checkers for; the run lists
  them).  A ```` ```json ```` fence around an unconstrained output is removed first;
* compliance: empirical / declared;
* GCT (grammar compilation), TTFT (from the request, so compilation included, to the first
  generated token) and TPOT (time per output token after the first, fast-forwarded tokens
  included): medians over the schemas that every engine of the table ran to completion;
* fast-forwarded share (structgen's loop), output length; the unconstrained model is the
  baseline row (declared coverage 1 by definition).
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import sys
from pathlib import Path

from .env import default_data_dir, runner_parser
from .figures import save_figure
from .generation import COMPILE_FAILED, prompt_text_for, timed_run, worker_model
from .stats import fmt, md_table

HANDLER = "structgen.bench.jsonschemabench:run_task"
#: the eight subsets of the paper's coverage and efficiency tables, in its order
PAPER_SUBSETS = ("Glaiveai2K", "Github_easy", "Snowplow", "Github_medium", "Kubernetes", "WashingtonPost",
                 "Github_hard", "JsonSchemaStore")

SYSTEM = "You need to generate a JSON object that matches the schema below."
EXAMPLES = (
    ({"type": "object",
      "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                     "email": {"type": "string", "format": "email"}},
      "required": ["name", "age"]},
     {"name": "Alice Martin", "age": 34, "email": "alice.martin@example.com"}),
    ({"type": "object",
      "properties": {"id": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
                     "active": {"type": "boolean"},
                     "location": {"type": "object", "properties": {"lat": {"type": "number"},
                                                                   "lon": {"type": "number"}},
                                  "required": ["lat", "lon"]}},
      "required": ["id", "active"]},
     {"id": 1042, "tags": ["sensor", "outdoor"], "active": True, "location": {"lat": 48.8566, "lon": 2.3522}}),
)


def messages_for(schema) -> list[dict]:
    msgs = [{"role": "system", "content": SYSTEM}]
    for ex_schema, ex_value in EXAMPLES:
        msgs.append({"role": "user", "content": json.dumps(ex_schema)})
        msgs.append({"role": "assistant", "content": json.dumps(ex_value)})
    msgs.append({"role": "user", "content": json.dumps(schema, ensure_ascii=False)})
    return msgs


# --------------------------------------------------------------------------- data
def list_schemas(data: Path) -> list[dict]:
    root = data / "jsonschemabench"
    index = root / "index.csv"
    if not index.exists():
        raise SystemExit(f"no JSONSchemaBench index at {index} (give --data or set STRUCTGEN_DATA)")
    with open(index, encoding="utf-8") as f:
        return [{"id": Path(r["file"]).stem, "subset": r["subset"], "path": str(root / r["file"])}
                for r in csv.DictReader(f)]


def select(schemas: list[dict], subsets: list[str], limit: int | None, seed: int,
           names: list[str] | None = None) -> list[dict]:
    """Per subset, the first ``limit`` schemas in an order shuffled with ``seed`` (all if no limit),
    subsets interleaved so that shards and interrupted runs cover every subset evenly."""
    import random

    if names:
        keep = set(names)
        return [s for s in schemas if s["id"] in keep or Path(s["path"]).name in keep]
    per = []
    for sub in subsets:
        xs = sorted((s for s in schemas if s["subset"] == sub), key=lambda s: s["id"])
        if not xs:
            raise SystemExit(f"unknown or empty subset {sub!r}")
        random.Random(f"{seed}:{sub}").shuffle(xs)
        per.append(xs[:limit] if limit else xs)
    out = []
    for i in range(max(len(x) for x in per)):
        out += [x[i] for x in per if i < len(x)]
    return out


# --------------------------------------------------------------------------- worker
def extract_json_text(text: str) -> str:
    t = text.strip()
    m = re.fullmatch(r"```(?:json|JSON)?\s*\n?(.*?)\n?```\s*", t, re.S)
    return m.group(1).strip() if m else t


def check_output(text: str, schema) -> dict:
    """``json_ok`` (``json.loads``), ``schema_ok`` (Draft 2020-12 with format checks), errors."""
    import jsonschema

    try:
        value = json.loads(extract_json_text(text))
    except ValueError as e:
        return {"json_ok": False, "schema_ok": False, "check_error": f"json: {str(e)[:200]}"}
    cls = jsonschema.Draft202012Validator
    try:
        err = next(iter(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value)), None)
    except Exception as e:  # noqa: BLE001 - a schema the validator cannot use (bad $ref, regex dialect)
        return {"json_ok": True, "schema_ok": False, "check_error": f"validator failed: {type(e).__name__}: "
                                                                      f"{str(e)[:200]}", "validator_failed": True}
    if err is not None:
        return {"json_ok": True, "schema_ok": False,  # the keyword first: messages start with the instance
                "check_error": f"{err.validator}: {err.message[-160:]} at {'/'.join(map(str, err.absolute_path))}"}
    return {"json_ok": True, "schema_ok": True}


def run_task(task: dict, ctx) -> None:
    proto = ctx.cfg["protocol"]
    wm = worker_model(ctx)
    with open(task["path"], encoding="utf-8") as f:
        schema = json.load(f)["schema"]
    text = prompt_text_for(wm.tok, messages_for(schema))
    ids = wm.prompt_ids(text)
    limit = proto.get("max_prompt_tokens") or int(0.8 * (wm.info.get("context") or 2048))
    for name in task["engines"]:
        if len(ids) > limit:
            ctx.begin(task["id"], name)
            ctx.result(task["id"], name, {"status": "prompt_too_long", "prompt_tokens": len(ids),
                                          "error": f"{len(ids)} prompt tokens > {limit}"})
            continue
        rec = timed_run(ctx, wm, task["id"], name, schema, text, ids, proto)
        if rec is None:
            continue
        if "text" in rec:
            rec.update(check_output(rec["text"], schema))
            rec["text"] = rec["text"][:4000]
        rec["ok"] = bool(rec.get("schema_ok"))
        ctx.result(task["id"], name, rec)


# --------------------------------------------------------------------------- metrics
def compiled(r: dict) -> bool:
    st = r.get("status")
    if st in COMPILE_FAILED:
        return False
    if st in ("timeout", "oom", "crash"):
        return r.get("stage") not in (None, "compile")
    return st != "prompt_too_long"


def finished(r: dict) -> bool:
    return r.get("status") == "ok"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def aggregate(records: list[dict], engines: list[str], subsets: list[str]) -> dict:
    """``{subset or "ALL": {engine: metrics}}``."""
    by = {}
    for r in records:
        by.setdefault(r.get("subset"), {}).setdefault(r["engine"], {})[r["task"]] = r
    out = {}
    for sub in list(subsets) + ["ALL"]:
        per = {}
        if sub == "ALL":
            rows = {e: {t: r for s in subsets for t, r in by.get(s, {}).get(e, {}).items()} for e in engines}
        else:
            rows = {e: by.get(sub, {}).get(e, {}) for e in engines}
        # tasks every engine ran to completion: where GCT/TTFT/TPOT are compared
        common = None
        for e in engines:
            ok = {t for t, r in rows[e].items() if finished(r)}
            common = ok if common is None else common & ok
        common = common or set()
        for e in engines:
            rs = [r for r in rows[e].values() if r.get("status") != "prompt_too_long"]
            n = len(rs)
            declared = sum(compiled(r) for r in rs)
            empirical = sum(bool(r.get("schema_ok")) for r in rs)
            cm = [rows[e][t] for t in common]
            toks = sum(r.get("tokens") or 0 for r in rs if finished(r))
            forced = sum(r.get("forced_tokens") or 0 for r in rs if finished(r))
            statuses: dict[str, int] = {}
            for r in rs:
                statuses[r.get("status", "?")] = statuses.get(r.get("status", "?"), 0) + 1
            per[e] = {
                "schemas": n, "declared": declared, "empirical": empirical,
                "json_ok": sum(bool(r.get("json_ok")) for r in rs),
                "declared_cov": declared / n if n else None, "empirical_cov": empirical / n if n else None,
                "compliance": empirical / declared if declared else None,
                "common": len(common),
                "gct_s": median([r.get("compile_s") for r in cm]),
                "ttft_s": median([r.get("ttft_s") for r in cm]),
                "tpot_ms": median([r.get("tpot_ms") for r in cm]),
                "tokens": median([r.get("tokens") for r in cm]),
                "own_tpot_ms": median([r.get("tpot_ms") for r in rs if finished(r)]),
                "ff_share": forced / toks if toks and any(r.get("forced_tokens") is not None for r in rs) else None,
                "statuses": statuses,
                "prompt_too_long": sum(1 for r in rows[e].values() if r.get("status") == "prompt_too_long"),
                "validator_failed": sum(bool(r.get("validator_failed")) for r in rs),
                "lenient": sum(bool(r.get("lenient_dropped")) for r in rs),
            }
        out[sub] = per
    return out


def targets(agg: dict, engines: list[str], subsets: list[str]) -> list[str]:
    """The issue's targets, checked, with the numbers: per subset for ``structgen`` (the default
    configuration), and over all subsets for each structgen variant."""
    peers = [e for e in engines if not e.startswith("structgen") and e != "unconstrained"]
    ours = [e for e in engines if e.startswith("structgen")]
    if "structgen" not in engines:
        return ["(structgen not in this run)"]

    def line(sub: str, name: str) -> str | None:
        a = agg[sub]
        sg = a[name]
        if not sg["schemas"]:
            return None
        best = max((a[p]["empirical_cov"] or 0 for p in peers), default=None)
        cov_ok = best is None or (sg["empirical_cov"] or 0) >= best
        comp_ok = sg["compliance"] is not None and sg["compliance"] >= 0.95
        tp = sg["tpot_ms"]
        slower = [p for p in peers if a[p]["tpot_ms"] is not None and tp is not None and a[p]["tpot_ms"] <= tp]
        tpot = ("(no common schemas)" if tp is None else "lower than every peer (met)" if not slower
                else f"not lower than {', '.join(slower)} (MISSED)")
        return (f"- {sub}, {name}: empirical coverage {fmt(sg['empirical_cov'], 2)} vs best peer "
                f"{fmt(best, 2) if best is not None else '-'} ({'met' if cov_ok else 'MISSED'}); compliance "
                f"{fmt(sg['compliance'], 2)} ({'met' if comp_ok else 'MISSED'}); TPOT {fmt(tp, 1)} ms {tpot}")

    lines = [line(sub, "structgen") for sub in subsets] + [line("ALL", e) for e in ours]
    return [x for x in lines if x]


def report_md(agg: dict, engines: list[str], subsets: list[str], metas: list[dict], records: list[dict]) -> str:
    from .genrun import common_meta_lines

    proto = (metas[0].get("protocol") if metas else None) or {}
    lines = ["# JSONSchemaBench generation run", ""] + common_meta_lines(metas) + [
        f"- protocol: {json.dumps(proto, default=str)}", ""]
    cols = [e for e in engines]
    lines += ["## Coverage (declared / empirical / compliance), the paper's Table 4 layout", ""]
    rows = []
    for sub in list(subsets) + ["ALL"]:
        a = agg[sub]
        n = max((a[e]["schemas"] for e in cols), default=0)
        rows.append([f"{sub} ({n})"] + [
            f"{fmt(a[e]['declared_cov'], 2)} / {fmt(a[e]['empirical_cov'], 2)} / {fmt(a[e]['compliance'], 2)}"
            if a[e]["schemas"] else "-" for e in cols])
    lines += [md_table(["subset (schemas)"] + cols, rows), ""]
    lines += ["## Efficiency (GCT s / TTFT s / TPOT ms, medians over the schemas every engine completed), "
              "the paper's Table 2 layout", ""]
    rows = []
    for sub in list(subsets) + ["ALL"]:
        a = agg[sub]
        common = a[cols[0]]["common"] if cols else 0
        rows.append([f"{sub} ({common})"] + [
            f"{'-' if e == 'unconstrained' else fmt(a[e]['gct_s'], 3)} / {fmt(a[e]['ttft_s'], 2)} / "
            f"{fmt(a[e]['tpot_ms'], 1)}" for e in cols])
    lines += [md_table(["subset (common schemas)"] + cols, rows), ""]
    lines += ["## Per engine, all subsets", ""]
    rows = []
    a = agg["ALL"]
    for e in cols:
        x = a[e]
        st = ", ".join(f"{k} {v}" for k, v in sorted(x["statuses"].items()))
        rows.append([e, x["schemas"], f"{x['declared']} ({x['lenient']})" if x["lenient"] else x["declared"],
                     x["json_ok"], x["empirical"], fmt(x["compliance"], 3),
                     fmt(x["gct_s"], 3), fmt(x["ttft_s"], 2), fmt(x["tpot_ms"], 1), fmt(x["own_tpot_ms"], 1),
                     fmt(x["tokens"], 0), "-" if x["ff_share"] is None else f"{x['ff_share']:.0%}", st])
    lines += [md_table(["engine", "schemas", "compiled (lenient)", "json ok", "schema ok", "compliance", "GCT s",
                        "TTFT s", "TPOT ms", "TPOT ms (own)", "tokens", "fast-forwarded", "statuses"], rows), ""]
    too_long = max((a[e]["prompt_too_long"] for e in cols), default=0)
    if too_long:
        lines.append(f"{too_long} schema(s) left out for every engine: prompt longer than the limit.")
    vf = {e: a[e]["validator_failed"] for e in cols if a[e]["validator_failed"]}
    if vf:
        lines.append(f"Outputs the validator could not check (counted as failures): {vf}.")
    lines += ["", "## Targets (issue 5)", ""] + targets(agg, cols, subsets) + [""]
    lines += ["## Failures of structgen (first 30)", ""]
    bad = [r for r in records if r["engine"] == "structgen" and r.get("status") != "prompt_too_long"
           and not r.get("ok")]
    for r in bad[:30]:
        lines.append(f"- {r['task']}: {r.get('status')} {r.get('error') or r.get('check_error') or ''}"[:300])
    if not bad:
        lines.append("(none)")
    return "\n".join(lines) + "\n"


def plots(out: Path, agg: dict, engines: list[str], subsets: list[str], records: list[dict]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    subs = [s for s in subsets if any(agg[s][e]["schemas"] for e in engines)] + ["ALL"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.2 * len(subs) * len(engines) + 2), 4.5))
    w = 0.8 / max(1, len(engines))
    for i, e in enumerate(engines):
        ax.bar([j + i * w for j in range(len(subs))], [agg[s][e]["empirical_cov"] or 0 for s in subs], w, label=e)
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(subs))], subs, rotation=30, ha="right")
    ax.set_ylabel("empirical coverage")
    ax.set_ylim(0, 1.3)  # room for the legend above the bars
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    ax.set_title("JSONSchemaBench: empirical coverage per subset")
    made.append(save_figure(fig, out, "coverage.png"))
    data = [[r["tpot_ms"] for r in records if r["engine"] == e and finished(r) and r.get("tpot_ms")]
            for e in engines]
    if any(data):
        fig, ax = plt.subplots(figsize=(max(6, len(engines) * 1.1), 4))
        ax.boxplot([d or [0] for d in data], showfliers=True)
        ax.set_xticks(range(1, len(engines) + 1), engines, rotation=30, ha="right")
        ax.set_ylabel("TPOT, ms (per schema)")
        ax.set_title("Time per output token")
        made.append(save_figure(fig, out, "tpot.png"))
    return made


def write_report(out: Path, records: list[dict], metas: list[dict], make_plots: bool = True) -> dict:
    engines = list(dict.fromkeys(e for m in metas for e in m.get("engines") or []))
    engines += [e for e in dict.fromkeys(r["engine"] for r in records) if e not in engines]
    present = set(r.get("subset") for r in records)
    order = [s for s in PAPER_SUBSETS if s in present] + sorted(s for s in present if s not in PAPER_SUBSETS and s)
    agg = aggregate(records, engines, order)
    md = report_md(agg, engines, order, metas, records)
    if make_plots and records:
        made = plots(out, agg, engines, order, records)
        md += "\n" + "\n".join(f"![{p}]({p})" for p in made) + "\n"
    (out / "report.md").write_text(md, encoding="utf-8")
    summary = {"engines": engines, "subsets": order, "aggregate": agg, "records": len(records)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


# --------------------------------------------------------------------------- main
def parse_args(argv):
    from .genrun import add_common_args

    ap = runner_parser("jsonschemabench", __doc__)
    ap.add_argument("--data", type=Path, default=None,
                    help="data folder holding jsonschemabench/ (default $STRUCTGEN_DATA or ../shared/data)")
    ap.add_argument("--subsets", default=",".join(PAPER_SUBSETS),
                    help="comma list, or 'all' (default: the paper's eight)")
    ap.add_argument("--limit", type=int, default=None, help="at most N schemas per subset (seeded sample)")
    ap.add_argument("--schemas", default=None, help="comma list of schema ids (overrides --subsets/--limit)")
    ap.add_argument("--max-prompt-tokens", type=int, default=None,
                    help="leave out schemas whose prompt is longer (default: 80%% of the model's context)")
    add_common_args(ap, max_new_tokens=512, gen_timeout=60.0)
    return ap.parse_args(argv)


def run_jsonschemabench(argv=None) -> int:
    from .genrun import common_protocol, run, start_runner

    started = start_runner(argv, parse_args, write_report)
    if started is None:
        return 0
    argv, args, engines, notes = started
    if not engines:
        print("no engine to run", file=sys.stderr)
        return 2
    schemas = list_schemas(args.data or default_data_dir())
    subsets = sorted({s["subset"] for s in schemas}) if args.subsets == "all" else \
        [s.strip() for s in args.subsets.split(",") if s.strip()]
    chosen = select(schemas, subsets, args.limit, args.seed,
                    [s.strip() for s in args.schemas.split(",")] if args.schemas else None)
    if not chosen:
        print("no schemas selected", file=sys.stderr)
        return 2
    tasks = [{"id": s["id"], "subset": s["subset"], "path": s["path"], "keys": ["subset"]} for s in chosen]
    import jsonschema

    protocol = {**common_protocol(args), "max_prompt_tokens": args.max_prompt_tokens, "samples": 1,
                "subsets": subsets, "limit": args.limit,
                "prompt": {"system": SYSTEM, "examples": len(EXAMPLES), "schema_in": "last user turn"},
                "validator": "jsonschema.Draft202012Validator + FORMAT_CHECKER",
                "format_checkers": sorted(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)}
    out = run(args, runner="jsonschemabench", tasks=tasks, handler=HANDLER, protocol=protocol,
              report=write_report, notes=notes, engines=engines, argv=argv)
    summary = json.loads((out / "summary.json").read_text())
    a = summary["aggregate"]["ALL"]
    print(md_table(["engine", "schemas", "declared", "empirical", "compliance", "GCT s", "TTFT s", "TPOT ms"],
                   [[e, a[e]["schemas"], fmt(a[e]["declared_cov"], 2), fmt(a[e]["empirical_cov"], 2),
                     fmt(a[e]["compliance"], 2), fmt(a[e]["gct_s"], 3), fmt(a[e]["ttft_s"], 2),
                     fmt(a[e]["tpot_ms"], 1)] for e in summary["engines"]]))
    return 0


if __name__ == "__main__":
    sys.exit(run_jsonschemabench())
