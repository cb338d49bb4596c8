"""How much of a Navigation2D return is the policy's noise? Adapted std per inner step, and the
return an ideal policy (mean action straight at the goal) would score with that noise.

    python benchmarks/nav_noise_floor.py runs/ref/maml-lvc-s0:0.1,0.03,0.03 runs/ref/maml-s0:0.1,0.025,0.025 \\
        runs/ref/pretrained-s0:0.05,0.01,0.01 runs/ref/oracle-s0

For each ``RUN_DIR[:STEP_SIZES]`` the final checkpoint is adapted on the run's recorded test tasks
exactly as ``rlmaml evaluate`` does (seed = the run's, its step rule, ``--num-traj`` trajectories per
step), and the policy's std (mean over tasks, per action axis) is printed before and after each step.
Then an ideal policy, whose mean action is the clipped straight move to the goal, is rolled out in the
Navigation2D dynamics with Gaussian noise of each ``--stds`` value (in units of the [-1, 1] action
box) on ``--num-goals`` uniformly drawn goals; its mean return is the best any policy with that much
noise can expect.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

from rlmaml.adaptation import sample_adaptation_batches
from rlmaml.batch import Batch
from rlmaml.envs.navigation import GOAL_HIGH, GOAL_LOW, MAX_MOVE, Navigation2DBatchedEnv
from rlmaml.evaluation import evaluation_tasks, loaded_run
from rlmaml.policy import Params
from rlmaml.runs import RunDir
from rlmaml.seeding import evaluation_streams
from rlmaml.tasks import Task
from rlmaml.trainer import Trainer


def evaluation_adaptation(trainer: Trainer, tasks: list[Task], lrs: list[float],
                          num_traj: int) -> tuple[list[Batch], list[Params]]:
    """The batches ``rlmaml evaluate`` samples on ``tasks`` (its seed streams, ``len(lrs) + 1`` of them)
    and the policy parameters after 0..len(lrs) inner steps on them (no task axis at step 0, [N, ...] after),
    the steps taken with the run's own step rule."""
    config = trainer.config
    generator, seed_rng = evaluation_streams(config.seed)
    return sample_adaptation_batches(trainer.sampler, trainer.policy, tasks, num_traj, lrs, config.gamma,
                                     config.gae_lambda, generator, seed_rng, config.inner_step_rule,
                                     config.inner_target_return)


def adapted_stds(run: RunDir, lrs: list[float], num_traj: int) -> list[list[float]]:
    """Policy std per action axis (mean over the test tasks) after 0..len(lrs) inner steps."""
    with loaded_run(run) as trainer:
        _, params = evaluation_adaptation(trainer, evaluation_tasks(run), lrs, num_traj)
    return [params[0]["log_std"].exp().tolist()] + [p["log_std"].exp().mean(0).tolist() for p in params[1:]]


def run_with_schedule(item: str) -> tuple[str, list[float]]:
    """Split ``RUN_DIR[:STEP_SIZES]`` into the run's path and its step sizes (none given: [])."""
    path, _, schedule = item.partition(":")
    return path, [float(lr) for lr in schedule.split(",")] if schedule else []


def ideal_return(goals: np.ndarray, std: float, horizon: int, rng: np.random.Generator) -> float:
    """Mean return over ``goals`` [G, 2] of the policy whose mean action is the clipped straight move
    to the goal, with Gaussian noise ``std`` (units of the [-1, 1] action box) on every action."""
    env = Navigation2DBatchedEnv(goals)
    positions = env.reset([0] * len(goals)).astype(np.float64)
    total, alive = np.zeros(len(goals)), np.ones(len(goals), dtype=bool)
    for _ in range(horizon):
        mean = np.clip((goals - positions) / MAX_MOVE, -1.0, 1.0)
        observation, reward, terminated, _ = env.step(mean + std * rng.standard_normal(mean.shape))
        total += np.where(alive, reward, 0.0)
        alive &= ~terminated
        positions = observation.astype(np.float64)
    return float(total.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR[:STEP_SIZES]",
                        help="Navigation2D runs, each with its comma-separated step sizes (none: no adaptation)")
    parser.add_argument("--num-traj", type=int, default=40, help="trajectories per task and step (default 40)")
    parser.add_argument("--stds", type=float, nargs="+", default=[0.03, 0.13, 0.22, 0.3, 0.4, 0.45, 0.5],
                        help="noise levels for the ideal policy (default: %(default)s)")
    parser.add_argument("--num-goals", type=int, default=20000, help="goals for the ideal policy (default 20000)")
    args = parser.parse_args()
    for item in args.runs:
        path, lrs = run_with_schedule(item)
        for step, std in enumerate(adapted_stds(RunDir(Path(path)), lrs, args.num_traj)):
            print(f"{path} after {step} step(s): std {' / '.join(f'{s:.3f}' for s in std)}")
    horizon = gym.spec("rlmaml/Navigation2D-v0").max_episode_steps
    rng = np.random.default_rng(0)
    for std in args.stds:
        goals = rng.uniform(GOAL_LOW, GOAL_HIGH, size=(args.num_goals, 2))  # the family's task distribution
        print(f"ideal policy, std {std:g}: return {ideal_return(goals, std, horizon, rng):.2f}")


if __name__ == "__main__":
    main()
