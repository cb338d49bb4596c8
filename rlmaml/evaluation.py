"""Adaptation curves: return (and success rate) after 0, 1, ..., K inner steps on held-out tasks."""

from __future__ import annotations

import dataclasses
import math
import typing
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from rlmaml.adaptation import InnerUpdate, sample_adaptation_batches
from rlmaml.budget import batch_bytes, require_memory
from rlmaml.checkpoints import load_checkpoint, restore_policy
from rlmaml.config import (
    METHOD_LABELS,
    AdvantageConfig,
    ConfigError,
    InnerConfig,
    StepRuleName,
    TaskSet,
    TrainConfig,
    load_config,
)
from rlmaml.distributed import Ranks
from rlmaml.policy import GaussianMLPPolicy, make_policy
from rlmaml.rollout import TaskEnvs
from rlmaml.runs import RunDir, RunError, json_text, read_test_tasks
from rlmaml.sampling import TaskSampler
from rlmaml.seeding import evaluation_streams, validation_task_rng
from rlmaml.tasks import Task, TaskProtocolError


def step_sizes(inner_lr: float, num_steps: int, later_factor: float = 0.5) -> list[float]:
    """The paper's test-time schedule: ``inner_lr`` for the first step, ``inner_lr * later_factor`` after."""
    return [inner_lr if k == 0 else inner_lr * later_factor for k in range(num_steps)]


def adaptation_curves(policy: GaussianMLPPolicy, sampler: TaskSampler, tasks: Sequence[Task], num_traj: int,
                      inner: InnerUpdate, advantages: AdvantageConfig, generator: torch.Generator,
                      seed_rng: np.random.Generator, ranks: Ranks = Ranks()) -> tuple[Tensor, Tensor | None]:
    """Per-task mean return and success rate after each number of inner steps, each
    [len(inner.lrs) + 1, N] (success is ``None`` for envs that do not report it). With several ranks,
    each adapts on its share of the tasks and every rank gets all of them.

    Row 0 is the trajectories used for the first adaptation; row k NEW trajectories of the k-times
    adapted policy.
    """
    batches, _ = sample_adaptation_batches(sampler, policy, tasks, num_traj, inner, advantages, generator, seed_rng,
                                           ranks.share(len(tasks)))
    returns = torch.stack([batch.episode_returns().mean(dim=1) for batch in batches])
    success = [batch.success.mean(dim=1) for batch in batches if batch.success is not None]
    success_rates = torch.stack(success) if success else None
    if ranks.size == 1:
        return returns, success_rates
    shares = ranks.gather((returns, success_rates))
    gathered = torch.cat([share for share, _ in shares], dim=1)
    return gathered, None if success_rates is None else torch.cat([share for _, share in shares], dim=1)


def summarize(values: Tensor) -> list[dict[str, float]]:
    """Mean and standard error over tasks for each step; ``values`` [K + 1, N]."""
    num_tasks = values.shape[1]
    rows = []
    for step, per_task in enumerate(values.double()):
        stderr = float(per_task.std(unbiased=True)) / math.sqrt(num_tasks) if num_tasks > 1 else float("nan")
        rows.append({"step": step, "mean": float(per_task.mean()), "stderr": stderr})
    return rows


