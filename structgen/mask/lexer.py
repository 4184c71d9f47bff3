"""The contextual lexer: one product DFA per set of allowed terminals."""

from __future__ import annotations

import functools
import hashlib
import struct
from functools import cached_property

import numpy as np

from ..automata.ops import readonly
from ..errors import BudgetExceeded
from ..grammar.ir import Terminal, bit_indices
from ..limits import DEFAULT_LIMITS
from .kernels import LOOPS_UNKNOWN, get_kernels
from .lru import ByteLRU


# Canonical products by the content of their terminals' DFAs, shared by every
# grammar of the process (bounded: a miss only rebuilds).
_PRODUCTS = ByteLRU(32 << 20)


class Lexer:
    """Product of the DFAs of the terminals in ``mask``.

    State 0 is the start (no pending bytes).  ``terms_at(s)`` is the bitmask of
    terminals whose lexeme is complete in ``s``; ``extends(s)`` says whether some
    byte extends it (if not, the lexeme is over and is closed at once).  Per
    state only a small index is stored (``acc_class[s]`` into the distinct
    bitmasks ``term_sets``), so making a lexer from a shared product costs no
    per-state Python work.

    A *projection* (the lexer of a subset of the terminals of a product built
    already, see ``LexerFactory._project``) reads that product's table in place:
    ``live[s]`` is the bitmask of the product's components alive in state ``s`` and
    ``allowed`` (nonzero) those of the subset; a transition into a state where none
    of them lives is dead.  Read transitions through ``step``, ``row`` and
    ``extends``; the kernels take ``live`` (None for every other lexer: numba then
    compiles the filter away) and ``filter`` (``allowed`` as a uint64)."""

    # a plain class, not a frozen dataclass: its __init__ sets a dozen attributes
    # through object.__setattr__, ~3 us of every lexer build; nothing mutates a lexer
    __slots__ = ("mask", "trans", "classes", "accepting", "has_out", "acc_class", "term_sets", "walk_key",
                 "live", "allowed", "filter", "base_key", "loops", "__dict__")

    def __init__(self, mask: int, trans: np.ndarray, classes: np.ndarray, accepting: np.ndarray,
                 has_out: np.ndarray | None, acc_class: np.ndarray, term_sets: tuple[int, ...], walk_key: bytes,
                 live: np.ndarray | None = None, allowed: int = 0, base_key: bytes | None = None,
                 loops: np.ndarray | None = None):
        self.mask = mask
        self.trans = trans  # int32[S, C]
        self.classes = classes  # uint8[256]
        self.accepting = accepting  # bool[S]
        self.has_out = has_out  # bool[S] (None for a projection: see extends)
        self.acc_class = acc_class  # int32[S]: index of the state's accepting set in term_sets
        self.term_sets = term_sets  # the distinct accepting sets (terminal bitmasks)
        # names what a trie walk reads (trans, classes, accepting, acc_class, the filter): equal keys, equal walks
        self.walk_key = walk_key
        self.live = live  # uint64[S] of a projection, else None (the kernels' filter-free specialization)
        self.allowed = allowed
        self.filter = np.uint64(allowed)
        self.base_key = base_key  # a projection's: the walk key of its superset product
        # uint8[S]: the byte classes each state loops on, filled in by the trie walks
        # (see walk_trie); one per table, shared by its projections
        self.loops = _new_loops(len(trans)) if loops is None else loops

    def step(self, state: int, byte: int) -> int:
        """The state after ``byte`` (-1: dead)."""
        t = int(self.trans[state, self.classes[byte]])
        if t >= 0 and self.allowed and not int(self.live[t]) & self.allowed:
            return -1
        return t

    def row(self, state: int) -> np.ndarray:
        """The states after each byte class from ``state`` (-1: dead)."""
        r = self.trans[state]
        if self.allowed:
            r = np.where((r >= 0) & (self.live[np.maximum(r, 0)] & self.filter != 0), r, -1)
        return r

    def extends(self, state: int) -> bool:
        """Does some byte keep the lexeme of ``state`` alive?"""
        if self.has_out is not None:
            return bool(self.has_out[state])
        return bool((self.row(state) >= 0).any())

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this lexer owns (a projection shares its product's table)."""
        if self.allowed:
            return self.acc_class.nbytes + self.accepting.nbytes
        return self.trans.nbytes

    def materialized(self) -> "Lexer":
        """This lexer with a table of its own: a projection's states reached under its
        filter, numbered breadth first (classes in order); any other lexer is itself.
        For tests and tools: the engine reads projections in place."""
        if not self.allowed:
            return self
        new, order, rows = {0: 0}, [0], []
        for s in order:
            out = []
            for t in self.row(s).tolist():
                if t >= 0 and t not in new:
                    new[t] = len(order)
                    order.append(t)
                out.append(new[t] if t >= 0 else -1)
            rows.append(out)
        trans = np.array(rows, np.int32).reshape(len(order), self.trans.shape[1])
        acc_class = self.acc_class[order]
        return Lexer(self.mask, trans, self.classes, self.accepting[order], (trans >= 0).any(axis=1), acc_class,
                     self.term_sets, self.walk_key)

    @classmethod
    def make(cls, mask, trans, classes, acc_terms) -> "Lexer":
        """From the accepting set of every state, named by the digest of its arrays (the
        empty lexer and ``_canonical``; products and projections are built directly)."""
        term_sets = tuple(sorted(set(acc_terms)))
        pos = {m: i for i, m in enumerate(term_sets)}
        acc_class = np.array([pos[m] for m in acc_terms], dtype=np.int32)
        accepting = np.array([m != 0 for m in term_sets], dtype=bool)[acc_class]
        return cls(mask, trans, classes, accepting, (trans >= 0).any(axis=1), acc_class, term_sets,
                   cls.walk_digest(trans, classes, accepting, acc_class))

    def terms_at(self, state: int) -> int:
        """Bitmask of the terminals whose lexeme is complete in ``state``."""
        return self.term_sets[self.acc_class[state]]

    @cached_property
    def acc_terms(self) -> tuple[int, ...]:
        """``terms_at`` of every state (built on demand: tests and tools)."""
        return tuple(self.term_sets[i] for i in self.acc_class.tolist())

    @staticmethod
    def walk_digest(trans, classes, accepting, acc_class) -> bytes:
        digest = hashlib.blake2b(digest_size=16)
        for a in (np.asarray(trans.shape, np.int64), trans, classes, np.asarray(accepting, bool),
                  np.asarray(acc_class, np.int32)):
            digest.update(np.ascontiguousarray(a).tobytes())
        return digest.digest()


_DIGEST_HEAD = struct.Struct("<qqq")  # shape and start


def dfa_digest(dfa) -> bytes:
    """Content digest of a terminal DFA (12 bytes).  Kept on the DFA when its arrays
    are read-only (as the compilers' shared DFAs are): the same key or string DFA
    recurs in many grammars of a process."""
    d = dfa.__dict__.get("_lexer_digest")
    if d is None:
        trans, classes, accepting = dfa.trans, dfa.classes, dfa.accepting
        h = hashlib.blake2b(_DIGEST_HEAD.pack(*trans.shape, dfa.start), digest_size=12)
        for a in (trans, classes, accepting):  # the buffers themselves (a copy only if not contiguous)
            h.update(a if a.flags.c_contiguous else np.ascontiguousarray(a))
        d = h.digest()
        if not (dfa.trans.flags.writeable or dfa.classes.flags.writeable or dfa.accepting.flags.writeable):
            dfa.__dict__["_lexer_digest"] = d  # frozen dataclass: bypass its __setattr__
    return d


def _terminal_digest(terminal: Terminal) -> bytes:
    """The content digest that keys a terminal's automaton in products: a literal's
    from its bytes (its DFA unbuilt), any other's from its DFA (``dfa_digest``).  A
    literal's chain gets another digest than the same chain built as a DFA: only
    sharing between the two is lost, never a digest shared by two automata."""
    literal = terminal.literal
    if literal is not None:
        return hashlib.blake2b(literal, digest_size=12, person=b"literal").digest()
    return dfa_digest(terminal.dfa)


class LexerFactory:
    """Builds the lexer of any allowed-terminal set of one grammar.

    A product state is the set of its live components (allowed terminal, state
    of its DFA).  One kernel call (``lexer_product``) explores the product
    breadth first, over the byte classes the allowed terminals tell apart (a big
    object's grammar has many more), reading the allowed terminals' DFAs,
    concatenated for the call.  Each product is in a canonical form (merged byte classes
    numbered by first byte, states numbered by BFS) and shared by the process
    (``_PRODUCTS``, keyed by the terminals' DFA digests), so equal automata from
    different grammars share it and their trie-walk caches.  A set contained in
    one whose product was built already is read off that product instead
    (``_project``)."""

    def __init__(self, terminals: list[Terminal], *, max_states: int = DEFAULT_LIMITS.max_lexer_states,
                 kernels=None):
        self.terminals = terminals
        self._k = get_kernels() if kernels is None else kernels
        self.max_states = max_states
        self._digests: list = [None] * len(terminals)  # each terminal's _terminal_digest, on first use
        # mask -> (product, each terminal's component, the lexer's term sets): see _superset
        self._projectable: dict[int, tuple] = {}

    def build(self, mask: int) -> Lexer:
        ids = bit_indices(mask)
        if not ids:
            return _empty_lexer()
        # The product depends on the terminals' DFAs only (their grammar indices just
        # name the accepting sets): built once per process for equal DFAs, e.g. the
        # same keys in another object or schema.  Components go in digest order.
        digests = self._digests
        for j in ids:
            if digests[j] is None:
                digests[j] = _terminal_digest(self.terminals[j])
        ids.sort(key=digests.__getitem__)
        key = (self._k.__name__, b"".join([digests[j] for j in ids]))
        hit = _PRODUCTS.get(key)
        if hit is None and len(ids) > 1:
            superset = self._superset(mask)
            if superset is not None:
                return self._project(mask, *superset)
        if hit is None:
            # The components' digests name the automaton exactly (it is built from them
            # deterministically), so they key the trie-walk caches too: no digest of the tables.
            walk_key = hashlib.blake2b(key[1], digest_size=16, person=b"lexer").digest()
            product = self._single(ids[0]) if len(ids) == 1 else self._canonical_product(ids)
            # projections read the accepting patterns as uint64 (projectable: at most 64 components)
            product += (walk_key, None if product[6] is None else np.array(product[3], np.uint64),
                        _new_loops(len(product[0])))
            live_bytes = 0 if product[6] is None else 8 * len(product[0])
            _PRODUCTS.put(key, product, product[0].nbytes + product[2].nbytes * 3 + live_bytes + 256)
        else:
            product = hit[0]
            if len(ids) > 1 and len(product[0]) > self.max_states:  # built under a larger budget: as a build
                self._over_budget(ids)
        trans, classes, which, patterns, accepting, has_out, live, walk_key, _, loops = product
        term_sets = _terminal_sets(patterns, ids)
        if live is not None:
            self._projectable[mask] = (product, {j: p for p, j in enumerate(ids)}, term_sets)
        return Lexer(mask, trans, classes, accepting, has_out, which, term_sets, walk_key, loops=loops)

    def _superset(self, mask: int):
        """The smallest product built for a superset of ``mask`` (None if none): in an
        object with optional keys each position allows fewer keys than the one
        before, so the first position's product serves all the others."""
        best = None
        for other, entry in self._projectable.items():
            if other & mask == mask and (best is None or len(entry[0][0]) < len(best[0][0])):
                best = entry
        return best

    def _project(self, mask: int, product, position: dict[int, int], term_sets_b: tuple[int, ...]) -> Lexer:
        """The lexer of ``mask`` read off the product of a superset (``position`` maps a
        terminal to its component; ``term_sets_b``: the superset lexer's term sets).

        A state of the superset's product is a set of live components; its image
        under ``mask`` is the subset that ``mask`` allows, which steps exactly as the
        product of ``mask`` would.  So the superset's table serves as it is, read with
        a filter (see ``Lexer``: transitions into states where none of the allowed
        components lives are dead) and accepting sets narrowed (one kernel call over
        the superset's accepting patterns and states).  Copying the part the filter
        reaches instead cost a table per object position (~17 us for a product of a
        few dozen keys), in fresh pages: in the fills around p99, about 4 of their 10
        page faults.  Several states may share an image: the automaton is equivalent
        to the product of ``mask``, only not minimal."""
        trans_b, classes, which_b, _, _, _, live, walk_key_b, patterns, loops = product
        allowed = 0  # the components mask allows (its bits: fewer than ids, and no shifts of the wide mask)
        for j in bit_indices(mask):
            allowed |= 1 << position[j]
        # the superset's accepting patterns (component bitmasks) narrowed to the allowed
        # ones number the classes; a class's terminals are those of a superset pattern
        # that narrows to it, within mask
        acc_class, accepting, first = self._k.narrow_classes(which_b, patterns, np.uint64(allowed))
        term_sets = tuple([term_sets_b[i] & mask for i in first.tolist()])
        walk_key = hashlib.blake2b(walk_key_b + allowed.to_bytes(8, "little"), digest_size=16,
                                   person=b"projection").digest()
        return Lexer(mask, trans_b, classes, accepting, None, acc_class, term_sets, walk_key, live, allowed,
                     walk_key_b, loops)

    def _tables(self, j: int) -> tuple:
        """Terminal ``j``'s automaton as (trans, classes, accepting, start): a literal's
        made from its bytes (~2 us, where building its DFA cost ~20 us in a fill, and its
        content digest ~10 more: a schema's keys are literals), any other's its DFA's."""
        t = self.terminals[j]
        if t.literal is not None:
            return (*self._k.literal_tables(np.frombuffer(t.literal, np.uint8)), 0)
        d = t.dfa
        return d.trans, d.classes, d.accepting, d.start

    def _single(self, j: int):
        """One terminal needs no product: its own automaton behind a fresh start state
        (in the form of ``_canonical_product``'s result)."""
        trans, classes, accepting, start = self._tables(j)
        trans, accepting, has_out = self._k.single_lexer(readonly(trans, np.int32), int(start),
                                                         readonly(accepting, np.bool_))
        classes = np.array(classes, np.uint8)  # writeable, as the kernels' outputs: read-only is another numba type
        return trans, classes, accepting.astype(np.int32), (0, 1), accepting, has_out, None

    def _canonical_product(self, ids: list[int]):
        """The canonical product of ``ids``: (trans, classes, accepting pattern of every
        state, patterns as bitmasks of positions in ``ids``, accepting, has_out, and the
        live-component bitmask of every state, or None past 64 components: only
        products of up to 64 are projected).

        One kernel call on the components' DFAs (concatenated, see ``_components``):
        byte classes of these terminals only are numbered by first byte, so the
        breadth-first scan of ``lexer_product`` (parents in order, classes in order)
        numbers states as ``_canonical`` would; classes with equal columns are then
        merged, numbered by first occurrence (which keeps first-byte order)."""
        n, trans, classes, live, acc, which, first, has_out = self._k.canonical_product(
            *self._components(ids), min(self.max_states, 1024), self.max_states)
        if n < 0:
            self._over_budget(ids)
        # a state's accepting components: its uint64 words, word w holding components 64w..64w+63
        if acc.shape[1] == 1:  # up to 64 components (nearly all products): the word is the pattern
            patterns = tuple(acc[first, 0].tolist())
            accepting = acc[:, 0] != 0
        else:
            patterns = tuple(sum(v << (64 * w) for w, v in enumerate(words)) for words in acc[first].tolist())
            accepting = acc.any(axis=1)
        return trans, classes, which, patterns, accepting, has_out, (live.reshape(-1) if len(ids) <= 64 else None)

    def _components(self, ids: list[int]) -> tuple:
        """``canonical_product``'s view of the automata of ``ids`` (see ``_tables``): their
        tables raveled and concatenated, their shapes, start states, byte classes and
        accepting flags (a few C-level concatenations: copying each DFA into a stacked
        table from Python cost a product ~1 us per component, and the stack's growth new
        pages)."""
        tables = [self._tables(j) for j in ids]
        return (np.concatenate([tb[0].ravel() for tb in tables], dtype=np.int32),
                np.array([tb[0].shape for tb in tables], np.int64),
                np.array([tb[3] for tb in tables], np.int64),
                np.concatenate([tb[1] for tb in tables], dtype=np.uint8),
                np.concatenate([tb[2] for tb in tables], dtype=np.bool_))

    def _over_budget(self, ids: list[int]):
        names = ", ".join(self.terminals[t].name for t in ids[:8])
        raise BudgetExceeded(f"lexer for terminals {{{names}...}} exceeds {self.max_states} states")


def _new_loops(num_states: int) -> np.ndarray:
    return np.full(num_states, LOOPS_UNKNOWN, np.uint8)


@functools.lru_cache(maxsize=1)
def _empty_lexer() -> Lexer:
    """The lexer of no terminal (a row that allows none, e.g. after the end of a JSON
    document): the same for every grammar, so built once (its digest cost ~10 us)."""
    return Lexer.make(0, np.full((1, 1), -1, np.int32), np.zeros(256, np.uint8), [0])


def _terminal_sets(patterns, ids: list[int]) -> tuple[int, ...]:
    """Accepting patterns (bitmasks of positions in ``ids``) as bitmasks of terminals."""
    bit = [1 << j for j in ids]
    out = []
    for pattern in patterns:
        if pattern & (pattern - 1) == 0:  # none or one component (most patterns)
            out.append(bit[pattern.bit_length() - 1] if pattern else 0)
        else:
            out.append(sum([bit[p] for p in bit_indices(pattern)]))
    return tuple(out)


def _canonical(mask: int, trans: np.ndarray, classes: np.ndarray, acc_terms: list[int]) -> Lexer:
    """Merge identical byte-class columns, number classes by first byte and states by BFS
    (LexerFactory's products come out in this form; tests compare against it)."""
    cols, inv = np.unique(trans.T, axis=0, return_inverse=True)
    byte_cls = inv.reshape(-1)[classes]
    _, first = np.unique(byte_cls, return_index=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    local = cols[order].T  # [S, C] with classes in first-byte order
    rows = local.tolist()
    new = [-1] * len(rows)
    new[0] = 0
    queue = [0]
    for s in queue:
        for t in rows[s]:
            if t >= 0 and new[t] < 0:
                new[t] = len(queue)
                queue.append(t)
    perm = np.array(queue)
    remap = np.array(new + [-1], dtype=np.int32)  # index -1 -> -1
    trans2 = remap[local[perm]].astype(np.int32)
    return Lexer.make(mask, trans2, rank[byte_cls].astype(np.uint8), [acc_terms[o] for o in queue])


def build_lexer(terminals: list[Terminal], mask: int, *,
                max_states: int = DEFAULT_LIMITS.max_lexer_states) -> Lexer:
    """One lexer, without a shared factory (tests, one-off use)."""
    return LexerFactory(terminals, max_states=max_states).build(mask)
