"""Shared test helpers (public, importable by users writing their own constraints and samplers).

Sections: toy vocabularies and a brute-force mask oracle (for engine tests);
enumerable toy language models (for the exactness harness of the samplers)."""

from __future__ import annotations

# --- toy vocabularies and the brute-force mask oracle --------------------------------
#
# Two oracles, both independent of the engine: ``brute_force_mask`` asks the matcher
# itself token by token (``accept_token`` on forks: the mask must agree with it), and
# ``GreedyLexerOracle`` recognises a grammar from scratch (Python ``re``/``regex``
# terminals, byte-level greedy contextual lexing as README "Semantics" documents,
# Earley items over terminal names) so masks can be compared with the language.

import functools as _functools  # noqa: E402
import random as _random  # noqa: E402
import re as _re  # noqa: E402

from .vocab.vocabulary import Vocabulary as _Vocabulary  # noqa: E402

__all__ = ["byte_vocabulary", "toy_vocabulary", "multibyte_vocabulary", "allowed_tokens",
           "brute_force_mask", "language_mask", "check_masks_on_walk", "GreedyLexerOracle",
           "engine_completion", "check_grammar_masks"]


def byte_vocabulary() -> _Vocabulary:
    """The 256 single-byte tokens plus EOS (id 256)."""
    return _Vocabulary.byte_level()


def toy_vocabulary(strings, *, eos="<eos>", name: str = "toy") -> _Vocabulary:
    """One token per distinct entry (UTF-8 of a str, or bytes as given), in order,
    plus a special EOS id after them (``eos=None``: no EOS)."""
    return _Vocabulary.from_strings(list(dict.fromkeys(strings)), eos=eos, name=name)


def multibyte_vocabulary(alphabet: str, *, seed: int = 0, extra: int = 40, max_len: int = 4) -> _Vocabulary:
    """A toy vocabulary that stresses token boundaries over ``alphabet``: every
    character, every single byte of its multi-byte characters (tokens that split a
    character), the byte-suffix of each multi-byte character glued to a following
    character (tokens that start mid-character), and ``extra`` seeded random strings
    of 2..``max_len`` characters (tokens spanning several lexemes)."""
    rng = _random.Random(seed)
    toks: list[bytes] = [c.encode() for c in alphabet]
    for c in alphabet:
        b = c.encode()
        toks += [b[i:i + 1] for i in range(len(b))] if len(b) > 1 else []
        if len(b) > 1:
            toks += [b[1:] + d.encode() for d in rng.sample(alphabet, min(2, len(alphabet)))]
    for _ in range(extra):
        toks.append("".join(rng.choice(alphabet) for _ in range(rng.randint(2, max_len))).encode())
    return toy_vocabulary(toks, name=f"multibyte-{seed}")


def allowed_tokens(matcher) -> set[int]:
    """The ids set in ``matcher.next_token_mask()``."""
    import numpy as np

    from .mask.bitmask import bitset_to_bool

    return {int(t) for t in np.flatnonzero(bitset_to_bool(matcher.next_token_mask(), matcher.compiled.vocab.size))}


def brute_force_mask(matcher_or_compiled, prefix_tokens=()) -> set[int]:
    """Every id (EOS included) that ``accept_token`` takes after ``prefix_tokens``,
    each tried on its own fork: what the mask must equal."""
    m = matcher_or_compiled.fork() if hasattr(matcher_or_compiled, "fork") else matcher_or_compiled.matcher()
    for t in prefix_tokens:
        if not m.accept_token(t):
            raise ValueError(f"token {t} of the prefix is not accepted")
    return {t for t in range(m.compiled.vocab.size) if m.fork().accept_token(t)}


def language_mask(vocab: _Vocabulary, prefix: bytes, viable, complete) -> set[int]:
    """The mask the language defines: text tokens ``t`` with ``viable(prefix + bytes(t))``
    (some sentence starts with it), and EOS when ``complete(prefix)``."""
    want = {t for t, b in enumerate(vocab.token_bytes) if b is not None and viable(prefix + b)}
    return want | set(vocab.eos_ids) if complete(prefix) else want


