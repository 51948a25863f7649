import itertools

import numpy as np
import pytest

from barapi.config import MethodConfig
from barapi.errors import ConfigError
from barapi.method.cmaes import CMAES
from barapi.method.estimators import ESTIMATORS, OneSidedEstimator
from barapi.method.optim import ZerothOrderOptimizer, make_optimizer
from barapi.run.strategies import optimizer_for
from barapi.method.signal import StepSignal
from barapi.method.steps import STEP_RULES, SGD, Adam

A = np.diag(np.linspace(1.0, 3.0, 12))
TARGET = np.linspace(-1.0, 1.0, 12)


def quadratic(w: np.ndarray) -> float:
    r = w.ravel() - TARGET
    return float(0.5 * r @ A @ r)


def true_gradient(w: np.ndarray) -> np.ndarray:
    return A @ (w.ravel() - TARGET)


INFORMED = sorted(name for name, estimator in ESTIMATORS.items() if estimator.informed)


@pytest.mark.parametrize("name", INFORMED)
def test_estimator_is_unbiased_on_a_quadratic(name: str) -> None:
    w = np.zeros(12)
    estimator = ESTIMATORS[name](q=4, beta=0.05)
    rng = np.random.default_rng(0)
    total = np.zeros(12)
    trials = 6000
    for _ in range(trials):
        losses = np.array([quadratic(w + o) for o in estimator.offsets(rng, w.shape)])
        total += estimator.gradient(losses)
    mean = total / trials
    g = true_gradient(w)
    assert np.linalg.norm(mean - g) / np.linalg.norm(g) < 0.08


def test_estimator_variance_falls_with_q() -> None:
    w = np.zeros(12)
    g = true_gradient(w)

    def mse(q: int) -> float:
        estimator = OneSidedEstimator(q=q, beta=0.01)
        rng = np.random.default_rng(1)
        errors = []
        for _ in range(400):
            losses = np.array([quadratic(w + o) for o in estimator.offsets(rng, w.shape)])
            errors.append(np.sum((estimator.gradient(losses) - g) ** 2))
        return float(np.mean(errors))

    assert mse(20) < mse(2) / 5


def test_one_sided_uses_q_plus_one_queries_and_puts_w_first() -> None:
    estimator = OneSidedEstimator(q=25, beta=0.5)
    offsets = estimator.offsets(np.random.default_rng(0), (4, 4, 3))
    assert len(offsets) == 26 == estimator.queries_per_sample
    assert not offsets[0].any()
    assert all(np.linalg.norm(o) == pytest.approx(0.5) for o in offsets[1:])


@pytest.mark.parametrize("estimator,rule", list(itertools.product(INFORMED, sorted(STEP_RULES))))
def test_every_estimator_and_step_rule_minimises_a_convex_toy(estimator: str, rule: str) -> None:
    lr = {"sgd": 0.05, "adam": 0.05, "sign-sgd": 0.01, "nesterov-gc": 0.01}[rule]
    optimizer = make_optimizer(np.zeros(12), estimator=estimator, q=6, beta=0.01, optimizer=rule, lr=lr, lr_decay=0.999)
    start = quadratic(optimizer.w)
    for t in range(600):
        candidates = optimizer.ask(np.random.default_rng([7, t]))
        optimizer.tell([quadratic(c) for c in candidates])
    assert quadratic(optimizer.w) < 0.05 * start


@pytest.mark.parametrize("rule", sorted(STEP_RULES))
def test_state_round_trip_continues_identically(rule: str) -> None:
    def fresh() -> ZerothOrderOptimizer:
        return make_optimizer(np.ones(12), estimator="one-sided", q=3, beta=0.1, optimizer=rule, lr=0.01, lr_decay=0.99)

    a = fresh()
    for t in range(5):
        a.tell([quadratic(c) for c in a.ask(np.random.default_rng([1, t]))])
    b = fresh()
    b.load(a.state())
    for t in range(5, 10):
        a.tell([quadratic(c) for c in a.ask(np.random.default_rng([1, t]))])
        b.tell([quadratic(c) for c in b.ask(np.random.default_rng([1, t]))])
    assert np.array_equal(a.w, b.w)
    assert a.signal.ratio == b.signal.ratio


def test_step_signal_is_the_signal_to_noise_of_the_summed_estimates() -> None:
    """Estimates g + fresh noise with ‖g‖² = 1 and E‖ĝ‖² = 100: over 400 steps the sum's
    signal-to-noise is 400 · 1/100 = 4; with g = 0 it is 0."""
    rng = np.random.default_rng(0)
    d, steps = 768, 400
    g = np.full(d, 1 / np.sqrt(d))
    for gradient, expected in ((g, 4.0), (0 * g, 0.0)):
        signal = StepSignal((d,))
        for _ in range(steps):
            signal.add(gradient + rng.normal(0, np.sqrt(99 / d), d))
        assert signal.ratio == pytest.approx(expected, abs=0.6)


