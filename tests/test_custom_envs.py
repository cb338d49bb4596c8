"""Bring-your-own task families: module:id envs, check-env, entry-point plugins."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlmaml.checks import FAIL, run_checks
from rlmaml.cli import main
from rlmaml.envs import FAMILIES
from rlmaml.policy import GaussianMLPPolicy
from rlmaml.sampling import TaskSampler
from rlmaml.workers import RolloutWorkerError

import custom_family
from conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "point_velocity"
CUSTOM = "custom_family:custom/Target1D-v0"


def test_cli_trains_and_evaluates_a_family_defined_only_in_the_tests(tmp_path, capsys):
    assert not any(env_id.startswith("custom/") for env_id in FAMILIES)
    run = tmp_path / "run"
    assert main(["train", "--env", CUSTOM, "--num-iterations", "3", "--num-tasks", "8", "--num-traj", "10",
                 "--hidden-sizes", "32,32", "--set", "num_eval_tasks=10", "--run-dir", str(run), "--no-progress",
                 "--no-evaluate"]) == 0
    assert main(["evaluate", str(run), "--num-steps", "2", "--num-traj", "10", "--checkpoint", "final"]) == 0
    (result,) = json.loads((run / "evaluation.json").read_text())["results"]
    per_task = np.array(result["per_task"])  # [tasks, steps]
    gain = per_task[:, 1] - per_task[:, 0]  # paired over held-out tasks
    assert gain.mean() > 2 * gain.std(ddof=1) / np.sqrt(len(gain)) and gain.mean() > 1.0
    assert json.loads((run / "config.json").read_text())["task"]["env_id"] == CUSTOM
    assert "custom_family:custom/Target1D-v0: 10 test tasks" in capsys.readouterr().out


@pytest.mark.parametrize("env_id", [*FAMILIES, CUSTOM, "point_velocity:examples/PointVelocity-v0"])
def test_check_env_passes_on_shipped_and_example_families(env_id, monkeypatch):
    if "MetaWorld" in env_id:
        pytest.importorskip("metaworld")
    monkeypatch.syspath_prepend(str(EXAMPLE))
    results = run_checks(env_id)
    assert [r for r in results if r.status == FAIL] == []
    assert {r.name for r in results if r.status == "pass"} >= {"make", "gymnasium checker", "sample_tasks",
                                                                "JSON round trip", "set_task matters"}


@pytest.mark.parametrize("name", sorted(custom_family.BROKEN))
def test_check_env_names_what_a_broken_env_gets_wrong(name, capsys):
    expected = custom_family.BROKEN[name][1]
    env_id = f"custom_family:broken/{name}-v0"
    failed = [r for r in run_checks(env_id) if r.status == FAIL]
    assert [r.name for r in failed] == [expected]
    assert main(["check-env", env_id]) == 1
    out, err = capsys.readouterr()
    fail_lines = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(fail_lines) == 1 and expected in fail_lines[0] and failed[0].detail in fail_lines[0]
    assert "\n" not in failed[0].detail and "Traceback" not in out + err


@pytest.mark.parametrize("env_id, reason", [("nowhere_module:x/Y-v0", "no module named 'nowhere_module'"),
                                            ("rlmaml/NoSuchTask-v0", "unknown env 'rlmaml/NoSuchTask-v0'")])
def test_check_env_reports_ids_that_do_not_resolve(env_id, reason):
    make, *rest = run_checks(env_id)
    assert make.status == FAIL and reason in make.detail
    assert all(r.status == "skip" for r in rest)


def test_training_a_family_with_bad_tasks_is_a_one_line_error(tmp_path, capsys):
    code = main(["train", "--env", "custom_family:broken/NumpyTasks-v0", "--run-dir", str(tmp_path / "r"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "not JSON-serialisable" in err and len(err.strip().splitlines()) == 1


def test_oracle_sampler_appends_the_task_features_to_observations():
    plain, oracle = TaskSampler(CUSTOM), TaskSampler(CUSTOM, oracle=True)
    assert oracle.obs_dim == plain.obs_dim + 1
    from rlmaml.policy import GaussianMLPPolicy
    policy = GaussianMLPPolicy(oracle.obs_dim, oracle.act_dim, (4,))
    tasks = [{"target": 0.25}, {"target": -0.75}]
    batch = oracle.sample(policy, policy.params(), tasks, 3, torch.Generator().manual_seed(0),
                          np.random.default_rng(0))
    features = batch.observations[..., 1]
    assert torch.all(features[0] == 0.25) and torch.all(features[1] == -0.75)


def _fake_install(site: Path, entry_point: str) -> None:
    """A minimal installed distribution in ``site`` declaring one ``rlmaml.envs`` entry point."""
    info = site / "rlmaml_point_velocity-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rlmaml-point-velocity\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[rlmaml.envs]\npoint_velocity = {entry_point}\n")


def _rlmaml(args: list[str], site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLE), str(REPO_ROOT)])}
    return subprocess.run([sys.executable, "-m", "rlmaml", *args], capture_output=True, text=True, env=env,
                          cwd=site, timeout=120)


def test_installed_plugin_families_are_listed_and_usable_by_plain_id(tmp_path):
    _fake_install(tmp_path, "point_velocity:FAMILIES")
    listed = _rlmaml(["envs"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("examples/PointVelocity-v0"))
    assert "[plugin rlmaml-point-velocity]" in line and "rlmaml/Navigation2D-v0" in listed.stdout
    checked = _rlmaml(["check-env", "examples/PointVelocity-v0"], tmp_path)
    assert checked.returncode == 0, checked.stdout


def test_a_broken_plugin_is_reported_without_breaking_the_others(tmp_path):
    _fake_install(tmp_path, "point_velocity:NO_SUCH_NAME")
    listed = _rlmaml(["envs"], tmp_path)
    assert listed.returncode == 0 and "rlmaml/Navigation2D-v0" in listed.stdout
    assert "plugin 'point_velocity' failed to load: AttributeError" in listed.stderr
    assert "Traceback" not in listed.stderr


def test_a_family_without_a_batched_env_samples_the_same_through_workers():
    """The generic path (one Gymnasium env per trajectory) run in rollout workers."""
    in_process = TaskSampler(CUSTOM, num_workers=0)
    with_workers = TaskSampler(CUSTOM, num_workers=2)
    try:
        assert with_workers.workers is not None and not hasattr(with_workers.family, "batched_env")
        torch.manual_seed(0)
        policy = GaussianMLPPolicy(1, 1, (8,))
        tasks = in_process.sample_tasks(5, np.random.default_rng(0))
        a, b = (sampler.sample(policy, policy.params(), tasks, 3, torch.Generator().manual_seed(1),
                               np.random.default_rng(2)) for sampler in (in_process, with_workers))
        for field in ("observations", "actions", "rewards", "mask", "log_probs"):
            torch.testing.assert_close(getattr(a, field), getattr(b, field), rtol=1e-5, atol=1e-5)
        assert a.mask.all() and a.rewards.std() > 0
    finally:
        with_workers.close()


def test_a_failing_rollout_worker_reports_the_env_traceback_and_the_pool_stays_in_step():
    sampler = TaskSampler("custom_family:custom/Faulty-v0", num_workers=2)
    in_process = TaskSampler("custom_family:custom/Faulty-v0", num_workers=0)
    try:
        policy = GaussianMLPPolicy(1, 1, (8,))

        def sample(on, targets):
            return on.sample(policy, policy.params(), [{"target": t} for t in targets], 2,
                             torch.Generator().manual_seed(1), np.random.default_rng(2))

        with pytest.raises(RolloutWorkerError, match=r"(?s)rollout worker 0 failed while sampling .*custom/Faulty-v0; "
                                                     r"its traceback:\n.*custom_family.py.*ValueError: target 0.9"):
            sample(sampler, [0.9, -0.1])
        torch.testing.assert_close(sample(sampler, [0.2, -0.3]).rewards, sample(in_process, [0.2, -0.3]).rewards,
                                   rtol=1e-5, atol=1e-5)  # not worker 1's reply left over from the failed call
        with pytest.raises(RolloutWorkerError, match=r"rollout worker 1 sampling .*Faulty-v0 exited with code 3"):
            sample(sampler, [0.2, -0.75])
    finally:
        sampler.close()


def test_a_run_whose_env_module_is_gone_is_a_one_line_error(capsys, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "--env", CUSTOM, "--num-iterations", "1", "--num-tasks", "2", "--num-traj", "2",
                 "--hidden-sizes", "8", "--no-progress", "--no-evaluate", "--run-dir", str(run)]) == 0
    monkeypatch.setattr(gym.envs.registration, "registry", {})  # as in a shell without the module on its path
    monkeypatch.setitem(sys.modules, "custom_family", None)
    for argv in (["evaluate", str(run)], ["train", "--resume", str(run)]):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("rlmaml: error: cannot import module 'custom_family' for env "
                              "'custom_family:custom/Target1D-v0': no module named 'custom_family'; ")
        assert "set PYTHONPATH to the folder that holds custom_family.py or install it" in err