def check_masks_on_walk(compiled, viable, complete, *, seed: int, steps: int = 8) -> bytes:
    """Random walk over allowed tokens; at every step the mask must equal both
    ``language_mask`` (given ``viable(bytes)``/``complete(bytes)``) and
    ``brute_force_mask``.  Returns the bytes walked.  Raises AssertionError naming
    the prefix and the differing tokens."""
    vocab, rng, m, text = compiled.vocab, _random.Random(seed), compiled.matcher(), b""
    for _ in range(steps):
        got = allowed_tokens(m)
        want = language_mask(vocab, text, viable, complete)
        assert got == want, (text, {t: vocab.token_bytes[t] for t in sorted(got ^ want)})
        assert brute_force_mask(m) == got, (text, "accept_token disagrees with the mask")
        choices = sorted(got - set(vocab.eos_ids))
        if not choices:
            break
        t = rng.choice(choices)
        assert m.accept_token(t)
        text += vocab.token_bytes[t]
    return text


def _sre():
    try:
        from re import _constants as c, _parser as p
    except ImportError:  # Python < 3.11
        import sre_constants as c  # type: ignore[no-redef]
        import sre_parse as p  # type: ignore[no-redef]
    return c, p


_UTF8_SPANS = {2: (0x80, 0x7FF), 3: (0x800, 0xFFFF), 4: (0x10000, 0x10FFFF)}


def _code_point_span(partial: bytes) -> tuple[int, int] | None:
    """Code points whose UTF-8 starts with the incomplete sequence ``partial``."""
    lead = partial[0]
    n = 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 0
    if not n or len(partial) >= n or any(not 0x80 <= b <= 0xBF for b in partial[1:]):
        return None
    cp = lead & (0xFF >> (n + 1))
    for b in partial[1:]:
        cp = cp << 6 | (b & 0x3F)
    free = 6 * (n - len(partial))
    lo, hi = max(cp << free, _UTF8_SPANS[n][0]), min((cp << free) | ((1 << free) - 1), _UTF8_SPANS[n][1])
    return (lo, hi) if lo <= hi else None


class _Pattern:
    """One terminal: Python regex, full match with ``re``, prefix viability on bytes
    with ``regex``'s partial matching; a trailing incomplete character is tried as
    every character class the pattern can tell apart."""

    def __init__(self, pattern: str):
        import regex

        self.text = pattern
        flags = 0 if _re.compile(pattern).flags & _re.I else _re.A  # \d \w \s are ASCII, as structgen's
        self.full = _re.compile(pattern, flags)
        self.partial = regex.compile(pattern, flags)
        self.ignorecase = bool(self.full.flags & _re.I)
        self.cuts = sorted(self._boundaries(pattern))

    @staticmethod
    def _boundaries(pattern: str) -> set[int]:
        c, p = _sre()
        cuts = {0x0A, 0x0B}

        def walk(items):
            for op, av in items:
                if op in (c.LITERAL, c.NOT_LITERAL):
                    cuts.update((av, av + 1))
                elif op is c.RANGE:
                    cuts.update((av[0], av[1] + 1))
                elif op is c.IN:
                    walk(av)
                elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                    walk(av[2])
                elif op is c.SUBPATTERN:
                    walk(av[-1])
                elif op is c.BRANCH:
                    for alt in av[1]:
                        walk(alt)
        walk(p.parse(pattern))
        return cuts

    def representatives(self, lo: int, hi: int) -> list[str]:
        """Characters in [lo, hi] covering every behaviour of the pattern there."""
        if self.ignorecase:
            if hi - lo > 4096:
                raise NotImplementedError(f"oracle: case-insensitive /{self.text}/ at a partial character")
            starts = range(lo, hi + 1)
        else:
            starts = sorted({lo} | {x for x in self.cuts if lo < x <= hi})
        out = []
        for i, s in enumerate(starts):
            end = starts[i + 1] - 1 if i + 1 < len(starts) else hi
            for cp in range(s, end + 1):
                if not 0xD800 <= cp <= 0xDFFF:
                    out.append(chr(cp))
                    break
        return out

    @_functools.lru_cache(maxsize=None)
    def viable(self, data: bytes) -> bool:
        """Is ``data`` a prefix of the UTF-8 of some string the pattern fully matches?"""
        for cut in range(len(data), max(-1, len(data) - 4), -1):
            try:
                text = data[:cut].decode()
            except UnicodeDecodeError:
                continue
            if self.partial.fullmatch(text, partial=True) is None:
                return False
            if cut == len(data):
                return True
            span = _code_point_span(data[cut:])
            return span is not None and any(self.partial.fullmatch(text + ch, partial=True) is not None
                                            for ch in self.representatives(*span))
        return False

    @_functools.lru_cache(maxsize=None)
    def matches(self, data: bytes) -> bool:
        try:
            return self.full.fullmatch(data.decode()) is not None
        except UnicodeDecodeError:
            return False


