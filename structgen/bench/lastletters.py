"""Last Letter Concatenation answered in JSON: downstream quality under a constraint.

The JSONSchemaBench paper (§6) checks that constrained decoding does not hurt task accuracy, with
answers in the ``{"reasoning": ..., "answer": ...}`` format.  Of its three tasks, Last Letter
Concatenation is the one whose data can be generated here: each question joins ``--words`` names
drawn (with ``--seed``) from a fixed list, and the answer is the word of their last letters
("Elena Marco" -> "ao").  Three fixed worked examples precede the question (chat turns).

    structgen bench last-letters --n 50                       # SmolLM2 on CPU, every installed engine

Per engine: accuracy (exact match of ``answer``, case and surrounding spaces/quotes ignored) with a
Wilson 95% interval, the share of outputs that parse as the JSON format, paired wins/losses
against the unconstrained model, and the timings of the JSONSchemaBench runner (GCT, TTFT, TPOT).
The unconstrained model's answer is read from its JSON when it wrote one, else from a
``"answer": "..."`` pair anywhere in its text.
"""

from __future__ import annotations

import json
import math
import random
import re
import statistics
import sys
from pathlib import Path

from .env import runner_parser
from .generation import prompt_text_for, timed_run, worker_model
from .stats import fmt, md_table

HANDLER = "structgen.bench.lastletters:run_task"
SCHEMA = {"type": "object",
          "properties": {"reasoning": {"type": "string"}, "answer": {"type": "string"}},
          "required": ["reasoning", "answer"], "additionalProperties": False}
NAMES = ("Elena", "Marco", "Priya", "Tomas", "Aisha", "Kenji", "Lucia", "Omar", "Freya", "Diego", "Hannah", "Ivan",
         "Chloe", "Rafael", "Nadia", "Felix", "Amara", "Jonas", "Leila", "Mateo", "Sofia", "Arjun", "Greta",
         "Emil", "Zara", "Hugo", "Ingrid", "Malik", "Noor", "Oscar", "Paula", "Ravi", "Selma", "Theo", "Uma",
         "Victor", "Wanda", "Yusuf", "Alice", "Bruno", "Carmen", "Dmitri", "Esther", "Farid", "Gloria", "Henrik",
         "Irene", "Julian", "Karin", "Lorenzo", "Mariam", "Nikolai", "Olga", "Pedro", "Rosa", "Stefan", "Tessa",
         "Walter", "Yasmin", "Albert", "Bianca", "Conrad", "Daphne", "Edgar", "Fiona", "Gordon", "Helga",
         "Isaac", "Jasmine", "Kurt", "Linda", "Morgan", "Nora", "Patrick", "Quentin", "Ruth", "Simon", "Tanya",
         "Ursula", "Vincent", "Wendy", "Xavier", "Yvonne", "Zachary")
SYSTEM = ('You solve letter puzzles. Think step by step in the "reasoning" field, then give the result in the '
          '"answer" field. Reply with a JSON object {"reasoning": ..., "answer": ...} and nothing else.')
SHOTS = (("Chris Dana", 'The last letter of "Chris" is "s". The last letter of "Dana" is "a". '
          'Concatenating them gives "sa".', "sa"),
         ("Ben Ruby Sam", 'The last letter of "Ben" is "n". The last letter of "Ruby" is "y". The last letter of '
          '"Sam" is "m". Concatenating them gives "nym".', "nym"),
         ("Lily Mark Anne Joe", 'The last letter of "Lily" is "y". The last letter of "Mark" is "k". The last '
          'letter of "Anne" is "e". The last letter of "Joe" is "e". Concatenating them gives "ykee".', "ykee"))


def question(words: str) -> str:
    return f'Take the last letters of each word in "{words}" and concatenate them.'


