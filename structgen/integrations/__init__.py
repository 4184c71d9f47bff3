"""Integrations with model runtimes.

* :mod:`structgen.integrations.transformers` -- a ``LogitsProcessor`` and a
  ``StoppingCriteria`` for ``model.generate`` (sampling, beam search, assisted
  decoding, left padding), state kept in a prefix trie of matchers.
* :mod:`structgen.integrations.generate` -- the front door :func:`generate`
  (constraint, prompts, options, results).
* :mod:`structgen.integrations.loop` -- the KV-cached decoding loop (batches
  with left padding, drafts and their verification, budget-safe closing,
  streaming), one ``Matcher`` per prompt.
* :mod:`structgen.integrations.kvcache` -- transformers KV-cache version shims.
* :mod:`structgen.integrations.drafters` -- draft models (a smaller LM, or the
  target's own first layers).
* :mod:`structgen.integrations.samplers` and :mod:`structgen.integrations.lm`
  -- the exact samplers (AWRS, SMC, ASAp) on a transformers model.

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