class GreedyLexerOracle:
    """A from-scratch recogniser of structgen's documented grammar semantics.

    ``rules``: ``(lhs, rhs)`` pairs, symbols being names; a name in ``terminals``
    (name -> Python regex, never matching "") is a terminal, any other a rule.
    ``ignore``: terminal names allowed between lexemes.  Lexing is byte-level and
    greedy: the terminals the Earley chart expects (plus ``ignore``) are candidates;
    a lexeme goes on while the next byte keeps some candidate viable, then ends and
    must fully match one (a grammar terminal wins over an ignored one).

    Lazy quantifiers are read as plain repeats (``re.fullmatch``'s language): give
    the oracle no first-match terminals.  ``\\d \\w \\s`` are ASCII."""

    def __init__(self, rules, terminals: dict, start: str, ignore=()):
        self.terminals = {name: _Pattern(rx) for name, rx in terminals.items()}
        self.ignore = frozenset(ignore)
        self.rules = [(lhs, tuple(rhs)) for lhs, rhs in rules]
        self.start = start
        self.by_lhs: dict = {}
        for i, (lhs, _) in enumerate(self.rules):
            self.by_lhs.setdefault(lhs, []).append(i)
        nullable: set = set()
        changed = True
        while changed:
            changed = False
            for lhs, rhs in self.rules:
                if lhs not in nullable and all(s in nullable for s in rhs):
                    nullable.add(lhs)
                    changed = True
        self.nullable = nullable

    @classmethod
    def from_lark(cls, parser, start: str = "start") -> "GreedyLexerOracle":
        """From a ``lark.Lark`` object (lark resolves imports, templates, ``?rule``)."""
        rules = [(r.origin.name, [s.name for s in r.expansion]) for r in parser.rules]
        terminals = {t.name: t.pattern.to_regexp() for t in parser.terminals}
        return cls(rules, terminals, start, parser.ignore_tokens)

    # --- Earley over terminal names ------------------------------------------
    def _closure(self, charts: tuple, items) -> frozenset:
        k = len(charts)
        chart, todo = set(items), list(items)
        while todo:
            ri, dot, origin = todo.pop()
            rhs = self.rules[ri][1]
            new = []
            if dot == len(rhs):
                lhs = self.rules[ri][0]
                source = chart if origin == k else charts[origin]
                new = [(r2, d2 + 1, o2) for r2, d2, o2 in list(source)
                       if d2 < len(self.rules[r2][1]) and self.rules[r2][1][d2] == lhs]
            elif rhs[dot] not in self.terminals:
                new = [(r2, 0, k) for r2 in self.by_lhs.get(rhs[dot], ())]
                if rhs[dot] in self.nullable:
                    new.append((ri, dot + 1, origin))
            for it in new:
                if it not in chart:
                    chart.add(it)
                    todo.append(it)
        return frozenset(chart)

    def _expected(self, chart) -> set:
        return {self.rules[ri][1][d] for ri, d, _ in chart
                if d < len(self.rules[ri][1]) and self.rules[ri][1][d] in self.terminals}

    def initial(self):
        """The configuration before any byte: (charts, pending lexeme bytes)."""
        return (self._closure((), [(ri, 0, 0) for ri in self.by_lhs.get(self.start, ())]),), b""

    def _end_lexeme(self, config):
        charts, pending = config
        cands = self._expected(charts[-1]) | self.ignore
        matched = {n for n in cands if self.terminals[n].matches(pending)}
        real = matched - self.ignore
        if real:
            seed = [(ri, d + 1, o) for ri, d, o in charts[-1]
                    if d < len(self.rules[ri][1]) and self.rules[ri][1][d] in real]
            return charts + (self._closure(charts, seed),)
        return charts if matched else None

    def feed(self, config, byte: int):
        """The configuration after one more byte, or None once no extension can be a sentence."""
        charts, pending = config
        cands = self._expected(charts[-1]) | self.ignore
        if any(self.terminals[n].viable(pending + bytes([byte])) for n in cands):
            return charts, pending + bytes([byte])
        if not pending:
            return None
        charts = self._end_lexeme(config)
        if charts is None:
            return None
        return self.feed((charts, b""), byte)

    def run(self, data: bytes):
        config = self.initial()
        for b in data:
            config = self.feed(config, b)
            if config is None:
                return None
        return config

    def is_sentence(self, config) -> bool:
        if config is None:
            return False
        charts = self._end_lexeme(config) if config[1] else config[0]
        return charts is not None and any(
            self.rules[ri][0] == self.start and d == len(self.rules[ri][1]) and o == 0 for ri, d, o in charts[-1])

    def accepts(self, data: bytes | str) -> bool:
        """Is ``data`` (its UTF-8) a sentence?"""
        return self.is_sentence(self.run(data.encode() if isinstance(data, str) else data))

    def sentences(self, alphabet: str, max_chars: int) -> set[bytes]:
        """Every sentence of at most ``max_chars`` characters over ``alphabet`` (depth-first,
        pruned where lexing has already failed)."""
        out: set[bytes] = set()
        stack = [(b"", self.initial(), 0)]
        while stack:
            text, config, n = stack.pop()
            if self.is_sentence(config):
                out.add(text)
            if n == max_chars:
                continue
            for ch in alphabet:
                nxt = config
                for b in ch.encode():
                    nxt = self.feed(nxt, b)
                    if nxt is None:
                        break
                if nxt is not None:
                    stack.append((text + ch.encode(), nxt, n + 1))
        return out

