"""Supervised MAML where it began: few-shot sinusoid regression (Finn, Abbeel, Levine 2017, section 5.1).

A task is y = A sin(x - phase) with A ~ U[0.1, 5], phase ~ U[0, pi], x ~ U[-5, 5]. The model, a 1-40-40-1
ReLU network, is run with rlmaml's functional MLP on per-task parameters: all tasks of a meta-batch go
through one batched matmul per layer, and the inner step is a gradient step on each task's own copy.
MAML: one inner SGD step (0.01) on K points, the meta-loss on K new points, Adam 0.001 on 25 tasks per
meta-batch. Pretrained: the same network fitted by Adam to all tasks at once, fine-tuned with SGD 0.02
(the paper's figure). Evaluation: held-out tasks, K points to adapt on, 100 to measure the mean squared
error after 0-10 steps.

``python examples/sinusoid.py --out-dir results/sinusoid`` trains both for K = 5 and 10 over three seeds
and writes sinusoid.json (MSE after 0-10 steps, mean ± standard error over seeds), mse.png (the curves)
and fit.png (a held-out task: the true function, its K points, the predictions before and after 1 and
10 steps).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from rlmaml.adaptation import task_gradients
from rlmaml.policy import GaussianMLPPolicy, Params, mlp, per_task_params

HIDDEN = (40, 40)
LAYERS = len(HIDDEN) + 1


@dataclass(frozen=True)
class Setting:
    shots: int = 10
    """K: points to adapt on (and, in meta-training, new points for the meta-loss)"""
    iterations: int = 70_000
    tasks_per_batch: int = 25
    inner_lr: float = 0.01
    meta_lr: float = 0.001
    pretrained_lr: float = 0.02
    """fine-tuning step of the pretrained network"""
    eval_tasks: int = 1000
    eval_points: int = 100
    eval_steps: int = 10


def sample_tasks(count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Amplitudes and phases [count]."""
    amplitude = 0.1 + 4.9 * torch.rand(count, generator=generator)
    phase = math.pi * torch.rand(count, generator=generator)
    return amplitude, phase


