"""The MAML-TRPO meta-update.

The surrogate and the KL constraint are measured on the post-adaptation ("valid") trajectories
with the ADAPTED policy; the step direction comes from conjugate gradient with Hessian-vector
products of that KL (exact through the inner adaptation, or on a subsample, or with the
adaptation's Jacobian taken as the identity: ``TRPOConfig``), and the backtracking line search
re-adapts for every candidate, restoring the parameters if no candidate is accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from rlmaml.adaptation import InnerUpdate
from rlmaml.batch import Batch, masked_task_mean
from rlmaml.config import TRPOConfig
from rlmaml.distributed import Ranks
from rlmaml.meta import MetaBatch, MetaLearner, likelihood_ratio, task_kl, task_mean
from rlmaml.optim import conjugate_gradient
from rlmaml.policy import GaussianMLPPolicy, Params


def flat(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate tensors of any layout (gradients may be non-contiguous) into one vector [D]."""
    return torch.cat([t.reshape(-1) for t in tensors])


KL_RESCALE_TARGET = 0.9
"""With ``line_search_kl_rescale``, the fraction of ``max_kl`` a KL-rescaled candidate aims at."""


@dataclass(frozen=True)
class ProposedStep:
    """The full TRPO step before the line search, with what the line search needs to judge it."""

    step: Tensor
    """[D]; subtract it from the flat parameters."""
    loss: float
    """The surrogate loss at the current parameters."""
    old: tuple[Tensor, Tensor]
    """The current adapted distribution: mean [N, M*T, act], log-std [N, 1, act], detached."""
    predicted_improvement: float
    """gradient . step: the surrogate's decrease over the full step by its linear model."""
    old_pre: tuple[Tensor, Tensor] | None = None
    """The current pre-update distribution on the first inner-step batch (mean [N, M*T, act], log-std
    [N, 1, act], detached), to report how far a step moves the policy that samples; ``None`` without
    inner steps, where the policy is its own adapted policy."""


@dataclass(frozen=True)
class Candidate:
    """A point the line search tried: the surrogate loss, the adapted policy's KL and the pre-update
    policy's KL (nan without inner steps) from the current distributions."""

    loss: float
    kl: float
    pre_kl: float


UNTRIED = Candidate(math.nan, math.nan, math.nan)


def _step_statistics(proposal: ProposedStep, full_step: Candidate, accepted: Candidate | None,
                     line_search_steps: int, fraction: float) -> dict[str, float]:
    """Statistics of a meta-step. ``full_step``: the full step's candidate (nan if none was tried);
    ``accepted``: the accepted candidate, ``None`` if the parameters stayed where they were;
    ``fraction``: the accepted candidate's fraction of the full step (0 if none). With inner steps,
    also the pre-update policy's KL (``pre_kl``, ``full_step_pre_kl``)."""
    kept = accepted if accepted is not None else Candidate(proposal.loss, 0.0, 0.0)
    stats = {"loss_before": proposal.loss, "loss_after": kept.loss, "kl": kept.kl,
             "line_search_steps": line_search_steps, "step_accepted": float(accepted is not None),
             "step_fraction": fraction,
             "full_step_kl": full_step.kl, "full_step_improvement": proposal.loss - full_step.loss,
             "predicted_improvement": proposal.predicted_improvement}
    if proposal.old_pre is not None:
        stats.update(pre_kl=kept.pre_kl, full_step_pre_kl=full_step.pre_kl)
    return stats


