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
import time
from typing import Callable, Iterator

import numpy as np
import torch

from ..errors import StructgenError
from ..mask.matcher import Matcher
from ..sampling.drafts import GrammarDrafts, PromptLookupDrafts, SourceStats
from ..sampling.speculative import verify_draft
from ..sampling.warpers import TokenSampler, apply_mask
from ..vocab import Vocabulary
from .drafters import DraftModel
from .kvcache import crop_cache, forward_keywords, new_cache, next_cache

__all__ = ["Sequence", "Drafting", "run", "heal_prompt"]


class Sequence:
    """One prompt's decoding state: matcher, pending input, output, finish reason,
    and its own counters (``stats``)."""

    def __init__(self, index: int, prompt_text: str, prompt_ids: list[int], matcher: Matcher | None,
                 vocab: Vocabulary, encode: Callable[[bytes], list[int]], max_new_tokens: int,
                 eos_ids: frozenset[int], *, healed: bytes = b"", budget_safe: bool = True,
                 lookup: PromptLookupDrafts | None = None):
        self.index, self.prompt_text = index, prompt_text
        self.matcher, self.vocab, self.encode = matcher, vocab, encode
        self.max_new, self.eos, self.healed = max_new_tokens, eos_ids, healed
        self.budget_safe = budget_safe
        self.lookup = lookup
        self.pending = list(prompt_ids)
        self.out_ids: list[int] = []
        self.out_bytes = bytearray()
        self.forced = 0
        self.done = False
        self.finish = ""
        self.closed_by_budget = False
        self.stats = {"target_forward_passes": 0, "draft_forward_passes": 0, "mask_time_s": 0.0,
                      "draft_tokens_proposed": {}, "draft_tokens_accepted": {}}
        self._emitted = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def budget_left(self) -> int:
        return self.max_new - len(self.out_ids)

    def allows(self, t: int) -> bool:
        if self.matcher is None:
            return True
        t0 = time.perf_counter()
        ok = self.matcher.check_token(t)
        self.stats["mask_time_s"] += time.perf_counter() - t0
        return ok

    def mask_words(self, matcher: Matcher | None = None) -> np.ndarray | None:
        m = self.matcher if matcher is None else matcher
        if m is None:
            return None
        t0 = time.perf_counter()
        words = m.next_token_mask()
        self.stats["mask_time_s"] += time.perf_counter() - t0
        return words

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

    def choose(self, logits: np.ndarray, sampler: TokenSampler, draft: int | None,
               q: np.ndarray | None = None) -> tuple[int, bool]:
        """(token, draft accepted).  Greedy: the raw argmax when it is allowed (no mask
        needed), else the masked argmax; a draft is accepted when it equals it.
        Sampling: from the masked, warped distribution; a draft is verified exactly
        against the draft distribution ``q`` (masked and warped the same way; None:
        one-hot)."""
        if sampler.greedy:
            top = int(np.argmax(logits))
            if not self.allows(top):
                top = int(np.argmax(apply_mask(logits, self.mask_words())))
            return top, draft is not None and top == draft
        p = sampler.probs(apply_mask(logits, self.mask_words()))
        if draft is None:
            return sampler.draw(p), False
        return verify_draft(p, draft, sampler.rng, q)

    def count(self, key: str, source: str, n: int) -> None:
        per = self.stats[key]
        per[source] = per.get(source, 0) + n

    # --- output
    def delta(self, final: bool = False) -> str:
        start = max(self._emitted, len(self.healed))
        new = bytes(self.out_bytes[start:]) if len(self.out_bytes) > start else b""
        self._emitted = max(self._emitted, len(self.out_bytes))
        return self._decoder.decode(new, final=final)

    def text(self) -> str:
        return bytes(self.out_bytes[len(self.healed):]).decode("utf-8", errors="replace")


class Drafting:
    """What a call drafts with: the grammar's forced continuations (``grammar``), prompt
    lookup (rows carry their own :class:`PromptLookupDrafts`), a draft model, and one
    :class:`SourceStats` per source (draft lengths, off-switch)."""

    def __init__(self, *, grammar: GrammarDrafts | None = None, prompt: bool = False,
                 draft_model: DraftModel | None = None):
        self.grammar, self.prompt, self.draft_model = grammar, prompt, draft_model
        self.stats = {"grammar": SourceStats("grammar", max_len=32, length=32),
                      "prompt": SourceStats("prompt"),
                      # a draft model costs forward passes: judge it after fewer proposals
                      "model": SourceStats(draft_model.name if draft_model else "model", cost=0.3, warmup=12)}
        self.target_time = 0.0  # running mean of a target forward pass (s): prices draft forwards

    @property
    def model_on(self) -> bool:
        return self.draft_model is not None and self.stats["model"].enabled

    def known(self, r: Sequence) -> tuple[list[int], list[str]]:
        """Model-free drafts of row ``r``: the forced continuation, then prompt lookup."""
        m = r.matcher
        if m is None or r.done or m.is_terminated():
            return [], []
        toks: list[int] = []
        if self.grammar is not None:
            toks = self.grammar.propose(m, r.vocab)
        tags = ["grammar"] * len(toks)
        st = self.stats["prompt"]
        if self.prompt and r.lookup is not None and st.enabled:
            probe = m.fork()
            probe.accept_tokens(toks)
            extra = r.lookup.propose(probe, r.out_ids + toks, limit=st.length)
            toks, tags = toks + extra, tags + ["prompt"] * len(extra)
        return toks, tags


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


