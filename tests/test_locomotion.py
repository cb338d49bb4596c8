"""MuJoCo locomotion families, their batched envs and the rollout workers."""

import re

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from rlmaml.policy import GaussianMLPPolicy  # noqa: E402
from rlmaml.sampling import TaskSampler  # noqa: E402
from rlmaml.tasks import EnvKwargsError, make_env  # noqa: E402

FAMILIES = ["rlmaml/HalfCheetahVel-v0", "rlmaml/HalfCheetahDir-v0", "rlmaml/AntVel-v0", "rlmaml/AntDir-v0",
            "rlmaml/AntGoal-v0"]


def _trace(env_id, task, seed, steps=30):
    env = gym.make(env_id)
    env.unwrapped.set_task(task)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    trace = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(rng.normal(size=env.action_space.shape) * 1.5)
        trace.append(np.append(obs, [reward, terminated]))
        if terminated or truncated:
            break
    return np.concatenate(trace)


@pytest.mark.parametrize("env_id", FAMILIES)
def test_passes_env_checker_and_is_deterministic_for_a_seed(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == 200
    task = env.unwrapped.sample_tasks(1, np.random.default_rng(0))[0]
    np.testing.assert_array_equal(_trace(env_id, task, 3), _trace(env_id, task, 3))
    assert not np.array_equal(_trace(env_id, task, 3), _trace(env_id, task, 4))


def test_rewards_follow_the_task_specs():
    env = gym.make("rlmaml/HalfCheetahVel-v0")
    env.unwrapped.set_task({"velocity": 1.5})
    env.reset(seed=0)
    action = np.array([2.0, -0.5, 0.3, 0.0, 1.0, -3.0])  # out of the box: clipped to [-1, 1]
    _, reward, _, _, info = env.step(action)
    clipped = np.clip(action, -1, 1)
    assert reward == pytest.approx(-abs(info["x_velocity"] - 1.5) - 0.05 * np.sum(clipped**2))
    ant = gym.make("rlmaml/AntDir-v0")
    ant.unwrapped.set_task({"direction": -1})
    ant.reset(seed=0)
    _, reward, _, _, info = ant.step(np.full(8, 0.5))
    assert reward == pytest.approx(-info["x_velocity"] + info["reward_ctrl"] + info["reward_contact"] + 0.05)
    assert info["reward_survive"] == 0.0
    goal = gym.make("rlmaml/AntGoal-v0")
    goals = np.array([t["goal"] for t in goal.unwrapped.sample_tasks(2000, np.random.default_rng(0))])
    assert np.linalg.norm(goals, axis=1).max() <= 3.0 and goal.observation_space.shape == (107,)


@pytest.mark.parametrize("env_id, env_kwargs", [(env_id, {}) for env_id in FAMILIES]
                         + [("rlmaml/AntVel-v0", {"frame_skip": 2})])
def test_batched_env_equals_the_gymnasium_env_for_the_same_seeds_and_actions(env_id, env_kwargs):
    family = gym.make(env_id, **env_kwargs).unwrapped
    tasks = family.sample_tasks(3, np.random.default_rng(1))
    copies, seeds = 2, [11, 12, 13, 14, 15, 16]
    batched = family.batched_env(tasks, copies)
    singles = [gym.make(env_id, **env_kwargs) for _ in seeds]
    expected = []
    for i, (env, seed) in enumerate(zip(singles, seeds)):
        env.unwrapped.set_task(tasks[i // copies])
        expected.append(env.reset(seed=seed)[0])
    np.testing.assert_allclose(batched.reset(seeds), np.stack(expected), rtol=1e-12)
    rng = np.random.default_rng(0)
    alive = np.ones(len(seeds), dtype=bool)
    ended = []
    for t in range(200):
        actions = rng.normal(size=(len(seeds), family.action_space.shape[0])) * 1.5
        obs, reward, terminated, truncated = batched.step(actions)
        assert not truncated.any()
        for i in np.flatnonzero(alive):
            s_obs, s_reward, s_terminated, _, _ = singles[i].step(actions[i])
            np.testing.assert_allclose(obs[i], s_obs, rtol=1e-10, atol=1e-10)
            assert reward[i] == pytest.approx(s_reward, rel=1e-10, abs=1e-10)
            assert terminated[i] == s_terminated
            if s_terminated:
                alive[i] = False
                ended.append(t)
    if "Cheetah" in env_id:
        assert not ended  # HalfCheetah never terminates
    else:  # random std-1.5 actions end most Ant episodes early: termination is exercised
        assert len(ended) >= 3
        frozen = obs.copy()
        np.testing.assert_array_equal(batched.step(actions)[0][~alive], frozen[~alive])


@pytest.mark.parametrize("env_id", ["rlmaml/HalfCheetahDir-v0", "rlmaml/AntGoal-v0"])
def test_batches_reuse_their_envs_mjdata_and_still_give_the_same_trajectories(env_id):
    family = gym.make(env_id).unwrapped
    tasks = family.sample_tasks(2, np.random.default_rng(1))

    def run(batch, actions_seed):
        rng = np.random.default_rng(actions_seed)
        trace = [batch.reset(list(range(5, 5 + batch.num_envs)))]
        for _ in range(40):
            trace.extend(batch.step(rng.normal(size=(batch.num_envs, family.action_space.shape[0])) * 1.5)[:2])
        return trace

    first = family.batched_env(tasks, 2)
    expected = run(first, 0)
    other = family.batched_env(family.sample_tasks(3, np.random.default_rng(2)), 2)  # more sub-envs, other tasks
    run(other, 1)
    again = family.batched_env(tasks, 2)
    assert all(a is b for a, b in zip(again.datas, first.datas))  # no MjData allocated for a new rollout
    assert len({id(d) for d in other.datas}) == 6 and all(a is b for a, b in zip(other.datas, first.datas))
    for got, want in zip(run(again, 0), expected):
        np.testing.assert_array_equal(got, want)


def _sample(sampler, policy, tasks, params):
    return sampler.sample(policy, params, tasks, 3, torch.Generator().manual_seed(5), np.random.default_rng(6))


def test_rollout_workers_match_in_process_sampling_and_are_reproducible():
    in_process = TaskSampler("rlmaml/HalfCheetahVel-v0", horizon=25, num_workers=0)
    with_workers = TaskSampler("rlmaml/HalfCheetahVel-v0", horizon=25, num_workers=2)
    assert in_process.workers is None and with_workers.workers.num_workers == 2
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(in_process.obs_dim, in_process.act_dim, (16,))
    tasks = in_process.sample_tasks(5, np.random.default_rng(2))
    per_task = {name: p.detach().unsqueeze(0).repeat(5, *[1] * p.dim()) + 0.01 * torch.randn(5, *p.shape)
                for name, p in policy.params().items()}
    try:
        for params in (policy.params(), per_task):
            a, b = _sample(in_process, policy, tasks, params), _sample(with_workers, policy, tasks, params)
            again = _sample(with_workers, policy, tasks, params)
            for field in ("observations", "actions", "rewards", "mask", "log_probs"):
                # same worker count: bitwise the same
                torch.testing.assert_close(getattr(b, field), getattr(again, field), rtol=0, atol=0)
                # same noise, seeds and tasks as in-process; only float rounding of the policy's
                # matrix products differs (other row counts per product), which the chaotic
                # dynamics amplify over time: equal at reset, close for the first steps
                torch.testing.assert_close(getattr(a, field)[:, :, :5], getattr(b, field)[:, :, :5],
                                           rtol=1e-3, atol=1e-3)
            assert torch.equal(a.observations[:, :, 0], b.observations[:, :, 0])
    finally:
        with_workers.close()


@pytest.mark.parametrize("env_id", ["rlmaml/HalfCheetahVel-v0", "rlmaml/AntDir-v0"])
@pytest.mark.parametrize("kwargs, message", [
    ({"frame_skip": 0}, "rejects env_kwargs {'frame_skip': 0}: frame_skip must be a positive integer"),
    ({"frame_skip": -1}, "frame_skip must be a positive integer"),  # Gymnasium would simulate nothing
    ({"frame_skip": 2.5}, "frame_skip must be a positive integer"),
    ({"ctrl_cost_weight": 0.1}, "sets 'ctrl_cost_weight' itself"),
])
def test_bad_env_kwargs_are_one_line_errors(env_id, kwargs, message):
    with pytest.raises(EnvKwargsError, match=re.escape(message)):
        make_env(env_id, **kwargs)
    assert make_env(env_id, frame_skip=2).unwrapped.frame_skip == 2
