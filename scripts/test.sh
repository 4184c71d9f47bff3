#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.  Extra arguments go to pytest.
set -euo pipefail
. "$(dirname "$0")/env.sh"
python -m pytest -q "$@"
