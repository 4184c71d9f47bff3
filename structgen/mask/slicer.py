"""Vocabulary slices: precomputed masks for the token classes lexers loop on.

Inside a JSON string, a comment or a run of digits, most of the vocabulary
stays inside the current lexeme, and a full trie walk spends its time
confirming that.  A *slice* is the set of tokens whose bytes a small
prefix-closed pattern reads whole (e.g. ``[^"\\\\\\x00-\\x1f]*``: every token
without a quote, a backslash or a control byte, including tokens that end
inside a UTF-8 character).  When every string the pattern reads keeps a lexer
state alive, all the slice's tokens are allowed there: the mask ORs the slice's
bitset and walks only the trie of the remaining tokens (the *rest* trie).

Exact by construction: a sliced token never leaves the lexeme, so it raises no
lexeme-end event; an event's subtree holds no sliced token (its prefix is not
read by the pattern), so the rest trie holds that subtree whole.

Slices are built once per vocabulary (and kernel backend), when its first
grammar is compiled, and shared by every grammar over that vocabulary.

Inside a walk the same holds for a subtree: a node whose bytes below are all in
one of the ``LOOP_CLASSES`` (the trie's ``pure`` bits), reached in a lexer state
that loops on that class, allows its subtree whole without entering it (see
``walk_trie``).  Those bits are made here too, once per trie.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..automata.fsm import ByteDFA
from ..automata.regex import regex_to_dfa
from ..vocab.vocabulary import TokenTrie, Vocabulary
from .lexer import Lexer

__all__ = ["DEFAULT_SLICES", "LOOP_CLASSES", "Slice", "Slicer", "slicer_for", "MIN_SLICE_TOKENS"]

_NO_FILTER = np.uint64(0)  # slice_cover's filter for a lexer read as it is

# The byte classes lexers loop on.  Each pattern must be prefix-closed (``[...]*``
# or ``[...]{0,n}``) so that its trimmed DFA reads exactly the prefixes of its strings.
# The bounded JSON string slices cover the interior of a string with a length
# budget left (``maxLength``, a counted pattern), where no state loops.  The
# ``utf8_`` slices read well-formed UTF-8 (as a Unicode-aware lexer does) beside
# some ASCII: they cover string states that exclude an ASCII byte the JSON string
# slice holds (a pattern's ``[^#]``), whose rest trie would otherwise be every
# non-ASCII token.
DEFAULT_SLICES: tuple[tuple[str, str], ...] = (
    ("line", r"[^\n\r]*"),
    ("json_string", r'[^"\\\x00-\x1f]*'),
    ("json_string_16", r'[^"\\\x00-\x1f]{0,16}'),
    ("json_string_8", r'[^"\\\x00-\x1f]{0,8}'),
    ("identifier", r"[A-Za-z0-9_]*"),
    ("words", r"[A-Za-z ]*"),
    ("utf8_alnum", r"(?:[A-Za-z0-9_ ]|[^\x00-\x7f])*"),
    ("utf8_letters", r"(?:[A-Za-z ]|[^\x00-\x7f])*"),
    ("lower", r"[a-z]*"),
    ("digits", r"[0-9]*"),
    ("whitespace", r"[ \t\n\r]*"),
)

# Byte classes lexer states loop on, for the walks' pure subtrees (at most 7: one
# uint8 per trie node).  ASCII only: a UTF-8 lexer state does not loop on a lead byte.
LOOP_CLASSES: tuple[tuple[str, bytes], ...] = (
    ("identifier", bytes(b for b in range(128) if chr(b).isalnum() or b == ord("_"))),
    ("json_string", bytes(b for b in range(0x20, 0x80) if b not in b'"\\')),
    ("line", bytes(b for b in range(128) if b not in b"\n\r")),
    ("digits", b"0123456789"),
    ("lower", bytes(range(ord("a"), ord("z") + 1))),
    ("letters", bytes(b for b in range(128) if chr(b).isalpha())),
    ("whitespace", b" \t\n\r"),
)


def _members(classes) -> np.ndarray:
    """uint8[256]: bit ``p`` of byte ``b`` set iff ``b`` is in class ``p``."""
    member = np.zeros(256, np.uint8)
    for p, (_, members) in enumerate(classes):
        member[list(members)] |= np.uint8(1 << p)
    return member  # writeable, as the walks' other arrays: read-only is another numba signature


LOOP_MEMBERS = _members(LOOP_CLASSES)


# A slice smaller than this (tokens, fraction of the text tokens) is not worth its rest trie.
MIN_SLICE_TOKENS = 64
MIN_SLICE_FRACTION = 0.05
# Product states (lexer state, pattern state) explored before giving up on coverage.
MAX_COVER_STATES = 4096


@dataclass(frozen=True, eq=False)
class Slice:
    """The tokens a pattern reads whole (``bits``, read-only) and the trie of the others."""

    name: str
    pattern: ByteDFA
    bits: np.ndarray  # uint32[num_words]
    rest: TokenTrie
    n_tokens: int
    full_node: np.ndarray  # int32: the vocabulary trie's node of every ``rest`` node
    rest_pure: np.ndarray  # uint8: ``rest``'s pure bits (see the module docstring)

    @cached_property
    def rest_hi(self) -> np.ndarray:
        """``[rest.num_nodes]``: the end of a walk over the whole rest trie."""
        return np.full(1, self.rest.num_nodes, np.int32)


def build_slice(name: str, pattern: ByteDFA, vocab: Vocabulary, kernels, min_tokens: float = 0) -> Slice | None:
    """Split ``vocab``'s trie by ``pattern`` (see the module docstring); None, with no
    rest trie built, when the slice has fewer than ``min_tokens`` tokens."""
    trie = vocab.trie
    n = trie.num_nodes
    states = np.empty(n, np.int32)
    kernels.trie_states(pattern.trans, pattern.classes, pattern.start, trie.byte, trie.depth,
                        states, np.empty(trie.max_depth + 2, np.int32))
    in_slice = states >= 0  # the node's whole byte string is read by the pattern
    counts = np.diff(trie.tok_start)
    entry_node = np.repeat(np.arange(n), counts)  # trie node of every tok_ids entry
    sliced_entry = in_slice[entry_node]
    ids = trie.tok_ids[sliced_entry].astype(np.int64)
    n_tokens = int(len(np.unique(ids)))
    if n_tokens < min_tokens:
        return None
    bits = np.zeros(vocab.num_words, np.uint32)
    np.bitwise_or.at(bits, ids >> 5, (np.uint32(1) << (ids & 31).astype(np.uint32)))
    bits.flags.writeable = False

    # Keep a node iff its subtree holds a token outside the slice; DFS order is kept.
    rest_tok = (counts > 0) & ~in_slice
    before = np.zeros(n + 1, np.int64)
    np.cumsum(rest_tok, out=before[1:])
    keep = before[trie.subtree_end] - before[:n] > 0
    kept_before = np.zeros(n + 1, np.int32)
    np.cumsum(keep, out=kept_before[1:])
    rest_counts = np.where(rest_tok, counts, 0)[keep]
    tok_start = np.zeros(len(rest_counts) + 1, np.int32)
    np.cumsum(rest_counts, out=tok_start[1:])
    rest = TokenTrie(trie.byte[keep], trie.depth[keep], kept_before[trie.subtree_end[keep]],
                     tok_start, trie.tok_ids[~sliced_entry])
    full_node = np.flatnonzero(keep).astype(np.int32)
    return Slice(name, pattern, bits, rest, n_tokens, full_node,
                 kernels.trie_pure(rest.byte, rest.subtree_end, LOOP_MEMBERS))


class Slicer:
    """The slices of one vocabulary, and which one covers a given lexer state."""

    def __init__(self, vocab: Vocabulary, kernels, patterns=DEFAULT_SLICES):
        self.vocab, self._k = vocab, kernels
        self.names = [name for name, _ in patterns]
        self.patterns = {name: regex_to_dfa(p) for name, p in patterns}
        # every pattern over its own byte classes in one table for the coverage kernel
        n_u = max((d.num_states for d in self.patterns.values()), default=1)
        n_c = max((d.trans.shape[1] for d in self.patterns.values()), default=1)
        self._pat_next = np.full((len(patterns), n_u, n_c), -1, np.int32)
        self._pat_cls = np.zeros((len(patterns), 256), np.uint8)
        for p, dfa in enumerate(self.patterns.values()):
            self._pat_next[p, :dfa.num_states, :dfa.trans.shape[1]] = dfa.trans
            self._pat_cls[p] = dfa.classes
        self._pat_start = np.array([d.start for d in self.patterns.values()], np.int32)
        self._visited = np.zeros(0, np.uint8)
        self._queue = (np.empty(MAX_COVER_STATES, np.int32), np.empty(MAX_COVER_STATES, np.int32))
        self._slices: dict[str, Slice] = {}
        self._choice: dict[tuple[bytes, int], str | None] = {}
        self._base: dict[tuple[bytes, int], tuple[str | None, int]] = {}  # see _projected
        self._lock = threading.Lock()
        self.pure = kernels.trie_pure(vocab.trie.byte, vocab.trie.subtree_end, LOOP_MEMBERS)
        # Built now, once per vocabulary (like its trie), so that no mask pays for
        # it; a slice too small to shorten walks is dropped (its walk dies early anyway).
        n_text = sum(1 for b in vocab.token_bytes if b)
        keep = []
        for p, name in enumerate(self.names):
            sl = build_slice(name, self.patterns[name], vocab, kernels,
                             min_tokens=max(MIN_SLICE_TOKENS, MIN_SLICE_FRACTION * n_text))
            if sl is not None:
                self._slices[name] = sl
                keep.append(p)
        # largest first: the first pattern that covers a state is the slice to use
        keep.sort(key=lambda p: -self._slices[self.names[p]].n_tokens)
        self.names = [self.names[p] for p in keep]
        self.patterns = {n: self.patterns[n] for n in self.names}
        self._pat_next, self._pat_cls = self._pat_next[keep], self._pat_cls[keep]
        self._pat_start = self._pat_start[keep]
        self._cores = np.zeros(len(self.names), np.uint64)  # slice_cover's output

    def slice(self, name: str) -> Slice:
        return self._slices[name]  # every kept pattern's slice is built in __init__

    def covering(self, lex: Lexer, state: int, *, first_only: bool = False) -> list[str]:
        """The patterns every string of which keeps ``state`` of ``lex`` alive
        (``first_only``: only the largest such slice's)."""
        bits, _ = self._cover(lex, lex.filter, state, first_only)
        return [name for p, name in enumerate(self.names) if bits >> p & 1]

    def _cover(self, lex: Lexer, filter_: np.uint64, state: int, first_only: bool) -> tuple[int, list[int]]:
        """``slice_cover`` of ``state`` of ``lex`` read through ``filter_``: the covered
        patterns' bits, and per pattern the components alive all along its search."""
        if not self.names:
            return 0, []
        with self._lock:  # one set of scratch buffers
            need = lex.trans.shape[0] * self._pat_next.shape[1]
            if len(self._visited) < need:
                self._visited = np.zeros(need, np.uint8)
            bits = self._k.slice_cover(lex.trans, lex.classes, lex.live, filter_, state, self._pat_next,
                                       self._pat_cls, self._pat_start, MAX_COVER_STATES, self._visited, *self._queue,
                                       self._cores, first_only)
            return bits, self._cores.tolist()

    def _first(self, lex: Lexer, filter_: np.uint64, state: int) -> tuple[str | None, int]:
        """The largest slice covering ``state`` through ``filter_`` (None: none), and the
        components alive all along its search."""
        bits, cores = self._cover(lex, filter_, state, True)
        if not bits:
            return None, 0
        p = (bits & -bits).bit_length() - 1
        best = self.slice(self.names[p])
        return (None if best.n_tokens < MIN_SLICE_TOKENS else best.name), cores[p]

    def choose(self, lex: Lexer, state: int) -> Slice | None:
        """The largest slice covering ``state`` of ``lex`` (None: walk the whole trie)."""
        key = (lex.walk_key, state)
        name = self._choice.get(key, "")
        if name == "":
            name = self._first(lex, lex.filter, state)[0] if not lex.allowed else self._projected(lex, state)
            if len(self._choice) >= 1 << 16:
                self._choice.clear()
            self._choice[key] = name
        return None if name is None else self._slices[name]

    def _projected(self, lex: Lexer, state: int) -> str | None:
        """A projection's choice from its superset's, searched once for all projections of
        that product (each object position of a big object is one, and the state after a
        key's opening quote costs a search over every key's states).  Its filter only cuts
        transitions, so a pattern the superset does not cover no projection covers; the
        superset's first covered pattern is the projection's too when a component alive all
        along that search is one the projection allows; otherwise the projection is searched."""
        base_key = (lex.base_key, state)
        base = self._base.get(base_key)
        if base is None:
            if len(self._base) >= 1 << 16:
                self._base.clear()
            base = self._base[base_key] = self._first(lex, _NO_FILTER, state)
        name, core = base
        if name is None or core & lex.allowed:
            return name
        return self._first(lex, lex.filter, state)[0]


_SLICERS: "weakref.WeakKeyDictionary[Vocabulary, dict[str, Slicer]]" = weakref.WeakKeyDictionary()
_SLICERS_LOCK = threading.Lock()


def slicer_for(vocab: Vocabulary, kernels) -> Slicer:
    """The slicer shared by every grammar over ``vocab`` with this kernel backend."""
    with _SLICERS_LOCK:
        per_backend = _SLICERS.setdefault(vocab, {})
        sl = per_backend.get(kernels.__name__)
        if sl is None:
            sl = per_backend[kernels.__name__] = Slicer(vocab, kernels)
        return sl
