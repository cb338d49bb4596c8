"""Natively batched HalfCheetah: many MjData of one MjModel stepped together.

Steps the same physics as Gymnasium's env (``mj_step`` with the env's frame skip, reset noise from
``gymnasium.utils.seeding.np_random(seed)``), and computes observations and rewards for all
sub-envs at once in numpy, so it gives the same trajectories as one Gymnasium env per sub-env
for the same seeds and actions (tested). ``mj_step`` releases the GIL, and rlmaml's rollout
workers (``rlmaml/workers.py``) run one such batch per CPU core.
"""

from __future__ import annotations

from typing import Sequence

import mujoco
import numpy as np
from gymnasium.utils import seeding


class HalfCheetahBatch:
    """``len(task_values)`` HalfCheetah sub-envs; ``mode`` ``velocity`` (values are target
    velocities) or ``direction`` (values are +-1). Arrays have leading axis [E]."""

    def __init__(self, env, task_values: np.ndarray, mode: str):
        if mode not in ("velocity", "direction"):
            raise ValueError(f"mode must be velocity or direction, got {mode!r}")
        self.model = env.model
        self.mode = mode
        self.values = np.asarray(task_values, dtype=np.float64)
        self.num_envs = len(self.values)
        self.datas = [mujoco.MjData(self.model) for _ in range(self.num_envs)]
        self.frame_skip = env.frame_skip
        self.dt = env.dt
        self.ctrl_cost_weight = env._ctrl_cost_weight
        self.noise_scale = env._reset_noise_scale
        self.init_qpos, self.init_qvel = env.init_qpos.copy(), env.init_qvel.copy()
        self.low, self.high = env.action_space.low, env.action_space.high
        self.qpos = np.zeros((self.num_envs, self.model.nq))
        self.qvel = np.zeros((self.num_envs, self.model.nv))

    def _observe(self) -> np.ndarray:
        return np.concatenate([self.qpos[:, 1:], self.qvel], axis=1)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Gymnasium's reset for every sub-env with its seed; returns observations [E, 17]."""
        for i, (data, seed) in enumerate(zip(self.datas, seeds)):
            rng, _ = seeding.np_random(int(seed))
            mujoco.mj_resetData(self.model, data)
            data.qpos[:] = self.init_qpos + rng.uniform(-self.noise_scale, self.noise_scale, self.model.nq)
            data.qvel[:] = self.init_qvel + self.noise_scale * rng.standard_normal(self.model.nv)
            mujoco.mj_forward(self.model, data)
            self.qpos[i], self.qvel[i] = data.qpos, data.qvel
        return self._observe()

    def step(self, actions: np.ndarray):
        """Actions [E, 6] -> (obs [E, 17], reward [E], terminated [E], truncated [E])."""
        actions = np.clip(np.asarray(actions, dtype=np.float64), self.low, self.high)
        x_before = self.qpos[:, 0].copy()
        for i, data in enumerate(self.datas):
            data.ctrl[:] = actions[i]
            mujoco.mj_step(self.model, data, nstep=self.frame_skip)
            self.qpos[i], self.qvel[i] = data.qpos, data.qvel
        x_velocity = (self.qpos[:, 0] - x_before) / self.dt
        ctrl_cost = self.ctrl_cost_weight * np.sum(actions * actions, axis=1)
        if self.mode == "velocity":
            reward = -np.abs(x_velocity - self.values) - ctrl_cost
        else:
            reward = self.values * x_velocity - ctrl_cost
        never = np.zeros(self.num_envs, dtype=bool)
        return self._observe(), reward, never, never.copy()
