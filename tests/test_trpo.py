import math
from dataclasses import replace

import pytest
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from rlmaml.adaptation import adapt_step
from rlmaml.config import TRPOConfig
from rlmaml.meta import MetaBatch, task_kl
from rlmaml.optim import conjugate_gradient
from rlmaml.trpo import Candidate, MetaTRPO, ProposedStep

from conftest import behaviour_log_probs, config_of, frozen_lvc_adapt, inner_update, make_batch


def _settings(**changes) -> TRPOConfig:
    """TRPO settings with the library defaults except ``changes`` (flat names)."""
    return config_of(**changes).outer.trpo


def scaled(proposal: ProposedStep, factor: float) -> ProposedStep:
    """The same proposal with the step (and its predicted improvement) times ``factor``."""
    return replace(proposal, step=factor * proposal.step, predicted_improvement=factor * proposal.predicted_improvement)


def test_conjugate_gradient_solves_spd_system():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(30, 30, generator=gen, dtype=torch.float64)
    spd = a @ a.T + 0.5 * torch.eye(30, dtype=torch.float64)
    b = torch.randn(30, generator=gen, dtype=torch.float64)
    x, ax = conjugate_gradient(lambda v: spd @ v, b, iterations=60, tolerance=1e-20)
    torch.testing.assert_close(x, torch.linalg.solve(spd, b), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(ax, spd @ x)
    # with few iterations the returned product is still A x for the returned x
    x, ax = conjugate_gradient(lambda v: spd @ v, b, iterations=3)
    torch.testing.assert_close(ax, spd @ x)


def _meta_batch(seed=0, num_tasks=3):
    policy, train = make_batch(num_tasks=num_tasks, num_traj=4, horizon=10, hidden_sizes=(6,), seed=seed)
    _, valid = make_batch(num_tasks=num_tasks, num_traj=4, horizon=10, hidden_sizes=(6,), seed=seed + 10)
    # the valid batch's actions stand for post-adaptation samples; any actions work for these checks
    return policy, MetaBatch([train], valid)


def _kl_gradient(meta, policy, meta_batch, old, vector):
    vector_to_parameters(vector, policy.parameters())
    mean, log_std = meta.distribution(policy.params(), meta_batch, create_graph=True)
    _, kl = meta.surrogate_and_kl(mean, log_std, old, meta_batch)
    return parameters_to_vector(torch.autograd.grad(kl, list(policy.parameters())))


def _hvp(meta, params, meta_batch):
    """The second-order Hessian-vector product as ``proposed_step`` builds it, at ``params``."""
    return meta._hessian_vector_product(params, meta_batch, True, meta.adapted(params, meta_batch, True))


def _central_difference(gradient, theta, v, eps=1e-5):
    """(gradient(theta + eps v) - gradient(theta - eps v)) / (2 eps): a Hessian-vector product [D]."""
    return (gradient(theta + eps * v) - gradient(theta - eps * v)) / (2 * eps)


@pytest.mark.parametrize("step_rule, lr", [("fixed", 0.5), ("return-scaled", 0.01)])  # short: no ReLU kink crossed
def test_hessian_vector_product_matches_finite_differences_of_kl_gradient(step_rule, lr):
    policy, meta_batch = _meta_batch()
    meta = MetaTRPO(policy, inner_update([lr], step_rule=step_rule), first_order=False, settings=_settings(cg_damping=0.0))
    params = policy.params()
    # the learner adapts with its step rule (the HVP below then differentiates through that rule)
    expected = adapt_step(policy, params, meta_batch.train[0], meta.inner, 0, create_graph=False)
    adapted = meta.adapted(params, meta_batch, create_graph=False)
    for name in expected:
        torch.testing.assert_close(adapted[name], expected[name])
    fixed = adapt_step(policy, params, meta_batch.train[0], inner_update([lr]), 0, create_graph=False)
    assert (step_rule == "fixed") == all(torch.equal(adapted[name], fixed[name]) for name in fixed)
    with torch.no_grad():
        old = meta.distribution(params, meta_batch, create_graph=False)
    hvp = _hvp(meta, params, meta_batch)
    theta = parameters_to_vector(policy.parameters()).detach().clone()
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(1), dtype=theta.dtype)
    exact = hvp(v)
    numeric = _central_difference(lambda x: _kl_gradient(meta, policy, meta_batch, old, x), theta, v)
    torch.testing.assert_close(exact, numeric, rtol=1e-4, atol=1e-8)
    # the KL Hessian at the old parameters is positive semi-definite
    assert float(v @ exact) > 0


