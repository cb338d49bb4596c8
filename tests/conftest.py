"""Shared fixtures: small policies and batches built from the real sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rlmaml  # noqa: F401  (registers the task families)
from rlmaml.advantages import with_advantages
from rlmaml.batch import Batch
from rlmaml.policy import GaussianMLPPolicy
from rlmaml.sampling import TaskSampler


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
