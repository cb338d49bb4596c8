import pytest

from rlmaml.config import ConfigError
from rlmaml.runs import read_metrics
from rlmaml.trainer import Trainer

from conftest import config_of

TINY = dict(num_tasks=3, num_traj=4, horizon=10, hidden_sizes=(8,), num_iterations=4, num_eval_tasks=5, seed=3,
            tensorboard=True)


def _scalars(run_dir, name):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(run_dir / "tensorboard"))
    board.Reload()
    return [(event.step, event.value) for event in board.Scalars(name)]


def test_crashed_run_resumes_without_stale_or_duplicated_points(tmp_path):
    trainer = Trainer.create(config_of(**{**TINY, "checkpoint_every": 2}), tmp_path / "run")
    original, calls = trainer.train_iteration, []

    def crash_on_fourth_call():  # stands for SIGKILL: iteration 2 is logged but not checkpointed
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("killed")
        return original()

    trainer.train_iteration = crash_on_fourth_call
    with pytest.raises(RuntimeError):
        trainer.train(progress=False)
    assert [step for step, _ in _scalars(tmp_path / "run", "pre_return")] == [0, 1, 2]
    trainer.close()  # the killed process's lock goes with it

    resumed = Trainer.resume(tmp_path / "run")
    assert resumed.iteration == 2
    resumed.train(progress=False)
    records = read_metrics(resumed.run.metrics)
    for name in ("pre_return", "post_return", "kl", "time_total"):
        steps, values = zip(*_scalars(tmp_path / "run", name))
        assert list(steps) == [r["iteration"] for r in records] == [0, 1, 2, 3]
        assert list(values) == pytest.approx([r[name] for r in records], rel=1e-6)


def test_tensorboard_flag_must_be_boolean():
    with pytest.raises(ConfigError, match="tensorboard must be true or false"):
        config_of(tensorboard="yes")


def test_missing_package_is_a_one_line_error_before_anything_is_written(tmp_path, monkeypatch):
    import rlmaml.tensorboard

    monkeypatch.setattr(rlmaml.tensorboard.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install 'rlmaml\[tensorboard\]'"):
        Trainer.create(config_of(**TINY), tmp_path / "run")
    assert not (tmp_path / "run").exists()
