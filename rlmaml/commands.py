"""What each ``rlmaml`` subcommand does, once ``rlmaml.cli`` has parsed its arguments.

``train`` and ``evaluate`` import torch (and ``plot`` and ``evaluate`` matplotlib) inside the
functions that need them, so ``envs``, ``check-env`` and ``plot`` do not wait seconds for torch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from rlmaml.checks import FAIL, describe, run_checks
from rlmaml.config import DEFAULT_PRESET, ConfigError, load_config, read_config_file, resolve
from rlmaml.distributed import Ranks, join, launched_by_torchrun, leave
from rlmaml.errors import UserError
from rlmaml.flags import config_overrides
from rlmaml.memory import keep_freed_memory
from rlmaml.paper import paper_curves, paper_label
from rlmaml.plugins import load_plugins
from rlmaml.registry import Family
from rlmaml.runs import (
    EVALUATION_FILES,
    RunDir,
    RunError,
    RunWriteError,
    keep_previous_evaluation,
    make_output_dir,
    output_dir,
    read_metrics,
    write_file,
    write_json,
)
from rlmaml.tasks import EnvKwargsError
from rlmaml.training_summary import default_window, parse_window, summarize_training

if TYPE_CHECKING:
    from rlmaml.evaluation import EvalSettings


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_train(args: argparse.Namespace) -> int:
    from rlmaml.checkpoints import load_checkpoint
    from rlmaml.evaluation import EvalSettings
    from rlmaml.trainer import Trainer

    ranks: Ranks = args.ranks

    overrides = config_overrides(args)
    if args.resume_from is not None and args.resume is None:
        raise ConfigError("--resume-from N goes with --resume RUN_DIR")
    if args.resume is not None:
        if args.config or args.preset or args.run_dir or args.branch or set(overrides) - {"num_iterations"}:
            raise ConfigError("--resume continues a run with its saved config; only --num-iterations may change")
        try:
            trainer = Trainer.resume(args.resume, overrides.get("num_iterations"), args.resume_from, ranks)
        except RunWriteError as error:
            raise RunWriteError(f"{error}. Nothing was trained; once the cause is fixed, continue with: "
                                f"rlmaml train --resume {args.resume}") from None
        total = trainer.config.trained_iterations
        if trainer.iteration < total:
            print(f"Resuming {args.resume} at iteration {trainer.iteration} of {total}")
        else:
            print(f"{args.resume} has trained all {total} iterations (raise --num-iterations to train on)")
    elif args.branch is not None:
        from rlmaml.branches import branch_run, describe_changes

        if args.preset:
            raise ConfigError("--branch starts from the source run's config; change fields with flags, --set "
                              "or --config, not --preset")
        changes = {**(read_config_file(args.config) if args.config else {}), **overrides}
        run_dir = ranks.broadcast(args.run_dir or args.branch.parent /
                                  f"{args.branch.name}-branch-{time.strftime('%Y%m%d-%H%M%S')}")
        iteration, changed = ranks.broadcast(branch_run(args.branch, run_dir, changes) if ranks.main else None)
        trainer = Trainer.resume(run_dir, ranks=ranks)
        print(f"Branched {args.branch} at iteration {iteration} into {run_dir} ({describe_changes(changed)}); "
              f"training to {trainer.config.trained_iterations}")
    else:
        file_values = read_config_file(args.config) if args.config else {}
        config = resolve(args.preset, file_values, overrides)
        name = args.preset or DEFAULT_PRESET
        if config.method != "maml":
            name = f"{name}-{config.method}"
        run_dir = ranks.broadcast(args.run_dir or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            trainer = Trainer.create(config, run_dir, ranks)
        except EnvKwargsError as error:
            raise EnvKwargsError(f"{error} (task.env_kwargs come from the preset, then the config file, then "
                                 "--env-kwargs or --set; `--env-kwargs '{}'` clears them)") from None
        if config.method == "random":
            print(f"Random-initialisation baseline for {config.task.env_id}: nothing to train; run folder {run_dir}")
        else:
            what = "meta-training (MAML)" if config.method == "maml" else f"training the {config.method} baseline"
            steps = f", {len(config.inner_lrs)} inner step(s)" if config.method == "maml" else ""
            print(f"{config.task.env_id}: {what}, {config.num_iterations} iterations, {config.task.num_tasks} tasks "
                  f"x {config.task.num_traj} trajectories{steps}; run folder {run_dir}")
    run = trainer.run
    with trainer:  # its rollout workers and the run folder's lock are released before evaluating
        try:
            trainer.train(progress=not args.no_progress)
        except KeyboardInterrupt:
            if ranks.main:
                saved = load_checkpoint(run.checkpoint)["iteration"]  # what is on disk, whatever happened
                print(f"\nInterrupted; the checkpoint holds iteration {saved}. "
                      f"Continue with: rlmaml train --resume {run.path}", file=sys.stderr)
            return 130
        except UserError as error:  # a write, a worker, the env or a diverged loss: the run keeps its checkpoint
            stopped = (f"Training stopped at iteration {trainer.iteration}; the run keeps its last checkpoint. "
                       f"Once the cause is fixed, continue with: rlmaml train --resume {run.path}")
            multi_line = "\n" in str(error)  # a worker's traceback: the hint goes on a line of its own
            raise type(error)(f"{error}\n{stopped}" if multi_line else f"{error}. {stopped}") from None
    records = read_metrics(run.metrics) if ranks.main else []
    if records:
        last = records[-1]
        done = f"Done: {trainer.iteration} meta-iterations (the final checkpoint, it. {trainer.iteration}); the last one's"
        if trainer.config.method == "maml":
            print(f"{done} return {last['pre_return']:.2f} before adaptation, "
                  f"{last['post_return']:.2f} after {len(trainer.config.inner_lrs)} step(s).")
        else:
            print(f"{done} return {last['pre_return']:.2f} ({trainer.config.method} trains without adaptation).")
        dropped = [r.get("non_finite_tasks", 0) for r in records]
        if any(dropped):
            print(f"{sum(1 for count in dropped if count)} of {len(records)} meta-iterations dropped tasks whose "
                  f"rewards or observations were not finite ({sum(dropped)} tasks in all; non_finite_tasks in "
                  "metrics.jsonl): check the env", file=sys.stderr)
    if not args.no_evaluate:
        try:
            evaluate_and_report([run], ["final"], EvalSettings(num_steps=3, num_traj=trainer.config.task.num_traj),
                                run.path, progress=not args.no_progress, keep_previous=True, ranks=ranks)
        except KeyboardInterrupt:
            print(f"\nInterrupted during the closing evaluation; the trained run in {run.path} is complete. "
                  f"Evaluate it with: rlmaml evaluate {run.path}", file=sys.stderr)
            return 130
    if not ranks.main:
        return 0
    files = ", ".join(sorted(p.name for p in run.path.iterdir() if p.is_file() and not p.name.startswith(".")))
    print(f"Results in {run.path}/: {files}")
    print(f"Evaluate again with: rlmaml evaluate {run.path}")
    return 0


def _cell(row: dict[str, float], width: int, signed: bool = False) -> str:
    """``mean ± stderr`` (the mean with its sign when ``signed``); the mean alone where one task
    leaves no standard error."""
    mean = f"{row['mean']:+.2f}" if signed else f"{row['mean']:.2f}"
    if not math.isfinite(row["stderr"]):
        return mean.rjust(width)
    return f"{mean} ± {row['stderr']:.2f}".rjust(width)


def print_evaluation(evaluation: dict[str, Any]) -> None:
    """The evaluation as text tables: mean ± standard error over tasks after each number of steps, and
    the first result minus each other, paired over tasks."""
    from rlmaml.report import schedule_text

    results = evaluation["results"]
    print(f"{evaluation['env_id']}: {evaluation['num_tasks']} {evaluation['task_set']} tasks (of "
          f"{evaluation['tasks_from']}) x {evaluation['num_traj']} trajectories per step, seed {evaluation['seed']}")
    width = max(len(r["label"]) for r in results) + 2
    num_steps = max(len(r["summary"]) for r in results)
    for key, title, cell in (("summary", "return", 16), ("success_summary", "success rate", 12)):
        if not any(key in r for r in results):
            continue
        print(f"{title + ' after K steps':{width}s}" + "".join(f"  {f'K={k}':>{cell}s}" for k in range(num_steps))
              + "  step sizes")
        for r in results:
            if key in r:
                blanks = " " * (cell + 2) * (num_steps - len(r[key]))  # the oracle: one column
                print(f"{r['label']:{width}s}" + "".join(f"  {_cell(row, cell)}" for row in r[key]) + blanks
                      + "  " + (schedule_text(r) or "none"))
        if key == "summary" and "paper" in evaluation:
            for method, values in evaluation["paper"]["curves"].items():
                print(f"{paper_label(method):{width}s}" + "".join(f"  {value:>{cell}.1f}" for value in values))
            print(f"(paper: {evaluation['paper']['source']})")
    if "paired" in evaluation:
        print(f"\n{evaluation['paired']['reference']} minus each, paired over the {evaluation['num_tasks']} tasks")
        print(f"{'after K steps':{width}s}" + "".join(f"  {f'K={k}':>16s}" for k in range(num_steps)))
        for difference in evaluation["paired"]["differences"]:
            print(f"{difference['label']:{width}s}" + "".join(f"  {_cell(row, 16, signed=True)}"
                                                           for row in difference["summary"]))


def evaluate_and_report(runs: list[RunDir], checkpoints: list[str], settings: EvalSettings, out_dir: Path,
                        task_set: str = "test", num_tasks: int | None = None, progress: bool = True,
                        paper: dict[str, Any] | None = None, keep_previous: bool = False,
                        ranks: Ranks = Ranks()) -> dict[str, Any]:
    """Evaluate, print the tables, and write evaluation.json, .csv and .png to ``out_dir``; ``paper``
    (from :func:`rlmaml.paper.paper_curves`) adds the published curves to the table, JSON and figure.
    ``keep_previous`` first moves an evaluation already in ``out_dir`` to its previous-evaluations/.
    With several ranks, each adapts on its share of the tasks and rank 0 reports and writes."""
    from rlmaml.evaluation import evaluate_runs

    if not ranks.main:
        return evaluate_runs(runs, checkpoints, settings, task_set, num_tasks, progress, ranks)
    with output_dir(out_dir):  # made before the evaluation, which can take minutes; removed if it fails
        evaluation = evaluate_runs(runs, checkpoints, settings, task_set, num_tasks, progress, ranks)
    if paper is not None:
        evaluation["paper"] = paper
    kept = keep_previous_evaluation(out_dir) if keep_previous else None
    if kept is not None:
        print(f"Moved the previous evaluation to {kept}/")
    report_evaluation(evaluation, out_dir)
    print(f"Wrote {out_dir}/evaluation.json, evaluation.csv and evaluation.png")
    return evaluation


def report_evaluation(evaluation: dict[str, Any], out_dir: Path) -> None:
    """Print the evaluation's tables and write evaluation.json, .csv and .png to ``out_dir``."""
    from rlmaml.report import plot_adaptation, write_csv

    # the same names keep_previous_evaluation moves aside
    json_path, csv_path, png_path = (out_dir / name for name in EVALUATION_FILES)
    print_evaluation(evaluation)
    write_json(evaluation, json_path)
    write_csv(evaluation, csv_path)
    plot_adaptation(evaluation, png_path)


