"""Results of separate evaluations on the same tasks, put into one evaluation record, paired over tasks.

``rlmaml evaluate`` draws every checkpoint's rollouts from fresh streams of the evaluation seed, so a
result does not depend on what else was evaluated with it: results of separate evaluations with the
same family, tasks, trajectories per step and seed are what one evaluation of them all gives, and
their per-task returns pair. The files must agree on all of these. An evaluation written before
evaluations recorded their tasks is compared through the run it took them from (its
``test_tasks.json``, or its seed for validation tasks), and refused if that folder is gone unless
``allow_missing_tasks``. The record names its inputs under ``combined_from``; the inputs'
published-curve rows and sweep selections are not carried over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlmaml.errors import UserError
from rlmaml.evaluation import evaluation_tasks, name_runs_in_shared_labels, with_paired_differences
from rlmaml.runs import RunDir, read_json

SHARED = ("env_id", "env_kwargs", "task_set", "num_tasks", "num_traj", "seed")


class CombineError(UserError, ValueError):
    """The evaluations cannot be paired (other tasks, settings or labels)."""


def selected(argument: str) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    """``FILE`` or ``FILE:LABEL``: the file, its evaluation and the results taken from it."""
    file_name, _, label = argument.partition(".json:")
    path = Path(f"{file_name}.json" if file_name != argument else argument)
    if not path.is_file():
        raise CombineError(f"{path}: no such evaluation file")
    evaluation = read_json(path)
    if not isinstance(evaluation, dict) or not all(key in evaluation for key in ("results", "tasks_from", *SHARED)):
        raise CombineError(f"{path} is not an evaluation.json of rlmaml evaluate or rlmaml sweep")
    results = [r for r in evaluation["results"] if not label or r["label"] == label]
    if not results:
        labels = ", ".join(repr(r["label"]) for r in evaluation["results"])
        raise CombineError(f"{path} has no result labelled {label!r} (it has {labels})")
    return path, evaluation, results


def recorded_tasks(evaluation: dict[str, Any], path: Path) -> list[dict[str, Any]] | None:
    """The tasks the evaluation ran on: as it records them, or, for an evaluation written before
    evaluations recorded their tasks, as the run it took them from draws them again; None if it
    records none and that run folder is gone."""
    if "tasks" in evaluation:
        tasks = evaluation["tasks"]
        if not isinstance(tasks, list) or len(tasks) != evaluation["num_tasks"]:
            raise CombineError(f"{path}: its \"tasks\" are not a list of its {evaluation['num_tasks']} tasks")
        return tasks
    run = RunDir(Path(evaluation["tasks_from"]))
    if not run.test_tasks.is_file():
        return None
    return evaluation_tasks(run, evaluation["task_set"], evaluation["num_tasks"])


def name_every_run(results: list[dict[str, Any]]) -> None:
    """Append the run folder's name to every label that does not end with it already."""
    for result in results:
        suffix = f" [{Path(result['run']).name}]"
        result["label"] += "" if result["label"].endswith(suffix) else suffix


def combine(arguments: list[str], allow_missing_tasks: bool = False, name_runs: bool = False) -> dict[str, Any]:
    """One evaluation record (as ``rlmaml evaluate`` writes) of the selected results, the first minus
    each other paired over tasks, with each run folder's name in every label if ``name_runs``; raises
    CombineError if they were not evaluated alike."""
    picked = [selected(argument) for argument in arguments]
    first_path, first, _ = picked[0]
    tasks = recorded_tasks(first, first_path)
    for path, evaluation, _ in picked:
        for key in SHARED:
            if evaluation[key] != first[key]:
                raise CombineError(f"{path} has {key} {evaluation[key]!r}, {first_path} {first[key]!r}: "
                                   "only evaluations on the same tasks with the same settings pair")
        other = tasks if evaluation is first else recorded_tasks(evaluation, path)
        if other is None and not allow_missing_tasks:
            raise CombineError(f"{path} does not record its tasks and {evaluation['tasks_from']}/test_tasks.json "
                               "is gone, so the tasks cannot be compared; pass --allow-missing-tasks if you have "
                               "checked them another way")
        if tasks is not None and other is not None and other != tasks:
            raise CombineError(f"{path} and {first_path} were evaluated on different tasks")
    results = [result for _, _, chosen in picked for result in chosen]
    if name_runs:
        name_every_run(results)
    else:
        name_runs_in_shared_labels(results)  # two runs' "MAML (final, it. 500)", say
    labels = [result["label"] for result in results]
    if len(set(labels)) < len(labels):
        raise CombineError(f"a label occurs twice ({', '.join(labels)}): take one result per label")
    header = ("env_id", "env_kwargs", "task_set", "tasks_from", "num_tasks", "num_traj", "seed")
    return with_paired_differences({**{key: first[key] for key in header},
                                    "combined_from": [str(path) for path, _, _ in picked], "results": results,
                                    **({} if tasks is None else {"tasks": tasks})})
