"""Exactness of the samplers on enumerable toy language models (structgen.testing):
masked decoding = the locally masked distribution; AWRS draws ∝ p·m with mean
weight Z; SMC's mean weight = P(L) and its weighted particles follow P(·|L);
ASAp's Q_n approaches P(·|L).  Every expectation is computed exactly, by
enumeration; every test is seeded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from structgen import Vocabulary, compile_regex
from structgen.errors import ConfigurationError
from structgen.sampling import AWRS, ASAp, awrs_step, sample_tokens, smc
from structgen.sampling.awrs import AWRSDraw, geometric_awrs, matcher_check, recursive_awrs
from structgen.sampling.lm import masked_token
from structgen.testing import (
    ToyLM,
    chi2_sf,
    chi2_test,
    exact_distributions,
    kl_divergence,
    weighted_chi2_test,
)

TOKENS = ["a", "b", "ab", "ba", "c", "bb"]
EOS = len(TOKENS)


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.from_strings(TOKENS)


def setup(vocab, pattern: str, seed: int, max_len: int = 4):
    compiled = compile_regex(pattern, vocab)
    lm = ToyLM(vocab.size, eos_id=EOS, max_len=max_len, seed=seed, eos_bias=0.5)
    return compiled, lm, exact_distributions(lm, compiled)


def test_chi2_helpers_against_known_values():
    assert chi2_sf(3.841459, 1) == pytest.approx(0.05, abs=1e-5)
    assert chi2_sf(18.307038, 10) == pytest.approx(0.05, abs=1e-5)
    assert chi2_sf(0.0, 4) == 1.0
    assert chi2_test({"x": 500, "y": 500}, {"x": 0.5, "y": 0.5})[2] > 0.9
    assert chi2_test({"x": 600, "y": 400}, {"x": 0.5, "y": 0.5})[2] < 1e-6
    assert chi2_test({"z": 1}, {"x": 1.0})[2] == 0.0


def test_exact_enumeration_is_consistent(vocab):
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=1)
    assert sum(ex.posterior.values()) == pytest.approx(1.0)
    assert sum(ex.gcd.values()) + ex.gcd_dead == pytest.approx(1.0)
    # P(L) by brute force over every output of the toy LM
    total, stack = 0.0, [((), 0.0)]
    while stack:
        x, lp = stack.pop()
        row = lm.next_logprobs(list(x))
        for t in np.flatnonzero(row > -np.inf):
            if t == EOS:
                m = compiled.matcher()
                if m.accept_tokens(list(x)) and m.can_terminate():
                    total += math.exp(lp + row[t])
            else:
                stack.append((x + (int(t),), lp + row[t]))
    assert ex.z == pytest.approx(total, rel=1e-12)
    assert kl_divergence(ex.posterior, ex.gcd) > 0.5  # masking is far from the target here


# --- masked decoding ----------------------------------------------------------------------

def test_masked_sampling_is_the_locally_masked_distribution(vocab):
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=1)
    rng = np.random.default_rng(0)
    counts: dict = {}
    for _ in range(8000):
        x, ended = sample_tokens(lm, compiled.matcher(), rng=rng, max_tokens=10)
        key = tuple(x) if ended else None
        counts[key] = counts.get(key, 0) + 1
    _, _, p = chi2_test(counts, {**ex.gcd, None: ex.gcd_dead})
    assert p > 0.01


# --- AWRS ---------------------------------------------------------------------------------

def awrs_state(vocab, prefix):
    compiled, lm, _ = setup(vocab, r"(ab|ba|c)*", seed=1)
    m = compiled.matcher()
    assert m.accept_tokens(prefix)
    lp = lm.next_logprobs(list(prefix))
    allowed = [t for t in range(vocab.size) if m.fork().accept_token(t)]
    p = np.exp(lp)
    z = float(p[allowed].sum())
    return m, lp, {t: float(p[t]) / z for t in allowed}, z


@pytest.mark.parametrize("variant", ["recursive", "geometric"])
@pytest.mark.parametrize("prefix", [[], [2], [4, 3]])
def test_awrs_draws_follow_p_times_m_and_weights_average_to_z(vocab, variant, prefix):
    m, lp, probs, z = awrs_state(vocab, prefix)
    rng = np.random.default_rng(len(prefix))
    n = 40_000
    counts: dict = {}
    w = np.empty(n)
    for i in range(n):
        d = awrs_step(lp, m, rng=rng, variant=variant)
        counts[d.token] = counts.get(d.token, 0) + 1
        w[i] = math.exp(d.log_weight)
    assert chi2_test(counts, probs)[2] > 0.01
    se = w.std() / math.sqrt(n) / z
    assert se < 0.005  # the 1 % check below is a >= 2 sigma check
    assert abs(w.mean() / z - 1) < 0.01
    assert m.num_accepted == len(prefix)  # the matcher is not advanced


@pytest.mark.parametrize("variant", ["recursive", "geometric"])
def test_awrs_check_cap_falls_back_to_the_exact_mask(vocab, variant):
    m, lp, probs, z = awrs_state(vocab, [2])
    rng = np.random.default_rng(5)
    counts: dict = {}
    ws = []
    for _ in range(6000):
        d = awrs_step(lp, m, rng=rng, variant=variant, max_rejects=0)
        counts[d.token] = counts.get(d.token, 0) + 1
        ws.append(math.exp(d.log_weight))
    assert chi2_test(counts, probs)[2] > 0.01
    if variant == "recursive":  # no checks before the fallback: Ẑ = Σ p·m exactly
        assert np.allclose(ws, z)
    assert abs(np.mean(ws) / z - 1) < 0.02


def test_awrs_never_draws_special_or_out_of_vocabulary_ids():
    # ids 0..2 text, 3 EOS, 4 a special token; logits 3 wider than the vocabulary
    vocab = Vocabulary([b"a", b"b", b"c", None, None], [3], special_ids=[3, 4])
    compiled = compile_regex(r"[ab]+", vocab)
    m = compiled.matcher()
    assert m.accept_token(0)
    lp = np.log(np.array([0.05, 0.05, 0.1, 0.1, 0.3, 0.2, 0.1, 0.1]))
    z = 0.05 + 0.05 + 0.1  # a, b, EOS
    sampler = AWRS()
    rng = np.random.default_rng(0)
    seen, ws = set(), []
    for _ in range(4000):
        d = sampler.sample(lp, m, rng)
        seen.add(d.token)
        ws.append(math.exp(d.log_weight))
    assert seen == {0, 1, 3}
    assert abs(np.mean(ws) / z - 1) < 0.03
    # nothing allowed: weight 0, no token
    dead = compiled.matcher()
    assert dead.accept_token(2) is False
    d = recursive_awrs(np.log(np.full(3, 1 / 3)), lambda t: False, rng=rng)
    assert d == AWRSDraw(-1, -math.inf, 3)
    assert geometric_awrs(np.log(np.full(3, 1 / 3)), lambda t: False, rng=rng).token == -1


def test_awrs_refuses_truncating_warpers():
    with pytest.raises(ConfigurationError, match="top_k/top_p"):
        AWRS(top_k=5)
    with pytest.raises(ConfigurationError, match="top_k/top_p"):
        AWRS(top_p=0.9)
    with pytest.raises(ConfigurationError):
        AWRS(variant="fast")


def test_awrs_check_is_the_matcher(vocab):
    compiled = compile_regex(r"ab", vocab)
    m = compiled.matcher()
    check = matcher_check(m)
    assert [check(t) for t in range(vocab.size)] == [True, False, True, False, False, False, False]
    m.accept_token(2)
    assert [check(t) for t in range(vocab.size)] == [False] * 6 + [True]


def buggy_masked_weight_step(lp, matcher, rng):
    """The classic bug: draw from the mask and weight with the *masked* (renormalised)
    probabilities, whose allowed mass is always 1, instead of the raw ones."""
    t = masked_token(lp, matcher, rng=rng)
    if t is None:
        return AWRSDraw(-1, -math.inf, 0)
    return AWRSDraw(t, 0.0, 0)  # log Σ p̃·m = log 1


class BuggySampler(AWRS):
    def sample(self, logprobs, matcher, rng):
        return buggy_masked_weight_step(logprobs, matcher, rng)


def test_regression_weighting_with_masked_probabilities_fails_the_checks(vocab):
    m, lp, probs, z = awrs_state(vocab, [2])
    rng = np.random.default_rng(0)
    ws = [math.exp(buggy_masked_weight_step(lp, m, rng).log_weight) for _ in range(2000)]
    assert abs(np.mean(ws) / z - 1) > 0.5  # the Z check the real sampler passes would fail
    # and through SMC: the weighted particles are masked decoding's, not P(·|L)
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=1)
    runs = [smc_run(lm, compiled, rng, token_sampler=BuggySampler()) for _ in range(300)]
    assert weighted_chi2_test([r[1] for r in runs], ex.posterior)[2] < 0.01


# --- SMC ----------------------------------------------------------------------------------

def smc_run(lm, compiled, rng, **kw):
    kw.setdefault("n_particles", 10)
    kw.setdefault("max_tokens", 10)
    res = smc(lm, compiled.matcher(), rng=rng, **kw)
    per_outcome: dict = {}
    for x, lw in zip(res.particles, res.log_weights):
        if lw > -math.inf:
            per_outcome[tuple(x)] = per_outcome.get(tuple(x), 0.0) + math.exp(lw)
    return math.exp(res.log_ml), per_outcome, res


@pytest.mark.parametrize("resampling", ["systematic", "multinomial", "stratified"])
def test_smc_mean_weight_is_the_probability_of_the_language(vocab, resampling):
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=0)
    rng = np.random.default_rng(1)
    runs = [smc_run(lm, compiled, rng, resampling=resampling, ess_threshold=0.9) for _ in range(900)]
    ml = np.array([r[0] for r in runs])
    assert ml.std() / math.sqrt(len(ml)) / ex.z < 0.008
    assert abs(ml.mean() / ex.z - 1) < 0.02
    assert sum(r[2].n_resamples for r in runs) > 0  # resampling did happen


def test_smc_weighted_particles_follow_the_posterior(vocab):
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=1)
    rng = np.random.default_rng(2)
    runs = [smc_run(lm, compiled, rng) for _ in range(400)]
    assert weighted_chi2_test([r[1] for r in runs], ex.posterior)[2] > 0.01
    ml = np.array([r[0] for r in runs])
    assert abs(ml.mean() / ex.z - 1) < 4 * ml.std() / math.sqrt(len(ml)) / ex.z
    res = runs[0][2]
    assert abs(sum(res.posterior().values()) - 1) < 1e-9
    assert res.n_steps <= lm.max_len + 1  # one batched call per step


def test_smc_budget_forces_eos_with_its_probability(vocab):
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=0)
    budget = 2
    target = sum(p for x, p in ex.p_lang.items() if len(x) <= budget)
    rng = np.random.default_rng(3)
    ml = np.array([smc_run(lm, compiled, rng, max_tokens=budget)[0] for _ in range(500)])
    assert all(len(x) <= budget for x in smc_run(lm, compiled, rng, max_tokens=budget)[2].particles)
    assert abs(ml.mean() / target - 1) < 0.02


def test_smc_critic_reweights_complete_outputs(vocab):
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=0)

    def critic(tokens):  # halve outputs containing "c"
        return math.log(0.5) if 4 in tokens else 0.0

    target = sum(p * (0.5 if 4 in x else 1.0) for x, p in ex.p_lang.items())
    rng = np.random.default_rng(4)
    ml = np.array([smc_run(lm, compiled, rng, critic=critic)[0] for _ in range(500)])
    assert abs(ml.mean() / target - 1) < 0.02


class RecordingLM:
    """A ToyLM that checks the reorder contract: row i of a call extends row
    indices[i] of the previous call."""

    def __init__(self, lm):
        self.lm, self.vocab_size, self.eos_ids = lm, lm.vocab_size, lm.eos_ids
        self.rows: list[list[int]] | None = None
        self.reorders = self.calls = 0

    def reset(self):
        self.rows = None

    def reorder(self, indices):
        self.rows = [self.rows[i] for i in indices]
        self.reorders += 1

    def logprobs(self, prefixes):
        if self.rows is not None:
            assert len(prefixes) == len(self.rows)
            for old, new in zip(self.rows, prefixes):
                assert new[:len(old)] == old and len(new) == len(old) + 1
        self.rows = [list(p) for p in prefixes]
        self.calls += 1
        return self.lm.logprobs(prefixes)


def test_smc_and_asap_keep_the_lm_rows_in_step(vocab):
    compiled, lm, _ = setup(vocab, r"(ab|ba|c)*", seed=1)
    rec = RecordingLM(lm)
    rng = np.random.default_rng(6)
    for _ in range(20):
        smc(rec, compiled.matcher(), n_particles=6, rng=rng, max_tokens=10, ess_threshold=0.9, prompt=[])
    assert rec.reorders > 0
    ASAp(max_tokens=10, batch_size=4).sample(rec, compiled.matcher, 20, rng)


def test_smc_validates_its_options(vocab):
    compiled, lm, _ = setup(vocab, r"(ab|ba|c)*", seed=1)
    rng = np.random.default_rng(0)
    for kw in ({"resampling": "residual"}, {"ess_threshold": 1.5}, {"n_particles": 0}):
        with pytest.raises(ConfigurationError):
            smc(lm, compiled.matcher(), rng=rng, max_tokens=5, **{"n_particles": 3, **kw})


# --- ASAp ---------------------------------------------------------------------------------

def asap_kl(asap, lm, compiled, ex) -> float:
    q = {x: math.exp(asap.log_prob(lm, compiled.matcher, x)) for x in ex.posterior}
    return kl_divergence(ex.posterior, q)


def test_asap_converges_to_the_posterior_while_masking_stays_flat(vocab):
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=1)
    kl_gcd = kl_divergence(ex.posterior, ex.gcd)
    asap = ASAp(max_tokens=10, batch_size=4)
    masking = ASAp(max_tokens=10, max_nodes=1)  # a trie that cannot grow: plain masking
    rng = np.random.default_rng(0)
    kls, flat, done = [], [], 0
    for n in (0, 100, 500, 2000):
        asap.sample(lm, compiled.matcher, n - done, rng)
        masking.sample(lm, compiled.matcher, n - done, rng)
        done = n
        kls.append(asap_kl(asap, lm, compiled, ex))
        flat.append(asap_kl(masking, lm, compiled, ex))
    assert kls[0] == pytest.approx(kl_gcd)  # an empty trie is masking
    assert all(b < a for a, b in zip(kls, kls[1:]))
    assert kls[-1] <= 0.5 * kl_gcd
    assert flat == pytest.approx([kl_gcd] * 4)
    assert masking.num_nodes == 1
    assert asap.root_efg >= ex.z - 1e-9  # Ê stays an upper bound


def test_asap_samples_are_valid_and_the_trie_stores_only_visited_children(vocab):
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=1)
    asap = ASAp(max_tokens=10, batch_size=5)
    rng = np.random.default_rng(1)
    samples = asap.sample(lm, compiled.matcher, 200, rng)
    assert len(samples) == 200
    assert all(tuple(s.tokens) in ex.p_lang for s in samples if s.finished)
    distinct_prefixes = {tuple(s.tokens[:k]) for s in samples for k in range(len(s.tokens) + 1)}
    # one node per distinct prefix, plus one per accepted EOS (children never sampled are not stored)
    assert asap.num_nodes <= len(distinct_prefixes) + len({tuple(s.tokens) for s in samples if s.finished})
    small = ASAp(max_tokens=10, max_nodes=30)
    small.sample(lm, compiled.matcher, 200, rng)
    assert small.num_nodes == 30


def test_asap_save_and_load_round_trip(vocab, tmp_path):
    compiled, lm, ex = setup(vocab, r"(ab|ba|c)*", seed=1)
    asap = ASAp(max_tokens=10)
    asap.sample(lm, compiled.matcher, 300, np.random.default_rng(2))
    path = tmp_path / "trie.json"
    asap.save(path)
    again = ASAp.load(path)
    assert again.num_nodes == asap.num_nodes and again.num_samples == 300
    for x in list(ex.posterior)[:20]:
        assert again.log_prob(lm, compiled.matcher, x) == asap.log_prob(lm, compiled.matcher, x)
    # learning goes on from the loaded trie exactly as from the original
    a = asap.sample(lm, compiled.matcher, 40, np.random.default_rng(9))
    b = again.sample(lm, compiled.matcher, 40, np.random.default_rng(9))
    assert [s.tokens for s in a] == [s.tokens for s in b]
    path.write_text('{"format": "other"}')
    with pytest.raises(ConfigurationError):
        ASAp.load(path)