def test_lvc_hessian_vector_product_matches_finite_differences_with_frozen_stop_gradients():
    policy, meta_batch = _meta_batch(seed=5)
    meta = MetaTRPO(policy, inner_update([0.5], "lvc"), first_order=False, settings=_settings(cg_damping=0.0))
    params = policy.params()
    with torch.no_grad():
        old = meta.distribution(params, meta_batch, create_graph=False)
    behaviour = behaviour_log_probs(policy, meta_batch.train, [0.5])

    def frozen_kl_gradient(vector):
        vector_to_parameters(vector, policy.parameters())
        adapted = frozen_lvc_adapt(policy, policy.params(), meta_batch.train, [0.5], behaviour)
        mean, log_std = policy.distribution(adapted, meta_batch.valid.flat("observations"))
        _, kl = meta.surrogate_and_kl(mean, log_std, old, meta_batch)
        return parameters_to_vector(torch.autograd.grad(kl, list(policy.parameters())))

    theta = parameters_to_vector(policy.parameters()).detach().clone()
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(2), dtype=theta.dtype)
    exact = _hvp(meta, params, meta_batch)(v)
    numeric = _central_difference(frozen_kl_gradient, theta, v)
    vector_to_parameters(theta, policy.parameters())
    torch.testing.assert_close(exact, numeric, rtol=1e-4, atol=1e-8)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=_settings(cg_damping=0.0))
    assert not torch.allclose(exact, _hvp(meta, params, meta_batch)(v), rtol=1e-3)


def _kl_and_loss(meta, policy, meta_batch, old):
    with torch.no_grad():
        mean, log_std = meta.distribution(policy.params(), meta_batch, create_graph=False)
        loss, kl = meta.surrogate_and_kl(mean, log_std, old, meta_batch)
    return float(loss), float(kl)


def test_trpo_step_improves_surrogate_within_max_kl():
    policy, meta_batch = _meta_batch(seed=2)
    settings = _settings(max_kl=0.01)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=settings)
    with torch.no_grad():
        old = meta.distribution(policy.params(), meta_batch, create_graph=False)
    loss_before, _ = _kl_and_loss(meta, policy, meta_batch, old)
    stats = meta.step(meta_batch)
    loss_after, kl_after = _kl_and_loss(meta, policy, meta_batch, old)
    assert stats["step_accepted"] == 1.0
    assert loss_after < loss_before
    assert 0 < kl_after <= settings.max_kl
    assert abs(stats["kl"] - kl_after) < 1e-9 and abs(stats["loss_after"] - loss_after) < 1e-9


def test_trpo_restores_parameters_when_no_step_is_acceptable():
    policy, meta_batch = _meta_batch(seed=3)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=_settings(max_kl=0.01, line_search_steps=4))
    exact = meta.surrogate_and_kl
    candidates = []

    def kl_always_too_large(mean, log_std, old, meta_batch, valid=None):
        loss, kl = exact(mean, log_std, old, meta_batch, valid)
        if not torch.is_grad_enabled():  # a line-search candidate
            candidates.append(parameters_to_vector(policy.parameters()).detach().clone())
            return loss, kl + 1.0
        return loss, kl

    meta.surrogate_and_kl = kl_always_too_large
    before = parameters_to_vector(policy.parameters()).detach().clone()
    stats = meta.step(meta_batch)
    assert stats["step_accepted"] == 0.0 and len(candidates) == 4
    assert all(not torch.equal(c, before) for c in candidates)  # candidates really moved the parameters
    assert torch.equal(parameters_to_vector(policy.parameters()).detach(), before)


