"""Test-time step sizes chosen on validation tasks, then one evaluation of every run on its test tasks.

For every run and checkpoint, each schedule "first step A, later steps A * F" of a grid is evaluated
on validation tasks (drawn from the first run's seed; never training or test tasks); the schedule
with the best mean return after ``select_step`` steps is kept with its checkpoint (ties go to the
better sum over the later steps). Every run is then evaluated once on the first run's recorded test
tasks with its choice (an oracle: final iterate, without adaptation).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Sequence

from tqdm.auto import tqdm

from rlmaml.config import ConfigError, load_config
from rlmaml.evaluation import (
    EvalSettings,
    evaluate_checkpoint,
    evaluation_inner_update,
    evaluation_record,
    evaluation_tasks,
)
from rlmaml.runs import RunDir
from rlmaml.sampling import TaskSampler


@dataclass(frozen=True)
class SweepGrid:
    """The schedules and checkpoints to choose from, and how to choose."""

    first: tuple[float, ...] = (0.05, 0.1, 0.2)
    """First step sizes."""
    factors: tuple[float, ...] = (1.0, 0.5, 0.3, 0.25, 0.2, 0.1)
    """Later steps' size as a fraction of the first."""
    checkpoints: str = "final"
    """Comma-separated checkpoints (final, best, N), or ``all``: the final iterate and every snapshot."""
    select_step: int = 2
    """Choose by the validation return after this many steps."""
    validation_traj: int = 20
    """Trajectories per task and step on the validation tasks."""

    def __post_init__(self) -> None:
        if not self.first or not self.factors or min(self.first + self.factors) <= 0:
            raise ConfigError("--first and --factors must be positive step sizes and fractions")
        if self.validation_traj < 1:
            raise ConfigError("--validation-traj must be >= 1")


def checkpoints_of(run: RunDir, wanted: str) -> list[str]:
    """``all``: the final iterate and every kept snapshot; otherwise the comma-separated names."""
    if wanted != "all":
        return [name.strip() for name in wanted.split(",") if name.strip()]
    return ["final"] + [str(iteration) for iteration in run.snapshot_iterations()]


def check_sweep(runs: Sequence[RunDir], settings: EvalSettings, grid: SweepGrid) -> None:
    """Raise ``ConfigError`` before any evaluation if the sweep cannot run as asked."""
    if not runs:
        raise ConfigError("give at least one run folder to sweep")
    if not 0 <= grid.select_step <= settings.num_steps:
        raise ConfigError(f"--select-step must be between 0 and --num-steps ({settings.num_steps}), "
                          f"got {grid.select_step}")
    for run in runs:
        run.require("config", "test_tasks", "checkpoint")
        evaluation_inner_update(load_config(run.config), settings, run.path)
        for which in checkpoints_of(run, grid.checkpoints):
            run.checkpoint_for(which)


def sweep(runs: Sequence[RunDir], oracle: RunDir | None, settings: EvalSettings, grid: SweepGrid,
          progress: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Choose each run's schedule and checkpoint on validation tasks, then evaluate on the test tasks
    with ``settings.num_traj`` trajectories. Returns the evaluation record (as ``rlmaml evaluate``
    writes it, with ``selection``: each run's choice) and the validation grid, one row per run,
    checkpoint and schedule (returns after 0..K steps)."""
    check_sweep(runs, settings, grid)
    first_config = load_config(runs[0].config)
    validation = evaluation_tasks(runs[0], "validation")
    validation_settings = dataclasses.replace(settings, num_traj=grid.validation_traj)
    names = {run: ["final"] if load_config(run.config).method == "random" else checkpoints_of(run, grid.checkpoints)
             for run in runs}  # a random run has only its initial policy
    total = sum(len(names[run]) for run in runs) * len(grid.first) * len(grid.factors)
    rows: list[dict[str, Any]] = []
    chosen: dict[RunDir, tuple[str, float, float]] = {}
    with tqdm(total=total, desc="validation grid", unit="evaluation", disable=not progress) as bar:
        for run in runs:
            best: tuple[tuple[float, float], str, float, float] | None = None
            with TaskSampler.for_config(load_config(run.config)) as sampler:  # one sampler for the run's grid
                for which, first, factor in itertools.product(names[run], grid.first, grid.factors):
                    step_settings = dataclasses.replace(validation_settings, inner_lr=first, later_factor=factor)
                    result = evaluate_checkpoint(run, which, step_settings, validation, first_config.seed, sampler)
                    means = [row["mean"] for row in result["summary"]]
                    score = (means[grid.select_step], sum(means[grid.select_step:]))  # ties: later steps decide
                    rows.append({"run": str(run.path), "checkpoint": which, "iteration": result["iteration"],
                                 "first_step_size": first, "later_factor": factor,
                                 **{f"return_{row['step']}": round(row["mean"], 3) for row in result["summary"]}})
                    if best is None or score > best[0]:
                        best = (score, which, first, factor)
                    bar.update()
            assert best is not None
            chosen[run] = best[1:]
    tasks = evaluation_tasks(runs[0])
    results = []
    for run in runs:
        which, first, factor = chosen[run]
        test_settings = dataclasses.replace(settings, inner_lr=first, later_factor=factor)
        results.append(evaluate_checkpoint(run, which, test_settings, tasks, first_config.seed))
    if oracle is not None:  # told the task: evaluated without adaptation
        results.append(evaluate_checkpoint(oracle, "final", settings, tasks, first_config.seed))
    record = evaluation_record(first_config, "test", runs[0], tasks, settings.num_traj, first_config.seed, results)
    record["selection"] = {str(run.path): {"checkpoint": which, "first": first, "later_factor": factor}
                           for run, (which, first, factor) in chosen.items()}
    return record, rows
