"""Integrations with model runtimes.

* :mod:`structgen.integrations.transformers` -- a ``LogitsProcessor`` and a
  ``StoppingCriteria`` for ``model.generate`` (sampling, beam search, assisted
  decoding, left padding), state kept in a prefix trie of matcher snapshots.
* :mod:`structgen.integrations.generate` -- structgen's own generation loop
  (KV cache, batches with left padding, fast-forward of forced text,
  budget-safe closing, prompt healing, streaming): :func:`generate`.

Nothing here is imported by ``import structgen``; torch and transformers are
imported only when these modules are.  Use ``structgen.generate`` or
``from structgen.integrations.generate import generate`` (the package attribute
``generate`` is the submodule, not the function).
"""

from __future__ import annotations

__all__ = ["GenerationResult", "GenerationStream", "StructgenLogitsProcessor", "StructgenStoppingCriteria"]


def __getattr__(name):  # lazy: keep `import structgen.integrations` cheap
    if name in ("GenerationResult", "GenerationStream"):
        from . import generate as _g

        return getattr(_g, name)
    if name in ("StructgenLogitsProcessor", "StructgenStoppingCriteria"):
        from . import transformers as _t

        return getattr(_t, name)
    raise AttributeError(name)
