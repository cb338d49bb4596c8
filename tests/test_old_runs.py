"""Run folders written by earlier releases (a flat config.json, no sections) still evaluate, resume
and branch. tests/data/flat-config-run was made by such a release: ``rlmaml train --preset nav-paper
--seed 3 --num-iterations 2 --num-tasks 3 --num-traj 2 --horizon 10 --hidden-sizes 8,8 --set
num_eval_tasks=3 --set snapshot_every=1 --set num_workers=0``."""

import json
import shutil

import pytest

import rlmaml
from rlmaml.cli import main
from rlmaml.runs import read_metrics

from conftest import REPO_ROOT

OLD_RUN = REPO_ROOT / "tests" / "data" / "flat-config-run"


@pytest.fixture
def old_run(tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(OLD_RUN, copy)
    return copy


def test_an_old_run_evaluates(old_run, tmp_path, capsys):
    assert main(["evaluate", str(old_run), "--checkpoint", "final,best,1", "--num-traj", "3", "--num-steps", "2",
                 "--out-dir", str(tmp_path / "eval"), "--no-progress"]) == 0
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert [r["label"] for r in evaluation["results"]] == ["MAML (final, it. 2)", "MAML (best, it. 0)", "MAML (it. 1)"]
    assert evaluation["num_tasks"] == 3 and all(len(r["summary"]) == 3 for r in evaluation["results"])


def test_an_old_run_resumes_and_keeps_its_history(old_run):
    before = read_metrics(old_run / "metrics.jsonl")
    assert main(["train", "--resume", str(old_run), "--num-iterations", "3", "--no-progress", "--no-evaluate"]) == 0
    after = read_metrics(old_run / "metrics.jsonl")
    assert after[:2] == before and [r["iteration"] for r in after] == [0, 1, 2]
    saved = json.loads((old_run / "config.json").read_text())  # rewritten in sections, same settings
    assert saved["num_iterations"] == 3 and saved["task"]["num_tasks"] == 3 and saved["outer"]["trpo"]["max_kl"] == 0.01


def test_an_old_run_branches(old_run, tmp_path):
    branch = tmp_path / "branch"
    assert main(["train", "--branch", str(old_run), "--run-dir", str(branch), "--num-iterations", "3",
                 "--max-kl", "0.02", "--no-progress", "--no-evaluate"]) == 0
    record = json.loads((branch / "branch.json").read_text())
    assert record["changed"] == {"num_iterations": [2, 3], "outer.trpo.max_kl": [0.01, 0.02]}
    assert len(read_metrics(branch / "metrics.jsonl")) == 3


def test_an_old_run_loads_from_python():
    run = rlmaml.load_run(OLD_RUN)
    assert run.config.policy.hidden_sizes == (8, 8) and len(run.metrics) == 2 and len(run.test_tasks) == 3
    assert run.policy("best").obs_dim == 2
