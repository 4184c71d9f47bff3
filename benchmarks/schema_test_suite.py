#!/usr/bin/env python
"""JSON-Schema-Test-Suite runner (thin wrapper): see ``structgen/bench/testsuite.py`` or ``--help``.

    python benchmarks/schema_test_suite.py --drafts draft2020-12
    python benchmarks/schema_test_suite.py --drafts draft2020-12 --compare
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from structgen.bench import run_schema_test_suite  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_schema_test_suite())
