"""benchmarks/line_search_stats.py: the line-search diagnostics table, from logged step statistics."""

import json
import math
import subprocess
import sys

import pytest

from rlmaml.cli import main

from conftest import REPO_ROOT, load_benchmark

SCRIPT = REPO_ROOT / "benchmarks" / "line_search_stats.py"


@pytest.fixture(scope="module")
def stats():
    return load_benchmark("line_search_stats")


def _record(iteration, kl, improvement, predicted, steps, fraction, post=1.0):
    return {"iteration": iteration, "post_return": post, "full_step_kl": kl, "full_step_improvement": improvement,
            "predicted_improvement": predicted, "line_search_steps": steps, "step_fraction": fraction}


def test_window_rows_against_a_direct_computation(stats):
    records = [_record(0, 0.02, 0.5, 1.0, 2, 0.5, post=1.0), _record(1, 0.005, -1.0, 2.0, 3, 0.25, post=3.0),
               _record(2, 0.03, 3.0, 1.0, 1, 1.0, post=5.0),
               _record(3, math.nan, math.nan, math.nan, 0, 0.0, post=7.0),  # non-finite loss: nothing tried
               {"iteration": 4, "post_return": 0.0, "kl": 0.0}]  # logged before the step statistics
    first, second = stats.window_rows(records, max_kl=0.01, window=2)
    assert first["iterations"] == "0-1" and second["iterations"] == "2-3"
    assert first["logged"] == 2 and second["logged"] == 2
    assert first["post_return"] == 2.0 and first["candidates"] == 2.5 and first["step_fraction"] == 0.375
    assert first["kl_ratio"] == pytest.approx((2.0 + 0.5) / 2) and first["improvement_ratio"] == pytest.approx(0.0)
    assert first["over_kl"] == 0.5 and first["surrogate_worse"] == 0.5
    assert second["post_return"] == 6.0 and second["kl_ratio"] == pytest.approx(3.0)
    assert second["improvement_ratio"] == 3.0 and second["over_kl"] == 1.0 and second["surrogate_worse"] == 0.0
    assert second["step_fraction"] == 0.5  # the rejected iteration counts as 0


def test_nothing_predicted_gives_no_ratio(stats):
    assert math.isnan(stats.step_ratios(_record(0, 0.01, 0.0, 0.0, 1, 1.0), 0.01)[1])


def test_script_on_a_trained_run(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--num-tasks", "2", "--num-traj", "3", "--horizon", "8", "--hidden-sizes", "8",
                 "--num-iterations", "3", "--no-progress", "--no-evaluate", "--run-dir", str(run)]) == 0
    done = subprocess.run([sys.executable, str(SCRIPT), str(run), "--window", "2", "--output", str(tmp_path / "f.png")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "0-1" in done.stdout and "2-3" in done.stdout and (tmp_path / "f.png").stat().st_size > 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    stripped = [{k: v for k, v in json.loads(line).items() if k != "full_step_kl"} for line in lines]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stripped))
    done = subprocess.run([sys.executable, str(SCRIPT), str(run)], capture_output=True, text=True)
    assert done.returncode == 1 and "logs no step statistics" in done.stderr and "Traceback" not in done.stderr
    ppo = tmp_path / "ppo"
    assert main(["train", "--num-tasks", "2", "--num-traj", "3", "--horizon", "8", "--hidden-sizes", "8",
                 "--num-iterations", "1", "--meta-optimizer", "ppo", "--no-progress", "--no-evaluate",
                 "--run-dir", str(ppo)]) == 0
    done = subprocess.run([sys.executable, str(SCRIPT), str(ppo)], capture_output=True, text=True)
    assert done.returncode == 1 and "meta_optimizer='ppo', which has no line search" in done.stderr
