"""Benchmark runners behind ``structgen bench``, for structgen side by side with llguidance,
xgrammar and outlines(-core) when they are installed:

* ``maskbench``: JSONSchemaBench schemas with labelled instances, timed token by token;
* ``test-suite``: the JSON-Schema-Test-Suite;
* ``jsonschemabench``: generation with a model, the JSONSchemaBench paper's protocol;
* ``last-letters``: Last Letter Concatenation answered in JSON (downstream quality).

Each ``run_*(argv)`` takes command-line arguments (see ``--help``); ``main(argv)`` dispatches."""

from __future__ import annotations

import sys


def run_maskbench(argv=None) -> int:
    from .maskbench import run_maskbench as run

    return run(argv)


def run_schema_test_suite(argv=None) -> int:
    from .testsuite import run_schema_test_suite as run

    return run(argv)


def run_jsonschemabench(argv=None) -> int:
    from .jsonschemabench import run_jsonschemabench as run

    return run(argv)


def run_last_letters(argv=None) -> int:
    from .lastletters import run_last_letters as run

    return run(argv)


RUNNERS = {"maskbench": run_maskbench, "test-suite": run_schema_test_suite,
           "schema-test-suite": run_schema_test_suite, "jsonschemabench": run_jsonschemabench,
           "last-letters": run_last_letters}


def main(argv=None) -> int:
    """``structgen bench {maskbench,test-suite,jsonschemabench,last-letters} [options]``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in RUNNERS:
        print("usage: structgen bench {maskbench,test-suite,jsonschemabench,last-letters} [options]"
              "   (--help after the runner name)",
              file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return RUNNERS[argv[0]](argv[1:])


__all__ = ["run_maskbench", "run_schema_test_suite", "run_jsonschemabench", "run_last_letters", "main"]
