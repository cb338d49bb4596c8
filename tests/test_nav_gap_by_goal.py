"""benchmarks/nav_gap_by_goal.py: where an adapted Navigation2D policy loses return (issue 4)."""

import json

import numpy as np
import pytest
import torch

from rlmaml.adaptation import detached
from rlmaml.cli import main
from rlmaml.evaluation import evaluation_tasks, loaded_run
from rlmaml.runs import RunDir
from rlmaml.tasks import make_env

from conftest import load_benchmark

HORIZON = 8


@pytest.fixture(scope="module")
def gap():
    return load_benchmark("nav_gap_by_goal")  # it imports its sibling nav_noise_floor.py


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("gap") / "run"
    assert main(["train", "--num-tasks", "2", "--num-traj", "3", "--horizon", str(HORIZON), "--hidden-sizes", "8",
                 "--num-iterations", "1", "--set", "num_eval_tasks=3", "--no-progress", "--no-evaluate",
                 "--run-dir", str(path)]) == 0
    return path


def test_sampled_returns_are_the_evaluations(gap, run_dir, tmp_path):
    results, distances = gap.per_step_results(RunDir(run_dir), [0.5, 0.25], num_traj=3)
    assert main(["evaluate", str(run_dir), "--num-steps", "2", "--inner-lr", "0.5", "--num-traj", "3",
                 "--checkpoint", "final", "--out-dir", str(tmp_path / "eval")]) == 0
    per_task = np.array(json.loads((tmp_path / "eval" / "evaluation.json").read_text())["results"][0]["per_task"])
    np.testing.assert_allclose(np.stack([result["sampled"] for result in results], axis=1), per_task, rtol=1e-5)
    goals = np.array([task["goal"] for task in evaluation_tasks(RunDir(run_dir))])
    np.testing.assert_allclose(distances, np.linalg.norm(goals, axis=1))


def test_noise_free_path_matches_a_step_by_step_rollout_of_the_mean(gap, run_dir):
    results, _ = gap.per_step_results(RunDir(run_dir), [], num_traj=3)
    with loaded_run(RunDir(run_dir)) as trainer:
        params = detached(trainer.policy.params())
        for n, task in enumerate(evaluation_tasks(RunDir(run_dir))):
            env = make_env("rlmaml/Navigation2D-v0")
            env.unwrapped.set_task(task)
            obs, _ = env.reset(seed=0)
            total = reward = 0.0
            for _ in range(HORIZON):
                mean, _ = trainer.policy.distribution(params, torch.as_tensor(obs, dtype=torch.float32).view(1, 1, 2))
                obs, reward, terminated, _, _ = env.step(mean.view(2).numpy())
                total += reward
                if terminated:
                    break
            assert results[0]["mean_path"][n] == pytest.approx(total, rel=1e-5)
            assert results[0]["miss"][n] == pytest.approx(-reward, rel=1e-5)  # distance after the last move
