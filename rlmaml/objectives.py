"""Inner-step objectives: the surrogate whose gradient makes an inner step.

Each objective has the same gradient at the current parameters, so the inner step is the same; they
differ in the second derivative, which the meta-gradient and the TRPO curvature take through the
step. A new objective is one class here plus one choice in ``InnerConfig.objective``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch
from torch import Tensor

from rlmaml.batch import Batch, masked_task_mean
from rlmaml.config import InnerConfig


class InnerObjective(Protocol):
    """The inner-step loss per task given the log-probabilities of a batch's actions."""

    name: ClassVar[str]

    def loss(self, log_probs: Tensor, batch: Batch) -> Tensor:
        """Loss per task [N] from log pi(a|s) [N, M*T] of ``batch``'s actions (with the graph)."""
        ...


@dataclass(frozen=True)
class Reinforce:
    """The paper's: minus the masked mean of log pi(a|s) * advantage. Its second derivative drops the
    term that credits the pre-update policy for the data it samples (a biased meta-gradient)."""

    name: ClassVar[str] = "reinforce"

    def loss(self, log_probs: Tensor, batch: Batch) -> Tensor:
        return -masked_task_mean(log_probs * batch.flat("advantages"), batch.flat("mask"))


@dataclass(frozen=True)
class LVC:
    """ProMP's low-variance curvature (Rothfuss et al. 2019, section 5): minus the masked mean of
    pi(a|s) / stop_grad(pi(a|s)) * advantage. Its second derivative adds, per time step,
    grad log pi grad log pi^T * advantage: the pre-update policy is credited for its samples."""

    name: ClassVar[str] = "lvc"

    def loss(self, log_probs: Tensor, batch: Batch) -> Tensor:
        return -masked_task_mean(magic_box(log_probs) * batch.flat("advantages"), batch.flat("mask"))


def magic_box(log_probs: Tensor) -> Tensor:
    """DiCE's magic box: exp(x - stop_grad(x)), 1 in value, whose derivatives are x's score-function
    terms at every order (Foerster et al. 2018)."""
    return torch.exp(log_probs - log_probs.detach())


@dataclass(frozen=True)
class DiCE:
    """DiCE with a baseline (Foerster et al. 2018; Mao et al. 2019; the form of Farquhar et al. 2019,
    "Loaded DiCE"): minus the masked mean of [box(log pi(a_<=t)) - box(log pi(a_<t))] * advantage_t,
    the log-probabilities summed along each trajectory up to step t. Its second derivative adds
    S_<=t S_<=t^T - S_<t S_<t^T per step (S: the summed scores): every earlier action is credited for
    the later rewards it led to, which LVC's per-step term leaves out."""

    name: ClassVar[str] = "dice"

    def loss(self, log_probs: Tensor, batch: Batch) -> Tensor:
        per_step = log_probs.view_as(batch.mask)  # [N, M, T]; a mask is 1 up to a step, 0 after it
        up_to = torch.cumsum(per_step, dim=-1)  # log pi(a_<=t)
        weights = magic_box(up_to) - magic_box(up_to - per_step)  # box(log pi(a_<=t)) - box(log pi(a_<t))
        return -masked_task_mean(weights * batch.advantages, batch.mask)


OBJECTIVES: dict[str, type[InnerObjective]] = {"reinforce": Reinforce, "lvc": LVC, "dice": DiCE}


def objective_from(inner: InnerConfig) -> InnerObjective:
    """The objective ``inner.objective`` names."""
    return OBJECTIVES[inner.objective]()
