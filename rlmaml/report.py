"""Evaluation tables (CSV) and figures (PNG): adaptation curves and training curves."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from rlmaml.paper import paper_label  # noqa: E402
from rlmaml.runs import write_file  # noqa: E402

CSV_COLUMNS = ("label", "method", "run", "checkpoint", "iteration", "metric", "step", "step_size", "mean", "stderr",
               "per_task")
METHOD_COLORS = {"maml": "tab:blue", "pretrained": "tab:orange", "random": "tab:gray", "oracle": "tab:green"}
FURTHER_RUN_COLORS = ("tab:purple", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
"""Colours of a method's second and later runs in one evaluation figure."""


def csv_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (checkpoint, metric, step) of an :func:`rlmaml.evaluation.evaluate_runs` result;
    ``per_task`` holds the per-task values separated by spaces."""
    rows = []
    for result in evaluation["results"]:
        metrics = [("return", result["summary"], result["per_task"])]
        if "success_summary" in result:
            metrics.append(("success_rate", result["success_summary"], result["per_task_success"]))
        for metric, summary, per_task in metrics:
            for row in summary:
                step = row["step"]
                rows.append({"label": result["label"], "method": result["method"], "run": result["run"],
                             "checkpoint": result["checkpoint"], "iteration": result["iteration"], "metric": metric,
                             "step": step, "step_size": result["step_sizes"][step - 1] if step else 0.0,
                             "mean": row["mean"], "stderr": row["stderr"],
                             "per_task": " ".join(f"{task[step]:.6g}" for task in per_task)})
    return rows


def write_csv(evaluation: dict[str, Any], path: Path) -> None:
    """The evaluation as a CSV table (see :func:`csv_rows`)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(csv_rows(evaluation))
    write_file(text.getvalue().encode(), path)


def figure_format(path: Path) -> str:
    """The image format ``path``'s suffix names (PNG without one); ``ValueError`` if matplotlib
    cannot write it."""
    name = path.suffix[1:].lower() or "png"
    supported = Figure().canvas.get_supported_filetypes()
    if name not in supported:
        raise ValueError(f"cannot write a figure as .{name}; use one of "
                         f"{', '.join('.' + kind for kind in sorted(supported))}")
    return name


def save_figure(fig: Figure, path: Path, dpi: int) -> None:
    """Write ``fig`` atomically in the format of ``path``'s suffix and close it (``RunWriteError`` if
    it cannot be written)."""
    image = io.BytesIO()
    fig.savefig(image, format=figure_format(path), dpi=dpi)
    plt.close(fig)
    write_file(image.getvalue(), path)


def _line_style(results: Sequence[dict[str, Any]], index: int) -> tuple[str, str]:
    """Colour by method, with a colour of its own for each further run of a method (two MAML runs
    compared); within a run, the second and later checkpoints get dashed/dotted lines."""
    result = results[index]
    first_runs: dict[str, str] = {}
    further_runs: list[str] = []
    for other in results:
        run = first_runs.setdefault(other["method"], other["run"])
        if other["run"] != run and other["run"] not in further_runs:
            further_runs.append(other["run"])
    if result["run"] in further_runs:
        color = FURTHER_RUN_COLORS[further_runs.index(result["run"]) % len(FURTHER_RUN_COLORS)]
    else:
        color = METHOD_COLORS.get(result["method"], f"C{index}")
    rank = sum(r["run"] == result["run"] for r in results[:index])  # a run folder holds one method
    return color, ("-", "--", ":", "-.")[rank % 4]


def schedule_text(result: dict[str, Any]) -> str:
    """An evaluation result's step sizes as printed and drawn, e.g. ``0.1, 0.05``, or
    ``0.01, 0.007 <rule>`` (``<rule> to 5`` for a target return other than 0) for a step rule other than the paper's."""
    text = ", ".join(f"{lr:g}" for lr in result["step_sizes"])
    if text and result.get("step_rule", "fixed") != "fixed":
        target = result.get("target_return", 0.0)
        text += f" {result['step_rule']}" + (f" to {target:g}" if target else "")
    return text


def _legend_label(result: dict[str, Any], show_step_sizes: bool) -> str:
    if not show_step_sizes or result["method"] == "oracle" or not result["step_sizes"]:
        return result["label"]
    return f"{result['label']}, step sizes {schedule_text(result)}"


