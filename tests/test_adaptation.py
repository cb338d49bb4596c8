import pytest
import torch

from rlmaml.adaptation import adapt, adapt_step, inner_loss
from rlmaml.policy import GaussianMLPPolicy

from conftest import behaviour_log_probs, frozen_lvc_adapt, make_batch


def _single_task_adapt(policy: GaussianMLPPolicy, batch, n: int, lr: float, create_graph: bool):
    """Reference: adapt task n alone with plain (unbatched) parameters."""
    params = policy.params()
    one = batch.tasks(slice(n, n + 1))
    loss = inner_loss(policy, params, one).sum()
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}


def test_batched_adaptation_equals_per_task_loop():
    policy, batch = make_batch(num_tasks=4)
    adapted = adapt_step(policy, policy.params(), batch, 0.3, create_graph=False)
    for n in range(4):
        reference = _single_task_adapt(policy, batch, n, 0.3, create_graph=False)
        for name in reference:
            torch.testing.assert_close(adapted[name][n], reference[name])


def test_batched_second_order_meta_gradient_equals_per_task_loop():
    policy, train = make_batch(num_tasks=3, seed=1)
    _, valid = make_batch(num_tasks=3, seed=2)
    params = policy.params()
    adapted = adapt_step(policy, params, train, 0.5, create_graph=True)
    outer = inner_loss(policy, adapted, valid).sum()
    batched_grads = torch.autograd.grad(outer, list(params.values()))
    loop_total = 0.0
    for n in range(3):
        reference = _single_task_adapt(policy, train, n, 0.5, create_graph=True)
        loop_total = loop_total + inner_loss(policy, reference, valid.tasks(slice(n, n + 1))).sum()
    loop_grads = torch.autograd.grad(loop_total, list(params.values()))
    for batched, looped in zip(batched_grads, loop_grads):
        torch.testing.assert_close(batched, looped)


def _outer_loss(policy, vector, train_batches, valid, lrs, objective="reinforce"):
    params = dict(zip(policy.params(), _unflatten(policy, vector)))
    adapted = adapt(policy, params, train_batches, lrs, create_graph=True, objective=objective)
    return inner_loss(policy, adapted, valid).sum()


def _frozen_lvc_outer_loss(policy, vector, train_batches, valid, lrs, behaviour):
    params = dict(zip(policy.params(), _unflatten(policy, vector)))
    return inner_loss(policy, frozen_lvc_adapt(policy, params, train_batches, lrs, behaviour), valid).sum()


def _unflatten(policy, vector):
    pieces, offset = [], 0
    for p in policy.parameters():
        pieces.append(vector[offset:offset + p.numel()].view_as(p))
        offset += p.numel()
    return pieces


def _finite_difference_gradient(loss_of, theta, eps=1e-6):
    """Central differences of the scalar ``loss_of(vector)`` at ``theta`` [D], one coordinate at a time."""
    numeric = torch.zeros_like(theta)
    for i in range(theta.numel()):
        step = torch.zeros_like(theta)
        step[i] = eps
        plus = loss_of((theta + step).detach().requires_grad_())
        minus = loss_of((theta - step).detach().requires_grad_())
        numeric[i] = (plus - minus).detach() / (2 * eps)
    return numeric


def _two_step_problem():
    policy, train0 = make_batch(num_tasks=2, num_traj=3, horizon=6, hidden_sizes=(5,), seed=3)
    _, train1 = make_batch(num_tasks=2, num_traj=3, horizon=6, hidden_sizes=(5,), seed=4)
    _, valid = make_batch(num_tasks=2, num_traj=3, horizon=6, hidden_sizes=(5,), seed=5)
    theta = torch.cat([p.detach().reshape(-1) for p in policy.parameters()]).requires_grad_()
    return policy, [train0, train1], valid, [0.7, 0.35], theta


def test_meta_gradient_matches_finite_differences_two_inner_steps():
    policy, (train0, train1), valid, lrs, theta = _two_step_problem()
    loss = _outer_loss(policy, theta, [train0, train1], valid, lrs)
    (grad,) = torch.autograd.grad(loss, theta)
    numeric = _finite_difference_gradient(lambda x: _outer_loss(policy, x, [train0, train1], valid, lrs), theta)
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-7)
    # the second-order terms matter: the first-order gradient is measurably different
    first_order = adapt(policy, policy.params(), [train0, train1], lrs, create_graph=False)
    fo_grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        inner_loss(policy, first_order, valid).sum(), list(policy.parameters()))])
    assert (fo_grad - grad).abs().max() > 1e-4


