"""Gaussian MLP policy evaluated functionally on per-task parameters.

Parameters are a ``dict[str, Tensor]``. The meta-parameters (``policy.params()``) have no task
axis; adapted parameters carry a leading task axis [N, ...]. Every forward takes observations
[N, B, obs_dim] and runs one batched matmul per layer, so all tasks go through the network at once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rlmaml.config import PolicyConfig

Params = dict[str, Tensor]
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}
LOG_2PI = math.log(2.0 * math.pi)


class GaussianMLPPolicy(nn.Module):
    """MLP mean with a learned state-independent log-std; log-probs are summed over action dims."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...] = (100, 100),
                 activation: str = "relu", init_std: float = 1.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.activation = activation
        sizes = (obs_dim, *hidden_sizes, act_dim)
        self.num_layers = len(sizes) - 1
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layer = nn.Linear(fan_in, fan_out)  # borrow nn.Linear's default initialisation
            self.register_parameter(f"weight{i}", nn.Parameter(layer.weight.detach().T.contiguous()))
            self.register_parameter(f"bias{i}", nn.Parameter(layer.bias.detach().clone()))
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    def params(self) -> Params:
        """The meta-parameters by name (weights stored [in, out])."""
        return dict(self.named_parameters())

    def distribution(self, params: Params, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Mean [N, B, act_dim] and log-std [N, 1, act_dim] for observations [N, B, obs_dim].

        ``params`` either have a leading task axis of size N or none (shared by all tasks).
        """
        if obs.dim() != 3 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"obs must have shape [N, B, {self.obs_dim}], got {list(obs.shape)}")
        num_tasks = obs.shape[0]
        hidden = mlp(params, obs, self.num_layers, self.activation)
        log_std = params["log_std"]
        log_std = log_std.expand(num_tasks, self.act_dim) if log_std.dim() == 1 else log_std
        return hidden, log_std.unsqueeze(1)

    def log_prob(self, params: Params, obs: Tensor, actions: Tensor) -> Tensor:
        """Log-probability [N, B] of actions [N, B, act_dim] at observations [N, B, obs_dim]."""
        mean, log_std = self.distribution(params, obs)
        return gaussian_log_prob(mean, log_std, actions)


def mlp(params: Params, inputs: Tensor, num_layers: int, activation: str = "relu") -> Tensor:
    """The MLP of ``params`` (``weight{i}`` [in, out] or [N, in, out], ``bias{i}`` [out] or [N, out]) on
    inputs [N, B, in] -> [N, B, out], all tasks in one batched matmul per layer; no activation after
    the last layer."""
    act = ACTIVATIONS[activation]
    hidden = inputs
    for i in range(num_layers):
        weight, bias = params[f"weight{i}"], params[f"bias{i}"]
        if weight.dim() == 2:
            hidden = torch.matmul(hidden, weight) + bias
        else:
            hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight)
        if i < num_layers - 1:
            hidden = act(hidden)
    return hidden


def make_policy(config: PolicyConfig, obs_dim: int, act_dim: int, init_seed: int = 0) -> GaussianMLPPolicy:
    """The policy ``config`` describes for these dimensions, initialised from ``init_seed`` (the
    global random state is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return GaussianMLPPolicy(obs_dim, act_dim, config.hidden_sizes, config.activation, config.init_std)


def gaussian_log_prob(mean: Tensor, log_std: Tensor, actions: Tensor) -> Tensor:
    """Diagonal Gaussian log-density summed over the last (action) axis; shapes broadcast."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - 0.5 * LOG_2PI).sum(-1)


def standard_normal_log_prob(noise: Tensor, log_std: Tensor) -> Tensor:
    """Log-density of ``mean + exp(log_std) * noise`` under N(mean, exp(log_std)^2), summed over
    the last axis: the same as :func:`gaussian_log_prob` without recomputing the z-score."""
    return (-0.5 * noise * noise - log_std - 0.5 * LOG_2PI).sum(-1)


def gaussian_kl(old_mean: Tensor, old_log_std: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """KL(old || new) of diagonal Gaussians, summed over the last (action) axis; shapes broadcast."""
    var_ratio = torch.exp(2.0 * (old_log_std - log_std))
    mean_term = (old_mean - mean) ** 2 * torch.exp(-2.0 * log_std)
    return (0.5 * (var_ratio + mean_term - 1.0) + log_std - old_log_std).sum(-1)


def per_task_params(params: Params, num_tasks: int) -> Params:
    """View meta-parameters as per-task parameters with a leading axis [N, ...] (no copy)."""
    return {name: p.unsqueeze(0).expand(num_tasks, *p.shape) if p.dim() < _task_dims(name) else p
            for name, p in params.items()}


def _task_dims(name: str) -> int:
    """Number of dims a per-task parameter of this name has (weights 3, biases and log-std 2)."""
    return 3 if name.startswith("weight") else 2
