"""``structgen generate``: constrained generation from the command line.

Wired into ``structgen/cli.py`` by :func:`add_parser`::

    structgen generate "When did Apollo 11 land?" --regex '\\d{4}-\\d{2}-\\d{2}'
    structgen generate "A cat as JSON" --schema cat.schema.json --max-new-tokens 80
    structgen generate "A cat as JSON" --schema '{"type": "object", "properties": {"name": {"type": "string"}}}'
    structgen generate "Three colors" --type 'list[str]' --stream
    structgen generate "2 + 2 =" --grammar arithmetic          # or --grammar my.lark / my.gbnf
    structgen generate "Hi" --model ./my-checkpoint --temperature 0.7 --seed 1

Without ``--model`` the default model (SmolLM2-135M-Instruct, see
``structgen.models``) is used.  The output text goes to stdout (``--json``: the
whole result as JSON); statistics go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``generate`` subcommand to an ``argparse`` subparsers object."""
    g = sub.add_parser("generate", help="generate text from a model under a constraint",
                       description=__doc__.split("\n\n")[0])
    g.add_argument("prompt", help="the prompt (use - to read it from stdin)")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--schema", help="JSON Schema: a file or inline JSON")
    src.add_argument("--regex", help="a regular expression the whole output must match")
    src.add_argument("--grammar", help="a shipped grammar name (see `structgen grammars`) or a .lark/.gbnf file")
    src.add_argument("--type", dest="type_", metavar="TYPE",
                     help="a Python type expression: int, float, bool, str, list[str], dict[str, int], "
                          "Literal['a', 'b'], Optional[int], ...")
    g.add_argument("--model", help="a local transformers checkpoint directory (default: SmolLM2-135M-Instruct)")
    g.add_argument("--max-new-tokens", type=int, default=256)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--seed", type=int)
    g.add_argument("--stream", action="store_true", help="print text as it is generated")
    g.add_argument("--no-chat", action="store_true", help="do not wrap the prompt in the chat template")
    g.add_argument("--heal", action="store_true", help="token-heal the end of the prompt")
    g.add_argument("--json", action="store_true", help="print the whole result as JSON")
    g.add_argument("--draft", default=None,
                   help="speculative draft sources, comma-separated: grammar,prompt,layerskip (default: grammar)")
    g.add_argument("--layerskip-layers", type=int, default=None, help="layers of the layerskip draft (default: a quarter)")
    g.add_argument("--sampler", default="masked", choices=["masked", "awrs", "smc", "asap"],
                   help="masked (default), or an exact sampler: awrs, smc (with --particles), asap")
    g.add_argument("--particles", type=int, default=4, help="SMC particles")
    g.add_argument("--stats", action="store_true",
                   help="print forward passes, drafts proposed/accepted per source and mask time")
    g.set_defaults(fn=cmd_generate)
    return g


_TYPE_NAMES = ("int", "float", "bool", "str", "list", "dict", "tuple", "set")


def parse_type(expr: str):
    """A type from a restricted expression (builtins above and ``typing`` names; nothing else)."""
    import typing

    ns = {n: __builtins__[n] if isinstance(__builtins__, dict) else getattr(__builtins__, n) for n in _TYPE_NAMES}
    ns.update({n: getattr(typing, n) for n in ("Literal", "Optional", "Union", "Any", "List", "Dict", "Tuple")})
    ns["None"] = None
    from ..errors import ConfigurationError

    try:
        return eval(compile(expr, "<--type>", "eval"), {"__builtins__": {}}, ns)  # noqa: S307 - restricted namespace
    except Exception as e:  # noqa: BLE001
        raise ConfigurationError(f"--type {expr!r} is not a type expression: {e}") from e


def _load_model(path: str | None):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if path is None:
        from ..models import load_default_model

        return load_default_model()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    return model, tok


def cmd_generate(args) -> int:
    from .generate import generate

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    kw = {}
    if args.schema is not None:
        kw["schema"] = open(args.schema, encoding="utf-8").read() if os.path.isfile(args.schema) else args.schema
    elif args.regex is not None:
        kw["regex"] = args.regex
    elif args.grammar is not None:
        kw["grammar"] = open(args.grammar, encoding="utf-8").read() if os.path.isfile(args.grammar) else args.grammar
    elif args.type_ is not None:
        kw["type"] = parse_type(args.type_)
    t0 = time.perf_counter()
    model, tok = _load_model(args.model)
    t1 = time.perf_counter()
    stream = None
    if args.stream and not args.json:
        def stream(delta):
            sys.stdout.write(delta)
            sys.stdout.flush()
    r = generate(model, tok, prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                 top_p=args.top_p, top_k=args.top_k, seed=args.seed, stream=stream, chat=not args.no_chat,
                 heal_prompt=args.heal, draft=None if args.draft is None else [x for x in args.draft.split(",") if x],
                 layerskip_layers=args.layerskip_layers, sampler=args.sampler, particles=args.particles, **kw)
    t2 = time.perf_counter()
    if args.json:
        value = r.value
        try:
            json.dumps(value)
        except TypeError:
            value = repr(value)
        print(json.dumps({"text": r.text, "value": value, "token_ids": r.token_ids,
                          "forced_tokens": r.forced_tokens, "closed_by_budget": r.closed_by_budget,
                          "finish_reason": r.finish_reason, "healed": r.healed, "error": r.error,
                          "stats": r.stats, "log_weight": r.log_weight, "log_ml": r.log_ml},
                         ensure_ascii=False, indent=1))
    else:
        if stream is None:
            sys.stdout.write(r.text)
        sys.stdout.write("\n")
    n = len(r.token_ids)
    print(f"[{n} tokens ({r.forced_tokens} fast-forwarded) in {t2 - t1:.1f} s, {n / max(t2 - t1, 1e-9):.1f} tok/s; "
          f"model loaded in {t1 - t0:.1f} s; finish: {r.finish_reason}"
          + ("; closed by budget" if r.closed_by_budget else "") + "]", file=sys.stderr)
    if args.stats and args.sampler != "masked":
        extra = f"; log weight {r.log_weight:.3f}" if r.log_weight is not None else ""
        extra += f"; log P(constraint) estimate {r.log_ml:.3f}" if r.log_ml is not None else ""
        print(f"[stats: {r.stats}{extra}]", file=sys.stderr)
    elif args.stats:
        st = r.stats
        per_token = st["target_forward_passes"] / max(n, 1)
        print(f"[stats: {st['target_forward_passes']} target forward passes ({per_token:.2f} per token), "
              f"{st['draft_forward_passes']} draft forward passes, drafts accepted/proposed "
              + (", ".join(f"{k} {st['draft_tokens_accepted'].get(k, 0)}/{v}"
                           for k, v in st["draft_tokens_proposed"].items()) or "none")
              + f", mask time {st['mask_time_s'] * 1e3:.1f} ms]", file=sys.stderr)
    return 0 if r.error is None else 1
