import math

import pytest
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from rlmaml.branches import branch_run
from rlmaml.meta import MetaBatch
from rlmaml.policy import gaussian_kl, gaussian_log_prob
from rlmaml.ppo import MetaPPO, clipped_surrogate_loss
from rlmaml.runs import read_metrics
from rlmaml.trainer import Trainer

from conftest import config_of, inner_update, make_batch
from test_trainer import TINY, _without_timing


def _meta_batch(seed=0, num_tasks=3):
    policy, train = make_batch(num_tasks=num_tasks, num_traj=4, horizon=10, hidden_sizes=(6,), seed=seed)
    _, valid = make_batch(num_tasks=num_tasks, num_traj=4, horizon=10, hidden_sizes=(6,), seed=seed + 10)
    return policy, MetaBatch([train], valid)


def _meta_ppo(policy, **changes):
    return MetaPPO(policy, inner_update([0.5]), first_order=False, settings=config_of(**changes).outer.ppo)


@torch.no_grad()
def _reference_clipped_loss(mean, log_std, old, valid, clip):
    """Minus the clipped surrogate, one step at a time: per task the mean over valid steps, then over tasks."""
    actions, mask, advantages = valid.flat("actions"), valid.flat("mask"), valid.flat("advantages")
    per_task = []
    for n in range(mask.shape[0]):
        total, count = 0.0, 0.0
        for i in range(mask.shape[1]):
            if mask[n, i] == 0:
                continue
            ratio = math.exp(float(gaussian_log_prob(mean[n, i], log_std[n, 0], actions[n, i])
                                   - gaussian_log_prob(old[0][n, i], old[1][n, 0], actions[n, i])))
            a = float(advantages[n, i])
            total += min(ratio * a, min(max(ratio, 1 - clip), 1 + clip) * a)
            count += 1
        per_task.append(total / count)
    return -sum(per_task) / len(per_task)


def test_clipped_surrogate_matches_a_step_by_step_reference():
    policy, meta_batch = _meta_batch()
    valid = meta_batch.valid
    meta = _meta_ppo(policy)
    with torch.no_grad():
        old = meta.distribution(policy.params(), meta_batch, create_graph=False)
        gen = torch.Generator().manual_seed(3)
        mean = old[0] + 0.3 * torch.randn(old[0].shape, generator=gen, dtype=old[0].dtype)  # some ratios clip
        log_std = old[1] - 0.1
    loss, clip_fraction = (value.mean() for value in clipped_surrogate_loss(mean, log_std, old, valid, clip=0.2))
    assert loss.item() == pytest.approx(_reference_clipped_loss(mean, log_std, old, valid, 0.2), rel=1e-10)
    assert 0.05 < float(clip_fraction) < 0.95
    # at the old distribution nothing clips and the loss is minus the mean advantage
    loss, clip_fraction = (value.mean() for value in clipped_surrogate_loss(*old, old, valid, clip=0.2))
    mask = valid.flat("mask")
    expected = -((valid.flat("advantages") * mask).sum(1) / mask.sum(1)).mean()
    torch.testing.assert_close(loss, expected)
    assert float(clip_fraction) == 0.0


def test_meta_objective_gradient_matches_finite_differences_through_the_inner_step():
    policy, meta_batch = _meta_batch(seed=2)
    meta = _meta_ppo(policy, ppo_clip=0.2, inner_kl_penalty=0.7)
    old, old_pre = meta.old_distributions(meta_batch)
    theta = parameters_to_vector(policy.parameters()).detach().clone()
    gen = torch.Generator().manual_seed(4)
    moved = theta + 0.05 * torch.randn(theta.shape, generator=gen, dtype=theta.dtype)  # off the old point
    vector_to_parameters(moved, policy.parameters())
    loss, parts = meta.objective(meta_batch, old, old_pre)
    assert parts["inner_kl"].item() > 0 and parts["clip_fraction"].item() > 0  # every term is exercised
    gradient = parameters_to_vector(torch.autograd.grad(loss, list(policy.parameters())))

    def value(vector):
        vector_to_parameters(vector, policy.parameters())
        with torch.no_grad():
            return float(meta.objective(meta_batch, old, old_pre, create_graph=False)[0])

    v = torch.randn(theta.shape, generator=gen, dtype=theta.dtype)
    eps = 1e-6
    numeric = (value(moved + eps * v) - value(moved - eps * v)) / (2 * eps)
    assert float(gradient @ v) == pytest.approx(numeric, rel=1e-5)
    # the meta-gradient runs through the inner step: without it the directional derivative differs
    meta.first_order = True
    vector_to_parameters(moved, policy.parameters())
    first_order = parameters_to_vector(torch.autograd.grad(meta.objective(meta_batch, old, old_pre)[0],
                                                           list(policy.parameters())))
    assert abs(float(first_order @ v) - numeric) > 1e-3 * abs(numeric)


def test_inner_kl_penalty_is_the_pre_update_policys_kl():
    policy, meta_batch = _meta_batch(seed=1)
    meta = _meta_ppo(policy, inner_kl_penalty=2.0)
    old, old_pre = meta.old_distributions(meta_batch)
    loss, parts = meta.objective(meta_batch, old, old_pre)
    assert parts["inner_kl"].item() == 0.0 and parts["kl"].item() == pytest.approx(0.0, abs=1e-12)
    with torch.no_grad():
        policy.bias0.add_(0.1)
        policy.log_std.sub_(0.2)
    loss, parts = meta.objective(meta_batch, old, old_pre, create_graph=False)
    pre = meta_batch.train[0]
    mean, log_std = policy.distribution(policy.params(), pre.flat("observations"))
    mask = pre.flat("mask")
    expected = ((gaussian_kl(*old_pre, mean, log_std) * mask).sum(1) / mask.sum(1)).mean()
    torch.testing.assert_close(parts["inner_kl"], expected)
    torch.testing.assert_close(loss, parts["surrogate"] + 2.0 * expected)


