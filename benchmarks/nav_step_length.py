"""Is the two-step gap on Navigation2D the inner steps' LENGTH or their DIRECTION?

    python benchmarks/nav_step_length.py runs/ref/maml-lvc-s0:0.1,0.03 --oracle runs/ref/oracle-s0

The run's final iterate takes its two inner steps on its recorded test tasks along the evaluation's
gradient directions, but with every pair of lengths on a grid (``--scales``: multiples of the first
step size; ``--second``: second step sizes). For each task the pair with the best mean return after
two steps on one set of ``--num-traj`` trajectories (the selection set) is then scored on an
independent set (the scoring set), so the per-task choice does not flatter itself. That score is
what a rule that knew each task's best step lengths, and nothing else, would reach: if it comes
within 2.0 of the oracle, the gradient's direction is good enough and its length is what one fixed
schedule cannot get right; if not, the directions themselves fall short.

Printed: the run's own schedule and the best single schedule on the grid (both on the scoring set),
the per-task best lengths, the oracle, and how the chosen lengths and the first gradient's norm
follow the goal's distance from the start.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from nav_noise_floor import run_with_schedule  # a sibling: benchmarks/ is on sys.path

from rlmaml.adaptation import adapt_step, detached, per_task_squared_norm
from rlmaml.advantages import with_advantages
from rlmaml.evaluation import evaluation_tasks, loaded_run, summarize
from rlmaml.policy import Params
from rlmaml.runs import RunDir
from rlmaml.seeding import evaluation_streams
from rlmaml.tasks import Task
from rlmaml.trainer import Trainer

SELECTION_SEED, SCORING_SEED, SECOND_STEP_SEED = 1, 2, 3


def along(start: Params, stepped: Params, length: float) -> Params:
    """``start + length * (stepped - start)``: a step of ``length`` along a unit-step-size step."""
    return {name: start[name] + length * (stepped[name] - start[name]) for name in start}


def returns_per_task(trainer: Trainer, params: Params, tasks: list[Task], num_traj: int, seed: int) -> np.ndarray:
    """Mean sampled return per task [N] with noise and reset seeds drawn from ``seed``."""
    batch = trainer.sampler.sample(trainer.policy, params, tasks, num_traj, torch.Generator().manual_seed(seed),
                                   np.random.default_rng(seed))
    return batch.episode_returns().mean(1).numpy()


def grid_returns(trainer: Trainer, tasks: list[Task], first_lr: float, scales: list[float], seconds: list[float],
                 num_traj: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns after two steps on the selection and the scoring set, each [S, S2, N] (S first-step
    lengths ``first_lr * scales``, S2 second-step sizes), and the first gradient's norm per task [N].

    Step one follows the gradient on the evaluation's first batch; step two, for each first length,
    the gradient on a new batch sampled after it (the same noise for every first length)."""
    config, policy = trainer.config, trainer.policy
    generator, seed_rng = evaluation_streams(config.seed)
    start = detached(policy.params())
    first_batch = with_advantages(trainer.sampler.sample(policy, start, tasks, num_traj, generator, seed_rng),
                                  config.gamma, config.gae_lambda)
    unit_first = detached(adapt_step(policy, start, first_batch, 1.0, create_graph=False))
    start = {name: p.expand_as(unit_first[name]) for name, p in start.items()}
    grad_norm = per_task_squared_norm([unit_first[n] - start[n] for n in start]).sqrt().numpy()
    selection = np.zeros((len(scales), len(seconds), len(tasks)))
    scoring = np.zeros_like(selection)
    for i, scale in enumerate(scales):
        after_one = along(start, unit_first, first_lr * scale)
        second_batch = trainer.sampler.sample(policy, after_one, tasks, num_traj, torch.Generator().manual_seed(
            SECOND_STEP_SEED), np.random.default_rng(SECOND_STEP_SEED))
        unit_second = detached(adapt_step(policy, after_one, with_advantages(second_batch, config.gamma,
                                                                             config.gae_lambda),
                                          1.0, create_graph=False))
        for j, second in enumerate(seconds):
            after_two = along(after_one, unit_second, second)
            selection[i, j] = returns_per_task(trainer, after_two, tasks, num_traj, SELECTION_SEED)
            scoring[i, j] = returns_per_task(trainer, after_two, tasks, num_traj, SCORING_SEED)
    return selection, scoring, grad_norm


