"""Branching a run: a new run folder that starts from another run's last checkpoint with changed settings.

The source is only read (it may still be training). The branch keeps the source's held-out tasks, its
metrics up to the checkpoint, its best checkpoint and snapshots from before it, and records where it
came from in ``branch.json``; ``Trainer.resume`` then trains it like any interrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlmaml.checkpoints import RUN_STATE_KEYS, load_checkpoint, save_checkpoint
from rlmaml.config import ConfigError, leaf_values, load_config
from rlmaml.runs import RunDir, RunError, lock_run, make_output_dir, truncate_metrics, write_file, write_json

BRANCH_FIXED = ("method", "seed", "task.env_id", "task.env_kwargs", "task.horizon", "task.num_eval_tasks",
                "policy.hidden_sizes", "policy.activation", "policy.init_std")
"""Config fields a branch keeps from its source: they define the policy network, the task family and the
held-out tasks, so changing them would not continue the same run."""


def branch_run(source: Path, path: Path, changes: dict[str, Any]) -> tuple[int, dict[str, list[Any]]]:
    """Write a new run in ``path`` that continues the run in ``source`` from its last checkpoint with
    ``changes`` to its config (keyed by dotted path or flat name; none of ``BRANCH_FIXED``;
    ``num_iterations`` at least the checkpoint's iteration). Returns that iteration and the changed
    fields as ``{dotted path: [old, new]}``."""
    origin = RunDir(source)
    origin.require("config", "checkpoint", "test_tasks", "metrics")
    old = load_config(origin.config)
    new = old.with_values(changes)
    new_values = leaf_values(new)
    changed = {path: [value, new_values[path]] for path, value in leaf_values(old).items()
               if new_values[path] != value}
    fixed = [name for name in BRANCH_FIXED if name in changed]
    if fixed:
        raise ConfigError(f"a branch cannot change {', '.join(fixed)}: its policy network, task family and "
                          f"held-out tasks stay those of {source}; start a new run instead")
    state = load_checkpoint(origin.checkpoint, RUN_STATE_KEYS)
    iteration = state["iteration"]
    if new.trained_iterations < iteration:
        raise ConfigError(f"{source} has already trained {iteration} iterations; --num-iterations must be at "
                          "least that")
    run = RunDir(path)
    make_output_dir(path)
    lock = lock_run(run)
    try:
        if run.config.exists():
            raise RunError(f"{path} already holds a run; choose another --run-dir")
        _copy_history(origin, run, iteration)
        save_checkpoint(state, run.checkpoint)
        write_json({"source": str(source.resolve()), "iteration": iteration, "changed": changed}, run.branch)
        write_json(new.to_dict(), run.config)  # last: a folder with config.json holds a resumable run
    finally:
        if lock is not None:
            lock.close()
    return iteration, changed


def _copy_history(origin: RunDir, run: RunDir, iteration: int) -> None:
    """Copy the held-out tasks, the metrics of the first ``iteration`` iterations, and the best
    checkpoint and snapshots taken before the branch point."""
    write_file(_read(origin.test_tasks), run.test_tasks)
    write_file(_read(origin.metrics), run.metrics)
    truncate_metrics(run.metrics, iteration)  # the source may have logged iterations past its checkpoint
    if origin.best_checkpoint.is_file():
        best = load_checkpoint(origin.best_checkpoint)
        if best["iteration"] < iteration:
            save_checkpoint(best, run.best_checkpoint)
    for snapshot in origin.snapshot_iterations():
        if snapshot <= iteration:
            run.snapshot(snapshot).parent.mkdir(exist_ok=True)
            write_file(_read(origin.snapshot(snapshot)), run.snapshot(snapshot))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise RunError(f"cannot read {path}: {error.strerror or error}") from None


def describe_changes(changed: dict[str, list[Any]]) -> str:
    """``changed`` (as returned by :func:`branch_run`) as ``field old -> new, ...``."""
    return ", ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in changed.items()) or "no settings changed"
