"""The task protocol that every rlmaml task family follows.

A task family is a Gymnasium env whose unwrapped class implements:

- ``sample_tasks(num_tasks, rng) -> list[dict]``: draw tasks from the given
  ``numpy.random.Generator`` only (never the global RNG). A task is a JSON-serialisable dict.
- ``set_task(task)``: make the env solve that task from the next ``reset`` on.
- ``get_task() -> dict``: the task currently set.

Optionally it implements ``batched_env(tasks, copies) -> BatchedEnv``: a natively vectorised
version of itself that steps ``len(tasks) * copies`` sub-envs at once (sub-env ``i`` runs task
``i // copies``). Envs without it are sampled through one Gymnasium env per trajectory.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import gymnasium as gym
import numpy as np

Task = dict[str, Any]


@runtime_checkable
class TaskEnv(Protocol):
    """What an unwrapped task-family env must implement."""

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[Task]: ...

    def set_task(self, task: Task) -> None: ...

    def get_task(self) -> Task: ...


class BatchedEnv(Protocol):
    """A natively vectorised env over ``num_envs`` sub-envs; arrays have leading axis [E]."""

    num_envs: int

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Reset all sub-envs; returns observations [E, obs_dim]."""
        ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step all sub-envs with actions [E, act_dim]; returns (obs, reward, terminated,
        truncated) with shapes [E, obs_dim], [E], [E], [E]. Time limits are the caller's job."""
        ...


class TaskProtocolError(TypeError):
    """An env that does not follow the task protocol; the message names what is missing."""


MISSING_PROTOCOL = "{env_id} does not follow the rlmaml task protocol: its env lacks {names}"


def task_env(env: gym.Env) -> TaskEnv:
    """Return ``env.unwrapped`` after checking that it follows the task protocol.

    Raises:
        TaskProtocolError: naming the missing methods.
    """
    inner = env.unwrapped
    missing = [name for name in ("sample_tasks", "set_task", "get_task") if not callable(getattr(inner, name, None))]
    if missing:
        env_id = env.spec.id if env.spec is not None else type(inner).__name__
        raise TaskProtocolError(MISSING_PROTOCOL.format(env_id=env_id, names=", ".join(missing)))
    return inner  # type: ignore[return-value]