def test_lvc_takes_the_same_inner_step_as_reinforce():
    policy, batch = make_batch(num_tasks=3, seed=6)
    reinforce = adapt_step(policy, policy.params(), batch, 0.3, create_graph=False)
    lvc = adapt_step(policy, policy.params(), batch, 0.3, create_graph=False, objective="lvc")
    for name in reinforce:
        torch.testing.assert_close(lvc[name], reinforce[name], rtol=0, atol=1e-15)


def test_lvc_meta_gradient_matches_finite_differences_with_frozen_stop_gradients():
    policy, train, valid, lrs, theta = _two_step_problem()
    behaviour = behaviour_log_probs(policy, train, lrs)
    (grad,) = torch.autograd.grad(_outer_loss(policy, theta, train, valid, lrs, objective="lvc"), theta)
    numeric = _finite_difference_gradient(
        lambda x: _frozen_lvc_outer_loss(policy, x, train, valid, lrs, behaviour), theta)
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-7)
    # LVC's extra curvature term is not negligible: REINFORCE's meta-gradient is measurably different
    (reinforce,) = torch.autograd.grad(_outer_loss(policy, theta, train, valid, lrs), theta)
    assert (reinforce - grad).abs().max() > 1e-4


def test_inner_loss_rejects_unknown_objective():
    policy, batch = make_batch(num_tasks=1)
    try:
        inner_loss(policy, policy.params(), batch, objective="dice")
    except ValueError as error:
        assert "reinforce" in str(error)
    else:
        raise AssertionError("expected ValueError")


def test_adapt_rejects_mismatched_step_sizes():
    policy, batch = make_batch(num_tasks=2)
    try:
        adapt(policy, policy.params(), [batch], [0.1, 0.1], create_graph=False)
    except ValueError as error:
        assert "step size" in str(error)
    else:
        raise AssertionError("expected ValueError")


def test_return_scaled_step_has_the_shortfall_as_length_along_each_tasks_gradient():
    policy, batch = make_batch(num_tasks=4, seed=3)
    mean_returns = batch.episode_returns().mean(1)
    target = float(mean_returns[:3].max())  # the best of tasks 0-2 is at it, task 3 is moved above: no step for either
    batch = batch.replace(rewards=batch.rewards.clone())
    batch.rewards[3] += (target + 1.0 - float(mean_returns[3])) / batch.mask[3].sum(-1, keepdim=True)
    adapted = adapt_step(policy, policy.params(), batch, 0.2, create_graph=False, step_rule="return-scaled",
                         target_return=target)
    for n in range(4):
        start = policy.params()
        unit = _single_task_adapt(policy, batch, n, 1.0, create_graph=False)  # start - gradient
        gradient = torch.cat([(start[name] - unit[name]).flatten() for name in start])
        shortfall = max(target - float(batch.tasks(slice(n, n + 1)).episode_returns().mean()), 0.0)
        step = torch.cat([(start[name] - adapted[name][n]).flatten() for name in start]).detach()
        torch.testing.assert_close(step.norm(), torch.tensor(0.2 * shortfall, dtype=step.dtype))
        if shortfall > 0:
            torch.testing.assert_close(step / step.norm(), gradient / gradient.norm())
    shortfalls = target - batch.episode_returns().mean(1)
    assert int((shortfalls > 0).sum()) == 2 and float(shortfalls[3]) < 0  # both cases were exercised


def test_return_scaled_meta_gradient_matches_finite_differences():
    policy, train = make_batch(num_tasks=2, seed=4)
    _, valid = make_batch(num_tasks=2, seed=5)
    vector = torch.cat([p.detach().flatten() for p in policy.parameters()]).requires_grad_()

    def outer(v):
        params = dict(zip(policy.params(), _unflatten(policy, v)))
        adapted = adapt_step(policy, params, train, 0.01, create_graph=True, step_rule="return-scaled")
        return inner_loss(policy, adapted, valid).sum()

    (analytic,) = torch.autograd.grad(outer(vector), vector)
    direction = torch.randn(vector.shape, generator=torch.Generator().manual_seed(0), dtype=vector.dtype)
    eps = 1e-6
    numeric = (outer(vector + eps * direction) - outer(vector - eps * direction)) / (2 * eps)
    torch.testing.assert_close(analytic @ direction, numeric.detach(), rtol=1e-5, atol=1e-8)


def test_adapt_step_rejects_unknown_step_rule():
    policy, batch = make_batch(num_tasks=2)
    with pytest.raises(ValueError, match="step_rule must be one of"):
        adapt_step(policy, policy.params(), batch, 0.1, create_graph=False, step_rule="newton")