def _distinct_runs(paths: Sequence[Path]) -> list[RunDir]:
    """One RunDir per folder, in the order given, however often (or by whatever path) it is named."""
    by_folder: dict[Path, Path] = {}
    for path in paths:
        by_folder.setdefault(path.resolve(), path)
    return [RunDir(path) for path in by_folder.values()]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rlmaml.evaluation import EvalSettings, require_evaluable

    settings = EvalSettings(args.num_steps, args.num_traj, args.inner_lr, args.later_lr_factor, args.seed,
                            args.step_rule, args.target_return)
    runs = _distinct_runs(args.run_dirs)
    require_evaluable(runs)  # before the output folder is made, which may be a run's own
    checkpoints = list(dict.fromkeys(c.strip() for c in args.checkpoint.split(",") if c.strip()))
    if not checkpoints:
        raise ConfigError("--checkpoint names no checkpoint; give final, best or an iteration number")
    for which in checkpoints:
        runs[0].checkpoint_for(which)  # rejects anything but final, best or an iteration number
    if args.out_dir is not None:
        out_dir = args.out_dir
    elif len(runs) == 1:
        out_dir = runs[0].path
    else:
        out_dir = Path("runs") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    paper = None
    if args.paper:
        config = load_config(runs[0].config)
        paper = paper_curves(config.task.env_id, config.task.horizon, args.num_steps)
    if args.out_dir is None and len(runs) > 1:
        out_dir = args.ranks.broadcast(out_dir)  # one folder, named by rank 0's clock
    evaluate_and_report(runs, checkpoints, settings, out_dir, args.task_set, args.num_tasks, not args.no_progress,
                        paper, keep_previous=args.out_dir is None and len(runs) == 1, ranks=args.ranks)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import csv

    from rlmaml.evaluation import EvalSettings
    from rlmaml.sweep import SweepGrid, check_sweep, sweep

    settings = EvalSettings(args.num_steps, args.num_traj, step_rule=args.step_rule, target_return=args.target_return)
    grid = SweepGrid(tuple(args.first), tuple(args.factors), args.checkpoints, args.select_step, args.validation_traj)
    runs = _distinct_runs(args.run_dirs)
    check_sweep(runs, settings, grid)  # before the sweep, which can take minutes
    oracle = RunDir(args.oracle) if args.oracle is not None else None
    if oracle is not None:
        oracle.require("config", "test_tasks", "checkpoint")
    paper = None
    if args.paper:
        config = load_config(runs[0].config)
        paper = paper_curves(config.task.env_id, config.task.horizon, args.num_steps)
    with output_dir(args.out_dir):
        evaluation, grid_rows = sweep(runs, oracle, settings, grid, progress=not args.no_progress)
    for path, choice in evaluation["selection"].items():
        print(f"{path}: chose checkpoint {choice['checkpoint']}, first step {choice['first']:g}, "
              f"later factor {choice['later_factor']:g} (on {len(grid_rows) // len(runs)} validation schedules)")
    if paper is not None:
        evaluation["paper"] = paper
    csv_path = args.out_dir / "step_sizes.csv"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(grid_rows[0]))
    writer.writeheader()
    writer.writerows(grid_rows)
    write_file(text.getvalue().encode(), csv_path)
    report_evaluation(evaluation, args.out_dir)
    print(f"Wrote {args.out_dir}/evaluation.json, evaluation.csv, evaluation.png and step_sizes.csv")
    return 0


