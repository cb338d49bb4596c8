"""The task protocol that every rlmaml task family follows.

A task family is a Gymnasium env whose unwrapped class implements:

- ``sample_tasks(num_tasks, rng) -> list[dict]``: draw tasks from the given
  ``numpy.random.Generator`` only (never the global RNG). A task is a JSON-serialisable dict.
- ``set_task(task)``: make the env solve that task from the next ``reset`` on.
- ``get_task() -> dict``: the task currently set.

Optionally it implements:

- ``task_features(task) -> Sequence[float]``: the task parameter as a fixed-length vector (a goal,
  a target velocity). The ``oracle`` baseline appends it to every observation.
- ``batched_env(tasks, copies) -> BatchedEnv``: a natively vectorised version of itself that
  steps ``len(tasks) * copies`` sub-envs at once (sub-env ``i`` runs task ``i // copies``).
  Envs without it are sampled through one Gymnasium env per trajectory.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import gymnasium as gym
import numpy as np

from rlmaml.errors import UserError

Task = dict[str, Any]


@runtime_checkable
class TaskEnv(Protocol):
    """What an unwrapped task-family env must implement."""

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[Task]: ...

    def set_task(self, task: Task) -> None: ...

    def get_task(self) -> Task: ...


class BatchedEnv(Protocol):
    """A natively vectorised env over ``num_envs`` sub-envs; arrays have leading axis [E].

    An env that knows when a task is solved may also keep a ``success`` attribute: bool [E] for
    the last step (rlmaml then reports success rates next to returns).
    """

    num_envs: int

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Reset all sub-envs; returns observations [E, obs_dim]."""
        ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step all sub-envs with actions [E, act_dim]; returns (obs, reward, terminated,
        truncated) with shapes [E, obs_dim], [E], [E], [E]. Time limits are the caller's job."""
        ...


class TaskProtocolError(UserError, TypeError):
    """An env that does not follow the task protocol; the message names what is missing."""


class EnvMakeError(UserError, ValueError):
    """An env id that cannot be made (unknown id, module that does not import)."""


