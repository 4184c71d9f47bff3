"""structgen's own generation loop: ``generate(model, tokenizer, prompt, regex=... | grammar=... | schema=... | type=...)``.

A plain KV-cached loop over a ``transformers`` causal LM (``DynamicCache``),
with everything constrained decoding needs that ``model.generate`` cannot do:

**Batches.**  A list of prompts runs as one batch, left padded.  Each step feeds
every live row a block ``[left pad][pending tokens][drafts][right pad]``; pads
get attention-mask 0 and positions come from the mask's running sum, so rows may
feed different numbers of tokens in one forward pass.  Finished rows leave the
batch (``batch_select_indices``); columns no live row uses any more are cropped
(``crop``: transformers 5 takes the number of tokens to remove as a negative
int, 4.x the new length -- :func:`crop_cache` handles both).

**Fast-forward.**  When every valid continuation starts with the same text (a
JSON key, ``": "`` ...), it is tokenised canonically and fed in the *same*
forward pass.  Two modes (``fast_forward=``):

* ``"verify"`` (default, exact): the forced tokens are speculative drafts.  The
  model scores them all in one pass; draft ``d`` is accepted when greedy picks it
  (or, sampling, with probability ``p(d)``; on rejection the replacement is
  drawn from ``p`` without ``d`` -- standard speculative sampling with a
  one-hot draft, so the output distribution is exactly the constrained one).
  The canonical tokenisation of a forced string may differ from the model's
  choice at the seam (``order`` + ``Name`` against ``orderName``): verification
  just rejects the draft there.
* ``"inject"`` (fastest): forced tokens are accepted without asking the model,
  except the trailing ones -- tokens are dropped from the end until at least two
  tokens or 7 bytes are left to the model -- so that a token spanning the end of
  the forced text and what follows stays possible (llguidance's rule).
* ``False``: off.

``GenerationResult.forced_tokens`` counts tokens that came from fast-forward.

**Budget-safe closing.**  ``max_new_tokens`` can never cut a constrained
output short.  The loop keeps the invariant *"a valid completion of the
current state fits in the tokens left"*: the shortest completion of a parser
state is found by breadth-first search over bytes
(``CompiledGrammar.viable_bytes``/``advance_bytes``, memoised per state),
tokenised (canonically, checked by replaying it through the constraint; a
byte-by-byte tokenisation otherwise) and its token count is the state's
*closing cost*.  Before a token is accepted, the cost after it is compared with
the budget left after it; when it does not fit, the current state's completion
(which fits, by the invariant) is appended instead, the row ends and
``closed_by_budget`` is set.  When even the start state cannot be closed within
``max_new_tokens``, :class:`~structgen.errors.ConfigurationError` is raised
before any forward pass.  EOS does not count against the budget.

**Prompt healing** (``heal_prompt=True``).  The last prompt tokens (up to 3,
never the whole prompt) whose bytes ``h`` are a proper prefix of some vocabulary
token are removed from the prompt, and generation is constrained to ``h``
followed by the constraint (``(?s).*`` when there is none), so the model may
re-tokenise across the seam (``http:`` + ``//`` -> ``http`` + ``://``).  ``h`` is
reported in ``GenerationResult.healed`` and excluded from ``text``.  Prompts
wrapped in a chat template are not healed: their end is the template's, not the
user's.

**Streaming.**  ``stream=callable`` is called with each text delta (``fn(delta)``
for one prompt, ``fn(index, delta)`` for a list); ``stream=True`` returns a
:class:`GenerationStream`: iterate it for the deltas (``str``, or
``(index, str)`` for a list), then read ``.result`` / ``.results``.  Deltas are
whole UTF-8 characters and concatenate to ``text``.

Sampling: ``temperature=0`` is greedy; otherwise mask, then temperature, top-k
(``0``: off), top-p (``1.0``: off), in that order (as ``model.generate`` does),
drawn with a ``torch.Generator`` seeded by ``seed``.
"""

from __future__ import annotations

import builtins
import codecs
import inspect
import json
import time
import weakref
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ..api.types import normalize_schema
from ..errors import ConfigurationError, StructgenError
from ..mask.engine import CompiledGrammar
from ..vocab import Vocabulary
from .transformers import byte_index, encode_bytes, vocabulary_for

__all__ = ["generate", "GenerationResult", "GenerationStream", "shortest_completion",
           "resolve_constraint", "crop_cache", "new_cache"]

DONE = "done"  # the constraint state after EOS


@dataclass
class GenerationResult:
    """One generated output.

    ``text``: the generated text (healed prompt bytes excluded); ``token_ids``:
    generated ids (EOS excluded); ``value``: the parsed JSON (``schema=``), the
    validated Python object (``type=``), else None; ``error``: why ``value``
    could not be produced; ``forced_tokens``: tokens that came from
    fast-forward; ``closed_by_budget``: the output was steered to its shortest
    completion because ``max_new_tokens`` was running out; ``finish_reason``:
    ``"eos"``, ``"complete"`` (nothing may follow), ``"budget"`` (closed by
    budget), ``"length"`` (unconstrained and out of tokens), ``"time"`` (``max_time``)."""

    text: str
    token_ids: list[int]
    value: Any = None
    forced_tokens: int = 0
    closed_by_budget: bool = False
    finish_reason: str = ""
    prompt: str = ""
    healed: str = ""
    error: str | None = None

    def __str__(self) -> str:
        return self.text


