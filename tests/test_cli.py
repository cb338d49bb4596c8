import json
import subprocess
import sys

import pytest

from rlmaml import commands, evaluation
from rlmaml import trainer as trainer_module
from rlmaml.cli import main
from rlmaml.config import LEAVES, ConfigError
from rlmaml.errors import UserError
from rlmaml.runs import RunWriteError, read_metrics
from rlmaml.tasks import EnvMakeError, TaskProtocolError
from rlmaml.workers import RolloutWorkerError

from conftest import REPO_ROOT

TINY = ["--num-tasks", "3", "--num-traj", "4", "--horizon", "10", "--hidden-sizes", "8", "--num-iterations", "2",
        "--set", "num_eval_tasks=4", "--no-progress"]


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlmaml: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_every_one_line_error_shares_the_documented_base_class():
    for error in (ConfigError, RunWriteError, EnvMakeError, TaskProtocolError, RolloutWorkerError,
                  trainer_module.TrainingDiverged):
        assert issubclass(error, UserError), error
    assert issubclass(ConfigError, ValueError) and issubclass(TaskProtocolError, TypeError)  # as before


def test_bad_input_gets_one_line_errors(capsys, tmp_path):
    assert "Namespace nope not found" in _one_line_error(capsys, ["train", "--env", "nope/X-v0",
                                                                  "--run-dir", str(tmp_path / "a")])
    assert not (tmp_path / "a").exists()
    assert "num_tasks must be a positive integer" in _one_line_error(capsys, ["train", "--num-tasks", "-2"])
    (tmp_path / "bad.toml").write_text("num_tasks = [")
    assert "malformed config file" in _one_line_error(capsys, ["train", "--config", str(tmp_path / "bad.toml")])
    assert "does not exist" in _one_line_error(capsys, ["evaluate", str(tmp_path / "missing")])
    assert "does not exist" in _one_line_error(capsys, ["train", "--resume", str(tmp_path / "missing")])
    (tmp_path / "afile").touch()
    assert "is a file, not a folder" in _one_line_error(capsys, ["evaluate", str(tmp_path / "afile")])
    assert "only --num-iterations" in _one_line_error(capsys, ["train", "--resume", str(tmp_path), "--num-tasks", "3"])
    assert "rlmaml task protocol" in _one_line_error(capsys, ["train", "--env", "CartPole-v1"])
    assert "FIELD=VALUE" in _one_line_error(capsys, ["train", "--set", "nonsense"])
    assert "'num_task' in --set (did you mean 'num_tasks'?)" in _one_line_error(capsys, ["train", "--set", "num_task=3"])
    assert "'inner.lrr' in --set (did you mean 'inner.lr'?)" in _one_line_error(
        capsys, ["train", "--set", "inner.lrr=3"])
    (tmp_path / "typo.toml").write_text("inner_lrs = 0.1\nbogus = 1")
    assert "unknown config field 'inner_lrs' in " in _one_line_error(
        capsys, ["train", "--config", str(tmp_path / "typo.toml")])
    (tmp_path / "nested.toml").write_text("[outer.trpo]\nmax_k = 0.1")
    assert "'outer.trpo.max_k' in " in _one_line_error(capsys, ["train", "--config", str(tmp_path / "nested.toml")])
    assert "task.num_tasks is given twice, as --num-tasks 3 and as --set task.num_tasks=4" in _one_line_error(
        capsys, ["train", "--num-tasks", "3", "--set", "task.num_tasks=4"])
    assert "inner.lr is given twice" in _one_line_error(capsys, ["train", "--set", "inner.lr=0.1", "--set", "inner_lr=0.2"])
    assert "does not take env_kwargs {'bogus': 1}" in _one_line_error(
        capsys, ["train", "--set", 'env_kwargs={"bogus": 1}', "--run-dir", str(tmp_path / "b")])
    assert not (tmp_path / "b").exists()
    assert "rejects env_kwargs {'action_mode': 'jump'}: action_mode must be one of" in _one_line_error(
        capsys, ["train", "--set", 'env_kwargs={"action_mode": "jump"}', "--run-dir", str(tmp_path / "b")])
    assert "--num-steps" in _one_line_error(capsys, ["evaluate", str(tmp_path), "--num-steps", "-1"])
    assert "--inner-lr must be a positive finite number, got -0.1" in _one_line_error(
        capsys, ["evaluate", str(tmp_path), "--inner-lr", "-0.1"])
    assert "--inner-lr must be a positive finite number, got inf" in _one_line_error(
        capsys, ["evaluate", str(tmp_path), "--inner-lr", "inf"])  # gave a table of nan
    assert "--later-lr-factor must be a positive finite number, got nan" in _one_line_error(
        capsys, ["evaluate", str(tmp_path), "--later-lr-factor", "nan"])
    assert "inner.target_return applies only to inner.step_rule return-scaled" in _one_line_error(
        capsys, ["evaluate", str(tmp_path), "--step-rule", "fixed", "--target-return", "5"])
    assert "--target-return must be a finite number, got nan" in _one_line_error(
        capsys, ["evaluate", str(tmp_path), "--step-rule", "return-scaled", "--target-return", "nan"])


