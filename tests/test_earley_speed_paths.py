"""The speed paths of the Earley rows and of the mask loop stay exact.

* rows hold int items (``origin << shift | position``); the augmented start
  rule's left-hand side (-1) must never be mistaken for a position marker;
* rows stay collectable and serials are never reused;
* ``_compute_mask``'s plans (walks split by terminal set, memoised per
  lexer and ranges) give the masks a cold computation gives."""

from __future__ import annotations

import gc
import random
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

from structgen.automata.regex import literal_dfa
from structgen.compile import compile_grammar
from structgen.grammar.earley import DEAD, EarleyParser
from structgen.grammar.ir import Grammar, Terminal, symbol_term, term_symbol
from structgen.mask.engine import CompiledGrammar
from structgen.vocab import Vocabulary

BACKENDS = ["numba", "reference"]
GRAMMARS = Path(__file__).resolve().parent.parent / "grammars"
TOKENS = ["1", "2", "12", "x", "y", "+", "-", "*", "/", "(", ")", " ", "1+", "+2", "(1", "2)", "))",
          "((", "x)", ")*", "**", "^", "f(", ",", " (", ") ", "1 ", "+ "]


def _grammar(rules, terms=("a", "b")):
    names = list(dict.fromkeys(lhs for lhs, _ in rules))
    terminals = [Terminal(t.upper(), literal_dfa(t.encode()), t) for t in terms]
    ir_rules = [(names.index(lhs), tuple(term_symbol(terms.index(s)) if s in terms else names.index(s)
                                         for s in rhs)) for lhs, rhs in rules]
    return Grammar(terminals, names, ir_rules, 0)


def test_nullable_start_completes_into_the_augmented_rule_only():
    # S -> ε | a: completing S in the initial row must step S' -> S . and nothing else
    p = EarleyParser(_grammar([("S", ()), ("S", ("a",))]))
    assert p.initial.accepts and p.initial.allowed == 0b01
    after = p.advance(p.initial, 0b01)
    assert after != DEAD and after.accepts and after.allowed == 0
    assert p.advance(after, 0b01) == DEAD
    assert p.advance(p.initial, 0b10) == DEAD


def test_right_and_left_recursion_count_exactly():
    # S -> a S b | ε : a^n b^n, rows shared by content
    p = EarleyParser(_grammar([("S", ("a", "S", "b")), ("S", ())]))
    row, rows = p.initial, []
    for _ in range(4):
        row = p.advance(row, 0b01)
        rows.append(row)
        assert not row.accepts and row.allowed == 0b11
    for i in range(4):
        assert not row.accepts or i == 4
        row = p.advance(row, 0b10)
        assert row != DEAD
    assert row.accepts and p.advance(row, 0b10) == DEAD
    assert p.advance(p.initial, 0b01) is rows[0]  # memoised and hash-consed


def test_rows_after_different_values_in_one_context_are_one_row():
    # V -> a | b | ( V ) ;  S -> V | S , V  (terminals a b ( ) ,): a row drops its complete
    # items, so the rows after "a", "b" and "(a)" at the same place are one object, and they
    # still tell an accepting prefix from another
    terms = ("a", "b", "(", ")", ",")
    p = EarleyParser(_grammar([("S", ("V",)), ("S", ("S", ",", "V")), ("V", ("a",)), ("V", ("b",)),
                               ("V", ("(", "V", ")"))], terms))
    bit = {t: 1 << i for i, t in enumerate(terms)}

    def run(text):
        row = p.initial
        for ch in text:
            row = p.advance(row, bit[ch])
            assert row != DEAD, text
        return row

    assert run("a") is run("b") is run("(a)") is run("((b))")
    assert run("a,b") is run("a,(a)") is run("a")  # left recursion: one row after every element
    assert run("a").accepts and not run("(a").accepts and not run("a,").accepts
    assert run("(a") is run("(b") and run("(a").allowed == bit[")"]
    assert p.advance(run("(a"), bit[")"]) is run("b")
    assert p.advance(run("a,"), bit[")"]) == DEAD


def test_rows_are_collectable_and_serials_never_reused():
    p = EarleyParser(_grammar([("S", ("a", "S")), ("S", ("b",))]))
    row = p.initial
    for _ in range(50):
        row = p.advance(row, 0b01)
    serial, ref = row.serial, weakref.ref(row)
    assert all(isinstance(it, int) for it in row.items)  # no per-item objects
    del row
    p.clear_cache()
    gc.collect()
    assert ref() is None
    again = p.initial
    for _ in range(50):
        again = p.advance(again, 0b01)
    assert again.serial > serial


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's cycle collector")
def test_rows_leave_the_cycle_collector_and_free_by_reference_counting():
    # rows point only at older rows, so they are untracked; a 50k-deep chain of them
    # (each row's items point at the one before) still frees at once, collector off
    p = EarleyParser(_grammar([("S", ("a", "S")), ("S", ("b",))]))
    first = row = p.advance(p.initial, 0b01)
    for _ in range(50_000):
        row = p.advance(row, 0b01)
    assert not gc.is_tracked(row) and not gc.is_tracked(first) and not gc.is_tracked(p.initial)
    assert p.advance(row, 0b10).accepts
    ref = weakref.ref(first)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        del first, row
        p.clear_cache()
        assert ref() is None
    finally:
        if was_enabled:
            gc.enable()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["arithmetic", "minilang"])