# --- constraints -----------------------------------------------------------------

_COMPILED: "weakref.WeakKeyDictionary[Vocabulary, dict]" = weakref.WeakKeyDictionary()


def _cached(vocab: Vocabulary, key, build: Callable[[], CompiledGrammar]) -> CompiledGrammar:
    per = _COMPILED.setdefault(vocab, {})
    c = per.get(key)
    if c is None:
        if len(per) >= 32:
            per.pop(next(iter(per)))
        c = per[key] = build()
    return c


def _json_schema_compiler():
    try:
        from ..json_schema import compile_json_schema
    except ImportError as e:
        raise ConfigurationError(
            f"schema= and type= need structgen.json_schema (compile_json_schema), which is not available: {e}") from e
    return compile_json_schema


def _compile_schema(vocab: Vocabulary, schema: dict, options: dict | None) -> CompiledGrammar:
    compile_json_schema = _json_schema_compiler()
    opts = dict(options or {})
    key = ("schema", json.dumps(schema, sort_keys=True), json.dumps(opts, sort_keys=True, default=repr))
    return _cached(vocab, key, lambda: compile_json_schema(schema, vocab, **opts))


def resolve_constraint(vocab: Vocabulary, *, schema=None, regex=None, grammar=None, type=None,
                       json_options: dict | None = None):
    """``(compiled or None, parse)``: ``parse(text) -> value`` (raises on invalid output) or None.
    ``json_options``: keyword options of ``compile_json_schema`` (``whitespace="compact"`` ...)."""
    given = [n for n, v in (("schema", schema), ("regex", regex), ("grammar", grammar), ("type", type))
             if v is not None]
    if len(given) > 1:
        raise ConfigurationError(f"pass at most one of schema=, regex=, grammar=, type= (got {', '.join(given)})")
    from .. import compile_grammar, compile_regex, list_grammars, load_grammar

    if regex is not None:
        if isinstance(regex, CompiledGrammar):
            return regex, None
        return _cached(vocab, ("regex", regex), lambda: compile_regex(regex, vocab)), None
    if grammar is not None:
        if isinstance(grammar, CompiledGrammar):
            return grammar, None
        text = load_grammar(grammar) if grammar in list_grammars() else grammar
        return _cached(vocab, ("grammar", text), lambda: compile_grammar(text, vocab)), None
    if schema is not None:
        if isinstance(schema, CompiledGrammar):
            return schema, json.loads
        model_cls = schema if isinstance(schema, builtins.type) and hasattr(schema, "model_validate_json") else None
        s = normalize_schema(schema)
        c = _compile_schema(vocab, s, json_options)
        return c, (model_cls.model_validate_json if model_cls is not None else json.loads)
    if type is not None:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(type)
        s = normalize_schema(adapter.json_schema())
        return _compile_schema(vocab, s, json_options), adapter.validate_json
    return None, None


# --- shortest completions ----------------------------------------------------------

_COMPLETIONS: "weakref.WeakKeyDictionary[CompiledGrammar, dict]" = weakref.WeakKeyDictionary()
_GREEDY: "weakref.WeakKeyDictionary[CompiledGrammar, dict]" = weakref.WeakKeyDictionary()


def _representative_bytes(compiled: CompiledGrammar, state, viable: list[int] | None = None) -> list[int]:
    """The viable next bytes (``viable``, computed when not given), one per class of
    equivalent bytes (the smallest): a single byte's successor depends only on its class
    in the current lexer and, when the pending lexeme may end there, its class in the
    next row's lexer."""
    if viable is None:
        viable = compiled.viable_bytes(state).tolist()
    try:
        from ..grammar.earley import DEAD

        row, s = state
        lex = compiled.lexer(row)
        cls = lex.classes
        ncls = None
        if s and lex.acc_terms[s]:
            nxt = compiled.after_lexeme(row, lex.acc_terms[s])
            if nxt != DEAD:
                ncls = compiled.lexer(nxt).classes
    except Exception:  # noqa: BLE001 - engine internals changed: try every byte
        return viable
    seen, out = set(), []
    for b in viable:
        key = (int(cls[b]), -1 if ncls is None else int(ncls[b]))
        if key not in seen:
            seen.add(key)
            out.append(b)
    return out


#: bytes a greedy completion tries first: what closes strings, objects, arrays and groups
_CLOSERS = b'}])"'


