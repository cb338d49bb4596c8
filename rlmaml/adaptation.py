"""Inner-loop adaptation as a pure function of (meta-)parameters and trajectory batches."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from rlmaml.advantages import with_advantages
from rlmaml.batch import Batch
from rlmaml.config import INNER_OBJECTIVES, STEP_RULES
from rlmaml.policy import GaussianMLPPolicy, Params, per_task_params
from rlmaml.sampling import TaskSampler
from rlmaml.tasks import Task


def masked_task_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over each task's valid entries: values and mask [N, ...] -> [N]."""
    dims = tuple(range(1, values.dim()))
    return (values * mask).sum(dims) / mask.sum(dims).clamp_min(1.0)


def inner_loss(policy: GaussianMLPPolicy, params: Params, batch: Batch, objective: str = "reinforce") -> Tensor:
    """Inner-step loss per task [N]: minus the masked mean of s(a|s) * advantage, with

    - ``reinforce`` (the paper's): s = log pi(a|s);
    - ``lvc`` (ProMP's low-variance curvature, Rothfuss et al. 2019, section 5):
      s = pi(a|s) / stop_grad(pi(a|s)).

    Both have the same value and gradient at ``params``, so the inner step is the same. They differ
    in the second derivative, which the meta-gradient and the TRPO curvature take through the
    step: LVC's adds, per time step, grad log pi grad log pi^T * advantage, the part of the
    policy-gradient Hessian that credits the pre-update policy for the data it samples; REINFORCE's
    drops it (a biased meta-gradient).
    """
    if objective not in INNER_OBJECTIVES:
        raise ValueError(f"objective must be one of {INNER_OBJECTIVES}, got {objective!r}")
    log_probs = policy.log_prob(params, batch.flat("observations"), batch.flat("actions"))
    surrogate = torch.exp(log_probs - log_probs.detach()) if objective == "lvc" else log_probs
    return -masked_task_mean(surrogate * batch.flat("advantages"), batch.flat("mask"))


def per_task_squared_norm(tensors: Sequence[Tensor]) -> Tensor:
    """Squared Euclidean norm per task over all of ``tensors`` together, each [N, ...] -> [N]."""
    return sum(t.pow(2).flatten(1).sum(1) for t in tensors)


def return_scaled_sizes(grads: Sequence[Tensor], batch: Batch, target_return: float) -> Tensor:
    """Per-task step-size multipliers [N] that make the step's length (over all parameters)
    ``target_return`` minus the task's mean return in ``batch`` (0 once the batch reaches the target).

    Args:
        grads: the inner loss's gradient per parameter, each with leading task axis [N, ...].
    """
    squared_norm = per_task_squared_norm(grads)
    shortfall = (target_return - batch.episode_returns().mean(1)).clamp_min(0.0).to(squared_norm.dtype)
    # a zero gradient has no direction to step along: size 0 (the floor keeps sqrt's derivative finite)
    return torch.where(squared_norm > 0, shortfall / squared_norm.clamp_min(1e-30).sqrt(), torch.zeros_like(shortfall))


def adapt_step(policy: GaussianMLPPolicy, params: Params, batch: Batch, lr: float,
               create_graph: bool, objective: str = "reinforce", step_rule: str = "fixed",
               target_return: float = 0.0) -> Params:
    """One policy-gradient step per task: theta_n - lr_n * grad L_n(theta_n).

    Args:
        params: meta-parameters (no task axis) or per-task parameters [N, ...].
        batch: N tasks with advantages filled in.
        create_graph: keep the graph of the gradient (second-order MAML). Without it the
            result still depends on ``params`` (first-order MAML); detach it for sampling.
        objective: the inner surrogate (``inner_loss``); it changes only derivatives through the step.
        step_rule: ``fixed``: lr_n = ``lr`` (the paper's); ``return-scaled``: a step of length
            ``lr`` x (``target_return`` - task n's mean return in ``batch``) along the gradient, so that
            tasks far from the target take long steps and tasks near it short ones
            (:func:`return_scaled_sizes`).

    Returns:
        Per-task parameters with leading axis [N].
    """
    if step_rule not in STEP_RULES:
        raise ValueError(f"step_rule must be one of {STEP_RULES}, got {step_rule!r}")
    with torch.enable_grad():
        task_params = {name: p if p.requires_grad else p.clone().requires_grad_()
                       for name, p in per_task_params(params, batch.num_tasks).items()}
        loss = inner_loss(policy, task_params, batch, objective).sum()  # tasks are independent: grad of sum = per-task grads
        grads = torch.autograd.grad(loss, list(task_params.values()), create_graph=create_graph)
        if step_rule == "fixed":
            return {name: p - lr * g for (name, p), g in zip(task_params.items(), grads)}
        sizes = lr * return_scaled_sizes(grads, batch, target_return)  # [N]
        return {name: p - sizes.view(-1, *[1] * (g.dim() - 1)) * g for (name, p), g in zip(task_params.items(), grads)}


def adapt(policy: GaussianMLPPolicy, params: Params, batches: Sequence[Batch], lrs: Sequence[float],
          create_graph: bool, objective: str = "reinforce", step_rule: str = "fixed",
          target_return: float = 0.0) -> Params:
    """Successive inner steps (:func:`adapt_step`), step k on ``batches[k]`` (sampled after k steps)
    with ``lrs[k]``."""
    if len(batches) != len(lrs):
        raise ValueError(f"need one step size per batch, got {len(lrs)} for {len(batches)} batches")
    for batch, lr in zip(batches, lrs):
        params = adapt_step(policy, params, batch, lr, create_graph, objective, step_rule, target_return)
    return params


def detached(params: Params) -> Params:
    """Parameters cut from the graph (for sampling with adapted parameters)."""
    return {name: p.detach() for name, p in params.items()}


def sample_adaptation_batches(sampler: TaskSampler, policy: GaussianMLPPolicy, tasks: Sequence[Task], num_traj: int,
                              lrs: Sequence[float], gamma: float, gae_lambda: float, generator: torch.Generator,
                              seed_rng: np.random.Generator, step_rule: str = "fixed",
                              target_return: float = 0.0) -> tuple[list[Batch], list[Params]]:
    """``len(lrs) + 1`` batches with advantages: batch k is sampled NEW after k inner steps, and
    inner step k adapts (first order, no graph) on batch k with ``lrs[k]`` under ``step_rule``
    (:func:`adapt_step`). Also returns the detached parameters batch k was sampled with (no task
    axis for k = 0, [N, ...] after)."""
    params = [detached(policy.params())]
    batches = []
    for k in range(len(lrs) + 1):
        batch = sampler.sample(policy, params[-1], tasks, num_traj, generator, seed_rng)
        batches.append(with_advantages(batch, gamma, gae_lambda))
        if k < len(lrs):
            params.append(detached(adapt_step(policy, params[-1], batches[-1], lrs[k], create_graph=False,
                                              step_rule=step_rule, target_return=target_return)))
    return batches, params
