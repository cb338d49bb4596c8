import numpy as np
import pytest
import torch

import rlmaml  # noqa: F401
from rlmaml.policy import GaussianMLPPolicy
from rlmaml.sampling import TaskSampler
from rlmaml.tasks import TaskProtocolError


def _sample(sampler, policy, tasks, seed=0):
    return sampler.sample(policy, policy.params(), tasks, 5, torch.Generator().manual_seed(seed),
                          np.random.default_rng(seed))


def test_native_and_generic_paths_give_the_same_trajectories():
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(2, 2, (16,), init_std=0.5)
    native = TaskSampler("rlmaml/Navigation2D-v0", horizon=30)
    generic = TaskSampler("rlmaml/Navigation2D-v0", horizon=30)
    generic.family.batched_env = None  # force the one-env-per-trajectory path
    tasks = native.sample_tasks(3, np.random.default_rng(1))
    a, b = _sample(native, policy, tasks), _sample(generic, policy, tasks)
    for name in ("observations", "actions", "rewards", "mask", "log_probs"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name))
    assert a.observations.shape == (3, 5, 30, 2) and a.mask.shape == (3, 5, 30)


def test_mask_covers_steps_up_to_and_including_termination():
    policy = GaussianMLPPolicy(2, 2, (4,))
    with torch.no_grad():  # a policy that moves +0.1 in x exactly every step (tiny noise)
        for name, p in policy.named_parameters():
            p.zero_()
        policy.bias1.copy_(torch.tensor([1.0, 0.0]))
        policy.log_std.fill_(-30.0)
    sampler = TaskSampler("rlmaml/Navigation2D-v0", horizon=10)
    batch = _sample(sampler, policy, [{"goal": [0.3, 0.0]}, {"goal": [0.0, 0.45]}])
    # task 0 reaches the goal on its third step; task 1 never does within 10 steps
    assert batch.episode_lengths()[0].tolist() == [3.0] * 5
    assert batch.episode_lengths()[1].tolist() == [10.0] * 5
    np.testing.assert_allclose(batch.rewards[0, 0, :3].numpy(), [-0.2, -0.1, 0.0], atol=1e-5)
    assert float(batch.rewards[0, :, 3:].abs().sum()) == 0.0
    torch.testing.assert_close(batch.episode_returns()[0], torch.full((5,), -0.3), atol=1e-5, rtol=0)


def test_log_probs_are_those_of_the_sampled_actions():
    policy = GaussianMLPPolicy(2, 2, (8,))
    sampler = TaskSampler("rlmaml/Navigation2D-v0", horizon=7)
    batch = _sample(sampler, policy, sampler.sample_tasks(2, np.random.default_rng(0)))
    expected = policy.log_prob(policy.params(), batch.flat("observations"), batch.flat("actions"))
    torch.testing.assert_close(batch.flat("log_probs"), expected.detach())


def test_env_without_task_protocol_is_named():
    with pytest.raises(TaskProtocolError, match="CartPole-v1.*sample_tasks"):
        TaskSampler("CartPole-v1")
