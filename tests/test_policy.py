import torch
from torch.distributions import Independent, Normal, kl_divergence

from rlmaml.policy import GaussianMLPPolicy, gaussian_kl, gaussian_log_prob, per_task_params


def test_log_prob_is_summed_over_action_dims():
    mean, log_std = torch.randn(2, 5, 3), torch.randn(2, 1, 3)
    actions = torch.randn(2, 5, 3)
    expected = Independent(Normal(mean, log_std.exp()), 1).log_prob(actions)
    torch.testing.assert_close(gaussian_log_prob(mean, log_std, actions), expected)


def test_kl_matches_torch_distributions():
    m0, s0, m1, s1 = torch.randn(4, 6, 2), torch.randn(4, 1, 2), torch.randn(4, 6, 2), torch.randn(4, 1, 2)
    expected = kl_divergence(Independent(Normal(m0, s0.exp()), 1), Independent(Normal(m1, s1.exp()), 1))
    torch.testing.assert_close(gaussian_kl(m0, s0, m1, s1), expected)


def test_per_task_params_equal_shared_params_task_by_task():
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(3, 2, (16, 16), "tanh", init_std=0.5)
    obs = torch.randn(4, 7, 3)
    shared_mean, shared_log_std = policy.distribution(policy.params(), obs)
    task_params = per_task_params(policy.params(), 4)
    assert task_params["weight1"].shape == (4, 16, 16) and task_params["log_std"].shape == (4, 2)
    mean, log_std = policy.distribution(task_params, obs)
    torch.testing.assert_close(mean, shared_mean)
    torch.testing.assert_close(log_std, shared_log_std)
    torch.testing.assert_close(log_std, torch.full((4, 1, 2), 0.5).log())
    # each task's slice of the batched forward equals a plain per-task MLP
    for n in range(4):
        h = obs[n]
        for i in range(policy.num_layers):
            h = h @ task_params[f"weight{i}"][n] + task_params[f"bias{i}"][n]
            h = torch.tanh(h) if i < policy.num_layers - 1 else h
        torch.testing.assert_close(mean[n], h)


def test_obs_shape_mismatch_is_a_value_error_naming_shapes():
    policy = GaussianMLPPolicy(2, 2)
    try:
        policy.distribution(policy.params(), torch.zeros(5, 3))
    except ValueError as error:
        assert "[N, B, 2]" in str(error) and "[5, 3]" in str(error)
    else:
        raise AssertionError("expected ValueError")