def _greedy_completion(compiled: CompiledGrammar, state, *, max_steps: int) -> bytes | None:
    """*A* completion of ``state`` (not always the shortest): depth-first over bytes, closers
    first, whitespace last, otherwise the smallest byte of each class, never revisiting a
    state; None when none is found within ``max_steps`` advances."""
    seen = {state}
    stack = [(state, iter(_greedy_order(compiled, state)))]
    path = bytearray()
    steps = 0
    while stack:
        s, options = stack[-1]
        b = next(options, None)
        if b is None:
            stack.pop()
            if path:
                path.pop()
            continue
        steps += 1
        if steps > max_steps:
            return None
        s2 = compiled.advance_bytes(s, bytes((b,)))
        if s2 is None or s2 in seen:
            continue
        seen.add(s2)
        path.append(b)
        if compiled.can_end(s2):
            return bytes(path)
        stack.append((s2, iter(_greedy_order(compiled, s2))))
    return None


def _greedy_order(compiled: CompiledGrammar, state) -> list[int]:
    """Bytes to try from ``state``: closers that end the current lexeme or start the next
    first (``"`` ending a string, ``}`` after a value -- not ``}`` as string content), then
    bytes that keep the lexeme complete, then the rest, whitespace last."""
    viable = compiled.viable_bytes(state).tolist()
    reps = _representative_bytes(compiled, state, viable)
    cands = [c for c in _CLOSERS if c in set(viable)] + [x for x in reps if x not in _CLOSERS]
    row, s = state
    lex = compiled.lexer(row)

    def rank(b: int) -> int:
        if b in b" \t\n\r":
            return 4
        t = int(lex.trans[s, lex.classes[b]])  # lexer state 0: between lexemes
        complete = t >= 0 and bool(lex.acc_terms[t])  # the lexeme b continues or starts is complete
        if b in _CLOSERS and ((s and t < 0) or (not s and complete)):  # ends the lexeme, or is one
            return 0
        if complete:
            return 1 if b in _CLOSERS else 2
        return 3

    return sorted(cands, key=rank)  # stable: closer order, then byte order within a rank


def shortest_completion(compiled: CompiledGrammar, state, *, max_states: int = 5_000,
                        max_greedy_steps: int = 200_000) -> bytes | None:
    """The shortest byte string taking ``state`` to a complete sentence (ties: the
    smallest bytes first), by breadth-first search over bytes.  When the search passes
    ``max_states`` states, a greedy depth-first completion (closers first) is returned
    instead: valid, possibly longer than the shortest.  None when there is none (or
    neither search finds one).  Memoised per state; every state on a found shortest
    path is memoised too (suffixes of shortest paths are shortest)."""
    memo = _COMPLETIONS.setdefault(compiled, {})
    if state in memo:
        return memo[state]
    if compiled.can_end(state):
        memo[state] = b""
        return b""
    parent: dict = {state: None}
    frontier = [state]
    found = None
    while frontier and found is None:
        nxt = []
        for s in frontier:
            known = memo.get(s) if s is not state else None
            if known is not None:  # a memoised tail: BFS order keeps the total shortest
                found = (s, known)
                break
            for b in _representative_bytes(compiled, s):
                s2 = compiled.advance_bytes(s, bytes((b,)))
                if s2 is None or s2 in parent:
                    continue
                parent[s2] = (s, b)
                if compiled.can_end(s2):
                    found = (s2, b"")
                    break
                nxt.append(s2)
            if found is not None:
                break
            if len(parent) > max_states:
                tail = _greedy_completion(compiled, state, max_steps=max_greedy_steps)
                memo[state] = tail
                return tail
        frontier = nxt
    if found is None:
        memo[state] = None
        return None
    s, tail = found
    path = bytearray()
    chain = [s]
    while parent[s] is not None:
        s, b = parent[s]
        path.append(b)
        chain.append(s)
    path.reverse()
    full = bytes(path) + tail
    # chain[k] is the state after len(path) - k bytes of the path
    for k, st in enumerate(chain):
        memo.setdefault(st, full[len(path) - k:])
    return memo[state]


# --- one row of a batch ------------------------------------------------------------

# (heal bytes, state) -> closing token ids, per compiled constraint (shared by rows and calls)
_CLOSINGS: "weakref.WeakKeyDictionary[CompiledGrammar, dict]" = weakref.WeakKeyDictionary()

