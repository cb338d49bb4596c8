"""The DiCE inner objective: a meta-gradient checked against a slow,
step-by-step reference of its definition by finite differences."""

import torch

from rlmaml.adaptation import adapt, inner_loss
from rlmaml.policy import per_task_params

from conftest import behaviour_log_probs, inner_update, make_batch
from test_adaptation import REINFORCE, _finite_difference_gradient, _outer_loss, _two_step_problem, unflatten


def frozen_dice_adapt(policy, params, batches, lrs, behaviour):
    """Reference DiCE adaptation, one trajectory and one time step at a time, with its stop-gradients held at
    ``behaviour`` [N, M*T] (the values the library's stop-gradients take at the base parameters): the loss is
    minus the mean over valid steps of [exp(c_<=t - b_<=t) - exp(c_<t - b_<t)] * advantage_t, c and b the
    log-probabilities summed along the trajectory."""
    for batch, lr, log_behaviour in zip(batches, lrs, behaviour):
        task_params = per_task_params(params, batch.num_tasks)
        log_probs = policy.log_prob(task_params, batch.flat("observations"), batch.flat("actions"))
        n, m, t = batch.mask.shape
        log_probs, log_behaviour = log_probs.view(n, m, t), log_behaviour.view(n, m, t)
        total = 0.0
        for task in range(n):
            task_sum, valid = 0.0, batch.mask[task].sum()
            for traj in range(m):
                before = before_behaviour = torch.zeros((), dtype=log_probs.dtype)
                for step in range(t):
                    if batch.mask[task, traj, step] == 0:
                        continue
                    up_to = before + log_probs[task, traj, step]
                    up_to_behaviour = before_behaviour + log_behaviour[task, traj, step]
                    weight = torch.exp(up_to - up_to_behaviour) - torch.exp(before - before_behaviour)
                    task_sum = task_sum + weight * batch.advantages[task, traj, step]
                    before, before_behaviour = up_to, up_to_behaviour
            total = total - task_sum / valid
        grads = torch.autograd.grad(total, list(task_params.values()), create_graph=True)
        params = {name: p - lr * g for (name, p), g in zip(task_params.items(), grads)}
    return params


def test_dice_meta_gradient_matches_finite_differences_of_its_step_by_step_definition():
    policy, train, valid, lrs, theta = _two_step_problem()
    mask = train[0].mask.clone()
    mask[0, 1, 3:] = 0  # episodes that end early: their later steps must count for nothing
    mask[1, 2, 1:] = 0
    train = [train[0].replace(mask=mask), train[1]]
    behaviour = behaviour_log_probs(policy, train, lrs)

    def reference(vector):
        params = dict(zip(policy.params(), unflatten(policy, vector)))
        return inner_loss(policy, frozen_dice_adapt(policy, params, train, lrs, behaviour), valid, REINFORCE).sum()

    (grad,) = torch.autograd.grad(_outer_loss(policy, theta, train, valid, lrs, objective="dice"), theta)
    torch.testing.assert_close(grad, _finite_difference_gradient(reference, theta), rtol=1e-5, atol=1e-7)
    # DiCE credits earlier actions for later advantages: LVC's meta-gradient is measurably different
    (lvc,) = torch.autograd.grad(_outer_loss(policy, theta, train, valid, lrs, objective="lvc"), theta)
    assert (lvc - grad).abs().max() > 1e-4


def test_dice_and_lvc_agree_on_one_step_trajectories():
    """With one step per trajectory there are no earlier actions to credit: DiCE's curvature is LVC's."""
    policy, train = make_batch(num_tasks=2, num_traj=5, horizon=1, hidden_sizes=(5,), seed=7)
    _, valid = make_batch(num_tasks=2, num_traj=5, horizon=3, hidden_sizes=(5,), seed=8)
    grads = {}
    for objective in ("lvc", "dice", "reinforce"):
        adapted = adapt(policy, policy.params(), [train], inner_update([0.5], objective), create_graph=True)
        grads[objective] = torch.autograd.grad(inner_loss(policy, adapted, valid, REINFORCE).sum(),
                                               list(policy.parameters()))
    for dice, lvc, reinforce in zip(grads["dice"], grads["lvc"], grads["reinforce"]):
        torch.testing.assert_close(dice, lvc)
    assert any((d - r).abs().max() > 1e-6 for d, r in zip(grads["dice"], grads["reinforce"]))
