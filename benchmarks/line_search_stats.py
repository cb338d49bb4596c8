"""Which model of the TRPO meta-step fails when the line search keeps backtracking?

    python benchmarks/line_search_stats.py 'runs/exp/cd500diag-s0:Fisher curvature (preset)' \\
        'runs/exp/cdfull150-s0:exact curvature from 150' --output results/cheetah-dir-curvature/line_search.png

Reads a run's metrics.jsonl (runs trained since the step statistics were logged) and prints, per
window of meta-iterations: how many iterations in it logged the statistics, the mean return after
adaptation, the mean number of line-search candidates tried, the median fraction of the proposed
step accepted, and how the proposed full step compares with the two models that sized it. The
quadratic model of the KL puts the full step's KL at ``max_kl``: the median of the measured KL over
``max_kl`` says how far off it is (above 1: the curvature is underestimated and the line search must
backtrack for the KL bound). The linear model
puts the surrogate's decrease at gradient . step: the median measured decrease over that prediction
says how far off it is (below 0: the full step makes the surrogate worse). Also the share of full
steps over the KL bound and the share that made the surrogate worse. ``--output`` draws the ratios
per iteration.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rlmaml.config import load_config
from rlmaml.errors import UserError
from rlmaml.runs import RunDir, read_metrics

LOGGED = ("full_step_kl", "full_step_improvement", "predicted_improvement", "step_fraction")


def logs_step_statistics(record: dict[str, Any]) -> bool:
    """Whether a metrics record has the step statistics (runs trained before them do not)."""
    return all(key in record for key in LOGGED)


def step_ratios(record: dict[str, Any], max_kl: float) -> tuple[float, float]:
    """(full step's KL / max_kl, full step's surrogate decrease / the linear model's) of one
    meta-iteration; nan where the step was not tried or nothing was predicted."""
    predicted = record["predicted_improvement"]
    improvement_ratio = record["full_step_improvement"] / predicted if predicted and math.isfinite(predicted) else math.nan
    return record["full_step_kl"] / max_kl, improvement_ratio


def window_rows(records: Sequence[dict[str, Any]], max_kl: float, window: int) -> list[dict[str, Any]]:
    """One row per window of ``window`` meta-iterations (by iteration number), over the records that
    log the step statistics: the statistics the module docstring lists; nan where a window has no
    finite value."""
    windows: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        if logs_step_statistics(record):
            windows.setdefault(record["iteration"] // window, []).append(record)
    rows = []
    for index, chunk in sorted(windows.items()):
        kl_ratios, improvement_ratios = zip(*(step_ratios(r, max_kl) for r in chunk))
        rows.append({
            "iterations": f"{index * window}-{index * window + window - 1}",
            "logged": len(chunk),
            "post_return": statistics.fmean(r["post_return"] for r in chunk),
            "candidates": statistics.fmean(r["line_search_steps"] for r in chunk),
            "step_fraction": _median([r["step_fraction"] for r in chunk]),
            "kl_ratio": _median(kl_ratios),
            "improvement_ratio": _median(improvement_ratios),
            "over_kl": _share([kl > 1 for kl in kl_ratios if math.isfinite(kl)]),
            "surrogate_worse": _share([r["full_step_improvement"] < 0 for r in chunk
                                       if math.isfinite(r["full_step_improvement"])]),
        })
    return rows


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else math.nan


def format_rows(name: str, rows: Sequence[dict[str, Any]]) -> str:
    header = (f"{name}\n{'iterations':>10} {'logged':>6} {'post return':>11} {'candidates':>10} {'accepted':>9} "
              f"{'KL/max_kl':>9} {'actual/linear':>13} {'over KL':>8} {'worse':>6}")
    lines = [header]
    for r in rows:
        lines.append(f"{r['iterations']:>10} {r['logged']:>6} {r['post_return']:>11.1f} {r['candidates']:>10.1f} {r['step_fraction']:>9.3f} "
                     f"{r['kl_ratio']:>9.2f} {r['improvement_ratio']:>13.2f} {r['over_kl']:>8.0%} {r['surrogate_worse']:>6.0%}")
    return "\n".join(lines)


def plot(runs: Sequence[tuple[str, list[dict[str, Any]], float]], path: Path, smooth: int) -> None:
    """Per iteration, the two ratios (moving medians of ``smooth``), one colour per run."""
    import matplotlib.pyplot as plt

    from rlmaml.report import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), layout="constrained")
    for index, (name, records, max_kl) in enumerate(runs):
        logged = [r for r in records if logs_step_statistics(r)]
        iteration = np.array([r["iteration"] for r in logged])
        kl, gain = (np.array(values) for values in zip(*(step_ratios(r, max_kl) for r in logged)))
        fraction = np.array([r["step_fraction"] for r in logged])
        for ax, values in zip(axes, (kl, gain, fraction)):
            on_top = len(runs) - index  # the first run over the others (a branch repeats its parent's start)
            ax.plot(iteration, values, color=f"C{index}", alpha=0.15, linestyle="none", marker=".", zorder=on_top)
            ax.plot(iteration, _moving_median(values, smooth), color=f"C{index}", label=name, zorder=on_top)
    axes[0].axhline(1.0, color="0.4", linestyle=":", label="quadratic model (= max_kl)")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("full step's KL / max_kl")
    axes[1].axhline(1.0, color="0.4", linestyle=":", label="linear model")
    axes[1].axhline(0.0, color="0.7", linewidth=0.8)
    axes[1].set_ylabel("full step's surrogate decrease / gradient . step")
    axes[1].set_ylim(-2, 2)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("accepted fraction of the proposed step")
    for ax in axes:
        ax.set_xlabel("meta-iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"TRPO meta-step against its models (lines: moving median of {smooth})")
    save_figure(fig, path, dpi=110)


def _moving_median(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing median over the finite values of the last ``window`` [len(values)]; nan if none."""
    medians = np.full(len(values), np.nan)
    for index in range(len(values)):
        chunk = values[max(0, index - window + 1): index + 1]
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            medians[index] = np.median(chunk)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR[:LABEL]", help="runs, each optionally with its legend label")
    parser.add_argument("--window", type=int, default=50, help="meta-iterations per table row")
    parser.add_argument("--output", type=Path, help="PNG of the ratios per iteration")
    parser.add_argument("--smooth", type=int, default=20, help="moving-median window of the figure's lines")
    args = parser.parse_args()
    loaded = []
    try:
        for item in args.runs:
            path, _, label = item.partition(":")
            run = RunDir(Path(path))
            run.require("config", "metrics")
            records, config = read_metrics(run.metrics), load_config(run.config)
            if config.meta_optimizer != "trpo":
                raise UserError(f"{run.path} was trained with meta_optimizer={config.meta_optimizer!r}, which has no "
                                "line search; its metrics.jsonl logs kl, inner_kl and clip_fraction instead")
            if not any(map(logs_step_statistics, records)):
                raise UserError(f"{run.metrics} logs no step statistics (trained before they were logged)")
            loaded.append((label or run.path.name, records, config.max_kl))
    except UserError as error:
        sys.exit(f"error: {error}")
    for name, records, max_kl in loaded:
        print(format_rows(name, window_rows(records, max_kl, args.window)))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        plot(loaded, args.output, args.smooth)
        print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
