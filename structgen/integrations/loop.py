"""structgen's own KV-cached decoding loop over a ``transformers`` causal LM.

Each prompt is a :class:`Sequence`: its ``Matcher`` (None: unconstrained), the
tokens to feed next and the output so far.  The matcher is the only constraint
state: masks, checks, forced continuations, completions and prompt healing
(a required prefix) all go through it.

**Batches.**  A list of prompts runs as one batch, left padded.  Each step feeds
every live row a block ``[left pad][pending tokens][drafts][right pad]``; pads
get attention-mask 0 and positions come from the mask's running sum, so rows may
feed different numbers of tokens in one forward pass.  Finished rows leave the
batch (``batch_select_indices``); columns no live row uses any more are cropped
(:func:`crop_cache`: transformers 5 takes the number of tokens to remove, 4.x
the new length).

**Fast-forward** (``fast_forward=``): ``"verify"`` (default, exact) feeds the
canonical tokens of the forced continuation as drafts in the same forward pass
and verifies them (:func:`structgen.sampling.speculative.verify_draft` with a
one-hot draft: the output distribution is exactly masked decoding's);
``"inject"`` accepts them without asking the model, except the trailing ones
(at least two tokens or 7 bytes are left to the model, llguidance's rule);
``False``: off.

**Budget-safe closing.**  Before a token is accepted, the loop checks on a fork
that a completion still fits in the tokens left after it
(``Matcher.fits``); when it does not, the current state's completion
(``Matcher.completion_tokens``, which fits by this invariant) is appended and
the row ends with ``closed_by_budget``."""

from __future__ import annotations

import codecs
import inspect
import time
from typing import Callable, Iterator

import numpy as np
import torch

from ..errors import StructgenError
from ..mask.matcher import Matcher
from ..sampling.speculative import verify_draft
from ..sampling.warpers import TokenSampler, apply_mask
from ..vocab import Vocabulary

__all__ = ["Sequence", "run", "heal_prompt", "new_cache", "crop_cache"]


class Sequence:
    """One prompt's decoding state: matcher, pending input, output, finish reason."""

    def __init__(self, index: int, prompt_text: str, prompt_ids: list[int], matcher: Matcher | None,
                 vocab: Vocabulary, encode: Callable[[bytes], list[int]], max_new_tokens: int,
                 eos_ids: frozenset[int], *, healed: bytes = b"", budget_safe: bool = True):
        self.index, self.prompt_text = index, prompt_text
        self.matcher, self.vocab, self.encode = matcher, vocab, encode
        self.max_new, self.eos, self.healed = max_new_tokens, eos_ids, healed
        self.budget_safe = budget_safe
        self.pending = list(prompt_ids)
        self.out_ids: list[int] = []
        self.out_bytes = bytearray()
        self.forced = 0
        self.done = False
        self.finish = ""
        self.closed_by_budget = False
        self._emitted = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def budget_left(self) -> int:
        return self.max_new - len(self.out_ids)

    def allows(self, t: int) -> bool:
        return self.matcher is None or self.matcher.check_token(t)

    def mask_words(self) -> np.ndarray | None:
        return None if self.matcher is None else self.matcher.next_token_mask()

    def _append(self, t: int, forced: bool) -> None:
        self.out_ids.append(t)
        self.out_bytes += self.vocab.token_bytes[t] or b""
        self.forced += forced

    def finish_with(self, reason: str) -> None:
        self.done, self.finish = True, reason

    def accept(self, t: int, *, forced: bool = False) -> bool:
        """Take token ``t`` (known to be allowed).  False when the row finished instead
        (EOS, budget closing, complete, out of tokens); True when it goes on."""
        m = self.matcher
        if t in self.eos and (m is None or m.accept_token(t)):
            self.finish_with("eos")
            return False
        if m is not None:
            probe = m.fork()
            if not probe.accept_token(t):  # cannot happen with a correct mask
                raise StructgenError(f"internal error: token {t} is not allowed here")
            if self.budget_safe and not probe.fits(self.budget_left - 1, self.encode):
                self.close()
                return False
            self.matcher = probe
        self._append(t, forced)
        if m is not None and self.matcher.must_terminate():
            self.finish_with("complete")
            return False
        if self.budget_left <= 0:
            self.finish_with("length")
            return False
        return True

    def close(self) -> None:
        """Append a completion that fits the tokens left, and finish."""
        ids = self.matcher.completion_tokens(self.budget_left, self.encode)
        if ids is None:  # the budget invariant makes this unreachable
            raise StructgenError("internal error: no completion fits the budget left")
        for t in ids:
            self.matcher.accept_token(t)
            self._append(t, forced=False)
        self.closed_by_budget = True
        self.finish_with("budget")

    def drafts(self, mode, limit: int = 32) -> list[int]:
        """Canonical tokens of the forced continuation, cut to what the matcher accepts."""
        m = self.matcher
        if not mode or m is None or self.done or m.is_terminated():
            return []
        forced = m.find_jump_forward_string().encode()
        if not forced:
            return []
        ids = self.encode(forced)[:limit]
        if mode == "inject":
            dropped, nbytes = 0, 0
            while ids and dropped < 2 and nbytes < 7:
                nbytes += len(self.vocab.token_bytes[ids.pop()] or b"")
                dropped += 1
        return ids[:m.validate_tokens(ids)]

    def choose(self, logits: np.ndarray, sampler: TokenSampler, draft: int | None) -> tuple[int, bool]:
        """(token, draft accepted).  Greedy: the raw argmax when it is allowed (no mask
        needed), else the masked argmax.  Sampling: from the masked, warped
        distribution; a draft is verified exactly."""
        if sampler.greedy:
            top = int(np.argmax(logits))
            if not self.allows(top):
                top = int(np.argmax(apply_mask(logits, self.mask_words())))
            return top, draft is not None and top == draft
        p = sampler.probs(apply_mask(logits, self.mask_words()))
        if draft is None:
            return sampler.draw(p), False
        return verify_draft(p, draft, sampler.rng)

    # --- output
    def delta(self, final: bool = False) -> str:
        start = max(self._emitted, len(self.healed))
        new = bytes(self.out_bytes[start:]) if len(self.out_bytes) > start else b""
        self._emitted = max(self._emitted, len(self.out_bytes))
        return self._decoder.decode(new, final=final)

    def text(self) -> str:
        return bytes(self.out_bytes[len(self.healed):]).decode("utf-8", errors="replace")


