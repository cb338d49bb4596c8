import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rlmaml.checkpoints import load_checkpoint
from rlmaml.config import load_config
from rlmaml.runs import RunDir, RunError, read_metrics
from rlmaml.trainer import Trainer

from conftest import config_of

TINY = dict(num_tasks=3, num_traj=4, horizon=10, hidden_sizes=(8,), num_iterations=4, num_eval_tasks=5, seed=3)
TIMING = ("time_sampling", "time_update", "time_total")


def _without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_run_folder_holds_config_tasks_metrics_and_checkpoints(tmp_path):
    trainer = Trainer.create(config_of(**TINY), tmp_path / "run")
    trainer.train(progress=False)
    run = RunDir(tmp_path / "run")
    assert json.loads(run.config.read_text())["task"]["num_tasks"] == 3
    tasks = json.loads(run.test_tasks.read_text())
    assert tasks["seed"] == 3 and len(tasks["tasks"]) == 5
    records = read_metrics(run.metrics)
    assert [r["iteration"] for r in records] == [0, 1, 2, 3]
    assert all(1 <= r[key] <= 10 for r in records for key in ("pre_length", "post_length"))  # horizon 10
    assert load_checkpoint(run.checkpoint)["iteration"] == 4
    assert load_checkpoint(run.best_checkpoint)["post_return"] == max(r["post_return"] for r in records)
    assert not list(run.path.glob(".*tmp"))  # no leftover temporary files


def test_same_seed_gives_same_metrics_and_other_seed_differs(tmp_path):
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        trainer = Trainer.create(config_of(**{**TINY, "seed": seed, "num_iterations": 2}), tmp_path / name)
        trainer.train(progress=False)
        runs.append(_without_timing(read_metrics(trainer.run.metrics)))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_inner_objective_reaches_the_meta_update(tmp_path):
    """Same seed, same first batches: LVC changes only the meta-gradient, so the first
    iteration's returns agree while the updated parameters differ."""
    policies, records = [], []
    for objective in ("reinforce", "lvc"):
        trainer = Trainer.create(config_of(**{**TINY, "num_iterations": 1, "inner_objective": objective}),
                                 tmp_path / objective)
        trainer.train(progress=False)
        policies.append(torch.nn.utils.parameters_to_vector(trainer.policy.parameters()).detach())
        records.append(read_metrics(trainer.run.metrics)[0])
    assert records[0]["pre_return"] == records[1]["pre_return"]
    assert records[0]["post_return"] == records[1]["post_return"]
    assert not torch.allclose(policies[0], policies[1])


def test_inner_step_rule_reaches_sampling_and_the_meta_update(tmp_path):
    """Same seed and step size, same first batches: the return-scaled rule changes the inner step,
    so the post-adaptation batch (sampled with the adapted policy) has another return."""
    records = []
    for rule in ("fixed", "return-scaled"):
        config = config_of(**{**TINY, "num_iterations": 1, "inner_step_rule": rule, "inner_lr": 0.05})
        trainer = Trainer.create(config, tmp_path / rule)
        assert (trainer.meta.inner.step_rule.name, trainer.meta.inner.lrs) == (rule, (0.05,))
        trainer.train(progress=False)
        records.append(read_metrics(trainer.run.metrics)[0])
        assert load_config(trainer.run.config).inner.step_rule == rule
    assert records[0]["pre_return"] == records[1]["pre_return"]
    assert records[0]["post_return"] != records[1]["post_return"]


