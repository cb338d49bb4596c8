"""How long do AntVel episodes last, and why do they end? (Ant terminates when the torso height
leaves [0.2, 1.0].)

    python benchmarks/ant_episode_lengths.py --frame-skips 5 2
    python benchmarks/ant_episode_lengths.py --frame-skips --runs runs/ref/ant-vel-s0

For every ``--frame-skips`` value (Gymnasium's Ant: 5, dt 0.05 s; the paper's rllab model: dt 0.02 s,
i.e. frame skip 2 on this model) ``--episodes`` episodes of ``rlmaml/AntVel-v0`` are run with
actions drawn from N(0, 1) and clipped to the action box (what a freshly initialised policy, std
1.0 and a mean near 0, does), on velocities drawn from the family; it prints the median and mean
length (horizon 200), how many episodes ended with the torso above 1.0 or below 0.2, and the mean
return. For every run in ``--runs`` the final policy, without adaptation, is rolled out on the run's
recorded test tasks (``--num-traj`` each, the run's evaluation seed) and the same lengths and the
mean return are printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

from rlmaml.evaluation import evaluation_tasks, loaded_run
from rlmaml.runs import RunDir
from rlmaml.seeding import evaluation_streams

ENV_ID = "rlmaml/AntVel-v0"


def random_action_episodes(frame_skip: int, episodes: int, seed: int) -> dict[str, float]:
    """Lengths, ending heights (against the env's own healthy range) and returns of clipped N(0, 1)
    action episodes at one frame skip."""
    env = gym.make(ENV_ID, frame_skip=frame_skip)
    low_z, high_z = env.unwrapped._healthy_z_range  # what Gymnasium's termination test compares the torso height with
    rng = np.random.default_rng(seed)
    tasks = env.unwrapped.sample_tasks(episodes, rng)
    lengths, returns, high, low = [], [], 0, 0
    for episode, task in enumerate(tasks):
        env.unwrapped.set_task(task)
        env.reset(seed=seed + episode)
        total, steps, terminated, truncated = 0.0, 0, False, False
        while not (terminated or truncated):
            _, reward, terminated, truncated, _ = env.step(np.clip(rng.standard_normal(env.action_space.shape), -1, 1))
            total, steps = total + float(reward), steps + 1
        height = float(env.unwrapped.data.qpos[2])
        high += terminated and height > high_z
        low += terminated and height < low_z
        lengths.append(steps)
        returns.append(total)
    env.close()
    return {"median": float(np.median(lengths)), "mean": float(np.mean(lengths)), "high_z": high_z, "low_z": low_z,
            "ended_high": high, "ended_low": low, "return": float(np.mean(returns))}


def run_episodes(run: RunDir, num_traj: int) -> dict[str, float]:
    """Lengths and mean return of a run's final policy, unadapted, on its recorded test tasks."""
    with loaded_run(run) as trainer:
        generator, seed_rng = evaluation_streams(trainer.config.seed)
        batch = trainer.sampler.sample(trainer.policy, trainer.policy.params(), evaluation_tasks(run), num_traj,
                                       generator, seed_rng)
    lengths = batch.episode_lengths()
    return {"median": float(lengths.median()), "mean": float(lengths.mean()),
            "return": float(batch.episode_returns().mean()), "std": float(trainer.policy.log_std.detach().exp().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frame-skips", type=int, nargs="*", default=[5, 2],
                        help="frame skips for the random-action episodes (default: 5 2; none: skip them)")
    parser.add_argument("--episodes", type=int, default=100, help="random-action episodes per frame skip (default 100)")
    parser.add_argument("--runs", nargs="*", default=[], metavar="RUN_DIR", help="AntVel runs (final policy)")
    parser.add_argument("--num-traj", type=int, default=20, help="trajectories per test task for --runs (default 20)")
    args = parser.parse_args()
    for frame_skip in args.frame_skips:
        r = random_action_episodes(frame_skip, args.episodes, seed=0)
        print(f"random actions, frame skip {frame_skip}: length median {r['median']:.0f}, mean {r['mean']:.1f}; "
              f"ended above {r['high_z']}: {r['ended_high']}, below {r['low_z']}: {r['ended_low']} "
              f"of {args.episodes}; mean return {r['return']:.1f}")
    for path in args.runs:
        r = run_episodes(RunDir(Path(path)), args.num_traj)
        print(f"{path} (final, no adaptation): length median {r['median']:.0f}, mean {r['mean']:.1f}; "
              f"mean return {r['return']:.1f}; policy std {r['std']:.2f}")


if __name__ == "__main__":
    main()
