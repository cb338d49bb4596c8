"""Inner step rules: how a step size and a task's gradient make that task's inner step.

``fixed`` is the paper's (the step size times the gradient). ``return-scaled`` is experimental: a
step of length step size x (a target return - the task's mean return in the step's trajectories)
along the gradient, so that tasks far from the target take long steps and tasks near it short ones.
A new rule is one class here plus one choice in ``InnerConfig.step_rule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Sequence

import torch
from torch import Tensor

from rlmaml.batch import Batch
from rlmaml.config import ConfigError, InnerConfig


class StepRule(Protocol):
    """Per-task step sizes for one inner step."""

    name: ClassVar[str]

    def sizes(self, lr: float, grads: Sequence[Tensor], batch: Batch) -> float | Tensor:
        """The step size of each task: one float for all, or [N].

        Args:
            grads: the inner loss's gradient per parameter, each with leading task axis [N, ...].
        """
        ...

    def record(self) -> dict[str, Any]:
        """What an evaluation records of the rule (nothing for the paper's)."""
        ...

    def check_can_move(self, first_returns: Tensor) -> None:
        """Raise ``ConfigError`` if, given each task's return before adaptation [N], no task would move."""
        ...


@dataclass(frozen=True)
class FixedStep:
    """The paper's rule: every task steps ``lr`` times its gradient."""

    name: ClassVar[str] = "fixed"

    def sizes(self, lr: float, grads: Sequence[Tensor], batch: Batch) -> float | Tensor:
        return lr

    def record(self) -> dict[str, Any]:
        return {}

    def check_can_move(self, first_returns: Tensor) -> None:
        return None


def per_task_squared_norm(tensors: Sequence[Tensor]) -> Tensor:
    """Squared Euclidean norm per task over all of ``tensors`` together, each [N, ...] -> [N]."""
    return sum((t.pow(2).flatten(1).sum(1) for t in tensors), torch.zeros(()))


@dataclass(frozen=True)
class ReturnScaledStep:
    """A step of length ``lr`` x (``target_return`` - the task's mean return in the batch) along the
    gradient (0 once the batch reaches the target). Like Polyak's step size it scales the step by the
    gap to a known optimum, without his 1/|grad|."""

    target_return: float
    name: ClassVar[str] = "return-scaled"

    def sizes(self, lr: float, grads: Sequence[Tensor], batch: Batch) -> float | Tensor:
        squared_norm = per_task_squared_norm(grads)
        shortfall = (self.target_return - batch.episode_returns().mean(1)).clamp_min(0.0).to(squared_norm.dtype)
        # a zero gradient has no direction to step along: size 0 (the floor keeps sqrt's derivative finite)
        scale = torch.where(squared_norm > 0, shortfall / squared_norm.clamp_min(1e-30).sqrt(),
                            torch.zeros_like(shortfall))
        return lr * scale

    def record(self) -> dict[str, Any]:
        return {"step_rule": self.name, "target_return": self.target_return}

    def check_can_move(self, first_returns: Tensor) -> None:
        if bool((first_returns >= self.target_return).all()):
            raise ConfigError(f"every task's return before adaptation is at or above the target return "
                              f"{self.target_return:g} (lowest {float(first_returns.min()):.4g}), so {self.name} "
                              "steps would not move the policy; give a --target-return above the returns this "
                              "family can reach")


def step_rule_from(inner: InnerConfig) -> StepRule:
    """The rule ``inner.step_rule`` names, with its settings."""
    if inner.step_rule == "return-scaled":
        return ReturnScaledStep(inner.target_return)
    return FixedStep()
