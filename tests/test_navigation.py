import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlmaml  # noqa: F401
from rlmaml.envs.navigation import Navigation2DBatchedEnv, Navigation2DEnv


@pytest.mark.parametrize("action_mode", ["rescale", "clip"])
def test_passes_gymnasium_env_checker(action_mode):
    env = gym.make("rlmaml/Navigation2D-v0", action_mode=action_mode)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == 100


def test_task_sampling_uses_only_the_given_generator():
    env = Navigation2DEnv()
    np.random.seed(123)
    a = env.sample_tasks(5, np.random.default_rng(7))
    np.random.seed(999)
    b = env.sample_tasks(5, np.random.default_rng(7))
    assert a == b
    goals = np.array([t["goal"] for t in env.sample_tasks(2000, np.random.default_rng(0))])
    assert goals.min() >= -0.5 and goals.max() <= 0.5 and abs(goals.mean()) < 0.02


def test_dynamics_reward_and_termination_follow_the_spec():
    env = Navigation2DEnv(action_mode="clip", task={"goal": [0.25, -0.05]})
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and np.array_equal(obs, [0.0, 0.0])
    obs, reward, terminated, truncated, _ = env.step(np.array([0.5, -0.05]))  # x clipped to 0.1
    np.testing.assert_allclose(obs, [0.1, -0.05], rtol=1e-6)
    assert reward == pytest.approx(-0.15) and not terminated and not truncated
    env.step(np.array([0.1, 0.0]))
    _, reward, terminated, _, _ = env.step(np.array([0.0455, 0.0]))
    assert terminated and reward == pytest.approx(-0.0045, abs=1e-9)


def test_rescale_mode_maps_unit_box_to_max_move():
    env = Navigation2DEnv(action_mode="rescale", task={"goal": [0.4, 0.4]})
    env.reset()
    obs, *_ = env.step(np.array([3.0, -0.5]))
    np.testing.assert_allclose(obs, [0.1, -0.05], rtol=1e-6)


def test_truncates_at_horizon_and_same_seed_is_deterministic():
    def rollout(seed):
        env = gym.make("rlmaml/Navigation2D-v0")
        env.unwrapped.set_task({"goal": [0.45, 0.45]})
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        for t in range(100):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            trace.append((obs, reward))
            if terminated or truncated:
                break
        return trace, t, truncated

    first, steps, truncated = rollout(3)
    second, _, _ = rollout(3)
    assert steps == 99 and truncated
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first[1:], second[1:]))


def test_batched_env_equals_single_envs():
    rng = np.random.default_rng(0)
    tasks = Navigation2DEnv().sample_tasks(3, rng)
    batched = Navigation2DEnv().batched_env(tasks, copies=2)
    singles = [Navigation2DEnv(task=tasks[i // 2]) for i in range(6)]
    obs = batched.reset(seeds=range(6))
    assert np.array_equal(obs, np.stack([env.reset()[0] for env in singles]))
    for _ in range(20):
        actions = rng.normal(size=(6, 2))
        obs, reward, terminated, _ = batched.step(actions)
        for i, env in enumerate(singles):
            o, r, term, _, _ = env.step(actions[i])
            np.testing.assert_allclose(obs[i], o)
            assert reward[i] == pytest.approx(r) and terminated[i] == term


def test_batched_env_rejects_bad_goal_shape():
    with pytest.raises(ValueError, match=r"\[E, 2\]"):
        Navigation2DBatchedEnv(np.zeros((3, 3)))