def _schedules(evaluation: dict[str, Any]) -> set[str]:
    """The distinct step-size schedules of the adapted (non-oracle) results, as :func:`schedule_text`."""
    return {schedule_text(r) for r in evaluation["results"] if r["method"] != "oracle"}


def _draw_curves(ax: Any, evaluation: dict[str, Any], summary_key: str) -> None:
    results = evaluation["results"]
    schedules = _schedules(evaluation)
    num_steps = max(len(r[summary_key]) for r in results if summary_key in r) - 1
    steps_axis = np.arange(num_steps + 1)
    for index, result in enumerate(results):
        if summary_key not in result:
            continue
        color, style = _line_style(results, index)
        mean = np.array([row["mean"] for row in result[summary_key]])
        stderr = np.nan_to_num(np.array([row["stderr"] for row in result[summary_key]]))
        if result["method"] == "oracle":  # the oracle knows the task: a level to aim for, drawn flat
            ax.axhline(mean[0], color=color, linestyle=style, label=f"{result['label']} (no adaptation)")
            ax.axhspan(mean[0] - stderr[0], mean[0] + stderr[0], color=color, alpha=0.15, linewidth=0)
        else:
            x = steps_axis[: len(mean)]
            ax.plot(x, mean, color=color, linestyle=style, marker="o",
                    label=_legend_label(result, show_step_sizes=len(schedules) > 1))
            ax.fill_between(x, mean - stderr, mean + stderr, color=color, alpha=0.2, linewidth=0)
    if summary_key == "summary":
        for method, values in evaluation.get("paper", {}).get("curves", {}).items():
            color = METHOD_COLORS.get(method, "black")
            if method == "oracle":
                ax.axhline(values[0], color=color, linestyle=":", linewidth=1.2, label=paper_label(method))
            else:
                ax.plot(np.arange(len(values)), values, color=color, linestyle=":", linewidth=1.2, marker="x",
                        label=paper_label(method))
    ax.set_xticks(steps_axis)
    ax.set_xlabel("number of gradient steps")
    ax.grid(alpha=0.3)


def adaptation_title(evaluation: dict[str, Any]) -> str:
    """Figure title: family, task set and size, and the step sizes when every method shares them
    (different schedules are given per line in the legend instead)."""
    title = (f"{evaluation['env_id']}\n{evaluation['num_tasks']} {evaluation['task_set']} tasks x "
             f"{evaluation['num_traj']} trajectories per step; bands: ±1 standard error over tasks")
    schedules = _schedules(evaluation)
    if len(schedules) == 1:
        (schedule,) = schedules
        if schedule:
            title += f"\nstep sizes {schedule} for every method"
    if "paper" in evaluation:
        title += f"\ndotted: {evaluation['paper']['source']}"
    return title


def plot_adaptation(evaluation: dict[str, Any], path: Path) -> None:
    """Return (and success rate, if reported) vs number of inner gradient steps, one line per
    evaluated checkpoint, bands of +- one standard error over tasks; the oracle as a level."""
    has_success = any("success_summary" in r for r in evaluation["results"])
    # the legend goes below the axes: give it columns and height so that many checkpoints fit
    entries = len(evaluation["results"]) + len(evaluation.get("paper", {}).get("curves", {}))
    columns = min(3, max(1, math.ceil(entries / 8)))
    rows = math.ceil(entries / columns)
    width = max(11 if has_success else 6.5, 3.4 * columns + 0.3)
    fig, axes = plt.subplots(1, 2 if has_success else 1, figsize=(width, 5.5 + 0.18 * max(0, rows - 4)),
                             squeeze=False, layout="constrained")
    _draw_curves(axes[0, 0], evaluation, "summary")
    axes[0, 0].set_ylabel("average return per trajectory (env reward units)")
    if has_success:
        _draw_curves(axes[0, 1], evaluation, "success_summary")
        axes[0, 1].set_ylabel("success rate (fraction of trajectories)")
        axes[0, 1].set_ylim(-0.02, 1.02)
    # below the axes: inside, it hid the oracle's level or the curves' ends
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=columns)
    fig.suptitle(adaptation_title(evaluation), fontsize=10)
    save_figure(fig, path, dpi=120)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average [len(values)] (shorter windows at the start)."""
    if window <= 1:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


def episode_lengths(records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(iteration, pre_length, post_length) [R] over the records that log episode lengths, or None
    when none do or every episode ran to the horizon (all lengths equal: nothing to show)."""
    logged = [r for r in records if "pre_length" in r and "post_length" in r]
    if not logged:
        return None
    iteration, pre, post = (np.array([r[key] for r in logged], dtype=float)
                            for key in ("iteration", "pre_length", "post_length"))
    if np.ptp(np.concatenate([pre, post])) == 0:
        return None
    return iteration, pre, post