def cmd_combine(args: argparse.Namespace) -> int:
    from rlmaml.combine import combine

    record = combine(args.evaluations, args.allow_missing_tasks, args.name_runs)
    make_output_dir(args.out_dir)
    report_evaluation(record, args.out_dir)
    print(f"Wrote {args.out_dir}/evaluation.json, evaluation.csv and evaluation.png")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from rlmaml.report import figure_format, plot_training

    runs = _distinct_runs(args.run_dirs)
    curves = []
    for run in runs:
        run.require("metrics")
        curves.append((run.path.name, read_metrics(run.metrics)))
    if not any(records for _, records in curves):
        methods = {load_config(run.config).method for run in runs if run.config.is_file()}
        if methods == {"random"}:
            raise RunError("nothing to plot: a random-initialisation run does not train (compare it with "
                           "`rlmaml evaluate`)")
        raise RunError("no metrics to plot yet: the runs have not finished an iteration")
    if args.smooth < 1:
        raise ConfigError("--smooth must be >= 1")
    output = args.output or (runs[0].path / "training.png" if len(runs) == 1 else Path("training-curves.png"))
    try:
        figure_format(output)
    except ValueError as error:
        raise ConfigError(f"--output {output}: {error}") from None
    window = parse_window(args.iterations) if args.iterations else default_window(curves)
    make_output_dir(output.parent)
    plot_training(curves, output, args.smooth)
    print_training_summary(summarize_training(curves, *window), *window)
    print(f"Wrote {output}")
    return 0


