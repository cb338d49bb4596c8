"""Independent random streams spawned from one root seed (numpy SeedSequence.spawn)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

STREAMS = ("policy_init", "train_tasks", "test_tasks", "env_seeds", "policy_noise")


@dataclass
class RandomStreams:
    """The generators a run draws from; each stream is independent of the others."""

    policy_init_seed: int
    train_tasks: np.random.Generator
    test_tasks: np.random.Generator
    env_seeds: np.random.Generator
    policy_noise: torch.Generator

    @classmethod
    def from_seed(cls, seed: int) -> "RandomStreams":
        children = dict(zip(STREAMS, np.random.SeedSequence(seed).spawn(len(STREAMS))))
        return cls(
            policy_init_seed=_int_seed(children["policy_init"]),
            train_tasks=np.random.default_rng(children["train_tasks"]),
            test_tasks=np.random.default_rng(children["test_tasks"]),
            env_seeds=np.random.default_rng(children["env_seeds"]),
            policy_noise=torch.Generator().manual_seed(_int_seed(children["policy_noise"])),
        )

    def state(self) -> dict:
        """Checkpointable state of the streams that advance during training."""
        return {"train_tasks": self.train_tasks.bit_generator.state,
                "env_seeds": self.env_seeds.bit_generator.state,
                "policy_noise": self.policy_noise.get_state()}

    def load_state(self, state: dict) -> None:
        self.train_tasks.bit_generator.state = state["train_tasks"]
        self.env_seeds.bit_generator.state = state["env_seeds"]
        self.policy_noise.set_state(state["policy_noise"])


EVALUATION_SALT = 0x6576616C  # "eval": keeps evaluation noise apart from every training stream


def evaluation_streams(seed: int) -> tuple[torch.Generator, np.random.Generator]:
    """Policy-noise and env-seed generators for evaluating with ``seed``."""
    noise_seq, env_seq = np.random.SeedSequence([seed, EVALUATION_SALT]).spawn(2)
    return torch.Generator().manual_seed(_int_seed(noise_seq)), np.random.default_rng(env_seq)


VALIDATION_SALT = 0x76616C69  # "vali": validation tasks, apart from training and test tasks


def validation_task_rng(seed: int) -> np.random.Generator:
    """Generator for validation tasks of a run with root ``seed`` (for choosing evaluation settings
    without looking at the recorded test tasks)."""
    return np.random.default_rng(np.random.SeedSequence([seed, VALIDATION_SALT]))


def _int_seed(sequence: np.random.SeedSequence) -> int:
    """A 63-bit integer seed (for torch) drawn from a SeedSequence."""
    return int(sequence.generate_state(1, np.uint64)[0] >> 1)
