"""benchmarks/nav_noise_floor.py: the noise-floor figures behind issue 4's analysis."""

import numpy as np
import pytest
import torch

from rlmaml.checkpoints import load_checkpoint
from rlmaml.cli import main
from rlmaml.runs import RunDir

from conftest import load_benchmark

@pytest.fixture(scope="module")
def floor():
    return load_benchmark("nav_noise_floor")


def test_noise_free_ideal_policy_walks_straight_to_the_goal(floor):
    # (0.25, 0): moves of 0.1, 0.1, 0.05 leave 0.15, 0.05, 0 to go; (0, -0.15): 0.05, 0
    goals = np.array([[0.25, 0.0], [0.0, -0.15]])
    assert floor.ideal_return(goals, 0.0, 100, np.random.default_rng(0)) == pytest.approx(-(0.2 + 0.05) / 2)


def test_noise_costs_return(floor):
    goals = np.random.default_rng(1).uniform(-0.5, 0.5, size=(500, 2))
    returns = [floor.ideal_return(goals, std, 100, np.random.default_rng(2)) for std in (0.0, 0.2, 0.5)]
    assert returns[0] > returns[1] > returns[2]


def test_adapted_stds_start_at_the_checkpoint_and_follow_every_step(floor, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "--num-tasks", "2", "--num-traj", "3", "--horizon", "8", "--hidden-sizes", "8",
                 "--num-iterations", "1", "--set", "num_eval_tasks=3", "--no-progress", "--no-evaluate",
                 "--run-dir", str(run_dir)]) == 0
    stds = floor.adapted_stds(RunDir(run_dir), [0.5, 0.5], num_traj=3)
    assert len(stds) == 3 and all(len(axes) == 2 for axes in stds)
    expected = load_checkpoint(RunDir(run_dir).checkpoint)["policy"]["log_std"].exp()
    torch.testing.assert_close(torch.tensor(stds[0]), expected, rtol=1e-6, atol=0)
    assert stds[1] != stds[0]  # a step of 0.5 moves the log-std a little
