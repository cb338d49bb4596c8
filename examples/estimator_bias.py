"""How biased is each meta-gradient estimator? An exact answer on a problem small enough to integrate.

The problem: a point on a line starts at 0 and moves by its action a_t ~ N(mu, sigma^2) for T steps,
with reward -(x_t - goal)^2 at its position x_t after step t; the policy's only parameter is mu.
One inner step on K sampled trajectories (rlmaml's own ``adapt_step``, REINFORCE gradient, advantage =
return-to-go minus its expectation under the sampling policy) gives mu'; the meta-objective is the
expected return after that step, J(mu) = E_D[V(mu'(D))], V(m) the expected return of mean m. mu' is a
polynomial in the Gaussian samples, so J and its gradient, and the expectation of every estimator,
are integrals of polynomials: Gauss-Hermite quadrature computes them exactly (to float rounding).

Estimators, each the gradient of rlmaml's outer loss (REINFORCE at mu' on K_valid new trajectories)
through the inner step made with an inner objective:
  reinforce, lvc, dice: second order through that objective's inner loss;
  first-order: mu' treated as mu plus a constant;
  reinforce + sampling term: reinforce plus the term through which the inner trajectories' sampling
  moves the adapted return (score of D times the validation return), which the others leave out or
  approximate; it is the unbiased one.

``python examples/estimator_bias.py --json results/estimators/bias.json`` writes the table that
``docs/generate.py`` renders; the tests check the same functions.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from machine import machine, write_record  # noqa: E402

from rlmaml.adaptation import InnerUpdate, adapt, adapt_step, inner_loss
from rlmaml.advantages import with_advantages
from rlmaml.batch import Batch
from rlmaml.config import InnerConfig
from rlmaml.objectives import Reinforce, magic_box
from rlmaml.policy import GaussianMLPPolicy, Params
from rlmaml.sampling import TaskSampler

ESTIMATORS = ("reinforce", "lvc", "dice", "first-order", "reinforce + sampling term")
"""Every estimator compared; the inner objective of each is its name's first word (first-order: reinforce)."""


@dataclass(frozen=True)
class Problem:
    """The line-walk problem and the inner step."""

    horizon: int = 3
    num_traj: int = 2
    """K: trajectories of the inner step"""
    num_valid_traj: int = 2
    """trajectories of the outer loss"""
    sigma: float = 1.0
    goal: float = 1.0
    mu: float = 0.2
    alpha: float = 0.01


class LineWalkPolicy:
    """N(mu, sigma^2) whatever the state; parameters ``{"bias": [1]}`` (per task [N, 1])."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def log_prob(self, params: Params, obs: Tensor, actions: Tensor) -> Tensor:
        """Log-density [N, B] of actions [N, B, 1] (``obs`` unused)."""
        mean = params["bias"].unsqueeze(1)  # [N, 1, 1]
        return (-0.5 * ((actions - mean) / self.sigma) ** 2).squeeze(-1) - math.log(self.sigma * math.sqrt(2 * math.pi))


def expected_rewards(problem: Problem, mean: Tensor) -> Tensor:
    """E[r_t] [..., T] for policy means [...]: x_t ~ N((t+1) mean, (t+1) sigma^2)."""
    steps = torch.arange(1, problem.horizon + 1, dtype=mean.dtype)
    return -((steps * mean.unsqueeze(-1) - problem.goal) ** 2 + steps * problem.sigma ** 2)


def line_walk_batch(problem: Problem, actions: Tensor, sampling_mean: Tensor) -> Batch:
    """The batch of actions [N, M, T] taken with means [N]: rewards, and advantages = return-to-go minus
    its expectation under the sampling mean (a baseline that does not depend on the actions)."""
    rewards = -(torch.cumsum(actions, -1) - problem.goal) ** 2
    to_go = rewards.flip(-1).cumsum(-1).flip(-1)
    baseline = expected_rewards(problem, sampling_mean.detach()).flip(-1).cumsum(-1).flip(-1)  # [N, T]
    n, m, t = actions.shape
    return Batch(observations=torch.zeros(n, m, t, 1, dtype=actions.dtype), actions=actions.unsqueeze(-1),
                 rewards=rewards, mask=torch.ones_like(rewards), log_probs=torch.zeros_like(rewards),
                 advantages=to_go - baseline.unsqueeze(1))


def inner_update(problem: Problem, estimator: str) -> InnerUpdate:
    objective = estimator.split(" ")[0]
    return InnerUpdate.from_config(InnerConfig(objective="reinforce" if objective == "first-order" else objective),  # type: ignore[arg-type]
                                   [problem.alpha])


def adapted_means(problem: Problem, mu: Tensor, actions: Tensor, estimator: str) -> Tensor:
    """mu' [N] after the inner step on actions [N, K, T], with the graph each estimator differentiates."""
    policy = LineWalkPolicy(problem.sigma)
    batch = line_walk_batch(problem, actions, mu)
    second_order = estimator != "first-order"
    adapted = adapt_step(policy, {"bias": mu.unsqueeze(-1)}, batch, inner_update(problem, estimator), 0,  # type: ignore[arg-type]
                         create_graph=second_order)["bias"].squeeze(-1)
    return adapted if second_order else adapted.detach() + (mu - mu.detach())


