"""Adaptation curves: the return after 0, 1, ..., K inner steps on held-out tasks."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from rlmaml.adaptation import sample_adaptation_batches
from rlmaml.config import ConfigError, load_config
from rlmaml.policy import GaussianMLPPolicy
from rlmaml.runs import RunDir, RunError, load_checkpoint, read_json
from rlmaml.sampling import TaskSampler
from rlmaml.seeding import evaluation_streams
from rlmaml.tasks import Task
from rlmaml.trainer import Trainer


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
    batches = sample_adaptation_batches(sampler, policy, tasks, num_traj, lrs, gamma, gae_lambda, generator, seed_rng)
    return torch.stack([batch.episode_returns().mean(dim=1) for batch in batches])


def summarize(returns: Tensor) -> list[dict[str, float]]:
    """Mean and standard error over tasks for each step; ``returns`` [K + 1, N]."""
    num_tasks = returns.shape[1]
    rows = []
    for step, per_task in enumerate(returns.double()):
        stderr = float(per_task.std(unbiased=True)) / math.sqrt(num_tasks) if num_tasks > 1 else float("nan")
        rows.append({"step": step, "mean": float(per_task.mean()), "stderr": stderr})
    return rows


def evaluate_checkpoint(run: RunDir, which: str, num_steps: int, num_traj: int, inner_lr: float | None = None,
                        later_factor: float = 0.5, seed: int | None = None,
                        num_tasks: int | None = None) -> dict[str, Any]:
    """Adaptation curve of one checkpoint of a run on the run's held-out tasks.

    Args:
        which: ``final``, ``best`` or an iteration number kept with ``snapshot_every``.
        inner_lr: first step size (default the run's ``inner_lr``); later steps use ``* later_factor``.
        seed: evaluation seed (default the run's seed).
        num_tasks: use only the first held-out tasks.

    Returns:
        A JSON-ready dict: ``summary`` (mean and standard error per step), ``per_task`` [N][K+1]
        returns, and the settings used.
    """
    run.require("config", "test_tasks", "checkpoint")
    config = load_config(run.config)
    path = run.checkpoint_for(which)
    if not path.is_file():
        raise RunError(f"{run.path} has no {path.relative_to(run.path)}")
    state = load_checkpoint(path)
    trainer = Trainer(config, run)
    trainer.policy.load_state_dict(state["policy"])
    tasks = read_json(run.test_tasks)["tasks"]
    if num_tasks is not None:
        if not 1 <= num_tasks <= len(tasks):
            raise ConfigError(f"--num-tasks must be between 1 and {len(tasks)} (the recorded held-out tasks)")
        tasks = tasks[:num_tasks]
    lrs = step_sizes(config.inner_lr if inner_lr is None else inner_lr, num_steps, later_factor)
    seed = config.seed if seed is None else seed
    generator, seed_rng = evaluation_streams(seed)
    returns = adaptation_returns(trainer.policy, trainer.sampler, tasks, num_traj, lrs, config.gamma,
                                 config.gae_lambda, generator, seed_rng)
    return {"env_id": config.env_id, "checkpoint": which, "iteration": state["iteration"], "seed": seed,
            "num_traj": num_traj, "step_sizes": lrs, "summary": summarize(returns), "per_task": returns.T.tolist()}
