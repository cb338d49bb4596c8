import torch

from rlmaml.adaptation import adapt, adapt_step, inner_loss
from rlmaml.policy import GaussianMLPPolicy

from conftest import make_batch


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


def _outer_loss(policy, vector, train_batches, valid, lrs):
    params = dict(zip(policy.params(), _unflatten(policy, vector)))
    adapted = adapt(policy, params, train_batches, lrs, create_graph=True)
    return inner_loss(policy, adapted, valid).sum()


def _unflatten(policy, vector):
    pieces, offset = [], 0
    for p in policy.parameters():
        pieces.append(vector[offset:offset + p.numel()].view_as(p))
        offset += p.numel()
    return pieces


def test_meta_gradient_matches_finite_differences_two_inner_steps():
    policy, train0 = make_batch(num_tasks=2, num_traj=3, horizon=6, hidden_sizes=(5,), seed=3)
    _, train1 = make_batch(num_tasks=2, num_traj=3, horizon=6, hidden_sizes=(5,), seed=4)
    _, valid = make_batch(num_tasks=2, num_traj=3, horizon=6, hidden_sizes=(5,), seed=5)
    lrs = [0.7, 0.35]
    theta = torch.cat([p.detach().reshape(-1) for p in policy.parameters()]).requires_grad_()
    loss = _outer_loss(policy, theta, [train0, train1], valid, lrs)
    (grad,) = torch.autograd.grad(loss, theta)
    eps = 1e-6
    numeric = torch.zeros_like(theta)
    with torch.no_grad():
        for i in range(theta.numel()):
            step = torch.zeros_like(theta)
            step[i] = eps
            with torch.enable_grad():
                plus = _outer_loss(policy, (theta + step).requires_grad_(), [train0, train1], valid, lrs)
                minus = _outer_loss(policy, (theta - step).requires_grad_(), [train0, train1], valid, lrs)
            numeric[i] = (plus - minus) / (2 * eps)
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-7)
    # the second-order terms matter: the first-order gradient is measurably different
    first_order = adapt(policy, policy.params(), [train0, train1], lrs, create_graph=False)
    fo_grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        inner_loss(policy, first_order, valid).sum(), list(policy.parameters()))])
    assert (fo_grad - grad).abs().max() > 1e-4


def test_adapt_rejects_mismatched_step_sizes():
    policy, batch = make_batch(num_tasks=2)
    try:
        adapt(policy, policy.params(), [batch], [0.1, 0.1], create_graph=False)
    except ValueError as error:
        assert "step size" in str(error)
    else:
        raise AssertionError("expected ValueError")