def test_step_signal_tells_a_random_walk_from_steps_that_follow_a_gradient() -> None:
    """Through the optimiser: losses that W does not change (an API's noise and nothing else)
    leave the ratio near 0; a quadratic far from its minimum drives it well above 1."""
    noise = np.random.default_rng(1)
    walk = make_optimizer(np.zeros((16, 16, 3)), estimator="two-sided", q=5, beta=0.3, optimizer="adam", lr=0.01, lr_decay=1.0)
    follow = make_optimizer(np.full(12, 5.0), estimator="two-sided", q=2, beta=0.01, optimizer="sgd", lr=0.001, lr_decay=1.0)
    assert walk.signal.ratio is None
    for t in range(100):
        walk.tell(noise.normal(size=len(walk.ask(np.random.default_rng([2, t])))))
        follow.tell([quadratic(c) for c in follow.ask(np.random.default_rng([3, t]))])
    assert abs(walk.signal.ratio) < 0.5
    assert follow.signal.ratio > 5


def test_a_checkpoint_without_a_step_signal_counts_from_its_resume() -> None:
    optimizer = make_optimizer(np.zeros(12), estimator="one-sided", q=3, beta=0.1, optimizer="adam", lr=0.01, lr_decay=1.0)
    optimizer.load({"w": np.ones(12), "rule.t": np.asarray(0)})
    assert optimizer.signal.steps == 0 and optimizer.signal.ratio is None


def test_sgd_step_decays_exponentially() -> None:
    sgd = SGD(lr=1.0, decay=0.5)
    w = np.zeros(1)
    steps = []
    for _ in range(3):
        new = sgd.step(w, np.ones(1))
        steps.append(float(w[0] - new[0]))
        w = new
    assert steps == [1.0, 0.5, 0.25]


def test_tell_without_ask_is_an_error() -> None:
    optimizer = ZerothOrderOptimizer(np.zeros(2), OneSidedEstimator(1, 0.1), Adam(0.1))
    with pytest.raises(RuntimeError):
        optimizer.tell([0.0, 1.0])