def sampled_meta_gradients(problem: Problem, estimator: str, count: int, generator: torch.Generator) -> Tensor:
    """``count`` independent estimates [count] of the meta-gradient in the outer loss's scale, -dJ/dmu / T."""
    mu = torch.full((count,), problem.mu, dtype=torch.float64, requires_grad=True)
    noise = torch.randn(count, problem.num_traj, problem.horizon, generator=generator, dtype=torch.float64)
    actions = problem.mu + problem.sigma * noise
    adapted = adapted_means(problem, mu, actions, estimator)
    valid_actions = adapted.detach()[:, None, None] + problem.sigma * torch.randn(
        count, problem.num_valid_traj, problem.horizon, generator=generator, dtype=torch.float64)
    valid = line_walk_batch(problem, valid_actions, adapted)
    outer = inner_loss(LineWalkPolicy(problem.sigma), {"bias": adapted.unsqueeze(-1)}, valid,  # type: ignore[arg-type]
                       InnerUpdate((), Reinforce()))
    if estimator == "reinforce + sampling term":
        inner_log_prob = LineWalkPolicy(problem.sigma).log_prob(
            {"bias": mu.unsqueeze(-1)}, actions.flatten(1).unsqueeze(-1), actions.flatten(1).unsqueeze(-1)).sum(-1)
        valid_return = valid.episode_returns().mean(-1) - expected_rewards(problem, torch.tensor(problem.mu)).sum()
        outer = outer + (magic_box(inner_log_prob) - 1) * (-valid_return.detach() / problem.horizon)
    (grads,) = torch.autograd.grad(outer.sum(), mu)
    return grads


QUADRATURE_POINTS = 4
"""Gauss-Hermite points per coordinate: exact for polynomials of degree up to 2 x 4 - 1 = 7 in each, the
highest degree here (DiCE's dmu'/dmu is of degree 4 in the noise, dV(mu')/dmu' of degree 3)."""


def _quadrature(problem: Problem, points_per_axis: int) -> tuple[Tensor, Tensor]:
    """Gauss-Hermite nodes [P, K, T] and weights [P] for the inner batch's standard-normal noise."""
    points, weights = np.polynomial.hermite_e.hermegauss(points_per_axis)
    weights = weights / weights.sum()
    dims = problem.num_traj * problem.horizon
    nodes = torch.tensor(list(itertools.product(points, repeat=dims))).view(-1, problem.num_traj, problem.horizon)
    node_weights = torch.tensor([math.prod(c) for c in itertools.product(weights, repeat=dims)])
    return nodes, node_weights


def _value_gradient(problem: Problem, mean: Tensor) -> Tensor:
    """dV/dm at means [N] (V(m) = sum_t E[r_t])."""
    steps = torch.arange(1, problem.horizon + 1, dtype=mean.dtype)
    return -(2 * steps * (steps * mean.unsqueeze(-1) - problem.goal)).sum(-1)


def true_meta_gradient(problem: Problem, points_per_axis: int = QUADRATURE_POINTS) -> float:
    """-dJ/dmu / T exactly: J by quadrature over the inner batch's noise, differentiated through the
    actions' dependence on mu (a = mu + sigma * noise) and the inner step."""
    nodes, weights = _quadrature(problem, points_per_axis)
    mu = torch.full((len(nodes),), problem.mu, dtype=torch.float64, requires_grad=True)
    actions = mu[:, None, None] + problem.sigma * nodes
    to_go = line_walk_batch(problem, actions, mu.detach()).advantages  # the baseline is a constant
    inner_gradient = -((actions - mu[:, None, None]) / problem.sigma ** 2 * to_go).mean((-1, -2))
    adapted = mu - problem.alpha * inner_gradient
    value = (weights * expected_rewards(problem, adapted).sum(-1)).sum()
    (grad,) = torch.autograd.grad(value, mu)
    return -grad.sum().item() / problem.horizon