def test_a_step_improves_the_surrogate_and_a_large_penalty_keeps_the_pre_update_policy_closer():
    inner_kls = []
    for penalty in (0.0, 50.0):
        policy, meta_batch = _meta_batch(seed=6)
        meta = _meta_ppo(policy, meta_lr=3e-3, ppo_epochs=5, inner_kl_penalty=penalty)
        before = parameters_to_vector(policy.parameters()).detach().clone()
        stats = meta.step(meta_batch)
        assert stats["step_accepted"] == 1.0 and stats["loss_after"] < stats["loss_before"]
        assert stats["kl"] > 0 and not torch.equal(before, parameters_to_vector(policy.parameters()))
        inner_kls.append(stats["inner_kl"])
    assert inner_kls[1] < 0.5 * inner_kls[0]


def test_a_non_finite_loss_restores_the_parameters():
    policy, meta_batch = _meta_batch(seed=7)
    meta = _meta_ppo(policy)
    before = parameters_to_vector(policy.parameters()).detach().clone()
    valid = meta_batch.valid
    broken = valid.replace(advantages=torch.full_like(valid.advantages, float("nan")))
    stats = meta.step(MetaBatch(meta_batch.train, broken))
    assert math.isnan(stats["loss_before"]) and stats["step_accepted"] == 0.0
    assert torch.equal(before, parameters_to_vector(policy.parameters()))


def test_the_adaptive_rule_halves_below_and_doubles_above_the_target_band():
    policy, _ = _meta_batch()
    meta = _meta_ppo(policy, adaptive_inner_kl_penalty=True, inner_kl_target=0.03, inner_kl_penalty=1.0)
    for inner_kl, weight in [(0.021, 1.0), (0.019, 0.5), (0.044, 0.5), (0.046, 1.0), (0.0, 0.5), (10.0, 1.0)]:
        meta.adapt_inner_kl_weight(inner_kl)
        assert meta.inner_kl_weight == weight


@pytest.mark.parametrize("adaptive, target, after", [(False, 1e-9, 0.4), (True, 1e3, 0.2), (True, 1e-9, 0.8)])
def test_a_step_logs_the_weight_it_used_and_then_adapts_it(adaptive, target, after):
    policy, meta_batch = _meta_batch(seed=6)
    meta = _meta_ppo(policy, inner_kl_penalty=0.4, adaptive_inner_kl_penalty=adaptive, inner_kl_target=target)
    stats = meta.step(meta_batch)
    assert stats["inner_kl_penalty"] == 0.4 and stats["inner_kl"] > 0
    assert meta.inner_kl_weight == after


def test_adam_state_saved_before_the_adaptive_penalty_still_loads():
    policy, meta_batch = _meta_batch(seed=5)
    meta = _meta_ppo(policy)
    meta.step(meta_batch)
    adam_only = meta.state_dict()["adam"]  # what checkpoints held before the weight was saved
    fresh = _meta_ppo(policy, adaptive_inner_kl_penalty=True, inner_kl_penalty=0.3)
    fresh.load_state_dict(adam_only)
    assert fresh.optimizer.state_dict()["state"] and fresh.inner_kl_weight == 0.3


@pytest.mark.parametrize("method, changes", [("maml", {}), ("pretrained", {}),
                                             ("maml", {"adaptive_inner_kl_penalty": True, "inner_kl_target": 1e-9})])
def test_ppo_training_resumes_with_identical_metrics_because_checkpoints_keep_adams_state(tmp_path, method, changes):
    config = config_of(**{**TINY, "meta_optimizer": "ppo", "method": method, **changes})
    with Trainer.create(config, tmp_path / "reference") as reference:
        reference.train(progress=False)
    with Trainer.create(config.with_values({"num_iterations": 2}), tmp_path / "resumed") as first_half:
        first_half.train(progress=False)
    with Trainer.resume(tmp_path / "resumed", num_iterations=4) as resumed:
        assert resumed.meta.optimizer.state_dict()["state"]  # Adam's moments came back
        resumed.train(progress=False)
    records = _without_timing(read_metrics(tmp_path / "resumed" / "metrics.jsonl"))
    assert records == _without_timing(read_metrics(tmp_path / "reference" / "metrics.jsonl"))
    assert all(r["step_accepted"] == 1.0 and r["kl"] > 0 for r in records)
    if changes:  # the weight doubled every iteration, the resumed run's included
        assert [r["inner_kl_penalty"] for r in records] == [5e-4 * 2 ** i for i in range(4)]


def test_a_trpo_run_branches_into_ppo(tmp_path):
    with Trainer.create(config_of(**{**TINY, "num_iterations": 2}), tmp_path / "trpo") as source:
        source.train(progress=False)
    iteration, changed = branch_run(tmp_path / "trpo", tmp_path / "ppo", {"meta_optimizer": "ppo", "num_iterations": 4})
    assert iteration == 2 and changed["outer.optimizer"] == ["trpo", "ppo"]
    with Trainer.resume(tmp_path / "ppo") as branch:
        assert isinstance(branch.meta, MetaPPO) and not branch.meta.optimizer.state_dict()["state"]  # fresh Adam
        branch.train(progress=False)
    records = read_metrics(tmp_path / "ppo" / "metrics.jsonl")
    assert ["line_search_steps" in r for r in records] == [True, True, False, False]
    assert ["clip_fraction" in r for r in records] == [False, False, True, True]
