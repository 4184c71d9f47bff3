#!/usr/bin/env bash
# Set up (if needed), then run the main job: a JSON document checked token by
# token against the shipped JSON grammar on the DeepSeek vocabulary, and a broken
# one blocked at its first bad token.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/structgen/numba}"
structgen check --grammar json --tokenizer deepseek --text '{"name": "Ada Lovelace", "born": 1815, "langs": ["en", "fr"], "note": "ünïcode ✓"}'
echo
structgen check --grammar json --tokenizer deepseek --text '{"name": "Ada", "born": 18 15}' || echo "(blocked, as it should be)"