class _Row:
    """The constraint and output of one prompt.  The constraint state is
    ``(heal, state)`` -- healing bytes still to produce, parser state -- or DONE."""

    def __init__(self, index: int, prompt_text: str, prompt_ids: list[int], compiled: CompiledGrammar | None,
                 vocab: Vocabulary, tokenizer, max_new_tokens: int, eos_ids: frozenset[int],
                 heal: bytes = b"", budget_safe: bool = True):
        self.index, self.prompt_text = index, prompt_text
        self.budget_safe = budget_safe
        self.compiled, self.vocab, self.tokenizer = compiled, vocab, tokenizer
        self.max_new = max_new_tokens
        self.eos = eos_ids
        self.heal_all = heal
        self.cs = (heal, compiled.initial_state) if compiled is not None else None
        self.pending = list(prompt_ids)
        self.out_ids: list[int] = []
        self.out_bytes = bytearray()
        self.forced = 0
        self.done = False
        self.finish = ""
        self.closed_by_budget = False
        self._emitted = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._cost_memo = _CLOSINGS.setdefault(compiled, {}) if compiled is not None else {}

    # --- pure constraint-state functions
    def step(self, cs, t: int):
        """The constraint state after token ``t`` (None if not allowed)."""
        if cs is DONE:
            return None
        heal, st = cs
        c = self.compiled
        tb = c.vocab.token_bytes[t] if 0 <= t < c.vocab.size else None
        if heal:
            if not tb:
                return None
            if heal.startswith(tb):
                return heal[len(tb):], st
            if tb.startswith(heal):
                nxt = c.advance_bytes(st, tb[len(heal):])
                return None if nxt is None else (b"", nxt)
            return None
        if t in c.vocab.eos_ids:
            return DONE if c.can_end(st) else None
        nxt = c.advance_token(st, t)
        return None if nxt is None else (b"", nxt)

    def closing(self, cs) -> list[int] | None:
        """Tokens of the shortest completion of ``cs`` (checked by replay); None if there is none."""
        if cs is DONE:
            return []
        hit = self._cost_memo.get(cs, False)
        if hit is not False:
            return hit
        heal, st = cs
        tail = shortest_completion(self.compiled, st)
        ids = None if tail is None else self._tokenise_tail(cs, heal + tail)
        if len(self._cost_memo) > 50_000:
            self._cost_memo.clear()
        self._cost_memo[cs] = ids
        return ids

    def _replays(self, cs, ids) -> bool:
        for t in ids:
            cs = self.step(cs, t)
            if cs is None or cs is DONE:
                return False
        return cs[0] == b"" and self.compiled.can_end(cs[1])

    def cost(self, cs) -> float:
        ids = self.closing(cs)
        return float("inf") if ids is None else len(ids)

    def _greedy_tail(self, st) -> bytes | None:
        memo = _GREEDY.setdefault(self.compiled, {})
        tail = memo.get(st, False)
        if tail is False:
            tail = memo[st] = (b"" if self.compiled.can_end(st)
                               else _greedy_completion(self.compiled, st, max_steps=20_000))
            if len(memo) > 50_000:
                memo.clear()
        return tail

    def _tokenise_tail(self, cs, data: bytes) -> list[int] | None:
        """The fewest-token spelling of ``data`` (canonical, else byte by byte) that replays from ``cs``."""
        best = None
        for cand in (lambda: encode_bytes(self.tokenizer, self.vocab, data), lambda: _bytewise(self.vocab, data)):
            try:
                ids = cand()
            except StructgenError:
                continue
            if self._replays(cs, ids) and (best is None or len(ids) < len(best)):
                best = ids
        return best

    def fits(self, cs, budget: int) -> bool:
        """Some valid completion of ``cs`` takes at most ``budget`` tokens.  Cheap first: a
        greedy completion (memoised per state) of at most ``budget`` bytes, each of them a
        token, fits; only otherwise the exact cost (shortest completion, tokenised) is needed."""
        if cs is DONE:
            return True
        heal, st = cs
        tail = self._greedy_tail(st)
        if tail is not None and len(heal) + len(tail) <= budget:
            single = byte_index(self.vocab).single
            if all(b in single for b in heal + tail):
                return True
        return self.cost(cs) <= budget

    # --- queries on the current state
    @property
    def constrained(self) -> bool:
        return self.compiled is not None

    @property
    def budget_left(self) -> int:
        return self.max_new - len(self.out_ids)

    def allows(self, t: int) -> bool:
        if not self.constrained:
            return True
        return self.step(self.cs, t) is not None

    def mask_words(self) -> np.ndarray | None:
        """uint32 allowed-token words for the current state (None: unconstrained)."""
        if not self.constrained:
            return None
        heal, st = self.cs
        if not heal:
            return self.compiled.mask(st)
        return self._heal_mask(heal, st)

    def _heal_mask(self, heal: bytes, st) -> np.ndarray:
        vocab, c = self.vocab, self.compiled
        idx = byte_index(vocab)
        words = np.zeros(vocab.num_words, np.uint32)

        def allow(ids):
            for t in ids:
                words[t >> 5] |= np.uint32(1 << (t & 31))

        for n in range(1, len(heal) + 1):  # tokens inside the healed bytes
            allow(idx.ids.get(heal[:n], ()))
        i = bisect_left(idx.keys, heal)  # tokens that start with them and go on
        while i < len(idx.keys) and idx.keys[i].startswith(heal):
            k = idx.keys[i]
            if len(k) > len(heal) and c.advance_bytes(st, k[len(heal):]) is not None:
                allow(idx.ids[k])
            i += 1
        return words

    def complete_and_closed(self) -> bool:
        """Nothing but EOS may follow (e.g. a fixed-length regex is complete)."""
        if self.cs is DONE:
            return True
        heal, st = self.cs
        return not heal and self.compiled.can_end(st) and len(self.compiled.viable_bytes(st)) == 0

    # --- transitions
    def _append(self, t: int, forced: bool) -> None:
        self.out_ids.append(t)
        self.out_bytes += self.vocab.token_bytes[t] or b""
        if forced:
            self.forced += 1

    def _finish(self, reason: str) -> None:
        self.done, self.finish = True, reason

    def accept(self, t: int, *, forced: bool = False) -> bool:
        """Take token ``t`` (already known to be allowed).  Returns False when the
        row closed instead (budget) or finished; True when ``t`` was appended and
        the row goes on."""
        if t in self.eos and (not self.constrained or self.step(self.cs, t) is DONE):
            if self.constrained:
                self.cs = DONE
            self._finish("eos")
            return False
        if self.constrained:
            nxt = self.step(self.cs, t)
            if nxt is None:  # cannot happen with a correct mask
                raise StructgenError(f"internal error: token {t} is not allowed here")
            if self.budget_safe and not self.fits(nxt, self.budget_left - 1):
                self.close()
                return False
            self.cs = nxt
        self._append(t, forced)
        if self.constrained and self.complete_and_closed():
            self._finish("complete")
            return False
        if self.budget_left <= 0:
            self._finish("length")
            return False
        return True

    def close(self) -> None:
        """Append the shortest completion of the current state and finish."""
        ids = self.closing(self.cs)
        if (ids is None or len(ids) > self.budget_left) and self.cs is not DONE:
            # the budget check may have passed on the greedy completion, and the memoised
            # "shortest" one is not always the fewest tokens: close with the greedy one
            tail = self._greedy_tail(self.cs[1])
            if tail is not None:
                ids = self._tokenise_tail(self.cs, self.cs[0] + tail)
        if ids is None or len(ids) > self.budget_left:  # the invariant makes this unreachable
            raise StructgenError("internal error: no completion fits the budget left")
        for t in ids:
            self.cs = self.step(self.cs, t)
            self._append(t, forced=False)
        self.closed_by_budget = True
        self._finish("budget")

    def drafts(self, mode, limit: int = 32) -> list[int]:
        """Tokens of the forced continuation (see the module docstring)."""
        if not mode or not self.constrained or self.done or self.cs is DONE or self.cs[0]:
            return []
        st = self.cs[1]
        forced = self.compiled.forced_bytes(st, limit=256)
        # whole UTF-8 characters only
        for cut in range(len(forced), max(-1, len(forced) - 4), -1):
            try:
                forced[:cut].decode("utf-8")
                forced = forced[:cut]
                break
            except UnicodeDecodeError:
                continue
        if not forced:
            return []
        ids = encode_bytes(self.tokenizer, self.vocab, forced)[:limit]
        if mode == "inject":
            dropped, nbytes = 0, 0
            while ids and dropped < 2 and nbytes < 7:
                nbytes += len(self.vocab.token_bytes[ids.pop()] or b"")
                dropped += 1
        # keep the allowed prefix (all of it, unless the tokeniser did something odd)
        cs, out = self.cs, []
        for t in ids:
            cs = self.step(cs, t)
            if cs is None or cs is DONE:
                break
            out.append(t)
        return out

    # --- output
    def delta(self, final: bool = False) -> str:
        start = max(self._emitted, len(self.heal_all))
        new = bytes(self.out_bytes[start:]) if len(self.out_bytes) > start else b""
        self._emitted = max(self._emitted, len(self.out_bytes))
        return self._decoder.decode(new, final=final)

    def text(self) -> str:
        return bytes(self.out_bytes[len(self.heal_all):]).decode("utf-8", errors="replace")