def print_training_summary(rows: list[dict[str, Any]], first: int, last: int) -> None:
    """The :func:`rlmaml.training_summary.summarize_training` table, one line per run."""
    width = max(len(row["name"]) for row in rows) + 2
    print(f"meta-iterations {first}-{last}: mean return before / after adaptation, median seconds per iteration and KL"
          + (f"; after adaptation minus {rows[0]['name']}, paired over iterations" if len(rows) > 1 else ""))
    print(f"{'run':{width}s}{'iterations':>11s}{'before':>10s}{'after':>10s}{'s/it':>8s}{'KL':>9s}"
          + ("  paired difference" if len(rows) > 1 else ""))
    for row in rows:
        paired = row.get("paired")
        difference = "" if paired is None else "  " + _cell(paired, 0, signed=True)
        print(f"{row['name']:{width}s}{row['iterations']:>11d}{_number(row['pre_return'], 10, '.2f')}"
              f"{_number(row['post_return'], 10, '.2f')}{_number(row['seconds'], 8, '.2f')}"
              f"{_number(row['kl'], 9, '.4f')}{difference}")


def _number(value: float | None, width: int, spec: str) -> str:
    """``value`` formatted by ``spec`` and right-aligned in ``width``; a dash for a missing value."""
    return ("-" if value is None else format(value, spec)).rjust(width)


