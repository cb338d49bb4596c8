"""Where does an adapted Navigation2D policy lose return to the oracle? By goal distance, and
split into the policy's noise and its mean.

    python benchmarks/nav_gap_by_goal.py runs/ref/maml-s0:0.1,0.025,0.025 \\
        runs/ref/maml-lvc-s0:0.1,0.03,0.03 runs/ref/oracle-s0

For each ``RUN_DIR[:STEP_SIZES]`` the final checkpoint is adapted on the run's recorded test tasks
exactly as ``rlmaml evaluate`` does (same seed and trajectories, so the sampled returns are the
evaluation's). After each inner step the adapted policy is also run once per task without noise
(its mean action, std set to ~0): that return, and the distance from the goal after the noise-free
path's last move (Navigation2D's reward is minus that distance), show how much of the loss is the mean missing the goal rather than the exploration noise.
Tasks are grouped into quartiles of the goal's distance from the start (0, 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from nav_noise_floor import evaluation_adaptation, run_with_schedule  # a sibling: benchmarks/ is on sys.path

from rlmaml.evaluation import evaluation_tasks, loaded_run
from rlmaml.runs import RunDir

NOISE_FREE_LOG_STD = -30.0  # std ~1e-13: the sampled action is the mean


def noise_free(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same policy with its std set to ~0, so that a sample is its mean action."""
    return {**params, "log_std": torch.full_like(params["log_std"], NOISE_FREE_LOG_STD)}


def per_step_results(run: RunDir, lrs: list[float],
                     num_traj: int) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """Per inner step k = 0..len(lrs): ``sampled`` mean return per task [N] (the evaluation's),
    ``mean_path`` the return of the noise-free path [N], ``miss`` its final distance to the goal [N];
    and the goals' distances from the start [N]."""
    with loaded_run(run) as trainer:
        tasks = evaluation_tasks(run)
        batches, adapted = evaluation_adaptation(trainer, tasks, lrs, num_traj)
        results = []
        for batch, params in zip(batches, adapted):
            path = trainer.sampler.sample(trainer.policy, noise_free(params), tasks, 1,
                                          torch.Generator().manual_seed(0), np.random.default_rng(0))
            last = path.episode_lengths()[:, 0].long() - 1
            final_reward = path.rewards[torch.arange(len(tasks)), 0, last]  # minus the distance after the last move
            results.append({"sampled": batch.episode_returns().mean(1).numpy(),
                            "mean_path": path.episode_returns()[:, 0].numpy(),
                            "miss": -final_reward.numpy()})
    return results, np.linalg.norm(np.array([task["goal"] for task in tasks]), axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR[:STEP_SIZES]",
                        help="Navigation2D runs, each with its comma-separated step sizes (none: no adaptation)")
    parser.add_argument("--num-traj", type=int, default=40, help="trajectories per task and step (default 40)")
    args = parser.parse_args()
    for item in args.runs:
        path, lrs = run_with_schedule(item)
        results, distance = per_step_results(RunDir(Path(path)), lrs, args.num_traj)
        quartiles = np.array_split(np.argsort(distance), 4)
        print(f"\n{path}  (goal distance quartiles: "
              + ", ".join(f"{distance[q].min():.2f}-{distance[q].max():.2f}" for q in quartiles) + ")")
        print("step  sampled return: all | by quartile          noise-free return: all | by quartile"
              "        noise-free miss: all | by quartile")
        for k, result in enumerate(results):
            cells = []
            for name, fmt in (("sampled", "{:7.2f}"), ("mean_path", "{:7.2f}"), ("miss", "{:6.3f}")):
                values = result[name]
                cells.append(fmt.format(values.mean()) + " |" + "".join(" " + fmt.format(values[q].mean())
                                                                        for q in quartiles))
            print(f"{k:>4}  " + "   ".join(cells))


if __name__ == "__main__":
    main()