# --- the loop -------------------------------------------------------------------------

def run(model, rows: list[Sequence], sampler: TokenSampler, fast_forward, pad_id: int,
        deadline: float | None = None, drafting: Drafting | None = None) -> Iterator[tuple[int, str]]:
    """Generate for every row; yields (row index, text delta) as text appears.
    ``fast_forward="inject"`` accepts forced tokens unverified; ``drafting`` says what
    is drafted and verified.  Past ``deadline`` (``time.perf_counter()``), live rows
    end with reason ``"time"``."""
    device = next(model.parameters()).device
    cache = new_cache(model)
    active = [r for r in rows if not r.done]
    attn = torch.zeros((len(active), 0), dtype=torch.long, device=device)
    cache_kw, keep_kw = forward_keywords(model)
    drafting = drafting or Drafting()
    inject = GrammarDrafts(rows[0].encode, hold_back=True) if fast_forward == "inject" else None
    with torch.no_grad():
        while active:
            if deadline is not None and time.perf_counter() > deadline:
                for r in active:
                    r.finish_with("time")
                break
            if inject is not None:
                for r in active:
                    if r.matcher is not None and not r.done:
                        for t in inject.propose(r.matcher, r.vocab):
                            if not r.accept(t, forced=True):
                                break
                            r.pending.append(t)
                if any(r.done for r in active):
                    yield from _emit(r for r in active if r.done)
                    keep = [i for i, r in enumerate(active) if not r.done]
                    if not keep:
                        break
                    cache, attn = _select(cache, attn, keep, device, drafting)
                    active = [active[i] for i in keep]
            P = max(len(r.pending) for r in active)
            block = torch.full((len(active), P), pad_id, dtype=torch.long)
            block_attn = torch.zeros((len(active), P), dtype=torch.long)
            for i, r in enumerate(active):
                block[i, P - len(r.pending):] = torch.tensor(r.pending)
                block_attn[i, P - len(r.pending):] = 1
            known = [drafting.known(r) for r in active]
            drafts = [k[0] for k in known]
            tags = [k[1] for k in known]
            qs: list[list] = [[None] * len(d) for d in drafts]
            if drafting.model_on:
                t0 = time.perf_counter()
                block, block_attn, passes = _model_drafts(drafting, active, sampler, attn, block, block_attn,
                                                          drafts, tags, qs, pad_id, device)
                if drafting.target_time > 0:  # one draft forward, in target forward passes
                    st = drafting.stats["model"]
                    st.cost = _ema(st.cost, (time.perf_counter() - t0) / passes / drafting.target_time)
            else:
                D = max(len(d) for d in drafts)
                ext = torch.full((len(active), D), pad_id, dtype=torch.long)
                ext_attn = torch.zeros((len(active), D), dtype=torch.long)
                for i, d in enumerate(drafts):
                    if d:
                        ext[i, :len(d)] = torch.tensor(d)
                        ext_attn[i, :len(d)] = 1
                block, block_attn = torch.cat([block, ext], 1), torch.cat([block_attn, ext_attn], 1)
            D = block.shape[1] - P
            attn = torch.cat([attn, block_attn.to(device)], 1)
            pos = (attn.cumsum(-1) - 1).clamp_min(0)[:, -(P + D):]
            kwargs = {keep_kw: D + 1} if keep_kw else {}
            kwargs[cache_kw] = cache
            t0 = time.perf_counter()
            out = model(input_ids=block.to(device), attention_mask=attn, position_ids=pos, use_cache=True, **kwargs)
            cache = next_cache(out)
            logits = out.logits[:, -(D + 1):, :].float().cpu().numpy()
            drafting.target_time = _ema(drafting.target_time, time.perf_counter() - t0)
            for i, (r, d) in enumerate(zip(active, drafts)):
                r.pending = []
                r.stats["target_forward_passes"] += 1
                used = 0  # drafts kept in the cache
                for j in range(len(d) + 1):
                    t, ok = r.choose(logits[i, j], sampler, d[j] if j < len(d) else None, qs[i][j] if j < len(d) else None)
                    if ok:
                        if not r.accept(t, forced=True):
                            break
                        used += 1
                        continue
                    if r.accept(t):
                        r.pending = [t]
                    break
                _record(drafting, r, tags[i], used)
                if used < D:  # rejected drafts and right padding: invisible from now on
                    attn[i, attn.shape[1] - D + used:] = 0
            yield from _emit(active)
            keep = [i for i, r in enumerate(active) if not r.done]
            if len(keep) < len(active):
                if not keep:
                    break
                cache, attn = _select(cache, attn, keep, device, drafting)
                active = [active[i] for i in keep]
            if drafting.draft_model is not None and not drafting.model_on:
                drafting.draft_model = None  # switched off: its cache is not kept up to date any more
            # crop columns no live row will ever attend to again
            dead = 0
            col_used = attn.any(0)
            while dead < attn.shape[1] and not bool(col_used[attn.shape[1] - 1 - dead]):
                dead += 1
            if dead:
                crop_cache(cache, dead)
                if drafting.draft_model is not None:
                    drafting.draft_model.crop(dead)
                attn = attn[:, :attn.shape[1] - dead]
    yield from _emit(rows, final=True)