@pytest.mark.parametrize("rule", sorted(STEP_RULES))
def test_the_first_candidate_is_always_w_itself(rule: str) -> None:
    """The trainer reads the loss, the training accuracy and the readout's answers at the first
    candidate: with Nesterov's look-ahead it was once W + μ·v, not the program being trained."""
    optimizer = make_optimizer(np.zeros(12), estimator="spsa", q=2, beta=0.05, optimizer=rule, lr=0.1, lr_decay=1.0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        candidates = optimizer.ask(rng)
        assert len(candidates) == optimizer.queries_per_sample
        assert np.array_equal(candidates[0], optimizer.w)
        optimizer.tell([quadratic(c) for c in candidates])


def test_cma_es_minimises_the_toy_from_its_ranks_with_w_first_in_every_ask() -> None:
    optimizer = CMAES(np.zeros(12), population=10, sigma=0.3)
    start = quadratic(optimizer.w)
    for t in range(150):
        candidates = optimizer.ask(np.random.default_rng([7, t]))
        assert len(candidates) == optimizer.queries_per_sample == 11 and np.array_equal(candidates[0], optimizer.w)
        optimizer.tell([quadratic(c) for c in candidates])
    assert quadratic(optimizer.w) < 0.01 * start


def test_cma_es_draws_only_from_the_generator_it_is_given_and_resumes_by_replay() -> None:
    """numpy's global generator (cma's own default) must not matter, and a checkpoint taken
    midway must continue bit for bit: the trainer's resume contract."""
    def run(steps: range, optimizer: CMAES) -> CMAES:
        for t in steps:
            np.random.seed(t * 31 + 5)  # what cma would draw from, were it left to itself
            optimizer.tell([quadratic(c) for c in optimizer.ask(np.random.default_rng([1, t]))])
        return optimizer

    whole = run(range(20), CMAES(np.ones(12), population=6, sigma=0.2))
    restored = CMAES(np.zeros(12), population=6, sigma=0.2)
    restored.load(run(range(8), CMAES(np.ones(12), population=6, sigma=0.2)).state())
    run(range(8, 20), restored)
    assert np.array_equal(whole.w, restored.w) and whole.signal.ratio == restored.signal.ratio
    tampered = run(range(8), CMAES(np.ones(12), population=6, sigma=0.2)).state() | {"w": np.zeros(12)}
    with pytest.raises(ConfigError, match=r"pip install cma==\d"):
        CMAES(np.zeros(12), population=6, sigma=0.2).load(tampered)


def test_cma_es_costs_what_a_two_sided_estimate_of_q_directions_costs_and_starts_at_the_estimators_scale() -> None:
    method = MethodConfig(optimizer="cma-es", q=5)
    optimizer = optimizer_for(method)
    assert optimizer.queries_per_sample == optimizer_for(method.model_copy(update={"optimizer": "adam"})).queries_per_sample == 11
    offsets = [c - optimizer.w for c in optimizer.ask(np.random.default_rng(0))[1:]]
    per_coordinate = np.sqrt(np.mean(np.square(offsets)))
    assert per_coordinate == pytest.approx(method.perturbation_radius / np.sqrt(optimizer.w.size), rel=0.1)


def linear_run(steps: int, seed: int, shuffled: bool) -> StepSignal:
    """Exact two-sided differences of a linear loss (a fixed, known gradient); ``shuffled``: the
    losses at the perturbed points shuffled among them before each step, as the null row does."""
    g = np.random.default_rng(99).normal(size=(16, 16, 3))
    optimizer = make_optimizer(np.zeros((16, 16, 3)), estimator="two-sided", q=5, beta=0.3, optimizer="sgd", lr=1e-6, lr_decay=1.0)
    for t in range(steps):
        losses = np.array([float(np.sum(g * c)) for c in optimizer.ask(np.random.default_rng([seed, t]))])
        if shuffled:
            losses[1:] = np.random.default_rng([seed, t, 1]).permutation(losses[1:])
        optimizer.tell(losses)
    return optimizer.signal


def test_exact_derivatives_give_the_step_signal_its_expectation_and_the_shuffled_null_gives_zero() -> None:
    """T·q/d = 20 · 5 / 768 ≈ 0.13 with exact derivatives; 0 ± √(2T/((T−1)d)) ≈ 0.05 without information."""
    exact = [linear_run(20, seed, shuffled=False).reading(5) for seed in range(40)]
    null = [linear_run(20, seed, shuffled=True).reading(5) for seed in range(40)]
    assert exact[0].expected == pytest.approx(20 * 5 / 768) and exact[0].null_sd == pytest.approx(np.sqrt(2 * 20 / (19 * 768)))
    assert np.mean([r.ratio for r in exact]) == pytest.approx(exact[0].expected, abs=0.03)
    assert np.mean([r.ratio for r in null]) == pytest.approx(0.0, abs=0.03)
    assert np.std([r.ratio for r in null]) == pytest.approx(null[0].null_sd, rel=0.35)
    assert sum(r.random_walk for r in null) >= 36  # about 95 % inside ±2 sd


def test_the_closing_line_calls_a_walk_random_only_inside_the_nulls_band() -> None:
    long_exact = linear_run(300, 0, shuffled=False).reading(5)  # expected 300 · 5 / 768 ≈ 1.95
    assert not long_exact.random_walk and "above a random walk" in long_exact.describe(300)
    assert f"{long_exact.ratio / long_exact.expected:.0%} of the {long_exact.expected:.2f} exact derivatives" in long_exact.describe(300)
    null = linear_run(300, 0, shuffled=True).reading(5)
    assert null.random_walk and "indistinguishable from a random walk" in null.describe(300)


def test_the_null_estimator_shuffles_by_the_steps_own_generator() -> None:
    """The null row's steps: the same for the same seed and step (so a resumed run replays them),
    different across seeds, and of the two-sided estimate's size."""
    def gradient(seed: int) -> np.ndarray:
        null = ESTIMATORS["null"](q=5, beta=0.3)
        points = null.offsets(np.random.default_rng([seed, 4]), (16, 16, 3))
        return null.gradient(np.asarray([float(np.sum(p)) for p in points]) + np.arange(len(points)))
    assert np.array_equal(gradient(0), gradient(0)) and not np.array_equal(gradient(0), gradient(1))
    walk = make_optimizer(np.zeros(12), estimator="null", q=6, beta=0.01, optimizer="sgd", lr=0.05, lr_decay=0.999)
    start = quadratic(walk.w)
    for t in range(600):
        walk.tell([quadratic(c) for c in walk.ask(np.random.default_rng([7, t]))])
    assert quadratic(walk.w) > 0.5 * start  # where every informed estimator reaches below 0.05 × start
