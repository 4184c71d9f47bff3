"""A constrained generate loop in plain torch, using only structgen's Matcher and
bitmask API -- no ``model.generate``, no ``structgen.generate``.

Run it (the default model converts once, ~40 s, then loads in about a second)::

    python examples/handwritten_loop.py
    python examples/handwritten_loop.py --regex '\\d{4}-\\d{2}-\\d{2}' --prompt "Apollo 11 landed on (YYYY-MM-DD):"
    python examples/handwritten_loop.py --grammar json --prompt "A JSON object describing a cat:"

The loop is the whole integration:

1. ``vocab = Vocabulary.from_tokenizer(tok, vocab_size=model.config.vocab_size)``
   (the width of the logits) and ``compiled = compile_regex(...)`` /
   ``compile_grammar(...)``, once per constraint;
2. ``matcher = compiled.matcher()`` per sequence, and one int32 bitmask
   ``allocate_token_bitmask(1, vocab.size)``;
3. each step: one forward pass with the KV cache, then
   ``matcher.fill_next_token_bitmask(bitmask, 0)``,
   ``apply_token_bitmask_inplace(logits, bitmask)`` (disallowed logits become
   ``-inf``), pick a token (greedy here), ``matcher.accept_token(token)``;
4. stop when the matcher accepted EOS (``is_terminated()``), or when it is
   complete and its mask holds nothing but EOS.

What this loop does not do (``structgen.generate`` does): fast-forward of forced
text, budget-safe closing (here ``--max-new-tokens`` can cut the output short:
the script then says so), batching, sampling, healing, streaming.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
try:
    import structgen  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    import numpy as np
    import torch

    from structgen import (
        Vocabulary,
        allocate_token_bitmask,
        apply_token_bitmask_inplace,
        compile_grammar,
        compile_regex,
        list_grammars,
        load_grammar,
    )
    from structgen.models import apply_chat_template, load_default_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--regex", help="a regular expression the whole output must match")
    src.add_argument("--grammar", help="a shipped grammar name (json, arithmetic, ...) or a .lark/.gbnf file")
    p.add_argument("--prompt", default="Give me the name and age of a fictional person as JSON.")
    p.add_argument("--max-new-tokens", type=int, default=64)
    args = p.parse_args(argv)

    model, tok = load_default_model()
    vocab = Vocabulary.from_tokenizer(tok, vocab_size=model.config.vocab_size)
    if args.regex is not None:
        compiled = compile_regex(args.regex, vocab)
    else:
        g = args.grammar or "json"
        text = load_grammar(g) if g in list_grammars() else open(g, encoding="utf-8").read()
        compiled = compile_grammar(text, vocab)

    matcher = compiled.matcher()
    bitmask = allocate_token_bitmask(1, vocab.size)
    eos_only = set(vocab.eos_ids)

    prompt = apply_chat_template(tok, args.prompt)
    input_ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
    from structgen.integrations.kvcache import forward_keywords, new_cache

    cache_kw, _ = forward_keywords(model)                     # "cache" on transformers >= 5.2x, else "past_key_values"
    past = new_cache(model)
    generated: list[int] = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(args.max_new_tokens):
            out = model(input_ids=input_ids, use_cache=True, **{cache_kw: past})
            logits = out.logits[:, -1, :].float()            # [1, vocab]
            matcher.fill_next_token_bitmask(bitmask, 0)       # allowed tokens -> bitmask row 0
            apply_token_bitmask_inplace(logits, bitmask)      # the rest -> -inf
            token = int(torch.argmax(logits, dim=-1))         # greedy
            if not matcher.accept_token(token):               # cannot happen: the token was allowed
                raise RuntimeError(f"token {token} rejected")
            if matcher.is_terminated():                       # EOS accepted
                break
            generated.append(token)
            # complete and nothing but EOS may follow: stop without another forward pass
            if matcher.can_terminate():
                bits = np.unpackbits(matcher.next_token_mask().view(np.uint8), bitorder="little")
                if set(np.flatnonzero(bits).tolist()) <= eos_only:
                    break
            input_ids = torch.tensor([[token]])
    dt = time.perf_counter() - t0
    text = vocab.decode(generated).decode("utf-8", errors="replace")
    print(text)
    status = "complete" if matcher.is_terminated() or matcher.can_terminate() else \
        "CUT SHORT by --max-new-tokens (structgen.generate closes outputs within the budget)"
    print(f"\n[{len(generated)} tokens in {dt:.1f} s, {status}]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