class EnvKwargsError(EnvMakeError):
    """Keyword arguments the env's constructor does not take, sets itself, or rejects as values."""


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` for a task family, with installed rlmaml plugins loaded first.

    ``env_id`` is a registered id or Gymnasium's ``module:id`` form (the module is imported and
    must register the id). Raises :class:`EnvMakeError` with a one-line reason instead of a traceback
    for ids that do not resolve and for keyword arguments the env does not take or rejects.
    """
    from rlmaml.plugins import load_plugins  # here, not at import time: plugins import rlmaml

    load_plugins()
    module, sep, _ = env_id.partition(":")
    if sep:
        _import_env_module(module, env_id)
    try:
        return gym.make(env_id, **kwargs)
    except ModuleNotFoundError as error:  # a registered id whose entry point's module is missing
        missing = getattr(error.__cause__, "name", None) or error.name  # Gymnasium re-raises without it
        raise EnvMakeError(f"cannot make {env_id!r}: no module named {missing!r}") from None
    except gym.error.DependencyNotInstalled as error:
        raise EnvMakeError(f"{env_id} needs a dependency that is not installed ({error}); for rlmaml's "
                           f'MuJoCo families: pip install "rlmaml[mujoco]"') from None
    except gym.error.Error as error:
        raise EnvMakeError(f"unknown env {env_id!r}: {error} (see `rlmaml envs`)") from None
    except TypeError as error:
        reason = str(error).partition(" was raised")[0]
        if "unexpected keyword argument" in reason:
            raise EnvKwargsError(f"{env_id} does not take env_kwargs {kwargs}: {reason}") from None
        if "multiple values for keyword argument" in reason:
            raise EnvKwargsError(f"{env_id} sets {reason.rpartition(' ')[2]} itself; leave it out of "
                                 f"env_kwargs {kwargs}") from None
        raise
    except ValueError as error:
        if not kwargs:
            raise EnvMakeError(f"making {env_id} raised ValueError: {_first_line(error)}") from None
        raise EnvKwargsError(f"{env_id} rejects env_kwargs {kwargs}: {error}") from None
    except Exception as error:  # the env's own constructor (or its module) failed: name it in one line
        raise EnvMakeError(f"making {env_id} raised {type(error).__name__}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]


_working_directory_imports = True


def set_working_directory_imports(allowed: bool) -> None:
    """Whether a ``module:id`` env may be imported from the working directory (the command line allows
    it for an env named on it, and forbids it for one named by a run folder's config.json)."""
    global _working_directory_imports
    _working_directory_imports = allowed


@contextmanager
def _import_path() -> Iterator[None]:
    """``sys.path`` without the working directory while its imports are forbidden."""
    if _working_directory_imports:
        yield
        return
    saved = sys.path[:]
    sys.path[:] = [entry for entry in saved if entry not in ("", ".", os.getcwd())]
    try:
        yield
    finally:
        sys.path[:] = saved


def _import_env_module(module: str, env_id: str) -> None:
    """Import the module of a ``module:id`` env, turning its failures into one-line ``EnvMakeError``s."""
    try:
        with _import_path():
            importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = module.split(".")[0]
        if error.name not in (top, module):  # the module imports something that is missing
            raise EnvMakeError(f"importing module {module!r} for env {env_id!r} failed: no module named "
                               f"{error.name!r}") from None
        here = Path.cwd()
        if not _working_directory_imports and ((here / f"{top}.py").is_file() or (here / top).is_dir()):
            raise EnvMakeError(f"module {module!r} for env {env_id!r} is in the working directory, from which "
                               "rlmaml does not import a module that a run folder's config.json names (a run "
                               "folder is data); to trust it, set PYTHONPATH to that folder or install it") from None
        raise EnvMakeError(f"cannot import module {module!r} for env {env_id!r}: no module named {top!r}; a "
                           "module:id env is imported from the Python path (and, for an env named on the command "
                           "line of a new run, from the current folder): set PYTHONPATH to the folder that holds "
                           f"{top}.py or install it (see docs/custom-tasks.md)") from None
    except SyntaxError as error:
        raise EnvMakeError(f"cannot import module {module!r} for env {env_id!r}: syntax error in "
                           f"{error.filename}, line {error.lineno}: {error.msg}") from None
    except Exception as error:
        raise EnvMakeError(f"importing module {module!r} for env {env_id!r} raised {type(error).__name__}: "
                           f"{_first_line(error)}") from None


def env_name(env: gym.Env) -> str:
    """The registered id of ``env``, or its class name."""
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


def checked_tasks(tasks: Any, num_tasks: int, env_id: str) -> list[Task]:
    """``tasks`` as returned by ``sample_tasks(num_tasks, rng)`` after checking it is a list of
    ``num_tasks`` JSON-serialisable dicts that survive a JSON round trip unchanged."""
    if not isinstance(tasks, list) or len(tasks) != num_tasks:
        raise TaskProtocolError(f"{env_id}: sample_tasks({num_tasks}, rng) must return a list of {num_tasks} "
                                f"tasks, got {type(tasks).__name__}"
                                + (f" of length {len(tasks)}" if isinstance(tasks, list) else ""))
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise TaskProtocolError(f"{env_id}: task {i} is a {type(task).__name__}, not a dict")
        try:
            text = json.dumps(task)
        except (TypeError, ValueError) as error:
            raise TaskProtocolError(f"{env_id}: task {i} is not JSON-serialisable ({error}); "
                                    "use plain floats and lists, e.g. float(x) and array.tolist()") from None
        if json.loads(text) != task:
            raise TaskProtocolError(f"{env_id}: task {i} changes in a JSON round trip ({text}); "
                                    "use string keys and lists rather than tuples")
    return tasks


MISSING_PROTOCOL = "{env_id} does not follow the rlmaml task protocol: its env lacks {names}"


def task_env(env: gym.Env) -> TaskEnv:
    """Return ``env.unwrapped`` after checking that it follows the task protocol.

    Raises:
        TaskProtocolError: naming the missing methods.
    """
    inner = env.unwrapped
    missing = [name for name in ("sample_tasks", "set_task", "get_task") if not callable(getattr(inner, name, None))]
    if missing:
        raise TaskProtocolError(MISSING_PROTOCOL.format(env_id=env_name(env), names=", ".join(missing)))
    return inner  # type: ignore[return-value]


def task_features(family: TaskEnv, tasks: Sequence[Task], env_id: str) -> np.ndarray:
    """The family's ``task_features`` of each task as float32 [N, F] (for the oracle).

    Raises:
        TaskProtocolError: if the family lacks ``task_features`` or returns ragged/non-finite values.
    """
    features = getattr(family, "task_features", None)
    if not callable(features):
        raise TaskProtocolError(f"{env_id} has no task_features(task): the oracle needs the task parameter")
    rows = [np.asarray(features(task), dtype=np.float32).reshape(-1) for task in tasks]
    if len({row.shape for row in rows}) > 1:
        raise TaskProtocolError(f"{env_id}: task_features returns vectors of different lengths")
    stacked = np.stack(rows)
    if not np.isfinite(stacked).all():
        raise TaskProtocolError(f"{env_id}: task_features returns non-finite values")
    return stacked
