"""Rollout worker processes: each owns its own envs and a copy of the policy and runs whole
trajectories, so a rollout costs one message per worker, not one per time step.

Used for task families whose simulation dominates (MuJoCo): the trainer's process splits the tasks
into contiguous slices, sends each worker the policy, its tasks' parameters, action noise and reset
seeds, and concatenates the results. Noise and seeds are drawn before the split, so the
trajectories are those of in-process sampling up to float rounding in the policy's matrix
products (which differ with the rows per product, and which chaotic dynamics amplify), and they
are bitwise reproducible for a given number of workers. Workers start with ``spawn`` (every OS, no
fork-only state; scripts that create a sampler need the ``if __name__ == "__main__":`` guard) and
ignore Ctrl-C, which the training process handles.
"""

from __future__ import annotations

import multiprocessing
import signal
import traceback
import weakref
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from rlmaml.errors import UserError
from rlmaml.policy import GaussianMLPPolicy, Params
from rlmaml.rollout import TaskEnvs, roll_out
from rlmaml.tasks import Task


class RolloutWorkerError(UserError, RuntimeError):
    """A rollout worker's env raised (the message holds its traceback) or the process died."""


def _worker_main(conn: Any, env_id: str, env_kwargs: dict[str, Any], horizon: int, oracle: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    envs = TaskEnvs(env_id, horizon, env_kwargs, oracle)
    while True:
        message = conn.recv()
        if message is None:
            return
        policy, params, tasks, num_traj, noise, seeds = message
        try:
            with torch.no_grad():
                result = roll_out(envs.vector_env(tasks, num_traj), policy, params, noise, seeds, envs.obs_dim)
            conn.send(("ok", result))
        except UserError as error:  # the env broke the protocol: its one-line message says what
            conn.send(("user-error", str(error)))
        except Exception:  # reported to the training process, which raises it
            conn.send(("error", traceback.format_exc()))


def _task_slice(params: Params, start: int, stop: int) -> Params:
    """Per-task parameters (leading task axis; ``log_std`` is then 2-D) sliced to tasks [start, stop)."""
    if params["log_std"].dim() == 1:
        return params
    return {name: value[start:stop] for name, value in params.items()}


def _shutdown(conns: list[Any], procs: list[Any]) -> None:
    for conn in conns:
        try:
            conn.send(None)
        except (BrokenPipeError, OSError):
            pass
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()


class RolloutWorkers:
    """``num_workers`` persistent processes sampling ``env_id`` (see the module docstring)."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], horizon: int, oracle: bool, num_workers: int):
        self._env_id = env_id
        context = multiprocessing.get_context("spawn")
        self._conns, self._procs = [], []
        for _ in range(num_workers):
            parent, child = context.Pipe()
            proc = context.Process(target=_worker_main, args=(child, env_id, env_kwargs, horizon, oracle),
                                   daemon=True, name="rlmaml-rollout")
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self._finalizer = weakref.finalize(self, _shutdown, self._conns, self._procs)

    @property
    def num_workers(self) -> int:
        return len(self._procs)

    def roll_out(self, policy: GaussianMLPPolicy, params: Params, tasks: Sequence[Task], num_traj: int,
                 noise: Tensor, seeds: np.ndarray) -> dict[str, Any]:
        """Like :func:`rlmaml.rollout.roll_out` for all tasks, split over the workers by task."""
        bounds = np.array_split(np.arange(len(tasks)), min(self.num_workers, len(tasks)))
        used = self._conns[:len(bounds)]
        params = {name: value.detach() for name, value in params.items()}
        for conn, index in zip(used, bounds):
            start, stop = int(index[0]), int(index[-1]) + 1
            conn.send((policy, _task_slice(params, start, stop), list(tasks[start:stop]), num_traj,
                       noise[:, start:stop].contiguous(), seeds[start * num_traj:stop * num_traj]))
        # every reply is read before raising, so no pipe keeps a stale one for the next rollout
        replies = [self._receive(number, conn) for number, conn in enumerate(used)]
        for number, (status, payload) in enumerate(replies):
            if status == "user-error":
                raise RolloutWorkerError(f"rollout worker {number}: {payload}")
            if status != "ok":
                raise RolloutWorkerError(f"rollout worker {number} failed while sampling {self._env_id}; "
                                         f"its traceback:\n{payload}")
        parts = [payload for _, payload in replies]
        success = [part["success"] for part in parts]
        return {
            "observations": np.concatenate([part["observations"] for part in parts]),
            "rewards": np.concatenate([part["rewards"] for part in parts]),
            "mask": np.concatenate([part["mask"] for part in parts]),
            "actions": torch.cat([part["actions"] for part in parts]),
            "log_probs": torch.cat([part["log_probs"] for part in parts]),
            "success": None if any(s is None for s in success) else np.concatenate(success),
        }

    def _receive(self, number: int, conn: Any) -> tuple[str, Any]:
        try:
            return conn.recv()
        except EOFError:  # the process died: killed (out of memory?) or crashed inside the simulator
            self._procs[number].join(timeout=5)
            raise RolloutWorkerError(f"rollout worker {number} sampling {self._env_id} exited with code "
                                     f"{self._procs[number].exitcode} (killed, or crashed in the simulator)") from None

    def close(self) -> None:
        """Stop the workers (also done automatically when this object is garbage collected)."""
        self._finalizer()
