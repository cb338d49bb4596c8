"""The ``rlmaml`` command: train, evaluate, envs, check-env."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence


from rlmaml.checks import FAIL, describe, run_checks
from rlmaml.config import DEFAULT_PRESET, FIELDS, PRESETS, ConfigError, read_config_file, resolve
from rlmaml.evaluation import evaluate_checkpoint
from rlmaml.plugins import all_families
from rlmaml.runs import RunDir, RunError, read_metrics, write_json
from rlmaml.tasks import EnvMakeError, TaskProtocolError
from rlmaml.trainer import Trainer

USER_ERRORS = (ConfigError, RunError, TaskProtocolError, EnvMakeError)

# Command-line flags that map one-to-one onto TrainConfig fields: (flag, field, type).
TRAIN_FLAGS: list[tuple[str, str, type]] = [
    ("--env", "env_id", str),
    ("--num-tasks", "num_tasks", int),
    ("--num-traj", "num_traj", int),
    ("--horizon", "horizon", int),
    ("--num-iterations", "num_iterations", int),
    ("--num-inner-steps", "num_inner_steps", int),
    ("--inner-lr", "inner_lr", float),
    ("--max-kl", "max_kl", float),
    ("--hvp-traj-fraction", "hvp_traj_fraction", float),
    ("--seed", "seed", int),
]


def _parse_set(item: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` with VALUE read as JSON when it parses, else as a string."""
    name, sep, raw = item.partition("=")
    if not sep or name not in FIELDS:
        raise ConfigError(f"--set expects FIELD=VALUE with a config field, got {item!r}")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = dict(_parse_set(item) for item in args.set)
    for _, field, _ in TRAIN_FLAGS:
        value = getattr(args, field)
        if value is not None:
            overrides[field] = value
    if args.hidden_sizes is not None:
        try:
            overrides["hidden_sizes"] = [int(h) for h in args.hidden_sizes.split(",")]
        except ValueError:
            raise ConfigError(f"--hidden-sizes expects integers like 100,100, got {args.hidden_sizes!r}") from None
    if args.first_order:
        overrides["first_order"] = True
    return overrides


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        changed = set(_train_overrides(args)) - {"num_iterations"}
        if args.config or args.preset or args.run_dir or changed:
            raise ConfigError("--resume continues a run with its saved config; only --num-iterations may change")
        trainer = Trainer.resume(args.resume, args.num_iterations)
        print(f"Resuming {args.resume} at iteration {trainer.iteration} of {trainer.config.num_iterations}")
    else:
        file_values = read_config_file(args.config) if args.config else {}
        config = resolve(args.preset, file_values, _train_overrides(args))
        name = args.preset or DEFAULT_PRESET
        run_dir = args.run_dir or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        trainer = Trainer.create(config, run_dir)
        print(f"Training {config.env_id}: {config.num_iterations} meta-iterations, {config.num_tasks} tasks x "
              f"{config.num_traj} trajectories, {config.num_inner_steps} inner step(s); run folder {run_dir}")
    run = trainer.run
    signal.signal(signal.SIGTERM, _interrupt)  # a polite kill checkpoints like Ctrl-C
    try:
        trainer.train(progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\nInterrupted at iteration {trainer.iteration}; checkpoint saved. "
              f"Continue with: rlmaml train --resume {run.path}", file=sys.stderr)
        return 130
    last = read_metrics(run.metrics)[-1]
    print(f"Done: iteration {last['iteration']}: return {last['pre_return']:.2f} before adaptation, "
          f"{last['post_return']:.2f} after {trainer.config.num_inner_steps} step(s).")
    if not args.no_evaluate:
        evaluate_run(run, num_steps=3, num_traj=trainer.config.num_traj)
    print(f"Results in {run.path}/: config.json, metrics.jsonl, checkpoint.pt, best.pt, test_tasks.json"
          + ("" if args.no_evaluate else ", evaluation.json"))
    print(f"Evaluate again with: rlmaml evaluate {run.path}")
    return 0


