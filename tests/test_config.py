import dataclasses
import json

import pytest

from rlmaml.config import (
    FLAT_NAMES,
    LEAVES,
    PRESETS,
    SECTIONS,
    ConfigError,
    InnerConfig,
    TrainConfig,
    field_docs,
    from_dict,
    load_config,
    read_config_file,
    resolve,
)
from rlmaml.runs import write_json
from rlmaml.sampling import TaskSampler

from conftest import REPO_ROOT, config_of


def test_precedence_preset_then_file_then_overrides():
    config = resolve("nav-paper", {"task.num_tasks": 7, "inner_lr": 0.2}, {"inner.lr": 0.3})
    assert config.num_iterations == PRESETS["nav-paper"]["num_iterations"]
    assert config.task.num_tasks == 7 and config.inner.lr == 0.3


def test_paper_preset_matches_the_paper_navigation_settings():
    config = resolve("nav-paper")
    assert (config.task.num_tasks, config.task.num_traj, config.policy.hidden_sizes, config.policy.activation,
            config.outer.trpo.max_kl, config.inner.num_steps) == (20, 20, (100, 100), "relu", 0.01, 1)
    # the horizon is the env's registered one, so the preset also suits other families
    assert config.task.horizon is None and TaskSampler(config.task.env_id).horizon == 100


def test_sections_keep_the_top_level_short_and_every_field_documented():
    top = [f.name for f in dataclasses.fields(TrainConfig)]
    assert top == ["method", "seed", "num_iterations", "task", "policy", "advantages", "inner", "outer", "run"]
    assert len(LEAVES) == 41 and len(FLAT_NAMES) == len(LEAVES)  # one flat name (flag) per field
    for path, leaf in LEAVES.items():
        assert leaf.doc, f"{path} has no docstring"
    for path, section in SECTIONS:
        assert section.__doc__ and set(field_docs(section)) <= {f.name for f in dataclasses.fields(section)}


def test_round_trip_through_json_in_sections(tmp_path):
    config = resolve(None, {}, {"hidden_sizes": [32, 16], "env_kwargs": {"action_mode": "clip"}})
    write_json(config.to_dict(), tmp_path / "config.json")
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["policy"]["hidden_sizes"] == [32, 16] and stored["outer"]["trpo"]["max_kl"] == 0.01
    assert load_config(tmp_path / "config.json") == config


def test_flat_config_files_of_earlier_releases_are_migrated(tmp_path):
    """A config.json written before sections existed (every field at the top, under its flat name)."""
    flat = json.loads((REPO_ROOT / "tests" / "data" / "flat-config-run" / "config.json").read_text())
    assert "inner_lr" in flat and "inner" not in flat
    config = from_dict(flat)
    assert (config.inner.lr, config.outer.trpo.hvp_traj_fraction, config.task.num_tasks) == (0.1, 0.2, 3)
    assert config.policy.hidden_sizes == (8, 8) and config.run.snapshot_every == 1
    assert from_dict(config.to_dict()) == config
    mixed = from_dict({"inner_lr": 0.3, "outer": {"trpo": {"max_kl": 0.02}}})  # a hand-edited mix is fine too
    assert (mixed.inner.lr, mixed.outer.trpo.max_kl) == (0.3, 0.02)


def test_toml_file_with_sections_and_flat_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('num_tasks = 4\n[policy]\nhidden_sizes = [10]\n[task.env_kwargs]\naction_mode = "clip"\n'
                    '[outer.trpo]\nmax_kl = 0.03\n')
    config = resolve(None, read_config_file(path))
    assert config.task.num_tasks == 4 and config.policy.hidden_sizes == (10,)
    assert config.task.env_kwargs == {"action_mode": "clip"} and config.outer.trpo.max_kl == 0.03


