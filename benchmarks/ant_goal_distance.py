"""How close do adapted AntGoal policies get to their goals? Returns alone do not say.

    python benchmarks/ant_goal_distance.py runs/exp/ag-ppo-s0:0.1,0.05,0.05 \\
        runs/exp/ag-ppo-pretrained-s0:0.1,0.05,0.05 runs/exp/ag-random-s0:0.1,0.05,0.05 runs/exp/ag-ppo-oracle-s0

Every ``RUN_DIR[:STEP_SIZES]``'s final checkpoint is adapted on the first run's recorded test
tasks exactly as ``rlmaml evaluate`` does (same seed streams and trajectories, so the returns are
the evaluation's; no step sizes: no adaptation). After each inner step it prints, as means over
tasks of each task's mean over its trajectories, the L1 distance (AntGoal's reward metric) from
the torso's (x, y) to the goal at the episode's first observation, at its last one (before the
final move) and at the closest one, and the share of trajectories whose last observation is
within ``--radius`` of the goal. AntGoal keeps the torso's (x, y) as the first two observation
entries (the oracle appends the goal after them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from nav_noise_floor import evaluation_adaptation, run_with_schedule  # a sibling: benchmarks/ is on sys.path

from rlmaml.evaluation import evaluation_tasks, loaded_run
from rlmaml.runs import RunDir
from rlmaml.tasks import Task

ENV_ID = "rlmaml/AntGoal-v0"


def goal_distances(observations: np.ndarray, mask: np.ndarray, goals: np.ndarray) -> dict[str, np.ndarray]:
    """L1 distances of the torso (observation entries 0 and 1) from each task's goal, per trajectory.

    observations [N, M, T, obs_dim], mask [N, M, T] (1 up to and including the last step), goals [N, 2]
    -> ``start``, ``last`` (the last observed step) and ``closest`` (over the observed steps), each [N, M].
    """
    distance = np.abs(observations[..., :2] - goals[:, None, None, :]).sum(-1)  # [N, M, T]
    last = mask.sum(-1).astype(int) - 1
    return {"start": distance[..., 0],
            "last": np.take_along_axis(distance, last[..., None], axis=-1)[..., 0],
            "closest": np.where(mask > 0, distance, np.inf).min(-1)}


def per_step_distances(run: RunDir, tasks: list[Task], lrs: list[float],
                       num_traj: int) -> list[dict[str, np.ndarray]]:
    """Per inner step k = 0..len(lrs): :func:`goal_distances` of the evaluation's trajectories, and
    ``return`` [N, M], the trajectories' undiscounted returns."""
    with loaded_run(run) as trainer:
        if trainer.config.env_id != ENV_ID:
            raise SystemExit(f"{run.path} trains on {trainer.config.env_id}, not {ENV_ID}")
        batches, _ = evaluation_adaptation(trainer, tasks, lrs, num_traj)
    goals = np.array([task["goal"] for task in tasks])
    return [{**goal_distances(batch.observations.numpy(), batch.mask.numpy(), goals),
             "return": batch.episode_returns().numpy()} for batch in batches]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR[:STEP_SIZES]",
                        help="AntGoal runs, each with its comma-separated step sizes (none: no adaptation)")
    parser.add_argument("--num-traj", type=int, default=20, help="trajectories per task and step (default 20)")
    parser.add_argument("--radius", type=float, default=0.5, help="'reached' radius, L1 (default 0.5)")
    args = parser.parse_args()
    schedules = [(RunDir(Path(path)), lrs) for path, lrs in map(run_with_schedule, args.runs)]
    tasks = evaluation_tasks(schedules[0][0])
    print(f"{'run':<40} step  return   start    last  closest  last within {args.radius}")
    for run, lrs in schedules:
        path = str(run.path)
        for k, result in enumerate(per_step_distances(run, tasks, lrs, args.num_traj)):
            means = {name: values.mean(1).mean() for name, values in result.items()}
            within = (result["last"] <= args.radius).mean()
            print(f"{path:<40} {k:>4} {means['return']:7.1f} {means['start']:7.2f} {means['last']:7.2f} "
                  f"{means['closest']:8.2f}  {within:6.1%}")


if __name__ == "__main__":
    main()