def cmd_envs(args: argparse.Namespace) -> int:
    from rlmaml.envs import FAMILIES

    plugin_families, failures = load_plugins()
    families = [Family(env_id, spec["summary"], "rlmaml") for env_id, spec in FAMILIES.items()] + plugin_families
    width = max(len(family.env_id) for family in families) + 2
    for family in families:
        source = "" if family.source == "rlmaml" else f"  [plugin {family.source}]"
        print(f"{family.env_id:{width}s}{family.summary}{source}")
    for failure in failures:
        print(f"rlmaml: warning: plugin {failure.name!r} failed to load: {failure.reason}", file=sys.stderr)
    return 0


def cmd_check_env(args: argparse.Namespace) -> int:
    results = run_checks(args.env_id, args.kwargs, args.seed)
    width = max(len(result.name) for result in results) + 2
    for result in results:
        print(f"{result.status.upper():5s} {result.name:{width}s}{result.detail}")
    print(describe(args.env_id, results))
    return 1 if any(result.status == FAIL for result in results) else 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": cmd_train, "evaluate": cmd_evaluate, "sweep": cmd_sweep, "combine": cmd_combine, "plot": cmd_plot,
    "envs": cmd_envs, "check-env": cmd_check_env}


DISTRIBUTED_COMMANDS = ("train", "evaluate")
"""The commands that run across the processes torchrun starts (:mod:`rlmaml.distributed`)."""


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed subcommand; a user error is one line on stderr and exit status 2. Under torchrun,
    train and evaluate join the process group, rank 0 alone prints to stdout, and an error names its rank."""
    if args.command in ("train", "evaluate", "sweep"):
        keep_freed_memory()
    signal.signal(signal.SIGTERM, _interrupt)  # a polite kill stops every command as Ctrl-C does
    args.ranks = Ranks()
    try:
        if launched_by_torchrun():
            if args.command not in DISTRIBUTED_COMMANDS:
                raise ConfigError(f"rlmaml {args.command} runs in one process: start it without torchrun")
            args.ranks = join()
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet if not args.ranks.main else sys.stdout):
            return COMMANDS[args.command](args)
    except UserError as error:
        where = f" (rank {args.ranks.rank} of {args.ranks.size})" if args.ranks.size > 1 else ""
        print(f"rlmaml: error{where}: {error}", file=sys.stderr)
        return 2
    finally:
        leave()
