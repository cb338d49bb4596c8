"""Training records summarised over a window of meta-iterations, for comparing runs in numbers."""

from __future__ import annotations

import math
import statistics
from typing import Any, Sequence

from rlmaml.config import ConfigError

DEFAULT_WINDOW = 50
"""Meta-iterations summarised when no window is given: the last ones of the shortest run."""


def parse_window(text: str) -> tuple[int, int]:
    """``"A-B"`` (meta-iterations A to B, both included, counted from 0) as ``(A, B)``."""
    first, sep, last = text.partition("-")
    if not (sep and first.isdigit() and last.isdigit()) or int(first) > int(last):
        raise ConfigError(f"--iterations expects FIRST-LAST with 0 <= FIRST <= LAST (e.g. 200-299), got {text!r}")
    return int(first), int(last)


def default_window(curves: Sequence[tuple[str, list[dict[str, Any]]]], size: int = DEFAULT_WINDOW) -> tuple[int, int]:
    """The last ``size`` meta-iterations of the shortest run that has records (all of it if shorter)."""
    last = min(records[-1]["iteration"] for _, records in curves if records)
    return max(0, last - size + 1), last


def summarize_training(curves: Sequence[tuple[str, list[dict[str, Any]]]], first: int,
                       last: int) -> list[dict[str, Any]]:
    """Each run's training over meta-iterations ``first`` to ``last`` (both included).

    Args:
        curves: (name, metrics.jsonl records) per run; the first run is the one the others are
            compared with.

    Returns:
        One dict per run: ``name``, ``iterations`` (how many it recorded in the window),
        ``pre_return`` and ``post_return`` (means), ``seconds`` (median seconds per iteration),
        ``kl`` (median), each None without records (missing and diverged values are left out); and for every run after the first,
        ``paired``: its post-adaptation return minus the first run's at the same iterations
        (``mean``, ``stderr``, ``iterations``), or None when they share no iteration. Runs with
        one seed draw the same training tasks at the same iteration, so this difference is free
        of the spread between easy and hard task draws.
    """
    windows = [{r["iteration"]: r for r in records if first <= r["iteration"] <= last} for _, records in curves]
    rows = []
    for index, ((name, _), window) in enumerate(zip(curves, windows)):
        row: dict[str, Any] = {"name": name, "iterations": len(window),
                               "pre_return": _mean([r["pre_return"] for r in window.values()]),
                               "post_return": _mean([r["post_return"] for r in window.values()]),
                               "seconds": _median([r.get("time_total") for r in window.values()]),
                               "kl": _median([r.get("kl") for r in window.values()])}
        if index:
            row["paired"] = _paired(window, windows[0])
        rows.append(row)
    return rows


def _paired(window: dict[int, dict[str, Any]], reference: dict[int, dict[str, Any]]) -> dict[str, float] | None:
    """Post-adaptation return minus the reference's at the iterations both recorded (diverged values skipped)."""
    differences = [window[i]["post_return"] - reference[i]["post_return"] for i in sorted(window.keys() & reference.keys())
                   if _recorded(window[i]["post_return"]) and _recorded(reference[i]["post_return"])]
    if not differences:
        return None
    stderr = statistics.stdev(differences) / math.sqrt(len(differences)) if len(differences) > 1 else math.nan
    return {"mean": statistics.fmean(differences), "stderr": stderr, "iterations": len(differences)}


def _recorded(value: float | None) -> bool:
    """A usable number: not missing, and not the nan that :func:`rlmaml.runs.read_metrics` reads a
    diverged (null) value as."""
    return value is not None and math.isfinite(value)


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None and _recorded(v)]
    return statistics.fmean(present) if present else None


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None and _recorded(v)]
    return statistics.median(present) if present else None