@pytest.mark.parametrize("values, message", [
    ({"num_tasks": -1}, "task.num_tasks must be a positive integer"),
    ({"num_traj": 2.5}, "task.num_traj must be an integer, got 2.5"),
    ({"seed": None}, "seed must be an integer, got None"),  # a null seed would draw fresh entropy each run
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"seed": True}, "seed must be an integer"),
    ({"snapshot_every": True}, "run.snapshot_every must be an integer"),
    ({"horizon": True}, "task.horizon must be an integer or null"),
    ({"num_workers": -1}, "run.num_workers must be a non-negative integer"),
    ({"hidden_sizes": [True, 3]}, "policy.hidden_sizes must be a list of positive integers"),
    ({"horizon": 0}, "task.horizon must be a positive integer"),
    ({"max_kl": 0}, "outer.trpo.max_kl must be positive"),
    ({"hvp_traj_fraction": 1.5}, r"outer.trpo.hvp_traj_fraction must be in \(0, 1\]"),
    ({"hvp_task_fraction": 0}, "hvp_task_fraction must be in"),
    ({"activation": "gelu"}, "policy.activation must be one of relu, tanh"),
    ({"hidden_sizes": 100}, "hidden_sizes"),
    ({"bogus": 1}, "unknown config field 'bogus'"),
    ({"gamma": "abc"}, "advantages.gamma must be a finite number, got 'abc'"),
    ({"gamma": 1.5}, r"advantages.gamma must be in \[0, 1\]"),
    ({"inner_lr": True}, "inner.lr must be a finite number"),
    ({"max_kl": float("inf")}, "max_kl must be a finite number"),
    ({"line_search_ratio": [0.5]}, "line_search_ratio must be a finite number"),
    ({"activation": 1}, "activation must be one of"),
    ({"meta_optimizer": "adam"}, "outer.optimizer must be one of trpo, ppo"),
    ({"ppo_epochs": 0}, "outer.ppo.epochs must be a positive integer"),
    ({"ppo_clip": 1.0}, "outer.ppo.clip must be in"),
    ({"meta_lr": 0}, "outer.ppo.lr must be positive"),
    ({"inner_kl_penalty": -1e-3}, "inner_kl_penalty must be non-negative"),
    ({"inner_kl_target": 0.0}, "inner_kl_target must be positive"),
    ({"adaptive_inner_kl_penalty": 1}, "adaptive_inner_kl_penalty must be true or false"),
    ({"inner_step_rule": "polyak"}, "inner.step_rule must be one of fixed, return-scaled"),
    ({"inner_target_return": 5.0}, "inner.target_return applies only to inner.step_rule return-scaled"),
    ({"inner_step_rule": "return-scaled", "inner_target_return": float("nan")}, "inner.target_return must be a finite"),
    ({"env_kwargs": [1]}, "task.env_kwargs must be a table/object"),
])
def test_bad_values_raise_config_errors_naming_the_field(values, message):
    with pytest.raises(ConfigError, match=message):
        resolve(None, values)


@pytest.mark.parametrize("values, message", [
    ({"inner": {"lrr": 0.1}}, r"unknown config field 'inner.lrr' in .*f.json \(did you mean 'inner.lr'\?\)"),
    ({"outer": {"trpo": {"max_k": 0.1}}}, r"'outer.trpo.max_k' .*did you mean 'outer.trpo.max_kl'"),
    ({"inner": 0.1}, "inner in .*f.json must be a table/object of fields"),
    ({"ouer": {}}, r"did you mean 'outer'"),
])
def test_misspelt_nested_fields_name_the_closest(tmp_path, values, message):
    path = tmp_path / "f.json"
    path.write_text(json.dumps(values))
    with pytest.raises(ConfigError, match=message):
        read_config_file(path)


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
    assert read_config_file(tmp_path / "bom.json") == {"task.num_tasks": 3}
    (tmp_path / "config.cfg").write_text("num_tasks = 3")
    with pytest.raises(ConfigError, match=r"read as JSON, by its name; TOML files end in \.toml"):
        read_config_file(tmp_path / "config.cfg")


def test_inner_lrs_and_with_values():
    config = config_of(num_inner_steps=3, inner_lr=0.2)
    assert config.inner_lrs == (0.2, 0.2, 0.2)
    assert config.with_values({"method": "pretrained"}).inner_lrs == ()
    changed = config.with_values({"inner.lr": 0.5, "max_kl": 0.02})
    assert (changed.inner, changed.outer.trpo.max_kl) == (InnerConfig(num_steps=3, lr=0.5), 0.02)
    assert config.inner.lr == 0.2  # frozen: the original is unchanged


@pytest.mark.parametrize("preset", ["ant-vel", "ant-dir", "ant-goal"])
def test_ant_presets_simulate_at_the_papers_control_period(preset):
    pytest.importorskip("mujoco")
    config = resolve(preset)
    task = config.task
    sampler = TaskSampler(task.env_id, task.horizon, task.env_kwargs, num_workers=0)
    assert sampler.envs.env.unwrapped.dt == pytest.approx(0.02)  # the paper's Ant: 0.02 s per step
    assert TaskSampler(task.env_id, num_workers=0).envs.env.unwrapped.dt == pytest.approx(0.05)  # the env's default
    task.env_kwargs["frame_skip"] = 5  # a config's dict is its own, not the preset's
    assert resolve(preset).task.env_kwargs == {"frame_skip": 2}