def mean_se(values: np.ndarray) -> str:
    """``mean ± standard error`` over tasks [N] (the standard error as every evaluation table computes it)."""
    (row,) = summarize(torch.as_tensor(values)[None])
    return f"{row['mean']:.2f} ± {row['stderr']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", metavar="RUN_DIR:FIRST,SECOND", help="a Navigation2D run and its two step sizes")
    parser.add_argument("--oracle", type=Path, help="oracle run, evaluated without adaptation on the scoring set")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0],
                        help="first-step lengths as multiples of FIRST (default: %(default)s)")
    parser.add_argument("--second", type=float, nargs="+",
                        default=[0.0, 0.001, 0.003, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2],
                        help="second step sizes (default: %(default)s)")
    parser.add_argument("--num-traj", type=int, default=40, help="trajectories per task and set (default 40)")
    args = parser.parse_args()
    path, lrs = run_with_schedule(args.run)
    if len(lrs) != 2:
        parser.error(f"give the run's two step sizes as RUN_DIR:FIRST,SECOND, got {args.run!r}")
    run = RunDir(Path(path))
    scales = sorted(set(args.scales) | {1.0})
    seconds = sorted(set(args.second) | {lrs[1]})
    with loaded_run(run) as trainer:
        tasks = evaluation_tasks(run)
        selection, scoring, grad_norm = grid_returns(trainer, tasks, lrs[0], scales, seconds, args.num_traj)
    num_tasks = len(tasks)
    own = scoring[scales.index(1.0), seconds.index(lrs[1])]
    best_fixed = np.unravel_index(selection.mean(2).argmax(), selection.shape[:2])
    flat = selection.reshape(-1, num_tasks).argmax(0)
    chosen_first, chosen_second = np.unravel_index(flat, selection.shape[:2])
    per_task = scoring[chosen_first, chosen_second, np.arange(num_tasks)]
    print(f"{path}: return after two steps, scoring set ({num_tasks} tasks x {args.num_traj} trajectories)")
    print(f"  its schedule ({lrs[0]:g}, {lrs[1]:g}): {mean_se(own)}")
    print(f"  the grid's best single schedule on the selection set ({lrs[0] * scales[best_fixed[0]]:g},"
          f" {seconds[best_fixed[1]]:g}): {mean_se(scoring[best_fixed[0], best_fixed[1]])}")
    print(f"  each task's best lengths (chosen on the selection set): {mean_se(per_task)};"
          f" minus its schedule, paired: {mean_se(per_task - own)}")
    if args.oracle is not None:
        oracle_run = RunDir(args.oracle)
        with loaded_run(oracle_run) as oracle:
            oracle_returns = returns_per_task(oracle, detached(oracle.policy.params()), tasks, args.num_traj,
                                              SCORING_SEED)
        level = oracle_returns.mean()
        print(f"  oracle: {mean_se(oracle_returns)}; gap after two steps: its schedule {level - own.mean():.2f},"
              f" each task's best {level - per_task.mean():.2f}")
    distance = np.linalg.norm(np.array([task["goal"] for task in tasks]), axis=1)
    first_lengths = lrs[0] * np.array(scales)[chosen_first]
    second_lengths = np.array(seconds)[chosen_second]
    print("  chosen first lengths: " + ", ".join(f"{lrs[0] * s:g}: {int((chosen_first == i).sum())}"
                                                  for i, s in enumerate(scales)))
    print("  chosen second sizes:  " + ", ".join(f"{s:g}: {int((chosen_second == j).sum())}"
                                                  for j, s in enumerate(seconds)))
    quartiles = np.array_split(np.argsort(distance), 4)
    print("  by quartile of the goal's distance from the start ("
          + ", ".join(f"{distance[q].min():.2f}-{distance[q].max():.2f}" for q in quartiles)
          + "), and the rank correlation with that distance:")
    for name, values in (("first gradient's norm", grad_norm), ("chosen first length", first_lengths),
                         ("chosen second size", second_lengths), ("return, its schedule", own),
                         ("return, each task's best", per_task)):
        print(f"    {name:<26} " + " / ".join(f"{values[q].mean():.3g}" for q in quartiles)
              + f"   {spearman(values, distance):+.2f}")


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..N-1 of ``values`` [N], tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of two vectors [N] (0 if either is constant)."""
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


if __name__ == "__main__":
    main()
