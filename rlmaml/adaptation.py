"""Inner-loop adaptation as a pure function of (meta-)parameters and trajectory batches."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from rlmaml.advantages import with_advantages
from rlmaml.batch import Batch
from rlmaml.config import INNER_OBJECTIVES
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


def adapt_step(policy: GaussianMLPPolicy, params: Params, batch: Batch, lr: float,
               create_graph: bool, objective: str = "reinforce") -> Params:
    """One policy-gradient step per task: theta_n - lr * grad L_n(theta_n).

    Args:
        params: meta-parameters (no task axis) or per-task parameters [N, ...].
        batch: N tasks with advantages filled in.
        create_graph: keep the graph of the gradient (second-order MAML). Without it the
            result still depends on ``params`` (first-order MAML); detach it for sampling.
        objective: the inner surrogate (``inner_loss``); it changes only derivatives through the step.

    Returns:
        Per-task parameters with leading axis [N].
    """
    with torch.enable_grad():
        task_params = {name: p if p.requires_grad else p.clone().requires_grad_()
                       for name, p in per_task_params(params, batch.num_tasks).items()}
        loss = inner_loss(policy, task_params, batch, objective).sum()  # tasks are independent: grad of sum = per-task grads
        grads = torch.autograd.grad(loss, list(task_params.values()), create_graph=create_graph)
    return {name: p - lr * g for (name, p), g in zip(task_params.items(), grads)}


def adapt(policy: GaussianMLPPolicy, params: Params, batches: Sequence[Batch], lrs: Sequence[float],
          create_graph: bool, objective: str = "reinforce") -> Params:
    """Successive inner steps, step k on ``batches[k]`` (sampled after k steps) with ``lrs[k]``."""
    if len(batches) != len(lrs):
        raise ValueError(f"need one step size per batch, got {len(lrs)} for {len(batches)} batches")
    for batch, lr in zip(batches, lrs):
        params = adapt_step(policy, params, batch, lr, create_graph, objective)
    return params


def detached(params: Params) -> Params:
    """Parameters cut from the graph (for sampling with adapted parameters)."""
    return {name: p.detach() for name, p in params.items()}


def sample_adaptation_batches(sampler: TaskSampler, policy: GaussianMLPPolicy, tasks: Sequence[Task], num_traj: int,
                              lrs: Sequence[float], gamma: float, gae_lambda: float, generator: torch.Generator,
                              seed_rng: np.random.Generator) -> tuple[list[Batch], list[Params]]:
    """``len(lrs) + 1`` batches with advantages: batch k is sampled NEW after k inner steps, and
    inner step k adapts (first order, no graph) on batch k with ``lrs[k]``. Also returns the
    detached parameters batch k was sampled with (no task axis for k = 0, [N, ...] after)."""
    params = [detached(policy.params())]
    batches = []
    for k in range(len(lrs) + 1):
        batch = sampler.sample(policy, params[-1], tasks, num_traj, generator, seed_rng)
        batches.append(with_advantages(batch, gamma, gae_lambda))
        if k < len(lrs):
            params.append(detached(adapt_step(policy, params[-1], batches[-1], lrs[k], create_graph=False)))
    return batches, params