def paired_differences(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first result's return minus each other result's, paired over tasks, after each number of steps.

    The results of one evaluation share tasks and seed, so the per-task difference is free of the
    spread between tasks that each result's own standard error carries. A result without inner
    steps (the oracle) is one level, compared with every step of the other; otherwise only the
    steps both have are compared.

    Args:
        results: :func:`evaluate_checkpoint` results on the same tasks; ``per_task`` is [N][K+1].

    Returns:
        One entry per result after the first: its ``label`` and ``summary`` (mean and standard
        error over tasks of the difference, per step, as :func:`summarize`).
    """
    first = torch.tensor(results[0]["per_task"], dtype=torch.float64).T  # [K+1, N]
    differences = []
    for other in results[1:]:
        values = torch.tensor(other["per_task"], dtype=torch.float64).T
        lengths = (len(first), len(values))
        count = max(lengths) if min(lengths) == 1 else min(lengths)
        difference = _over_steps(first, count) - _over_steps(values, count)
        differences.append({"label": other["label"], "summary": summarize(difference)})
    return differences


def _over_steps(values: Tensor, count: int) -> Tensor:
    """``values`` [K+1, N] over ``count`` steps: a single step (no adaptation) repeated, else the first ``count``."""
    return values.expand(count, -1) if len(values) == 1 else values[:count]


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate: K inner steps, M trajectories per task and step, the step-size schedule
    (``inner_lr`` defaults to each run's own), the step rule and its target return (by default each
    run's own ``inner.step_rule`` and ``inner.target_return``), and the seed (default: the first run's)."""

    num_steps: int = 3
    num_traj: int = 40
    inner_lr: float | None = None
    later_factor: float = 0.5
    seed: int | None = None
    step_rule: StepRuleName | None = None
    target_return: float | None = None

    def __post_init__(self) -> None:
        if self.num_steps < 0 or self.num_traj < 1:
            raise ConfigError("--num-steps must be >= 0 and --num-traj >= 1")
        if self.target_return is not None and not math.isfinite(self.target_return):
            raise ConfigError(f"--target-return must be a finite number, got {self.target_return!r}")
        if self.step_rule is not None:  # the rule's choices, and whether it takes a target, are InnerConfig's
            target = InnerConfig().target_return if self.target_return is None else self.target_return
            try:
                InnerConfig(step_rule=self.step_rule, target_return=target)
            except ConfigError as error:
                given = "" if self.target_return is None else f" --target-return {self.target_return:g}"
                raise ConfigError(f"--step-rule {self.step_rule}{given}: {error}") from None
        for flag, value in (("--inner-lr", self.inner_lr), ("--later-lr-factor", self.later_factor)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{flag} must be a positive finite number, got {value!r}")


def evaluation_inner_update(config: TrainConfig, settings: EvalSettings, path: Path) -> InnerUpdate:
    """The inner update the run at ``path`` is evaluated with: the paper's test-time schedule of
    ``settings.num_steps`` steps (none for an oracle, which is told the task), and the run's own
    objective, step rule and target return unless ``settings`` gives others. A target return that the
    step rule does not take is a ``ConfigError`` naming the run."""
    if config.method == "oracle":
        return InnerUpdate.from_config(config.inner, [])
    lrs = step_sizes(config.inner.lr if settings.inner_lr is None else settings.inner_lr, settings.num_steps,
                     settings.later_factor)
    step_rule = config.inner.step_rule if settings.step_rule is None else settings.step_rule
    target_return = settings.target_return
    if target_return is None:  # the run's target goes with the run's rule; another rule takes its default
        own_rule = step_rule == config.inner.step_rule
        target_return = config.inner.target_return if own_rule else InnerConfig().target_return
    try:
        inner = dataclasses.replace(config.inner, step_rule=step_rule, target_return=target_return)
    except ConfigError as error:
        raise ConfigError(f"{path} (inner.step_rule {config.inner.step_rule}): {error}; "
                          "give --step-rule with --target-return") from None
    return InnerUpdate.from_config(inner, lrs)


def evaluation_tasks(run: RunDir, task_set: str = "test", num_tasks: int | None = None) -> list[Task]:
    """The run's recorded held-out test tasks, or as many validation tasks drawn from its seed."""
    run.require("config", "test_tasks")
    recorded = read_test_tasks(run)
    if num_tasks is not None and not 1 <= num_tasks <= len(recorded):
        raise ConfigError(f"--num-tasks must be between 1 and {len(recorded)} (the recorded held-out tasks)")
    count = len(recorded) if num_tasks is None else num_tasks
    if task_set == "test":
        return recorded[:count]
    if task_set == "validation":
        config = load_config(run.config)
        envs = TaskEnvs(config.task.env_id, config.task.horizon, config.task.env_kwargs)
        return envs.sample_tasks(count, validation_task_rng(config.seed))
    raise ConfigError(f"--task-set must be one of {', '.join(typing.get_args(TaskSet))}, got {task_set!r}")


def checkpoint_label(config: TrainConfig, which: str, iteration: int) -> str:
    """E.g. ``MAML (final, it. 300)``, ``MAML-LVC (final, it. 300)`` (``inner_objective="lvc"``),
    ``MAML-LVC (<rule>, final, it. 450)`` (trained with an ``inner.step_rule`` other than ``fixed``),
    ``pretrained (best, it. 212)``, ``oracle (it. 100)``."""
    name = METHOD_LABELS.get(config.method, config.method)
    if config.method == "random":
        return name
    details: list[str] = []
    if config.method == "maml":
        if config.inner.objective != InnerConfig().objective:
            name = f"{name}-{config.inner.objective.upper()}"
        if config.inner.step_rule != InnerConfig().step_rule:
            details.append(config.inner.step_rule)
    if which in ("final", "best"):
        details.append(which)
    return f"{name} ({', '.join(details + [f'it. {iteration}'])})"


def existing_checkpoint(run: RunDir, which: str) -> Path:
    """The file of checkpoint ``which`` (``final``, ``best`` or an iteration); ``RunError`` if the
    run has none."""
    path = run.checkpoint_for(which)
    if not path.is_file():
        message = f"{run.path} has no {path.relative_to(run.path)}"
        if which.isdigit():
            kept = run.snapshot_iterations()
            message += (f"; its snapshots are of iterations {', '.join(map(str, kept))}" if kept else
                         "; it kept no snapshots (train with --set snapshot_every=N to keep them)")
        raise RunError(message)
    return path


def evaluate_checkpoint(run: RunDir, which: str, settings: EvalSettings, tasks: Sequence[Task], seed: int,
                        sampler: TaskSampler | None = None, ranks: Ranks = Ranks()) -> dict[str, Any]:
    """Adaptation curve of one checkpoint of a run on ``tasks`` (an oracle run: its return before
    adaptation only).

    Args:
        which: ``final``, ``best`` or an iteration number kept with ``snapshot_every``.
        sampler: the run's :class:`TaskSampler` (``TaskSampler.for_config``), to evaluate several
            checkpoints with one; without it one is made and its rollout workers stopped afterwards.
        ranks: with several, each adapts on its share of the tasks (:func:`adaptation_curves`).

    Returns:
        A JSON-ready dict: ``label``, ``method``, ``summary`` (mean and standard error of the return
        per step), ``per_task`` [N][K+1] returns, the same for the success rate when the env
        reports it, and the settings used.
    """
    run.require("config", "checkpoint")
    config = load_config(run.config)
    path = existing_checkpoint(run, which)
    state = load_checkpoint(path)
    inner = evaluation_inner_update(config, settings, run.path)
    generator, seed_rng = evaluation_streams(seed)
    # a borrowed sampler stays open for the caller's next checkpoint; an own one is closed here
    with (nullcontext(sampler) if sampler is not None else TaskSampler.for_config(config)) as sampler:
        policy = make_policy(config.policy, sampler.obs_dim, sampler.act_dim)
        restore_policy(policy, state, path)
        returns, success = adaptation_curves(policy, sampler, tasks, settings.num_traj, inner, config.advantages,
                                             generator, seed_rng, ranks)
    broken = [i for i, ok in enumerate(torch.isfinite(returns).all(0).tolist()) if not ok]
    if broken:
        shown = ", ".join(f"task {i} {json_text(tasks[i])}" for i in broken[:3])
        raise TaskProtocolError(f"{config.task.env_id} gave non-finite rewards for {len(broken)} of the {len(tasks)} "
                                f"tasks evaluating {run.path} ({shown}{', ...' if len(broken) > 3 else ''}): "
                                "check the env (`rlmaml check-env`)")
    if inner.lrs:
        inner.step_rule.check_can_move(returns[0])
    result = {"label": checkpoint_label(config, which, state["iteration"]), "method": config.method,
              "run": str(run.path), "env_id": config.task.env_id, "checkpoint": which,
              "iteration": state["iteration"], "seed": seed, "num_traj": settings.num_traj,
              "step_sizes": list(inner.lrs), "summary": summarize(returns), "per_task": returns.T.tolist()}
    if inner.lrs:
        result.update(inner.step_rule.record())
    if success is not None:
        result.update(success_summary=summarize(success), per_task_success=success.T.tolist())
    return result


def require_evaluable(runs: Sequence[RunDir]) -> None:
    """Raise ``RunError`` unless every run folder holds the config, held-out tasks and checkpoint."""
    for run in runs:
        run.require("config", "test_tasks", "checkpoint")


def evaluate_runs(runs: Sequence[RunDir], checkpoints: Sequence[str], settings: EvalSettings,
                  task_set: str = "test", num_tasks: int | None = None, progress: bool = True,
                  ranks: Ranks = Ranks()) -> dict[str, Any]:
    """Evaluate every requested checkpoint of every run on the SAME tasks (the first run's) with the
    same seed, so methods are compared on identical tasks and evaluation noise. Every checkpoint is
    looked up before the first is evaluated; ``progress`` shows a bar over the checkpoints.

    A ``random`` run has only its initial policy; it is evaluated once whatever ``checkpoints`` says.
    With several ranks, each adapts on its share of the tasks; every rank returns the whole evaluation.
    """
    if not runs:
        raise ConfigError("give at least one run folder")
    require_evaluable(runs)
    configs = {run: load_config(run.config) for run in runs}
    first = configs[runs[0]]
    for run in runs[1:]:
        other = configs[run]
        mine, theirs = other.task, first.task
        if (mine.env_id, mine.env_kwargs) != (theirs.env_id, theirs.env_kwargs):
            raise ConfigError(f"{run.path} trains {mine.env_id} {mine.env_kwargs or ''}, but {runs[0].path} "
                              f"trains {theirs.env_id} {theirs.env_kwargs or ''}: compare runs of one task family")
        if mine.horizon != theirs.horizon:  # returns are sums over the horizon: not comparable
            raise ConfigError(f"{run.path} has horizon {mine.horizon}, but {runs[0].path} has {theirs.horizon}: "
                              "compare runs with one horizon")
    tasks = evaluation_tasks(runs[0], task_set, num_tasks)
    seed = first.seed if settings.seed is None else settings.seed
    wanted = {}
    for run in runs:
        wanted[run] = ["final"] if configs[run].method == "random" else list(checkpoints)
        for which in wanted[run]:
            existing_checkpoint(run, which)
        evaluation_inner_update(configs[run], settings, run.path)
    envs = TaskEnvs(first.task.env_id, first.task.horizon, first.task.env_kwargs)  # fails before the bar shows
    require_memory(batch_bytes(len(tasks), settings.num_traj, envs.horizon, settings.num_steps + 1, envs.obs_dim,
                               envs.act_dim, max((configs[run].policy.hidden_sizes for run in runs), key=sum)),
                   f"evaluating {len(tasks)} tasks x {settings.num_traj} trajectories x {envs.horizon} steps")
    results = []
    with tqdm(total=sum(map(len, wanted.values())), desc="evaluating", unit="checkpoint",
              disable=not (progress and ranks.main)) as bar:
        for run, whiches in wanted.items():
            with TaskSampler.for_config(configs[run]) as sampler:  # one sampler for all its checkpoints
                for which in whiches:
                    bar.set_postfix_str(f"{run.path.name}: {which}")
                    results.append(evaluate_checkpoint(run, which, settings, tasks, seed, sampler, ranks))
                    bar.update()
    return evaluation_record(first, task_set, runs[0], tasks, settings.num_traj, seed, results)


def evaluation_record(config: TrainConfig, task_set: str, tasks_from: RunDir, tasks: Sequence[Task], num_traj: int,
                      seed: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The evaluation as ``evaluation.json`` stores it: the family (from ``config``), the task set
    and whose tasks, the settings, ``results`` (one per checkpoint, their labels made unique), the
    tasks themselves (so that the evaluation can be paired with another after the run folder is
    gone) and, with more than one result, ``paired``: the first result minus each other, paired over
    tasks (:func:`paired_differences`)."""
    name_runs_in_shared_labels(results)
    return with_paired_differences({"env_id": config.task.env_id, "env_kwargs": config.task.env_kwargs,
                                    "task_set": task_set,
                                    "tasks_from": str(tasks_from.path), "num_tasks": len(tasks), "num_traj": num_traj,
                                    "seed": seed, "results": results, "tasks": list(tasks)})


def with_paired_differences(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with, when it holds more than one result, ``paired``: the first result's label
    (``reference``) and the first minus each other, paired over tasks (:func:`paired_differences`)."""
    results = record["results"]
    if len(results) > 1:
        record["paired"] = {"reference": results[0]["label"], "differences": paired_differences(results)}
    return record


def name_runs_in_shared_labels(results: list[dict[str, Any]]) -> None:
    """Append the run folder's name to every label that more than one run's result carries (two
    MAML runs, say), so that tables and legends tell them apart."""
    runs_by_label: dict[str, set[str]] = {}
    for result in results:
        runs_by_label.setdefault(result["label"], set()).add(result["run"])
    for result in results:
        runs = runs_by_label[result["label"]]
        if len(runs) > 1:
            names_differ = len({Path(run).name for run in runs}) == len(runs)
            result["label"] = f"{result['label']} [{Path(result['run']).name if names_differ else result['run']}]"
