"""Choose each run's test-time step sizes on VALIDATION tasks, then evaluate all runs on the test tasks.

    python benchmarks/step_size_sweep.py runs/ref/maml-s0 runs/ref/pretrained-s0 runs/ref/random-s0 \\
        --oracle runs/ref/oracle-s0 --out-dir results/navigation2d

For every run (and the final iterate), each schedule "first step A, later steps A * F" on a grid is
evaluated on ``--num-tasks`` validation tasks (drawn from the first run's seed, never training or
test tasks: ``rlmaml evaluate --task-set validation``); the schedule with the best mean return
after ``--select-step`` steps is kept (ties, as for schedules sharing the first step size when
selecting on one step, go to the better sum over the later steps). Then every run is evaluated once on the recorded test tasks
with its chosen schedule (the oracle, which needs no adaptation, with the default one), and the
table, CSV and figure are written as by ``rlmaml evaluate``. The validation grid goes to
``step_sizes.csv``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path

from rlmaml.cli import print_evaluation
from rlmaml.config import load_config
from rlmaml.evaluation import EvalSettings, evaluate_checkpoint, evaluate_runs, evaluation_tasks
from rlmaml.report import plot_adaptation, write_csv
from rlmaml.runs import RunDir, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--oracle", type=Path, help="oracle run, evaluated with the default schedule")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--first", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 0.5, 0.3, 0.1])
    parser.add_argument("--select-step", type=int, default=2)
    parser.add_argument("--num-steps", type=int, default=3)
    parser.add_argument("--validation-traj", type=int, default=20)
    parser.add_argument("--num-traj", type=int, default=40)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    runs = [RunDir(path) for path in args.runs]
    grid_rows, chosen = [], {}
    for run in runs:
        best = None
        for first, factor in itertools.product(args.first, args.factors):
            settings = EvalSettings(args.num_steps, args.validation_traj, first, factor)
            (result,) = evaluate_runs([run], ["final"], settings, task_set="validation")["results"]
            means = [row["mean"] for row in result["summary"]]
            score = (means[args.select_step], sum(means[args.select_step:]))  # ties: better later steps win
            grid_rows.append({"run": str(run.path), "first_step_size": first, "later_factor": factor,
                              **{f"return_{row['step']}": round(row["mean"], 3) for row in result["summary"]}})
            print(f"{run.path}: first {first:g}, factor {factor:g}: "
                  + " ".join(f"{row['mean']:8.2f}" for row in result["summary"]), flush=True)
            if best is None or score > best[0]:
                best = (score, first, factor)
        chosen[run.path] = best[1:]
        print(f"{run.path}: chosen first step {best[1]:g}, later factor {best[2]:g} "
              f"(validation return after {args.select_step} steps {best[0][0]:.2f})", flush=True)
    with (args.out_dir / "step_sizes.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(grid_rows[0]))
        writer.writeheader()
        writer.writerows(grid_rows)

    first_config = load_config(runs[0].config)
    tasks = evaluation_tasks(runs[0])
    results = []
    for run in runs + ([RunDir(args.oracle)] if args.oracle else []):
        first, factor = chosen.get(run.path, (None, 0.5))
        settings = EvalSettings(args.num_steps, args.num_traj, first, factor)
        results.append(evaluate_checkpoint(run, "final", settings, tasks, first_config.seed))
    evaluation = {"env_id": first_config.env_id, "env_kwargs": first_config.env_kwargs, "task_set": "test",
                  "tasks_from": str(runs[0].path), "num_tasks": len(tasks), "num_traj": args.num_traj,
                  "seed": first_config.seed, "results": results,
                  "step_size_selection": {str(path): {"first": first, "later_factor": factor}
                                          for path, (first, factor) in chosen.items()}}
    print_evaluation(evaluation)
    write_json(evaluation, args.out_dir / "evaluation.json")
    write_csv(evaluation, args.out_dir / "evaluation.csv")
    plot_adaptation(evaluation, args.out_dir / "evaluation.png")
    print(f"Wrote {args.out_dir}/evaluation.json, evaluation.csv, evaluation.png and step_sizes.csv")


if __name__ == "__main__":
    main()