def engine_completion(matcher, *, max_tokens: int = 12) -> bytes | None:
    """Bytes of the fewest tokens the engine allows that end at a complete sentence
    (breadth-first over states), or None within ``max_tokens``: a witness for the
    oracle to judge, never a verdict."""
    vocab = matcher.compiled.vocab
    frontier, seen = [(matcher, b"")], {matcher.state}
    for _ in range(max_tokens + 1):
        nxt = []
        for m, text in frontier:
            if m.can_terminate():
                return text
            for t in sorted(allowed_tokens(m) - set(vocab.eos_ids)):
                child = m.fork()
                if child.accept_token(t) and child.state not in seen:
                    seen.add(child.state)
                    nxt.append((child, text + vocab.token_bytes[t]))
        frontier = nxt
    return None


def check_grammar_masks(compiled, oracle: "GreedyLexerOracle", *, alphabet: str, max_chars: int,
                        seed: int, steps: int = 6, dead_ends: list | None = None) -> int:
    """Masks of ``compiled`` equal the language of ``oracle`` along a seeded random walk.

    The oracle enumerates every sentence of at most ``max_chars`` characters over
    ``alphabet``; a token is required wherever it continues a prefix of one of them.
    A token allowed beyond that bound needs a witness: the engine's shortest
    completion, which the oracle must accept as a sentence.  EOS is allowed exactly
    where the oracle accepts; ``accept_token`` agrees with the mask.  Returns the
    number of oracle sentences (so callers can see the check had material).

    ``dead_ends``: a list to collect ``(prefix, token bytes)`` the engine allows
    although not even the engine can complete them (its greedy lexer has no
    look-ahead: ``start: A A`` with ``A: /a+/`` has no sentence, yet ``a`` is
    allowed); when None they fail the check like any other difference."""
    sentences = oracle.sentences(alphabet, max_chars)
    prefixes = {s[:i] for s in sentences for i in range(len(s) + 1)}
    vocab, rng, m, text = compiled.vocab, _random.Random(seed), compiled.matcher(), b""
    eos = set(vocab.eos_ids)
    for _ in range(steps):
        got = allowed_tokens(m)
        assert brute_force_mask(m) == got, (text, "accept_token disagrees with the mask")
        assert bool(got & eos) == oracle.accepts(text), (text, "EOS", bool(got & eos))
        want = {t for t, b in enumerate(vocab.token_bytes) if b is not None and text + b in prefixes}
        missing = want - got
        assert not missing, (text, "oracle-viable tokens masked out", [vocab.token_bytes[t] for t in missing])
        for t in sorted(got - want - eos):
            child = m.fork()
            assert child.accept_token(t)
            rest = engine_completion(child)
            if rest is None and dead_ends is not None:
                dead_ends.append((text, vocab.token_bytes[t]))
                continue
            data = text + vocab.token_bytes[t] + (rest or b"")
            assert rest is not None and oracle.accepts(data), (text, "allowed without a sentence",
                                                               vocab.token_bytes[t], rest)
        inside = sorted(t for t in got & want)
        if not inside:
            break
        t = rng.choice(inside)
        assert m.accept_token(t)
        text += vocab.token_bytes[t]
    return len(sentences)