# --- prompt healing --------------------------------------------------------------------

def heal_prompt(vocab: Vocabulary, prompt_ids: list[int], max_tokens: int = 3) -> tuple[list[int], bytes]:
    """Pop the longest run (up to ``max_tokens``) of final prompt tokens whose bytes are
    a proper prefix of some vocabulary token; returns (kept ids, popped bytes).  The
    popped bytes become the matcher's required prefix."""
    index = vocab.byte_index
    best, h = 0, b""
    for k in range(1, min(max_tokens, len(prompt_ids)) + 1):
        tb = vocab.token_bytes[prompt_ids[-k]]
        if not tb:
            break
        h = tb + h
        if any(len(key) > len(h) for key in index.starting_with(h)):
            best = k
    if not best:
        return prompt_ids, b""
    return prompt_ids[:-best], vocab.decode(prompt_ids[-best:])


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


def forward_keywords(model) -> tuple[str, str | None]:
    """(the cache keyword, the logits-to-keep keyword) of ``model.forward``: recent
    transformers call the cache ``cache`` (``past_key_values`` is deprecated there)."""
    params = inspect.signature(model.forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"
    keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return cache_kw, keep_kw


def _next_cache(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


# --- the loop -------------------------------------------------------------------------

def run(model, rows: list[Sequence], sampler: TokenSampler, fast_forward, pad_id: int,
        deadline: float | None = None) -> Iterator[tuple[int, str]]:
    """Generate for every row; yields (row index, text delta) as text appears.
    Past ``deadline`` (``time.perf_counter()``), live rows end with reason ``"time"``."""
    device = next(model.parameters()).device
    cache = new_cache(model)
    active = [r for r in rows if not r.done]
    attn = torch.zeros((len(active), 0), dtype=torch.long, device=device)
    cache_kw, keep_kw = forward_keywords(model)
    verify = fast_forward == "verify"
    with torch.no_grad():
        while active:
            if deadline is not None and time.perf_counter() > deadline:
                for r in active:
                    r.finish_with("time")
                break
            if fast_forward == "inject":
                for r in active:
                    for t in r.drafts("inject"):
                        if not r.accept(t, forced=True):
                            break
                        r.pending.append(t)
                if any(r.done for r in active):
                    yield from _emit(r for r in active if r.done)
                    keep = [i for i, r in enumerate(active) if not r.done]
                    if not keep:
                        break
                    cache, attn = _select(cache, attn, keep, device)
                    active = [active[i] for i in keep]
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
            kwargs = {keep_kw: D + 1} if keep_kw else {}
            kwargs[cache_kw] = cache
            out = model(input_ids=ids.to(device), attention_mask=attn, position_ids=pos, use_cache=True, **kwargs)
            cache = _next_cache(out)
            logits = out.logits[:, -(D + 1):, :].float().cpu().numpy()
            for i, (r, d) in enumerate(zip(active, drafts)):
                r.pending = []
                used = 0  # drafts kept in the cache
                for j in range(len(d) + 1):
                    t, ok = r.choose(logits[i, j], sampler, d[j] if j < len(d) else None)
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
