"""The step rules: sizes against a per-task reference, derivatives against finite differences."""

import pytest
import torch

from rlmaml.adaptation import adapt_step, inner_loss
from rlmaml.config import ConfigError, InnerConfig
from rlmaml.step_rules import FixedStep, ReturnScaledStep, step_rule_from

from conftest import inner_update, make_batch
from test_adaptation import single_task_adapt, unflatten

RETURN_SCALED = inner_update([0.01], step_rule="return-scaled")


def test_return_scaled_step_has_the_shortfall_as_length_along_each_tasks_gradient():
    policy, batch = make_batch(num_tasks=4, seed=3)
    mean_returns = batch.episode_returns().mean(1)
    target = float(mean_returns[:3].max())  # the best of tasks 0-2 is at it, task 3 is moved above: no step for either
    batch = batch.replace(rewards=batch.rewards.clone())
    batch.rewards[3] += (target + 1.0 - float(mean_returns[3])) / batch.mask[3].sum(-1, keepdim=True)
    adapted = adapt_step(policy, policy.params(), batch, inner_update([0.2], step_rule="return-scaled",
                                                                      target_return=target), 0, create_graph=False)
    for n in range(4):
        start = policy.params()
        unit = single_task_adapt(policy, batch, n, 1.0, create_graph=False)  # start - gradient
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
        params = dict(zip(policy.params(), unflatten(policy, v)))
        adapted = adapt_step(policy, params, train, RETURN_SCALED, 0, create_graph=True)
        return inner_loss(policy, adapted, valid, RETURN_SCALED).sum()

    (analytic,) = torch.autograd.grad(outer(vector), vector)
    direction = torch.randn(vector.shape, generator=torch.Generator().manual_seed(0), dtype=vector.dtype)
    eps = 1e-6
    numeric = (outer(vector + eps * direction) - outer(vector - eps * direction)) / (2 * eps)
    torch.testing.assert_close(analytic @ direction, numeric.detach(), rtol=1e-5, atol=1e-8)


def test_the_config_chooses_the_rule_and_its_target():
    assert step_rule_from(InnerConfig()) == FixedStep()
    assert step_rule_from(InnerConfig(step_rule="return-scaled", target_return=-3.0)) == ReturnScaledStep(-3.0)
    with pytest.raises(ConfigError, match="inner.target_return applies only"):
        InnerConfig(target_return=-3.0)
    with pytest.raises(ConfigError, match="inner.step_rule must be one of fixed, return-scaled"):
        InnerConfig(step_rule="newton")  # type: ignore[arg-type]


def test_only_a_rule_that_aims_at_a_return_refuses_tasks_already_there():
    returns = torch.tensor([-1.0, 0.5])
    FixedStep().check_can_move(returns)
    ReturnScaledStep(0.0).check_can_move(returns)  # task 0 is below the target: it moves
    with pytest.raises(ConfigError, match="at or above the target return -1"):
        ReturnScaledStep(-1.0).check_can_move(returns)
    assert FixedStep().record() == {}
    assert ReturnScaledStep(2.0).record() == {"step_rule": "return-scaled", "target_return": 2.0}