# --- enumerable toy language models ----------------------------------------------------

import math as _math  # noqa: E402  (section-local imports: the sections are edited independently)
from dataclasses import dataclass as _dataclass  # noqa: E402

import numpy as _np  # noqa: E402

from .sampling.awrs import allowed_bool as _allowed_bool  # noqa: E402  (the engine's mask, not an oracle)

__all__ = list(globals().get("__all__", ())) + [
    "ToyLM", "ExactDistributions", "exact_distributions", "kl_divergence", "chi2_sf", "chi2_test",
    "weighted_chi2_test",
]


class ToyLM:
    """A seeded random n-gram language model over ``vocab_size`` ids that ends by
    ``max_len``: after ``max_len`` tokens EOS has probability one, so every output
    is enumerable.  Implements :class:`structgen.sampling.BatchLM`.

    ``order``: the next token depends on the last ``order - 1`` tokens.  ``scale``:
    spread of the logits (larger: more peaked).  ``eos_bias`` is added to EOS's
    logit before ``max_len``.  ``zero_ids`` never get probability."""

    def __init__(self, vocab_size: int, *, eos_id: int, max_len: int = 6, order: int = 2, seed: int = 0,
                 scale: float = 1.5, eos_bias: float = -1.0, zero_ids=()):
        self.vocab_size, self.max_len, self.order, self.seed = vocab_size, max_len, order, seed
        self.eos_ids = frozenset([eos_id])
        self.eos_id, self.scale, self.eos_bias = eos_id, scale, eos_bias
        self.zero_ids = list(zero_ids)
        self._table: dict[tuple, _np.ndarray] = {}
        self.calls = 0

    def next_logprobs(self, prefix) -> _np.ndarray:
        """log P(· | prefix), float64 [vocab_size]."""
        if len(prefix) >= self.max_len:
            out = _np.full(self.vocab_size, -_np.inf)
            out[self.eos_id] = 0.0
            return out
        ctx = tuple(prefix[-(self.order - 1):]) if self.order > 1 else ()
        ctx = (-1,) * (self.order - 1 - len(ctx)) + ctx
        row = self._table.get(ctx)
        if row is None:
            gen = _np.random.default_rng([self.seed] + [c + 1 for c in ctx])
            logits = gen.normal(size=self.vocab_size) * self.scale
            logits[self.eos_id] += self.eos_bias
            logits[self.zero_ids] = -_np.inf
            row = self._table[ctx] = logits - _np.logaddexp.reduce(logits)
        return row

    def logprobs(self, prefixes) -> _np.ndarray:
        self.calls += 1
        return _np.stack([self.next_logprobs(list(p)) for p in prefixes])

    def log_prob(self, tokens) -> float:
        """log P(tokens + EOS)."""
        lp = 0.0
        for i, t in enumerate(list(tokens) + [self.eos_id]):
            lp += float(self.next_logprobs(list(tokens[:i]))[t])
        return lp


@_dataclass
class ExactDistributions:
    """Exact distributions over the outputs x (tokens before EOS) of a toy LM under a constraint."""

    p_lang: dict      # x -> P(x), for x in L
    z: float          # P(L) = sum of p_lang
    posterior: dict   # x -> P(x | L): what exact samplers target
    gcd: dict         # x -> Q_gcd(x) = prod p·m / sum p·m: what plain masking samples
    gcd_dead: float   # masking's mass on prefixes where nothing allowed has probability


def exact_distributions(lm: ToyLM, compiled) -> ExactDistributions:
    """Enumerate every grammatical output of ``lm`` under ``compiled`` (depth-first over
    allowed tokens only) with its probability, its masked-decoding probability, and
    masking's dead-end mass."""
    p_lang: dict = {}
    gcd: dict = {}
    dead = 0.0
    stack = [((), compiled.matcher(), 0.0, 0.0)]
    while stack:
        prefix, m, logp, logq = stack.pop()
        lp = lm.next_logprobs(list(prefix))
        allowed = _allowed_bool(m, lm.vocab_size) & (lp > -_np.inf)
        if not allowed.any():
            dead += _math.exp(logq)
            continue
        log_z_local = float(_np.logaddexp.reduce(lp[allowed]))
        for t in _np.flatnonzero(allowed):
            t = int(t)
            lpt, lqt = logp + float(lp[t]), logq + float(lp[t]) - log_z_local
            if t in lm.eos_ids:
                p_lang[prefix] = _math.exp(lpt)
                gcd[prefix] = _math.exp(lqt)
                continue
            child = m.fork()
            if not child.accept_token(t):
                raise AssertionError(f"mask allows {t} but accept_token refuses it after {prefix}")
            stack.append((prefix + (t,), child, lpt, lqt))
    z = sum(p_lang.values())
    return ExactDistributions(p_lang, z, {x: v / z for x, v in p_lang.items()} if z > 0 else {}, gcd, dead)