def evaluate_run(run: RunDir, num_steps: int, num_traj: int, inner_lr: float | None = None,
                 later_factor: float = 0.5, which: str = "final", seed: int | None = None,
                 num_tasks: int | None = None, output: Path | None = None) -> dict[str, Any]:
    """Evaluate a run on its held-out tasks, print the table and write the result as JSON."""
    result = evaluate_checkpoint(run, which, num_steps, num_traj, inner_lr, later_factor, seed, num_tasks)
    label = "snapshot" if which.isdigit() else f"{which} iterate"
    print(f"{result['env_id']}, {label} (iteration {result['iteration']}), {len(result['per_task'])} held-out "
          f"tasks x {num_traj} trajectories, step sizes {', '.join(f'{lr:g}' for lr in result['step_sizes'])}")
    print(f"{'steps':>5}  {'mean return':>12}  {'std. error':>10}")
    for row in result["summary"]:
        print(f"{row['step']:>5}  {row['mean']:>12.2f}  {row['stderr']:>10.2f}")
    write_json(result, output or run.evaluation)
    return result


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.num_steps < 0 or args.num_traj < 1:
        raise ConfigError("--num-steps must be >= 0 and --num-traj >= 1")
    if (args.inner_lr is not None and not args.inner_lr > 0) or not args.later_lr_factor > 0:
        raise ConfigError("--inner-lr and --later-lr-factor must be positive")
    evaluate_run(RunDir(args.run_dir), args.num_steps, args.num_traj, args.inner_lr, args.later_lr_factor,
                 args.checkpoint, args.seed, args.num_tasks, args.output)
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    families, failures = all_families()
    width = max(len(family.env_id) for family in families) + 2
    for family in families:
        source = "" if family.source == "rlmaml" else f"  [plugin {family.source}]"
        print(f"{family.env_id:{width}s}{family.summary}{source}")
    for failure in failures:
        print(f"rlmaml: warning: plugin {failure.name!r} failed to load: {failure.reason}", file=sys.stderr)
    return 0


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--kwargs must be a JSON object, e.g. '{{\"action_mode\": \"clip\"}}': {error}") from None
    if not isinstance(value, dict):
        raise ConfigError("--kwargs must be a JSON object")
    return value


def cmd_check_env(args: argparse.Namespace) -> int:
    results = run_checks(args.env_id, _json_object(args.kwargs), args.seed)
    width = max(len(result.name) for result in results) + 2
    for result in results:
        print(f"{result.status.upper():5s} {result.name:{width}s}{result.detail}")
    print(describe(args.env_id, results))
    return 1 if any(result.status == FAIL for result in results) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlmaml", description="Meta-reinforcement learning with MAML.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="meta-train a policy (MAML-TRPO)",
                           description="Meta-train a policy. Settings come from a preset, then --config, "
                                       "then flags. Without arguments: a short Navigation2D run.")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help=f"starting settings (default {DEFAULT_PRESET}; nav-paper = the paper's 2D navigation)")
    train.add_argument("--config", type=Path, help="JSON or TOML file of config fields")
    train.add_argument("--run-dir", type=Path, help="output folder (default runs/<preset>-<time>)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    for flag, field, kind in TRAIN_FLAGS:
        train.add_argument(flag, dest=field, type=kind, help=f"config field {field}")
    train.add_argument("--hidden-sizes", help="hidden layer widths, e.g. 100,100")
    train.add_argument("--first-order", action="store_true", help="first-order MAML meta-gradient")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="set any config field (VALUE as JSON), e.g. --set cg_damping=1e-3")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--no-evaluate", action="store_true", help="skip the evaluation after training")
    train.set_defaults(handler=cmd_train)

    evaluate = sub.add_parser("evaluate", help="return after 0..K inner steps on the run's held-out tasks",
                              description="Adapt the trained policy on the run's held-out tasks and report the "
                                          "mean return (and standard error over tasks) after each inner step. "
                                          "Step 0 is the return of the trajectories used for the first step.")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate.add_argument("--num-steps", type=int, default=3, help="inner steps K (default 3)")
    evaluate.add_argument("--num-traj", type=int, default=40, help="trajectories per task and step (default 40)")
    evaluate.add_argument("--inner-lr", type=float, help="first step size (default: the run's inner_lr)")
    evaluate.add_argument("--later-lr-factor", type=float, default=0.5,
                          help="step size of later steps as a fraction of the first (default 0.5)")
    evaluate.add_argument("--checkpoint", default="final", metavar="{final,best,N}",
                          help="final iterate, the one with the best post-adaptation training return, or "
                               "iteration N (kept with snapshot_every)")
    evaluate.add_argument("--num-tasks", type=int, help="use only the first N held-out tasks")
    evaluate.add_argument("--seed", type=int, help="evaluation seed (default: the run's seed)")
    evaluate.add_argument("--output", type=Path, help="JSON output (default RUN_DIR/evaluation.json)")
    evaluate.set_defaults(handler=cmd_evaluate)

    envs = sub.add_parser("envs", help="list the task families (built in and from installed plugins)")
    envs.set_defaults(handler=cmd_envs)

    check = sub.add_parser("check-env", help="check an env against Gymnasium's API and the task protocol",
                           description="Run Gymnasium's env checker and the rlmaml task-protocol checks on an env "
                                       "and print a verdict per check. Exit status 1 if any check fails.")
    check.add_argument("env_id", metavar="ID", help="registered id or module:id, e.g. my_pkg.envs:my/Task-v0")
    check.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments for gymnasium.make")
    check.add_argument("--seed", type=int, default=0, help="seed for tasks, resets and actions (default 0)")
    check.set_defaults(handler=cmd_check_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))  # module:id envs import from the current folder, as with python -m
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except USER_ERRORS as error:
        print(f"rlmaml: error: {error}", file=sys.stderr)
        return 2
