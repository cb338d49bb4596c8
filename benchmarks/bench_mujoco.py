"""MuJoCo sampling throughput and meta-iteration time at the cheetah-vel preset.

    python benchmarks/bench_mujoco.py                 # both parts, about 5 minutes on 2 cores
    python benchmarks/bench_mujoco.py --skip-training # throughput only
    python benchmarks/bench_mujoco.py --env rlmaml/AntVel-v0 --env-kwargs '{"frame_skip": 2}' --skip-training

Throughput: 800 envs of ``--env`` (40 tasks x 20 trajectories, horizon 200; HalfCheetahVel by
default), the 2x100 ReLU policy in the loop, in three ways: rlmaml's rollout workers (one process
per core, each running a batched env and its own policy copy), the same batched env in one
process, and Gymnasium's SyncVectorEnv over 800 ``gym.make`` envs with the policy in the same loop.
rlmaml counts the steps of live sub-envs (Ant episodes can end early; ended ones are not stepped);
SyncVectorEnv steps all 800 every time (it resets ended ones). Medians of ``--repeats``.

Meta-iteration: ``rlmaml train --preset cheetah-vel`` for ``--iterations`` meta-iterations in a
temporary folder; the median of time_total (sampling + TRPO update) and its parts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from machine import machine, write_record

import rlmaml  # noqa: F401  (registers the task families)
from rlmaml.config import resolve
from rlmaml.memory import keep_freed_memory
from rlmaml.policy import GaussianMLPPolicy
from rlmaml.runs import read_metrics
from rlmaml.sampling import TaskSampler
from rlmaml.trainer import Trainer

NUM_TASKS, NUM_TRAJ, HORIZON = 40, 20, 200


def rlmaml_rate(env_id: str, env_kwargs: dict, num_workers: int, repeats: int) -> float:
    sampler = TaskSampler(env_id, HORIZON, env_kwargs, num_workers=num_workers)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(sampler.obs_dim, sampler.act_dim, (100, 100))
    tasks = sampler.sample_tasks(NUM_TASKS, np.random.default_rng(0))
    rates = []
    try:
        for repeat in range(repeats + 1):
            start = time.perf_counter()
            batch = sampler.sample(policy, policy.params(), tasks, NUM_TRAJ, torch.Generator().manual_seed(repeat),
                                   np.random.default_rng(repeat))
            if repeat:  # the first call starts the workers' envs
                rates.append(float(batch.mask.sum()) / (time.perf_counter() - start))
    finally:
        sampler.close()
    return statistics.median(rates)


@torch.no_grad()
def sync_vector_rate(env_id: str, env_kwargs: dict, repeats: int) -> float:
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, **env_kwargs) for _ in range(NUM_TASKS * NUM_TRAJ)])
    tasks = envs.envs[0].unwrapped.sample_tasks(NUM_TASKS, np.random.default_rng(0))
    for i, env in enumerate(envs.envs):
        env.unwrapped.set_task(tasks[i // NUM_TRAJ])
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(envs.single_observation_space.shape[0], envs.single_action_space.shape[0], (100, 100))
    params = policy.params()
    rates = []
    for repeat in range(repeats):
        obs, _ = envs.reset(seed=repeat)
        start = time.perf_counter()
        for _ in range(HORIZON):
            mean, log_std = policy.distribution(params, torch.as_tensor(obs, dtype=torch.float32).view(NUM_TASKS, NUM_TRAJ, -1))
            action = (mean + torch.exp(log_std) * torch.randn(mean.shape)).view(NUM_TASKS * NUM_TRAJ, -1)
            obs, *_ = envs.step(action.numpy())
        rates.append(NUM_TASKS * NUM_TRAJ * HORIZON / (time.perf_counter() - start))
    envs.close()
    return statistics.median(rates)


def meta_iteration_times(iterations: int) -> dict[str, float]:
    config = resolve("cheetah-vel", overrides={"num_iterations": iterations})
    with tempfile.TemporaryDirectory() as folder:
        with Trainer.create(config, Path(folder) / "run") as trainer:
            trainer.train(progress=False)
        records = read_metrics(trainer.run.metrics)[1:]  # the first iteration starts the workers
    return {key: statistics.median(r[key] for r in records) for key in ("time_total", "time_sampling", "time_update")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="rlmaml/HalfCheetahVel-v0", help="task family for the throughput part")
    parser.add_argument("--env-kwargs", type=json.loads, default={}, help="JSON keyword arguments for the env")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    args = parser.parse_args()
    keep_freed_memory()  # as rlmaml train does
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}")
    workers = os.cpu_count() or 1
    print(f"rollout throughput, {NUM_TASKS * NUM_TRAJ} {args.env} {args.env_kwargs or ''} envs x {HORIZON} steps, "
          f"policy in the loop (median of {args.repeats}):")
    ours = rlmaml_rate(args.env, args.env_kwargs, workers, args.repeats)
    print(f"  rlmaml rollout workers ({workers}):     {ours:9.0f} steps/s", flush=True)
    in_process = rlmaml_rate(args.env, args.env_kwargs, 0, args.repeats)
    print(f"  rlmaml batched env, in process: {in_process:9.0f} steps/s", flush=True)
    sync = sync_vector_rate(args.env, args.env_kwargs, args.repeats)
    print(f"  gymnasium SyncVectorEnv:        {sync:9.0f} steps/s", flush=True)
    print(f"  workers / SyncVectorEnv:        {ours / sync:9.2f}x")
    record = {"benchmark": "mujoco", "command": "python benchmarks/bench_mujoco.py " + shlex.join(sys.argv[1:]),
              "machine": machine(),
              "env_id": args.env, "env_kwargs": args.env_kwargs, "envs": NUM_TASKS * NUM_TRAJ, "horizon": HORIZON,
              "steps_per_second": {"rollout_workers": ours, "batched_in_process": in_process,
                                   "gymnasium_sync_vector_env": sync}}
    if not args.skip_training:
        times = meta_iteration_times(args.iterations)
        record["cheetah_vel_iteration"] = {"iterations": args.iterations - 1, **times}
        print(f"meta-iteration at cheetah-vel (40 tasks x 20 traj x 200 steps, TRPO), median of {args.iterations - 1}: "
              f"{times['time_total']:.2f} s (sampling {times['time_sampling']:.2f} s, update {times['time_update']:.2f} s)")
    if args.json is not None:
        write_record(record, args.json)


if __name__ == "__main__":
    main()