def test_a_non_finite_step_is_rejected_without_trying_candidates():
    policy, meta_batch = _meta_batch(seed=3)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=_settings())
    proposal = meta.proposed_step(meta_batch)
    before = parameters_to_vector(policy.parameters()).detach().clone()
    tried = []
    meta.loss_and_kl_at = lambda *args: tried.append(args)
    nan_step = proposal.step.clone()
    nan_step[0] = float("nan")
    for bad in (replace(proposal, step=nan_step), replace(proposal, loss=float("nan")), scaled(proposal, float("inf"))):
        stats = meta.line_search(meta_batch, bad)
        assert stats["step_accepted"] == 0.0 and stats["line_search_steps"] == 0 and stats["kl"] == 0.0
        assert stats["step_fraction"] == 0.0 and math.isnan(stats["full_step_kl"])
    assert tried == [] and torch.equal(parameters_to_vector(policy.parameters()).detach(), before)


def _line_search_from_overlong_step(kl_rescale: bool, stretch: float = 1.3) -> tuple[dict, float]:
    """Run the line search from ``stretch`` times the proposed TRPO step (its KL about stretch^2
    times max_kl). Returns the statistics and max_kl."""
    policy, meta_batch = _meta_batch(seed=2)
    settings = _settings(max_kl=1e-7, cg_damping=0.0, line_search_kl_rescale=kl_rescale)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=settings)
    return meta.line_search(meta_batch, scaled(meta.proposed_step(meta_batch), stretch)), settings.max_kl


def test_kl_rescaled_backtracking_accepts_a_step_near_the_kl_bound():
    """A step whose KL is about 1.6 x max_kl (a small max_kl keeps the KL nearly quadratic): halving
    accepts a quarter of that (0.41 x max_kl); rescaling by sqrt(0.9 max_kl / KL) lands at 0.9 x
    max_kl up to the KL's cubic terms."""
    halved, max_kl = _line_search_from_overlong_step(kl_rescale=False)
    rescaled, _ = _line_search_from_overlong_step(kl_rescale=True)
    assert halved["line_search_steps"] == 2 and rescaled["line_search_steps"] == 2
    assert halved["full_step_kl"] == rescaled["full_step_kl"] > max_kl
    assert halved["step_fraction"] == 0.5
    assert rescaled["step_fraction"] == math.sqrt(0.9 * max_kl / rescaled["full_step_kl"])
    assert 0.35 * max_kl < halved["kl"] < 0.5 * max_kl
    assert 0.85 * max_kl < rescaled["kl"] <= max_kl
    assert rescaled["loss_after"] < halved["loss_after"] < halved["loss_before"]


def test_kl_rescaling_leaves_steps_within_the_bound_alone():
    plain, _ = _line_search_from_overlong_step(kl_rescale=False, stretch=0.9)
    rescaled, _ = _line_search_from_overlong_step(kl_rescale=True, stretch=0.9)
    assert plain == rescaled and plain["line_search_steps"] == 1


def test_kl_rescaling_falls_back_to_the_ratio_when_the_surrogate_got_worse():
    policy, meta_batch = _meta_batch(seed=2)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False,
                    settings=_settings(max_kl=0.01, line_search_ratio=0.5, line_search_kl_rescale=True))
    assert meta._backtrack_factor(improved=False, kl=0.04) == 0.5
    assert abs(meta._backtrack_factor(improved=True, kl=0.04) - (0.9 * 0.01 / 0.04) ** 0.5) < 1e-12
    assert meta._backtrack_factor(improved=True, kl=float("inf")) == 0.5


def test_hvp_on_a_trajectory_subsample_is_the_hessian_of_that_subsample():
    policy, meta_batch = _meta_batch(seed=4, num_tasks=3)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=_settings(hvp_traj_fraction=0.5, cg_damping=0.0))
    params = policy.params()
    v = torch.randn(parameters_to_vector(policy.parameters()).shape, dtype=torch.float64)
    sub = _hvp(meta, params, meta_batch)(v)
    first_half = MetaBatch([meta_batch.train[0].trajectories(slice(0, 2))], meta_batch.valid.trajectories(slice(0, 2)))
    with torch.no_grad():
        old = meta.distribution(params, first_half, create_graph=False)
    theta = parameters_to_vector(policy.parameters()).detach().clone()
    numeric = _central_difference(lambda x: _kl_gradient(meta, policy, first_half, old, x), theta, v)
    torch.testing.assert_close(sub, numeric, rtol=1e-4, atol=1e-8)
    meta.settings = _settings(cg_damping=0.0)
    assert not torch.allclose(sub, _hvp(meta, params, meta_batch)(v))