def make_examples(n: int, words: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ws = rng.sample(NAMES, words)
        out.append({"id": f"llc-{i:04d}", "words": " ".join(ws), "target": "".join(w[-1] for w in ws).lower()})
    return out


def messages_for(words: str) -> list[dict]:
    msgs = [{"role": "system", "content": SYSTEM}]
    for w, reasoning, answer in SHOTS:
        msgs.append({"role": "user", "content": question(w)})
        msgs.append({"role": "assistant", "content": json.dumps({"reasoning": reasoning, "answer": answer})})
    msgs.append({"role": "user", "content": question(words)})
    return msgs


def read_answer(text: str) -> tuple[str | None, bool]:
    """(answer, the whole output is the JSON format)."""
    from .jsonschemabench import extract_json_text

    try:
        v = json.loads(extract_json_text(text))
        if isinstance(v, dict) and isinstance(v.get("answer"), str) and isinstance(v.get("reasoning"), str):
            return v["answer"], True
    except ValueError:
        pass
    m = re.search(r'"answer"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    return (m.group(1) if m else None), False


def normalise(ans: str | None) -> str | None:
    return None if ans is None else ans.strip().strip("\"'.").strip().lower()


def run_task(task: dict, ctx) -> None:
    proto = ctx.cfg["protocol"]
    wm = worker_model(ctx)
    handles = ctx.cache.setdefault("handles", {})  # one compile per engine and worker: the schema is fixed
    text = prompt_text_for(wm.tok, messages_for(task["words"]))
    ids = wm.prompt_ids(text)
    for name in task["engines"]:
        rec = timed_run(ctx, wm, task["id"], name, SCHEMA, text, ids, proto, handles)
        if rec is None:
            continue
        if "text" in rec:
            ans, fmt_ok = read_answer(rec["text"])
            rec.update(answer=ans, format_ok=fmt_ok, target=task["target"],
                       ok=normalise(ans) == task["target"])
        else:
            rec["ok"] = False
        ctx.result(task["id"], name, rec)


# --------------------------------------------------------------------------- report
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    if not n:
        return None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def write_report(out: Path, records: list[dict], metas: list[dict], make_plots: bool = True) -> dict:
    from .genrun import common_meta_lines

    engines = list(dict.fromkeys(e for m in metas for e in m.get("engines") or []))
    engines += [e for e in dict.fromkeys(r["engine"] for r in records) if e not in engines]
    by = {e: {r["task"]: r for r in records if r["engine"] == e} for e in engines}
    base = by.get("unconstrained", {})
    summary, rows = {}, []
    for e in engines:
        rs = list(by[e].values())
        n, k = len(rs), sum(bool(r.get("ok")) for r in rs)
        ci = wilson(k, n)
        done = [r for r in rs if r.get("status") == "ok"]
        toks = sum(r.get("tokens") or 0 for r in done)
        forced = sum(r.get("forced_tokens") or 0 for r in done)
        paired = [t for t in by[e] if t in base]
        wins = sum(1 for t in paired if by[e][t].get("ok") and not base[t].get("ok"))
        losses = sum(1 for t in paired if base[t].get("ok") and not by[e][t].get("ok"))
        same = sum(1 for t in paired if by[e][t].get("text") is not None
                   and (by[e][t].get("text") or "").strip() == (base[t].get("text") or "").strip())
        s = {"n": n, "correct": k, "accuracy": k / n if n else None, "ci95": ci,
             "format_ok": sum(bool(r.get("format_ok")) for r in rs),
             "gct_s": statistics.median([r["compile_s"] for r in rs if r.get("compile_s") is not None])
             if any(r.get("compile_s") is not None for r in rs) else None,
             "ttft_s": statistics.median([r["ttft_s"] for r in done]) if done else None,
             "tpot_ms": statistics.median([r["tpot_ms"] for r in done if r.get("tpot_ms")])
             if any(r.get("tpot_ms") for r in done) else None,
             "tokens": statistics.median([r["tokens"] for r in done]) if done else None,
             "ff_share": forced / toks if toks and any(r.get("forced_tokens") is not None for r in done) else None,
             "wins_vs_unconstrained": wins, "losses_vs_unconstrained": losses, "same_text_as_unconstrained": same,
             "statuses": {st: sum(1 for r in rs if r.get("status") == st) for st in {r.get("status") for r in rs}}}
        summary[e] = s
        rows.append([e, n, f"{fmt(s['accuracy'] * 100 if n else None, 1)}",
                     f"[{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]" if ci else "-", f"{s['format_ok']}/{n}",
                     "-" if e == "unconstrained" else f"+{wins} / -{losses} ({same} same)",
                     fmt(s["gct_s"], 3), fmt(s["ttft_s"], 2), fmt(s["tpot_ms"], 1), fmt(s["tokens"], 0),
                     "-" if s["ff_share"] is None else f"{s['ff_share']:.0%}"])
    proto = (metas[0].get("protocol") if metas else None) or {}
    md = ["# Last Letter Concatenation, JSON answers", ""] + common_meta_lines(metas) + [
        f"- protocol: {json.dumps(proto, default=str)}", "",
        md_table(["engine", "questions", "accuracy %", "95% CI", "JSON format", "paired vs unconstrained (same text)",
                  "GCT s", "TTFT s", "TPOT ms", "tokens", "fast-forwarded"], rows), ""]
    examples = [r for r in records if r["engine"] == "structgen"][:3]
    for r in examples:
        md.append(f"- structgen on {r['task']}: `{(r.get('text') or '')[:200]}` (target {r.get('target')})")
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps({"engines": engines, "summary": summary}, indent=1, default=str))
    return summary


def parse_args(argv):
    from .genrun import add_common_args

    ap = runner_parser("last-letters", __doc__)
    ap.add_argument("--n", type=int, default=50, help="questions (default 50)")
    ap.add_argument("--words", type=int, default=4, help="names per question (default 4)")
    add_common_args(ap, max_new_tokens=256, gen_timeout=60.0)
    return ap.parse_args(argv)


def run_last_letters(argv=None) -> int:
    from .genrun import common_protocol, run, start_runner

    started = start_runner(argv, parse_args, write_report)
    if started is None:
        return 0
    argv, args, engines, notes = started
    if not 1 <= args.words <= len(NAMES):
        raise SystemExit(f"--words must be between 1 and {len(NAMES)}")
    tasks = [dict(x, keys=["words", "target"]) for x in make_examples(args.n, args.words, args.seed)]
    protocol = {**common_protocol(args), "n": args.n, "words": args.words, "shots": len(SHOTS), "schema": SCHEMA}
    out = run(args, runner="last-letters", tasks=tasks, handler=HANDLER, protocol=protocol, report=write_report,
              notes=notes, engines=engines, argv=argv)
    print((out / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(run_last_letters())
