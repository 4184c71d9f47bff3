"""``structgen`` command line: compile a constraint for a real tokenizer and
show, token by token, what it allows."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def _popcount(words: np.ndarray) -> int:
    return int(np.unpackbits(words.view(np.uint8)).sum())


def _compile(args, vocab):
    from . import compile_grammar, compile_regex, load_grammar

    if args.regex is not None:
        return compile_regex(args.regex, vocab)
    src = args.grammar
    text = open(src, encoding="utf-8").read() if os.path.isfile(src) else load_grammar(src)
    return compile_grammar(text, vocab)


def _vocab(name: str):
    from .vocab import Vocabulary
    from .vocab.known import load_tokenizer

    tok = load_tokenizer(name)
    vocab = Vocabulary.from_tokenizer(tok)
    vocab.trie  # built once per vocabulary: counted with loading, not compiling
    return tok, vocab


def cmd_check(args) -> int:
    t0 = time.perf_counter()
    tok, vocab = _vocab(args.tokenizer)
    t1 = time.perf_counter()
    compiled = _compile(args, vocab)
    t2 = time.perf_counter()
    text = open(args.file, encoding="utf-8").read() if args.file else args.text
    ids = tok.encode(text, add_special_tokens=False)
    m = compiled.matcher()
    rows, ok = [], True
    for i, tid in enumerate(ids):
        s = time.perf_counter()
        mask = m.next_token_mask()
        us = (time.perf_counter() - s) * 1e6
        allowed = m.is_token_allowed(tid)
        rows.append({"pos": i, "id": tid, "token": (vocab.token_bytes[tid] or b"").decode("utf-8", "replace"),
                     "allowed": allowed, "mask_size": _popcount(mask), "mask_us": round(us, 1)})
        if not allowed or not m.accept_token(tid):
            ok = False
            break
    eos = ok and m.can_terminate()
    summary = {"tokenizer": args.tokenizer, "vocab_size": vocab.size, "kind": compiled.kind,
               "vocab_s": round(t1 - t0, 3), "compile_s": round(t2 - t1, 4), "tokens": len(ids),
               "accepted": ok, "eos_allowed": eos, "forced_next": m.find_jump_forward_string() if ok else ""}
    if args.json:
        print(json.dumps({"summary": summary, "tokens": rows}, ensure_ascii=False, indent=1))
    else:
        for r in rows:
            mark = "ok " if r["allowed"] else "BLOCKED"
            print(f"{r['pos']:4d} {r['id']:7d} {r['token']!r:24} {mark:8} allowed={r['mask_size']:<7d} {r['mask_us']:9.1f} us")
        print(("VALID" if eos else "INVALID" if not ok else "INCOMPLETE (EOS not allowed yet)")
              + f": {summary['tokens']} tokens, vocab {vocab.size} loaded in {summary['vocab_s']} s, "
                f"compiled in {summary['compile_s'] * 1000:.1f} ms")
    return 0 if eos else 1


def cmd_grammars(args) -> int:
    from . import list_grammars

    print("\n".join(list_grammars()))
    return 0


def main(argv=None) -> int:
    from .errors import StructgenError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the runners parse their own options
        from .bench import main as bench_main

        return bench_main(argv[1:])
    p = argparse.ArgumentParser(prog="structgen", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="replay a text's tokens under a constraint and show each mask")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--grammar", help="shipped grammar name (see `structgen grammars`) or a .lark/.gbnf file")
    src.add_argument("--regex", help="a regular expression (Python re syntax, whole output)")
    c.add_argument("--tokenizer", default="gpt2",
                   help="gpt2, deepseek, qwen, mistral, tekken, smollm2 or a local tokenizer dir (default gpt2)")
    txt = c.add_mutually_exclusive_group(required=True)
    txt.add_argument("--text")
    txt.add_argument("--file")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(fn=cmd_check)
    g = sub.add_parser("grammars", help="list the shipped grammars")
    g.set_defaults(fn=cmd_grammars)
    sub.add_parser("bench", help="benchmark runners: `structgen bench {maskbench,test-suite,jsonschemabench,"
                                 "last-letters} --help`")
    from .integrations.cli import add_parser as add_generate_parser  # torch-free until it runs

    add_generate_parser(sub)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except StructgenError as e:
        print(f"structgen: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
