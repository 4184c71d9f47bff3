"""Compare MaskBench runs (e.g. two commits, alternating) on the same work.

    python benchmarks/maskbench_compare.py OUT_DIR [OUT_DIR ...] [--engine structgen] [--peer llguidance]

Each OUT_DIR is a ``benchmarks/maskbench.py --out`` directory.  Fills are compared over the replays that
every run's ``--engine`` and ``--peer`` accepted (the same token positions in every run), compile and
time to first mask over the schemas both engines compiled in every run.  Per run: engine and peer mask
mean / p99 and their ratios, compile p50 / p90 and TTFM p50 ratios.  The peer, timed in the same run,
is the yardstick: on a shared box the absolute figures of one commit move by 10-40 % between runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _load(out: Path) -> dict:
    runs: dict = {}
    with open(out / "results.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            runs.setdefault(r["schema"], {})[r["engine"]] = r
    return runs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--engine", default="structgen")
    ap.add_argument("--peer", default="llguidance")
    a = ap.parse_args(argv)
    runs = [_load(d) for d in a.dirs]
    engines = (a.engine, a.peer)

    def accepted(run, e):
        return {(s, v["i"], v["style"]): v["tbm_ns"] for s, by in run.items() if e in by
                for v in by[e].get("valid", []) if v.get("ok") and v.get("tbm_ns")}

    fills = [{e: accepted(run, e) for e in engines} for run in runs]
    common = set.intersection(*[set(f[e]) for f in fills for e in engines])
    compiled = set.intersection(*[{s for s, by in run.items()
                                   if all(by.get(e, {}).get("status") == "ok" for e in engines)} for run in runs])
    print(f"{len(common)} replays accepted by {a.engine} and {a.peer} in every run; "
          f"{len(compiled)} schemas both compiled in every run")
    for d, run, f in zip(a.dirs, runs, fills):
        stats = {}
        for e in engines:
            # the positions both engines timed: a replay may stop earlier for one of them
            ms = np.concatenate([np.asarray(f[e][k][:min(len(f[x][k]) for x in engines)]) for k in sorted(common)])
            ms = ms / 1e3
            comp = [run[s][e]["compile_ms"] for s in compiled]
            ttfm = [run[s][e]["ttfm_ms"] for s in compiled]
            stats[e] = (ms.mean(), np.percentile(ms, 99), np.percentile(comp, 50), np.percentile(comp, 90),
                        np.percentile(ttfm, 50), len(ms))
        (m, p99, c50, c90, t50, n), (pm, pp99, pc50, pc90, pt50, _) = stats[a.engine], stats[a.peer]
        print(f"{d}: mask mean {m:.1f} / {pm:.1f} us = {m / pm:.2f}x, p99 {p99:.0f} / {pp99:.0f} = {p99 / pp99:.2f}x "
              f"({n} masks); compile p50 {c50 / pc50:.2f}x, p90 {c90:.2f} / {pc90:.2f} ms = {c90 / pc90:.2f}x; "
              f"TTFM p50 {t50 / pt50:.2f}x")


if __name__ == "__main__":
    main()
