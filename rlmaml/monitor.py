"""Signs that training is going wrong in a way the post-adaptation return alone does not show.

A *run-away* is a pre-update policy whose return keeps falling while the adapted policy's return
holds: MAML only scores the adapted policy, so nothing stops the pre-update one from drifting (see
``outer.trpo.cg_damping``). The detector compares moving averages of both returns with their
best so far; the share of actions at the bounds of the action box shows a policy pushing past them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rlmaml.batch import Batch

RUNAWAY_WINDOW = 10
"""Meta-iterations per moving average."""
RUNAWAY_DROP = 0.5
"""A run-away: the pre-update average fell below its best by more than this fraction of the best's size..."""
POST_HOLD = 0.25
"""... while the post-update average stays within this fraction of its best's size of its best."""


def action_bound_counts(batch: Batch, low: np.ndarray, high: np.ndarray) -> tuple[Tensor, Tensor]:
    """How many of the valid steps' action components [N, M, T, act] lie at or beyond the action box
    [low, high] (each [act]), and how many there are (scalars)."""
    actions = batch.actions
    low_t = torch.as_tensor(low, dtype=actions.dtype)
    high_t = torch.as_tensor(high, dtype=actions.dtype)
    outside = ((actions <= low_t) | (actions >= high_t)).to(actions.dtype)  # [N, M, T, act]
    mask = batch.mask.unsqueeze(-1).expand_as(outside)
    return (outside * mask).sum(), mask.sum()


def action_bound_share(batch: Batch, low: np.ndarray, high: np.ndarray) -> float:
    """Share of the valid steps' action components at or beyond the action box (:func:`action_bound_counts`);
    0 for an unbounded box."""
    outside, total = action_bound_counts(batch, low, high)
    return float(outside / total.clamp_min(1.0))


@dataclass
class RunawayDetector:
    """Feed it every iteration's metrics record (``pre_return``, ``post_return``) in order."""

    pre: list[float] = field(default_factory=list)
    post: list[float] = field(default_factory=list)
    best_pre: float = float("-inf")
    best_post: float = float("-inf")

    def update(self, record: dict[str, Any]) -> bool:
        """Add an iteration; True if the pre-update return has run away by now."""
        self.pre.append(float(record["pre_return"]))
        self.post.append(float(record["post_return"]))
        if len(self.pre) < RUNAWAY_WINDOW:
            return False
        pre_now = statistics.fmean(self.pre[-RUNAWAY_WINDOW:])
        post_now = statistics.fmean(self.post[-RUNAWAY_WINDOW:])
        self.best_pre, self.best_post = max(self.best_pre, pre_now), max(self.best_post, post_now)
        fell = self.best_pre - pre_now > RUNAWAY_DROP * abs(self.best_pre)
        held = self.best_post - post_now <= POST_HOLD * abs(self.best_post)
        return fell and held
