"""Benchmark runners behind ``structgen bench``: MaskBench (JSONSchemaBench schemas with
labelled instances, timed token by token) and the JSON-Schema-Test-Suite, for structgen
side by side with llguidance, xgrammar and outlines-core when they are installed.

``run_maskbench(argv)`` and ``run_schema_test_suite(argv)`` take command-line arguments
(see ``--help``); ``main(argv)`` dispatches ``maskbench`` / ``test-suite``."""

from __future__ import annotations

import sys


def run_maskbench(argv=None) -> int:
    from .maskbench import run_maskbench as run

    return run(argv)


def run_schema_test_suite(argv=None) -> int:
    from .testsuite import run_schema_test_suite as run

    return run(argv)


RUNNERS = {"maskbench": run_maskbench, "test-suite": run_schema_test_suite,
           "schema-test-suite": run_schema_test_suite}


def main(argv=None) -> int:
    """``structgen bench {maskbench,test-suite} [options]``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in RUNNERS:
        print("usage: structgen bench {maskbench,test-suite} [options]   (--help after the runner name)",
              file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return RUNNERS[argv[0]](argv[1:])


__all__ = ["run_maskbench", "run_schema_test_suite", "main"]
