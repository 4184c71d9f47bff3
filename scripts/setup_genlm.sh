#!/usr/bin/env bash
# Create .venv-genlm: genlm-control 0.4.1 for benchmarks/bench_genlm.py, in its own
# venv so that its dependencies (genlm-backend, genlm-grammar, arsenal, IPython, ...)
# never touch the main .venv.  transformers is not capped below 5: genlm-backend
# 0.2.x (transformers < 5) also requires vllm on Linux (GBs of CUDA, not usable on a
# CPU box), while genlm-backend 0.3.x needs transformers >= 5 and no vllm.  torch is
# installed first from the pinned CPU wheel (an unpinned torch would pull GBs of CUDA)
# and every later install is constrained to it.  No model hub is needed: the worker
# loads SmolLM2 from structgen's converted cache (see benchmarks/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv-genlm/bin/python ]; then
  "$PY" -m venv .venv-genlm
fi
. .venv-genlm/bin/activate
python -m pip install -q --upgrade pip
echo "torch==2.13.0" > .venv-genlm/constraints.txt
python -m pip install -q -c .venv-genlm/constraints.txt "torch==2.13.0"
python -m pip install -q -c .venv-genlm/constraints.txt "genlm-control==0.4.1" "genlm-backend>=0.3"
python -c "import genlm.control, transformers, torch; print('genlm-control ok: genlm-backend', __import__('importlib.metadata').metadata.version('genlm-backend'), 'transformers', transformers.__version__, 'torch', torch.__version__)"
