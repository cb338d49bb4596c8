"""Locomotion task families on Gymnasium's v5 MuJoCo models (needs ``gymnasium[mujoco]``).

Each family subclasses Gymnasium's own env and replaces only its reward hook ``_get_rew``; model,
observation, reset noise and termination are Gymnasium's. Actions are clipped to the action box
[-1, 1] before simulation and before the control cost (the policy's Gaussian samples are
unbounded). Returns depend on the dynamics, so they are stated here:

- HalfCheetah (v5 model): frame skip 5, MuJoCo timestep 0.01 s, so dt = 0.05 s per env step;
  observation 17 floats (joint positions without the root x, velocities); never terminates;
  registered horizon 200 (the paper's). v_x is the root's forward velocity over the step.
- Ant (v5 model): frame skip 5, dt = 0.05 s; observation 105 floats (positions without root x, y
  except for AntGoal, velocities, clipped external contact forces); terminates when the torso
  height leaves [0.2, 1.0] or the state is not finite; registered horizon 200.

Tasks (as in the MAML paper, Finn et al. 2017, and ProMP, Rothfuss et al. 2019):

- HalfCheetahVel: ``{"velocity": v}``, v ~ U[0, 2]; reward -|v_x - v| - 0.05 ||a||^2.
- HalfCheetahDir: ``{"direction": d}``, d = -1 or +1 with probability 1/2; reward d v_x - 0.05 ||a||^2.
- AntVel: ``{"velocity": v}``, v ~ U[0, 3]; reward -|v_x - v| + 1.0 (alive) - 0.005 ||a||^2
  - 0.0005 ||clip(cfrc_ext, -1, 1)||^2 + 0.05.
- AntDir: ``{"direction": d}``, d = -1 or +1; reward d v_x - 0.005 ||a||^2 - contact cost + 0.05
  (no alive bonus).
- AntGoal: ``{"goal": [x, y]}`` uniform in the disc of radius 3 (ProMP); reward -||xy - goal||_1
  + 4.0 (alive, the original's bonus, so falling early never pays) - control - contact costs; the
  observation includes the torso's x, y so that the goal can be found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

if TYPE_CHECKING:
    from rlmaml.envs.mujoco_batch import MjDataPool

CHEETAH_CTRL_COST = 0.05
ANT_CTRL_COST = 0.005
ANT_CONTACT_COST = 0.0005
ANT_CONSTANT = 0.05


class _ClippedActions:
    """Mixin: clip actions to the action box before Gymnasium's step sees them (and refuse a frame skip
    below 1, which Gymnasium takes: 0 divides by zero, a negative one freezes the simulation)."""

    def __init__(self, **kwargs: Any):
        frame_skip = kwargs.get("frame_skip", 1)
        if not isinstance(frame_skip, int) or isinstance(frame_skip, bool) or frame_skip < 1:
            raise ValueError(f"frame_skip must be a positive integer, got {frame_skip!r}")
        super().__init__(**kwargs)

    def step(self, action):
        space = self.action_space
        return super().step(np.clip(np.asarray(action, dtype=np.float64), space.low, space.high))


class _PooledMjData:
    """Mixin: the :class:`~rlmaml.envs.mujoco_batch.MjDataPool` this env's batched envs take their
    MjData from (created on first use; one per env, so each rollout worker has its own)."""

    _mjdata_pool = None

    @property
    def mjdata_pool(self) -> MjDataPool:
        if self._mjdata_pool is None:
            from rlmaml.envs.mujoco_batch import MjDataPool

            self._mjdata_pool = MjDataPool(self.model)
        return self._mjdata_pool


class _VelocityTasks:
    """Task protocol for ``{"velocity": v}`` with v uniform in ``VELOCITY_RANGE``."""

    VELOCITY_RANGE: tuple[float, float]
    _velocity = 1.0

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        return [{"velocity": float(v)} for v in rng.uniform(*self.VELOCITY_RANGE, size=num_tasks)]

    def set_task(self, task: dict[str, Any]) -> None:
        self._velocity = float(task["velocity"])

    def get_task(self) -> dict[str, Any]:
        return {"velocity": self._velocity}

    def task_features(self, task: dict[str, Any]) -> list[float]:
        return [float(task["velocity"])]


class _DirectionTasks:
    """Task protocol for ``{"direction": d}`` with d = -1 or +1, each with probability 1/2."""

    _direction = 1

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        return [{"direction": int(d)} for d in rng.choice([-1, 1], size=num_tasks)]

    def set_task(self, task: dict[str, Any]) -> None:
        direction = int(task["direction"])
        if direction not in (-1, 1):
            raise ValueError(f"direction must be -1 or +1, got {task['direction']!r}")
        self._direction = direction

    def get_task(self) -> dict[str, Any]:
        return {"direction": self._direction}

    def task_features(self, task: dict[str, Any]) -> list[float]:
        return [float(task["direction"])]


class HalfCheetahVelEnv(_VelocityTasks, _PooledMjData, _ClippedActions, HalfCheetahEnv):
    """HalfCheetah that must run at a target forward velocity (tasks ``{"velocity": v}``)."""

    VELOCITY_RANGE = (0.0, 2.0)
    parallel_rollouts = True  # simulation dominates: sample in one worker process per core

    def __init__(self, **kwargs: Any):
        super().__init__(ctrl_cost_weight=CHEETAH_CTRL_COST, **kwargs)

    def batched_env(self, tasks: Sequence[dict[str, Any]], copies: int):
        from rlmaml.envs.mujoco_batch import HalfCheetahBatch

        return HalfCheetahBatch(self, np.repeat([t["velocity"] for t in tasks], copies), mode="velocity")

    def _get_rew(self, x_velocity: float, action):
        forward = -abs(x_velocity - self._velocity)
        ctrl_cost = self.control_cost(action)
        return forward - ctrl_cost, {"reward_forward": forward, "reward_ctrl": -ctrl_cost}


class HalfCheetahDirEnv(_DirectionTasks, _PooledMjData, _ClippedActions, HalfCheetahEnv):
    """HalfCheetah that must run forward (+1) or backward (-1) (tasks ``{"direction": d}``)."""

    parallel_rollouts = True

    def __init__(self, **kwargs: Any):
        super().__init__(ctrl_cost_weight=CHEETAH_CTRL_COST, **kwargs)

    def batched_env(self, tasks: Sequence[dict[str, Any]], copies: int):
        from rlmaml.envs.mujoco_batch import HalfCheetahBatch

        return HalfCheetahBatch(self, np.repeat([t["direction"] for t in tasks], copies), mode="direction")

    def _get_rew(self, x_velocity: float, action):
        forward = self._direction * x_velocity
        ctrl_cost = self.control_cost(action)
        return forward - ctrl_cost, {"reward_forward": forward, "reward_ctrl": -ctrl_cost}


class _AntTask(_PooledMjData, _ClippedActions, AntEnv):
    parallel_rollouts = True
    TASK_KEY: str  # the task dict's key, also the batched env's mode: velocity, direction or goal

    def __init__(self, healthy_reward: float, **kwargs: Any):
        super().__init__(ctrl_cost_weight=ANT_CTRL_COST, contact_cost_weight=ANT_CONTACT_COST,
                         healthy_reward=healthy_reward, **kwargs)

    def batched_env(self, tasks: Sequence[dict[str, Any]], copies: int):
        from rlmaml.envs.mujoco_batch import AntBatch

        values = np.repeat([task[self.TASK_KEY] for task in tasks], copies, axis=0)
        return AntBatch(self, values, mode=self.TASK_KEY, constant=ANT_CONSTANT)

    def _task_reward(self, x_velocity: float) -> float:
        raise NotImplementedError

    def _get_rew(self, x_velocity: float, action):
        forward = self._task_reward(x_velocity)
        ctrl_cost, contact_cost = self.control_cost(action), self.contact_cost
        healthy = self.healthy_reward
        reward = forward + healthy - ctrl_cost - contact_cost + ANT_CONSTANT
        return reward, {"reward_forward": forward, "reward_ctrl": -ctrl_cost, "reward_contact": -contact_cost,
                        "reward_survive": healthy}


class AntVelEnv(_VelocityTasks, _AntTask):
    """Ant that must run at a target forward velocity (tasks ``{"velocity": v}``)."""

    VELOCITY_RANGE = (0.0, 3.0)
    TASK_KEY = "velocity"

    def __init__(self, **kwargs: Any):
        super().__init__(healthy_reward=1.0, **kwargs)

    def _task_reward(self, x_velocity: float) -> float:
        return -abs(x_velocity - self._velocity)


class AntDirEnv(_DirectionTasks, _AntTask):
    """Ant that must run forward (+1) or backward (-1) (tasks ``{"direction": d}``)."""

    TASK_KEY = "direction"

    def __init__(self, **kwargs: Any):
        super().__init__(healthy_reward=0.0, **kwargs)

    def _task_reward(self, x_velocity: float) -> float:
        return self._direction * x_velocity


class AntGoalEnv(_AntTask):
    """Ant that must walk to a goal position in the plane (tasks ``{"goal": [x, y]}``)."""

    GOAL_RADIUS = 3.0
    TASK_KEY = "goal"

    def __init__(self, **kwargs: Any):
        super().__init__(healthy_reward=4.0, exclude_current_positions_from_observation=False, **kwargs)
        self._goal = np.array([1.0, 0.0])

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        angle = rng.uniform(0.0, 2 * np.pi, size=num_tasks)
        radius = self.GOAL_RADIUS * np.sqrt(rng.uniform(0.0, 1.0, size=num_tasks))  # uniform in the disc
        return [{"goal": [float(r * np.cos(a)), float(r * np.sin(a))]} for r, a in zip(radius, angle)]

    def set_task(self, task: dict[str, Any]) -> None:
        goal = np.asarray(task["goal"], dtype=np.float64)
        if goal.shape != (2,):
            raise ValueError(f"AntGoal goal must have shape (2,), got {goal.shape}")
        self._goal = goal

    def get_task(self) -> dict[str, Any]:
        return {"goal": [float(v) for v in self._goal]}

    def task_features(self, task: dict[str, Any]) -> list[float]:
        return [float(v) for v in task["goal"]]

    def _task_reward(self, x_velocity: float) -> float:
        return -float(np.abs(self.data.qpos[:2] - self._goal).sum())
