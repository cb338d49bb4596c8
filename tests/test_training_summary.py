"""The training summary that ``rlmaml plot`` prints: window, means, medians and paired differences."""

import math

import numpy as np
import pytest

from rlmaml.config import ConfigError
from rlmaml.training_summary import default_window, parse_window, summarize_training


def _records(post_returns, first_iteration=0):
    return [{"iteration": first_iteration + i, "pre_return": -40.0 + i, "post_return": post, "kl": 0.001 * (i % 3),
             "time_total": 1.0 + i} for i, post in enumerate(post_returns)]


def test_means_medians_and_paired_differences_match_a_direct_computation():
    reference = _records([-12.0, -11.0, -13.0, -12.5, -11.5, -12.2])
    other = _records([-11.0, -10.5, -12.0, None, -10.0])  # one iteration short, one missing
    rows = summarize_training([("a", reference), ("b", other)], 1, 5)  # iterations 1 to 5, both included
    a, b = rows
    assert (a["name"], a["iterations"], b["iterations"]) == ("a", 5, 4)
    assert a["pre_return"] == pytest.approx(np.mean([-39.0, -38.0, -37.0, -36.0, -35.0]))
    assert a["post_return"] == pytest.approx(np.mean([-11.0, -13.0, -12.5, -11.5, -12.2]))
    assert b["post_return"] == pytest.approx(np.mean([-10.5, -12.0, -10.0]))  # the null is left out
    assert a["seconds"] == np.median([2.0, 3.0, 4.0, 5.0, 6.0]) and a["kl"] == np.median([0.001, 0.002, 0, 0.001, 0.002])
    differences = np.array([-10.5 - -11.0, -12.0 - -13.0, -10.0 - -11.5])  # iterations 1, 2 and 4: both recorded
    assert b["paired"]["iterations"] == 3 and "paired" not in a
    assert b["paired"]["mean"] == pytest.approx(differences.mean())
    assert b["paired"]["stderr"] == pytest.approx(differences.std(ddof=1) / math.sqrt(3))


def test_diverged_values_read_back_as_nan_are_left_out_like_missing_ones():
    reference = _records([-12.0, -11.0, -13.0])
    diverged = _records([-11.0, math.nan, -12.0])  # read_metrics turns a null (diverged) value into nan
    missing = _records([-11.0, None, -12.0])
    assert summarize_training([("a", reference), ("b", diverged)], 0, 2) == \
        summarize_training([("a", reference), ("b", missing)], 0, 2)
    row = summarize_training([("a", reference), ("b", diverged)], 0, 2)[1]
    assert row["post_return"] == pytest.approx(-11.5) and row["paired"]["mean"] == pytest.approx(1.0)


def test_runs_that_share_no_iteration_have_no_paired_difference():
    rows = summarize_training([("a", _records([-1.0] * 3)), ("late", _records([-2.0] * 3, first_iteration=3)),
                               ("random", [])], 0, 5)
    assert rows[1]["paired"] is None and rows[1]["post_return"] == -2.0
    assert rows[2] == {"name": "random", "iterations": 0, "pre_return": None, "post_return": None, "seconds": None,
                       "kl": None, "paired": None}


def test_windows_parse_inclusively_and_default_to_the_end_of_the_shortest_run():
    assert parse_window("200-299") == (200, 299) and parse_window("7-7") == (7, 7)
    for bad in ("299-200", "200", "-5-3", "a-b", "200:299"):
        with pytest.raises(ConfigError, match="FIRST-LAST"):
            parse_window(bad)
    curves = [("long", _records([0.0] * 300)), ("short", _records([0.0] * 120)), ("random", [])]
    assert default_window(curves) == (70, 119)
    assert default_window([("tiny", _records([0.0] * 2))]) == (0, 1)
