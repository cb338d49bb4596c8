"""The MAML training loop over a run folder, with checkpoints and resume."""

from __future__ import annotations

import math
import signal
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, Iterator

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector
from tqdm.auto import tqdm

from rlmaml.adaptation import InnerUpdate, sample_adaptation_batches
from rlmaml.batch import Batch
from rlmaml.budget import batch_bytes, require_memory
from rlmaml.checkpoints import RUN_STATE_KEYS, check_state, load_checkpoint, restore_policy, save_checkpoint
from rlmaml.config import ConfigError, TrainConfig, from_dict, load_config
from rlmaml.distributed import TRAFFIC, Ranks
from rlmaml.errors import UserError
from rlmaml.meta import MetaBatch, MetaLearner
from rlmaml.monitor import RunawayDetector, action_bound_counts, action_bound_share
from rlmaml.policy import GaussianMLPPolicy, make_policy
from rlmaml.ppo import MetaPPO
from rlmaml.runs import (
    RunDir,
    RunError,
    append_metrics,
    json_text,
    lock_run,
    make_output_dir,
    read_metrics,
    remove_stale_temporaries,
    truncate_metrics,
    write_file,
    write_json,
)
from rlmaml.sampling import TaskSampler
from rlmaml.seeding import RandomStreams
from rlmaml.tasks import Task
from rlmaml.tensorboard import MetricsBoard, require_tensorboard
from rlmaml.trpo import MetaTRPO


def make_meta_learner(config: TrainConfig, policy: GaussianMLPPolicy, ranks: Ranks = Ranks()) -> MetaLearner:
    """The outer update ``config.outer.optimizer`` names, for ``policy``, with the run's inner update."""
    inner, outer = InnerUpdate.for_training(config), config.outer
    if outer.optimizer == "ppo":
        return MetaPPO(policy, inner, outer.first_order, outer.ppo, ranks)
    return MetaTRPO(policy, inner, outer.first_order, outer.trpo, ranks)


def sample_meta_batch(config: TrainConfig, sampler: TaskSampler, meta: MetaLearner, tasks: list[Task],
                      streams: RandomStreams, part: slice = slice(None)) -> MetaBatch:
    """Inner-step batches and the post-adaptation batch of ``tasks[part]``, new trajectories after every step."""
    batches, _ = sample_adaptation_batches(sampler, meta.policy, tasks, config.task.num_traj, meta.inner,
                                           config.advantages, streams.policy_noise, streams.env_seeds, part)
    return MetaBatch(batches[:-1], batches[-1])


