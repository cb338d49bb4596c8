"""The exact bias test of the meta-gradient estimators (examples/estimator_bias.py): quadrature against
brute-force sampling, and which estimators are unbiased for the expected return after an inner step."""

import sys
from dataclasses import replace

import pytest
import torch

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))
from estimator_bias import ESTIMATORS, Problem, expected_meta_gradient, sampled_meta_gradients, true_meta_gradient  # noqa: E402

SAMPLES = 200_000
PROBLEM = Problem()


@pytest.fixture(scope="module")
def sampled():
    generator = torch.Generator().manual_seed(0)
    results = {}
    for estimator in ESTIMATORS:
        samples = sampled_meta_gradients(PROBLEM, estimator, SAMPLES, generator)
        results[estimator] = (samples.mean().item(), samples.std().item() / SAMPLES ** 0.5)
    return results


def test_the_quadrature_is_exact_and_matches_sampling(sampled):
    for estimator, (mean, stderr) in sampled.items():
        assert abs(mean - expected_meta_gradient(PROBLEM, estimator)) < 4 * stderr, estimator
    # exact: a point more per axis changes nothing; a point fewer does for DiCE (degree 7 in a coordinate)
    for estimator in ESTIMATORS:
        assert expected_meta_gradient(PROBLEM, estimator, 5) == pytest.approx(
            expected_meta_gradient(PROBLEM, estimator, 4), rel=1e-12, abs=1e-12)
    assert true_meta_gradient(PROBLEM, 5) == pytest.approx(true_meta_gradient(PROBLEM, 4), rel=1e-12, abs=1e-12)
    assert abs(expected_meta_gradient(PROBLEM, "dice", 3) - expected_meta_gradient(PROBLEM, "dice", 4)) > 1e-3


def test_only_the_estimator_with_the_sampling_term_is_unbiased(sampled):
    truth = true_meta_gradient(PROBLEM)
    assert expected_meta_gradient(PROBLEM, "reinforce + sampling term") == pytest.approx(truth, abs=1e-10)
    mean, stderr = sampled["reinforce + sampling term"]
    assert abs(mean - truth) < 4 * stderr
    for estimator in ("reinforce", "lvc", "first-order"):  # the bias is many standard errors wide
        mean, stderr = sampled[estimator]
        assert abs(mean - truth) > 5 * stderr, estimator


def test_dice_bias_shrinks_with_the_square_of_the_step_size_reinforce_bias_about_linearly():
    def bias(estimator, alpha):
        problem = replace(PROBLEM, alpha=alpha)
        return expected_meta_gradient(problem, estimator) - true_meta_gradient(problem)

    dice_ratio = bias("dice", 0.01) / bias("dice", 0.001)
    reinforce_ratio = bias("reinforce", 0.01) / bias("reinforce", 0.001)
    assert 80 < dice_ratio < 120  # (0.01 / 0.001)^2 = 100
    assert 5 < reinforce_ratio < 15  # 0.01 / 0.001 = 10
