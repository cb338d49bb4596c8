"""Sampling trajectories of a batch of tasks, in this process or in rollout worker processes."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Sequence

import numpy as np
import torch

from rlmaml.batch import Batch
from rlmaml.config import TrainConfig
from rlmaml.distributed import cores_per_process
from rlmaml.policy import GaussianMLPPolicy, Params
from rlmaml.rollout import TaskEnvs, roll_out
from rlmaml.tasks import Task
from rlmaml.workers import RolloutWorkers


class TaskSampler:
    """Samples trajectories of a task family for a batch of tasks at once.

    Args:
        env_id, horizon, env_kwargs, oracle: the family and its envs, as for :class:`rlmaml.rollout.TaskEnvs`.
        num_workers: rollout worker processes (see :mod:`rlmaml.workers`); ``None`` starts one per
            CPU core (this process's share of them under torchrun) for families that ask for it
            (``parallel_rollouts = True``: the MuJoCo and Meta-World ones) and none otherwise; 0
            samples in this process. Workers step the family's ``batched_env`` if it has one, else
            one Gymnasium env per trajectory.
    """

    def __init__(self, env_id: str, horizon: int | None = None, env_kwargs: dict[str, Any] | None = None,
                 oracle: bool = False, num_workers: int | None = None):
        self.envs = TaskEnvs(env_id, horizon, env_kwargs, oracle)
        self.env_id, self.env_kwargs, self.oracle = env_id, self.envs.env_kwargs, oracle
        self.family, self.horizon = self.envs.family, self.envs.horizon
        self.obs_dim, self.act_dim = self.envs.obs_dim, self.envs.act_dim
        if num_workers is None:
            num_workers = cores_per_process() if getattr(self.family, "parallel_rollouts", False) else 0
        self.workers: RolloutWorkers | None = None
        if num_workers > 1:
            self.workers = RolloutWorkers(env_id, self.env_kwargs, self.horizon, oracle, num_workers)

    @classmethod
    def for_config(cls, config: TrainConfig) -> "TaskSampler":
        """The sampler of a run's task family (observing the task for the ``oracle`` method)."""
        task = config.task
        return cls(task.env_id, task.horizon, task.env_kwargs, oracle=config.method == "oracle",
                   num_workers=config.run.num_workers)

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[Task]:
        """``num_tasks`` tasks drawn from ``rng`` by the task family (checked to be JSON-ready dicts)."""
        return self.envs.sample_tasks(num_tasks, rng)

    @torch.no_grad()
    def sample(self, policy: GaussianMLPPolicy, params: Params, tasks: Sequence[Task], num_traj: int,
               generator: torch.Generator, seed_rng: np.random.Generator, part: slice = slice(None)) -> Batch:
        """Roll out ``num_traj`` trajectories per task of ``tasks[part]``.

        The action noise [T, N, M, act_dim] and the reset seeds [N*M] of all N tasks are drawn here,
        before any env runs, so rollout workers, and ranks that sample other parts of ``tasks``, see
        the same noise and seeds as one process sampling them all (see :mod:`rlmaml.workers`,
        :mod:`rlmaml.distributed`).

        Args:
            params: meta-parameters (shared) or per-task parameters with leading axis [n], n the
                number of tasks in ``part``.
            generator: torch RNG for the policy's action noise.
            seed_rng: numpy RNG for the sub-envs' reset seeds.
            part: the tasks to roll out (default all), a slice with step 1.

        Returns:
            A :class:`Batch` of shape [n, num_traj, horizon, ...] with zero advantages.
        """
        horizon = self.horizon
        dtype = next(policy.parameters()).dtype
        noise = torch.stack([torch.randn((len(tasks), num_traj, self.act_dim), generator=generator, dtype=dtype)
                             for _ in range(horizon)])
        seeds = seed_rng.integers(0, 2**31 - 1, size=len(tasks) * num_traj)
        start, stop, _ = part.indices(len(tasks))
        if (start, stop) != (0, len(tasks)):
            tasks, noise, seeds = tasks[start:stop], noise[:, start:stop].contiguous(), seeds[start * num_traj:stop * num_traj]
        num_tasks = len(tasks)
        if self.workers is not None and num_tasks > 1:
            rollout = self.workers.roll_out(policy, params, tasks, num_traj, noise, seeds)
        else:
            rollout = roll_out(self.envs.vector_env(tasks, num_traj), policy, params, noise, seeds, self.obs_dim)
        shape = (num_tasks, num_traj, horizon)
        success = rollout["success"]
        return Batch(
            observations=torch.from_numpy(rollout["observations"]).to(dtype).view(*shape, self.obs_dim),
            actions=rollout["actions"],
            rewards=torch.from_numpy(rollout["rewards"]).to(dtype).view(shape),
            mask=torch.from_numpy(rollout["mask"]).to(dtype).view(shape),
            log_probs=rollout["log_probs"],
            advantages=torch.zeros(shape, dtype=dtype),
            success=None if success is None else torch.from_numpy(success).to(dtype).view(num_tasks, num_traj),
        )

    def close(self) -> None:
        """Stop the rollout workers, if any."""
        if self.workers is not None:
            self.workers.close()
            self.workers = None

    def __enter__(self) -> "TaskSampler":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
