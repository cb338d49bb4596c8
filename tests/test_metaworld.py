"""Meta-World ML1 as a task family (runs when the metaworld extra is installed, as in CI)."""

import json
import sys

import numpy as np
import pytest
import torch

from rlmaml.cli import main
from rlmaml.policy import GaussianMLPPolicy
from rlmaml.sampling import TaskSampler

ML1 = "rlmaml/MetaWorldML1-v0"


def test_without_the_extra_the_error_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "metaworld", None)  # import metaworld now raises ImportError
    assert main(["train", "--env", ML1, "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "rlmaml[metaworld]"' in err and len(err.strip().splitlines()) == 1


def test_unknown_skill_is_a_one_line_error(capsys, tmp_path):
    pytest.importorskip("metaworld")
    assert main(["train", "--env", ML1, "--set", 'env_kwargs={"env_name": "reach-v9"}', "--run-dir",
                 str(tmp_path / "r"), "--no-progress"]) == 2
    assert "unknown Meta-World skill 'reach-v9'" in capsys.readouterr().err


def test_tasks_come_from_the_generator_and_trajectories_report_success():
    pytest.importorskip("metaworld")
    sampler = TaskSampler(ML1, horizon=15)
    tasks = sampler.sample_tasks(2, np.random.default_rng(3))
    assert tasks == sampler.sample_tasks(2, np.random.default_rng(3)) != sampler.sample_tasks(2, np.random.default_rng(4))
    assert len(tasks[0]["rand_vec"]) == 6  # reach-v3: initial object and goal positions
    policy = GaussianMLPPolicy(sampler.obs_dim, sampler.act_dim, (8,))
    batch = sampler.sample(policy, policy.params(), tasks, 2, torch.Generator().manual_seed(0), np.random.default_rng(0))
    assert batch.success is not None and batch.success.shape == (2, 2)
    assert batch.observations.shape == (2, 2, 15, 39) and torch.all(batch.mask == 1)


def test_ml1_trains_and_evaluates_with_success_rates(tmp_path, capsys):
    pytest.importorskip("metaworld")
    run = tmp_path / "ml1"
    assert main(["train", "--env", ML1, "--horizon", "20", "--num-tasks", "2", "--num-traj", "2", "--num-iterations",
                 "1", "--hidden-sizes", "8", "--set", "num_eval_tasks=3", "--run-dir", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "success rate after K steps" in out
    (result,) = json.loads((run / "evaluation.json").read_text())["results"]
    assert len(result["success_summary"]) == 4 and len(result["per_task_success"]) == 3
    assert all(0.0 <= row["mean"] <= 1.0 for row in result["success_summary"])
    assert "post_success" in json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
