"""Grammar-aligned decoding by adaptive sampling with approximate expected
futures (ASAp; Park et al., arXiv 2405.21047).

Target: P^G(x) ∝ P(x)·1[x ∈ L].  Masked decoding samples Π p·m/Σp·m instead,
which over-weights prefixes with little grammatical future.  The exact rule is
P^G(t | w) ∝ P(t | w)·EFG(wt), with the expected future grammaticality
EFG(w) = Σ_{s: ws ∈ L} P(s | w).  ASAp keeps a trie of its earlier samples with an
estimate Ê ≥ EFG per node and samples from P(t | w)·m(t)·Ê(wt); after each
sample it updates the sampled path bottom-up,
Ê(w) = Σ_{t allowed} P(t|w)·Ê(wt), where children never sampled count with
Ê = 1.  A node therefore stores only its sampled children and the allowed mass
``allowed`` = Σ_{t allowed} P(t|w): Ê(w) = allowed − Σ_sampled P(t|w)·(1 − Ê(wt)).
Ê only decreases, and Q_n converges to P^G as samples accumulate.

One ``ASAp`` object belongs to one (model, prompt, constraint, budget): the trie
is keyed by tokens alone.  Memory is bounded by ``max_nodes``: once the trie
holds that many nodes it stops growing (estimates on stored nodes keep
improving; beyond them the sampler is plain masking, the optimistic Ê = 1)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigurationError
from .lm import RowMap, allowed_logprobs
from .warpers import draw

__all__ = ["ASAp", "ASApSample"]


class _Node:
    __slots__ = ("logp", "efg", "allowed", "children")

    def __init__(self, logp: float):
        self.logp = logp        # log P(token | parent prefix)
        self.efg = 1.0          # Ê: the expected future grammaticality estimate (an upper bound)
        self.allowed = -1.0     # Σ_{t allowed} P(t | this prefix); -1 until first expanded
        self.children: dict[int, _Node] | None = None


@dataclass
class ASApSample:
    tokens: list[int]   # EOS not included
    finished: bool      # ended by EOS (False: a dead end or the budget)


class ASAp:
    """ASAp sampler (arXiv 2405.21047) with a trie reused across ``sample`` calls.

    ``max_tokens``: the budget before EOS (part of the target: outputs longer are
    not in L).  ``max_nodes``: the trie's size cap.  ``batch_size``: sequences
    decoded together (one ``lm.logprobs`` call per step), sharing the trie as it
    was at the start of their batch."""

    def __init__(self, *, max_tokens: int = 64, max_nodes: int = 1_000_000, batch_size: int = 4):
        if max_tokens < 0 or max_nodes < 1 or batch_size < 1:
            raise ConfigurationError(f"need max_tokens >= 0, max_nodes >= 1, batch_size >= 1; got "
                                     f"{max_tokens}, {max_nodes}, {batch_size}")
        self.max_tokens, self.max_nodes, self.batch_size = max_tokens, max_nodes, batch_size
        self.root = _Node(0.0)
        self.num_nodes = 1
        self.num_samples = 0

    # --- one step ----------------------------------------------------------------------
    def _step_logits(self, node: _Node | None, lp: np.ndarray, matcher, depth: int, eos: Sequence[int]) -> np.ndarray:
        """log of P(t|w)·m(t)·Ê(wt) (unnormalised); expands ``node`` on its first visit."""
        if depth >= self.max_tokens:  # the budget: only EOS remains in the target
            lm_ = np.full(len(lp), -np.inf)
            if matcher.can_terminate():
                ids = [e for e in eos if e < len(lp)]
                lm_[ids] = lp[ids]
        else:
            lm_ = allowed_logprobs(lp, matcher)
        if node is None:
            return lm_
        if node.allowed < 0:
            node.allowed = float(np.exp(lm_[lm_ > -np.inf]).sum())
        if node.children:
            for t, child in node.children.items():
                lm_[t] = lm_[t] + math.log(child.efg) if child.efg > 0 else -np.inf
        return lm_

    def _child(self, node: _Node | None, t: int, logp: float) -> _Node | None:
        if node is None:
            return None
        if node.children is None:
            node.children = {}
        child = node.children.get(t)
        if child is None and self.num_nodes < self.max_nodes:
            child = node.children[t] = _Node(logp)
            self.num_nodes += 1
        return child

    @staticmethod
    def _update(path: list[_Node]) -> None:
        for node in reversed(path):
            if node.allowed < 0:
                continue
            lost = sum(math.exp(c.logp) * (1.0 - c.efg) for c in (node.children or {}).values())
            node.efg = min(1.0, max(0.0, node.allowed - lost))

    # --- sampling ----------------------------------------------------------------------
    def sample(self, lm, matcher_factory: Callable[[], object], n: int, rng: np.random.Generator, *,
               prompt: Sequence[int] = ()) -> list[ASApSample]:
        """``n`` samples, ``batch_size`` at a time; the trie learns from each batch."""
        out: list[ASApSample] = []
        while len(out) < n:
            out += self._batch(lm, matcher_factory, min(self.batch_size, n - len(out)), rng, list(prompt))
        return out

    def _batch(self, lm, matcher_factory, b: int, rng: np.random.Generator, prompt: list[int]) -> list[ASApSample]:
        matchers = [matcher_factory() for _ in range(b)]
        eos_set = frozenset(lm.eos_ids) | matchers[0].compiled.vocab.eos_ids
        eos = sorted(eos_set)
        tokens: list[list[int]] = [[] for _ in range(b)]
        nodes: list[_Node | None] = [self.root] * b
        paths: list[list[_Node]] = [[self.root] for _ in range(b)]
        result: list[ASApSample | None] = [None] * b
        rows = RowMap(lm)
        lm_row: list[int | None] = [None] * b
        first = True
        while any(r is None for r in result):
            live = [i for i in range(b) if result[i] is None]
            lps = rows.call([prompt + tokens[i] for i in live], None if first else [lm_row[i] for i in live])
            first = False
            for j, i in enumerate(live):
                lm_row[i] = j
                logits = self._step_logits(nodes[i], lps[j], matchers[i], len(tokens[i]), eos)
                top = float(np.max(logits))
                if top == -np.inf:  # dead end (or budget without a complete output): Ê = 0 here
                    if nodes[i] is not None:
                        nodes[i].allowed = 0.0
                    result[i] = ASApSample(tokens[i], False)
                    continue
                t = draw(np.exp(logits - top), rng)
                child = self._child(nodes[i], t, float(lps[j][t]))
                if child is not None:
                    paths[i].append(child)
                nodes[i] = child
                if not matchers[i].accept_token(t):
                    raise AssertionError(f"ASAp drew token {t}, which the matcher refuses")
                if t in eos_set:
                    if child is not None:
                        child.allowed, child.efg = -1.0, 1.0  # an accepted EOS: Ê = 1 exactly
                    result[i] = ASApSample(tokens[i], True)
                else:
                    tokens[i].append(t)
        for p in paths:
            self._update(p)
        self.num_samples += b
        return result  # type: ignore[return-value]

    # --- inspection --------------------------------------------------------------------
    def log_prob(self, lm, matcher_factory: Callable[[], object], tokens: Sequence[int], *,
                 prompt: Sequence[int] = ()) -> float:
        """log Q(tokens + EOS) under the current trie (nothing is learned); -inf if impossible."""
        matcher = matcher_factory()
        node: _Node | None = self.root
        eos = sorted(frozenset(lm.eos_ids) | matcher.compiled.vocab.eos_ids)
        total = 0.0
        seq = list(tokens) + [eos[0]]
        for k, t in enumerate(seq):
            lp = np.asarray(lm.logprobs([list(prompt) + list(tokens[:k])])[0], dtype=np.float64)
            logits = self._step_logits_readonly(node, lp, matcher, k, eos)
            z = np.logaddexp.reduce(logits)
            if z == -np.inf or logits[t] == -np.inf:
                return -math.inf
            total += float(logits[t] - z)
            if not matcher.accept_token(t):
                return -math.inf
            node = node.children.get(t) if node is not None and node.children else None
        return total

    def _step_logits_readonly(self, node, lp, matcher, depth, eos) -> np.ndarray:
        saved = None if node is None else node.allowed
        out = self._step_logits(node, lp, matcher, depth, eos)
        if node is not None:
            node.allowed = saved
        return out

    @property
    def root_efg(self) -> float:
        """Ê at the root: an upper bound on P(L) (given the trie's coverage)."""
        return self.root.efg

    # --- persistence -------------------------------------------------------------------
    def save(self, path) -> None:
        def enc(node: _Node) -> dict:
            d = {"p": node.logp, "e": node.efg, "m": node.allowed}
            if node.children:
                d["c"] = {str(t): enc(c) for t, c in node.children.items()}
            return d

        doc = {"format": "structgen.asap/1", "max_tokens": self.max_tokens, "max_nodes": self.max_nodes,
               "batch_size": self.batch_size, "num_samples": self.num_samples, "root": enc(self.root)}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))

    @classmethod
    def load(cls, path) -> "ASAp":
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if doc.get("format") != "structgen.asap/1":
            raise ConfigurationError(f"{path}: not a structgen ASAp trie (format {doc.get('format')!r})")
        obj = cls(max_tokens=doc["max_tokens"], max_nodes=doc["max_nodes"], batch_size=doc["batch_size"])
        obj.num_samples = doc["num_samples"]
        count = 0

        def dec(d: dict) -> _Node:
            nonlocal count
            count += 1
            node = _Node(float(d["p"]))
            node.efg, node.allowed = float(d["e"]), float(d["m"])
            if "c" in d:
                node.children = {int(t): dec(c) for t, c in d["c"].items()}
            return node

        obj.root = dec(doc["root"])
        obj.num_nodes = count
        return obj
