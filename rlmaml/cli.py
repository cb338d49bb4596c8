"""The ``rlmaml`` command line: its parser, free of torch so that ``--help`` and usage errors answer at
once, and ``main``, which loads the commands (``rlmaml.commands``) only once the arguments parse."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from rlmaml.config import (DEFAULT_PRESET, FIELDS, HVP_ADAPTATIONS, INNER_OBJECTIVES, META_OPTIMIZERS, METHODS, PRESETS,
                           STEP_RULES, TASK_SETS)


def seed_arg(text: str) -> int:
    """argparse type of every ``--seed``: a non-negative integer, as numpy's seeding requires."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expects a non-negative integer, got {text!r}")
    return value


# Command-line flags that map one-to-one onto TrainConfig fields: (flag, field, type).
TRAIN_FLAGS: list[tuple[str, str, Callable[[str], Any]]] = [
    ("--method", "method", str),
    ("--env", "env_id", str),
    ("--num-tasks", "num_tasks", int),
    ("--num-traj", "num_traj", int),
    ("--horizon", "horizon", int),
    ("--num-iterations", "num_iterations", int),
    ("--num-inner-steps", "num_inner_steps", int),
    ("--inner-lr", "inner_lr", float),
    ("--max-kl", "max_kl", float),
    ("--hvp-traj-fraction", "hvp_traj_fraction", float),
    ("--hvp-adaptation", "hvp_adaptation", str),
    ("--hvp-task-fraction", "hvp_task_fraction", float),
    ("--inner-objective", "inner_objective", str),
    ("--inner-step-rule", "inner_step_rule", str),
    ("--meta-optimizer", "meta_optimizer", str),
    ("--seed", "seed", seed_arg),
]
FLAG_CHOICES: dict[str, tuple[str, ...]] = {"method": METHODS, "hvp_adaptation": HVP_ADAPTATIONS,
                                            "inner_objective": INNER_OBJECTIVES, "meta_optimizer": META_OPTIMIZERS,
                                            "inner_step_rule": STEP_RULES}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlmaml", description="Meta-reinforcement learning with MAML.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="meta-train a policy (MAML with a TRPO or PPO meta-update)",
                           description="Meta-train a policy. Settings come from a preset, then --config, "
                                       "then flags. Without arguments: a short Navigation2D run.")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help=f"starting settings (default {DEFAULT_PRESET}; see the README)")
    train.add_argument("--config", type=Path, help="JSON or TOML file of config fields")
    train.add_argument("--run-dir", type=Path, help="output folder (default runs/<preset>-<time>)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    train.add_argument("--branch", type=Path, metavar="RUN_DIR",
                       help="start a new run (--run-dir) from RUN_DIR's last checkpoint, with its config changed "
                            "by the flags, --set and --config given (not its policy network, task family, seed "
                            "or held-out tasks); RUN_DIR is only read")
    for flag, field, kind in TRAIN_FLAGS:
        train.add_argument(flag, dest=field, type=kind, help=f"config field {field}",
                           choices=FLAG_CHOICES.get(field))
    train.add_argument("--hidden-sizes", help="hidden layer widths, e.g. 100,100")
    train.add_argument("--first-order", action="store_true", help="first-order MAML meta-gradient")
    train.add_argument("--tensorboard", action="store_true",
                       help="also log metrics to RUN_DIR/tensorboard/ (needs rlmaml[tensorboard])")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="set any config field (VALUE as JSON), e.g. --set cg_damping=1e-3; the fields "
                            "(described in the README's Config fields): " + ", ".join(FIELDS))
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--no-evaluate", action="store_true", help="skip the evaluation after training")

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
    evaluate.add_argument("--step-rule", choices=STEP_RULES,
                          help="fixed: each step is the step size times the gradient (the paper's); "
                               "return-scaled: a step of length step size x (--target-return minus the task's mean "
                               "return in the step's trajectories) along the gradient, long for tasks far from the "
                               "target and short near it (default: each run's own, its inner_step_rule)")
    evaluate.add_argument("--target-return", type=float,
                          help="the return a return-scaled step aims at (default: each run's inner_target_return, "
                               "0 unless set: the best possible return of Navigation2D, whose rewards are minus "
                               "distances)")
    evaluate.add_argument("--checkpoint", default="final,best", metavar="{final,best,N}[,...]",
                          help="comma-separated checkpoints to evaluate (default final,best): the final iterate, the "
                               "one with the best post-adaptation training return, or iteration N (kept with "
                               "snapshot_every)")
    evaluate.add_argument("--task-set", choices=TASK_SETS, default="test",
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
    check.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments for gymnasium.make")
    check.add_argument("--seed", type=seed_arg, default=0, help="seed for tasks, resets and actions (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))  # module:id envs import from the current folder, as with python -m
    args = build_parser().parse_args(argv)
    try:
        from rlmaml.commands import run_command  # torch loads here, in seconds: after --help and usage errors

        return run_command(args)
    except KeyboardInterrupt:  # evaluate, plot, check-env, or the import: nothing to save, so no traceback
        print("\nrlmaml: interrupted", file=sys.stderr)
        return 130
