"""Fault injection: every fault is one line on stderr and exit status 2, and loses nothing on disk."""

import errno
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rlmaml import runs
from rlmaml.checkpoints import MAGIC, load_checkpoint, save_checkpoint
from rlmaml.cli import main
from rlmaml.runs import RunError, read_metrics

TINY = ["--num-tasks", "3", "--num-traj", "4", "--horizon", "10", "--hidden-sizes", "8", "--num-eval-tasks", "4",
        "--snapshot-every", "1", "--no-progress", "--no-evaluate"]


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlmaml: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-iteration run with snapshots, and the same run trained on to 4 iterations."""
    root = tmp_path_factory.mktemp("faults")
    assert main(["train", *TINY, "--num-iterations", "3", "--run-dir", str(root / "run")]) == 0
    shutil.copytree(root / "run", root / "reference")
    assert main(["train", "--resume", str(root / "reference"), "--num-iterations", "4", "--no-progress",
                 "--no-evaluate"]) == 0
    return root


def _copy(trained, tmp_path):
    return shutil.copytree(trained / "run", tmp_path / "run")


def _state(path):
    return load_checkpoint(path, ("iteration", "policy", "rng", "best_return"))


DAMAGES = {
    "random bytes": lambda path: path.write_bytes(os.urandom(3000)),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:500]),
    "one flipped byte": lambda path: path.write_bytes(_flip(path.read_bytes())),
    "crafted pickle": lambda path: path.write_bytes(pickle.dumps(_Evil())),
    "negative iteration": lambda path: _rewrite(path, iteration=-5),
    "string iteration": lambda path: _rewrite(path, iteration="3"),
    "nan parameters": lambda path: _rewrite(path, policy={k: v * float("nan") for k, v in _state(path)["policy"].items()}),
    "nan best return": lambda path: _rewrite(path, best_return=float("nan")),
    "no random streams": lambda path: _rewrite(path, rng=[1, 2]),
}


RESUME_ONLY = ("nan best return", "no random streams")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/rlmaml-pwned",))


def _flip(data: bytes) -> bytes:
    middle = len(MAGIC) + 32 + (len(data) - len(MAGIC) - 32) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


def _rewrite(path, **changes):
    save_checkpoint({**_state(path), **changes}, path)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_checkpoint_is_one_line_for_evaluate_resume_and_branch(trained, tmp_path, capsys, damage):
    run = _copy(trained, tmp_path)
    DAMAGES[damage](run / "checkpoint.pt")
    before = (run / "checkpoint.pt").read_bytes()
    evaluate = ["evaluate", str(run), "--checkpoint", "final", "--num-traj", "2", "--num-tasks", "2",
                "--out-dir", str(tmp_path / "e"), "--no-progress"]
    if damage in RESUME_ONLY:  # evaluation reads the iteration and the policy only, and they are sound
        assert main(evaluate) == 0
    else:
        assert "checkpoint.pt" in _one_line_error(capsys, evaluate)
    for argv in (["train", "--resume", str(run), "--no-progress", "--no-evaluate"],
                 ["train", "--branch", str(run), "--run-dir", str(tmp_path / "b"), "--no-progress", "--no-evaluate"]):
        assert "checkpoint.pt" in _one_line_error(capsys, argv)
    assert (run / "checkpoint.pt").read_bytes() == before and not (tmp_path / "b" / "config.json").exists()
    assert not os.path.exists("/tmp/rlmaml-pwned")


def test_a_damaged_checkpoint_resumes_from_a_snapshot_only_when_asked(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    DAMAGES["one flipped byte"](run / "checkpoint.pt")
    assert "--resume-from N" in _one_line_error(capsys, ["train", "--resume", str(run), "--no-progress"])
    assert "no snapshot of iteration 7" in _one_line_error(
        capsys, ["train", "--resume", str(run), "--resume-from", "7", "--no-progress"])
    assert main(["train", "--resume", str(run), "--resume-from", "2", "--num-iterations", "4", "--no-progress",
                 "--no-evaluate"]) == 0
    strip = lambda records: [{k: v for k, v in r.items() if not k.startswith("time_")} for r in records]  # noqa: E731
    assert strip(read_metrics(run / "metrics.jsonl")) == strip(read_metrics(trained / "reference" / "metrics.jsonl"))
    resumed, reference = _state(run / "checkpoint.pt"), _state(trained / "reference" / "checkpoint.pt")
    assert all(torch.equal(resumed["policy"][k], reference["policy"][k]) for k in reference["policy"])


def test_a_snapshot_of_an_earlier_release_is_refused_as_a_resume_point(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    state = _state(run / "snapshots" / "iteration-00002.pt")
    torch.save({"iteration": 2, "policy": state["policy"]}, run / "snapshots" / "iteration-00002.pt")  # no header
    assert "holds only the policy" in _one_line_error(
        capsys, ["train", "--resume", str(run), "--resume-from", "2", "--no-progress"])
    assert "goes with --resume" in _one_line_error(capsys, ["train", "--resume-from", "2"])


@pytest.mark.parametrize("writes_before_full", [0, 4])  # 0: rewriting config.json; 4: the first write in training
def test_a_full_disk_stops_with_the_resume_command_and_keeps_the_old_files(
        trained, tmp_path, capsys, monkeypatch, writes_before_full):
    run = _copy(trained, tmp_path)
    before = (run / "checkpoint.pt").read_bytes()
    fsyncs = []

    def full(fd):
        fsyncs.append(fd)
        if len(fsyncs) > writes_before_full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(runs.os, "fsync", full)
    err = _one_line_error(capsys, ["train", "--resume", str(run), "--num-iterations", "4", "--no-progress",
                                   "--no-evaluate"])
    assert "No space left on device" in err and f"rlmaml train --resume {run}" in err
    assert ("Training stopped at iteration 3" in err) == (writes_before_full == 4)
    monkeypatch.undo()
    assert _state(run / "checkpoint.pt")["iteration"] in (3, 4)  # whole: the old one, or a complete new one
    if writes_before_full == 0:
        assert (run / "checkpoint.pt").read_bytes() == before
    assert not list(run.glob(".*.tmp")) and not list((run / "snapshots").glob(".*.tmp"))


def test_stale_temporary_files_are_removed_when_a_run_is_opened(trained, tmp_path):
    run = _copy(trained, tmp_path)
    stale = [run / ".checkpoint.pt.abc123.tmp", run / "snapshots" / ".iteration-00001.pt.x.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    (run / "keep.tmp").write_bytes(b"not ours")
    assert main(["train", "--resume", str(run), "--num-iterations", "4", "--no-progress", "--no-evaluate"]) == 0
    assert not any(path.exists() for path in stale) and (run / "keep.tmp").exists()


def test_checkpoints_carry_a_checksum_and_earlier_ones_still_load(tmp_path):
    state = {"iteration": 1, "policy": {"w": torch.ones(2)}}
    save_checkpoint(state, tmp_path / "new.pt")
    assert (tmp_path / "new.pt").read_bytes().startswith(MAGIC)
    torch.save(state, tmp_path / "old.pt")  # as earlier releases wrote them
    for path in (tmp_path / "new.pt", tmp_path / "old.pt"):
        assert torch.equal(load_checkpoint(path)["policy"]["w"], torch.ones(2))
    with pytest.raises(RunError, match="does not match its checksum"):
        (tmp_path / "new.pt").write_bytes(_flip((tmp_path / "new.pt").read_bytes()))
        load_checkpoint(tmp_path / "new.pt")


def test_a_second_ctrl_c_while_the_interrupt_checkpoint_is_written_does_not_cut_it_short(
        tmp_path, capsys, monkeypatch):
    from rlmaml import trainer as trainer_module

    iterations = []
    real_iteration, real_save = trainer_module.Trainer.train_iteration, trainer_module.save_checkpoint

    def interrupted_on_the_third(self):
        iterations.append(self.iteration)
        if len(iterations) == 3:
            raise KeyboardInterrupt
        return real_iteration(self)

    def save_while_interrupted(state, path):
        if len(iterations) == 3 and path.name == "checkpoint.pt":
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C again during the write
        real_save(state, path)

    monkeypatch.setattr(trainer_module.Trainer, "train_iteration", interrupted_on_the_third)
    monkeypatch.setattr(trainer_module, "save_checkpoint", save_while_interrupted)
    run = tmp_path / "run"
    assert main(["train", *TINY, "--num-iterations", "10", "--set", "run.checkpoint_every=5",
                 "--run-dir", str(run)]) == 130
    err = capsys.readouterr().err
    assert "the checkpoint holds iteration 2" in err and load_checkpoint(run / "checkpoint.pt")["iteration"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after the write


@pytest.mark.slow
def test_sigterm_stops_evaluate_with_one_line_and_no_empty_output_folder(trained, tmp_path):
    out = tmp_path / "never"
    process = subprocess.Popen([sys.executable, "-m", "rlmaml", "evaluate", str(trained / "run"), "--num-steps", "300",
                                "--num-traj", "1000", "--out-dir", str(out), "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not out.exists():
            time.sleep(0.05)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and err.strip().endswith("rlmaml: interrupted") and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("flag, value", [("--num-tasks", "1000000000"), ("--horizon", "1000000000"),
                                         ("--num-traj", "1000000000")])
def test_sizes_that_cannot_fit_in_memory_are_refused_before_anything_is_written(tmp_path, capsys, flag, value):
    err = _one_line_error(capsys, ["train", flag, value, "--run-dir", str(tmp_path / "run")])
    assert "would need at least" in err and "GiB of memory" in err and not (tmp_path / "run").exists()


def test_an_evaluation_too_large_for_memory_is_refused_up_front(trained, tmp_path, capsys):
    err = _one_line_error(capsys, ["evaluate", str(trained / "run"), "--num-traj", "1000000000",
                                   "--out-dir", str(tmp_path / "e"), "--no-progress"])
    assert "evaluating 4 tasks x 1000000000 trajectories" in err and not (tmp_path / "e").exists()


@pytest.mark.parametrize("optimizer", ["trpo", "ppo"])
def test_tasks_with_non_finite_rewards_are_dropped_named_and_counted(tmp_path, capsys, monkeypatch, optimizer):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    run = tmp_path / "run"
    assert main(["train", "--env", "custom_family:custom/NanReward-v0", "--num-tasks", "10", "--num-traj", "4",
                 "--hidden-sizes", "8", "--num-iterations", "6", "--num-eval-tasks", "10", "--meta-optimizer",
                 optimizer, "--no-progress", "--no-evaluate", "--run-dir", str(run)]) == 0
    records = read_metrics(run / "metrics.jsonl")
    err = capsys.readouterr().err
    assert any(r["non_finite_tasks"] for r in records) and "whose rewards or observations were not finite" in err
    assert '{"target": 0.' in err  # the dropped tasks are named
    with_nan = [r for r in records if r["non_finite_tasks"]]
    assert all(r["step_accepted"] == 1.0 and math.isfinite(r["post_return"]) for r in with_nan)  # others still update
    assert f"{len(with_nan)} of 6 meta-iterations dropped tasks" in err
    evaluation_error = _one_line_error(capsys, ["evaluate", str(run), "--num-traj", "2", "--no-progress",
                                                "--out-dir", str(tmp_path / "e")])
    assert "gave non-finite rewards for" in evaluation_error and '{"target": 0.' in evaluation_error


def test_iterations_whose_every_task_is_non_finite_stop_training(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from custom_family import NanRewardEnv

    monkeypatch.setattr(NanRewardEnv, "step", lambda self, action: (
        np.zeros(1, dtype=np.float32), float("nan"), False, False, {}))
    assert main(["train", "--env", "custom_family:custom/NanReward-v0", "--num-tasks", "3", "--num-traj", "2",
                 "--hidden-sizes", "8", "--num-iterations", "20", "--no-progress", "--no-evaluate",
                 "--run-dir", str(tmp_path / "run")]) == 2
    *warnings, error = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 4 and all(line.startswith("rlmaml: warning: iteration") for line in warnings)
    assert error.startswith("rlmaml: error: no task's rewards and observations were finite in the last 5")


ENV_TRAIN = ["--num-iterations", "1", "--num-tasks", "2", "--num-traj", "2", "--hidden-sizes", "8", "--no-progress",
             "--no-evaluate"]


@pytest.mark.parametrize("source, words", [
    ("raise RuntimeError('this module is broken')\n", "raised RuntimeError: this module is broken"),
    ("def broken(:\n    pass\n", "syntax error in"),
])
def test_a_module_env_that_fails_to_import_is_one_line(tmp_path, capsys, monkeypatch, source, words):
    (tmp_path / "mymod.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    err = _one_line_error(capsys, ["train", "--env", "mymod:mine/X-v0", *ENV_TRAIN, "--run-dir", str(tmp_path / "r")])
    assert "mymod" in err and words in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("env_id, words", [
    ("custom_family:broken/DiscreteActions-v0", "has Box observations and Discrete actions"),
    ("custom_family:custom/NoHorizon-v0", "registered without max_episode_steps"),
    ("custom_family:custom/GrowingObs-v0", "step returned an observation of shape [2] where it had [1]"),
])
def test_envs_that_break_the_protocol_are_one_line_naming_the_env(tmp_path, capsys, monkeypatch, env_id, words):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    err = _one_line_error(capsys, ["train", "--env", env_id, *ENV_TRAIN, "--run-dir", str(tmp_path / "r")])
    assert words in err
    if (tmp_path / "r" / "config.json").exists():  # the fault showed while training: the run can go on
        assert f"rlmaml train --resume {tmp_path / 'r'}" in err


def test_check_env_fails_a_changing_shape_and_warns_of_infinite_observations(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    assert main(["check-env", "custom_family:custom/GrowingObs-v0"]) == 1
    assert "FAIL  episodes" in capsys.readouterr().out
    assert main(["check-env", "custom_family:custom/InfObs-v0"]) == 0
    assert "WARN  episodes           non-finite observations or rewards" in capsys.readouterr().out


def test_a_tampered_test_tasks_file_is_one_line(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    (run / "test_tasks.json").write_text(json.dumps({"seed": 0, "stream": "test_tasks", "tasks": [{"wrong": 1}]}))
    err = _one_line_error(capsys, ["evaluate", str(run), "--num-traj", "2", "--no-progress",
                                   "--out-dir", str(tmp_path / "e")])
    assert "cannot set its tasks ({\"wrong\": 1})" in err and "test_tasks.json" in err


@pytest.mark.parametrize("name", [".lock", "snapshots", "checkpoint.pt"])
def test_a_run_folder_whose_files_are_links_is_refused(trained, tmp_path, capsys, name):
    run = _copy(trained, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = run / name
    if target.is_dir():
        shutil.move(target, outside / name)
    elif target.exists():
        shutil.move(target, outside / name)
    target.symlink_to(outside / name, target_is_directory=name == "snapshots")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in outside.rglob("*"))
    err = _one_line_error(capsys, ["train", "--resume", str(run), "--num-iterations", "4", "--no-progress",
                                   "--no-evaluate"])
    assert f"{target} is a symbolic link" in err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in outside.rglob("*")) == before  # nothing written outside


def test_a_run_folders_config_does_not_import_a_module_from_the_working_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    run = tmp_path / "run"
    assert main(["train", "--env", "custom_family:custom/Target1D-v0", *ENV_TRAIN, "--run-dir", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    config["task"]["env_id"] = "planted:evil/X-v0"  # a downloaded run folder naming a module of the folder you stand in
    (run / "config.json").write_text(json.dumps(config))
    (tmp_path / "planted.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    for argv in (["evaluate", str(run), "--no-progress"], ["train", "--resume", str(run), "--no-progress"]):
        err = _one_line_error(capsys, argv)
        assert "is in the working directory, from which rlmaml does not import" in err
    assert not (tmp_path / "planted.py.ran").exists()


def test_a_protocol_fault_inside_a_rollout_worker_is_one_line_too(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    err = _one_line_error(capsys, ["train", "--env", "custom_family:custom/GrowingObs-v0", *ENV_TRAIN,
                                   "--num-workers", "2", "--run-dir", str(tmp_path / "r")])
    assert err.startswith("rlmaml: error: rollout worker 0: ") and "observation of shape [2]" in err
    assert f"rlmaml train --resume {tmp_path / 'r'}" in err
