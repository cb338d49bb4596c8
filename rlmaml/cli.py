"""The ``rlmaml`` command line: its parser, free of torch so that ``--help`` and usage errors answer at
once, and ``main``, which loads the commands (``rlmaml.commands``) only once the arguments parse."""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path
from typing import Sequence

from rlmaml.config import DEFAULT_PRESET, PRESETS, StepRuleName, TaskSet
from rlmaml.flags import add_config_flags, json_object, seed_arg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlmaml", description="Meta-reinforcement learning with MAML.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="meta-train a policy (MAML with a TRPO or PPO meta-update)",
                           description="Meta-train a policy. Settings come from a preset, then --config, "
                                       "then flags and --set. Without arguments: a short Navigation2D run. "
                                       "Every config field has a flag, listed below by section.")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help=f"starting settings (default {DEFAULT_PRESET}; see docs/configuration.md)")
    train.add_argument("--config", type=Path, help="JSON or TOML file of config fields (sections as tables)")
    train.add_argument("--run-dir", type=Path, help="output folder (default runs/<preset>-<time>)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    train.add_argument("--resume-from", type=int, metavar="N",
                       help="with --resume: continue from the snapshot of iteration N instead of checkpoint.pt "
                            "(for a damaged checkpoint.pt; needs run.snapshot_every)")
    train.add_argument("--branch", type=Path, metavar="RUN_DIR",
                       help="start a new run (--run-dir) from RUN_DIR's last checkpoint, with its config changed "
                            "by the flags, --set and --config given (not its policy network, task family, seed "
                            "or held-out tasks); RUN_DIR is only read")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="set any config field by its dotted path or flat name (VALUE as JSON), e.g. --set "
                            "outer.trpo.cg_damping=1e-3; a field given twice with different values is an error")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--no-evaluate", action="store_true", help="skip the evaluation after training")
    add_config_flags(train)

    evaluate = sub.add_parser("evaluate", help="return after 0..K inner steps on held-out tasks, for one or more runs",
                              description="Adapt each run's policy on the same held-out tasks (the first run's) and "
                                          "report the mean return, with its standard error over tasks, after each "
                                          "inner step. Step 0 is the return of the trajectories used for the first "
                                          "step. With several checkpoints, also the first one's return minus each "
                                          "other's, paired over tasks. Writes evaluation.json, evaluation.csv and "
                                          "evaluation.png.")
    evaluate.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                          help="run folders (MAML and baselines of one task family)")
    evaluate.add_argument("--num-steps", type=int, default=3, help="inner steps K (default 3)")
    evaluate.add_argument("--num-traj", type=int, default=40, help="trajectories per task and step (default 40)")
    evaluate.add_argument("--inner-lr", type=float, help="first step size (default: each run's inner_lr)")
    evaluate.add_argument("--later-lr-factor", type=float, default=0.5,
                          help="step size of later steps as a fraction of the first (default 0.5)")
    evaluate.add_argument("--step-rule", choices=typing.get_args(StepRuleName),
                          help="how a step size makes a step (default: each run's own inner.step_rule; the "
                               "choices are described under inner.step_rule in `rlmaml train --help`)")
    evaluate.add_argument("--target-return", type=float,
                          help="the return a step rule that aims at a return aims at (default: each run's "
                               "inner.target_return)")
    evaluate.add_argument("--checkpoint", default="final,best", metavar="{final,best,N}[,...]",
                          help="comma-separated checkpoints to evaluate (default final,best): the final iterate, the "
                               "one with the best post-adaptation training return, or iteration N (kept with "
                               "snapshot_every)")
    evaluate.add_argument("--task-set", choices=typing.get_args(TaskSet), default="test",
                          help="test: the first run's recorded held-out tasks (default); validation: as many other "
                               "tasks drawn from its seed, for choosing settings without touching the test tasks")
    evaluate.add_argument("--num-tasks", type=int, help="use only the first N tasks")
    evaluate.add_argument("--seed", type=seed_arg, help="evaluation seed (default: the first run's seed)")
    evaluate.add_argument("--out-dir", type=Path,
                          help="output folder (default: the run folder for one run, where an earlier evaluation is first "
                               "moved to previous-evaluations/; runs/compare-<time> for several)")
    evaluate.add_argument("--paper", action="store_true",
                          help="also print and draw the MAML paper's published curves for this family "
                               "(Navigation2D, HalfCheetahVel/Dir, AntVel/Dir), dotted, and record them in "
                               "evaluation.json")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")

    sweep = sub.add_parser("sweep", help="choose each run's test-time step sizes on validation tasks, then evaluate",
                           description="For every run and checkpoint, evaluate each schedule 'first step A, later "
                                       "steps A x F' of the grid on validation tasks (drawn from the first run's "
                                       "seed), keep the one with the best return after --select-step steps, then "
                                       "evaluate every run with its choice on the first run's test tasks. Writes "
                                       "evaluation.json, .csv, .png (as rlmaml evaluate) and step_sizes.csv (the "
                                       "validation grid).")
    sweep.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders to choose step sizes for")
    sweep.add_argument("--oracle", type=Path, metavar="RUN_DIR", help="an oracle run (final iterate, no adaptation)")
    sweep.add_argument("--out-dir", type=Path, required=True, help="output folder")
    sweep.add_argument("--checkpoints", default="final", metavar="{final,best,N}[,...]|all",
                       help="checkpoints to choose from; all: the final iterate and every snapshot (default final)")
    sweep.add_argument("--first", type=float, nargs="+", default=[0.05, 0.1, 0.2], metavar="A",
                       help="first step sizes of the grid (default 0.05 0.1 0.2)")
    sweep.add_argument("--factors", type=float, nargs="+", default=[1.0, 0.5, 0.3, 0.25, 0.2, 0.1], metavar="F",
                       help="later steps' size as a fraction of the first (default 1 0.5 0.3 0.25 0.2 0.1)")
    sweep.add_argument("--select-step", type=int, default=2,
                       help="choose by the validation return after this many steps (default 2)")
    sweep.add_argument("--num-steps", type=int, default=3, help="inner steps K (default 3)")
    sweep.add_argument("--validation-traj", type=int, default=20,
                       help="trajectories per task and step on the validation tasks (default 20)")
    sweep.add_argument("--num-traj", type=int, default=40,
                       help="trajectories per task and step on the test tasks (default 40)")
    sweep.add_argument("--step-rule", choices=typing.get_args(StepRuleName),
                       help="how every run's steps are sized (as rlmaml evaluate; default: each run's own)")
    sweep.add_argument("--target-return", type=float,
                       help="the target of a step rule that aims at a return (as rlmaml evaluate)")
    sweep.add_argument("--paper", action="store_true", help="add the MAML paper's curves (as rlmaml evaluate)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")

    combine = sub.add_parser("combine", help="put results of separate evaluations on the same tasks into one table",
                             description="Combine results of separate evaluations (the same family, tasks, "
                                         "trajectories per step and seed) into one evaluation.json, .csv and .png, "
                                         "the first result minus each other paired over tasks.")
    combine.add_argument("evaluations", nargs="+", metavar="FILE[:LABEL]",
                         help="evaluation.json files, each optionally with :LABEL to take one of its results")
    combine.add_argument("--out-dir", type=Path, required=True, help="output folder")
    combine.add_argument("--allow-missing-tasks", action="store_true",
                         help="combine even when a run folder whose tasks an old evaluation used is gone")
    combine.add_argument("--name-runs", action="store_true",
                         help="append each result's run folder name to its label (default: only to labels that "
                              "results of several runs share)")

    plot = sub.add_parser("plot", help="training curves of one or more runs as an image (PNG unless --output "
                                       "names another format)",
                          description="Pre- and post-adaptation return, KL of the meta-update, seconds per "
                                      "iteration and (when episodes end before the horizon) steps per "
                                      "trajectory against meta-iteration, from each run's metrics.jsonl; "
                                      "several runs are overlaid. Prints the same over a window of "
                                      "iterations as a table.")
    plot.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                      help="run folders, each with a metrics.jsonl")
    plot.add_argument("--output", type=Path,
                      help="image file, PNG unless its suffix names another format (.pdf, .svg, ...); default "
                           "RUN_DIR/training.png for one run, ./training-curves.png for several")
    plot.add_argument("--smooth", type=int, default=10, help="moving-average window in iterations (default 10)")
    plot.add_argument("--iterations", metavar="FIRST-LAST",
                      help="meta-iterations (from 0, both included) of the printed summary: mean return before "
                           "and after adaptation, median seconds and KL per run, and each run's return after "
                           "adaptation minus the first run's, paired over iterations (default: the last 50 of "
                           "the shortest run)")

    sub.add_parser("envs", help="list the task families (built in and from installed plugins)")

    check = sub.add_parser("check-env", help="check an env against Gymnasium's API and the task protocol",
                           description="Run Gymnasium's env checker and the rlmaml task-protocol checks on an env "
                                       "and print a verdict per check. Exit status 1 if any check fails.")
    check.add_argument("env_id", metavar="ID", help="registered id or module:id, e.g. my_pkg.envs:my/Task-v0")
    check.add_argument("--kwargs", type=json_object, default={}, help="JSON object of keyword arguments for gymnasium.make")
    check.add_argument("--seed", type=seed_arg, default=0, help="seed for tasks, resets and actions (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A module:id env named on the command line of a new run (or check-env) may come from the current
    # folder, as with python -m; one named by a run folder's config.json (evaluate, --resume, --branch)
    # may not: a run folder is data, and must not run code from wherever it is opened.
    named_here = args.command == "check-env" or (args.command == "train" and args.resume is None
                                                 and args.branch is None)
    if named_here and "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))
    from rlmaml.tasks import set_working_directory_imports

    set_working_directory_imports(named_here)
    try:
        from rlmaml.commands import run_command  # torch loads here, in seconds: after --help and usage errors

        return run_command(args)
    except KeyboardInterrupt:  # evaluate, plot, check-env, or the import: nothing to save, so no traceback
        print("\nrlmaml: interrupted", file=sys.stderr)
        return 130
