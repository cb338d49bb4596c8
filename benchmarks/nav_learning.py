"""Adaptation curves of Navigation2D runs: final, best and every snapshot, as a markdown table.

Reproduce the README's learning results (about 6 minutes per run on 2 cores):

    rlmaml train --preset nav-paper --seed 0 --set snapshot_every=25 --run-dir runs/paper-s0 --no-progress
    rlmaml train --preset nav-paper --seed 1 --set snapshot_every=25 --run-dir runs/paper-s1 --no-progress
    python benchmarks/nav_learning.py runs/paper-s0 runs/paper-s1

Every row is ``rlmaml evaluate RUN --checkpoint C --num-traj 40 --num-steps 3`` (40 held-out tasks).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rlmaml.config import load_config
from rlmaml.evaluation import EvalSettings, evaluate_checkpoint, evaluation_tasks
from rlmaml.runs import RunDir
from rlmaml.sampling import TaskSampler


def checkpoints(run: RunDir) -> list[str]:
    """Snapshot iterations in order, then final and best."""
    snapshots = sorted((run.path / "snapshots").glob("iteration-*.pt"))
    return [str(int(p.stem.split("-")[1])) for p in snapshots] + ["final", "best"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--num-traj", type=int, default=40)
    args = parser.parse_args()
    print("| run | checkpoint | iteration | 0 steps | 1 step | 2 steps | 3 steps |")
    print("|---|---|---|---|---|---|---|")
    for path in args.runs:
        run = RunDir(path)
        config = load_config(run.config)
        tasks = evaluation_tasks(run)
        with TaskSampler.for_config(config) as sampler:
            for which in checkpoints(run):
                result = evaluate_checkpoint(run, which, EvalSettings(num_steps=3, num_traj=args.num_traj), tasks,
                                             config.seed, sampler)
                cells = " | ".join(f"{row['mean']:.1f} ± {row['stderr']:.1f}" for row in result["summary"])
                print(f"| {path.name} | {which} | {result['iteration']} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
