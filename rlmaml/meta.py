"""What every meta-update (TRPO, PPO) shares: the meta-batch, the adapted policy's distribution,
the likelihood ratio and the KL between two distributions on a batch, and means over the tasks of
all ranks (:mod:`rlmaml.distributed`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from rlmaml.adaptation import InnerUpdate, adapt
from rlmaml.batch import Batch, masked_task_mean
from rlmaml.distributed import Ranks
from rlmaml.policy import GaussianMLPPolicy, Params, gaussian_kl, gaussian_log_prob


@dataclass(frozen=True)
class MetaBatch:
    """Inner-step batches (``train[k]`` sampled after k inner steps) and the post-adaptation batch.

    With several ranks, this rank's share of the meta-batch: its tasks are numbers ``first`` to
    ``first + n - 1`` of ``total`` (``None``: this batch holds them all)."""

    train: list[Batch]
    valid: Batch
    first: int = 0
    total: int | None = None

    @property
    def num_tasks(self) -> int:
        """The tasks of the whole meta-batch, on all ranks."""
        return self.valid.num_tasks if self.total is None else self.total

    def tasks(self, index: slice | Tensor) -> "MetaBatch":
        """The meta-batch of the selected tasks (of this rank's; the total is then this rank's count)."""
        return MetaBatch([batch.tasks(index) for batch in self.train], self.valid.tasks(index))

    def to(self, device: torch.device) -> "MetaBatch":
        """The meta-batch with every batch on ``device``."""
        return replace(self, train=[batch.to(device) for batch in self.train], valid=self.valid.to(device))

    def leading(self, count: int) -> "MetaBatch":
        """The meta-batch of the whole meta-batch's first ``count`` tasks: this rank's of them, which may be none."""
        if self.total is None:
            return self.tasks(slice(0, count))
        local = min(max(count - self.first, 0), self.valid.num_tasks)
        return replace(self.tasks(slice(0, local)), first=self.first, total=count)

    def finite_tasks(self) -> Tensor:
        """Which tasks [N] (bool) have finite rewards and observations in every batch."""
        finite = self.valid.finite_tasks()
        for batch in self.train:
            finite = finite & batch.finite_tasks()
        return finite


def likelihood_ratio(mean: Tensor, log_std: Tensor, old: tuple[Tensor, Tensor], batch: Batch) -> Tensor:
    """pi_new(a|s) / pi_old(a|s) [N, M*T] for ``batch``'s actions, the new distribution given as
    mean [N, M*T, act] and log-std [N, 1, act], ``old`` the one the actions were sampled with."""
    actions = batch.flat("actions")
    return torch.exp(gaussian_log_prob(mean, log_std, actions) - gaussian_log_prob(*old, actions))


def task_kl(old: tuple[Tensor, Tensor], mean: Tensor, log_std: Tensor, batch: Batch) -> Tensor:
    """KL(old || new) of the distributions on ``batch``'s steps (mean [N, M*T, act], log-std
    [N, 1, act] each), averaged over each task's valid steps: [N]."""
    return masked_task_mean(gaussian_kl(*old, mean, log_std), batch.flat("mask"))


def task_mean(per_task: Tensor, meta_batch: MetaBatch) -> Tensor:
    """This rank's part of the mean over all ranks' tasks of ``per_task`` [n] (this rank's tasks): the
    mean itself with one rank; summed over ranks (:meth:`Ranks.sum`), the mean."""
    if meta_batch.total is None:
        return per_task.mean()
    return per_task.sum() / meta_batch.total


class MetaLearner:
    """A policy with its inner steps; subclasses add the outer update (``step``)."""

    def __init__(self, policy: GaussianMLPPolicy, inner: InnerUpdate, first_order: bool, ranks: Ranks = Ranks()):
        self.policy = policy
        self.inner = inner
        self.first_order = first_order
        self.ranks = ranks

    def adapt(self, params: Params, batches: list[Batch], create_graph: bool) -> Params:
        """``params`` after this learner's inner steps on ``batches`` (:func:`rlmaml.adaptation.adapt`)."""
        return adapt(self.policy, params, batches, self.inner, create_graph)

    def adapted(self, params: Params, meta_batch: MetaBatch, create_graph: bool) -> Params:
        """Per-task adapted parameters [N, ...] after the inner steps on ``meta_batch.train``."""
        return self.adapt(params, meta_batch.train, create_graph)

    def distribution(self, params: Params, meta_batch: MetaBatch, create_graph: bool) -> tuple[Tensor, Tensor]:
        """Adapted policy's mean [N, M*T, act] and log-std [N, 1, act] on the valid observations."""
        adapted = self.adapted(params, meta_batch, create_graph)
        return self.policy.distribution(adapted, meta_batch.valid.flat("observations"))

    def step(self, meta_batch: MetaBatch) -> dict[str, float]:
        """One meta-update of the policy in place; returns statistics of the step."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The outer optimiser's state that a checkpoint must keep for an exact resume (none here)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
