"""Process setup, paths and machine/version reporting shared by the benchmark runners."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
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


def runner_parser(runner: str, doc: str) -> argparse.ArgumentParser:
    """The parser of ``structgen bench <runner>``: the module docstring's first paragraph as
    description, kept as written."""
    return argparse.ArgumentParser(prog=f"structgen bench {runner}", description=doc.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


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


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def environment() -> dict:
    """Machine (CPU model, cores, memory, load) and versions of everything measured."""
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
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    try:
        import structgen

        sg_version = getattr(structgen, "__version__", None)
    except Exception as e:  # noqa: BLE001
        sg_version = f"not importable: {e}"
    packages = ("numpy", "numba", "llguidance", "xgrammar", "outlines-core", "transformers", "tokenizers",
                "torch", "jsonschema", "matplotlib", "tqdm")
    versions = {p: version(p) for p in packages}
    versions.update(structgen=sg_version, structgen_git=git)
    return {
        "loadavg_start": loadavg(), "cpu": cpu, "cores": os.cpu_count(), "cores_available": affinity,
        "mem_gb": mem_gb, "platform": platform.platform(), "python": platform.python_version(),
        "versions": versions, "threads": {v: os.environ.get(v) for v in THREAD_VARS},
    }


def machine_line(env: dict) -> str:
    return (f"{env.get('cpu')}, {env.get('cores')} cores ({env.get('cores_available')} available), "
            f"{env.get('mem_gb')} GB; python {env.get('python')}; load average {env.get('loadavg_start')}")


def versions_line(env: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())


def print_header(title: str, env: dict, notes) -> None:
    """A run's first lines: what it does, the machine, the versions, the notes so far."""
    print(title, flush=True)
    print(f"machine: {machine_line(env)}", flush=True)
    print(f"versions: {versions_line(env)}", flush=True)
    for n in notes:
        print(f"note: {n}", flush=True)
