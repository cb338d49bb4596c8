"""Checkpoints of a run (iteration, policy parameters, random streams), saved atomically and loaded safely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlmaml.runs import RunError, atomic_write

RUN_STATE_KEYS = ("iteration", "policy", "rng", "best_return")
"""What a run's ``checkpoint.pt`` holds, all of which resuming (or branching) it needs."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Atomically save a checkpoint of tensors and plain containers."""
    atomic_write(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path, keys: tuple[str, ...] = ("iteration", "policy")) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``) that holds ``keys``."""
    try:
        state = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise RunError(f"cannot read checkpoint {path}: {error}") from None
    if not isinstance(state, dict) or not set(keys) <= set(state):
        raise RunError(f"{path} is not a checkpoint with {', '.join(keys)}; the file was changed or damaged")
    return state


def restore_policy(policy: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """Put the parameters of checkpoint ``state`` (read from ``path``) into ``policy``; ``RunError``
    if they do not fit the policy the run's config.json describes."""
    try:
        policy.load_state_dict(state["policy"])
    except (RuntimeError, TypeError) as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise RunError(f"{path} does not fit the policy of the run's config.json ({first}); "
                       "the file was changed or damaged") from None
