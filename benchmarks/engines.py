"""Engine adapters for the JSON Schema benchmarks (structgen, llguidance, xgrammar,
outlines-core).  The code lives in ``structgen/bench/engines.py`` so that the
``structgen bench`` command can use it; this module re-exports it for scripts here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from structgen.bench.engines import (  # noqa: E402,F401
    ALL_ENGINES,
    ENGINE_CLASSES,
    ByteTokenizer,
    CompileFailure,
    JsonEngine,
    LLGuidanceEngine,
    OutlinesCoreEngine,
    StructgenEngine,
    XGrammarEngine,
    bit,
    hf_token_bytes,
    installed,
    load_tokenizer,
    make_engine,
    popcount,
)
from structgen.bench.env import environment  # noqa: E402,F401