def _model_drafts(drafting: Drafting, active: list[Sequence], sampler: TokenSampler, attn, block, block_attn,
                  drafts: list[list[int]], tags: list[list[str]], qs: list[list], pad_id: int, device):
    """Extend each row's model-free drafts with tokens sampled from the draft model's
    masked (and warped) distribution, one draft forward per position; returns the
    target's block ``[pending][drafts]``, its attention columns and the draft forwards run.  The draft model is
    fed exactly the target's columns, so its cache stays aligned."""
    dm, want, passes = drafting.draft_model, drafting.stats["model"].length, 1
    n = len(active)
    limit = [len(d) + (want if r.matcher is None or not r.matcher.is_terminated() else 0)
             for r, d in zip(active, drafts)]
    probes = [None if r.matcher is None else r.matcher.fork() for r in active]
    for probe, d in zip(probes, drafts):
        if probe is not None:
            probe.accept_tokens(d)
    K = min(len(d) for d in drafts)  # drafts every row already has: fed in the first block
    first = torch.full((n, K), pad_id, dtype=torch.long)
    if K:
        first[:] = torch.tensor([d[:K] for d in drafts])
    ids = torch.cat([block, first], 1)
    cols = torch.cat([block_attn, torch.ones((n, K), dtype=torch.long)], 1)
    full = torch.cat([attn, cols.to(device)], 1)
    logits = dm.forward(ids.to(device), full, (full.cumsum(-1) - 1).clamp_min(0)[:, -ids.shape[1]:], 1)
    for r in active:
        r.stats["draft_forward_passes"] += 1
    j = K
    while j < max(limit):
        step = torch.full((n, 1), pad_id, dtype=torch.long)
        step_attn = torch.zeros((n, 1), dtype=torch.long)
        for i, r in enumerate(active):
            if j >= limit[i]:
                continue
            if j >= len(drafts[i]):  # sample the next draft from the draft model
                words = r.mask_words(probes[i]) if probes[i] is not None else None
                masked = apply_mask(logits[i, -1].numpy(), words)
                if sampler.greedy:
                    t, q = int(np.argmax(masked)), None
                else:
                    q = sampler.probs(masked)
                    t = sampler.draw(q)
                drafts[i].append(t)
                tags[i].append("model")
                qs[i].append(q)
                ok = probes[i] is None or probes[i].accept_token(t)
                if not ok or t in r.eos or (probes[i] is not None and probes[i].must_terminate()):
                    limit[i] = j + 1  # nothing to draft after an end
            step[i, 0] = drafts[i][j]
            step_attn[i, 0] = 1
        ids = torch.cat([ids, step], 1)
        cols = torch.cat([cols, step_attn], 1)
        full = torch.cat([full, step_attn.to(device)], 1)
        logits = dm.forward(step.to(device), full, (full.cumsum(-1) - 1).clamp_min(0)[:, -1:], 1)
        for r in active:
            r.stats["draft_forward_passes"] += 1
        passes += 1
        j += 1
    return ids, cols, passes


def _record(drafting: Drafting, r: Sequence, tags: list[str], used: int) -> None:
    for source in set(tags):
        proposed = tags.count(source)
        accepted = tags[:used].count(source)
        r.count("draft_tokens_proposed", source, proposed)
        r.count("draft_tokens_accepted", source, accepted)
        if source != "grammar":
            drafting.stats[source].record(proposed, accepted)


def _ema(old: float, new: float, rate: float = 0.2) -> float:
    return new if old <= 0 else (1 - rate) * old + rate * new


def _select(cache, attn, keep: list[int], device, drafting: Drafting):
    idx = torch.tensor(keep, dtype=torch.long, device=device)
    cache.batch_select_indices(idx)
    if drafting.draft_model is not None:
        drafting.draft_model.select(idx)
    return cache, attn[idx]


def _emit(rows, final: bool = False) -> Iterator[tuple[int, str]]:
    for r in rows:
        d = r.delta(final=final)
        if d:
            yield r.index, d
