"""The run-away detector and the action-bound share, against hand-made histories and a slow loop."""

import numpy as np
import torch

from rlmaml.monitor import RUNAWAY_WINDOW, RunawayDetector, action_bound_share

from conftest import make_batch


def test_action_bound_share_counts_valid_components_at_or_past_the_bounds():
    _, batch = make_batch(num_tasks=2, num_traj=3, horizon=8)
    low, high = np.array([-0.5, -1.0]), np.array([0.5, 1.0])
    batch.mask[0, 0, 5:] = 0.0  # an episode that ended early: its later steps do not count
    outside = total = 0
    for n in range(2):
        for m in range(3):
            for t in range(8):
                if batch.mask[n, m, t]:
                    for k, value in enumerate(batch.actions[n, m, t].tolist()):
                        total += 1
                        outside += value <= low[k] or value >= high[k]
    assert 0 < outside < total
    assert abs(action_bound_share(batch, low, high) - outside / total) < 1e-12
    assert action_bound_share(batch, np.full(2, -np.inf), np.full(2, np.inf)) == 0.0


def _flags(pre, post):
    detector = RunawayDetector()
    return [detector.update({"pre_return": a, "post_return": b}) for a, b in zip(pre, post)]


def test_a_pre_update_return_falling_while_the_adapted_one_holds_is_a_run_away():
    iterations = np.arange(60)
    post = -40.0 + 0.1 * np.sin(iterations)
    runaway = _flags(-100.0 - 5.0 * iterations, post)
    first = runaway.index(True)
    assert RUNAWAY_WINDOW <= first < 40 and all(runaway[first:])
    assert not any(_flags(-100.0 + 1.0 * iterations, post))  # the pre-update return improves: healthy
    assert not any(_flags(-100.0 - 5.0 * iterations, -40.0 - 5.0 * iterations))  # both fall: not this failure
    noisy = -40.0 + torch.randn(60, generator=torch.Generator().manual_seed(0)).numpy() * 5.0
    assert not any(_flags(noisy, post))  # noise around a level is not a drift