def test_resume_after_interruption_continues_with_identical_metrics(tmp_path):
    reference = Trainer.create(config_of(**TINY), tmp_path / "reference")
    reference.train(progress=False)

    interrupted = Trainer.create(config_of(**TINY), tmp_path / "interrupted")
    original = interrupted.train_iteration
    calls = []

    def interrupt_on_third_call():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original()

    interrupted.train_iteration = interrupt_on_third_call
    with pytest.raises(KeyboardInterrupt):
        interrupted.train(progress=False)
    assert load_checkpoint(interrupted.run.checkpoint)["iteration"] == 2
    interrupted.close()  # releases the run folder's lock, as the process ending would

    resumed = Trainer.resume(tmp_path / "interrupted")
    assert resumed.iteration == 2
    resumed.train(progress=False)
    assert _without_timing(read_metrics(resumed.run.metrics)) == _without_timing(read_metrics(reference.run.metrics))
    for name, value in reference.policy.state_dict().items():
        assert torch.equal(value, resumed.policy.state_dict()[name])
    reference.close()
    with pytest.raises(RunError, match="already trained 4 iterations"):
        Trainer.resume(tmp_path / "reference", num_iterations=3)  # the config would then understate the training
    assert load_config(reference.run.config).num_iterations == TINY["num_iterations"]


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_from_last_checkpoint(tmp_path):
    args = ["--num-tasks", "3", "--num-traj", "4", "--horizon", "10", "--hidden-sizes", "8", "--seed", "3",
            "--set", "num_eval_tasks=5", "--no-progress", "--no-evaluate"]
    cli = [sys.executable, "-m", "rlmaml", "train"]
    subprocess.run(cli + args + ["--num-iterations", "6", "--run-dir", str(tmp_path / "ref")], check=True,
                   capture_output=True)
    process = subprocess.Popen(cli + args + ["--num-iterations", "400", "--run-dir", str(tmp_path / "killed")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 120
    # The checkpoint of iteration 3 is written before the 4th metrics record is appended.
    while time.time() < deadline and len(read_metrics(metrics)) < 4:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")["iteration"]
    assert 3 <= done < 400
    resumed = subprocess.run(cli + ["--resume", str(tmp_path / "killed"), "--num-iterations", str(done + 2),
                                    "--no-progress", "--no-evaluate"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming {tmp_path / 'killed'} at iteration {done}" in resumed.stdout
    killed_records = _without_timing(read_metrics(metrics))
    assert [r["iteration"] for r in killed_records] == list(range(done + 2))
    compared = min(6, done + 2)
    reference = _without_timing(read_metrics(tmp_path / "ref" / "metrics.jsonl"))
    assert killed_records[:compared] == reference[:compared]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_saves_a_checkpoint_and_prints_the_resume_command(tmp_path, signum):
    run = tmp_path / "run"
    # A shell starts background jobs with SIGINT ignored, and children inherit that (Python then
    # never raises KeyboardInterrupt). Give the run a terminal's default, so that the test does
    # not depend on how pytest itself was started (e.g. `pytest &` in a script).
    process = subprocess.Popen(
        [sys.executable, "-m", "rlmaml", "train", "--num-tasks", "3", "--num-traj", "4", "--horizon", "10",
         "--hidden-sizes", "8", "--num-iterations", "100000", "--set", "checkpoint_every=1000",
         "--run-dir", str(run), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(read_metrics(run / "metrics.jsonl")) < 3:
            time.sleep(0.05)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()  # a 100000-iteration run must not outlive a failed test
    assert process.returncode == 130, err  # stderr says what happened if the run died another way
    assert f"Continue with: rlmaml train --resume {run}" in err and "Traceback" not in err
    # checkpoint_every=1000 means only the signal handler can have written this checkpoint past
    # iteration 0. The signal may land after an iteration's metrics line but before its checkpoint;
    # resume then drops that line (see the SIGKILL test).
    done = load_checkpoint(run / "checkpoint.pt")["iteration"]
    assert done >= 2 and len(read_metrics(run / "metrics.jsonl")) in (done, done + 1)
    assert f"the checkpoint holds iteration {done}" in err


def test_leaving_a_trainer_block_stops_its_rollout_workers(tmp_path):
    with Trainer(config_of(**{**TINY, "num_workers": 2}), RunDir(tmp_path / "run")) as trainer:
        processes = list(trainer.sampler.workers._procs)
        assert len(processes) == 2 and all(process.is_alive() for process in processes)
    assert trainer.sampler.workers is None
    assert not any(process.is_alive() for process in processes)