def _before_after(pre: np.ndarray, post: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """(values, line style) to draw: dashed before and solid after adaptation, or one solid line
    when they are equal (pretrained / oracle train without an inner step)."""
    if np.array_equal(pre, post):
        return [(post, "-")]
    return [(pre, "--"), (post, "-")]


def _run_colors(count: int) -> list[Any]:
    """One colour per run: matplotlib's default cycle up to 10 runs, tab20 beyond (repeating after 20)."""
    if count <= 10:
        return [f"C{index}" for index in range(count)]
    palette = plt.get_cmap("tab20")
    return [palette(index % 20) for index in range(count)]


def plot_training(runs: Sequence[tuple[str, list[dict[str, Any]]]], path: Path, smooth: int = 10) -> list[str]:
    """Training curves of several runs, given as (name, metrics records): pre- and post-adaptation
    return, KL of the meta-update, seconds per meta-iteration and, when some run's episodes end
    before the horizon, the mean steps per trajectory, against meta-iteration. One legend below the
    panels names each run's colour and the line styles. Returns the panels' y-axis labels."""
    lengths = [episode_lengths(records) for _, records in runs]
    show_lengths = any(found is not None for found in lengths)
    columns = min(4, max(1, math.ceil(len(runs) / 4)))
    legend_rows = math.ceil((len(runs) + 2) / columns)
    width, height = (12, 8.6) if show_lengths else (15, 4.3)
    fig, grid = plt.subplots(2 if show_lengths else 1, 2 if show_lengths else 3,
                             figsize=(width, height + 0.2 * legend_rows), squeeze=False, layout="constrained")
    axes = list(grid.flat)
    colors = _run_colors(len(runs))
    handles, any_adapts = [], False
    for index, (name, records) in enumerate(runs):
        if not records:
            continue
        color = colors[index]
        iteration = np.array([r["iteration"] for r in records])
        pre, post = (np.array([r[key] for r in records]) for key in ("pre_return", "post_return"))
        adapts = not np.array_equal(pre, post)
        any_adapts |= adapts
        handles.append(Line2D([], [], color=color, label=name if adapts else f"{name} (no inner step)"))
        for values, style in _before_after(pre, post):
            axes[0].plot(iteration, values, color=color, alpha=0.15, linestyle=style)
            axes[0].plot(iteration, moving_average(values, smooth), color=color, linestyle=style)
        kl = np.array([r["kl"] for r in records])
        axes[1].plot(iteration, kl, color=color, alpha=0.15)
        axes[1].plot(iteration, moving_average(kl, smooth), color=color)
        axes[2].plot(iteration, moving_average(np.array([r["time_total"] for r in records]), smooth), color=color)
        run_lengths = lengths[index]
        if run_lengths is not None:
            length_iteration, pre_length, post_length = run_lengths
            for values, style in _before_after(pre_length, post_length):
                axes[3].plot(length_iteration, moving_average(values, smooth), color=color, linestyle=style)
    if any_adapts:
        handles += [Line2D([], [], color="0.4", linestyle="--", label="before adaptation"),
                    Line2D([], [], color="0.4", linestyle="-", label="after adaptation")]
    axes[0].set_ylabel(f"average return per trajectory (moving average of {smooth})")
    axes[1].set_ylabel(f"KL of the meta-update (moving average of {smooth})")
    axes[2].set_ylabel(f"seconds per meta-iteration (moving average of {smooth})")
    if show_lengths:
        axes[3].set_ylabel(f"mean steps per trajectory (moving average of {smooth})")
    for ax in axes:
        ax.set_xlabel("meta-iteration")
        ax.grid(alpha=0.3)
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=columns)
    save_figure(fig, path, dpi=110)
    return [ax.get_ylabel() for ax in axes]
