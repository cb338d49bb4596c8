"""Adaptation curves: the return after 0, 1, ..., K inner steps on held-out tasks."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from rlmaml.adaptation import adapt_step, detached
from rlmaml.advantages import with_advantages
from rlmaml.policy import GaussianMLPPolicy
from rlmaml.sampling import TaskSampler
from rlmaml.tasks import Task


def step_sizes(inner_lr: float, num_steps: int, later_factor: float = 0.5) -> list[float]:
    """The paper's test-time schedule: ``inner_lr`` for the first step, ``inner_lr * later_factor`` after."""
    return [inner_lr if k == 0 else inner_lr * later_factor for k in range(num_steps)]


def adaptation_returns(policy: GaussianMLPPolicy, sampler: TaskSampler, tasks: Sequence[Task], num_traj: int,
                       lrs: Sequence[float], gamma: float, gae_lambda: float, generator: torch.Generator,
                       seed_rng: np.random.Generator) -> Tensor:
    """Mean return per task after each number of inner steps: [len(lrs) + 1, N].

    Row 0 is the return of the trajectories used for the first adaptation; row k the return of
    NEW trajectories of the k-times adapted policy.
    """
    params = detached(policy.params())
    returns = []
    for k in range(len(lrs) + 1):
        batch = sampler.sample(policy, params, tasks, num_traj, generator, seed_rng)
        returns.append(batch.episode_returns().mean(dim=1))
        if k < len(lrs):
            batch = with_advantages(batch, gamma, gae_lambda)
            params = detached(adapt_step(policy, params, batch, lrs[k], create_graph=False))
    return torch.stack(returns)


def summarize(returns: Tensor) -> list[dict[str, float]]:
    """Mean and standard error over tasks for each step; ``returns`` [K + 1, N]."""
    num_tasks = returns.shape[1]
    rows = []
    for step, per_task in enumerate(returns.double()):
        stderr = float(per_task.std(unbiased=True)) / math.sqrt(num_tasks) if num_tasks > 1 else float("nan")
        rows.append({"step": step, "mean": float(per_task.mean()), "stderr": stderr})
    return rows