def kl_divergence(p: dict, q: dict) -> float:
    """KL(p ‖ q) = Σ p log(p/q) over p's support (inf when q misses some of it)."""
    total = 0.0
    for x, px in p.items():
        if px <= 0.0:
            continue
        qx = q.get(x, 0.0)
        if qx <= 0.0:
            return _math.inf
        total += px * _math.log(px / qx)
    return total


def _gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(a, x)."""
    if x <= 0.0:
        return 1.0
    log_front = -x + a * _math.log(x) - _math.lgamma(a)
    if x < a + 1.0:  # series for P(a, x)
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1.0
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * _math.exp(log_front))
    # continued fraction for Q(a, x) (modified Lentz)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, _math.exp(log_front) * h)


def chi2_sf(x: float, dof: int) -> float:
    """P(χ²_dof > x), without scipy."""
    return _gamma_q(dof / 2.0, x / 2.0)


def chi2_test(counts: dict, probs: dict, *, min_expected: float = 5.0) -> tuple[float, int, float]:
    """Pearson's goodness of fit of observed ``counts`` (outcome -> n) to ``probs``
    (outcome -> probability, summing to one over every possible outcome).  Outcomes
    expected fewer than ``min_expected`` times are pooled into one bin; an observed
    outcome missing from ``probs`` fails the test (p = 0).  Returns (χ², dof, p)."""
    n = sum(counts.values())
    if any(k not in probs for k, c in counts.items() if c):
        return _math.inf, 0, 0.0
    stat, bins = 0.0, 0
    pooled_obs = pooled_exp = 0.0
    for k, pk in probs.items():
        e, o = n * pk, counts.get(k, 0)
        if e < min_expected:
            pooled_obs += o
            pooled_exp += e
            continue
        stat += (o - e) ** 2 / e
        bins += 1
    if pooled_exp > 0.0:
        stat += (pooled_obs - pooled_exp) ** 2 / pooled_exp
        bins += 1
    dof = max(1, bins - 1)
    return stat, dof, chi2_sf(stat, dof)


def weighted_chi2_test(runs: list, probs: dict, *, min_prob: float = 0.01) -> tuple[float, int, float]:
    """Goodness of fit of properly weighted samples to ``probs``.

    ``runs``: independent runs, each a dict outcome -> summed (unnormalised) weight,
    such as SMC's particles of one run.  Under the null, the residuals
    e_r = A_r − probs·B_r (A_r: weight per outcome bin, B_r: total weight) have mean
    zero, so R·ē'S⁻¹ē (Hotelling, S their covariance) is asymptotically χ² with
    (bins − 1) degrees of freedom.  Outcomes below ``min_prob`` are pooled."""
    keys = [k for k, pk in probs.items() if pk >= min_prob]
    index = {k: i for i, k in enumerate(keys)}
    pooled = len(keys) < len(probs)
    nb = len(keys) + (1 if pooled else 0)
    theta = _np.array([probs[k] for k in keys] + ([1.0 - sum(probs[k] for k in keys)] if pooled else []))
    e = _np.zeros((len(runs), nb))
    for r, run in enumerate(runs):
        a = _np.zeros(nb)
        for k, w in run.items():
            i = index.get(k)
            if i is None:
                if k not in probs:
                    return _math.inf, 0, 0.0  # an outcome outside the support
                i = nb - 1
            a[i] += w
        e[r] = a - theta * a.sum()
    e = e[:, :-1]  # the bins' residuals sum to zero: drop one
    mean = e.mean(0)
    cov = _np.cov(e, rowvar=False).reshape(nb - 1, nb - 1)
    stat = float(len(runs) * mean @ _np.linalg.pinv(cov) @ mean)
    dof = nb - 1
    return stat, dof, chi2_sf(stat, dof)
