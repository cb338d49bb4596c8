"""benchmarks/ant_goal_distance.py: how close adapted AntGoal policies get to their goals (issue 4)."""

import json

import numpy as np
import pytest

from rlmaml.cli import main
from rlmaml.evaluation import evaluation_tasks
from rlmaml.runs import RunDir

from conftest import load_benchmark

pytest.importorskip("mujoco")


@pytest.fixture(scope="module")
def distance():
    return load_benchmark("ant_goal_distance")  # it imports its sibling nav_noise_floor.py


def test_goal_distances_match_a_loop_over_trajectories(distance):
    rng = np.random.default_rng(0)
    n, m, t = 3, 4, 6
    observations = rng.normal(size=(n, m, t, 5))
    goals = rng.normal(size=(n, 2))
    lengths = rng.integers(1, t + 1, size=(n, m))
    mask = (np.arange(t) < lengths[..., None]).astype(np.float32)
    result = distance.goal_distances(observations, mask, goals)
    for i in range(n):
        for j in range(m):
            steps = [abs(observations[i, j, s, 0] - goals[i, 0]) + abs(observations[i, j, s, 1] - goals[i, 1])
                     for s in range(lengths[i, j])]
            assert result["start"][i, j] == pytest.approx(steps[0])
            assert result["last"][i, j] == pytest.approx(steps[-1])
            assert result["closest"][i, j] == pytest.approx(min(steps))


@pytest.mark.parametrize("method, lrs", [("maml", [0.1]), ("oracle", [])])  # the oracle is not adapted
def test_adapted_trajectories_are_the_evaluations_and_start_at_the_origin(distance, method, lrs, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "--env", "rlmaml/AntGoal-v0", "--method", method, "--num-tasks", "2", "--num-traj", "2",
                 "--horizon", "5", "--hidden-sizes", "8", "--num-iterations", "1", "--set", "num_eval_tasks=3",
                 "--no-progress", "--no-evaluate", "--run-dir", str(run_dir)]) == 0
    run = RunDir(run_dir)
    tasks = evaluation_tasks(run)
    results = distance.per_step_distances(run, tasks, lrs, num_traj=2)
    assert main(["evaluate", str(run_dir), "--num-steps", str(len(lrs)), "--inner-lr", "0.1", "--num-traj", "2",
                 "--checkpoint", "final", "--out-dir", str(tmp_path / "eval")]) == 0
    per_task = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["results"][0]["per_task"]
    returns = np.stack([result["return"].mean(1) for result in results], axis=1)
    np.testing.assert_allclose(returns, np.array(per_task), rtol=1e-5)
    goal_l1 = np.abs(np.array([task["goal"] for task in tasks])).sum(1)
    for result in results:  # the ant starts at (0, 0) plus Gymnasium's reset noise (at most 0.1 per axis)
        assert np.all(np.abs(result["start"] - goal_l1[:, None]) <= 0.2 + 1e-6)
        assert np.all(result["closest"] <= result["last"] + 1e-9)


def test_refuses_other_families(distance, tmp_path):
    run_dir = tmp_path / "nav"
    assert main(["train", "--num-tasks", "2", "--num-traj", "2", "--horizon", "4", "--hidden-sizes", "8",
                 "--num-iterations", "1", "--no-progress", "--no-evaluate", "--run-dir", str(run_dir)]) == 0
    with pytest.raises(SystemExit, match="not rlmaml/AntGoal-v0"):
        distance.per_step_distances(RunDir(run_dir), evaluation_tasks(RunDir(run_dir)), [], num_traj=2)