def _bytewise(vocab: Vocabulary, data: bytes) -> list[int]:
    idx = byte_index(vocab)
    out = []
    for b in data:
        ids = idx.ids.get(bytes((b,)))
        if not ids:
            raise StructgenError(f"no single-byte token for {b:#04x}")
        out.append(ids[0])
    return out


# --- KV-cache shims ----------------------------------------------------------------

def new_cache(model):
    """An empty ``DynamicCache`` (configured from the model on transformers 5)."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers 4.x
        return DynamicCache()


def crop_cache(cache, tokens_to_remove: int) -> None:
    """Drop the last ``tokens_to_remove`` positions: transformers 5's ``crop`` takes
    ``-n`` (a positive value raises), 4.x's takes the new absolute length."""
    if tokens_to_remove <= 0:
        return
    params = inspect.signature(cache.crop).parameters
    if "tokens_to_remove" in params:
        cache.crop(-tokens_to_remove)
    else:
        cache.crop(cache.get_seq_length() - tokens_to_remove)


_FORWARD_KW: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _logits_kw(model) -> str | None:
    cls = type(model)
    if cls not in _FORWARD_KW:
        params = inspect.signature(model.forward).parameters
        _FORWARD_KW[cls] = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return _FORWARD_KW[cls]


# --- sampling ------------------------------------------------------------------------

