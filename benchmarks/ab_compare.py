#!/usr/bin/env python
"""Compare this work tree with another revision in one process, interleaved.

    python benchmarks/ab_compare.py BASE_REV [--workload maskbench|grammars|regexes] [--reps 6] [--limit 8]

On a shared box the time of one run moves by 10-40 % from run to run, so two
separate benchmark runs cannot show a 5 % change.  Here ``BASE_REV``'s
``structgen/`` is exported (``git archive``) as a package named
``structgen_base`` and both versions run in one process: per repetition each
gets a fresh compiler, and every work item (a MaskBench schema, a shipped
grammar, or one of bench_mask's regexes) is compiled and replayed by both, in
alternating order, so a slow
patch of the machine hits both.  The collector is off during the replays (it
would charge one version for the other's objects); page faults (minor, from
``getrusage``) are counted per version, since a fresh process pays one per new
4 KB page and this box charges ~2 us for each.  Repetition 0 is the one that
takes fresh memory, as a MaskBench process does; later ones reuse what the
previous repetition freed.

The export is kept in ``~/.cache/structgen/ab/<commit>`` (its numba kernels
compile once).  Reported per repetition: compile, time to first mask p50, fill sum, mean, p99
and faults of both; then the per-repetition ratios (this tree / base).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BASE_NAME = "structgen_base"
_IMPORT = re.compile(r"^(\s*)(from|import) structgen(?=[. \n])", re.M)


def export_base(rev: str, into: Path):
    """Import ``rev``'s structgen package as ``structgen_base`` (absolute self-imports
    renamed), exported into ``into`` unless it is there already (the export is built
    beside it and renamed into place, so an interrupted one is never reused)."""
    if not (into / BASE_NAME / "__init__.py").exists():
        into.parent.mkdir(parents=True, exist_ok=True)
        staging = into.parent / f"{into.name}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "structgen"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(staging)], input=archive, check=True)
        (staging / "structgen").rename(staging / BASE_NAME)
        for py in (staging / BASE_NAME).rglob("*.py"):
            text = py.read_text(encoding="utf-8")
            new = _IMPORT.sub(lambda m: f"{m.group(1)}{m.group(2)} {BASE_NAME}", text)
            new = new.replace('import_module(f"structgen.', f'import_module(f"{BASE_NAME}.')
            if new != text:
                py.write_text(new, encoding="utf-8")
        shutil.rmtree(into, ignore_errors=True)
        staging.rename(into)
    sys.path.insert(0, str(into))
    return importlib.import_module(BASE_NAME)


def work_items(workload: str, tok, limit: int) -> list[tuple[str, object, list[list[int]]]]:
    """(kind, schema or grammar text, token sequences to replay)."""
    if workload == "grammars":
        sys.path.insert(0, str(REPO / "tests"))
        from grammar_samples import SAMPLES

        return [("grammar", (REPO / "grammars" / f"{name}.lark").read_text(encoding="utf-8"),
                 [tok.encode(s, add_special_tokens=False) for s in SAMPLES[name]["valid"]])
                for name in ("json", "sql_select", "arithmetic", "minilang")]
    if workload == "regexes":  # bench_mask's regexes and their samples
        sys.path.insert(0, str(REPO / "benchmarks"))
        from bench_mask import REGEXES

        return [("regex", pattern, [tok.encode(t, add_special_tokens=False) for t in texts])
                for pattern, texts in REGEXES.values()]
    from structgen.bench.env import default_data_dir
    from structgen.bench.maskbench import list_schemas, select
    from structgen.bench.replay import STYLES, serialise

    items = []
    for task in select(list_schemas(default_data_dir()), None, limit, 0):
        doc = json.loads(Path(task["path"]).read_text(encoding="utf-8"))
        seqs = [tok.encode(serialise(t["data"], style), add_special_tokens=False)  # MaskBench's spellings
                for t in doc.get("tests") or [] if t.get("valid") for style in STYLES]
        items.append(("schema", doc.get("schema"), seqs))
    return items


def replay(compiler, bitmask, item):
    """Compile ``item`` and fill every prefix of its sequences: (compile ns, time to
    first mask ns, fill ns list, minor faults), or None if it does not compile."""
    kind, source, seqs = item
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter_ns()
    try:
        if kind == "schema":
            compiled = compiler.compile_json_schema(source, whitespace="flexible")
        elif kind == "regex":
            compiled = compiler.compile_regex(source)
        else:
            compiled = compiler.compile_grammar(source)
    except Exception:  # noqa: BLE001  (either version may not support it)
        return None
    compile_ns = time.perf_counter_ns() - t0
    fills: list[int] = []
    for ids in seqs:
        m = compiled.matcher()
        for pos in range(len(ids) + 1):
            t = time.perf_counter_ns()
            m.fill_next_token_bitmask(bitmask, 0)
            fills.append(time.perf_counter_ns() - t)
            if pos == len(ids) or not m.accept_token(ids[pos]):
                break
    ttfm = compile_ns + fills[0] if fills else None
    return compile_ns, ttfm, fills, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="git revision to compare with (e.g. HEAD, a commit)")
    ap.add_argument("--workload", choices=("maskbench", "grammars", "regexes"), default="maskbench")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--limit", type=int, default=8, help="MaskBench schemas per subset")
    ap.add_argument("--tokenizer", default="deepseek")
    a = ap.parse_args(argv)

    import structgen
    from structgen.bench.engines import load_tokenizer
    from structgen.bench.env import environment, machine_line, versions_line

    env = environment()
    print(f"machine: {machine_line(env)}\nversions: {versions_line(env)}")
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", a.base], check=True, capture_output=True,
                         text=True).stdout.strip()
    # one export per commit in the user cache: its numba kernels compile once, not every run
    base = export_base(sha, Path.home() / ".cache" / "structgen" / "ab" / sha)
    tok = load_tokenizer(a.tokenizer)
    versions = {}
    for name, pkg in (("this", structgen), ("base", base)):
        vocab = pkg.Vocabulary.from_tokenizer(tok, vocab_size=len(tok))
        vocab.trie  # built with the vocabulary, not inside the first replay
        versions[name] = (pkg, vocab, pkg.allocate_token_bitmask(1, vocab.size))
    items = work_items(a.workload, tok, a.limit)
    print(f"{a.workload}: {len(items)} items, {a.reps} repetitions, this tree vs {a.base}")
    ratios = []
    for rep in range(a.reps):
        compilers = {}
        for name, (pkg, vocab, bitmask) in versions.items():
            pkg.mask.lexer._PRODUCTS.clear()  # process-wide products: every repetition starts cold
            compilers[name] = pkg.GrammarCompiler(vocab)
            warm = compilers[name].compile_json_schema({"type": "object", "properties": {"w": {"type": "string"}}})
            warm.matcher().fill_next_token_bitmask(bitmask, 0)
        totals = {name: [0, [], [], 0] for name in versions}
        gc.collect()
        gc.disable()
        try:
            for i, item in enumerate(items):
                order = ("this", "base") if (i + rep) % 2 == 0 else ("base", "this")
                out = {name: replay(compilers[name], versions[name][2], item) for name in order}
                if any(o is None for o in out.values()):
                    continue  # compared on the items both versions compile
                for name, (compile_ns, ttfm, fills, faults) in out.items():
                    t = totals[name]
                    t[0] += compile_ns
                    t[2].extend(fills)
                    t[3] += faults
                    if ttfm is not None:
                        t[1].append(ttfm)
        finally:
            gc.enable()
        row = {}
        for name, (compile_ns, ttfms, fills, faults) in totals.items():
            f = np.array(fills, dtype=np.float64) / 1e3
            row[name] = (compile_ns / 1e6, float(np.median(ttfms)) / 1e6, f.sum() / 1e3, float(np.percentile(f, 99)))
            print(f"rep {rep} {name:4s}: compile {row[name][0]:7.0f} ms  ttfm p50 {row[name][1]:5.2f} ms  "
                  f"fills {row[name][2]:7.0f} ms  mean {f.mean():6.1f} us  p99 {row[name][3]:6.0f} us  "
                  f"faults {faults}", flush=True)
        ratios.append([x / y for x, y in zip(row["this"], row["base"])])
    r = np.array(ratios)
    names = ("compile", "ttfm p50", "fills", "fill p99")
    print("this / base per repetition:")
    for j, n in enumerate(names):
        sd = r[:, j].std(ddof=1) if len(r) > 1 else 0.0
        print(f"  {n:9s} median {np.median(r[:, j]):.3f}  mean {r[:, j].mean():.3f} +- {sd:.3f}  "
              f"[{', '.join(f'{x:.3f}' for x in r[:, j])}]")


if __name__ == "__main__":
    main()
