"""The runners' matplotlib figures: saved one way, and the empirical-CDF plot MaskBench
draws twice."""

from __future__ import annotations

from pathlib import Path

__all__ = ["save_figure", "cdf_figure"]


def save_figure(fig, out: Path, name: str) -> str:
    """Write ``fig`` to ``out/name`` (tight, 110 dpi), close it (pyplot keeps every open
    figure alive), return ``name``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def cdf_figure(curves, *, xlabel: str, ylabel: str, title: str):
    """One empirical CDF per ``(values, n, label, color)`` on a log x axis; the k-th
    smallest value is at height k / ``n``, so ``n`` larger than ``len(values)`` leaves
    the curve short of 1 (runs that produced no value).  Returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for values, n, label, color in curves:
        t = np.sort(np.asarray(values, dtype=float))
        if t.size:
            ax.plot(t, np.arange(1, t.size + 1) / n, label=label, color=color)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig
