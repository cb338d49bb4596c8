"""Scale-out measurements: a cheetah-vel meta-iteration as one process with two rollout workers and as
two torchrun ranks with one each (the same two cores), the parts of an iteration per task (sampling,
update) for cheetah-vel and ant-dir, what the ranks all-reduce per iteration, and the latency of one
all-reduce between two processes on this machine (loopback, gloo). docs/generate.py turns them into
the scaling model of docs/performance.md.

    python benchmarks/bench_distributed.py --json results/benchmarks/distributed.json

Run it on an otherwise idle machine; it takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed
import torch.multiprocessing
from machine import machine, write_record

from rlmaml.checkpoints import load_checkpoint

ITERATIONS = 6
"""Meta-iterations per configuration; the first (start-up, first rollouts) is not timed."""


def train(arguments: list[str], ranks: int, run_dir: Path) -> list[dict]:
    """Train ``rlmaml train ARGUMENTS`` with one process or ``ranks`` torchrun ranks; the metrics records."""
    launcher = [sys.executable, "-m", "rlmaml"] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", "-m", "rlmaml"]
    done = subprocess.run([*launcher, "train", *arguments, "--run-dir", str(run_dir), "--no-evaluate", "--no-progress"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stderr}")
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def medians(records: list[dict]) -> dict[str, float]:
    """Median seconds (and all-reduce traffic) over the timed iterations."""
    timed = records[1:]
    keys = ["time_total", "time_sampling", "time_update"] + [k for k in ("allreduce_calls", "allreduce_bytes")
                                                            if k in timed[0]]
    return {key: statistics.median(r[key] for r in timed) for key in keys} | {"iterations": len(timed)}


def _latency_worker(rank: int, port: int, sizes: list[int], repeats: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    timings = {}
    for size in sizes:
        tensor = torch.ones(size)
        for _ in range(10):
            torch.distributed.all_reduce(tensor)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.distributed.all_reduce(tensor)
            seconds.append(time.perf_counter() - start)
        timings[size] = statistics.median(seconds)
    torch.distributed.destroy_process_group()
    if rank == 0:
        results.update(timings)


def allreduce_latency(sizes: list[int], repeats: int = 300) -> dict[int, float]:
    """Median seconds of one all-reduce of ``size`` float32 values between two processes (gloo, loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_latency_worker, args=(port, sizes, repeats, results), nprocs=2)
    return dict(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()
    record: dict = {"benchmark": "distributed", "command": "python benchmarks/bench_distributed.py"
                    + (f" --json {args.json}" if args.json else ""), "machine": machine(), "iterations": ITERATIONS}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cheetah = ["--preset", "cheetah-vel", "--num-iterations", str(ITERATIONS)]
        one = medians(train([*cheetah, "--num-workers", "2"], 1, root / "one"))
        two = medians(train([*cheetah, "--num-workers", "1"], 2, root / "two"))
        parameters = sum(value.numel() for value in load_checkpoint(root / "two" / "checkpoint.pt")["policy"].values())
        record["cheetah_vel"] = {"one_process_two_workers": one, "two_ranks_one_worker_each": two, "tasks": 40,
                                 "policy_parameters": parameters}
        print(f"cheetah-vel, seconds per meta-iteration (median of {one['iterations']}): 1 process x 2 workers "
              f"{one['time_total']:.2f} (sampling {one['time_sampling']:.2f}, update {one['time_update']:.2f}); "
              f"2 ranks x 1 worker {two['time_total']:.2f} (sampling {two['time_sampling']:.2f}, update "
              f"{two['time_update']:.2f}); all-reduced per iteration: {two['allreduce_calls']:.0f} calls, "
              f"{two['allreduce_bytes'] / 1e6:.2f} MB")
        ant = medians(train(["--preset", "ant-dir", "--num-iterations", "3", "--num-workers", "2"], 1, root / "ant"))
        record["ant_dir"] = {"one_process_two_workers": ant, "tasks": 40}
        print(f"ant-dir, 1 process x 2 workers: {ant['time_total']:.2f} s per meta-iteration (sampling "
              f"{ant['time_sampling']:.2f}, update {ant['time_update']:.2f})")
    sizes = [1, parameters, 16 * parameters]
    latency = allreduce_latency(sizes)
    record["allreduce_seconds"] = {str(size): seconds for size, seconds in latency.items()}
    print("all-reduce between 2 processes on loopback: " + ", ".join(
        f"{size} floats {seconds * 1e6:.0f} us" for size, seconds in latency.items()))
    if args.json:
        write_record(record, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