def test_proposed_step_reaches_max_kl_in_the_small_step_limit():
    """With exact curvature the full step's KL is the quadratic model's, max_kl, up to a relative
    error that shrinks with the step (O(step^3) against O(step^2))."""
    policy, meta_batch = _meta_batch(seed=3)
    theta = parameters_to_vector(policy.parameters()).detach().clone()
    errors = []
    for max_kl in (1e-8, 1e-10):
        meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=_settings(max_kl=max_kl, cg_damping=0.0))
        proposal = meta.proposed_step(meta_batch)
        kl = meta.loss_and_kl_at(theta - proposal.step, meta_batch, proposal).kl
        errors.append(abs(kl / max_kl - 1))
        meta.loss_and_kl_at(theta, meta_batch, proposal)
    assert errors[1] < 2e-3 and errors[1] < errors[0] / 5
    assert torch.equal(parameters_to_vector(policy.parameters()), theta)


def _hvp_on_half(seed, adaptation):
    """The Hessian-vector product with curvature on half of the trajectories, for a random v.

    Returns the policy, the MetaTRPO, the meta-batch with only the first half of the
    post-adaptation trajectories (the states that product's KL is measured on), v and the product.
    """
    policy, meta_batch = _meta_batch(seed=seed, num_tasks=3)
    settings = _settings(hvp_traj_fraction=0.5, hvp_adaptation=adaptation, cg_damping=0.0)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=settings)
    theta = parameters_to_vector(policy.parameters()).detach()
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(seed), dtype=theta.dtype)
    product = _hvp(meta, policy.params(), meta_batch)(v)
    half = MetaBatch(meta_batch.train, meta_batch.valid.trajectories(slice(0, 2)))
    return policy, meta, half, v, product


def test_hvp_with_full_adaptation_is_the_hessian_of_the_subsampled_kl_after_adapting_on_all_trajectories():
    policy, meta, half, v, product = _hvp_on_half(seed=5, adaptation="full")
    with torch.no_grad():
        old = meta.distribution(policy.params(), half, create_graph=False)
    theta = parameters_to_vector(policy.parameters()).detach().clone()
    numeric = _central_difference(lambda x: _kl_gradient(meta, policy, half, old, x), theta, v)
    torch.testing.assert_close(product, numeric, rtol=1e-4, atol=1e-8)
    vector_to_parameters(theta, policy.parameters())
    meta.settings = _settings(cg_damping=0.0)  # what "subsample" computes: adaptation on half too
    half_train = MetaBatch([half.train[0].trajectories(slice(0, 2))], half.valid)
    assert not torch.allclose(product, _hvp(meta, policy.params(), half_train)(v))


def test_hvp_with_first_order_adaptation_is_the_hessian_of_the_kl_with_the_adaptation_shift_held_fixed():
    policy, meta, half, v, product = _hvp_on_half(seed=6, adaptation="first-order")
    params = policy.params()
    with torch.no_grad():
        adapted = meta.adapted(params, half, create_graph=False)  # on all inner-step trajectories
        shift = {name: adapted[name] - p for name, p in params.items()}
        old = policy.distribution(adapted, half.valid.flat("observations"))
    theta = parameters_to_vector(policy.parameters()).detach().clone()

    def kl_gradient(vector):
        vector_to_parameters(vector, policy.parameters())
        shifted = {name: p + shift[name] for name, p in policy.params().items()}
        mean, log_std = policy.distribution(shifted, half.valid.flat("observations"))
        _, kl = meta.surrogate_and_kl(mean, log_std, old, half)
        return parameters_to_vector(torch.autograd.grad(kl, list(policy.parameters())))

    torch.testing.assert_close(product, _central_difference(kl_gradient, theta, v), rtol=1e-4, atol=1e-8)
    vector_to_parameters(theta, policy.parameters())
    meta.settings = _settings(hvp_adaptation="full", cg_damping=0.0)  # with the Jacobian, same states
    assert not torch.allclose(product, _hvp(meta, policy.params(), half)(v))


