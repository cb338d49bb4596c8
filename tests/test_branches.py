import json

import pytest

from rlmaml.branches import branch_run
from rlmaml.checkpoints import load_checkpoint
from rlmaml.cli import main
from rlmaml.config import ConfigError, TrainConfig, load_config
from rlmaml.runs import RunDir, RunError, read_metrics
from rlmaml.trainer import Trainer

from conftest import config_of

TINY = dict(num_tasks=3, num_traj=4, horizon=10, hidden_sizes=(8,), num_eval_tasks=5, seed=3, snapshot_every=1)
TIMING = ("time_sampling", "time_update", "time_total")


def _without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def _train(config: TrainConfig, path):
    with Trainer.create(config, path) as trainer:
        trainer.train(progress=False)
    return RunDir(path)


def _train_branch(source, path, changes):
    branch_run(source, path, changes)
    with Trainer.resume(path) as trainer:
        trainer.train(progress=False)
    return RunDir(path)


def _files(run: RunDir) -> dict[str, bytes]:
    return {str(p.relative_to(run.path)): p.read_bytes() for p in sorted(run.path.rglob("*")) if p.is_file()}


def test_a_branch_without_changes_continues_like_the_uninterrupted_run(tmp_path):
    reference = _train(config_of(**TINY, num_iterations=4), tmp_path / "reference")
    source = _train(config_of(**TINY, num_iterations=2), tmp_path / "source")
    branch = _train_branch(source.path, tmp_path / "branch", {"num_iterations": 4})
    assert _without_timing(read_metrics(branch.metrics)) == _without_timing(read_metrics(reference.metrics))
    assert branch.test_tasks.read_bytes() == reference.test_tasks.read_bytes()
    assert load_checkpoint(branch.best_checkpoint)["post_return"] == load_checkpoint(reference.best_checkpoint)[
        "post_return"]
    assert branch.snapshot_iterations() == [1, 2, 3, 4]


def test_a_branch_changes_its_settings_only_and_leaves_the_source_alone(tmp_path):
    source = _train(config_of(**TINY, num_iterations=3), tmp_path / "source")
    before = _files(source)
    same = _train_branch(source.path, tmp_path / "same", {"num_iterations": 4})
    wider = _train_branch(source.path, tmp_path / "wider", {"num_iterations": 4, "max_kl": 0.05})
    assert _files(source) == before
    assert load_config(wider.config) == load_config(source.config).with_values({"num_iterations": 4, "max_kl": 0.05})
    assert json.loads(wider.branch.read_text()) == {
        "source": str(source.path.resolve()), "iteration": 3,
        "changed": {"num_iterations": [3, 4], "outer.trpo.max_kl": [0.01, 0.05]}}
    kept, changed = read_metrics(same.metrics), read_metrics(wider.metrics)
    assert _without_timing(changed[:3]) == _without_timing(read_metrics(source.metrics))
    assert changed[3]["pre_return"] == kept[3]["pre_return"]  # same policy and random streams at the branch point
    assert changed[3]["kl"] != kept[3]["kl"]  # a different trust region from there on
    for iteration in (1, 2, 3):
        assert wider.snapshot(iteration).read_bytes() == source.snapshot(iteration).read_bytes()


def test_a_branch_copies_history_up_to_the_checkpoint_only(tmp_path):
    source = _train(config_of(**TINY, num_iterations=2), tmp_path / "source")
    with source.metrics.open("a") as handle:  # as if killed between logging iteration 2 and its checkpoint
        handle.write(json.dumps({**read_metrics(source.metrics)[-1], "iteration": 2}) + "\n")
    branch_run(source.path, tmp_path / "branch", {"num_iterations": 3})
    branch = RunDir(tmp_path / "branch")
    assert [r["iteration"] for r in read_metrics(branch.metrics)] == [0, 1]
    assert branch.best_checkpoint.read_bytes() == source.best_checkpoint.read_bytes()
    assert branch.snapshot_iterations() == [1, 2]


def test_a_branch_refuses_what_would_not_continue_the_same_run(tmp_path):
    source = _train(config_of(**TINY, num_iterations=2), tmp_path / "source")
    for changes, words in (({"hidden_sizes": [16]}, "cannot change policy.hidden_sizes"), ({"seed": 4}, "cannot change seed"),
                           ({"env_kwargs": {"action_mode": "clip"}}, "cannot change task.env_kwargs"),
                           ({"num_iterations": 1}, "already trained 2 iterations"),
                           ({"no_such_field": 1}, "no_such_field")):
        with pytest.raises(ConfigError, match=words):
            branch_run(source.path, tmp_path / "refused", changes)
    assert not (tmp_path / "refused").exists()
    with pytest.raises(RunError, match="already holds a run"):
        branch_run(source.path, source.path, {})
    with pytest.raises(RunError, match="does not exist"):
        branch_run(tmp_path / "missing", tmp_path / "refused", {})


def test_the_command_line_branches_a_run(capsys, tmp_path):
    tiny = ["--num-tasks", "3", "--num-traj", "4", "--horizon", "10", "--hidden-sizes", "8", "--num-iterations", "2",
            "--set", "num_eval_tasks=4", "--no-progress", "--no-evaluate"]
    source, branch = tmp_path / "source", tmp_path / "branch"
    assert main(["train", *tiny, "--run-dir", str(source)]) == 0
    assert main(["train", "--branch", str(source), "--run-dir", str(branch), "--num-iterations", "3",
                 "--max-kl", "0.02", "--no-progress", "--no-evaluate"]) == 0
    out = capsys.readouterr().out
    assert f"Branched {source} at iteration 2 into {branch} (num_iterations 2 -> 3, outer.trpo.max_kl 0.01 -> 0.02)" in out
    assert [r["iteration"] for r in read_metrics(RunDir(branch).metrics)] == [0, 1, 2]
    for argv, words in ((["--branch", str(source), "--preset", "nav-paper"], "not --preset"),
                        (["--branch", str(source), "--resume", str(branch)], "--resume continues a run")):
        assert main(["train", *argv, "--run-dir", str(tmp_path / "other")]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err
