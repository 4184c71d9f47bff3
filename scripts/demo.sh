#!/usr/bin/env bash
# Set up (if needed), then run the main job: a JSON document checked token by
# token against the shipped JSON grammar on the DeepSeek vocabulary, and a broken
# one blocked at its first bad token.
set -euo pipefail
. "$(dirname "$0")/env.sh"
structgen check --grammar json --tokenizer deepseek --text '{"name": "Ada Lovelace", "born": 1815, "langs": ["en", "fr"], "note": "ünïcode ✓"}'
echo
structgen check --grammar json --tokenizer deepseek --text '{"name": "Ada", "born": 18 15}' || echo "(blocked, as it should be)"