def sample_points(amplitude: Tensor, phase: Tensor, count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """x, y [N, count, 1] of each task."""
    x = -5.0 + 10.0 * torch.rand(len(amplitude), count, 1, generator=generator)
    return x, amplitude[:, None, None] * torch.sin(x - phase[:, None, None])


def network(seed: int) -> Params:
    """The 1-40-40-1 network's parameters (PyTorch's default initialisation), without a task axis."""
    torch.manual_seed(seed)
    policy = GaussianMLPPolicy(1, 1, HIDDEN)
    return {name: p for name, p in policy.params().items() if name != "log_std"}


def task_losses(params: Params, x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error per task [N] of ``params`` (per-task or shared) on x, y [N, B, 1]."""
    return ((mlp(params, x, LAYERS) - y) ** 2).mean((1, 2))


def sgd_step(params: Params, x: Tensor, y: Tensor, lr: float, create_graph: bool) -> Params:
    """One gradient step per task on its own points (rlmaml's per-task gradients): parameters [N, ...]."""
    task_params, grads = task_gradients(params, x.shape[0], lambda task: task_losses(task, x, y), create_graph)
    return {name: p - lr * g for (name, p), g in zip(task_params.items(), grads)}


def train(setting: Setting, method: str, seed: int, progress: bool = True) -> Params:
    """Meta-train (``maml``) or fit to all tasks (``pretrained``) for ``setting.iterations`` Adam steps."""
    params = {name: p.detach().clone().requires_grad_() for name, p in network(seed).items()}
    optimizer = torch.optim.Adam(params.values(), lr=setting.meta_lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(setting.iterations), desc=f"{method} K={setting.shots} seed {seed}", disable=not progress,
                  mininterval=2.0):
        amplitude, phase = sample_tasks(setting.tasks_per_batch, generator)
        x, y = sample_points(amplitude, phase, 2 * setting.shots, generator)
        if method == "maml":
            adapted = sgd_step(params, x[:, :setting.shots], y[:, :setting.shots], setting.inner_lr, create_graph=True)
            loss = task_losses(adapted, x[:, setting.shots:], y[:, setting.shots:]).mean()
        else:
            loss = task_losses(params, x, y).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: p.detach() for name, p in params.items()}


@dataclass(frozen=True)
class HeldOut:
    """Held-out tasks [T] with K points to adapt on (x, y [T, K, 1]) and points to measure on ([T, 100, 1])."""

    amplitude: Tensor
    phase: Tensor
    x: Tensor
    y: Tensor
    query_x: Tensor
    query_y: Tensor


def held_out(setting: Setting, seed: int) -> HeldOut:
    """The held-out tasks of ``seed`` (a stream apart from training's)."""
    generator = torch.Generator().manual_seed(10_000 + seed)
    amplitude, phase = sample_tasks(setting.eval_tasks, generator)
    support = sample_points(amplitude, phase, setting.shots, generator)
    query = sample_points(amplitude, phase, setting.eval_points, generator)
    return HeldOut(amplitude, phase, *support, *query)


def adaptation_curve(params: Params, lr: float, setting: Setting, seed: int) -> list[tuple[float, float]]:
    """Mean squared error after 0..eval_steps steps: (mean over held-out tasks, its standard error)."""
    tasks = held_out(setting, seed)
    curve = []
    current = per_task_params(params, len(tasks.x))
    for step in range(setting.eval_steps + 1):
        errors = task_losses(current, tasks.query_x, tasks.query_y).detach()
        curve.append((errors.mean().item(), errors.std().item() / math.sqrt(len(errors))))
        if step < setting.eval_steps:
            current = {name: p.detach() for name, p in sgd_step(current, tasks.x, tasks.y, lr, create_graph=False).items()}
    return curve


def fit_figure(models: dict[str, Params], setting: Setting, path: Path) -> None:
    """One held-out task: the true function, its K points, each model's predictions after 0, 1 and 10 steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = held_out(setting, 0)
    x, y, amplitude, phase = tasks.x[:1], tasks.y[:1], tasks.amplitude[0], tasks.phase[0]
    grid = torch.linspace(-5, 5, 200).view(1, -1, 1)
    figure, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.6), sharey=True)
    for axis, (name, params) in zip(axes, models.items()):
        lr = setting.inner_lr if name == "MAML" else setting.pretrained_lr
        axis.plot(grid.flatten(), (amplitude * torch.sin(grid.flatten() - phase)), color="red", label="true function")
        axis.scatter(x.flatten(), y.flatten(), color="black", marker="^", zorder=3, label=f"{setting.shots} points")
        current = per_task_params(params, 1)
        for step in range(setting.eval_steps + 1):
            if step in (0, 1, setting.eval_steps):
                style = {0: ":", 1: "--"}.get(step, "-")
                label = "before adapting" if step == 0 else f"after {step} step{'s' if step > 1 else ''}"
                axis.plot(grid.flatten(), mlp(current, grid, LAYERS).detach().flatten(), style, label=label)
            current = {n: p.detach() for n, p in sgd_step(current, x, y, lr, create_graph=False).items()}
        axis.set_title(f"{name}, K={setting.shots}, step {lr:g}")
        axis.set_xlabel("x")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def curves_figure(record: dict, path: Path) -> None:
    """MSE against steps, mean ± standard error over seeds, one panel per K."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shots = list(record["results"])
    figure, axes = plt.subplots(1, len(shots), figsize=(5 * len(shots), 3.6), squeeze=False)
    axes = axes[0]
    for axis, k in zip(axes, shots):
        for method, rows in record["results"][k].items():
            means = [row["mean"] for row in rows]
            errors = [row["stderr"] for row in rows]
            axis.errorbar(range(len(means)), means, yerr=errors, marker="o", markersize=3, capsize=2, label=method)
        axis.set_title(f"K={k} shot regression")
        axis.set_xlabel("gradient steps")
        axis.set_ylabel("mean squared error")
        axis.set_yscale("log")  # errors span decades, and a diverged fit more
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def over_seeds(curves: list[list[tuple[float, float]]]) -> list[dict[str, float]]:
    """Per step: mean over seeds of each seed's mean over tasks, and its standard error over seeds."""
    rows = []
    for step in range(len(curves[0])):
        values = [curve[step][0] for curve in curves]
        stderr = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
        rows.append({"mean": statistics.fmean(values), "stderr": stderr})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=Path("runs/sinusoid"))
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=Setting.iterations)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    record: dict = {"command": "python examples/sinusoid.py " + " ".join(sys.argv[1:]), "seeds": args.seeds,
                    "results": {}, "minutes": {}}
    for shots in args.shots:
        setting = Setting(shots=shots, iterations=args.iterations)
        record["setting"] = {k: v for k, v in asdict(setting).items() if k != "shots"}
        results, models = {}, {}
        for method, label, lr in (("maml", "MAML", setting.inner_lr), ("pretrained", "pretrained", setting.pretrained_lr)):
            curves = []
            for seed in args.seeds:
                start = time.perf_counter()
                params = train(setting, method, seed, progress=not args.no_progress)
                record["minutes"].setdefault(f"{label}, K={shots}", []).append(round((time.perf_counter() - start) / 60, 1))
                curves.append(adaptation_curve(params, lr, setting, seed))
                if seed == args.seeds[0]:
                    models[label] = params
            results[label] = over_seeds(curves)
        record["results"][str(shots)] = results
        fit_figure(models, setting, args.out_dir / f"fit-k{shots}.png")
        for label, rows in results.items():
            print(f"K={shots} {label:10s} MSE after 0/1/10 steps: "
                  + " / ".join(f"{rows[s]['mean']:.3f} ± {rows[s]['stderr']:.3f}" for s in (0, 1, setting.eval_steps)))
    curves_figure(record, args.out_dir / "mse.png")
    (args.out_dir / "sinusoid.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"results: {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