class MetaTRPO(MetaLearner):
    """Second-order (or first-order) MAML with a TRPO outer step on ``policy``'s parameters."""

    def __init__(self, policy: GaussianMLPPolicy, inner: InnerUpdate, first_order: bool, settings: TRPOConfig,
                 ranks: Ranks = Ranks()):
        super().__init__(policy, inner, first_order, ranks)
        self.settings = settings

    def surrogate_and_kl(self, mean: Tensor, log_std: Tensor, old: tuple[Tensor, Tensor],
                         meta_batch: MetaBatch, valid: Batch | None = None) -> tuple[Tensor, Tensor]:
        """This rank's part (:func:`rlmaml.meta.task_mean`) of the surrogate loss (minus the
        importance-weighted advantage) and of KL(old || new), both averaged over valid steps within a
        task and then over tasks (scalars), on ``valid`` (default ``meta_batch.valid``)."""
        valid = meta_batch.valid if valid is None else valid
        ratio = likelihood_ratio(mean, log_std, old, valid)
        loss = task_mean(-masked_task_mean(ratio * valid.flat("advantages"), valid.flat("mask")), meta_batch)
        return loss, task_mean(task_kl(old, mean, log_std, valid), meta_batch)

    def proposed_step(self, meta_batch: MetaBatch) -> ProposedStep:
        """The full TRPO step before the line search: the conjugate-gradient direction scaled so
        that the quadratic model of the KL equals ``max_kl``."""
        s = self.settings
        params = self.policy.params()
        param_list = list(params.values())
        create_graph = not self.first_order
        adapted = self.adapted(params, meta_batch, create_graph)
        mean, log_std = self.policy.distribution(adapted, meta_batch.valid.flat("observations"))
        old = (mean.detach(), log_std.detach())
        loss, _ = self.surrogate_and_kl(mean, log_std, old, meta_batch)
        grad = self.ranks.sum(flat(torch.autograd.grad(loss, param_list)))
        loss = self.ranks.sum(loss.detach())

        hvp = self._hessian_vector_product(params, meta_batch, create_graph, adapted)
        direction, h_direction = conjugate_gradient(hvp, grad, s.cg_iterations)
        shs = 0.5 * direction @ h_direction
        step = direction * torch.sqrt(s.max_kl / shs.clamp_min(1e-12))
        old_pre = None
        if meta_batch.train:
            with torch.no_grad():
                old_pre = self.policy.distribution(params, meta_batch.train[0].flat("observations"))
        return ProposedStep(step, loss.item(), old, float(grad @ step), old_pre)

    def loss_and_kl_at(self, vector: Tensor, meta_batch: MetaBatch, proposal: ProposedStep) -> Candidate:
        """Set the flat parameters to ``vector`` [D]; the surrogate loss there, and the adapted and
        pre-update policies' KLs from the proposal's current distributions."""
        params = self.policy.params()
        vector_to_parameters(vector, list(params.values()))
        with torch.no_grad():
            mean, log_std = self.distribution(params, meta_batch, create_graph=False)
            loss, kl = self.surrogate_and_kl(mean, log_std, proposal.old, meta_batch)
            pre_kl = torch.full_like(loss, math.nan)
            if proposal.old_pre is not None:
                pre = meta_batch.train[0]
                pre_kl = task_mean(task_kl(proposal.old_pre, *self.policy.distribution(params, pre.flat("observations")),
                                           pre), meta_batch)
            loss, kl, pre_kl = self.ranks.sum(torch.stack([loss, kl, pre_kl])).tolist()
        return Candidate(loss, kl, pre_kl)

    def step(self, meta_batch: MetaBatch) -> dict[str, float]:
        """One TRPO meta-update in place; returns statistics of the step."""
        return self.line_search(meta_batch, self.proposed_step(meta_batch))

    def line_search(self, meta_batch: MetaBatch, proposal: ProposedStep) -> dict[str, float]:
        """Backtrack from the proposed full step to the first candidate that improves the surrogate
        within ``max_kl``; set the parameters there, or restore them if none does. Returns
        statistics of the step: besides the accepted candidate's, the fraction of the full step it
        is, and the full step's KL and surrogate improvement (the quadratic KL model puts that KL at
        ``max_kl``; the linear surrogate model puts the improvement at ``predicted_improvement``)."""
        s = self.settings
        if not (math.isfinite(proposal.loss) and bool(torch.isfinite(proposal.step).all())):
            return _step_statistics(proposal, UNTRIED, None, 0, 0.0)  # no candidate can be judged
        param_list = list(self.policy.params().values())
        old_vector = parameters_to_vector(param_list).detach()
        fraction, full_step = 1.0, UNTRIED
        for steps in range(1, s.line_search_steps + 1):
            candidate = self.loss_and_kl_at(old_vector - fraction * proposal.step, meta_batch, proposal)
            if steps == 1:
                full_step = candidate
            improved = candidate.loss < proposal.loss
            if improved and candidate.kl <= s.max_kl:
                return _step_statistics(proposal, full_step, candidate, steps, fraction)
            fraction *= self._backtrack_factor(improved, candidate.kl)
        vector_to_parameters(old_vector, param_list)
        return _step_statistics(proposal, full_step, None, s.line_search_steps, 0.0)

    def _backtrack_factor(self, improved: bool, kl: float) -> float:
        """How much to shrink a rejected candidate's step: to the KL bound's scale when the candidate
        improved the surrogate and only the KL was too large (``line_search_kl_rescale``), else
        ``line_search_ratio``."""
        s = self.settings
        if s.line_search_kl_rescale and improved and s.max_kl < kl < math.inf:
            return math.sqrt(KL_RESCALE_TARGET * s.max_kl / kl)
        return s.line_search_ratio

    def _hessian_vector_product(self, params: Params, meta_batch: MetaBatch, create_graph: bool, adapted: Params):
        """v -> (H + damping I) v, H the Hessian of the mean KL w.r.t. the meta-parameters at the
        current parameters (through the inner adaptation unless ``hvp_adaptation`` is ``first-order``).
        ``adapted``: the adapted parameters [N, ...] at the current parameters, as ``proposed_step``
        has them (only their values are used, and only by ``first-order``, which need not adapt again).

        With ``hvp_task_fraction`` < 1 the KL is averaged over the first tasks only, and with
        ``hvp_traj_fraction`` < 1 it uses only the first trajectories of every task (tasks and
        trajectories are i.i.d., so those are random subsamples). ``hvp_adaptation`` says what the
        adaptation inside the KL sees: ``subsample`` the same fraction of the inner-step
        trajectories (cheap, but the adapted policy and its Jacobian then come from a few
        trajectories, which inflates the curvature), ``full`` all of them (the exact Hessian of the
        KL on the subsampled states), ``first-order`` all of them with the adaptation's Jacobian
        taken as the identity (the Fisher matrix of the adapted policy; no second derivatives).
        """
        s = self.settings
        num_tasks = max(1, round(s.hvp_task_fraction * meta_batch.num_tasks))
        if num_tasks < meta_batch.num_tasks:
            meta_batch = meta_batch.leading(num_tasks)
            if self.inner.lrs:  # without inner steps the "adapted" parameters have no task axis
                adapted = {name: value[:meta_batch.valid.num_tasks] for name, value in adapted.items()}
        if meta_batch.valid.num_tasks == 0:  # this rank holds none of the tasks the curvature is measured on
            return lambda vector: self.ranks.sum(torch.zeros_like(vector)) + s.cg_damping * vector
        used = max(1, round(s.hvp_traj_fraction * meta_batch.valid.num_traj))
        subsampled = used < meta_batch.valid.num_traj
        valid = meta_batch.valid.trajectories(slice(0, used)) if subsampled else meta_batch.valid
        param_list = list(params.values())
        if s.hvp_adaptation == "first-order":
            curvature_params = {name: p + (adapted[name] - p).detach() for name, p in params.items()}
        else:
            train = meta_batch.train
            if subsampled and s.hvp_adaptation == "subsample":
                train = [b.trajectories(slice(0, used)) for b in train]
            curvature_params = self.adapt(params, train, create_graph)
        mean, log_std = self.policy.distribution(curvature_params, valid.flat("observations"))
        # KL to the current (detached) distribution: value and gradient are 0 here, Hessian is not
        _, kl = self.surrogate_and_kl(mean, log_std, (mean.detach(), log_std.detach()), meta_batch, valid)
        kl_grad = flat(torch.autograd.grad(kl, param_list, create_graph=True))

        def product(vector: Tensor) -> Tensor:
            hv = torch.autograd.grad(kl_grad @ vector, param_list, retain_graph=True)
            return self.ranks.sum(flat(hv)) + s.cg_damping * vector

        return product