class _Sampler:
    def __init__(self, temperature: float, top_k: int, top_p: float, seed: int | None):
        if temperature < 0:
            raise ConfigurationError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ConfigurationError(f"top_p must be in (0, 1], got {top_p}")
        if top_k < 0:
            raise ConfigurationError(f"top_k must be >= 0, got {top_k}")
        self.greedy = temperature == 0
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.gen = torch.Generator()
        if seed is not None:
            self.gen.manual_seed(int(seed))
        else:
            self.gen.seed()

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Masked logits -> probabilities after temperature, top-k, top-p."""
        x = logits / self.temperature
        if self.top_k and self.top_k < x.shape[-1]:
            kth = torch.topk(x, self.top_k).values[-1]
            x = x.masked_fill(x < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_x, order = torch.sort(x, descending=True)
            cum = torch.softmax(sorted_x, -1).cumsum(-1)
            drop = cum - torch.softmax(sorted_x, -1) >= self.top_p  # keep the smallest prefix reaching top_p
            drop[0] = False
            x = x.clone()
            x[order[drop]] = float("-inf")
        return torch.softmax(x, -1)

    def draw(self, p: torch.Tensor) -> int:
        """Inverse-CDF draw (``torch.multinomial`` is ~40x slower on a 50k vocabulary)."""
        c = torch.cumsum(p.double(), 0)
        u = torch.rand((), generator=self.gen, dtype=torch.float64) * c[-1]
        return min(int(torch.searchsorted(c, u, right=True)), len(p) - 1)

    def uniform(self) -> float:
        return float(torch.rand((), generator=self.gen))


def _masked(logits: torch.Tensor, words: np.ndarray | None, vocab_size: int) -> torch.Tensor:
    """A copy of a 1-D CPU logits row with disallowed tokens (and ids >= vocab_size) at -inf."""
    if words is None:
        return logits
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")
    n = min(len(bits), vocab_size, logits.shape[-1])
    allowed = torch.zeros(logits.shape[-1], dtype=torch.bool)
    allowed[:n] = torch.from_numpy(bits[:n].view(np.bool_))
    return logits.masked_fill(~allowed, float("-inf"))


def _choose(row: _Row, logits: torch.Tensor, sampler: _Sampler, draft: int | None,
            vocab_size: int) -> tuple[int, bool]:
    """(token, draft accepted).  Greedy: the masked argmax (the raw argmax when it is
    allowed: no mask needed).  Sampling: from the masked, warped distribution;
    with a draft, speculative acceptance with probability p(draft)."""
    if sampler.greedy:
        top = int(torch.argmax(logits))
        if row.allows(top):
            return top, draft is not None and top == draft
        top = int(torch.argmax(_masked(logits, row.mask_words(), vocab_size)))
        return top, draft is not None and top == draft
    p = sampler.probs(_masked(logits, row.mask_words(), vocab_size))
    if draft is not None:
        if sampler.uniform() < float(p[draft]):
            return draft, True
        p = p.clone()
        p[draft] = 0
        if float(p.sum()) <= 0:  # p(draft) was 1 up to rounding
            return draft, True
        p = p / p.sum()
    return sampler.draw(p), False


# --- the loop -------------------------------------------------------------------------

def _run(model, rows: list[_Row], sampler: _Sampler, fast_forward, pad_id: int,
         deadline: float | None = None) -> Iterator[tuple[int, str]]:
    """Generate for every row; yields (row index, text delta) as text appears.
    Past ``deadline`` (``time.perf_counter()``), live rows end with reason ``"time"``."""
    device = next(model.parameters()).device
    vocab_size = rows[0].vocab.size
    cache = new_cache(model)
    active = [r for r in rows if not r.done]
    attn = torch.zeros((len(active), 0), dtype=torch.long, device=device)
    logits_kw = _logits_kw(model)
    verify = fast_forward == "verify"
    with torch.no_grad():
        while active:
            if deadline is not None and time.perf_counter() > deadline:
                for r in active:
                    r._finish("time")
                break
            if fast_forward == "inject":
                for r in active:
                    for t in r.drafts("inject"):
                        if not r.accept(t, forced=True):
                            break
                        r.pending.append(t)
                live = [r for r in active if not r.done]
                if len(live) < len(active):
                    yield from _emit(r for r in active if r.done)
                    keep = [i for i, r in enumerate(active) if not r.done]
                    if not keep:
                        break
                    cache, attn = _select(cache, attn, keep, device)
                    active = live
            drafts = [r.drafts("verify") if verify else [] for r in active]
            P = max(len(r.pending) for r in active)
            D = max(len(d) for d in drafts)
            ids = torch.full((len(active), P + D), pad_id, dtype=torch.long)
            new_attn = torch.zeros((len(active), P + D), dtype=torch.long)
            for i, (r, d) in enumerate(zip(active, drafts)):
                ids[i, P - len(r.pending):P] = torch.tensor(r.pending)
                new_attn[i, P - len(r.pending):P] = 1
                if d:
                    ids[i, P:P + len(d)] = torch.tensor(d)
                    new_attn[i, P:P + len(d)] = 1
            attn = torch.cat([attn, new_attn.to(device)], 1)
            pos = (attn.cumsum(-1) - 1).clamp_min(0)[:, -(P + D):]
            kwargs = {logits_kw: D + 1} if logits_kw else {}
            out = model(input_ids=ids.to(device), attention_mask=attn, position_ids=pos,
                        past_key_values=cache, use_cache=True, **kwargs)
            cache = out.past_key_values
            logits = out.logits[:, -(D + 1):, :].float().cpu()
            for i, (r, d) in enumerate(zip(active, drafts)):
                r.pending = []
                used = 0  # drafts kept in the cache
                for j in range(len(d) + 1):
                    draft = d[j] if j < len(d) else None
                    t, ok = _choose(r, logits[i, j], sampler, draft, vocab_size)
                    if ok:
                        if not r.accept(t, forced=True):
                            break
                        used += 1
                        continue
                    if r.accept(t):
                        r.pending = [t]
                    break
                if used < D:  # rejected drafts and right padding: invisible from now on
                    attn[i, attn.shape[1] - D + used:] = 0
            yield from _emit(active)
            keep = [i for i, r in enumerate(active) if not r.done]
            if len(keep) < len(active):
                if not keep:
                    break
                cache, attn = _select(cache, attn, keep, device)
                active = [active[i] for i in keep]
            # crop columns no live row will ever attend to again
            dead = 0
            col_used = attn.any(0)
            while dead < attn.shape[1] and not bool(col_used[attn.shape[1] - 1 - dead]):
                dead += 1
            if dead:
                crop_cache(cache, dead)
                attn = attn[:, :attn.shape[1] - dead]
    yield from _emit(rows, final=True)


def _select(cache, attn, keep: list[int], device):
    idx = torch.tensor(keep, dtype=torch.long, device=device)
    cache.batch_select_indices(idx)
    return cache, attn[idx]


def _emit(rows, final: bool = False) -> Iterator[tuple[int, str]]:
    for r in rows:
        d = r.delta(final=final)
        if d:
            yield r.index, d


# --- prompt healing --------------------------------------------------------------------

def _heal(vocab: Vocabulary, prompt_ids: list[int], max_tokens: int = 3) -> tuple[list[int], bytes]:
    """Pop the longest run (up to ``max_tokens``) of final prompt tokens whose bytes
    are a proper prefix of some vocabulary token."""
    idx = byte_index(vocab)
    best = 0
    h = b""
    for k in range(1, min(max_tokens, len(prompt_ids)) + 1):
        tb = vocab.token_bytes[prompt_ids[-k]]
        if not tb:
            break
        h = tb + h
        i = bisect_left(idx.keys, h)
        while i < len(idx.keys) and idx.keys[i] == h:
            i += 1
        if i < len(idx.keys) and idx.keys[i].startswith(h):
            best = k
    if not best:
        return prompt_ids, b""
    return prompt_ids[:-best], vocab.decode(prompt_ids[-best:])


# --- the front door ----------------------------------------------------------------------

def generate(model, tokenizer, prompt: str | Sequence[str] | Sequence[dict], *, schema=None, regex=None,
             grammar=None, type=None, max_new_tokens: int = 256, temperature: float = 0.0,
             top_p: float = 1.0, top_k: int = 0, seed: int | None = None, stream=None,
             heal_prompt: bool = False, chat: bool = True, system: str | None = None,
             fast_forward: str | bool = "verify", budget_safe: bool = True,
             json_options: dict | None = None, max_time: float | None = None):
    """Generate constrained text with a ``transformers`` causal LM.

    ``prompt``: a string (one result), a list of strings (a batch: a list of
    results), or a list of chat messages (``{"role", "content"}`` dicts: one
    result).  Constraint (at most one): ``regex=`` (pattern), ``grammar=`` (Lark
    or GBNF text, or a shipped grammar name), ``schema=`` (JSON Schema as a dict,
    JSON text or a pydantic model class; needs ``structgen.json_schema``),
    ``type=`` (any type pydantic's ``TypeAdapter`` handles; ``.value`` is the
    validated object), or a ``CompiledGrammar`` in ``regex=``/``grammar=``.
    None of them: unconstrained.

    ``chat``: wrap string prompts in the tokenizer's chat template (when it has
    one; ``system``: an optional system message).  ``heal_prompt``: see the module
    docstring.  ``fast_forward``: ``"verify"`` | ``"inject"`` | ``False``.
    ``budget_safe=False`` turns budget-safe closing off (outputs may then be cut
    short by ``max_new_tokens``).  ``json_options``: options of
    ``compile_json_schema`` for ``schema=``/``type=`` (e.g. ``{"whitespace": "compact"}``).
    ``max_time``: seconds; generation stops once it is exceeded (checked before each
    forward pass; ``finish_reason`` ``"time"``, the output may be incomplete).

    Returns :class:`GenerationResult` (or a list), or a :class:`GenerationStream`
    with ``stream=True``."""
    if fast_forward not in ("verify", "inject", False, None):
        raise ConfigurationError(f"fast_forward must be 'verify', 'inject' or False, got {fast_forward!r}")
    if max_new_tokens < 1:
        raise ConfigurationError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    single = isinstance(prompt, str) or (isinstance(prompt, (list, tuple)) and prompt
                                          and isinstance(prompt[0], dict))
    prompts = [prompt] if single else list(prompt)
    if not prompts:
        raise ConfigurationError("no prompts given")
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    vocab = vocabulary_for(tokenizer, vocab_size)
    compiled, parse = resolve_constraint(vocab, schema=schema, regex=regex, grammar=grammar, type=type,
                                         json_options=json_options)
    if compiled is not None and compiled.vocab.size != vocab.size:
        raise ConfigurationError(
            f"the constraint was compiled for a vocabulary of {compiled.vocab.size} tokens, "
            f"the model has {vocab.size}")
    eos = set(vocab.eos_ids)
    for src in (getattr(tokenizer, "eos_token_id", None),
                getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(src, int):
            eos.add(src)
        elif isinstance(src, (list, tuple)):
            eos.update(int(e) for e in src)
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = min(eos) if eos else 0

    if heal_prompt and compiled is None:  # healing needs a constraint to prefix: "anything"
        from .. import compile_regex

        compiled = _cached(vocab, ("regex", "(?s).*"), lambda: compile_regex("(?s).*", vocab))
    rows = []
    for i, p in enumerate(prompts):
        text = p
        templated = False
        if chat and getattr(tokenizer, "chat_template", None):
            from ..models import apply_chat_template

            text = apply_chat_template(tokenizer, p, system=system)
            templated = True
        elif not isinstance(p, str):
            from ..models import apply_chat_template

            text = apply_chat_template(tokenizer, p, system=system)
        ids = list(tokenizer(text, add_special_tokens=not templated)["input_ids"])
        heal = b""
        if heal_prompt and not templated and len(ids) > 1:
            ids, heal = _heal(vocab, ids, max_tokens=min(3, len(ids) - 1))
        if not ids:
            raise ConfigurationError(f"prompt {i} is empty after tokenisation")
        rows.append(_Row(i, text, ids, compiled, vocab, tokenizer, max_new_tokens, frozenset(eos), heal,
                         budget_safe=budget_safe))

    if compiled is not None and budget_safe:
        for r in rows:
            if r.fits(r.cs, max_new_tokens):
                continue
            need = r.cost(r.cs)
            if need > max_new_tokens:
                tail = shortest_completion(compiled, compiled.initial_state)
                what = "the constraint accepts no output (none found within the search limit)" if tail is None else \
                    f"the shortest valid output, {tail!r}, takes {int(need)} tokens"
                raise ConfigurationError(f"max_new_tokens={max_new_tokens} cannot hold a valid output: {what}")
    for r in rows:
        if compiled is not None and r.complete_and_closed():
            r._finish("complete")  # the empty output is the only one

    sampler = _Sampler(temperature, top_k, top_p, seed)
    deadline = None if max_time is None else time.perf_counter() + max_time
    events = _run(model, rows, sampler, fast_forward or False, pad_id, deadline)

    def results():
        out = [_result(r, parse) for r in rows]
        return out[0] if single else out

    if stream is True:
        return GenerationStream(events, results, single)
    if stream is not None:
        for i, d in events:
            stream(d) if single else stream(i, d)
    else:
        for _ in events:
            pass
    return results()


def _result(r: _Row, parse) -> GenerationResult:
    text = r.text()
    value, error = None, None
    if parse is not None:
        try:
            value = parse(text)
        except Exception as e:  # noqa: BLE001 - reported on the result
            error = f"{type(e).__name__}: {e}"
    return GenerationResult(text=text, token_ids=list(r.out_ids), value=value, forced_tokens=r.forced,
                            closed_by_budget=r.closed_by_budget, finish_reason=r.finish,
                            prompt=r.prompt_text, healed=r.heal_all.decode("utf-8", "replace"), error=error)


class GenerationStream:
    """Iterator over text deltas (``str``, or ``(index, str)`` for a batch); after it
    is exhausted, ``.result`` (one prompt) / ``.results`` (a batch) hold the outputs.
    Reading ``.result(s)`` early runs the generation to the end."""

    def __init__(self, events, results, single: bool):
        self._events, self._results, self._single = events, results, single
        self._value = None

    def __iter__(self):
        for i, d in self._events:
            yield d if self._single else (i, d)
        self._value = self._results()

    def _finish(self):
        if self._value is None:
            for _ in self:
                pass
        return self._value

    @property
    def result(self) -> GenerationResult:
        return self._finish()

    @property
    def results(self) -> list[GenerationResult]:
        v = self._finish()
        return [v] if self._single else v
