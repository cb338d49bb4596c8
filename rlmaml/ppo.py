"""The ProMP meta-update (Rothfuss et al. 2019, section 6): several Adam steps on one meta-batch,
each re-adapting from the current parameters, minimising

    clipped surrogate of the adapted policy + inner_kl_penalty * KL(old || new) of the pre-update policy.

The surrogate is PPO's: per valid step min(r A, clip(r, 1 - eps, 1 + eps) A), r the adapted policy's
likelihood ratio to the adapted policy the post-adaptation data were sampled with. Both terms are
averaged over valid steps within a task and then over tasks, as in the TRPO update. Adam's moments
and the penalty's weight (which ProMP's adaptive option halves or doubles after every meta-iteration)
persist across meta-iterations (and in checkpoints, through :meth:`MetaPPO.state_dict`).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from rlmaml.adaptation import InnerUpdate
from rlmaml.batch import Batch, masked_task_mean
from rlmaml.config import PPOConfig
from rlmaml.distributed import Ranks
from rlmaml.meta import MetaBatch, MetaLearner, likelihood_ratio, task_kl, task_mean
from rlmaml.policy import GaussianMLPPolicy


def clipped_surrogate_loss(mean: Tensor, log_std: Tensor, old: tuple[Tensor, Tensor], valid: Batch,
                           clip: float) -> tuple[Tensor, Tensor]:
    """Minus PPO's clipped surrogate and the fraction of valid steps whose ratio lies outside
    [1 - clip, 1 + clip] (no gradient), per task [N]. ``mean`` [N, M*T, act] and ``log_std``
    [N, 1, act] are the new distribution on ``valid``'s steps, ``old`` the one they were sampled with."""
    mask, advantages = valid.flat("mask"), valid.flat("advantages")
    ratio = likelihood_ratio(mean, log_std, old, valid)
    objective = torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages)
    clipped = ((ratio - 1.0).abs() > clip).to(ratio.dtype).detach()
    return -masked_task_mean(objective, mask), masked_task_mean(clipped, mask)


