"""The MAML paper's published adaptation curves, to draw and print next to an evaluation.

Mean return over 40 test tasks after 0, 1, 2, 3 policy-gradient steps, read from the result files
behind Figures 4 and 5 of Finn, Abbeel and Levine (ICML 2017). They ran on rllab's dynamics, so
the MuJoCo families are comparable in shape, not to the digit; Navigation2D is the same task.
Free of torch, like the rest of what the command line reads before evaluating.
"""

from __future__ import annotations

from typing import Any

from rlmaml.config import METHOD_LABELS, ConfigError

PAPER_SOURCE = "Finn, Abbeel, Levine (ICML 2017), Figs. 4-5; rllab dynamics"

PAPER_CURVES: dict[str, dict[str, tuple[float, ...]]] = {
    "rlmaml/Navigation2D-v0": {"maml": (-40.4, -11.7, -3.3, -3.2), "pretrained": (-40.8, -19.7, -11.7, -8.5),
                               "random": (-82.7, -58.0, -53.8, -46.8), "oracle": (-2.3,)},
    "rlmaml/HalfCheetahVel-v0": {"maml": (-129.5, -78.6, -66.6, -60.8), "pretrained": (-158.0, -135.4, -128.5, -133.6),
                                 "oracle": (-54.5,)},
    "rlmaml/HalfCheetahDir-v0": {"maml": (-50.7, 293.2, 313.5, 315.7), "pretrained": (-43.0, -24.7, -12.8, 19.6),
                                 "oracle": (442.7,)},
    "rlmaml/AntVel-v0": {"maml": (30.6, 96.7, 100.1, 101.4), "oracle": (107.9,)},
    "rlmaml/AntDir-v0": {"maml": (8.7, 499.1, 500.7, 499.1), "oracle": (524.8,)},
}
"""Per family, per method: the return after 0..3 steps (the oracle: one value, without adaptation)."""

PAPER_HORIZON = {"rlmaml/Navigation2D-v0": 100}
"""Steps per trajectory behind the paper's returns (200 unless listed); each family's registered horizon."""


def paper_curves(env_id: str, horizon: int | None, num_steps: int) -> dict[str, Any]:
    """The paper's curves for ``env_id`` cut to steps 0..``num_steps``, as recorded in evaluation.json:
    ``{"source": ..., "curves": {method: [returns]}}``.

    ``horizon`` is the runs' (None: the family's registered one). ``ConfigError`` for a family the
    paper did not run, or another horizon (returns are sums over it, so they would not compare)."""
    if env_id not in PAPER_CURVES:
        raise ConfigError(f"the MAML paper published no results for {env_id}; --paper works for "
                          f"{', '.join(PAPER_CURVES)}")
    paper_horizon = PAPER_HORIZON.get(env_id, 200)
    if horizon not in (None, paper_horizon):
        raise ConfigError(f"the MAML paper's {env_id} returns are over {paper_horizon} steps, but the runs have "
                          f"horizon {horizon}: they would not compare; leave out --paper")
    curves = {method: list(values[: num_steps + 1]) for method, values in PAPER_CURVES[env_id].items()}
    return {"source": PAPER_SOURCE, "curves": curves}


def paper_label(method: str) -> str:
    """Legend and table label of a published curve, e.g. ``paper: MAML``."""
    return f"paper: {METHOD_LABELS[method]}"
