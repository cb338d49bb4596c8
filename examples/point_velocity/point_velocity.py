"""A complete rlmaml task family: a point mass that must hold an unknown target velocity.

Dynamics: the state is the velocity v (the observation, float32), starting at 0 after every
reset. Each step applies a force a = clip(action, -1, 1): v <- 0.9 * v + 0.2 * a, so a constant
force f settles at v = 2 f. Reward: -|v - v_target| - 0.05 * a^2. No termination; horizon 50.
Tasks: ``{"target_velocity": v}`` with v uniform in [-1.5, 1.5].

What makes it an rlmaml task family (see docs/custom-tasks.md):

1. ``sample_tasks(num_tasks, rng)`` draws tasks from the given numpy Generator only and returns
   JSON-ready dicts (plain floats and lists), because runs record their held-out tasks as JSON.
2. ``set_task(task)`` / ``get_task()`` switch and report the task; ``reset`` keeps the task.
3. Optional ``task_features(task)``: the task parameter as a vector, for the oracle baseline.
4. Optional ``batched_env(tasks, copies)``: the same dynamics for ``len(tasks) * copies`` sub-envs
   in numpy (sub-env i runs task i // copies), so a rollout of all tasks x trajectories is one
   call per time step instead of one Python env per trajectory.

Use it without installing anything (from this folder):

    rlmaml check-env point_velocity:examples/PointVelocity-v0
    rlmaml train --env point_velocity:examples/PointVelocity-v0 --num-iterations 20

or install this folder as a plugin (``pip install ./examples/point_velocity``): its
``pyproject.toml`` declares the ``rlmaml.envs`` entry point, and ``rlmaml envs`` then lists
``examples/PointVelocity-v0``, usable by id from anywhere.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from rlmaml.plugins import register_families

TARGET_LOW, TARGET_HIGH = -1.5, 1.5
DECAY, GAIN, CONTROL_COST = 0.9, 0.2, 0.05
HORIZON = 50


def _step(velocity: np.ndarray, action: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New velocities and rewards for velocities [...], actions [..., 1] and targets [...]."""
    force = np.clip(action[..., 0], -1.0, 1.0)
    velocity = DECAY * velocity + GAIN * force
    return velocity, -np.abs(velocity - target) - CONTROL_COST * force**2


class PointVelocityEnv(gym.Env):
    """One point mass; tasks are ``{"target_velocity": v}``."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._target = 1.0
        self._velocity = 0.0

    # --- task protocol -------------------------------------------------------------------
    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        return [{"target_velocity": float(v)} for v in rng.uniform(TARGET_LOW, TARGET_HIGH, size=num_tasks)]

    def set_task(self, task: dict[str, Any]) -> None:
        self._target = float(task["target_velocity"])

    def get_task(self) -> dict[str, Any]:
        return {"target_velocity": self._target}

    def task_features(self, task: dict[str, Any]) -> list[float]:
        return [float(task["target_velocity"])]

    def batched_env(self, tasks: Sequence[dict[str, Any]], copies: int) -> "PointVelocityBatch":
        targets = np.repeat([float(t["target_velocity"]) for t in tasks], copies)
        return PointVelocityBatch(targets)

    # --- Gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._velocity = 0.0
        return np.array([self._velocity], dtype=np.float32), {}

    def step(self, action):
        velocity, reward = _step(np.float64(self._velocity), np.asarray(action, dtype=np.float64), self._target)
        self._velocity = float(velocity)
        return np.array([self._velocity], dtype=np.float32), float(reward), False, False, {}


class PointVelocityBatch:
    """``len(targets)`` point masses stepped together; arrays have leading axis [E]."""

    def __init__(self, targets: np.ndarray):
        self.targets = targets
        self.num_envs = len(targets)
        self._velocity = np.zeros(self.num_envs)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        self._velocity = np.zeros(self.num_envs)
        return self._velocity[:, None].astype(np.float32)

    def step(self, actions: np.ndarray):
        self._velocity, reward = _step(self._velocity, actions.astype(np.float64), self.targets)
        never = np.zeros(self.num_envs, dtype=bool)
        return self._velocity[:, None].astype(np.float32), reward, never, never


FAMILIES = {
    "examples/PointVelocity-v0": {
        "entry_point": "point_velocity:PointVelocityEnv",
        "max_episode_steps": HORIZON,
        "summary": "example plugin: point mass, target velocity uniform in [-1.5, 1.5], horizon 50",
    },
}
"""What the ``rlmaml.envs`` entry point hands to rlmaml (see pyproject.toml)."""

# Importing the module registers the ids, which is what ``--env point_velocity:examples/...`` needs.
register_families(FAMILIES, source="point_velocity")