def _copied(distribution: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    return distribution[0].clone(), distribution[1].clone()


class MetaPPO(MetaLearner):
    """MAML with ProMP's outer update (see the module docstring) on ``policy``'s parameters."""

    def __init__(self, policy: GaussianMLPPolicy, inner: InnerUpdate, first_order: bool, settings: PPOConfig,
                 ranks: Ranks = Ranks()):
        super().__init__(policy, inner, first_order, ranks)
        self.settings = settings
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=settings.lr)
        self.inner_kl_weight = settings.inner_kl_penalty

    def objective(self, meta_batch: MetaBatch, old: tuple[Tensor, Tensor], old_pre: tuple[Tensor, Tensor] | None,
                  create_graph: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
        """This rank's part (:func:`rlmaml.meta.task_mean`) of the loss to minimise at the current
        parameters (a scalar; with ``create_graph`` and second-order MAML its graph runs through the
        inner steps' gradients) and of its parts (scalars): ``surrogate`` (minus the clipped
        surrogate), ``clip_fraction``, ``inner_kl`` (the pre-update policy's KL from ``old_pre`` on the
        first inner-step batch; ``old_pre`` is ``None`` without inner steps, and the term is then 0) and
        ``kl`` (the adapted policy's KL from ``old`` on the valid batch)."""
        params = self.policy.params()
        mean, log_std = self.distribution(params, meta_batch, create_graph and not self.first_order)
        surrogate, clip_fraction = clipped_surrogate_loss(mean, log_std, old, meta_batch.valid, self.settings.clip)
        surrogate, clip_fraction = task_mean(surrogate, meta_batch), task_mean(clip_fraction, meta_batch)
        inner_kl = torch.zeros((), dtype=surrogate.dtype)
        if old_pre is not None:
            pre = meta_batch.train[0]
            inner_kl = task_mean(task_kl(old_pre, *self.policy.distribution(params, pre.flat("observations")), pre),
                                 meta_batch)
        parts = {"surrogate": surrogate, "clip_fraction": clip_fraction, "inner_kl": inner_kl,
                 "kl": task_mean(task_kl(old, mean, log_std, meta_batch.valid), meta_batch)}
        return surrogate + self.inner_kl_weight * inner_kl, parts

    def summed(self, parts: dict[str, Tensor]) -> dict[str, float]:
        """The parts of :meth:`objective` summed over ranks: the means over all tasks."""
        total = self.ranks.sum(torch.stack([value.detach() for value in parts.values()]))
        return dict(zip(parts, total.tolist()))

    def old_distributions(self, meta_batch: MetaBatch) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
        """The adapted distribution on the valid batch and (with inner steps) the pre-update one on
        the first inner-step batch, at the current parameters, copied (the log-std can be a view of the
        parameter, which the Adam steps change in place)."""
        with torch.no_grad():
            params = self.policy.params()
            old = self.distribution(params, meta_batch, create_graph=False)
            old_pre = (self.policy.distribution(params, meta_batch.train[0].flat("observations"))
                       if meta_batch.train else None)
        return _copied(old), None if old_pre is None else _copied(old_pre)

    def step(self, meta_batch: MetaBatch) -> dict[str, float]:
        """``ppo_epochs`` Adam steps in place. A non-finite loss stops the steps and restores the
        parameters of the start of the meta-iteration. Returns ``loss_before`` / ``loss_after`` (minus
        the clipped surrogate before the first and after the last step), ``kl`` (the adapted
        policy's KL from its start), ``inner_kl``, ``clip_fraction`` (after the last step),
        ``step_accepted`` (0 if the parameters were restored) and ``inner_kl_penalty`` (the weight these
        steps used; with the adaptive option, :meth:`adapt_inner_kl_weight` then moves it)."""
        old, old_pre = self.old_distributions(meta_batch)
        param_list = list(self.policy.parameters())
        start = parameters_to_vector(param_list).detach().clone()
        loss_before, weight = math.nan, self.inner_kl_weight
        for epoch in range(self.settings.epochs):
            loss, parts = self.objective(meta_batch, old, old_pre)
            summed = self.summed({"loss": loss, **parts})
            if epoch == 0:
                loss_before = summed["surrogate"]
            if not math.isfinite(summed["loss"]):
                vector_to_parameters(start, param_list)
                return {"loss_before": loss_before, "loss_after": loss_before, "kl": 0.0, "inner_kl": 0.0,
                        "clip_fraction": 0.0, "step_accepted": 0.0, "inner_kl_penalty": weight}
            self.optimizer.zero_grad()
            loss.backward()
            if self.ranks.size > 1:  # every rank steps with the gradient of the mean over all tasks
                grads = {param: grad for param in param_list if (grad := param.grad) is not None}
                summed_grad = self.ranks.sum(parameters_to_vector(grads.values()))  # one all-reduce for all
                for param, grad in zip(grads, summed_grad.split([grad.numel() for grad in grads.values()])):
                    param.grad = grad.view_as(param)
            self.optimizer.step()
        with torch.no_grad():
            _, parts = self.objective(meta_batch, old, old_pre, create_graph=False)
        final = self.summed(parts)
        if self.settings.adaptive_inner_kl_penalty:
            self.adapt_inner_kl_weight(final["inner_kl"])
        return {"loss_before": loss_before, "loss_after": final["surrogate"], "kl": final["kl"],
                "inner_kl": final["inner_kl"], "clip_fraction": final["clip_fraction"],
                "step_accepted": 1.0, "inner_kl_penalty": weight}

    def adapt_inner_kl_weight(self, inner_kl: float) -> None:
        """ProMP's adaptive rule: halve the weight if the pre-update KL of a meta-iteration was below
        ``inner_kl_target`` / 1.5, double it if above 1.5 x ``inner_kl_target``."""
        target = self.settings.inner_kl_target
        if inner_kl < target / 1.5:
            self.inner_kl_weight /= 2.0
        elif inner_kl > 1.5 * target:
            self.inner_kl_weight *= 2.0

    def state_dict(self) -> dict[str, Any]:
        """Adam's state and the penalty's weight, copied (later steps do not change them)."""
        return {"adam": copy.deepcopy(self.optimizer.state_dict()), "inner_kl_penalty": self.inner_kl_weight}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The state from :meth:`state_dict` (or Adam's state alone, as checkpoints written before the
        adaptive penalty hold it); an empty one (a TRPO run's) leaves Adam fresh. The step size stays
        this run's ``meta_lr`` and, without the adaptive option, the weight its ``inner_kl_penalty``
        (a branch may change either)."""
        adam = state.get("adam", state if "param_groups" in state else None)
        if adam:
            self.optimizer.load_state_dict(adam)
            for group in self.optimizer.param_groups:
                group["lr"] = self.settings.lr
        if self.settings.adaptive_inner_kl_penalty and "inner_kl_penalty" in state:
            self.inner_kl_weight = float(state["inner_kl_penalty"])
