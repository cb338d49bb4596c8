"""How large are the TRPO meta-steps really? The KL of the proposed full step vs the trust region.

    python benchmarks/trpo_step_kl.py runs/exp/cheetah-vel-lr02-s0 --checkpoint 150 --batches 2 --fractions 0.1 0.3 1.0

The full step is scaled so that the quadratic model of the KL (its curvature measured on
``hvp_traj_fraction`` of the trajectories) equals ``max_kl``. On meta-batches sampled with the
checkpoint's policy this prints, for each curvature fraction, the KL actually reached by the full
step on all trajectories and the surrogate loss there. A KL well below ``max_kl`` means the
curvature estimate is too large and the line search accepts steps smaller than the trust region
allows; above it, the line search has to backtrack.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

from torch.nn.utils import parameters_to_vector, vector_to_parameters

from rlmaml.config import load_config
from rlmaml.runs import RunDir, load_checkpoint
from rlmaml.trainer import Trainer, sample_meta_batch
from rlmaml.trpo import MetaTRPO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--checkpoint", default="final", help="final, best or a kept iteration N")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 1.0],
                        help="hvp_traj_fraction values to compare")
    parser.add_argument("--batches", type=int, default=3, help="meta-batches to measure on")
    args = parser.parse_args()

    run = RunDir(args.run)
    config = load_config(run.config)
    trainer = Trainer(config, run)
    state = load_checkpoint(run.checkpoint_for(args.checkpoint))
    trainer.policy.load_state_dict(state["policy"])
    start = parameters_to_vector(trainer.policy.parameters()).detach().clone()
    print(f"{run.path} ({args.checkpoint}, it. {state['iteration']}): max_kl {config.max_kl}, "
          f"{config.num_tasks} tasks x {config.num_traj} trajectories, {args.batches} meta-batches")
    kls: dict[float, list[float]] = {fraction: [] for fraction in args.fractions}
    try:
        for index in range(args.batches):
            tasks = trainer.sampler.sample_tasks(config.num_tasks, trainer.streams.train_tasks)
            meta_batch = sample_meta_batch(config, trainer.sampler, trainer.policy, tasks, trainer.streams)
            for fraction in args.fractions:
                settings = dataclasses.replace(config.trpo, hvp_traj_fraction=fraction)
                meta = MetaTRPO(trainer.policy, config.inner_lrs, config.first_order, settings)
                step, loss_before, old = meta.proposed_step(meta_batch)
                loss, kl = meta.loss_and_kl_at(start - step, meta_batch, old)
                vector_to_parameters(start, trainer.policy.parameters())  # back to the checkpoint's parameters
                kls[fraction].append(kl)
                print(f"batch {index}  fraction {fraction:g}: KL of the full step {kl:.4f} "
                      f"({kl / config.max_kl:.2f} x max_kl), surrogate {loss_before:.2e} -> {loss:.2e}", flush=True)
    finally:
        trainer.sampler.close()
    for fraction, values in kls.items():
        print(f"fraction {fraction:g}: median KL of the full step {statistics.median(values):.4f} "
              f"= {statistics.median(values) / config.max_kl:.2f} x max_kl")


if __name__ == "__main__":
    main()
