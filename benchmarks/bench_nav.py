"""Benchmark the Navigation2D paper preset: seconds per meta-iteration, rollout throughput, peak memory.

Usage: python benchmarks/bench_nav.py [--iterations 20] [--warmup 3] [--set FIELD=VALUE ...]
Reports medians; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine, write_record

import rlmaml
from rlmaml.config import ConfigError, resolve
from rlmaml.flags import parse_set
from rlmaml.memory import keep_freed_memory
from rlmaml.trainer import Trainer


def rollout_throughput(trainer: Trainer, repeats: int) -> float:
    """Env steps per second of one batched rollout (all tasks x trajectories, policy in the loop)."""
    config = trainer.config
    tasks = trainer.sampler.sample_tasks(config.task.num_tasks, np.random.default_rng(0))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        batch = trainer.sampler.sample(trainer.policy, trainer.policy.params(), tasks, config.task.num_traj,
                                       trainer.streams.policy_noise, trainer.streams.env_seeds)
        rates.append(float(batch.mask.sum()) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20, help="timed meta-iterations")
    parser.add_argument("--warmup", type=int, default=3, help="untimed meta-iterations first")
    parser.add_argument("--preset", default="nav-paper")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="config field (VALUE as JSON, else a string), as for rlmaml train")
    parser.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    args = parser.parse_args()
    keep_freed_memory()  # as rlmaml train does
    try:
        overrides = dict(parse_set(item) for item in args.set)
        config = resolve(args.preset, overrides={**overrides, "num_iterations": args.warmup + args.iterations})
    except ConfigError as error:
        parser.error(str(error))
    with tempfile.TemporaryDirectory() as folder, Trainer.create(config, Path(folder) / "run") as trainer:
        records = []
        for _ in range(config.num_iterations):
            records.append(trainer.train_iteration())
            trainer.iteration += 1
        steps_per_second = rollout_throughput(trainer, repeats=10)
    timed = records[args.warmup:]
    median = {key: statistics.median(r[key] for r in timed) for key in ("time_total", "time_sampling", "time_update")}
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, rlmaml {rlmaml.__version__}")
    print(f"preset {args.preset} {overrides or ''}: {config.task.num_tasks} tasks x {config.task.num_traj} traj x "
          f"horizon {trainer.sampler.horizon}, {config.outer.trpo.cg_iterations} CG iterations, "
          f"hvp_traj_fraction {config.outer.trpo.hvp_traj_fraction}")
    print(f"median seconds per meta-iteration over {len(timed)} (after {args.warmup} warm-up): "
          f"{median['time_total']:.3f}  (sampling + advantages {median['time_sampling']:.3f}, "
          f"TRPO meta-update {median['time_update']:.3f})")
    print(f"median line-search steps: {statistics.median(r['line_search_steps'] for r in timed)}")
    print(f"rollout throughput (one batched rollout, policy in the loop): {steps_per_second:,.0f} env steps/s")
    print(f"peak resident memory: {peak_mib:.0f} MiB")
    if args.json is not None:
        record = {"benchmark": "nav", "command": "python benchmarks/bench_nav.py " + shlex.join(sys.argv[1:]),
                  "machine": {**machine(), "rlmaml": rlmaml.__version__}, "preset": args.preset, "overrides": overrides,
                  "timed_iterations": len(timed), "seconds_per_iteration": median["time_total"],
                  "seconds_sampling": median["time_sampling"], "seconds_update": median["time_update"],
                  "rollout_steps_per_second": steps_per_second, "peak_memory_mib": peak_mib}
        write_record(record, args.json)



if __name__ == "__main__":
    main()