def test_planned_masks_equal_cold_masks(backend, name):
    vocab = Vocabulary.from_strings(TOKENS + ["a", "b", "=", ";", "\n", "if", "let", "print"], name="t12")
    source = (GRAMMARS / f"{name}.lark").read_text(encoding="utf-8")
    warm = compile_grammar(source, vocab, kernels=backend)
    rng = random.Random(12)
    m = warm.matcher()
    history: list[int] = []
    checked = 0
    for step in range(12):
        got = np.array(m.next_token_mask())
        # the same state in a constraint whose plans and masks are empty
        cold = CompiledGrammar(warm.grammar, vocab, kernels=backend)  # private caches
        assert cold is not warm and len(cold._inner) == 0
        cold_m = cold.matcher()
        for t in history:
            assert cold_m.accept_token(t)
        want = np.array(cold_m.next_token_mask())
        assert np.array_equal(got, want), (name, step)
        checked += 1
        allowed = [t for t in range(vocab.size) if (int(got[t >> 5]) >> (t & 31)) & 1
                   and t not in vocab.eos_ids]
        if not allowed:
            break
        t = rng.choice(allowed)
        history.append(t)
        assert m.accept_token(t)
        if step == 5:
            warm.clear_cache()  # plans rebuilt mid-way
    assert checked >= 6 and len(warm._inner) > 0


def _productive_by_sweeps(grammar):
    """The textbook fixpoint (sweep the rules until nothing changes): the oracle."""
    live_terms = {t for t, term in enumerate(grammar.terminals) if term.dfa.accepting.any()}
    productive, changed = set(), True
    while changed:
        changed = False
        for lhs, rhs in grammar.rules:
            if lhs not in productive and all((symbol_term(s) in live_terms) if s < 0 else s in productive
                                             for s in rhs):
                productive.add(lhs)
                changed = True
    return [(lhs, rhs) for lhs, rhs in grammar.rules
            if all((symbol_term(s) in live_terms) if s < 0 else s in productive for s in rhs)]


def test_prune_unproductive_equals_the_fixpoint_on_random_grammars():
    from structgen.automata.fsm import ByteDFA
    from structgen.errors import GrammarError
    from structgen.grammar.ir import prune_unproductive

    rng = random.Random(17)
    empty = ByteDFA(np.full((1, 1), -1, np.int32), np.zeros(256, np.uint8), np.zeros(1, bool), 0)
    checked = 0
    for _ in range(300):
        n_nt = rng.randint(1, 6)
        terminals = [Terminal("A", literal_dfa(b"a")), Terminal("B", literal_dfa(b"b")), Terminal("DEAD", empty)]
        rules = [(rng.randrange(n_nt), tuple(rng.choice([term_symbol(rng.randrange(3)), rng.randrange(n_nt)])
                                             for _ in range(rng.randint(0, 3))))
                 for _ in range(rng.randint(1, 9))]
        g = Grammar(terminals, [f"N{i}" for i in range(n_nt)], rules, 0)
        want = _productive_by_sweeps(g)
        if not any(lhs == 0 for lhs, _ in want):
            with pytest.raises(GrammarError):
                prune_unproductive(g)
            continue
        pruned = prune_unproductive(g)
        assert list(pruned.rules) == want, rules
        nullable, changed = set(), True  # the textbook sweep over the pruned rules
        while changed:
            changed = False
            for lhs, rhs in pruned.rules:
                if lhs not in nullable and all(s >= 0 and s in nullable for s in rhs):
                    nullable.add(lhs)
                    changed = True
        assert pruned.meta["nullable"][0] is pruned.rules and pruned.meta["nullable"][1] == nullable, rules
        assert EarleyParser(pruned)._nullable() == nullable  # the parser takes the pruning's
        checked += 1
    assert checked > 50


def test_nullable_equals_the_fixpoint_on_random_grammars():
    rng = random.Random(23)
    for _ in range(300):
        n_nt = rng.randint(1, 6)
        rules = [(f"N{rng.randrange(n_nt)}", tuple(rng.choice(["a", f"N{rng.randrange(n_nt)}"])
                                                    for _ in range(rng.randint(0, 3))))
                 for _ in range(rng.randint(1, 9))]
        rules = [(f"N{i}", ("a",)) for i in range(n_nt)] + rules  # every name is a rule's; N0 starts
        g = _grammar(rules)
        want, changed = set(), True
        while changed:  # the textbook sweep
            changed = False
            for lhs, rhs in g.rules:
                if lhs not in want and all(s >= 0 and s in want for s in rhs):
                    want.add(lhs)
                    changed = True
        assert EarleyParser(g)._nullable() == want, rules
