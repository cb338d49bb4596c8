"""One rollout function for all tasks x trajectories, shared by in-process sampling
(:mod:`rlmaml.sampling`) and the rollout worker processes (:mod:`rlmaml.workers`).

Sub-env ``i`` runs task ``i // num_traj``. Task families with a ``batched_env`` hook are stepped
natively in one call per time step; any other env following the task protocol is stepped through
one Gymnasium env per trajectory. Either way the policy runs once per time step for all sub-envs.
With ``oracle=True`` the task family's ``task_features`` are appended to every observation.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from rlmaml.policy import GaussianMLPPolicy, Params, standard_normal_log_prob
from rlmaml.tasks import Task, TaskProtocolError, checked_tasks, env_name, make_env, task_env, task_features


class _GymEnvs:
    """One Gymnasium env per sub-env, stepped in a Python loop (the generic path).

    After each step, ``success`` [E] holds the envs' ``info["success"]`` if any env reports it.
    """

    def __init__(self, envs: list[gym.Env]):
        self.envs = envs
        self.num_envs = len(envs)
        self._alive = np.ones(self.num_envs, dtype=bool)
        self._last_obs: np.ndarray | None = None
        self.success: np.ndarray | None = None

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        self._alive[:] = True
        self.success = None
        first = [np.asarray(env.reset(seed=int(s))[0]) for env, s in zip(self.envs, seeds)]
        if len({o.shape for o in first}) > 1:
            raise TaskProtocolError(f"{env_name(self.envs[0])}: reset returned observations of shapes "
                                    f"{sorted({o.shape for o in first})}; they must all have the space's shape")
        self._last_obs = np.stack(first)
        return self._last_obs.copy()

    def step(self, actions: np.ndarray):
        assert self._last_obs is not None, "reset() first"
        obs = self._last_obs
        reward = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for i in np.flatnonzero(self._alive):
            observation, reward[i], terminated[i], truncated[i], info = self.envs[i].step(actions[i])
            if np.shape(observation) != obs.shape[1:]:
                raise TaskProtocolError(f"{env_name(self.envs[i])}: step returned an observation of shape "
                                        f"{list(np.shape(observation))} where it had {list(obs.shape[1:])}; the "
                                        "observation space's shape must hold for every step")
            obs[i] = observation
            if "success" in info:
                if self.success is None:
                    self.success = np.zeros(self.num_envs, dtype=bool)
                self.success[i] = bool(info["success"])
        self._alive &= ~(terminated | truncated)
        return obs.copy(), reward, terminated, truncated


class _WithTaskFeatures:
    """Appends fixed per-sub-env features [E, F] to the observations of a vectorised env."""

    def __init__(self, env: Any, features: np.ndarray):
        self.env = env
        self.features = features
        self.num_envs = env.num_envs

    @property
    def success(self) -> np.ndarray | None:
        return getattr(self.env, "success", None)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        return np.concatenate([np.asarray(self.env.reset(seeds), dtype=np.float32), self.features], axis=1)

    def step(self, actions: np.ndarray):
        obs, reward, terminated, truncated = self.env.step(actions)
        return np.concatenate([np.asarray(obs, dtype=np.float32), self.features], axis=1), reward, terminated, truncated


class TaskEnvs:
    """Makes the vectorised env that runs a batch of tasks of one family.

    Args:
        env_id: a registered Gymnasium id following the rlmaml task protocol.
        horizon: steps per trajectory; ``None`` takes the id's ``max_episode_steps``.
        env_kwargs: keyword arguments for ``gymnasium.make``.
        oracle: append the task family's ``task_features`` to the observations.
    """

    def __init__(self, env_id: str, horizon: int | None = None, env_kwargs: dict[str, Any] | None = None,
                 oracle: bool = False):
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.oracle = oracle
        self.env = make_env(env_id, **self.env_kwargs)
        self.family = task_env(self.env)
        spec_horizon = self.env.spec.max_episode_steps if self.env.spec is not None else None
        horizon = horizon if horizon is not None else spec_horizon
        if horizon is None:
            raise TaskProtocolError(f"{env_id} is registered without max_episode_steps: register it with one, or "
                                    "give the horizon (--horizon)")
        self.horizon: int = horizon
        obs_space, act_space = self.env.observation_space, self.env.action_space
        if not isinstance(act_space, gym.spaces.Box) or not isinstance(obs_space, gym.spaces.Box):
            raise TaskProtocolError(f"{env_id} has {type(obs_space).__name__} observations and "
                                    f"{type(act_space).__name__} actions; rlmaml's Gaussian policy needs Box spaces")
        self.obs_dim = int(np.prod(obs_space.shape))
        self.act_dim = int(np.prod(act_space.shape))
        self.action_low = np.asarray(act_space.low, dtype=np.float64).reshape(-1)
        self.action_high = np.asarray(act_space.high, dtype=np.float64).reshape(-1)
        if oracle:
            probe = self.sample_tasks(1, np.random.default_rng(0))
            self.obs_dim += task_features(self.family, probe, env_id).shape[1]
        self._gym_envs: list[gym.Env] = []

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[Task]:
        """``num_tasks`` tasks drawn from ``rng`` by the task family (checked to be JSON-ready dicts)."""
        return checked_tasks(self.family.sample_tasks(num_tasks, rng), num_tasks, self.env_id)

    def vector_env(self, tasks: Sequence[Task], num_traj: int) -> Any:
        """A vectorised env of ``len(tasks) * num_traj`` sub-envs, sub-env i on task i // num_traj."""
        env: Any
        try:
            if callable(getattr(self.family, "batched_env", None)):
                env = self.family.batched_env(tasks, num_traj)  # type: ignore[attr-defined]
            else:
                num_envs = len(tasks) * num_traj
                while len(self._gym_envs) < num_envs:
                    self._gym_envs.append(make_env(self.env_id, max_episode_steps=self.horizon, **self.env_kwargs))
                envs = self._gym_envs[:num_envs]
                for i, sub_env in enumerate(envs):
                    sub_env.unwrapped.set_task(tasks[i // num_traj])  # type: ignore[attr-defined]
                env = _GymEnvs(envs)
        except (KeyError, TypeError, ValueError, IndexError) as error:  # a task the family cannot take
            shown = ", ".join(json.dumps(task) for task in tasks[:2])
            raise TaskProtocolError(f"{self.env_id} cannot set its tasks ({shown}{', ...' if len(tasks) > 2 else ''}): "
                                    f"{type(error).__name__}: {error}; were they changed (test_tasks.json)?") from None
        if self.oracle:
            features = np.repeat(task_features(self.family, tasks, self.env_id), num_traj, axis=0)
            env = _WithTaskFeatures(env, features)
        return env


def _observations(values: Any, num_envs: int, obs_dim: int, when: str) -> np.ndarray:
    """The sub-envs' observations as float32 [E, obs_dim]; ``TaskProtocolError`` if their shape is not
    the observation space's (an env whose observations change shape mid-episode)."""
    array = np.asarray(values, dtype=np.float32)
    if array.size != num_envs * obs_dim:
        raise TaskProtocolError(f"the env's observations at {when} have shape {list(array.shape)} for {num_envs} "
                                f"sub-envs; its observation space holds {obs_dim} values each")
    return array.reshape(num_envs, obs_dim)


def roll_out(env: Any, policy: GaussianMLPPolicy, params: Params, noise: Tensor, seeds: np.ndarray,
             obs_dim: int) -> dict[str, Any]:
    """Step a vectorised env of E = N*M sub-envs (sub-env i on task i // M) with the policy.

    Args:
        params: shared, or per-task with leading axis [N].
        noise: standard-normal action noise [T, N, M, act_dim]; T is the horizon.
        seeds: reset seeds [E].

    Returns:
        ``observations`` [E, T, obs_dim], ``rewards`` and ``mask`` [E, T] (numpy float32),
        ``actions`` [N, M, T, act_dim] and ``log_probs`` [N, M, T] (tensors), ``success`` [E]
        (numpy bool, or None if the env never reports it).
    """
    horizon, num_tasks, num_traj, act_dim = noise.shape
    num_envs = num_tasks * num_traj
    obs = np.zeros((num_envs, horizon, obs_dim), dtype=np.float32)
    actions = torch.zeros(num_tasks, num_traj, horizon, act_dim, dtype=noise.dtype)
    rewards = np.zeros((num_envs, horizon), dtype=np.float32)
    mask = np.zeros((num_envs, horizon), dtype=np.float32)
    log_probs = torch.zeros(num_tasks, num_traj, horizon, dtype=noise.dtype)
    alive = np.ones(num_envs, dtype=bool)
    succeeded: np.ndarray | None = None  # [E], once the env reports success
    current = _observations(env.reset(seeds), num_envs, obs_dim, "reset")
    for t in range(horizon):
        obs[:, t] = current
        mean, log_std = policy.distribution(params, torch.from_numpy(obs[:, t]).to(noise.dtype)
                                            .view(num_tasks, num_traj, -1))
        action = mean + torch.exp(log_std) * noise[t]
        actions[:, :, t] = action
        log_probs[:, :, t] = standard_normal_log_prob(noise[t], log_std)
        next_obs, reward, terminated, truncated = env.step(action.view(num_envs, -1).numpy())
        mask[alive, t] = 1.0
        rewards[alive, t] = reward[alive]
        reported = getattr(env, "success", None)
        if reported is not None:
            succeeded = np.zeros(num_envs, dtype=bool) if succeeded is None else succeeded
            succeeded[alive] |= np.asarray(reported, dtype=bool)[alive]
        alive &= ~(np.asarray(terminated) | np.asarray(truncated))
        if not alive.any():
            break
        current = _observations(next_obs, num_envs, obs_dim, f"step {t + 1}")
    return {"observations": obs, "actions": actions, "rewards": rewards, "mask": mask, "log_probs": log_probs,
            "success": succeeded}
