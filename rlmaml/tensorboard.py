"""Optional TensorBoard logging of the per-iteration metrics (needs the ``tensorboard`` package)."""

from __future__ import annotations

import importlib.util
from typing import Any

from rlmaml.config import ConfigError
from rlmaml.runs import RunDir

INSTALL_HINT = "pip install 'rlmaml[tensorboard]'"


def require_tensorboard() -> None:
    """Raise a one-line :class:`ConfigError` when the tensorboard package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(f"tensorboard=true needs the tensorboard package: {INSTALL_HINT}")


class MetricsBoard:
    """Writes every numeric metric of an iteration as a scalar to ``RUN/tensorboard/``.

    Opened at ``first_iteration``: events a killed run wrote past its last checkpoint are purged,
    so a resumed run's curves have no duplicated or stale points.
    """

    def __init__(self, run: RunDir, first_iteration: int):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run.tensorboard), purge_step=first_iteration)

    def log(self, record: dict[str, Any]) -> None:
        """One metrics.jsonl record; ``record["iteration"]`` is the step."""
        step = record["iteration"]
        for name, value in record.items():
            if name != "iteration" and isinstance(value, (int, float)):
                self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
