"""The supervised MAML example (examples/sinusoid.py): few-shot sinusoid regression on rlmaml's functional
per-task MLP."""

import sys

import torch

from rlmaml.policy import per_task_params

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))
from sinusoid import Setting, adaptation_curve, network, sgd_step, task_losses, train  # noqa: E402


def test_batched_inner_step_equals_one_task_at_a_time():
    params = network(0)
    x = torch.linspace(-5, 5, 3 * 4).view(3, 4, 1)
    y = torch.sin(x) * torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
    batched = sgd_step(params, x, y, 0.01, create_graph=False)
    for task in range(3):
        one = sgd_step(params, x[task:task + 1], y[task:task + 1], 0.01, create_graph=False)
        for name in params:
            torch.testing.assert_close(batched[name][task], one[name][0])
    assert task_losses(per_task_params(params, 3), x, y).shape == (3,)


def test_a_few_hundred_maml_iterations_adapt_better_than_pretraining():
    setting = Setting(shots=10, iterations=500, eval_tasks=200)
    maml = adaptation_curve(train(setting, "maml", 0, progress=False), setting.inner_lr, setting, 0)
    pretrained = adaptation_curve(train(setting, "pretrained", 0, progress=False), setting.pretrained_lr, setting, 0)
    for step in (1, setting.eval_steps):
        (maml_mse, maml_se), (pretrained_mse, pretrained_se) = maml[step], pretrained[step]
        assert pretrained_mse - maml_mse > 3 * (maml_se ** 2 + pretrained_se ** 2) ** 0.5, step
    assert maml[setting.eval_steps][0] < maml[0][0]  # MAML's own steps help
