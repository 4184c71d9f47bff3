#!/usr/bin/env bash
# Set up (if needed), then run the main job: structured generation with the
# embedded default model (SmolLM2-135M-Instruct; converted once from its GGUF,
# ~40 s the first time), under a regex, a grammar and a JSON type, then show the
# token-level check of a text against the JSON grammar.
set -euo pipefail
. "$(dirname "$0")/env.sh"
structgen generate "When did Apollo 11 land on the moon? Answer as YYYY-MM-DD." --regex '\d{4}-\d{2}-\d{2}'
structgen generate "Give an arithmetic expression equal to 10." --grammar arithmetic --max-new-tokens 24
structgen generate "Name three primary colors." --type 'list[str]' --max-new-tokens 40
structgen check --grammar json --tokenizer smollm2 --text '{"name": "Ada Lovelace", "born": 1815}'
