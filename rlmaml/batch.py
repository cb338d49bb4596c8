"""The trajectory batch shared by sampling, advantage estimation and adaptation."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """Trajectories of N tasks x M trajectories x T steps.

    ``mask`` is 1 for every step up to and including the first terminated/truncated one, 0 after.
    ``advantages`` is zeros until :func:`rlmaml.advantages.with_advantages` fills it in.
    ``success`` is 1.0 for trajectories where the env reported ``info["success"]`` at some step
    (Meta-World), ``None`` when the env never reports success.
    """

    observations: Tensor  # [N, M, T, obs_dim]
    actions: Tensor  # [N, M, T, act_dim]
    rewards: Tensor  # [N, M, T]
    mask: Tensor  # [N, M, T]
    log_probs: Tensor  # [N, M, T], under the policy that sampled
    advantages: Tensor  # [N, M, T]
    success: Tensor | None = None  # [N, M]

    def __post_init__(self) -> None:
        n, m, t = self.rewards.shape
        for name in ("mask", "log_probs", "advantages"):
            if getattr(self, name).shape != (n, m, t):
                raise ValueError(f"{name} must have shape {[n, m, t]}, got {list(getattr(self, name).shape)}")
        for name in ("observations", "actions"):
            if getattr(self, name).shape[:3] != (n, m, t):
                raise ValueError(f"{name} must start with {[n, m, t]}, got {list(getattr(self, name).shape)}")
        if self.success is not None and self.success.shape != (n, m):
            raise ValueError(f"success must have shape {[n, m]}, got {list(self.success.shape)}")

    @property
    def num_tasks(self) -> int:
        return self.rewards.shape[0]

    @property
    def num_traj(self) -> int:
        return self.rewards.shape[1]

    @property
    def horizon(self) -> int:
        return self.rewards.shape[2]

    def episode_returns(self) -> Tensor:
        """Undiscounted return of each trajectory [N, M]."""
        return (self.rewards * self.mask).sum(-1)

    def episode_lengths(self) -> Tensor:
        """Steps of each trajectory up to and including termination (the horizon if none) [N, M]."""
        return self.mask.sum(-1)

    def finite_tasks(self) -> Tensor:
        """Which tasks [N] (bool) have finite rewards and observations on every valid step."""
        valid = self.mask > 0
        rewards = torch.where(valid, self.rewards, torch.zeros_like(self.rewards)).isfinite().flatten(1).all(1)
        observations = torch.where(valid.unsqueeze(-1), self.observations, torch.zeros_like(self.observations))
        return rewards & observations.isfinite().flatten(1).all(1)

    def flat(self, name: str) -> Tensor:
        """A per-step field with trajectories and time merged: [N, M*T, ...]."""
        value = getattr(self, name)
        return value.reshape(self.num_tasks, self.num_traj * self.horizon, *value.shape[3:])

    def replace(self, **changes: Tensor) -> "Batch":
        return replace(self, **changes)

    def to(self, device: torch.device) -> "Batch":
        """The batch with every tensor on ``device`` (itself if they are there already)."""
        if self.rewards.device == torch.device(device):
            return self
        return self._select(lambda value: value.to(device))

    def tasks(self, index: Tensor | slice) -> "Batch":
        """The sub-batch of the selected tasks."""
        return self._select(lambda value: value[index])

    def trajectories(self, index: Tensor | slice) -> "Batch":
        """The sub-batch of the selected trajectories of every task."""
        return self._select(lambda value: value[:, index])

    def _select(self, pick) -> "Batch":
        return Batch(**{name: getattr(self, name) if getattr(self, name) is None else pick(getattr(self, name))
                        for name in FIELDS})


FIELDS = ("observations", "actions", "rewards", "mask", "log_probs", "advantages", "success")


def masked_task_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over each task's valid entries: values and mask [N, ...] -> [N]."""
    dims = tuple(range(1, values.dim()))
    return (values * mask).sum(dims) / mask.sum(dims).clamp_min(1.0)
