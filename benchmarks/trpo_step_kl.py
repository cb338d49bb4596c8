"""How large are the TRPO meta-steps really? The KL of the proposed full step vs the trust region.

    python benchmarks/trpo_step_kl.py runs/exp/cheetah-vel-lr02-s0 --checkpoint 150 --batches 2 \
        --curvatures 0.1:subsample 0.1:full 0.1:first-order 1.0:full

The full step is scaled so that the quadratic model of the KL (its curvature measured on
``hvp_traj_fraction`` of the trajectories of ``hvp_task_fraction`` of the tasks, with the
adaptation inside it given by ``hvp_adaptation``) equals ``max_kl``. On meta-batches sampled with
the checkpoint's policy this prints, for each curvature setting
``FRACTION:ADAPTATION[:TASK_FRACTION]``, the KL actually reached by the full step on all
trajectories, the surrogate loss there, the step the line search accepts (its KL and
surrogate), and the seconds the proposal took. A KL well below ``max_kl`` means the curvature
estimate is too large and the line search accepts steps smaller than the trust region allows;
above it, the line search has to backtrack.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from torch.nn.utils import parameters_to_vector, vector_to_parameters

from rlmaml.checkpoints import load_checkpoint, restore_policy
from rlmaml.config import load_config
from rlmaml.runs import RunDir
from rlmaml.trainer import Trainer, sample_meta_batch
from rlmaml.trpo import MetaTRPO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--checkpoint", default="final", help="final, best or a kept iteration N")
    parser.add_argument("--curvatures", nargs="+", default=["0.1:subsample", "0.1:first-order", "1.0:full"],
                        help="hvp_traj_fraction:hvp_adaptation[:hvp_task_fraction] settings to compare "
                             "(an omitted part: the run's own)")
    parser.add_argument("--batches", type=int, default=3, help="meta-batches to measure on")
    args = parser.parse_args()

    run = RunDir(args.run)
    config = load_config(run.config)
    trainer = Trainer(config, run)
    path = run.checkpoint_for(args.checkpoint)
    state = load_checkpoint(path)
    restore_policy(trainer.policy, state, path)
    start = parameters_to_vector(trainer.policy.parameters()).detach().clone()
    print(f"{run.path} ({args.checkpoint}, it. {state['iteration']}): max_kl {config.max_kl}, "
          f"{config.num_tasks} tasks x {config.num_traj} trajectories, {args.batches} meta-batches")
    settings = {}
    for item in args.curvatures:
        fraction, _, rest = item.partition(":")
        adaptation, _, task_fraction = rest.partition(":")
        settings[item] = config.replace(hvp_traj_fraction=float(fraction),
                                        hvp_adaptation=adaptation or config.hvp_adaptation,
                                        hvp_task_fraction=float(task_fraction or config.hvp_task_fraction)).trpo
    kls: dict[str, list[float]] = {item: [] for item in settings}
    improvements: dict[str, list[float]] = {item: [] for item in settings}
    with trainer:
        for index in range(args.batches):
            tasks = trainer.sampler.sample_tasks(config.num_tasks, trainer.streams.train_tasks)
            meta_batch = sample_meta_batch(config, trainer.sampler, trainer.policy, tasks, trainer.streams)
            for item, setting in settings.items():
                meta = MetaTRPO(trainer.policy, config.inner_lrs, config.first_order, setting, config.inner_objective)
                started = time.perf_counter()
                proposal = meta.proposed_step(meta_batch)
                loss_before = proposal.loss
                seconds = time.perf_counter() - started
                loss, kl = meta.loss_and_kl_at(start - proposal.step, meta_batch, proposal.old)
                vector_to_parameters(start, trainer.policy.parameters())
                accepted = meta.line_search(meta_batch, proposal)
                vector_to_parameters(start, trainer.policy.parameters())  # back to the checkpoint's parameters
                kls[item].append(kl)
                improvements[item].append(accepted["loss_after"] - accepted["loss_before"])
                print(f"batch {index}  {item}: full step KL {kl:.4f} ({kl / config.max_kl:.2f} x max_kl), "
                      f"surrogate {loss_before:.2e} -> {loss:.2e}; accepted step KL {accepted['kl']:.4f}, "
                      f"surrogate change {improvements[item][-1]:.2e}; proposal {seconds:.1f} s", flush=True)
    for item in settings:
        print(f"{item}: median KL of the full step {statistics.median(kls[item]) / config.max_kl:.2f} x max_kl, "
              f"median surrogate change of the accepted step {statistics.median(improvements[item]):.2e}")


if __name__ == "__main__":
    main()
