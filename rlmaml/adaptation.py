"""Inner-loop adaptation as a pure function of (meta-)parameters, trajectory batches and one
:class:`InnerUpdate` value (step sizes, objective, step rule)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from rlmaml.advantages import with_advantages
from rlmaml.batch import Batch
from rlmaml.config import AdvantageConfig, InnerConfig, TrainConfig
from rlmaml.objectives import InnerObjective, Reinforce, objective_from
from rlmaml.policy import GaussianMLPPolicy, Params, per_task_params
from rlmaml.sampling import TaskSampler
from rlmaml.step_rules import FixedStep, StepRule, step_rule_from
from rlmaml.tasks import Task


@dataclass(frozen=True)
class InnerUpdate:
    """Everything an inner update needs besides the data: step k uses ``lrs[k]``, the gradient of
    ``objective`` and ``step_rule``. No inner steps (``lrs`` empty) for the baselines."""

    lrs: tuple[float, ...]
    objective: InnerObjective = Reinforce()
    step_rule: StepRule = FixedStep()

    @classmethod
    def from_config(cls, inner: InnerConfig, lrs: Sequence[float]) -> "InnerUpdate":
        """The update ``inner`` describes, with step sizes ``lrs`` (training's or an evaluation's schedule)."""
        return cls(tuple(lrs), objective_from(inner), step_rule_from(inner))

    @classmethod
    def for_training(cls, config: TrainConfig) -> "InnerUpdate":
        """The inner update a run trains with (``config.inner_lrs``: none for the baselines)."""
        return cls.from_config(config.inner, config.inner_lrs)


def inner_loss(policy: GaussianMLPPolicy, params: Params, batch: Batch, inner: InnerUpdate) -> Tensor:
    """Inner-step loss per task [N] under ``inner.objective`` (see :mod:`rlmaml.objectives`)."""
    log_probs = policy.log_prob(params, batch.flat("observations"), batch.flat("actions"))
    return inner.objective.loss(log_probs, batch)


def task_gradients(params: Params, num_tasks: int, loss_per_task: Callable[[Params], Tensor],
                   create_graph: bool) -> tuple[Params, tuple[Tensor, ...]]:
    """Per-task parameters [N, ...] (``params`` viewed per task, made to require gradients) and the
    gradient of each task's own loss with respect to its own copy, from one backward pass of the
    summed losses (tasks are independent: the gradient of the sum is the per-task gradients).
    ``loss_per_task`` maps per-task parameters to losses [N]."""
    task_params = {name: p if p.requires_grad else p.clone().requires_grad_()
                   for name, p in per_task_params(params, num_tasks).items()}
    grads = torch.autograd.grad(loss_per_task(task_params).sum(), list(task_params.values()),
                                create_graph=create_graph)
    return task_params, grads


def adapt_step(policy: GaussianMLPPolicy, params: Params, batch: Batch, inner: InnerUpdate, step: int,
               create_graph: bool) -> Params:
    """Inner step number ``step`` per task: theta_n - lr_n * grad L_n(theta_n), lr_n from
    ``inner.lrs[step]`` and ``inner.step_rule``.

    Args:
        params: meta-parameters (no task axis) or per-task parameters [N, ...].
        batch: N tasks with advantages filled in.
        create_graph: keep the graph of the gradient (second-order MAML). Without it the
            result still depends on ``params`` (first-order MAML); detach it for sampling.

    Returns:
        Per-task parameters with leading axis [N].
    """
    lr = inner.lrs[step]
    with torch.enable_grad():
        task_params, grads = task_gradients(params, batch.num_tasks,
                                            lambda task: inner_loss(policy, task, batch, inner), create_graph)
        sizes = inner.step_rule.sizes(lr, grads, batch)
        if isinstance(sizes, float):
            return {name: p - sizes * g for (name, p), g in zip(task_params.items(), grads)}
        return {name: p - sizes.view(-1, *[1] * (g.dim() - 1)) * g for (name, p), g in zip(task_params.items(), grads)}


def adapt(policy: GaussianMLPPolicy, params: Params, batches: Sequence[Batch], inner: InnerUpdate,
          create_graph: bool) -> Params:
    """Successive inner steps (:func:`adapt_step`), step k on ``batches[k]`` (sampled after k steps)."""
    if len(batches) != len(inner.lrs):
        raise ValueError(f"need one step size per batch, got {len(inner.lrs)} for {len(batches)} batches")
    for step, batch in enumerate(batches):
        params = adapt_step(policy, params, batch, inner, step, create_graph)
    return params


def detached(params: Params) -> Params:
    """Parameters cut from the graph (for sampling with adapted parameters)."""
    return {name: p.detach() for name, p in params.items()}


def sample_adaptation_batches(sampler: TaskSampler, policy: GaussianMLPPolicy, tasks: Sequence[Task], num_traj: int,
                              inner: InnerUpdate, advantages: AdvantageConfig, generator: torch.Generator,
                              seed_rng: np.random.Generator, part: slice = slice(None)) -> tuple[list[Batch], list[Params]]:
    """``len(inner.lrs) + 1`` batches with advantages: batch k is sampled NEW after k inner steps, and
    inner step k adapts (first order, no graph) on batch k. Also returns the detached parameters
    batch k was sampled with (no task axis for k = 0, [n, ...] after). The batches are on CPU, where
    they are sampled; the parameters and the inner steps on the policy's device. Only the tasks ``tasks[part]``
    are sampled, with the random numbers they get when all are (:meth:`TaskSampler.sample`)."""
    params = [detached(policy.params())]
    device = next(policy.parameters()).device
    on_cpu = policy if device.type == "cpu" else copy.deepcopy(policy).cpu()  # rollouts run on CPU
    batches = []
    for k in range(len(inner.lrs) + 1):
        batch = sampler.sample(on_cpu, {name: p.cpu() for name, p in params[-1].items()}, tasks, num_traj,
                               generator, seed_rng, part)
        batches.append(with_advantages(batch, advantages.gamma, advantages.gae_lambda))
        if k < len(inner.lrs):
            params.append(detached(adapt_step(policy, params[-1], batches[-1].to(device), inner, k,
                                              create_graph=False)))
    return batches, params
