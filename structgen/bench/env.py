"""Process setup, paths and machine/version reporting shared by the benchmark runners."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: Every engine computes masks on one thread.  Must be set before numba /
#: llguidance (rayon) / xgrammar (OpenMP) are imported, i.e. at worker start.
THREAD_VARS = ("NUMBA_NUM_THREADS", "RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

REPO = Path(__file__).resolve().parent.parent.parent


def single_threaded_env(env: dict | None = None) -> dict:
    """``env`` (default: ``os.environ``) with one compute thread per engine and offline hubs."""
    env = os.environ if env is None else env
    for v in THREAD_VARS:
        env[v] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return env


def default_data_dir() -> Path:
    """``--data`` default: ``$STRUCTGEN_DATA`` or ``../shared/data`` relative to the repository root."""
    env = os.environ.get("STRUCTGEN_DATA")
    if env:
        return Path(env)
    return (REPO / ".." / "shared" / "data").resolve()


def results_dir() -> Path:
    return REPO / "benchmarks" / "results"


def version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _own_environment() -> dict:
    """Fallback when ``benchmarks/bench_mask.py`` is not importable (installed package)."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    git = None
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "structgen"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        git = (rev + ("+dirty(structgen/)" if dirty else "")) or None
    except Exception:  # noqa: BLE001
        pass
    try:
        import numpy

        np_version = numpy.__version__
    except Exception:  # noqa: BLE001
        np_version = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    try:
        import structgen

        sg_version = getattr(structgen, "__version__", None)
    except Exception as e:  # noqa: BLE001
        sg_version = f"not importable: {e}"
    return {
        "loadavg_start": load, "cpu": cpu, "cores": os.cpu_count(), "cores_available": affinity,
        "mem_gb": mem_gb, "platform": platform.platform(), "python": platform.python_version(),
        "versions": {"numpy": np_version, "numba": version("numba"), "structgen": sg_version,
                     "structgen_git": git, "llguidance": version("llguidance"),
                     "xgrammar": version("xgrammar"), "transformers": version("transformers"),
                     "tokenizers": version("tokenizers"), "torch": version("torch")},
    }


def environment() -> dict:
    """Machine and versions.  Reuses ``benchmarks/bench_mask.py``'s ``environment()`` (CPU
    model, cores, memory, load, python/numpy/numba/structgen git/llguidance/xgrammar/
    transformers/tokenizers/torch) when the repository checkout is there, and adds the
    packages only these runners use."""
    env = None
    bench_mask = REPO / "benchmarks" / "bench_mask.py"
    if bench_mask.exists():
        try:
            if str(REPO) not in sys.path:
                sys.path.insert(0, str(REPO))
            from benchmarks.bench_mask import environment as bm_environment

            env = bm_environment()
        except Exception:  # noqa: BLE001
            env = None
    if env is None:
        env = _own_environment()
    env.setdefault("versions", {}).update({
        "outlines-core": version("outlines-core"), "jsonschema": version("jsonschema"),
        "matplotlib": version("matplotlib"), "tqdm": version("tqdm"),
    })
    env["threads"] = {v: os.environ.get(v) for v in THREAD_VARS}
    return env


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_line(env: dict) -> str:
    return (f"{env.get('cpu')}, {env.get('cores')} cores ({env.get('cores_available')} available), "
            f"{env.get('mem_gb')} GB; python {env.get('python')}; load average {env.get('loadavg_start')}")


def versions_line(env: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
