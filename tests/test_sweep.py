"""rlmaml sweep: the published comparisons choose checkpoints and step sizes on
validation tasks only, then evaluate the choice on the test tasks exactly as `rlmaml evaluate` does."""

import csv
import json
import shutil
import subprocess
import sys

import pytest

from rlmaml.cli import main

SWEEP = ["-m", "rlmaml", "sweep"]
TINY = ["--num-tasks", "3", "--num-traj", "4", "--horizon", "10", "--hidden-sizes", "8", "--num-iterations", "2",
        "--set", "num_eval_tasks=4", "--set", "snapshot_every=1", "--no-progress", "--no-evaluate"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    runs = {method: root / method for method in ("maml", "random", "oracle")}
    for method, path in runs.items():
        assert main(["train", *TINY, "--method", method, "--run-dir", str(path)]) == 0
    runs["maml-copy"] = shutil.copytree(runs["maml"], root / "maml-copy")  # a second run of one method
    out = root / "out"
    subprocess.run([sys.executable, *SWEEP, str(runs["maml"]), str(runs["maml-copy"]), str(runs["random"]),
                    "--oracle", str(runs["oracle"]),
                    "--checkpoints", "all", "--first", "0.05", "0.3", "--factors", "1", "0.5", "--select-step", "1",
                    "--num-steps", "2", "--validation-traj", "3", "--num-traj", "3", "--out-dir", str(out)],
                   check=True, capture_output=True, text=True)
    with (out / "step_sizes.csv").open() as handle:
        grid = list(csv.DictReader(handle))
    return runs, grid, json.loads((out / "evaluation.json").read_text())


def test_grid_covers_every_checkpoint_and_schedule_random_only_its_initial_policy(sweep):
    runs, grid, _ = sweep
    maml_rows = {(r["checkpoint"], float(r["first_step_size"]), float(r["later_factor"]))
                 for r in grid if r["run"] == str(runs["maml"])}
    assert maml_rows == {(c, a, f) for c in ("final", "1", "2") for a in (0.05, 0.3) for f in (1.0, 0.5)}
    assert {r["checkpoint"] for r in grid if r["run"] == str(runs["random"])} == {"final"}
    assert not any(r["run"] == str(runs["oracle"]) for r in grid)  # the oracle is not tuned


def test_choice_is_the_best_validation_row_after_the_selected_step(sweep):
    runs, grid, evaluation = sweep
    for method in ("maml", "random"):
        rows = [r for r in grid if r["run"] == str(runs[method])]
        best = max(rows, key=lambda r: (float(r["return_1"]), float(r["return_1"]) + float(r["return_2"])))
        chosen = evaluation["selection"][str(runs[method])]
        assert (chosen["checkpoint"], chosen["first"], chosen["later_factor"]) == \
            (best["checkpoint"], float(best["first_step_size"]), float(best["later_factor"]))


def test_test_table_equals_rlmaml_evaluate_with_the_chosen_settings(sweep, tmp_path):
    runs, grid, evaluation = sweep
    assert evaluation["task_set"] == "test"
    chosen = evaluation["selection"][str(runs["maml"])]
    assert main(["evaluate", str(runs["maml"]), "--checkpoint", chosen["checkpoint"], "--num-steps", "2",
                 "--num-traj", "3", "--inner-lr", str(chosen["first"]), "--later-lr-factor", str(chosen["later_factor"]),
                 "--out-dir", str(tmp_path)]) == 0
    direct = json.loads((tmp_path / "evaluation.json").read_text())["results"][0]
    swept = next(r for r in evaluation["results"] if r["run"] == str(runs["maml"]))
    assert swept["per_task"] == direct["per_task"] and swept["step_sizes"] == direct["step_sizes"]
    validation = [r for r in grid if r["run"] == str(runs["maml"]) and r["checkpoint"] == chosen["checkpoint"]
                  and float(r["first_step_size"]) == chosen["first"] and float(r["later_factor"]) == chosen["later_factor"]]
    assert round(swept["summary"][0]["mean"], 3) != float(validation[0]["return_0"])  # other tasks than validation
    oracle = next(r for r in evaluation["results"] if r["method"] == "oracle")
    assert oracle["checkpoint"] == "final"


def test_two_runs_of_one_method_get_labels_naming_their_folders(sweep):
    runs, _, evaluation = sweep
    labels = {r["run"]: r["label"] for r in evaluation["results"]}
    assert labels[str(runs["maml"])].endswith("[maml]") and labels[str(runs["maml-copy"])].endswith("[maml-copy]")
    assert labels[str(runs["random"])] == "random init"


def test_paper_curves_join_the_test_table_and_a_horizon_they_do_not_match_stops_before_the_sweep(sweep, tmp_path):
    runs, _, _ = sweep
    refused = subprocess.run([sys.executable, *SWEEP, str(runs["maml"]), "--paper",
                              "--out-dir", str(tmp_path / "no")], capture_output=True, text=True)
    assert refused.returncode == 2 and "horizon 10" in refused.stderr and not (tmp_path / "no").exists()
    run = tmp_path / "h100"
    assert main(["train", "--num-tasks", "2", "--num-traj", "2", "--horizon", "100", "--hidden-sizes", "8",
                 "--num-iterations", "1", "--no-progress", "--no-evaluate", "--run-dir", str(run)]) == 0
    done = subprocess.run([sys.executable, *SWEEP, str(run), "--paper", "--first", "0.1", "--factors", "0.5",
                           "--num-steps", "1", "--select-step", "1", "--validation-traj", "2", "--num-traj", "2",
                           "--out-dir", str(tmp_path / "out")], check=True, capture_output=True, text=True)
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text())["paper"]["curves"]["maml"] == [-40.4, -11.7]
    assert "paper: MAML" in done.stdout


def test_a_return_scaled_sweep_applies_the_rule_to_every_adapted_run(sweep, tmp_path):
    runs, _, _ = sweep
    out = tmp_path / "scaled"
    subprocess.run([sys.executable, *SWEEP, str(runs["maml"]), "--oracle", str(runs["oracle"]),
                    "--step-rule", "return-scaled", "--first", "0.01", "--factors", "1", "--num-steps", "1",
                    "--select-step", "1", "--validation-traj", "3", "--num-traj", "3", "--out-dir", str(out)],
                   check=True, capture_output=True, text=True)
    results = {r["method"]: r for r in json.loads((out / "evaluation.json").read_text())["results"]}
    assert (results["maml"]["step_rule"], results["maml"]["step_sizes"]) == ("return-scaled", [0.01])
    assert "step_rule" not in results["oracle"]  # no step to size
    assert main(["evaluate", str(runs["maml"]), "--checkpoint", "final", "--num-steps", "1", "--num-traj", "3",
                 "--step-rule", "return-scaled", "--inner-lr", "0.01", "--no-progress", "--out-dir", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "evaluation.json").read_text())["results"][0]["per_task"] == results["maml"]["per_task"]
    refused = subprocess.run([sys.executable, *SWEEP, str(runs["maml"]), "--target-return", "3",
                              "--out-dir", str(tmp_path / "no")], capture_output=True, text=True)
    assert refused.returncode == 2 and "inner.target_return applies only to inner.step_rule return-scaled" in refused.stderr
    assert not (tmp_path / "no").exists()
    refused = subprocess.run([sys.executable, *SWEEP, str(runs["maml"]), "--num-steps", "1",
                              "--out-dir", str(tmp_path / "no")], capture_output=True, text=True)
    assert refused.returncode == 2 and "--select-step must be between 0 and --num-steps (1), got 2" in refused.stderr