def on_cpu(value: Any) -> Any:
    """``value`` (tensors, in dicts, lists and tuples at any depth) with every tensor on CPU."""
    if isinstance(value, Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(item) for item in value)
    return value


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM inside the block (in the main thread; elsewhere signals do not reach
    Python code anyway), restoring the handlers after."""
    try:
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


DIVERGED_AFTER = 5
"""Consecutive meta-iterations with a non-finite surrogate loss (so no update) before training stops."""


class TrainingDiverged(UserError, RuntimeError):
    """The surrogate loss stayed non-finite, so training could not take another step."""


class Trainer:
    """Owns one run folder; ``create`` starts a run, ``resume`` continues one from its checkpoint.
    Both hold the folder's lock until :meth:`close`, so no second process trains the same run."""

    def __init__(self, config: TrainConfig, run: RunDir, ranks: Ranks = Ranks()):
        if config.run.tensorboard:
            require_tensorboard()  # before anything is written
        if config.task.num_tasks < ranks.size:
            raise ConfigError(f"{ranks.size} processes need at least as many tasks per meta-batch; task.num_tasks "
                              f"is {config.task.num_tasks}")
        self.device = torch.device(config.run.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("run.device is cuda, but torch finds no CUDA device here; train with --device cpu")
        self.config = config
        self.run = run
        self.ranks = ranks
        self.sampler = TaskSampler.for_config(config)
        task = config.task
        try:
            require_memory(batch_bytes(task.num_tasks, task.num_traj, self.sampler.horizon, len(config.inner_lrs) + 1,
                                       self.sampler.obs_dim, self.sampler.act_dim, config.policy.hidden_sizes),
                           f"training with {task.num_tasks} tasks x {task.num_traj} trajectories x "
                           f"{self.sampler.horizon} steps")
        except ConfigError:
            self.sampler.close()
            raise
        self.streams = RandomStreams.from_seed(config.seed)
        self.policy = make_policy(config.policy, self.sampler.obs_dim, self.sampler.act_dim,
                                  self.streams.policy_init_seed).to(self.device)
        self.meta = make_meta_learner(config, self.policy, ranks)
        self.iteration = 0
        self.best_return = float("-inf")
        self.runaway = RunawayDetector()
        self.non_finite: list[Task] = []  # the tasks the last iteration dropped for non-finite data
        self._lock: IO[bytes] | None = None  # held by create/resume: one writer per run folder

    def close(self) -> None:
        """Stop the sampler's rollout workers, if any, and release the run folder's lock (also on
        leaving a ``with Trainer(...)`` block)."""
        self.sampler.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def create(cls, config: TrainConfig, path: Path, ranks: Ranks = Ranks()) -> "Trainer":
        """Start a new run in ``path`` (which must not already hold a run); with several ranks, rank 0
        writes it."""
        run = RunDir(path)
        trainer = cls(config, run, ranks)  # fails on a bad env id before anything is written
        if not ranks.main:
            return trainer
        with ExitStack() as on_error:
            on_error.callback(trainer.close)
            make_output_dir(path)
            trainer._lock = lock_run(run)
            if run.config.exists():  # checked under the lock: no two processes start one run
                raise RunError(f"{path} already holds a run; resume it with --resume or choose another --run-dir")
            test_tasks = trainer.sampler.sample_tasks(config.task.num_eval_tasks, trainer.streams.test_tasks)
            write_json({"seed": config.seed, "stream": "test_tasks", "tasks": test_tasks}, run.test_tasks)
            write_file(b"", run.metrics)
            trainer._save(trainer._state())
            write_json(config.to_dict(), run.config)  # last: a folder with config.json holds a resumable run
            on_error.pop_all()
        return trainer

    @classmethod
    def resume(cls, path: Path, num_iterations: int | None = None, resume_from: int | None = None,
               ranks: Ranks = Ranks()) -> "Trainer":
        """Continue the run in ``path`` from its last checkpoint (or from the snapshot of iteration
        ``resume_from``), optionally to more iterations. With several ranks, rank 0 reads the run folder
        and sends the others its config and state (the number of ranks may differ from the run's
        earlier ones)."""
        if not ranks.main:
            config_values, state, records = ranks.broadcast(None)
            trainer = cls(from_dict(config_values), RunDir(path), ranks)
            trainer._restore(state, records, Path(path))
            return trainer
        run = RunDir(path)
        run.require("config", *(("checkpoint",) if resume_from is None else ()))
        source = run.checkpoint if resume_from is None else run.snapshot(resume_from)
        if not source.is_file():
            kept = ", ".join(map(str, run.snapshot_iterations())) or "none"
            raise RunError(f"{path} has no snapshot of iteration {resume_from} (it kept: {kept})")
        with ExitStack() as on_error:
            lock = lock_run(run)
            if lock is not None:
                on_error.callback(lock.close)
                remove_stale_temporaries(run)  # left by a write that was killed; only the lock holder writes
            config = load_config(run.config)
            state = load_checkpoint(source)
            if resume_from is not None and "rng" not in state:
                raise RunError(f"{source} holds only the policy (snapshots of earlier releases do), not the "
                               "random streams a resumed run needs; evaluate it with --checkpoint "
                               f"{resume_from}, or branch from the run's checkpoint.pt")
            state = check_state(state, RUN_STATE_KEYS, source)
            if num_iterations is not None:
                if num_iterations < state["iteration"]:
                    raise RunError(f"{path} has already trained {state['iteration']} iterations; "
                                   f"--num-iterations must be at least that")
                config = config.with_values({"num_iterations": num_iterations})
            trainer = cls(config, run, ranks)
            on_error.callback(trainer.sampler.close)
            trainer._restore(state, [], source)
            if num_iterations is not None:
                write_json(config.to_dict(), run.config)
            truncate_metrics(run.metrics, trainer.iteration)
            records = read_metrics(run.metrics)
            for record in records:  # the detector continues where the run stopped
                trainer.runaway.update(record)
            trainer._lock = lock
            on_error.pop_all()
        ranks.broadcast((config.to_dict(), state, records))
        return trainer

    def _restore(self, state: dict[str, Any], records: list[dict[str, Any]], source: Path) -> None:
        """Take the policy, random streams, outer optimiser and progress of a checked checkpoint
        ``state``, and feed the run-away detector the run's earlier ``records``."""
        restore_policy(self.policy, state, source)
        try:
            self.streams.load_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError):
            raise RunError(f"{source} holds random-stream states that cannot be restored; the file was "
                           "changed or damaged") from None
        self.meta.load_state_dict(state.get("meta_optimizer", {}))  # absent before PPO existed
        self.iteration = state["iteration"]
        self.best_return = state["best_return"]
        for record in records:
            self.runaway.update(record)

    def _state(self) -> dict[str, Any]:
        """What a checkpoint holds, its tensors copied to CPU (a run moves between devices)."""
        return {"iteration": self.iteration, "best_return": self.best_return, "policy": self._policy_state(),
                "rng": self.streams.state(), "meta_optimizer": on_cpu(self.meta.state_dict())}

    def _policy_state(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.policy.state_dict().items()}

    def _save(self, state: dict[str, Any]) -> None:
        if self.ranks.main:
            save_checkpoint(state, self.run.checkpoint)

    def _over_ranks(self, numerator: Tensor, denominator: Tensor) -> float:
        """``numerator / denominator`` (scalars), each summed over ranks first (0 if nothing is counted)."""
        total = self.ranks.sum(torch.stack([numerator.double(), denominator.double()]))
        return float(total[0] / total[1].clamp_min(1.0))

    def _mean(self, values: Tensor) -> float:
        """The mean of ``values`` (any shape, this rank's tasks first) over every rank's entries."""
        if self.ranks.size == 1:
            return float(values.mean())
        return self._over_ranks(values.sum(), torch.tensor(float(values.numel())))

    def _bound_share(self, batch: Batch) -> float:
        """The share of pre-update action components at the action bounds, over every rank's steps."""
        low, high = self.sampler.envs.action_low, self.sampler.envs.action_high
        if self.ranks.size == 1:
            return action_bound_share(batch, low, high)
        return self._over_ranks(*action_bound_counts(batch, low, high))

    def _diverged_message(self) -> str:
        if len(self.non_finite) == self.config.task.num_tasks:
            return (f"no task's rewards and observations were finite in the last {DIVERGED_AFTER} meta-iterations, "
                    f"so no update could be taken: check the env {self.config.task.env_id} "
                    "(`rlmaml check-env`)")
        cause = (f"With MAML that usually means the inner step diverges: lower inner.lr (now {self.config.inner.lr:g}) "
                 "in a new run. " if self.config.method == "maml" else "")
        return (f"the surrogate loss was not finite in the last {DIVERGED_AFTER} meta-iterations, so no update "
                f"could be taken. {cause}Check too that the env's rewards and observations are finite.")

    def train_iteration(self) -> dict[str, Any]:
        """Sample, update once, and return this iteration's metrics."""
        start = time.perf_counter()
        traffic = (TRAFFIC.calls, TRAFFIC.bytes)
        tasks = self.sampler.sample_tasks(self.config.task.num_tasks, self.streams.train_tasks)
        part = self.ranks.share(len(tasks))
        meta_batch = sample_meta_batch(self.config, self.sampler, self.meta, tasks, self.streams, part)
        sampled = time.perf_counter()
        finite = meta_batch.finite_tasks()
        dropped = [task for task, ok in zip(tasks[part], finite.tolist()) if not ok]
        if dropped:  # dropped from this meta-batch: one broken task must not stop every update
            meta_batch = meta_batch.tasks(finite.nonzero().flatten())
        if self.ranks.size == 1:
            self.non_finite = dropped
        else:  # every rank's share: where its tasks start among the kept ones, and how many are kept
            shares = self.ranks.gather((dropped, meta_batch.valid.num_tasks))
            self.non_finite = [task for share_dropped, _ in shares for task in share_dropped]
            kept = [count for _, count in shares]
            meta_batch = replace(meta_batch, first=sum(kept[:self.ranks.rank]), total=sum(kept))
        before_update = self._policy_state()
        if meta_batch.num_tasks:
            stats = self.meta.step(meta_batch.to(self.device))
        else:  # no task left: no update; counts toward stopping as a non-finite loss does
            stats = {"loss_before": math.nan, "loss_after": math.nan, "kl": 0.0, "step_accepted": 0.0}
        done = time.perf_counter()
        before, after = (meta_batch.train or [meta_batch.valid])[0], meta_batch.valid  # baselines: no inner step
        record = {
            "iteration": self.iteration,
            "pre_return": self._mean(before.episode_returns()),
            "post_return": self._mean(after.episode_returns()),
            "pre_length": self._mean(before.episode_lengths()),
            "post_length": self._mean(after.episode_lengths()),
            "non_finite_tasks": len(self.non_finite),
            "pre_action_bound_share": self._bound_share(before),
            **({} if before.success is None or after.success is None else {
                "pre_success": self._mean(before.success), "post_success": self._mean(after.success)}),
            **stats,
            "time_sampling": sampled - start,
            "time_update": done - sampled,
            "time_total": done - start,
        }
        record["runaway"] = float(self.runaway.update(record)) if self.config.inner_lrs else 0.0
        if record["post_return"] > self.best_return:
            self.best_return = record["post_return"]
            if self.ranks.main:
                save_checkpoint({"iteration": self.iteration, "post_return": self.best_return,
                                 "policy": before_update}, self.run.best_checkpoint)
        self.ranks.require_identical(parameters_to_vector(self.policy.parameters()), "policy parameters")
        if self.ranks.size > 1:
            record.update(ranks=self.ranks.size, allreduce_calls=TRAFFIC.calls - traffic[0],
                          allreduce_bytes=TRAFFIC.bytes - traffic[1])
        return record

    def train(self, progress: bool = True) -> None:
        """Run until ``num_iterations`` (none for ``random``); Ctrl-C writes a checkpoint of the last
        finished iteration."""
        last_state = self._state()
        main = self.ranks.main
        bar = tqdm(total=self.config.trained_iterations, initial=self.iteration, disable=not (progress and main),
                   desc="meta-training" if self.config.method == "maml" else f"training ({self.config.method})",
                   unit="it")
        board = MetricsBoard(self.run, self.iteration) if self.config.run.tensorboard and main else None
        non_finite = 0
        warned = False
        try:
            while self.iteration < self.config.trained_iterations:
                record = self.train_iteration()
                non_finite = 0 if math.isfinite(record["loss_before"]) else non_finite + 1
                if non_finite == DIVERGED_AFTER:
                    raise TrainingDiverged(self._diverged_message())
                if main:
                    append_metrics(record, self.run.metrics)
                if self.non_finite and main:
                    shown = ", ".join(json_text(task) for task in self.non_finite[:3])
                    bar.write(f"rlmaml: warning: iteration {record['iteration']}: dropped {len(self.non_finite)} of "
                              f"{self.config.task.num_tasks} tasks whose rewards or observations were not finite "
                              f"({shown}{', ...' if len(self.non_finite) > 3 else ''})", file=sys.stderr)
                if record["runaway"] and not warned and main:
                    warned = True
                    bar.write(f"rlmaml: warning: iteration {record['iteration']}: the pre-update return fell to "
                              f"{record['pre_return']:.1f} while the adapted return holds: the pre-update policy "
                              "is running away (docs/algorithms.md, Watching for a run-away)", file=sys.stderr)
                if board is not None:
                    board.log(record)
                self.iteration += 1
                last_state = self._state()
                if self.iteration % self.config.run.checkpoint_every == 0:
                    self._save(last_state)
                if main and self.config.run.snapshot_every and self.iteration % self.config.run.snapshot_every == 0:
                    snapshot = self.run.snapshot(self.iteration)
                    snapshot.parent.mkdir(exist_ok=True)
                    save_checkpoint(last_state, snapshot)  # the whole state: --resume-from can continue from it
                bar.set_postfix(pre=f"{record['pre_return']:.1f}", post=f"{record['post_return']:.1f}",
                                kl=f"{record['kl']:.4f}")
                bar.update()
        except KeyboardInterrupt:
            with interrupts_deferred():  # a second Ctrl-C must not cut the checkpoint write short
                self._save(last_state)
            raise
        finally:
            bar.close()
            if board is not None:
                board.close()
        self._save(last_state)
