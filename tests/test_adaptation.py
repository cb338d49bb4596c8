import pytest
import torch

from rlmaml.adaptation import adapt, adapt_step, inner_loss
from rlmaml.policy import GaussianMLPPolicy

from conftest import behaviour_log_probs, frozen_lvc_adapt, inner_update, make_batch

REINFORCE = inner_update([1.0])


def single_task_adapt(policy: GaussianMLPPolicy, batch, n: int, lr: float, create_graph: bool):
    """Reference: adapt task n alone with plain (unbatched) parameters."""
    params = policy.params()
    one = batch.tasks(slice(n, n + 1))
    loss = inner_loss(policy, params, one, REINFORCE).sum()
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}


def test_batched_adaptation_equals_per_task_loop():
    policy, batch = make_batch(num_tasks=4)
    adapted = adapt_step(policy, policy.params(), batch, inner_update([0.3]), 0, create_graph=False)
    for n in range(4):
        reference = single_task_adapt(policy, batch, n, 0.3, create_graph=False)
        for name in reference:
            torch.testing.assert_close(adapted[name][n], reference[name])


def test_batched_second_order_meta_gradient_equals_per_task_loop():
    policy, train = make_batch(num_tasks=3, seed=1)
    _, valid = make_batch(num_tasks=3, seed=2)
    params = policy.params()
    adapted = adapt_step(policy, params, train, inner_update([0.5]), 0, create_graph=True)
    outer = inner_loss(policy, adapted, valid, REINFORCE).sum()
    batched_grads = torch.autograd.grad(outer, list(params.values()))
    loop_total = 0.0
    for n in range(3):
        reference = single_task_adapt(policy, train, n, 0.5, create_graph=True)
        loop_total = loop_total + inner_loss(policy, reference, valid.tasks(slice(n, n + 1)), REINFORCE).sum()
    loop_grads = torch.autograd.grad(loop_total, list(params.values()))
    for batched, looped in zip(batched_grads, loop_grads):
        torch.testing.assert_close(batched, looped)


def _outer_loss(policy, vector, train_batches, valid, lrs, objective="reinforce"):
    params = dict(zip(policy.params(), unflatten(policy, vector)))
    adapted = adapt(policy, params, train_batches, inner_update(lrs, objective), create_graph=True)
    return inner_loss(policy, adapted, valid, REINFORCE).sum()


def _frozen_lvc_outer_loss(policy, vector, train_batches, valid, lrs, behaviour):
    params = dict(zip(policy.params(), unflatten(policy, vector)))
    return inner_loss(policy, frozen_lvc_adapt(policy, params, train_batches, lrs, behaviour), valid, REINFORCE).sum()


def unflatten(policy, vector):
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
    first_order = adapt(policy, policy.params(), [train0, train1], inner_update(lrs), create_graph=False)
    fo_grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        inner_loss(policy, first_order, valid, REINFORCE).sum(), list(policy.parameters()))])
    assert (fo_grad - grad).abs().max() > 1e-4


@pytest.mark.parametrize("objective", ["lvc", "dice"])
def test_every_objective_takes_the_same_inner_step_as_reinforce(objective):
    policy, batch = make_batch(num_tasks=3, seed=6)
    reinforce = adapt_step(policy, policy.params(), batch, inner_update([0.3]), 0, create_graph=False)
    other = adapt_step(policy, policy.params(), batch, inner_update([0.3], objective), 0, create_graph=False)
    for name in reinforce:
        torch.testing.assert_close(other[name], reinforce[name], rtol=0, atol=1e-15)


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


def test_adapt_rejects_mismatched_step_sizes():
    policy, batch = make_batch(num_tasks=2)
    try:
        adapt(policy, policy.params(), [batch], inner_update([0.1, 0.1]), create_graph=False)
    except ValueError as error:
        assert "step size" in str(error)
    else:
        raise AssertionError("expected ValueError")
