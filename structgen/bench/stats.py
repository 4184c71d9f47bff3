"""Small statistics and formatting helpers for the reports."""

from __future__ import annotations

import math

import numpy as np


def pct(values, q: float):
    if values is None or len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def dist(values, scale: float = 1.0, qs=(50, 90, 99, 99.9)) -> dict:
    """n, mean, percentiles, max of ``values`` (multiplied by ``scale``)."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"n": 0, "mean": None, **{f"p{q:g}": None for q in qs}, "max": None}
    a = a * scale
    out = {"n": int(a.size), "mean": float(a.mean())}
    for q, v in zip(qs, np.percentile(a, list(qs))):
        out[f"p{q:g}"] = float(v)
    out["max"] = float(a.max())
    return out


def geomean(values) -> float | None:
    vals = [v for v in values if v and v > 0 and math.isfinite(v)]
    if not vals:
        return None
    return math.exp(sum(map(math.log, vals)) / len(vals))


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fmt(x, nd: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) >= 100:
            return f"{x:.0f}"
        return f"{x:.{nd}f}"
    return str(x)


def fmt_ratio(r) -> str:
    return "–" if r is None else f"{r:.2f}×"


def fmt_pct(a, b) -> str:
    if not b:
        return "–"
    return f"{100.0 * a / b:.1f}%"


def md_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or ("l" + "r" * (len(header) - 1))
    seps = ["---:" if c == "r" else ":---" for c in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(seps) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |")
    return "\n".join(lines)
