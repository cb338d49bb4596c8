"""Natively batched HalfCheetah and Ant: many MjData of one MjModel stepped together.

Steps the same physics as Gymnasium's env (``mj_step`` with the env's frame skip, then
``mj_rnePostConstraint`` where contact forces are used; reset noise from
``gymnasium.utils.seeding.np_random(seed)``), and computes observations, rewards and termination
for all sub-envs at once in numpy, so it gives the same trajectories as one Gymnasium env per
sub-env for the same seeds and actions (tested). Only the per-sub-env ``mj_step`` remains a Python
loop, and sub-envs that terminated are no longer stepped. ``mj_step`` releases the GIL, and
rlmaml's rollout workers (``rlmaml/workers.py``) run one such batch per CPU core.

A batch per rollout, but not an MjData per rollout: each family env keeps an :class:`MjDataPool`
and every batch it makes takes its MjData from there (see the class for why).
"""

from __future__ import annotations

from typing import Sequence

import mujoco
import numpy as np
from gymnasium.utils import seeding


class MjDataPool:
    """MjData of one MjModel, created once and lent again to every new batch.

    Each MjData reserves ``model.narena`` bytes for contacts and constraints (14 MB for the Ant).
    Allocating a fresh set per rollout (800 for AntDir's 20 tasks x 40 trajectories per worker)
    grew a rollout worker by about 300 MB per rollout, because the freed arenas stay in the
    process, until the kernel killed it. Reuse changes no trajectory: a batch resets every MjData
    it takes (``mj_resetData``). A new batch takes over the MjData of the previous one, which must
    not be stepped again.
    """

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self._datas: list[mujoco.MjData] = []

    def take(self, num_envs: int) -> list[mujoco.MjData]:
        """The first ``num_envs`` MjData of the pool, creating those it does not have yet."""
        while len(self._datas) < num_envs:
            self._datas.append(mujoco.MjData(self.model))
        return self._datas[:num_envs]


class _MujocoBatch:
    """``num_envs`` copies of ``env``'s model; keeps qpos [E, nq] and qvel [E, nv] after each step.

    ``env`` is one of rlmaml's MuJoCo families; its ``mjdata_pool`` supplies the MjData.
    """

    uses_contact_forces = False

    def __init__(self, env, num_envs: int):
        self.model = env.model
        self.num_envs = num_envs
        self.datas = env.mjdata_pool.take(num_envs)
        self.frame_skip = env.frame_skip
        self.dt = env.dt
        self.noise_scale = env._reset_noise_scale
        self.init_qpos, self.init_qvel = env.init_qpos.copy(), env.init_qvel.copy()
        self.low, self.high = env.action_space.low, env.action_space.high
        self.qpos = np.zeros((num_envs, self.model.nq))
        self.qvel = np.zeros((num_envs, self.model.nv))
        self.alive = np.ones(num_envs, dtype=bool)

    def _record(self, i: int, data: mujoco.MjData) -> None:
        self.qpos[i], self.qvel[i] = data.qpos, data.qvel

    def _reset_all(self, seeds: Sequence[int]) -> None:
        """Gymnasium's MuJoCo reset (uniform qpos noise, normal qvel noise) for every sub-env."""
        if len(seeds) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        self.alive[:] = True
        for i, (data, seed) in enumerate(zip(self.datas, seeds)):
            rng, _ = seeding.np_random(int(seed))
            mujoco.mj_resetData(self.model, data)
            data.qpos[:] = self.init_qpos + rng.uniform(-self.noise_scale, self.noise_scale, self.model.nq)
            data.qvel[:] = self.init_qvel + self.noise_scale * rng.standard_normal(self.model.nv)
            mujoco.mj_forward(self.model, data)
            self._record(i, data)

    def _simulate(self, actions: np.ndarray) -> None:
        """One env step (``frame_skip`` MuJoCo steps) of every live sub-env with clipped actions [E, nu]."""
        for i in np.flatnonzero(self.alive):
            data = self.datas[i]
            data.ctrl[:] = actions[i]
            mujoco.mj_step(self.model, data, nstep=self.frame_skip)
            if self.uses_contact_forces:
                mujoco.mj_rnePostConstraint(self.model, data)
            self._record(i, data)


