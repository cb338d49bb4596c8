"""Shared fixtures: small policies and batches built from the real sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import rlmaml  # noqa: F401  (registers the task families)
from rlmaml.adaptation import InnerUpdate, adapt_step
from rlmaml.advantages import with_advantages
from rlmaml.batch import Batch
from rlmaml.config import InnerConfig, TrainConfig
from rlmaml.policy import GaussianMLPPolicy, per_task_params
from rlmaml.sampling import TaskSampler

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The source checkout the tests run in (README, docs/, examples/, results/, tests/data/)."""


def inner_update(lrs: list[float], objective: str = "reinforce", step_rule: str = "fixed",
                 target_return: float = 0.0) -> InnerUpdate:
    """The inner update of ``lrs`` with the named objective and step rule."""
    inner = InnerConfig(objective=objective, step_rule=step_rule, target_return=target_return)  # type: ignore[arg-type]
    return InnerUpdate.from_config(inner, lrs)


def config_of(**values: object) -> TrainConfig:
    """A config with the given fields (flat names or dotted paths given as keywords) changed from the defaults."""
    return TrainConfig().with_values(values)


def make_batch(num_tasks: int = 3, num_traj: int = 4, horizon: int = 12, seed: int = 0,
               hidden_sizes: tuple[int, ...] = (8, 8), dtype: torch.dtype = torch.float64) -> tuple[GaussianMLPPolicy, Batch]:
    """A policy and a Navigation2D batch with advantages, in ``dtype``."""
    torch.manual_seed(seed)
    sampler = TaskSampler("rlmaml/Navigation2D-v0", horizon=horizon)
    policy = GaussianMLPPolicy(2, 2, hidden_sizes).to(dtype)
    tasks = sampler.sample_tasks(num_tasks, np.random.default_rng(seed))
    batch = sampler.sample(policy, policy.params(), tasks, num_traj, torch.Generator().manual_seed(seed),
                           np.random.default_rng(seed + 1))
    return policy, with_advantages(batch, 0.99, 1.0)


@pytest.fixture
def small_batch() -> tuple[GaussianMLPPolicy, Batch]:
    return make_batch()


def frozen_lvc_adapt(policy: GaussianMLPPolicy, params: dict[str, torch.Tensor], batches: list[Batch],
                     lrs: list[float], behaviour: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reference LVC adaptation whose stop-gradients are held fixed: step k's ratio is
    pi(a|s) / exp(behaviour[k]), ``behaviour[k]`` [N, M*T] the log-probs the library's step k sees
    at the base parameters. Its derivative at the base equals the library's LVC derivative there,
    so finite differences of it check the LVC meta-gradient."""
    for batch, lr, log_behaviour in zip(batches, lrs, behaviour):
        task_params = per_task_params(params, batch.num_tasks)
        log_probs = policy.log_prob(task_params, batch.flat("observations"), batch.flat("actions"))
        weighted = torch.exp(log_probs - log_behaviour) * batch.flat("advantages") * batch.flat("mask")
        loss = -(weighted.sum(1) / batch.flat("mask").sum(1)).sum()
        grads = torch.autograd.grad(loss, list(task_params.values()), create_graph=True)
        params = {name: p - lr * g for (name, p), g in zip(task_params.items(), grads)}
    return params


def behaviour_log_probs(policy: GaussianMLPPolicy, batches: list[Batch], lrs: list[float]) -> list[torch.Tensor]:
    """Log-probs [N, M*T] of each inner step's batch under the parameters that step starts from,
    at the policy's current parameters (the values LVC's stop-gradients take there)."""
    params, result = policy.params(), []
    for batch, lr in zip(batches, lrs):
        task_params = per_task_params(params, batch.num_tasks)
        result.append(policy.log_prob(task_params, batch.flat("observations"), batch.flat("actions")).detach())
        adapted = adapt_step(policy, params, batch, inner_update([lr]), 0, create_graph=False)
        params = {name: p.detach() for name, p in adapted.items()}
    return result
