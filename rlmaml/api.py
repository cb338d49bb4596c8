"""What ``import rlmaml`` offers a Python user: build a config, train, load a run, evaluate
checkpoints, register a task family. Torch is imported on first use, not with the package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from rlmaml.config import PRESETS, ConfigError, TrainConfig, build, load_config, normalized, read_config_file
from rlmaml.registry import register_families
from rlmaml.runs import RunDir, read_metrics, read_test_tasks

if TYPE_CHECKING:
    from rlmaml.policy import GaussianMLPPolicy


def make_config(preset: str | None = None, file: str | Path | None = None, **values: Any) -> TrainConfig:
    """A config from a preset (``None``: the fields' defaults), then a JSON/TOML file, then ``values``
    by flat name (``inner_lr=0.05``, ``num_tasks=10``, ``max_kl=0.02``; see docs/configuration.md).
    ``TrainConfig.with_values({"inner.lr": 0.05})`` changes fields by dotted path."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    from_file = read_config_file(Path(file)) if file is not None else {}
    return build({**(PRESETS[preset] if preset else {}), **from_file, **normalized(values, "make_config")})


def train(config: TrainConfig, run_dir: str | Path, progress: bool = False) -> Path:
    """Train ``config`` in a new run folder (``run_dir`` must not hold a run); returns its path. The
    folder gets what ``rlmaml train`` writes: config.json, metrics.jsonl, checkpoints, test_tasks.json."""
    from rlmaml.trainer import Trainer

    with Trainer.create(config, Path(run_dir)) as trainer:
        trainer.train(progress=progress)
    return Path(run_dir)


def resume(run_dir: str | Path, num_iterations: int | None = None, progress: bool = False) -> Path:
    """Continue the run in ``run_dir`` from its last checkpoint, optionally to more iterations."""
    from rlmaml.trainer import Trainer

    with Trainer.resume(Path(run_dir), num_iterations) as trainer:
        trainer.train(progress=progress)
    return Path(run_dir)


@dataclass(frozen=True)
class Run:
    """A run folder as read back: its config, metrics and held-out tasks, and its policies."""

    path: Path
    config: TrainConfig
    metrics: list[dict[str, Any]]
    """One record per finished meta-iteration (``metrics.jsonl``)."""
    test_tasks: list[dict[str, Any]]

    def policy(self, checkpoint: str = "final") -> "GaussianMLPPolicy":
        """The policy of checkpoint ``final``, ``best`` or an iteration kept with ``run.snapshot_every``."""
        from rlmaml.checkpoints import load_checkpoint, restore_policy
        from rlmaml.evaluation import existing_checkpoint
        from rlmaml.policy import make_policy
        from rlmaml.rollout import TaskEnvs

        task = self.config.task
        envs = TaskEnvs(task.env_id, task.horizon, task.env_kwargs, oracle=self.config.method == "oracle")
        path = existing_checkpoint(RunDir(self.path), checkpoint)
        policy = make_policy(self.config.policy, envs.obs_dim, envs.act_dim)
        restore_policy(policy, load_checkpoint(path), path)
        return policy


def load_run(run_dir: str | Path) -> Run:
    """Read a run folder (of this release or an earlier one)."""
    run = RunDir(Path(run_dir))
    run.require("config", "test_tasks", "checkpoint")
    return Run(run.path, load_config(run.config), read_metrics(run.metrics), read_test_tasks(run))


def evaluate(run_dirs: Sequence[str | Path], checkpoints: Sequence[str] = ("final",), num_steps: int = 3,
             num_traj: int = 40, progress: bool = False, **settings: Any) -> dict[str, Any]:
    """Adaptation curves of the runs' checkpoints on the first run's held-out tasks, as ``rlmaml
    evaluate`` computes them (``settings``: ``inner_lr``, ``later_factor``, ``seed``, ``step_rule``,
    ``target_return`` of :class:`rlmaml.evaluation.EvalSettings`). Returns the record that command
    writes to evaluation.json: ``results[i]["summary"]`` holds mean and standard error per step."""
    from rlmaml.evaluation import EvalSettings, evaluate_runs

    eval_settings = EvalSettings(num_steps=num_steps, num_traj=num_traj, **settings)
    return evaluate_runs([RunDir(Path(p)) for p in run_dirs], list(checkpoints), eval_settings, progress=progress)


def register_family(env_id: str, entry_point: str, max_episode_steps: int, summary: str = "",
                    **kwargs: Any) -> None:
    """Register a task family (a Gymnasium env following the task protocol) under ``env_id``, so that
    configs and ``gymnasium.make`` can name it; ``kwargs`` are the env's default keyword arguments."""
    register_families({env_id: {"entry_point": entry_point, "max_episode_steps": max_episode_steps,
                                "summary": summary, "kwargs": kwargs}}, "user")