class HalfCheetahBatch(_MujocoBatch):
    """``len(task_values)`` HalfCheetah sub-envs; ``mode`` ``velocity`` (values are target
    velocities) or ``direction`` (values are +-1). Arrays have leading axis [E]."""

    def __init__(self, env, task_values: np.ndarray, mode: str):
        if mode not in ("velocity", "direction"):
            raise ValueError(f"mode must be velocity or direction, got {mode!r}")
        self.mode = mode
        self.values = np.asarray(task_values, dtype=np.float64)
        super().__init__(env, len(self.values))
        self.ctrl_cost_weight = env._ctrl_cost_weight

    def _observe(self) -> np.ndarray:
        return np.concatenate([self.qpos[:, 1:], self.qvel], axis=1)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Gymnasium's reset for every sub-env with its seed; returns observations [E, 17]."""
        self._reset_all(seeds)
        return self._observe()

    def step(self, actions: np.ndarray):
        """Actions [E, 6] -> (obs [E, 17], reward [E], terminated [E], truncated [E])."""
        actions = np.clip(np.asarray(actions, dtype=np.float64), self.low, self.high)
        x_before = self.qpos[:, 0].copy()
        self._simulate(actions)
        x_velocity = (self.qpos[:, 0] - x_before) / self.dt
        ctrl_cost = self.ctrl_cost_weight * np.sum(actions * actions, axis=1)
        if self.mode == "velocity":
            reward = -np.abs(x_velocity - self.values) - ctrl_cost
        else:
            reward = self.values * x_velocity - ctrl_cost
        never = np.zeros(self.num_envs, dtype=bool)
        return self._observe(), reward, never, never.copy()


class AntBatch(_MujocoBatch):
    """``len(task_values)`` Ant sub-envs of rlmaml's Ant families (``envs/locomotion.py``).

    ``mode`` ``velocity`` (values [E], target velocities), ``direction`` (values [E], +-1) or
    ``goal`` (values [E, 2], goal positions). The reward is the task term plus the env's healthy
    reward minus its control and contact costs plus ``constant``; a sub-env terminates when its
    state is not finite or the torso height leaves the env's healthy range, and is not stepped again
    until the next reset (its state, hence its observation, stays frozen).
    """

    uses_contact_forces = True

    def __init__(self, env, task_values: np.ndarray, mode: str, constant: float):
        if mode not in ("velocity", "direction", "goal"):
            raise ValueError(f"mode must be velocity, direction or goal, got {mode!r}")
        self.mode = mode
        self.values = np.asarray(task_values, dtype=np.float64)
        if self.values.shape[1:] != ((2,) if mode == "goal" else ()):
            raise ValueError(f"{mode} task values have the wrong shape {self.values.shape}")
        super().__init__(env, len(self.values))
        self.constant = constant
        self.ctrl_cost_weight = env._ctrl_cost_weight
        self.contact_cost_weight = env._contact_cost_weight
        self.contact_range = env._contact_force_range
        self.healthy_reward = env._healthy_reward
        self.healthy_z_range = env._healthy_z_range
        self.terminate_when_unhealthy = env._terminate_when_unhealthy
        self.position_start = 2 if env._exclude_current_positions_from_observation else 0
        self.include_contact_forces = env._include_cfrc_ext_in_observation
        self.main_body = self.model.body(env._main_body).id
        self.torso_xy = np.zeros((self.num_envs, 2))
        self.contact_forces = np.zeros((self.num_envs, self.model.nbody, 6))  # clipped cfrc_ext

    def _record(self, i: int, data: mujoco.MjData) -> None:
        super()._record(i, data)
        self.torso_xy[i] = data.xpos[self.main_body, :2]
        self.contact_forces[i] = np.clip(data.cfrc_ext, *self.contact_range)

    def _observe(self) -> np.ndarray:
        parts = [self.qpos[:, self.position_start:], self.qvel]
        if self.include_contact_forces:
            parts.append(self.contact_forces[:, 1:].reshape(self.num_envs, -1))
        return np.concatenate(parts, axis=1)

    def _healthy(self) -> np.ndarray:
        finite = np.isfinite(self.qpos).all(axis=1) & np.isfinite(self.qvel).all(axis=1)
        low, high = self.healthy_z_range
        with np.errstate(invalid="ignore"):
            return finite & (self.qpos[:, 2] >= low) & (self.qpos[:, 2] <= high)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Gymnasium's reset for every sub-env with its seed; returns observations [E, obs_dim]."""
        self._reset_all(seeds)
        return self._observe()

    def step(self, actions: np.ndarray):
        """Actions [E, 8] -> (obs [E, obs_dim], reward [E], terminated [E], truncated [E])."""
        actions = np.clip(np.asarray(actions, dtype=np.float64), self.low, self.high)
        xy_before = self.torso_xy.copy()
        self._simulate(actions)
        x_velocity = (self.torso_xy[:, 0] - xy_before[:, 0]) / self.dt
        if self.mode == "velocity":
            task_reward = -np.abs(x_velocity - self.values)
        elif self.mode == "direction":
            task_reward = self.values * x_velocity
        else:
            task_reward = -np.abs(self.qpos[:, :2] - self.values).sum(axis=1)
        healthy = self._healthy()
        ctrl_cost = self.ctrl_cost_weight * np.sum(actions * actions, axis=1)
        contact_cost = self.contact_cost_weight * np.sum(self.contact_forces**2, axis=(1, 2))
        reward = task_reward + self.healthy_reward * healthy - ctrl_cost - contact_cost + self.constant
        terminated = ~healthy & self.terminate_when_unhealthy
        self.alive &= ~terminated
        return self._observe(), reward, terminated, np.zeros(self.num_envs, dtype=bool)
