"""``rlmaml check-env``: does an env follow Gymnasium's API and the rlmaml task protocol?

Each check gives a verdict (pass, warn, fail, skip) and a one-line reason. Checks that need
something an earlier check found broken are skipped rather than failing with a traceback.
"""

from __future__ import annotations

import json
import re
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

from rlmaml.tasks import (
    EnvMakeError,
    Task,
    TaskEnv,
    TaskProtocolError,
    checked_tasks,
    make_env,
    task_env,
    task_features,
)

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"


@dataclass(frozen=True)
class CheckResult:
    """Verdict of one check: ``status`` is pass, warn, fail or skip; ``detail`` is one line."""

    name: str
    status: str
    detail: str


class CheckFailed(Exception):
    """Raised by a check with the one-line reason it failed."""


class CheckWarning(Exception):
    """Raised by a check that passed with a caveat."""


class CheckSkipped(Exception):
    """Raised by an optional check that does not apply to this env."""


def _one_line(text: str) -> str:
    """First line of ``text`` without ANSI colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
    return text.splitlines()[0] if text else ""


def _canonical(value: Any) -> str:
    """A comparable text form of tasks or observations (numpy arrays become lists)."""
    def to_plain(obj: Any) -> Any:
        if isinstance(obj, (np.ndarray, np.generic)):
            return obj.tolist()
        return repr(obj)
    return json.dumps(value, sort_keys=True, default=to_plain)


@dataclass
class _Context:
    env_id: str
    env_kwargs: dict[str, Any]
    seed: int
    num_tasks: int
    env: gym.Env | None = None
    family: TaskEnv | None = None
    tasks: list[Task] = field(default_factory=list)


def _check_make(ctx: _Context) -> str:
    try:
        ctx.env = make_env(ctx.env_id, **ctx.env_kwargs)
    except EnvMakeError as error:
        raise CheckFailed(str(error)) from None
    horizon = ctx.env.spec.max_episode_steps if ctx.env.spec is not None else None
    if horizon is None:
        raise CheckWarning(f"made {type(ctx.env.unwrapped).__name__}, but it has no max_episode_steps: "
                           "register one or give --horizon when training")
    return f"made {type(ctx.env.unwrapped).__name__}, horizon {horizon}"


def _check_spaces(ctx: _Context) -> str:
    assert ctx.env is not None
    for kind, space in (("observation", ctx.env.observation_space), ("action", ctx.env.action_space)):
        if not isinstance(space, gym.spaces.Box):
            raise CheckFailed(f"rlmaml needs a Box {kind} space (Gaussian policy), got {space}")
    return f"Box observations {ctx.env.observation_space.shape}, Box actions {ctx.env.action_space.shape}"


def _check_gymnasium(ctx: _Context) -> str:
    assert ctx.env is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(ctx.env.unwrapped, skip_render_check=True)
    messages = sorted({_one_line(str(w.message)).removeprefix("WARN: ") for w in caught})
    if messages:
        return f"passed with {len(messages)} Gymnasium warning(s), e.g. {messages[0]!r}"
    return "passed gymnasium.utils.env_checker.check_env"


def _check_protocol(ctx: _Context) -> str:
    assert ctx.env is not None
    ctx.family = task_env(ctx.env)
    return "has sample_tasks, set_task and get_task"


def _sample(ctx: _Context, seed: int) -> Any:
    assert ctx.family is not None
    return ctx.family.sample_tasks(ctx.num_tasks, np.random.default_rng(seed))


def _check_sample_tasks(ctx: _Context) -> str:
    tasks = _sample(ctx, ctx.seed)
    if not isinstance(tasks, list) or len(tasks) != ctx.num_tasks or not all(isinstance(t, dict) for t in tasks):
        raise CheckFailed(f"sample_tasks({ctx.num_tasks}, rng) must return a list of {ctx.num_tasks} dicts, "
                          f"got {_one_line(repr(tasks))[:80]}")
    saved = np.random.get_state()
    try:
        np.random.seed(1)
        first = _sample(ctx, ctx.seed)
        global_after = np.random.random()
        np.random.seed(1)
        untouched = np.random.random()
        np.random.seed(2)
        second = _sample(ctx, ctx.seed)
    finally:
        np.random.set_state(saved)
    if _canonical(first) != _canonical(second):
        raise CheckFailed("two Generators with the same seed gave different tasks: draw only from the rng argument")
    if global_after != untouched:
        raise CheckFailed("sample_tasks draws from the global numpy RNG: draw only from the rng argument")
    if _canonical(_sample(ctx, ctx.seed + 1)) == _canonical(tasks):
        raise CheckFailed("Generators with different seeds gave identical tasks")
    ctx.tasks = tasks
    return f"reproducible from the Generator, e.g. {_canonical(tasks[0])[:60]}"


def _check_json(ctx: _Context) -> str:
    assert ctx.family is not None and ctx.tasks
    checked_tasks(ctx.tasks, ctx.num_tasks, ctx.env_id)
    for task in ctx.tasks:
        loaded = json.loads(json.dumps(task))
        ctx.family.set_task(loaded)
        got = ctx.family.get_task()
        if _canonical(got) != _canonical(loaded):
            raise CheckFailed(f"get_task() returned {_canonical(got)[:60]} after set_task({_canonical(loaded)[:60]})")
    return "tasks survive JSON (the run folder's test_tasks.json) and set_task -> get_task"


def _random_action(space: gym.spaces.Box, rng: np.random.Generator) -> np.ndarray:
    """An action uniform in [-1, 1] per dimension, clipped to the action box, in its dtype."""
    return np.clip(rng.uniform(-1, 1, size=space.shape), space.low, space.high).astype(space.dtype)


def _trace(ctx: _Context, task: Task, steps: int) -> str:
    """Observations and rewards of ``steps`` steps of ``task`` with a fixed seed and fixed actions."""
    assert ctx.env is not None and ctx.family is not None
    ctx.family.set_task(task)
    obs, _ = ctx.env.reset(seed=ctx.seed)
    space = typing.cast(gym.spaces.Box, ctx.env.action_space)
    rng = np.random.default_rng(ctx.seed)
    trace = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = ctx.env.step(_random_action(space, rng))
        trace.append((obs, reward))
        if terminated or truncated:
            break
    return _canonical(trace)


def _check_task_matters(ctx: _Context) -> str:
    assert ctx.tasks
    steps = 50
    reference = _trace(ctx, ctx.tasks[0], steps)
    for task in ctx.tasks[1:]:
        if _trace(ctx, task, steps) != reference:
            return "different tasks give different rewards or observations (same seed, same actions)"
    raise CheckFailed(f"set_task changed neither rewards nor observations: {len(ctx.tasks)} tasks gave the same "
                      f"{steps}-step rollout for the same seed and actions")


def _check_batched(ctx: _Context) -> str:
    assert ctx.env is not None and ctx.family is not None and ctx.tasks
    make_batched = getattr(ctx.family, "batched_env", None)
    if not callable(make_batched):
        raise CheckSkipped("no batched_env hook: rollouts use one Gymnasium env per trajectory")
    tasks, copies, steps = ctx.tasks[:3], 2, 20
    batched = make_batched(tasks, copies)
    singles = [make_env(ctx.env_id, **ctx.env_kwargs) for _ in range(len(tasks) * copies)]
    seeds = list(range(ctx.seed, ctx.seed + len(singles)))
    expected = []
    for i, (env, seed) in enumerate(zip(singles, seeds)):
        task_env(env).set_task(tasks[i // copies])
        expected.append(env.reset(seed=seed)[0])
    if not np.allclose(batched.reset(seeds), np.stack(expected), atol=1e-5):
        raise CheckFailed("batched_env(...).reset gives other observations than the single envs")
    rng = np.random.default_rng(ctx.seed)
    alive = np.ones(len(singles), dtype=bool)
    for t in range(steps):
        shape = typing.cast(gym.spaces.Box, ctx.env.action_space).shape
        actions = rng.uniform(-1, 1, size=(len(singles), *shape)).astype(np.float32)
        obs, reward, terminated, _ = batched.step(actions)
        for i in np.flatnonzero(alive).tolist():
            s_obs, s_reward, s_terminated, s_truncated, _ = singles[i].step(actions[i])
            if not (np.allclose(obs[i], s_obs, atol=1e-5) and np.isclose(reward[i], float(s_reward), atol=1e-5)
                    and bool(terminated[i]) == s_terminated):
                raise CheckFailed(f"batched_env differs from the single env for sub-env {i} at step {t}")
            alive[i] = not (s_terminated or s_truncated)
    return f"batched_env matches the single envs ({len(singles)} sub-envs, {steps} steps)"


def _check_episodes(ctx: _Context) -> str:
    """Whole episodes of a few tasks with random actions: the observation keeps the space's shape at
    every step (a failure), and observations and rewards are finite (a warning: training drops such
    tasks, but a family that produces them is likely broken)."""
    assert ctx.env is not None and ctx.family is not None and ctx.tasks
    space = typing.cast(gym.spaces.Box, ctx.env.action_space)
    shape = typing.cast(gym.spaces.Box, ctx.env.observation_space).shape
    horizon = ctx.env.spec.max_episode_steps if ctx.env.spec is not None and ctx.env.spec.max_episode_steps else 200
    rng = np.random.default_rng(ctx.seed)
    steps, non_finite = 0, []
    for task in ctx.tasks[:3]:
        ctx.family.set_task(task)
        obs, _ = ctx.env.reset(seed=ctx.seed)
        for t in range(horizon):
            if np.shape(obs) != shape:
                raise CheckFailed(f"an observation has shape {list(np.shape(obs))} at step {t} of task "
                                  f"{json.dumps(task)}; the observation space's is {list(shape)}")
            obs, reward, terminated, truncated, _ = ctx.env.step(_random_action(space, rng))
            steps += 1
            if not (np.isfinite(np.asarray(obs, dtype=np.float64)).all() and np.isfinite(float(reward))):
                non_finite.append(f"step {t + 1} of task {json.dumps(task)}")
            if terminated or truncated:
                break
    if non_finite:
        raise CheckWarning(f"non-finite observations or rewards at {non_finite[0]} ({len(non_finite)} steps of "
                           f"{steps}); training drops such tasks from its meta-batches")
    return f"{steps} steps of {min(3, len(ctx.tasks))} tasks keep the observation shape, all values finite"


def _check_features(ctx: _Context) -> str:
    assert ctx.family is not None and ctx.tasks
    if not callable(getattr(ctx.family, "task_features", None)):
        raise CheckSkipped("no task_features: the oracle baseline is unavailable for this family")
    features = task_features(ctx.family, ctx.tasks, ctx.env_id)
    if len(np.unique(features, axis=0)) < 2:
        raise CheckFailed("task_features gives the same vector for every task")
    return f"{features.shape[1]} feature(s) per task for the oracle"


# (name, check, names of earlier checks that must have passed)
CHECKS: list[tuple[str, Callable[[_Context], str], tuple[str, ...]]] = [
    ("make", _check_make, ()),
    ("spaces", _check_spaces, ("make",)),
    ("gymnasium checker", _check_gymnasium, ("make",)),
    ("task protocol", _check_protocol, ("make",)),
    ("sample_tasks", _check_sample_tasks, ("task protocol",)),
    ("JSON round trip", _check_json, ("sample_tasks",)),
    ("set_task matters", _check_task_matters, ("JSON round trip", "gymnasium checker", "spaces")),
    ("episodes", _check_episodes, ("JSON round trip", "gymnasium checker", "spaces")),
    ("batched_env", _check_batched, ("JSON round trip", "gymnasium checker", "spaces")),
    ("task_features", _check_features, ("sample_tasks",)),
]


def run_checks(env_id: str, env_kwargs: dict[str, Any] | None = None, seed: int = 0,
               num_tasks: int = 8) -> list[CheckResult]:
    """Run every check on ``env_id`` (a registered id or ``module:id``) and return the verdicts."""
    ctx = _Context(env_id, dict(env_kwargs or {}), seed, num_tasks)
    passed: set[str] = set()
    results = []
    for name, check, needs in CHECKS:
        broken = [need for need in needs if need not in passed]
        if broken:
            results.append(CheckResult(name, SKIP, f"needs a passing {broken[0]!r} check"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the env's warnings would interleave with the verdicts
                results.append(CheckResult(name, PASS, check(ctx)))
            passed.add(name)
        except CheckWarning as caveat:
            results.append(CheckResult(name, WARN, str(caveat)))
            passed.add(name)
        except CheckSkipped as reason:
            results.append(CheckResult(name, SKIP, str(reason)))
        except (CheckFailed, TaskProtocolError) as reason:
            results.append(CheckResult(name, FAIL, str(reason)))
        except Exception as error:  # the env's own code raised: report it as this check's failure
            results.append(CheckResult(name, FAIL, f"{type(error).__name__}: {_one_line(str(error))}"))
    return results


def describe(env_id: str, results: list[CheckResult]) -> str:
    """The closing verdict line for ``results``."""
    failed = [r.name for r in results if r.status == FAIL]
    if failed:
        return f"{env_id} FAILS {len(failed)} of {len(results)} checks: {', '.join(failed)}"
    counts = {status: sum(r.status == status for r in results) for status in (PASS, WARN, SKIP)}
    return (f"{env_id} follows the task protocol ({counts[PASS]} passed, {counts[WARN]} with warnings, "
            f"{counts[SKIP]} optional skipped)")


__all__ = ["CHECKS", "CheckResult", "describe", "run_checks"]