def expected_meta_gradient(problem: Problem, estimator: str, points_per_axis: int = QUADRATURE_POINTS) -> float:
    """The estimator's expectation, exactly: given the inner batch, the outer loss's gradient is
    -dV(mu')/dmu' / T in expectation, times the estimator's dmu'/dmu (plus, for the sampling term, the
    score of the inner batch times -V(mu') / T relative to the baseline)."""
    nodes, weights = _quadrature(problem, points_per_axis)
    mu = torch.full((len(nodes),), problem.mu, dtype=torch.float64, requires_grad=True)
    adapted = adapted_means(problem, mu, problem.mu + problem.sigma * nodes, estimator)
    (jacobian,) = torch.autograd.grad(adapted.sum(), mu)
    expectation = weights * -_value_gradient(problem, adapted.detach()) / problem.horizon * jacobian
    if estimator == "reinforce + sampling term":
        score = (nodes / problem.sigma).sum((-1, -2))
        baseline = expected_rewards(problem, torch.tensor(problem.mu, dtype=torch.float64)).sum()
        value = expected_rewards(problem, adapted.detach()).sum(-1) - baseline
        expectation = expectation + weights * score * -value / problem.horizon
    return expectation.sum().item()


def navigation_seconds(estimator: str, repeats: int = 5) -> float:
    """Median seconds of one meta-gradient on a Navigation2D meta-batch of the nav-paper size (20 tasks x
    20 trajectories x 100 steps, 2x100 ReLU policy) with the estimator's inner objective."""
    torch.manual_seed(0)
    sampler = TaskSampler("rlmaml/Navigation2D-v0")
    policy = GaussianMLPPolicy(2, 2, (100, 100))
    tasks = sampler.sample_tasks(20, np.random.default_rng(0))
    train, valid = (with_advantages(sampler.sample(policy, policy.params(), tasks, 20, torch.Generator().manual_seed(s),
                                                   np.random.default_rng(s)), 0.99, 1.0) for s in (1, 2))
    problem = Problem()
    update = replace(inner_update(problem, estimator), lrs=(0.1,))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        adapted = adapt(policy, policy.params(), [train], update, create_graph=estimator != "first-order")
        torch.autograd.grad(inner_loss(policy, adapted, valid, InnerUpdate(())).sum(), list(policy.parameters()))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(problem: Problem, alphas: list[float], count: int, seed: int) -> dict[str, object]:
    """Exact bias of each estimator at each step size, sampled mean, standard error and standard deviation
    at ``problem.alpha``, and seconds per Navigation2D meta-gradient."""
    generator = torch.Generator().manual_seed(seed)
    rows = {}
    for estimator in ESTIMATORS:
        samples = sampled_meta_gradients(problem, estimator, count, generator)
        rows[estimator] = {
            "bias": {str(a): expected_meta_gradient(replace(problem, alpha=a), estimator)
                     - true_meta_gradient(replace(problem, alpha=a)) for a in alphas},
            "expected": expected_meta_gradient(problem, estimator),
            "sampled_mean": samples.mean().item(),
            "standard_error": samples.std().item() / math.sqrt(count),
            "standard_deviation": samples.std().item(),
            "navigation_seconds": navigation_seconds(estimator) if estimator != "reinforce + sampling term" else None,
        }
    return {"problem": asdict(problem), "alphas": alphas, "samples": count, "seed": seed,
            "true": {str(a): true_meta_gradient(replace(problem, alpha=a)) for a in alphas}, "estimators": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1_000_000, help="independent estimates per estimator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem = Problem()
    record = measure(problem, [0.03, 0.01, 0.003], args.samples, args.seed)
    record["command"] = "python examples/estimator_bias.py" + (f" --json {args.json}" if args.json else "")
    record["machine"] = machine()
    print(f"true meta-gradient at step size {problem.alpha}: {record['true'][str(problem.alpha)]:+.4f}")
    print(f"{'estimator':27s} {'expected':>9s} {'sampled':>17s} {'std dev':>8s}  bias at " +
          " / ".join(map(str, record["alphas"])))  # type: ignore[arg-type]
    for name, row in record["estimators"].items():  # type: ignore[attr-defined]
        print(f"{name:27s} {row['expected']:+9.4f} {row['sampled_mean']:+9.4f} ± {row['standard_error']:.4f} "
              f"{row['standard_deviation']:8.2f}  " + " / ".join(f"{b:+.4f}" for b in row["bias"].values()))
    if args.json:
        write_record(record, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
