"""Training and evaluating across processes (torchrun, gloo): the same tasks and trajectories as one
process, metrics that agree up to floating-point rounding, identical parameters on every rank, and runs
that resume under another number of ranks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing

from rlmaml.checkpoints import load_checkpoint
from rlmaml.cli import main
from rlmaml.distributed import Ranks, RanksDiverged

TINY = ["--num-tasks", "4", "--num-traj", "5", "--horizon", "20", "--hidden-sizes", "16", "--num-eval-tasks", "6",
        "--no-progress", "--no-evaluate"]
RELATIVE = 1e-2
"""How far a 2-rank run's returns and update statistics may drift from one process's over 3 iterations: the
sums over tasks are added in another order, and the rounding grows through the steps it changes."""


def _torchrun(*args: str, ranks: int = 2, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
               "-m", "rlmaml", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _descendants(pid: int) -> list[int]:
    """Every process started by ``pid``, its children's children too (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    children = [child for child, parent in parents.items() if parent == pid]
    return [grandchild for child in children for grandchild in (child, *_descendants(child))]


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _close(a: float, b: float, tolerance: float = RELATIVE) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b), 1e-3)


def _assert_like(single, distributed, keys=("pre_return", "post_return", "kl", "loss_after")):
    assert len(single) == len(distributed)
    # the first iteration samples with the same parameters: the same trajectories, returns equal to rounding
    assert _close(single[0]["pre_return"], distributed[0]["pre_return"], 1e-6)
    for one, two in zip(single, distributed):
        for key in keys:
            assert _close(one[key], two[key]), (one["iteration"], key, one[key], two[key])


@pytest.fixture(scope="module")
def single_and_two_ranks(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    assert main(["train", *TINY, "--num-iterations", "3", "--run-dir", str(root / "one")]) == 0
    done = _torchrun("train", *TINY, "--num-iterations", "3", "--run-dir", str(root / "two"))
    assert done.returncode == 0, done.stderr
    return root


def test_two_ranks_train_as_one_process_does(single_and_two_ranks):
    root = single_and_two_ranks
    _assert_like(_metrics(root / "one"), _metrics(root / "two"))
    # the ranks checked every iteration that their parameters are bitwise equal (or the run would have
    # failed); the policy matches one process's up to the drift of the returns
    one, two = (load_checkpoint(root / name / "checkpoint.pt")["policy"] for name in ("one", "two"))
    for name in one:
        torch.testing.assert_close(one[name], two[name], rtol=RELATIVE, atol=1e-3)
    assert json.loads((root / "one" / "test_tasks.json").read_text()) == \
        json.loads((root / "two" / "test_tasks.json").read_text())


def test_two_ranks_evaluate_the_same_trajectories_as_one_process(single_and_two_ranks, tmp_path):
    run = single_and_two_ranks / "one"
    arguments = ["evaluate", str(run), "--checkpoint", "final", "--num-traj", "5", "--no-progress"]
    assert main([*arguments, "--out-dir", str(tmp_path / "one")]) == 0
    done = _torchrun(*arguments, "--out-dir", str(tmp_path / "two"))
    assert done.returncode == 0, done.stderr
    one, two = (json.loads((tmp_path / name / "evaluation.json").read_text())["results"][0]["per_task"]
                for name in ("one", "two"))
    torch.testing.assert_close(torch.tensor(two), torch.tensor(one), rtol=1e-6, atol=1e-6)


def test_ppo_meta_update_distributes(tmp_path):
    ppo = ["--meta-optimizer", "ppo", "--num-iterations", "3"]
    assert main(["train", *TINY, *ppo, "--run-dir", str(tmp_path / "one")]) == 0
    done = _torchrun("train", *TINY, *ppo, "--run-dir", str(tmp_path / "two"))
    assert done.returncode == 0, done.stderr
    _assert_like(_metrics(tmp_path / "one"), _metrics(tmp_path / "two"), ("pre_return", "post_return", "loss_before"))


def test_a_two_rank_run_killed_resumes_under_one_process(tmp_path):
    run = tmp_path / "killed"
    process = _torchrun("train", *TINY, "--num-iterations", "1000", "--run-dir", str(run), wait=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
            (run / "metrics.jsonl").is_file() and len((run / "metrics.jsonl").read_text().splitlines()) >= 2):
        time.sleep(0.02)
    for pid in [process.pid, *_descendants(process.pid)]:  # the launcher and both ranks (in their own sessions)
        os.kill(pid, signal.SIGKILL)
    process.communicate()
    stopped = load_checkpoint(run / "checkpoint.pt")["iteration"]
    assert 2 <= stopped < 1000
    total = str(stopped + 2)
    assert main(["train", "--resume", str(run), "--num-iterations", total, "--no-progress", "--no-evaluate"]) == 0
    whole = tmp_path / "whole"
    done = _torchrun("train", *TINY, "--num-iterations", total, "--run-dir", str(whole))
    assert done.returncode == 0, done.stderr
    _assert_like(_metrics(whole), _metrics(run))


def test_a_failure_on_one_rank_stops_every_rank_with_one_message(tmp_path):
    done = _torchrun("train", *TINY, "--num-iterations", "2", "--num-tasks", "1", "--run-dir", str(tmp_path / "run"))
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("rlmaml: error")]
    assert errors and all("(rank " in line and "at least as many tasks" in line for line in errors), done.stderr


def _ranks_worker(rank: int, size: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=size)
    ranks = Ranks(rank, size)
    outcome = {"share": ranks.share(5), "sum": ranks.sum(torch.tensor([float(rank + 1)])).item(),
               "broadcast": ranks.broadcast(f"from {rank}"), "gather": ranks.gather(rank * 10)}
    ranks.require_identical(torch.ones(3), "ones")
    try:
        ranks.require_identical(torch.tensor([1.0, float(rank)]), "vectors")
        outcome["diverged"] = None
    except RanksDiverged as error:
        outcome["diverged"] = str(error)
    torch.distributed.destroy_process_group()
    results[rank] = outcome


def test_rank_primitives_over_a_real_process_group():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_ranks_worker, args=(2, port, results), nprocs=2)
    assert [results[r]["share"] for r in range(2)] == [slice(0, 2), slice(2, 5)]
    assert [results[r]["sum"] for r in range(2)] == [3.0, 3.0]
    assert [results[r]["broadcast"] for r in range(2)] == ["from 0", "from 0"]
    assert [results[r]["gather"] for r in range(2)] == [[0, 10], [0, 10]]
    assert all("differ (at 1 of 2 entries)" in results[r]["diverged"] for r in range(2))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    assert main(["train", *TINY, "--device", "cuda", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "rlmaml: error: run.device is cuda, but torch finds no CUDA device here; train with --device cpu"
    assert not (tmp_path / "run").exists()
