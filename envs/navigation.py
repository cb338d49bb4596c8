"""Navigation2D: a point robot in the plane that must reach a goal (MAML paper, section 5.2).

Dynamics: observation = position (float32), every episode starts at (0, 0). Each step the
position moves by the action clipped to [-0.1, 0.1] per axis. Reward: minus the Euclidean
distance to the goal after the move. The episode terminates when both coordinates are within
0.01 of the goal; the registered horizon (truncation) is 100 steps. Tasks: goals uniform in
[-0.5, 0.5]^2.

``action_mode`` picks how the policy's raw Gaussian output becomes a move:

- ``"rescale"`` (default, the original MAML code): the policy acts in [-1, 1] (clipped) and the
  move is ``0.1 * action``. An initial log-std of 0 then means noise of 0.1 per step.
- ``"clip"`` (pytorch-maml-rl): the raw action is clipped to [-0.1, 0.1] and used as the move.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np

GOAL_LOW, GOAL_HIGH = -0.5, 0.5
MAX_MOVE = 0.1
GOAL_TOLERANCE = 0.01
ACTION_MODES = ("rescale", "clip")


def _action_bound(action_mode: str) -> float:
    if action_mode not in ACTION_MODES:
        raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
    return 1.0 if action_mode == "rescale" else MAX_MOVE


def _move(actions: np.ndarray, bound: float) -> np.ndarray:
    """Displacement for raw actions [..., 2]: clip to the action box, scale to +-MAX_MOVE."""
    return np.clip(actions, -bound, bound) * (MAX_MOVE / bound)


def _reward_and_done(positions: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reward and termination for positions and goals [..., 2]."""
    offset = positions - goals
    reward = -np.sqrt(np.sum(offset * offset, axis=-1))
    done = np.all(np.abs(offset) < GOAL_TOLERANCE, axis=-1)
    return reward, done


class Navigation2DEnv(gym.Env):
    """One point robot; follows the rlmaml task protocol (tasks are ``{"goal": [x, y]}``)."""

    metadata = {"render_modes": []}

    def __init__(self, action_mode: str = "rescale", task: dict[str, Any] | None = None):
        self.action_mode = action_mode
        self._bound = bound = _action_bound(action_mode)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-bound, bound, shape=(2,), dtype=np.float32)
        self._goal = np.zeros(2, dtype=np.float64)
        self._position = np.zeros(2, dtype=np.float64)
        if task is not None:
            self.set_task(task)

    # --- task protocol -------------------------------------------------------------------
    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        goals = rng.uniform(GOAL_LOW, GOAL_HIGH, size=(num_tasks, 2))
        return [{"goal": [float(x), float(y)]} for x, y in goals]

    def set_task(self, task: dict[str, Any]) -> None:
        goal = np.asarray(task["goal"], dtype=np.float64)
        if goal.shape != (2,):
            raise ValueError(f"Navigation2D goal must have shape (2,), got {goal.shape}")
        self._goal = goal

    def get_task(self) -> dict[str, Any]:
        return {"goal": [float(v) for v in self._goal]}

    def task_features(self, task: dict[str, Any]) -> list[float]:
        """The goal (x, y), what the oracle baseline observes."""
        return [float(v) for v in task["goal"]]

    def batched_env(self, tasks: Sequence[dict[str, Any]], copies: int) -> "Navigation2DBatchedEnv":
        goals = np.repeat(np.array([t["goal"] for t in tasks], dtype=np.float64), copies, axis=0)
        return Navigation2DBatchedEnv(goals, self.action_mode)

    # --- Gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._position = np.zeros(2, dtype=np.float64)
        return self._position.astype(np.float32), {"goal": self._goal.copy()}

    def step(self, action):
        self._position = self._position + _move(np.asarray(action, dtype=np.float64), self._bound)
        reward, done = _reward_and_done(self._position, self._goal)
        return self._position.astype(np.float32), float(reward), bool(done), False, {}


class Navigation2DBatchedEnv:
    """Navigation2D over E sub-envs at once in numpy; ``goals`` [E, 2]."""

    def __init__(self, goals: np.ndarray, action_mode: str = "rescale"):
        if goals.ndim != 2 or goals.shape[1] != 2:
            raise ValueError(f"goals must have shape [E, 2], got {goals.shape}")
        self.goals = goals
        self.num_envs = goals.shape[0]
        self._bound = _action_bound(action_mode)
        self._positions = np.zeros_like(goals)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """All sub-envs start at the origin (the seeds do not matter); returns [E, 2]."""
        self._positions = np.zeros_like(self.goals)
        return self._positions.astype(np.float32)

    def step(self, actions: np.ndarray):
        """Actions [E, 2] -> (obs [E, 2], reward [E], terminated [E], truncated [E])."""
        self._positions = self._positions + _move(actions.astype(np.float64), self._bound)
        reward, done = _reward_and_done(self._positions, self.goals)
        return self._positions.astype(np.float32), reward, done, np.zeros_like(done)
