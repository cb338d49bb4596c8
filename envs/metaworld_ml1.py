"""Meta-World ML1 task families: one manipulation skill, tasks differ in object and goal positions.

Needs the optional extra: ``pip install "rlmaml[metaworld]"`` (Meta-World 3.x, Gymnasium API,
MuJoCo 3). The env is Meta-World's own v3 class for ``env_name`` (default ``reach-v3``) with the
goal hidden from the observation (39 floats, the last 3 zero), as in Meta-World's ML1 benchmark.
Dynamics are Meta-World's: frame skip 5, dt 0.0125 s, reward in [0, 10] per step (reward
function v2); ``info["success"]`` marks steps within the skill's success threshold, and a
trajectory counts as a success if any of its steps does. Registered horizon 500 (Meta-World's
``max_path_length``).

Tasks are Meta-World's "rand_vec" (initial object and goal positions). ``sample_tasks`` draws them
from the given Generator through the env's own reset, so they obey the skill's constraints (for
example a minimum distance between object and goal) exactly as Meta-World's benchmark tasks do,
but come from rlmaml's seeded task streams rather than the benchmark's fixed list of 50.
"""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import numpy as np

from rlmaml.tasks import EnvMakeError

INSTALL_HINT = 'pip install "rlmaml[metaworld]"'


def _metaworld() -> Any:
    try:
        import metaworld
    except ImportError:
        raise EnvMakeError(f"Meta-World task families need the metaworld extra: {INSTALL_HINT}") from None
    return metaworld


class MetaWorldML1Env(gym.Env):
    """One Meta-World skill (``env_name``, e.g. ``reach-v3``) as an rlmaml task family.

    Tasks are ``{"rand_vec": [floats]}``; ``task_features`` returns the same vector (the oracle's view).
    """

    parallel_rollouts = True  # simulation dominates: workers step one env per trajectory

    def __init__(self, env_name: str = "reach-v3"):
        metaworld = _metaworld()
        classes = metaworld.env_dict.ALL_V3_ENVIRONMENTS
        if env_name not in classes:
            raise EnvMakeError(f"unknown Meta-World skill {env_name!r}; choose from {', '.join(sorted(classes))}")
        self.env_name = env_name
        self._cls = classes[env_name]
        self._task_kwargs = {k: v for k, v in metaworld.env_dict.ML1_ARGS_KWARGS[env_name]["kwargs"].items()
                             if k != "task_id"}
        self._env = self._cls()
        self.observation_space = self._env.observation_space
        self.action_space = self._env.action_space
        self._sampler_env: Any = None
        probe = self.sample_tasks(1, np.random.default_rng(0))[0]
        self.set_task(probe)

    # --- task protocol -------------------------------------------------------------------
    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        if self._sampler_env is None:
            self._sampler_env = self._cls()
            self._sampler_env._set_task_called = True
            self._sampler_env._freeze_rand_vec = False
            self._sampler_env.seeded_rand_vec = True  # draw from the env's np_random, which we seed below
        tasks = []
        for _ in range(num_tasks):
            self._sampler_env._np_random = np.random.Generator(np.random.PCG64(int(rng.integers(2**63))))
            self._sampler_env.reset()
            tasks.append({"rand_vec": [float(v) for v in self._sampler_env._last_rand_vec]})
        return tasks

    def set_task(self, task: dict[str, Any]) -> None:
        data = {**self._task_kwargs, "rand_vec": np.asarray(task["rand_vec"], dtype=np.float64),
                "env_cls": self._cls, "partially_observable": True}
        self._env.set_task(_metaworld().types.Task(env_name=self.env_name, data=pickle.dumps(data)))

    def get_task(self) -> dict[str, Any]:
        return {"rand_vec": [float(v) for v in self._env._last_rand_vec]}

    def task_features(self, task: dict[str, Any]) -> list[float]:
        return [float(v) for v in task["rand_vec"]]

    # --- Gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.seed(seed)  # Meta-World ignores reset(seed=...)
        return self._env.reset()

    def step(self, action):
        return self._env.step(action)

    def close(self) -> None:
        self._env.close()
        if self._sampler_env is not None:
            self._sampler_env.close()
