"""Shared test helpers (public, importable by users writing their own constraints and samplers).

Sections: toy vocabularies and a brute-force mask oracle (for engine tests);
enumerable toy language models (for the exactness harness of the samplers)."""

from __future__ import annotations

# --- toy vocabularies and the brute-force mask oracle --------------------------------

# --- enumerable toy language models ----------------------------------------------------
