"""Choose each run's test-time step sizes on VALIDATION tasks, then evaluate all runs on the test tasks.

    python benchmarks/step_size_sweep.py runs/ref/maml-s0 runs/ref/pretrained-s0 runs/ref/random-s0 \\
        --oracle runs/ref/oracle-s0 --out-dir results/navigation2d

For every run and every checkpoint in ``--checkpoints`` (default: the final iterate; ``all`` adds
every snapshot kept with ``snapshot_every``), each schedule "first step A, later steps A * F" on a
grid is evaluated on validation tasks (drawn from the first run's seed, never training or
test tasks: ``rlmaml evaluate --task-set validation``); the schedule with the best mean return
after ``--select-step`` steps is kept together with its checkpoint (ties, as for schedules sharing
the first step size when selecting on one step, go to the better sum over the later steps). Then
every run is evaluated once on the recorded test tasks with its chosen checkpoint and schedule (the
oracle: final iterate, without adaptation), and the table, CSV and
figure are written as by ``rlmaml evaluate`` (with ``--paper``, the paper's curves too). The
validation grid goes to ``step_sizes.csv``. ``--step-rule return-scaled`` sizes every run's steps by
the return they fall short of ``--target-return`` (``rlmaml evaluate --step-rule``); its step sizes
are lengths per unit of return, so give a grid of ``--first`` values to match (on Navigation2D
0.003 to 0.014, where validation chose 0.007 to 0.014).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import typing
from pathlib import Path

from rlmaml.commands import report_evaluation
from rlmaml.config import ConfigError, StepRuleName, load_config
from rlmaml.evaluation import (
    EvalSettings,
    evaluate_checkpoint,
    evaluation_inner_update,
    evaluation_record,
    evaluation_tasks,
)
from rlmaml.paper import paper_curves
from rlmaml.runs import RunDir
from rlmaml.sampling import TaskSampler


def checkpoints_of(run: RunDir, wanted: str) -> list[str]:
    """``all``: the final iterate and every kept snapshot; otherwise the comma-separated names."""
    if wanted != "all":
        return wanted.split(",")
    snapshots = sorted(run.path.glob("snapshots/iteration-*.pt"))
    return ["final"] + [str(int(path.stem.split("-")[1])) for path in snapshots]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--oracle", type=Path, help="oracle run (final iterate, evaluated without adaptation)")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--checkpoints", default="final",
                        help="comma-separated checkpoints to choose from (final, best, N) or 'all'")
    parser.add_argument("--first", type=float, nargs="+", default=[0.05, 0.1, 0.2],
                        help="first step sizes on the grid (default: %(default)s)")
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 0.5, 0.3, 0.25, 0.2, 0.1],
                        help="later steps' size as a fraction of the first (default: %(default)s)")
    parser.add_argument("--select-step", type=int, default=2,
                        help="choose by the validation return after this many steps (default: %(default)s)")
    parser.add_argument("--num-steps", type=int, default=3, help="inner steps K (default: %(default)s)")
    parser.add_argument("--validation-traj", type=int, default=20,
                        help="trajectories per task and step on the validation tasks (default: %(default)s)")
    parser.add_argument("--num-traj", type=int, default=40,
                        help="trajectories per task and step on the test tasks (default: %(default)s)")
    parser.add_argument("--paper", action="store_true",
                        help="add the MAML paper's published curves to the test table, JSON and figure (as "
                             "`rlmaml evaluate --paper`)")
    parser.add_argument("--step-rule", choices=typing.get_args(StepRuleName),
                        help="how every run's steps are sized (as `rlmaml evaluate --step-rule`; default: each "
                             "run's own)")
    parser.add_argument("--target-return", type=float,
                        help="the return a return-scaled step aims at (as `rlmaml evaluate`; default: each run's "
                             "own, 0 unless set)")
    args = parser.parse_args()
    try:  # what every evaluation below shares; each sets its own step sizes (and the test its trajectories)
        validation_settings = EvalSettings(args.num_steps, args.validation_traj, step_rule=args.step_rule,
                                           target_return=args.target_return)
    except ConfigError as error:
        parser.error(str(error))
    if not 0 <= args.select_step <= args.num_steps:
        parser.error(f"--select-step must be between 0 and --num-steps ({args.num_steps}), got {args.select_step}")

    runs = [RunDir(path) for path in args.runs]
    first_config = load_config(runs[0].config)
    paper = None
    try:  # before the sweep, which can take minutes
        for run in runs:
            evaluation_inner_update(load_config(run.config), validation_settings, run.path)
        if args.paper:
            paper = paper_curves(first_config.task.env_id, first_config.task.horizon, args.num_steps)
    except ConfigError as error:
        parser.error(str(error))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    validation = evaluation_tasks(runs[0], "validation")
    grid_rows, chosen = [], {}
    for run in runs:
        best = None
        config = load_config(run.config)
        names = ["final"] if config.method == "random" else checkpoints_of(run, args.checkpoints)  # untrained
        with TaskSampler.for_config(config) as sampler:  # one sampler for all its evaluations
            for which, first, factor in itertools.product(names, args.first, args.factors):
                settings = dataclasses.replace(validation_settings, inner_lr=first, later_factor=factor)
                result = evaluate_checkpoint(run, which, settings, validation, first_config.seed, sampler)
                means = [row["mean"] for row in result["summary"]]
                score = (means[args.select_step], sum(means[args.select_step:]))  # ties: better later steps win
                grid_rows.append({"run": str(run.path), "checkpoint": which, "iteration": result["iteration"],
                                  "first_step_size": first, "later_factor": factor,
                                  **{f"return_{row['step']}": round(row["mean"], 3) for row in result["summary"]}})
                print(f"{run.path} {which}: first {first:g}, factor {factor:g}: "
                      + " ".join(f"{mean:8.2f}" for mean in means), flush=True)
                if best is None or score > best[0]:
                    best = (score, which, first, factor)
        chosen[run.path] = best[1:]
        print(f"{run.path}: chosen checkpoint {best[1]}, first step {best[2]:g}, later factor {best[3]:g} "
              f"(validation return after {args.select_step} steps {best[0][0]:.2f})", flush=True)
    with (args.out_dir / "step_sizes.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(grid_rows[0]))
        writer.writeheader()
        writer.writerows(grid_rows)

    tasks = evaluation_tasks(runs[0])
    results = []
    for run in runs + ([RunDir(args.oracle)] if args.oracle else []):
        which, first, factor = chosen.get(run.path, ("final", None, 0.5))
        settings = dataclasses.replace(validation_settings, num_traj=args.num_traj, inner_lr=first,
                                       later_factor=factor)
        results.append(evaluate_checkpoint(run, which, settings, tasks, first_config.seed))
    evaluation = {**evaluation_record(first_config, "test", runs[0], tasks, args.num_traj, first_config.seed,
                                      results),
                  "selection": {str(path): {"checkpoint": which, "first": first, "later_factor": factor}
                                for path, (which, first, factor) in chosen.items()},
                  **({"paper": paper} if paper else {})}
    report_evaluation(evaluation, args.out_dir)
    print(f"Wrote {args.out_dir}/evaluation.json, evaluation.csv, evaluation.png and step_sizes.csv")


if __name__ == "__main__":
    main()
