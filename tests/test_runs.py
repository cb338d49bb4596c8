"""Reading a run folder's files back: torn writes are tolerated, damage is reported, never dropped."""

import errno
import fcntl
import json
import math
import os
import stat

import pytest
import torch

from rlmaml import runs
from rlmaml.checkpoints import load_checkpoint, restore_policy, save_checkpoint
from rlmaml.evaluation import evaluation_tasks
from rlmaml.policy import GaussianMLPPolicy
from rlmaml.runs import (
    EVALUATION_FILES,
    PREVIOUS_EVALUATIONS,
    RunDir,
    RunError,
    RunWriteError,
    append_metrics,
    keep_previous_evaluation,
    lock_run,
    output_dir,
    read_metrics,
    truncate_metrics,
    write_file,
    write_json,
)


def _records(count):
    return [{"iteration": i, "post_return": -float(i)} for i in range(count)]


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records(3)) + '{"iteration": 3, "post_ret')
    assert read_metrics(path) == _records(3)


@pytest.mark.parametrize("bad_line", ["garbage", "5", '{"no_iteration": 1}'])
def test_a_damaged_line_before_the_last_is_an_error_not_a_silent_cut(tmp_path, bad_line):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps(r) for r in _records(3)]
    lines.insert(1, bad_line)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunError, match="metrics.jsonl line 2 is not a metrics record"):
        read_metrics(path)


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_nan_and_infinity_are_written_as_null_and_metrics_read_them_back_as_nan(tmp_path):
    write_json({"stderr": float("nan"), "per_task": [float("inf"), -1.5], "nested": {"x": float("-inf")}},
               tmp_path / "e.json")
    assert _strict_json((tmp_path / "e.json").read_text()) == {"stderr": None, "per_task": [None, -1.5],
                                                                "nested": {"x": None}}
    metrics = tmp_path / "metrics.jsonl"
    for i in range(3):
        append_metrics({"iteration": i, "loss_before": float("nan") if i else 0.5}, metrics)
    truncate_metrics(metrics, 2)
    assert [_strict_json(line) for line in metrics.read_text().splitlines()] == [
        {"iteration": 0, "loss_before": 0.5}, {"iteration": 1, "loss_before": None}]
    first, second = read_metrics(metrics)
    assert first["loss_before"] == 0.5 and math.isnan(second["loss_before"])


@pytest.mark.parametrize("content", ['{"tasks": 5}', '[{"goal": [0, 0]}]', '{"tasks": []}', '{"tasks": [1, 2]}',
                                     '{"tasks": [{"goal": [0.1, 0.2]}'])
def test_damaged_held_out_tasks_are_reported(tmp_path, content):
    run = RunDir(tmp_path)
    run.config.write_text("{}")
    run.test_tasks.write_text(content)
    with pytest.raises(RunError, match="test_tasks.json"):
        evaluation_tasks(run)


def test_checkpoints_that_do_not_fit_are_reported(tmp_path):
    policy = GaussianMLPPolicy(2, 2, (8,))
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"iteration": 3, "policy": GaussianMLPPolicy(2, 2, (8,)).state_dict()}, path)
    restore_policy(policy, load_checkpoint(path), path)  # fits: no error
    with pytest.raises(RunError, match="not a checkpoint with iteration, policy, rng"):
        load_checkpoint(path, ("iteration", "policy", "rng"))
    save_checkpoint({"iteration": 3, "policy": GaussianMLPPolicy(2, 2, (4,)).state_dict()}, path)
    with pytest.raises(RunError, match=r"does not fit the policy of the run's config.json \(size mismatch"):
        restore_policy(policy, load_checkpoint(path), path)
    torch.save([1, 2], path)
    with pytest.raises(RunError, match="not a checkpoint with iteration, policy"):
        load_checkpoint(path)


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_write_leaves_the_old_file_whole_and_says_why(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"iteration": 3, "policy": {}}, path)
    monkeypatch.setattr(runs.os, "fsync", _disk_full)  # the state is serialised in memory; the write fails
    with pytest.raises(RunWriteError, match=f"cannot write {path}: No space left on device"):
        save_checkpoint({"iteration": 4, "policy": {}}, path)
    assert load_checkpoint(path)["iteration"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind


def test_written_files_follow_the_umask_like_open_does(tmp_path):
    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(umask)
        try:
            write_file(b"x", tmp_path / "f")
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == mode


def test_a_lock_file_that_cannot_be_opened_is_a_one_line_error(tmp_path):
    (tmp_path / ".lock").mkdir()  # stands for a read-only folder, which root could still write
    with pytest.raises(RunWriteError, match=r"cannot write .*\.lock: Is a directory"):
        lock_run(RunDir(tmp_path))


def test_a_file_system_without_locks_trains_unlocked(tmp_path, monkeypatch):
    def no_locks(*args):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert lock_run(RunDir(tmp_path)) is None


def test_an_output_folder_made_for_work_that_fails_is_removed_unless_it_holds_files(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with output_dir(tmp_path / "a" / "b" / "c"):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # all three levels it made are gone
    (tmp_path / "kept").mkdir()
    with pytest.raises(RunError):
        with output_dir(tmp_path / "kept" / "new"):
            (tmp_path / "kept" / "new" / "partial.csv").write_text("x")
            raise RunError("failed after writing")
    assert (tmp_path / "kept" / "new" / "partial.csv").exists()
    with pytest.raises(RunError):
        with output_dir(tmp_path / "kept"):
            raise RunError("failed")
    assert (tmp_path / "kept").is_dir()  # it existed before
    with output_dir(tmp_path / "ok"):
        pass
    assert (tmp_path / "ok").is_dir()


def test_keep_previous_evaluation_moves_each_evaluation_to_its_own_folder(tmp_path):
    assert keep_previous_evaluation(tmp_path) is None  # nothing to keep
    contents = []
    for version in ("first", "second"):
        for name in EVALUATION_FILES:
            (tmp_path / name).write_text(f"{version} {name}")
        os.utime(tmp_path / "evaluation.json", (0, 0))  # both written "at the same second"
        contents.append(keep_previous_evaluation(tmp_path))
    first, second = contents
    assert first != second and first.parent == second.parent == tmp_path / PREVIOUS_EVALUATIONS
    assert second.name == first.name + "-2"
    for folder, version in ((first, "first"), (second, "second")):
        assert {p.name: p.read_text() for p in folder.iterdir()} == {n: f"{version} {n}" for n in EVALUATION_FILES}
    assert not any((tmp_path / name).exists() for name in EVALUATION_FILES)
