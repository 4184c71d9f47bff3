"""Compiled constraints and per-sequence matchers.

A parser state is ``(row, lex)``: ``row`` is a canonical Earley row (an
opaque, hashable object, see grammar/earley.py) and ``lex`` a state of the lexer for that row's allowed
terminals (0 = no pending bytes).  Lexemes are greedy: a lexeme goes on while
the next byte extends it and ends only when it cannot (no backtracking), as in
llguidance and lark's contextual lexer.  When a lexeme matches both a grammar
terminal and an ``%ignore`` terminal, the grammar terminal wins.

Mask for ``(row, lex)`` = tokens that stay inside the current lexeme (a trie
walk cached per (lexer, state)) OR, for each place a lexeme can end inside a
token, the walk of that token subtree from the next row (recursively)."""

from __future__ import annotations

import threading
import weakref
from functools import cached_property, lru_cache

import numpy as np

from ..grammar.earley import ADVANCE_KEY_SHIFT, DEAD, EarleyParser, Row
from ..grammar.ir import Grammar, prune_unproductive
from ..limits import Limits
from ..report import CompileReport
from ..vocab.vocabulary import Vocabulary
from .bitmask import token_bitset, write_row
from .completion import CompletionCache
from .kernels import get_kernels
from .lexer import Lexer, LexerFactory
from .slicer import LOOP_MEMBERS, Slice, slicer_for
from .lru import ByteLRU

State = tuple[Row, int]  # (earley row, lexer state)


_MISSING = object()
_WALK_BUFFERS = threading.local()
_MASK_BUFFERS = threading.local()
_NO_BASE = np.zeros(0, np.uint32)
_NO_BASE.flags.writeable = False  # read-only like a slice's bits: one numba signature
_INT32 = np.dtype(np.int32)


def _mask_buffers(num_words: int) -> tuple:
    """This thread's scratch for building a mask: the bitset (all zero between
    masks), the list of its nonzero words, and the pairs ``take_mask`` writes."""
    hit = getattr(_MASK_BUFFERS, "by_width", None)
    if hit is None or len(hit[0]) != num_words:
        hit = _MASK_BUFFERS.by_width = (np.zeros(num_words, np.uint32), np.empty(num_words, np.int32),
                                        np.empty(2 * num_words, np.uint32))
    return hit


@lru_cache(maxsize=4)
def _all_words(num_words: int) -> np.ndarray:
    return np.arange(num_words, dtype=np.int32)


_EOS: "weakref.WeakKeyDictionary[Vocabulary, tuple]" = weakref.WeakKeyDictionary()


def _eos_of(vocab: Vocabulary) -> tuple:
    """The EOS tokens of ``vocab`` as a read-only bitset and as its nonzero words'
    indices and values, made once per vocabulary (not per compiled constraint)."""
    hit = _EOS.get(vocab)
    if hit is None:
        bits = token_bitset(vocab.num_words, vocab.eos_ids)
        bits.flags.writeable = False
        idx = np.flatnonzero(bits).astype(np.int32)
        hit = _EOS[vocab] = (bits, idx, bits[idx])
    return hit


def _walk_buffers(trie, num_words: int) -> tuple:
    """This thread's scratch for trie walks over ``trie`` (or a slice's smaller
    trie), shared by every constraint over it instead of ~3 MB per constraint, in
    ``walk_grouped``'s order: the word buffer (all zero between walks), event lo /
    hi / state arrays, the DFS stack and the touched-word list."""
    by_trie = getattr(_WALK_BUFFERS, "by_trie", None)
    if by_trie is None:
        by_trie = _WALK_BUFFERS.by_trie = {}
    hit = by_trie.get((id(trie), num_words))
    if hit is None or hit[0] is not trie:  # the trie is held, so its id is not reused meanwhile
        if len(by_trie) >= 8:
            by_trie.clear()
        n = trie.num_nodes + 1
        events = (np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32))
        hit = by_trie[(id(trie), num_words)] = (trie, np.zeros(num_words, np.uint32), *events,
                                               np.empty(trie.max_depth + 2, np.int32), np.empty(num_words, np.int32))
    return hit[1:]