def test_train_then_evaluate(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"Results in {run}/" in out and "return after K steps" in out
    assert "before adaptation" in out and "after 1 step(s)." in out
    assert (run / "evaluation.png").stat().st_size > 10_000
    closing = {name: (run / name).read_bytes() for name in ("evaluation.json", "evaluation.csv", "evaluation.png")}
    assert main(["evaluate", str(run), "--num-steps", "2", "--num-traj", "3", "--checkpoint", "best"]) == 0
    out = capsys.readouterr().out
    assert "MAML (best, it. " in out
    (kept,) = (run / "previous-evaluations").iterdir()  # the closing evaluation is moved, not replaced
    assert f"Moved the previous evaluation to {kept}/" in out
    assert {name: (kept / name).read_bytes() for name in closing} == closing
    (result,) = json.loads((run / "evaluation.json").read_text())["results"]
    assert [row["step"] for row in result["summary"]] == [0, 1, 2] and result["checkpoint"] == "best"
    assert result["step_sizes"] == [0.1, 0.05] and len(result["per_task"]) == 4
    assert "already holds a run" in _one_line_error(capsys, ["train", *TINY, "--run-dir", str(run)])
    same_run = run.parent / ".." / run.parent.name / run.name
    assert main(["evaluate", str(run), str(same_run), "--checkpoint", "final,final", "--num-steps", "1",
                 "--num-traj", "2", "--out-dir", str(tmp_path / "once")]) == 0
    assert len(json.loads((tmp_path / "once" / "evaluation.json").read_text())["results"]) == 1
    assert main(["train", "--resume", str(run), "--no-evaluate"]) == 0
    assert "has trained all" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--num-iterations", "3", "--no-progress"]) == 0
    assert "Moved the previous evaluation to " in capsys.readouterr().out  # resumed, it evaluates again
    assert len(list((run / "previous-evaluations").iterdir())) == 2
    assert json.loads((run / "evaluation.json").read_text())["results"][0]["iteration"] == 3
    assert "has no snapshots/iteration-00001.pt; it kept no snapshots (train with --set snapshot_every=N" in (
        _one_line_error(capsys, ["evaluate", str(run), "--checkpoint", "1"]))
    assert "final, best or an iteration" in _one_line_error(capsys, ["evaluate", str(run), "--checkpoint", "x"])
    (tmp_path / "file").write_text("")
    blocked = str(tmp_path / "file" / "out")  # a folder that cannot be created under a plain file
    assert f"cannot create output folder {blocked}" in _one_line_error(capsys, ["evaluate", str(run), "--out-dir", blocked])
    assert "cannot create output folder" in _one_line_error(capsys, ["plot", str(run), "--output", blocked + "/x.png"])
    assert "cannot create output folder" in _one_line_error(capsys, ["train", *TINY, "--run-dir", blocked])
    assert "gamma must be a finite number, got 'abc'" in _one_line_error(
        capsys, ["train", *TINY, "--set", "gamma=abc", "--run-dir", str(tmp_path / "c")])
    assert main(["plot", str(run), "--output", str(tmp_path / "new" / "folder" / "t.png")]) == 0
    assert (tmp_path / "new" / "folder" / "t.png").stat().st_size > 10_000


def test_a_baseline_run_is_not_reported_as_adapted(capsys, tmp_path):
    assert main(["train", *TINY, "--method", "oracle", "--run-dir", str(tmp_path / "run"), "--no-evaluate"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(line for line in lines if "training the oracle baseline" in line)
    done = next(line for line in lines if line.startswith("Done:"))
    assert "inner step" not in start
    assert done.endswith("(oracle trains without adaptation).") and "step" not in done


def test_training_and_evaluation_number_the_final_checkpoint_alike(capsys, tmp_path):
    assert main(["train", *TINY, "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "Done: 2 meta-iterations (the final checkpoint, it. 2)" in out and "MAML (final, it. 2)" in out


def test_snapshots_are_kept_and_evaluated(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--set", "snapshot_every=1", "--run-dir", str(run), "--no-evaluate"]) == 0
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["iteration-00001.pt", "iteration-00002.pt"]
    assert main(["evaluate", str(run), "--checkpoint", "1", "--num-traj", "2", "--num-steps", "1"]) == 0
    assert "MAML (it. 1)" in capsys.readouterr().out


def test_evaluate_is_deterministic_for_a_seed(capsys, tmp_path):
    run = tmp_path / "run"
    main(["train", *TINY, "--run-dir", str(run), "--no-evaluate"])
    results = []
    for seed in (5, 5, 6):
        main(["evaluate", str(run), "--num-traj", "3", "--seed", str(seed), "--out-dir", str(tmp_path / "e")])
        results.append([r["per_task"] for r in json.loads((tmp_path / "e" / "evaluation.json").read_text())["results"]])
    assert results[0] == results[1] and results[0] != results[2]


def _evaluate_two_steps(run, out, *flags: str) -> dict:
    """The first result of ``rlmaml evaluate RUN`` (final iterate, 2 steps, 3 trajectories) into ``out``."""
    assert main(["evaluate", str(run), "--checkpoint", "final", "--num-traj", "3", "--num-steps", "2",
                 "--no-progress", "--out-dir", str(out), *flags]) == 0
    return json.loads((out / "evaluation.json").read_text())["results"][0]


def test_evaluate_with_return_scaled_steps(capsys, tmp_path):
    run = tmp_path / "run"
    main(["train", *TINY, "--run-dir", str(run), "--no-evaluate"])
    capsys.readouterr()

    scaled = _evaluate_two_steps(run, tmp_path / "e", "--step-rule", "return-scaled", "--inner-lr", "0.01",
                                 "--target-return", "5")
    assert "0.01, 0.005 return-scaled to 5" in capsys.readouterr().out
    assert (scaled["step_rule"], scaled["target_return"], scaled["step_sizes"]) == ("return-scaled", 5.0, [0.01, 0.005])
    fixed = _evaluate_two_steps(run, tmp_path / "e", "--inner-lr", "0.01")
    assert "step_rule" not in fixed and [t[0] for t in fixed["per_task"]] == [t[0] for t in scaled["per_task"]]
    assert [t[1:] for t in fixed["per_task"]] != [t[1:] for t in scaled["per_task"]]
    # a target below every return would leave every task where it is: refused, not a flat curve
    assert "every task's return before adaptation is at or above the target return -1e+09" in _one_line_error(
        capsys, ["evaluate", str(run), "--step-rule", "return-scaled", "--target-return", "-1000000000", "--no-progress"])
    # the run steps fixed (its inner_step_rule): a target alone is refused before anything is evaluated
    assert f"{run} (inner.step_rule fixed): inner.target_return applies only to" in _one_line_error(
        capsys, ["evaluate", str(run), "--target-return", "5", "--out-dir", str(tmp_path / "never")])
    assert not (tmp_path / "never").exists()


def test_a_run_trained_with_return_scaled_steps_is_evaluated_with_them_by_default(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--inner-step-rule", "return-scaled", "--inner-lr", "0.01", "--run-dir", str(run),
                 "--no-evaluate"]) == 0
    capsys.readouterr()

    own = _evaluate_two_steps(run, tmp_path / "e")
    assert "MAML (return-scaled, final, it. 2)" in capsys.readouterr().out
    assert (own["step_rule"], own["target_return"], own["step_sizes"]) == ("return-scaled", 0.0, [0.01, 0.005])
    same = _evaluate_two_steps(run, tmp_path / "e", "--step-rule", "return-scaled", "--target-return", "0")
    assert own["per_task"] == same["per_task"]
    fixed = _evaluate_two_steps(run, tmp_path / "e", "--step-rule", "fixed")
    assert "step_rule" not in fixed and fixed["per_task"] != own["per_task"]


def test_a_one_task_evaluation_prints_means_without_a_standard_error(capsys, tmp_path):
    run = tmp_path / "run"
    main(["train", *TINY, "--run-dir", str(run), "--no-evaluate"])
    capsys.readouterr()
    assert main(["evaluate", str(run), "--num-tasks", "1", "--num-traj", "2", "--out-dir", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    maml_row = next(line for line in out.splitlines() if line.startswith("MAML"))
    assert "nan" not in out and "±" not in maml_row and len(maml_row.split()) >= 6  # label, 4 means, a step size
    summary = json.loads((tmp_path / "e" / "evaluation.json").read_text())["results"][0]["summary"]
    assert [row["stderr"] for row in summary] == [None] * 4  # no standard error from one task


@pytest.mark.parametrize("where", ["repository root (source checkout)", "elsewhere (installed package)"])
def test_python_dash_m_and_envs_listing(where, tmp_path):
    cwd = REPO_ROOT if where.startswith("repository") else tmp_path
    result = subprocess.run([sys.executable, "-m", "rlmaml", "envs"], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "rlmaml/Navigation2D-v0" in result.stdout


@pytest.mark.parametrize("command", [["train"], ["evaluate", "runs/x"], ["check-env", "rlmaml/Navigation2D-v0"]])
def test_a_negative_seed_is_refused_by_the_parser(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--seed", "-1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seed: expects a non-negative integer, got '-1'" in err and "Traceback" not in err


def test_help_lists_commands():
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0


def test_train_help_shows_every_config_field_by_section(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for title in ("config:", "config: task:", "config: inner:", "config: outer:", "config: outer.trpo:",
                  "config: outer.ppo:", "config: run:"):
        assert f"\n{title}\n" in out, title
    words = set(out.replace("[", " ").replace(";", " ").split())
    assert set(LEAVES) <= words
    assert {leaf.flag for leaf in LEAVES.values()} <= words
    options = out.split("\nconfig:", 1)[1]  # after the usage line
    assert options.index("--inner-lr X") > options.index("config: inner:") > options.index("--hidden-sizes N,N")


def test_flags_and_nested_set_reach_the_config(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--set", "outer.trpo.max_kl=0.02", "--inner-objective", "lvc", "--first-order",
                 "--set", "inner.num_steps=2", "--no-evaluate", "--run-dir", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["outer"]["trpo"]["max_kl"] == 0.02 and config["outer"]["first_order"] is True
    assert (config["inner"]["objective"], config["inner"]["num_steps"], config["task"]["num_tasks"]) == ("lvc", 2, 3)


def _heavy_modules_loaded(argv: list[str]) -> str:
    """``rlmaml ARGV`` run in a fresh interpreter: its exit status and which of torch, matplotlib and
    tqdm it imported, as one line such as ``0 ['matplotlib']``."""
    script = ("import sys\nfrom rlmaml.cli import main\ntry:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n"
              "    rc = e.code\nprint(rc, sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'tqdm'}))")
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, status", [(["--help"], 0), (["train", "--help"], 0), (["evaluate", "--help"], 0),
                                          (["train", "--preset", "x"], 2)])
def test_help_and_usage_errors_do_not_wait_for_torch(argv, status):
    # torch takes seconds to import; the parser must answer without it (and without matplotlib)
    assert _heavy_modules_loaded(argv) == f"{status} []"


def test_commands_without_a_policy_do_not_load_torch(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--run-dir", str(run), "--no-evaluate"]) == 0
    assert _heavy_modules_loaded(["envs"]) == "0 []"
    assert _heavy_modules_loaded(["check-env", "rlmaml/Navigation2D-v0"]) == "0 []"
    assert _heavy_modules_loaded(["plot", str(run)]) == "0 ['matplotlib']"
    assert (run / "training.png").read_bytes().startswith(b"\x89PNG")
    assert _heavy_modules_loaded(["plot", str(tmp_path / "missing")]) == "2 ['matplotlib']"  # a user error


def test_the_package_loads_its_torch_classes_on_first_use():
    script = ("import sys, rlmaml\nbefore = 'torch' in sys.modules\nfrom rlmaml import GaussianMLPPolicy, TaskSampler\n"
              "print(before, 'torch' in sys.modules, GaussianMLPPolicy.__module__, TaskSampler.__module__,\n"
              "      'GaussianMLPPolicy' in dir(rlmaml), hasattr(rlmaml, 'NoSuchName'))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "True", "rlmaml.policy", "rlmaml.sampling", "True", "False"], result.stderr


def test_ctrl_c_while_the_commands_load_exits_quietly(capsys, monkeypatch):
    class Interrupting:
        def __getattr__(self, name):
            raise KeyboardInterrupt  # as a Ctrl-C during ``from rlmaml.commands import ...`` would

    monkeypatch.setitem(sys.modules, "rlmaml.commands", Interrupting())
    assert main(["envs"]) == 130
    assert capsys.readouterr().err.strip() == "rlmaml: interrupted"


def test_ctrl_c_outside_training_exits_quietly(capsys, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "evaluate_and_report", interrupted)
    run = tmp_path / "run"
    assert main(["train", *TINY, "--run-dir", str(run), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert f"Interrupted during the closing evaluation; the trained run in {run} is complete" in err
    assert "Traceback" not in err and (run / "checkpoint.pt").exists()
    assert main(["evaluate", str(run)]) == 130
    assert capsys.readouterr().err.strip() == "rlmaml: interrupted"


def test_a_write_failure_in_training_says_how_to_resume(capsys, tmp_path, monkeypatch):
    calls = []

    def fails_on_second(record, path):
        calls.append(record)
        if len(calls) == 2:
            raise RunWriteError(f"cannot write {path}: No space left on device")
        real_append(record, path)

    real_append = trainer_module.append_metrics
    monkeypatch.setattr(trainer_module, "append_metrics", fails_on_second)
    run = tmp_path / "run"
    err = _one_line_error(capsys, ["train", *TINY, "--run-dir", str(run)])
    assert f"cannot write {run / 'metrics.jsonl'}: No space left on device. Training stopped at iteration 1" in err
    assert err.endswith(f"continue with: rlmaml train --resume {run}")
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--no-evaluate", "--no-progress"]) == 0
    assert [r["iteration"] for r in read_metrics(run / "metrics.jsonl")] == [0, 1]


def test_a_run_that_failed_to_start_leaves_no_config_and_can_be_started_again(capsys, tmp_path, monkeypatch):
    def disk_full(state, path):
        raise RunWriteError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(trainer_module, "save_checkpoint", disk_full)
    run = tmp_path / "run"
    assert "checkpoint.pt: No space left" in _one_line_error(capsys, ["train", *TINY, "--run-dir", str(run)])
    assert not (run / "config.json").exists()
    monkeypatch.undo()
    assert main(["train", *TINY, "--run-dir", str(run), "--no-evaluate"]) == 0


def test_plot_writes_the_format_its_output_names(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--run-dir", str(run), "--no-evaluate"]) == 0
    assert main(["plot", str(run), "--output", str(tmp_path / "curves.svg")]) == 0
    assert (tmp_path / "curves.svg").read_text().startswith("<?xml")
    assert main(["plot", str(run)]) == 0
    assert (run / "training.png").read_bytes().startswith(b"\x89PNG")
    err = _one_line_error(capsys, ["plot", str(run), "--output", str(tmp_path / "curves.xyz")])
    assert "cannot write a figure as .xyz; use one of" in err and ".pdf" in err


def test_a_run_being_trained_cannot_be_resumed_twice(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--run-dir", str(run), "--no-evaluate"]) == 0
    script = ("import sys, time; from pathlib import Path; from rlmaml.trainer import Trainer; "
              "t = Trainer.resume(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        err = _one_line_error(capsys, ["train", "--resume", str(run), "--num-iterations", "3"])
        assert f"{run} is being trained by another rlmaml process" in err
        assert json.loads((run / "config.json").read_text())["num_iterations"] == 2  # untouched
    finally:
        holder.kill()
        holder.wait()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--num-iterations", "3", "--no-evaluate"]) == 0  # kill -9 released it
    assert "checkpoint.pt, config.json, metrics.jsonl" in capsys.readouterr().out  # .lock is not a result


def test_a_missing_checkpoint_of_a_later_run_stops_evaluate_before_any_evaluation(capsys, tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["train", *TINY, "--run-dir", str(first), "--set", "snapshot_every=1", "--no-evaluate"]) == 0
    assert main(["train", *TINY, "--run-dir", str(second), "--no-evaluate"]) == 0
    evaluated = []
    monkeypatch.setattr(evaluation, "evaluate_checkpoint", lambda *args: evaluated.append(args))
    err = _one_line_error(capsys, ["evaluate", str(first), str(second), "--checkpoint", "final,1"])
    assert f"{second} has no snapshots/iteration-00001.pt" in err and evaluated == []
    assert "its snapshots are of iterations 1, 2" in _one_line_error(capsys, ["evaluate", str(first), "--checkpoint", "7"])
    assert "names no checkpoint" in _one_line_error(capsys, ["evaluate", str(first), "--checkpoint", ","])


def test_training_whose_loss_stays_nan_stops_and_names_the_likely_cause(capsys, tmp_path):
    run = tmp_path / "run"
    err = _one_line_error(capsys, ["train", *TINY, "--inner-lr", "1e6", "--num-iterations", "50", "--run-dir",
                                   str(run)])  # the adapted policies overflow: the meta-loss is nan from the start
    assert "the surrogate loss was not finite in the last 5 meta-iterations" in err
    assert "lower inner.lr (now 1e+06)" in err
    assert len(read_metrics(run / "metrics.jsonl")) == 4
