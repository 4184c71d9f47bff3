#!/usr/bin/env python
"""Thin wrapper: see ``structgen/bench/jsonschemabench.py`` or ``--help``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from structgen.bench import run_jsonschemabench  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_jsonschemabench())