class CompiledGrammar:
    """An immutable constraint compiled for one vocabulary, shared by all its
    matchers, from any number of threads.  Caches (rows, steps, lexers, masks)
    grow lazily and are bounded by ``limits`` (see :class:`~structgen.Limits`):
    past a bound they forget, so a constraint serves any number of tokens.

    ``walk_cache``: the cache of trie walks (plans, see ``_plan``) to share (a
    :class:`GrammarCompiler` passes its own, common to every constraint over the
    vocabulary); a private one of ``limits.mask_cache_bytes`` when None.  The
    vocabulary's slicer (see mask/slicer.py) is shared by every constraint over it.
    ``report``: what the compiler did not enforce exactly (empty for regexes and
    grammars)."""

    def __init__(self, grammar: Grammar, vocab: Vocabulary, *, kernels: str = "auto",
                 cache_bytes: int | None = None, kind: str = "grammar", limits: Limits | None = None,
                 walk_cache: ByteLRU | None = None,
                 report: CompileReport | None = None):
        self.grammar, self.vocab, self.kind = grammar, vocab, kind
        self.limits = limits = Limits.make(limits)
        self.report = report if report is not None else CompileReport()
        grammar = self.grammar = prune_unproductive(grammar)
        self.parser = EarleyParser(grammar, max_rows=limits.max_earley_rows)
        self.ignore_mask = sum(1 << t for t in grammar.ignore)
        self._k = get_kernels(kernels)  # type: ignore[arg-type]
        self._trie = vocab.trie
        n = self._trie.num_nodes
        self._root_lo, self._root_hi = np.zeros(1, np.int32), np.full(1, n, np.int32)
        self._slicer = slicer_for(vocab, self._k)  # vocabulary-wide data, built once
        self._lexers: dict[int, Lexer] = {}
        self._lexer_bytes = 0  # their tables' bytes, kept as they are built (cache_size_bytes is O(1))
        self._lexer_factory = LexerFactory(grammar.terminals, max_states=limits.max_lexer_states,
                                           kernels=self._k)
        self._lexer_lock = threading.Lock()
        self._inner = walk_cache if walk_cache is not None else ByteLRU(limits.mask_cache_bytes)
        self._lock = threading.Lock()  # one computation per mask (another thread waits, then reads it)
        self._masks = ByteLRU(limits.mask_cache_bytes if cache_bytes is None else cache_bytes)  # see _stored
        self._steps: dict[int, Row | None] = {}  # (row serial, lex, token) packed in an int -> row
        self._step_lex: dict[int, int] = {}  # ... -> lexer state
        self._eos, *self._eos_words = _eos_of(vocab)  # read-only, shared by every matcher
        self.initial_state: State = (self.parser.initial, 0)

    def __repr__(self) -> str:
        return (f"CompiledGrammar({self.kind}, terminals={len(self.grammar.terminals)}, "
                f"rules={len(self.grammar.rules)}, vocab={self.vocab.name or self.vocab.size})")

    @cached_property
    def completion_cache(self) -> CompletionCache:
        """Completions, closing tokens and prefix masks of this constraint (see mask/completion.py)."""
        return CompletionCache()

    def matcher(self, **options) -> "Matcher":
        """A new matcher at the start of the output (``prefix=``, ``eos_ids=``: see :class:`Matcher`)."""
        from .matcher import Matcher

        return Matcher(self, **options)

    # --- caches ---------------------------------------------------------------
    @property
    def cache_size_bytes(self) -> int:
        """Approximate bytes held by this constraint's own caches (masks, steps, rows);
        the shared walk cache is counted by its compiler."""
        return self._masks.used + 160 * len(self._steps) + 600 * self.parser.num_rows + self._lexer_bytes

    def clear_cache(self) -> None:
        """Forget masks, steps and memoised rows (live matchers stay valid)."""
        self._masks.clear()
        self._steps.clear()
        self._step_lex.clear()
        self.parser.clear_cache()
        self.__dict__.pop("completion_cache", None)

    # --- lexing and parsing ------------------------------------------------
    def lexer(self, row: Row) -> Lexer:
        mask = row.allowed | self.ignore_mask
        lex = self._lexers.get(mask)
        if lex is None:
            with self._lexer_lock:  # the factory's tables are not thread-safe
                lex = self._lexers.get(mask)
                if lex is None:
                    lex = self._lexers[mask] = self._lexer_factory.build(mask)
                    self._lexer_bytes += lex.nbytes
        return lex

    def after_lexeme(self, row: Row, terms: int) -> Row | int:
        """Row after a lexeme matching the terminal bitmask ``terms`` ends."""
        grammar_terms = terms & ~self.ignore_mask
        if grammar_terms:
            nxt = self.parser.advance(row, grammar_terms)
            if nxt != DEAD:
                return nxt
        return row if terms & self.ignore_mask else DEAD

    def can_end(self, state: State) -> bool:
        """Is the output so far a complete sentence?"""
        row, lex_state = state
        if lex_state == 0:
            return row.accepts
        terms = self.lexer(row).terms_at(lex_state)
        if not terms:
            return False
        nxt = self.after_lexeme(row, terms)
        return nxt != DEAD and nxt.accepts

    def advance_bytes(self, state: State, data: bytes) -> State | None:
        """State after ``data``; None if some byte is not allowed."""
        row, s = state
        lex = self.lexer(row)
        for b in data:
            t = lex.step(s, b)
            if t < 0:
                terms = lex.terms_at(s) if s else 0
                if not terms:
                    return None
                row = self.after_lexeme(row, terms)
                if row == DEAD:
                    return None
                lex = self.lexer(row)
                t = lex.step(0, b)
                if t < 0:
                    return None
            s = t
        if s and not lex.extends(s):  # nothing can extend it: close the lexeme now
            row = self.after_lexeme(row, lex.terms_at(s))
            if row == DEAD:
                return None
            s = 0
        return row, s

    def advance_token(self, state: State, token_id: int) -> State | None:
        if not 0 <= token_id < self.vocab.size:
            return None
        # one int (serials are never reused; lexer states and ids fit 32 bits): a key
        # the garbage collector neither counts nor scans, unlike a tuple
        key = (state[0].serial << 32 | state[1]) << 32 | int(token_id)
        # Memoised as two dicts (row; lexer state) rather than (row, lex) tuples: a
        # tuple holding a row stays on the garbage collector's lists, and millions of
        # them make every full collection slower and more frequent.
        row = self._steps.get(key, _MISSING)  # single dict reads: safe while another thread clears
        if row is None:
            return None
        if row is not _MISSING:
            lex = self._step_lex.get(key)
            if lex is not None:
                return row, lex
        data = self.vocab.token_bytes[token_id]
        nxt = self.advance_bytes(state, data) if data else None
        if len(self._steps) >= self.limits.max_step_entries:
            self._steps.clear()  # frees the rows only steps held
            self._step_lex.clear()
        if nxt is not None:
            self._step_lex[key] = nxt[1]  # first: a reader that finds the row finds its state
        self._steps[key] = None if nxt is None else nxt[0]
        return nxt

    # --- masks -------------------------------------------------------------
    def mask(self, state: State) -> np.ndarray:
        """uint32[num_words] bitset of allowed tokens (EOS included when complete), a
        new read-only array made from the cached mask (see ``_stored``)."""
        return self._dense(self._stored(state))

    def write_mask(self, state: State, bitmask, index: int) -> None:
        """Write the mask into row ``index`` of an int32 ``[batch, words]`` numpy array
        or torch tensor (numpy rows are filled in place, with no array in between)."""
        stored = self._stored(state)
        if type(bitmask) is np.ndarray and bitmask.dtype is _INT32 and bitmask.ndim == 2 \
                and bitmask.shape[1] == self.vocab.num_words:  # the common case, checked cheaply
            self._expand(stored, bitmask[index])
        else:
            write_row(bitmask, index, self._dense(stored))

    def _dense(self, stored: tuple) -> np.ndarray:
        """A cached mask as a new read-only uint32 bitset."""
        out = np.empty(self.vocab.num_words, np.uint32)
        self._expand(stored, out.view(np.int32))
        out.flags.writeable = False
        return out

    def _expand(self, stored: tuple, out: np.ndarray) -> None:
        """Write a cached mask into the int32 row ``out``."""
        pairs, words = stored
        if pairs is None:
            out[:] = words
        else:
            self._k.expand_mask(out, words, pairs)

    def _stored(self, state: State) -> tuple:
        """The cached mask of ``state``: ``(pairs, base)``, the mask being ``base`` (a
        slice's shared bitset, or zeros when empty) with word ``pairs[2j]`` set to
        ``pairs[2j + 1]``, or ``(None, words)`` for a dense one (int32 words).  A cold mask is
        mostly zeros, or a slice and a few words, so it is kept as those (~1 KB
        instead of 16 KB for a 129k vocabulary): a process serving many states
        allocates, and faults in, a fraction of the memory (on the benchmark box a
        fresh 4 KB page costs ~3 us)."""
        key = state[0].serial << 32 | state[1]  # one int, as in advance_token
        hit = self._masks.get(key)
        if hit is not None:
            return hit[0]
        with self._lock:  # one thread computes it (lexer products release the GIL), others then read it
            hit = self._masks.get(key)  # another thread may have computed it meanwhile
            if hit is not None:
                return hit[0]
            bits, touched, pairs = buffers = _mask_buffers(self.vocab.num_words)
            try:
                part, n = self._compute_mask(state, buffers)
            except BaseException:
                bits.fill(0)  # the scratch stays all zeros
                raise
            if n < 0:  # a dense part: every word may be set
                touched, n = _all_words(len(bits)), len(bits)
            base = _NO_BASE if part is None else part.bits
            m = self._k.take_mask(bits, base, touched, n, pairs)  # bits zeroed again
            if 2 * m < len(bits):
                stored = (pairs[:2 * m].copy(), base)
                stored[0].flags.writeable = False
                nbytes = 8 * m + 150
            else:
                dense, taken = np.empty(len(bits), np.int32), pairs[:2 * m]
                taken.flags.writeable = False  # as a cached one's: one numba signature
                self._k.expand_mask(dense, base, taken)
                dense.flags.writeable = False  # int32, as the rows it is copied into
                stored, nbytes = (None, dense), dense.nbytes + 150
            self._masks.put(key, stored, nbytes)
            return stored

    def _compute_mask(self, state: State, buffers: tuple) -> tuple[Slice | None, int]:
        """OR the mask of ``state`` into the scratch bitset ``buffers[0]`` (zeros), but
        for the slice it returns: that slice's tokens (``part.bits``) are allowed too.
        Returns ``(part, n)``: the first ``n`` words of ``buffers[1]`` are the
        nonzero words of the bitset (``n`` -1: any word may be)."""
        bits, touched, _ = buffers
        n, dense = 0, False
        row, s = state
        # A slice the lexer state loops on is allowed whole; the state's own walk then
        # runs on the trie of the other tokens (its events are renumbered as the whole
        # trie's ranges, where the walks past them run: see _plan).
        part = self._slicer.choose(self.lexer(row), s)
        his = self._root_hi if part is None else part.rest_hi
        # Level by level: one walk (a plan, see _plan) covers every trie range
        # that starts a lexeme in the same parser row; its branches are the
        # terminal sets the lexemes matched, since that alone decides the next row.
        lexers, ignore, plans, after = self._lexers, self.ignore_mask, self._inner.data, self.after_lexeme
        advanced, grammar_only, key_shift = self.parser.advanced.get, ~ignore, ADVANCE_KEY_SHIFT
        name, kernels = part and part.name, self._k.__name__
        # work items and plan keys are flat tuples of ints, bytes and arrays: the
        # garbage collector untracks those (nested tuples would stay on its lists)
        work = [(row, s, self._root_lo, his, b"")]
        or_words = self._k.or_words
        while work:
            row, s, los, his, ranges = work.pop()
            lex = lexers.get(row.allowed | ignore) or self.lexer(row)
            own = not ranges  # the state's own walk; the others' ranges are the whole trie's (see _plan)
            key = (kernels, lex.walk_key, s, ranges, name if own else None)
            hit = plans.get(key)  # no recency update: plans are cheap to redo
            plan = hit[0] if hit is not None else self._plan(key, lex, s, los, his, part if own else None)
            idx, words = plan[0], plan[1]
            if idx is None:
                bits |= words
                dense = True  # any word may be set
            elif len(idx):
                n = or_words(bits, idx, words, touched, n)
            term_sets, serial = lex.term_sets, row.serial
            for b in range(2, len(plan), 4):  # branches: accepting class, events lo, hi, their key
                terms = term_sets[plan[b]]
                # after_lexeme, its parser step read straight from the memo when known
                # (the common case, and two calls fewer per lexeme end: ~10% of a cold mask);
                # an ignored lexeme (no grammar terminal: whitespace) leaves the row as it is
                grammar_terms = terms & grammar_only
                nxt = advanced(grammar_terms << key_shift | serial) if grammar_terms else row
                if type(nxt) is not Row:  # unknown or dead
                    nxt = after(row, terms)
                    if nxt == DEAD:
                        continue
                if not nxt.allowed | ignore:  # nothing may follow (a regex's end): no token goes on past it
                    continue
                work.append((nxt, 0, plan[b + 1], plan[b + 2], plan[b + 3]))
        if self.can_end(state):
            n = or_words(bits, *self._eos_words, touched, n)
        return part, -1 if dense else n

    def _plan(self, key: tuple, lex: Lexer, s: int, los: np.ndarray, his: np.ndarray, part: Slice | None):
        """The walk of ``lex`` from ``s`` over the ranges ``los``/``his`` of the trie, or
        of ``part``'s rest trie, as one flat tuple: (word index or None if dense, words,
        then per branch: the accepting class of its events (an index into
        ``lex.term_sets``: the terminals the lexemes matched, which alone decide the next
        row), the events' lo, hi, and the bytes naming those ranges).  One kernel call
        (``walk_grouped``), kept in the walk cache under ``key`` (kernels, walk key, state,
        the bytes naming ``los``/``his`` (b"" for the whole trie), slice name), so shared
        by every constraint of the compiler: equal ``walk_key``, equal walks and classes."""
        dense, idx, words, events, groups = self._k.walk_grouped(
            lex.trans, lex.classes, lex.accepting, lex.acc_class, lex.live, lex.filter, lex.loops, LOOP_MEMBERS, s,
            *self._trie_arrays(part), los, his, *_walk_buffers(self._trie, self.vocab.num_words))
        if part is not None and len(groups) > 1:
            # events as the whole trie's ranges: the walks past them are then shared by
            # every state's mask, whichever slice (or none) its own walk took
            tr = self._trie
            events, groups = self._k.events_to_full(events, groups, part.rest.subtree_end, part.full_node,
                                                    tr.subtree_end, tr.depth)
        plan: tuple = (None if dense else idx, words)
        groups = groups.tolist()
        n_groups = len(groups) // 2
        for g in range(n_groups):
            a, b = groups[n_groups + g], groups[n_groups + g + 1]
            glo, ghi = events[0, a:b], events[1, a:b]
            plan += (groups[g], glo, ghi, glo.tobytes() + ghi.tobytes())
        nbytes = words.nbytes + idx.nbytes + events.nbytes + len(key[3]) + 200 + 25 * len(plan)
        self._inner.put(key, plan, nbytes)
        return plan

    def _trie_arrays(self, part: Slice | None) -> tuple:
        tr, pure = (self._trie, self._slicer.pure) if part is None else (part.rest, part.rest_pure)
        return tr.byte, tr.depth, tr.subtree_end, tr.tok_start, tr.tok_ids, pure

    # --- forced continuations ------------------------------------------------
    def viable_bytes(self, state: State) -> np.ndarray:
        """Sorted bytes that may come next (the byte-level mask)."""
        row, s = state
        lex = self.lexer(row)
        ok = lex.row(s)[lex.classes] >= 0
        if s and lex.terms_at(s):
            nxt = self.after_lexeme(row, lex.terms_at(s))
            if nxt != DEAD:
                nlex = self.lexer(nxt)
                ok |= nlex.row(0)[nlex.classes] >= 0
        return np.flatnonzero(ok)

    def forced_bytes(self, state: State, limit: int = 4096) -> bytes:
        """The longest byte string every continuation of ``state`` starts with
        (stops where ending is also possible)."""
        out = bytearray()
        while len(out) < limit and not self.can_end(state):
            vb = self.viable_bytes(state)
            if len(vb) != 1:
                break
            b = int(vb[0])
            nxt = self.advance_bytes(state, bytes([b]))
            if nxt is None:
                break
            out.append(b)
            state = nxt
        return bytes(out)
