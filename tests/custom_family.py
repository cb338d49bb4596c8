"""Task families defined by the tests only (rlmaml does not register them).

Importing this module registers ``custom/Target1D-v0``, a correct family, and ``broken/...``
variants that each violate one part of the protocol. The CLI reaches them with Gymnasium's
``module:id`` form, e.g. ``--env custom_family:custom/Target1D-v0`` with ``tests/`` on the path.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

HORIZON = 20


class Target1DEnv(gym.Env):
    """A point on a line moves by 0.2 * clip(action, -1, 1) per step; reward -|position - target|.

    Tasks: ``{"target": t}`` with t uniform in [-1, 1].
    """

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-10.0, 10.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._target = 0.5
        self._position = 0.0

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        return [{"target": float(t)} for t in rng.uniform(-1.0, 1.0, size=num_tasks)]

    def set_task(self, task: dict[str, Any]) -> None:
        self._target = float(task["target"])

    def get_task(self) -> dict[str, Any]:
        return {"target": self._target}

    def task_features(self, task: dict[str, Any]) -> list[float]:
        return [task["target"]]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._position = 0.0
        return np.array([self._position], dtype=np.float32), {}

    def step(self, action):
        self._position = float(np.clip(self._position + 0.2 * np.clip(action[0], -1.0, 1.0), -10.0, 10.0))
        reward = -abs(self._position - self._target)
        return np.array([self._position], dtype=np.float32), reward, False, False, {}


class NoSetTaskEnv(Target1DEnv):
    set_task = None  # type: ignore[assignment]


class GlobalRngEnv(Target1DEnv):
    def sample_tasks(self, num_tasks, rng):
        return [{"target": float(t)} for t in np.random.uniform(-1.0, 1.0, size=num_tasks)]


class NumpyTasksEnv(Target1DEnv):
    def sample_tasks(self, num_tasks, rng):
        return [{"target": t} for t in rng.uniform(-1.0, 1.0, size=(num_tasks, 1))]


class IgnoresTaskEnv(Target1DEnv):
    def step(self, action):
        obs, _, terminated, truncated, info = super().step(action)
        return obs, -abs(self._position), terminated, truncated, info


class ForgetfulEnv(Target1DEnv):
    def get_task(self):
        return {"target": 0.5}


class DiscreteActionsEnv(Target1DEnv):
    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.Discrete(3)

    def step(self, action):
        return super().step(np.array([float(action) - 1.0]))


class OldResetApiEnv(Target1DEnv):
    def reset(self, *, seed=None, options=None):
        return super().reset(seed=seed)[0]


class WrongBatchedEnv(Target1DEnv):
    def batched_env(self, tasks, copies):
        return _DriftingBatch(len(tasks) * copies)


class _DriftingBatch:
    def __init__(self, num_envs: int):
        self.num_envs = num_envs

    def reset(self, seeds):
        return np.zeros((self.num_envs, 1), dtype=np.float32)

    def step(self, actions):
        zeros = np.zeros(self.num_envs)
        return np.ones((self.num_envs, 1), dtype=np.float32), zeros, zeros.astype(bool), zeros.astype(bool)


class FaultyEnv(Target1DEnv):
    """Steps like Target1D except for two targets: above 0.5 ``step`` raises, and at exactly -0.75
    the process exits, as a simulator that crashes would."""

    def step(self, action):
        if self._target > 0.5:
            raise ValueError(f"target {self._target} is out of this env's reach")
        if self._target == -0.75:
            os._exit(3)
        return super().step(action)


class NanRewardEnv(Target1DEnv):
    """Target1D whose reward is NaN for targets above 0.6 (a fifth of the tasks), as a simulator that
    blows up on some tasks would give."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, float("nan") if self._target > 0.6 else reward, terminated, truncated, info


class GrowingObsEnv(Target1DEnv):
    """Target1D whose observation grows to two values from the fourth step of every episode on."""

    def reset(self, *, seed=None, options=None):
        self._steps = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self._steps += 1
        return (np.zeros(2, dtype=np.float32) if self._steps > 3 else obs), reward, terminated, truncated, info


class InfObsEnv(Target1DEnv):
    """Target1D whose observations are infinite after the first step."""

    def step(self, action):
        _, reward, terminated, truncated, info = super().step(action)
        return np.array([np.inf], dtype=np.float32), reward, terminated, truncated, info


BROKEN = {
    # id suffix: (env class, the check that must fail)
    "NoSetTask": (NoSetTaskEnv, "task protocol"),
    "GlobalRng": (GlobalRngEnv, "sample_tasks"),
    "NumpyTasks": (NumpyTasksEnv, "JSON round trip"),
    "IgnoresTask": (IgnoresTaskEnv, "set_task matters"),
    "Forgetful": (ForgetfulEnv, "JSON round trip"),
    "DiscreteActions": (DiscreteActionsEnv, "spaces"),
    "OldResetApi": (OldResetApiEnv, "gymnasium checker"),
    "WrongBatched": (WrongBatchedEnv, "batched_env"),
}

if "custom/Target1D-v0" not in gym.registry:
    gym.register("custom/Target1D-v0", entry_point=Target1DEnv, max_episode_steps=HORIZON)
    gym.register("custom/Faulty-v0", entry_point=FaultyEnv, max_episode_steps=HORIZON)
    gym.register("custom/NanReward-v0", entry_point=NanRewardEnv, max_episode_steps=HORIZON)
    gym.register("custom/GrowingObs-v0", entry_point=GrowingObsEnv, max_episode_steps=HORIZON)
    gym.register("custom/InfObs-v0", entry_point=InfObsEnv, max_episode_steps=HORIZON)
    gym.register("custom/NoHorizon-v0", entry_point=Target1DEnv)
    for name, (cls, _) in BROKEN.items():
        gym.register(f"broken/{name}-v0", entry_point=cls, max_episode_steps=HORIZON)
