import json

import pytest

from rlmaml.config import (
    PRESETS,
    ConfigError,
    TrainConfig,
    load_config,
    read_config_file,
    resolve,
    save_config,
)
from rlmaml.sampling import TaskSampler


def test_precedence_preset_then_file_then_flags():
    config = resolve("nav-paper", {"num_tasks": 7, "inner_lr": 0.2}, {"inner_lr": 0.3})
    assert config.num_iterations == PRESETS["nav-paper"]["num_iterations"]
    assert config.num_tasks == 7 and config.inner_lr == 0.3


def test_paper_preset_matches_the_paper_navigation_settings():
    config = resolve("nav-paper", {}, {})
    assert (config.num_tasks, config.num_traj, config.hidden_sizes, config.activation,
            config.max_kl, config.num_inner_steps) == (20, 20, (100, 100), "relu", 0.01, 1)
    # the horizon is the env's registered one, so the preset also suits other families
    assert config.horizon is None and TaskSampler(config.env_id).horizon == 100


def test_round_trip_through_json(tmp_path):
    config = resolve(None, {}, {"hidden_sizes": [32, 16], "env_kwargs": {"action_mode": "clip"}})
    save_config(config, tmp_path / "config.json")
    assert load_config(tmp_path / "config.json") == config


def test_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('num_tasks = 4\nhidden_sizes = [10]\n[env_kwargs]\naction_mode = "clip"\n')
    config = resolve(None, read_config_file(path), {})
    assert config.num_tasks == 4 and config.hidden_sizes == (10,) and config.env_kwargs == {"action_mode": "clip"}


@pytest.mark.parametrize("values, message", [
    ({"num_tasks": -1}, "num_tasks must be a positive integer"),
    ({"num_traj": 2.5}, "num_traj must be an integer, got 2.5"),
    ({"seed": None}, "seed must be an integer, got None"),  # a null seed would draw fresh entropy each run
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"seed": True}, "seed must be an integer"),
    ({"snapshot_every": True}, "snapshot_every must be an integer"),
    ({"horizon": True}, "horizon must be an integer or null"),
    ({"num_workers": -1}, "num_workers must be a non-negative integer"),
    ({"hidden_sizes": [True, 3]}, "hidden_sizes must be positive integers"),
    ({"horizon": 0}, "horizon"),
    ({"max_kl": 0}, "max_kl must be positive"),
    ({"hvp_traj_fraction": 1.5}, "hvp_traj_fraction"),
    ({"hvp_task_fraction": 0}, "hvp_task_fraction must be in"),
    ({"activation": "gelu"}, "activation"),
    ({"hidden_sizes": 100}, "hidden_sizes"),
    ({"bogus": 1}, "unknown config field"),
    ({"gamma": "abc"}, "gamma must be a finite number, got 'abc'"),
    ({"inner_lr": True}, "inner_lr must be a finite number"),
    ({"max_kl": float("inf")}, "max_kl must be a finite number"),
    ({"line_search_ratio": [0.5]}, "line_search_ratio must be a finite number"),
    ({"activation": 1}, "activation must be a string"),
    ({"meta_optimizer": "adam"}, "meta_optimizer must be one of trpo, ppo"),
    ({"ppo_epochs": 0}, "ppo_epochs must be a positive integer"),
    ({"ppo_clip": 1.0}, "ppo_clip must be in"),
    ({"meta_lr": 0}, "meta_lr must be positive"),
    ({"inner_kl_penalty": -1e-3}, "inner_kl_penalty must be non-negative"),
    ({"inner_kl_target": 0.0}, "inner_kl_target must be positive"),
    ({"adaptive_inner_kl_penalty": 1}, "adaptive_inner_kl_penalty must be true or false"),
    ({"inner_step_rule": "polyak"}, "inner_step_rule must be one of fixed, return-scaled"),
    ({"inner_target_return": 5.0}, "inner_target_return applies only to inner_step_rule return-scaled"),
    ({"inner_step_rule": "return-scaled", "inner_target_return": float("nan")}, "inner_target_return must be a finite"),
])
def test_bad_values_raise_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        resolve(None, values, {})


def test_malformed_and_missing_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="malformed config file"):
        read_config_file(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_config_file(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match="object/table"):
        read_config_file(tmp_path / "list.json")
    (tmp_path / "latin1.json").write_bytes(b'{"activation": "\xe9"}')
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        read_config_file(tmp_path / "latin1.json")
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"num_tasks": 3}')
    assert read_config_file(tmp_path / "bom.json") == {"num_tasks": 3}
    (tmp_path / "config.cfg").write_text("num_tasks = 3")
    with pytest.raises(ConfigError, match=r"read as JSON, by its name; TOML files end in \.toml"):
        read_config_file(tmp_path / "config.cfg")


def test_inner_lrs_property():
    assert TrainConfig(num_inner_steps=3, inner_lr=0.2).inner_lrs == [0.2, 0.2, 0.2]


@pytest.mark.parametrize("preset", ["ant-vel", "ant-dir", "ant-goal"])
def test_ant_presets_simulate_at_the_papers_control_period(preset):
    pytest.importorskip("mujoco")
    config = resolve(preset, {}, {})
    sampler = TaskSampler(config.env_id, config.horizon, config.env_kwargs, num_workers=0)
    assert sampler.env.unwrapped.dt == pytest.approx(0.02)  # the paper's Ant: 0.02 s per step
    assert TaskSampler(config.env_id, num_workers=0).env.unwrapped.dt == pytest.approx(0.05)  # the env's default
    config.env_kwargs["frame_skip"] = 5  # a config's dict is its own, not the preset's
    assert resolve(preset, {}, {}).env_kwargs == {"frame_skip": 2}
