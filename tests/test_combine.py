"""rlmaml combine: separate evaluations on the same tasks, combined, are one evaluation."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rlmaml.cli import main
from rlmaml.combine import CombineError, combine

SCRIPT = ["-m", "rlmaml", "combine"]
TINY = ["--num-tasks", "3", "--num-traj", "4", "--horizon", "10", "--hidden-sizes", "8", "--num-iterations", "2",
        "--set", "num_eval_tasks=4", "--no-progress", "--no-evaluate"]
EVAL = ["--num-steps", "2", "--num-traj", "3", "--checkpoint", "final", "--no-progress"]


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory):
    """Runs of three methods on seed 0 and one MAML run on seed 1; the seed-0 runs evaluated together and
    each on its own."""
    root = tmp_path_factory.mktemp("combine")
    runs = {name: root / name for name in ("maml", "oracle", "random", "maml-seed1")}
    for name, path in runs.items():
        method = name.split("-")[0]
        assert main(["train", *TINY, "--method", method, "--seed", "1" if "seed1" in name else "0",
                     "--run-dir", str(path)]) == 0
    files = {}
    for name in ("maml", "oracle", "random"):
        assert main(["evaluate", str(runs[name]), *EVAL, "--out-dir", str(root / f"eval-{name}")]) == 0
        files[name] = root / f"eval-{name}" / "evaluation.json"
    assert main(["evaluate", str(runs["maml"]), str(runs["oracle"]), str(runs["random"]), *EVAL,
                 "--out-dir", str(root / "joint")]) == 0
    assert main(["evaluate", str(runs["maml-seed1"]), *EVAL, "--out-dir", str(root / "eval-seed1")]) == 0
    files["maml-seed1"] = root / "eval-seed1" / "evaluation.json"
    return runs, files, json.loads((root / "joint" / "evaluation.json").read_text())


def test_combined_separate_evaluations_equal_one_joint_evaluation(evaluations, tmp_path):
    runs, files, joint = evaluations
    assert joint["tasks"] == json.loads((runs["maml"] / "test_tasks.json").read_text())["tasks"]  # all 4 recorded
    out = tmp_path / "combined"
    done = subprocess.run([sys.executable, *SCRIPT, str(files["maml"]), str(files["oracle"]), str(files["random"]),
                           "--out-dir", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    combined = json.loads((out / "evaluation.json").read_text())
    assert [r["per_task"] for r in combined["results"]] == [r["per_task"] for r in joint["results"]]
    assert combined["paired"] == joint["paired"]
    assert {"env_id", "task_set", "num_tasks", "num_traj", "seed"} <= combined.keys()
    assert all(combined[key] == joint[key] for key in ("env_id", "task_set", "num_tasks", "num_traj", "seed"))
    assert combined["tasks"] == joint["tasks"]
    assert (out / "evaluation.csv").is_file() and (out / "evaluation.png").stat().st_size > 0


def test_a_label_takes_one_result_from_a_file(evaluations, tmp_path):
    _, files, joint = evaluations
    joint_file = tmp_path / "joint.json"
    joint_file.write_text(json.dumps(joint))
    oracle_label = next(r["label"] for r in joint["results"] if r["method"] == "oracle")
    record = combine([f"{files['random']}", f"{joint_file}:{oracle_label}"])
    assert [r["method"] for r in record["results"]] == ["random", "oracle"]
    assert record["paired"]["reference"] == "random init"


def test_results_of_two_runs_under_one_label_are_told_apart_by_their_run(evaluations, tmp_path):
    _, files, _ = evaluations
    other = json.loads(files["maml"].read_text())
    other["results"][0]["run"] = str(tmp_path / "maml-other")  # the same label from another MAML run
    (tmp_path / "other.json").write_text(json.dumps(other))
    record = combine([str(files["maml"]), str(tmp_path / "other.json")])
    label = json.loads(files["maml"].read_text())["results"][0]["label"]
    assert [r["label"] for r in record["results"]] == [f"{label} [maml]", f"{label} [maml-other]"]
    assert record["paired"]["reference"] == f"{label} [maml]"
    record = combine([str(files["maml"]), str(files["random"])], name_runs=True)
    runs = [Path(r["run"]).name for r in record["results"]]
    labels = [json.loads(files[m].read_text())["results"][0]["label"] for m in ("maml", "random")]
    assert [r["label"] for r in record["results"]] == [f"{labels[0]} [{runs[0]}]", f"{labels[1]} [{runs[1]}]"]
    (tmp_path / "named.json").write_text(json.dumps(record))  # named again: no second name
    again = combine([str(tmp_path / "named.json")], name_runs=True)
    assert [r["label"] for r in again["results"]] == [r["label"] for r in record["results"]]


def test_refuses_what_does_not_pair(evaluations, tmp_path):
    runs, files, _ = evaluations
    with pytest.raises(CombineError, match="seed"):  # other tasks: another seed's run
        combine([str(files["maml"]), str(files["maml-seed1"])])
    with pytest.raises(CombineError, match="no result labelled 'nope'"):
        combine([str(files["maml"]), f"{files['oracle']}:nope"])
    with pytest.raises(CombineError, match="twice"):
        combine([str(files["maml"]), str(files["maml"])])
    different = json.loads(files["oracle"].read_text())
    different["tasks"][1] = different["tasks"][0]
    (tmp_path / "different.json").write_text(json.dumps(different))
    with pytest.raises(CombineError, match="different tasks"):
        combine([str(files["maml"]), str(tmp_path / "different.json")])
    different["tasks"] = different["tasks"][:2]
    (tmp_path / "short.json").write_text(json.dumps(different))
    with pytest.raises(CombineError, match="not a list of its 4 tasks"):
        combine([str(files["maml"]), str(tmp_path / "short.json")])
    (tmp_path / "other.json").write_text(json.dumps({"results": []}))
    with pytest.raises(CombineError, match="not an evaluation.json"):
        combine([str(files["maml"]), str(tmp_path / "other.json")])
    done = subprocess.run([sys.executable, *SCRIPT, str(tmp_path / "missing.json"), "--out-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "missing.json: no such evaluation file" in done.stderr
    assert "Traceback" not in done.stderr


def _legacy(file, path, **changes):
    """A copy of an evaluation.json as written before evaluations recorded their tasks (with ``changes``)."""
    legacy = json.loads(file.read_text())
    del legacy["tasks"]
    path.write_text(json.dumps({**legacy, **changes}))
    return str(path)


def test_a_file_without_recorded_tasks_is_compared_through_its_run(evaluations, tmp_path):
    runs, files, joint = evaluations
    legacy = _legacy(files["oracle"], tmp_path / "legacy.json")
    assert combine([str(files["maml"]), legacy])["tasks"] == joint["tasks"]
    assert combine([legacy, str(files["maml"])])["tasks"] == joint["tasks"]
    other_run = _legacy(files["maml-seed1"], tmp_path / "seed1.json", seed=joint["seed"])  # settings agree, tasks not
    with pytest.raises(CombineError, match="different tasks"):
        combine([str(files["maml"]), other_run])
    moved = tmp_path / "moved"
    shutil.copytree(runs["oracle"], moved)
    shutil.rmtree(runs["oracle"])
    try:
        assert len(combine([str(files["maml"]), str(files["oracle"])])["results"]) == 2  # tasks recorded
        with pytest.raises(CombineError, match="--allow-missing-tasks"):
            combine([str(files["maml"]), legacy])
        record = combine([str(files["maml"]), legacy], allow_missing_tasks=True)
        assert len(record["results"]) == 2
    finally:
        shutil.copytree(moved, runs["oracle"])


def test_validation_tasks_of_a_file_without_them_are_drawn_again_from_its_run(evaluations, tmp_path):
    runs, _, joint = evaluations
    for name in ("maml", "oracle"):
        assert main(["evaluate", str(runs[name]), *EVAL, "--task-set", "validation", "--num-tasks", "3",
                     "--out-dir", str(tmp_path / name)]) == 0
    maml = json.loads((tmp_path / "maml" / "evaluation.json").read_text())
    assert len(maml["tasks"]) == 3 and maml["tasks"] != joint["tasks"][:3]
    legacy = _legacy(tmp_path / "oracle" / "evaluation.json", tmp_path / "legacy.json")
    assert combine([str(tmp_path / "maml" / "evaluation.json"), legacy])["tasks"] == maml["tasks"]
