#!/usr/bin/env python
"""MaskBench runner (thin wrapper): see ``structgen/bench/maskbench.py`` or ``--help``.

    python benchmarks/maskbench.py --limit 30 --workers 2
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from structgen.bench import run_maskbench  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_maskbench())
