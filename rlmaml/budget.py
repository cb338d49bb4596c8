"""The memory a run's batches need, checked against the machine's before anything is sampled, so that
a mistyped size (``--num-tasks 1000000000``) is one line instead of an allocation of tens of GB."""

from __future__ import annotations

import os

from rlmaml.config import ConfigError

BYTES_PER_VALUE = 4  # float32


def physical_memory_bytes() -> int | None:
    """The machine's memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def batch_bytes(num_tasks: int, num_traj: int, horizon: int, num_batches: int, obs_dim: int, act_dim: int,
                hidden_sizes: tuple[int, ...]) -> int:
    """A lower bound of the memory ``num_batches`` batches of ``num_tasks x num_traj x horizon`` steps take:
    per step the observation, action, rewards, mask, log-probability and advantage, and one forward
    pass's activations (the meta-update keeps several more)."""
    per_step = obs_dim + act_dim + 4 + sum(hidden_sizes)
    return num_tasks * num_traj * horizon * num_batches * per_step * BYTES_PER_VALUE


def require_memory(needed: int, what: str) -> None:
    """``ConfigError`` with the estimate if ``needed`` bytes exceed the machine's memory."""
    available = physical_memory_bytes()
    if available is not None and needed > available:
        raise ConfigError(f"{what} would need at least {needed / 2**30:,.1f} GiB of memory for its batches, and "
                          f"this machine has {available / 2**30:,.1f} GiB; use fewer tasks, trajectories or steps")