def test_step_statistics_report_the_full_step_against_its_models():
    """For a small trust region the full step's KL is the quadratic model's (max_kl) and its
    surrogate improvement the linear model's (gradient . step); a full step inside the bound is
    accepted as it is,
    and the parameters end at theta - step_fraction * step."""
    policy, meta_batch = _meta_batch(seed=3)
    theta = parameters_to_vector(policy.parameters()).detach().clone()
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=_settings(max_kl=1e-9, cg_damping=0.0))
    proposal = scaled(meta.proposed_step(meta_batch), 0.98)  # inside the bound whatever the cubic terms
    stats = meta.line_search(meta_batch, proposal)
    assert stats["line_search_steps"] == 1 and stats["step_fraction"] == 1.0
    assert abs(stats["full_step_kl"] / (0.98**2 * 1e-9) - 1) < 1e-2
    assert proposal.predicted_improvement > 0
    assert abs(stats["full_step_improvement"] / proposal.predicted_improvement - 1) < 1e-2
    assert stats["full_step_kl"] == stats["kl"]
    assert math.isclose(stats["loss_before"] - stats["loss_after"], stats["full_step_improvement"], rel_tol=1e-12)
    torch.testing.assert_close(parameters_to_vector(policy.parameters()).detach(), theta - proposal.step)


def test_hvp_on_a_task_subsample_is_the_hessian_of_those_tasks_and_halves_average_to_the_whole():
    """Each task's KL term is whole, so the products on two halves of the tasks average to the
    product on all of them (the subsample is unbiased), for every curvature and without inner steps."""
    policy, meta_batch = _meta_batch(seed=7, num_tasks=4)
    theta = parameters_to_vector(policy.parameters()).detach()
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(7), dtype=theta.dtype)
    for inner_lrs, adaptation in (([0.5], "full"), ([0.5], "first-order"), ([], "full")):
        if not inner_lrs:  # pretrained: no inner-step batches
            meta_batch = MetaBatch([], meta_batch.valid)
        halves = meta_batch.tasks(slice(0, 2)), meta_batch.tasks(slice(2, 4))
        meta = MetaTRPO(policy, inner_update(inner_lrs), first_order=False,
                        settings=_settings(hvp_adaptation=adaptation, hvp_task_fraction=0.5, cg_damping=0.0))
        on_half = _hvp(meta, policy.params(), meta_batch)(v)
        meta.settings = _settings(hvp_adaptation=adaptation, cg_damping=0.0)
        first, second = (_hvp(meta, policy.params(), half)(v) for half in halves)
        torch.testing.assert_close(on_half, first, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close((first + second) / 2, _hvp(meta, policy.params(), meta_batch)(v),
                                   rtol=1e-8, atol=1e-12)
        assert not torch.allclose(first, second, rtol=1e-3)


def test_the_line_search_reports_the_pre_update_kl_of_the_full_and_the_accepted_step():
    policy, meta_batch = _meta_batch(seed=5)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=_settings())
    proposal = meta.proposed_step(meta_batch)
    bound = meta.settings.max_kl
    tried = iter([Candidate(proposal.loss - 1.0, 2.0 * bound, 3.0 * bound),
                  Candidate(proposal.loss - 0.5, 0.2 * bound, 0.7 * bound)])
    meta.loss_and_kl_at = lambda *args: next(tried)
    stats = meta.line_search(meta_batch, proposal)
    assert stats["line_search_steps"] == 2 and stats["step_accepted"] == 1.0
    assert (stats["full_step_pre_kl"], stats["pre_kl"]) == (3.0 * bound, 0.7 * bound)


def test_steps_report_the_pre_update_kl_and_baselines_have_none():
    policy, meta_batch = _meta_batch(seed=6)
    meta = MetaTRPO(policy, inner_update([0.5]), first_order=False, settings=_settings())
    params = policy.params()
    with torch.no_grad():
        before = policy.distribution(params, meta_batch.train[0].flat("observations"))
    stats = meta.step(meta_batch)
    assert stats["step_accepted"] == 1.0 and stats["kl"] <= 0.01
    with torch.no_grad():
        after = policy.distribution(policy.params(), meta_batch.train[0].flat("observations"))
    assert stats["pre_kl"] == pytest.approx(float(task_kl(before, *after, meta_batch.train[0]).mean()), rel=1e-12)
    baseline = MetaTRPO(policy, inner_update([]), first_order=False, settings=_settings())
    assert "pre_kl" not in baseline.step(MetaBatch([], meta_batch.valid))
