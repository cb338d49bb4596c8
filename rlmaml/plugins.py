"""Task families from installed packages, through the entry-point group ``rlmaml.envs``.

A package declares in its ``pyproject.toml``::

    [project.entry-points."rlmaml.envs"]
    my_tasks = "my_pkg.envs:FAMILIES"

where ``FAMILIES`` (or a function returning it) maps Gymnasium ids to their registration::

    FAMILIES = {"my_pkg/MyTask-v0": {"entry_point": "my_pkg.envs:MyTaskEnv",
                                     "max_episode_steps": 100,
                                     "summary": "one line for `rlmaml envs`"}}

rlmaml registers these ids with Gymnasium the first time it needs an env.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

PLUGIN_GROUP = "rlmaml.envs"


@dataclass(frozen=True)
class Family:
    """One registered task family and where it comes from (``rlmaml`` or a plugin)."""

    env_id: str
    summary: str
    source: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, with a one-line reason."""

    name: str
    reason: str


def register_families(families: dict[str, dict[str, Any]], source: str) -> list[Family]:
    """Register ``{id: {entry_point, max_episode_steps, summary, kwargs, disable_env_checker}}`` with
    Gymnasium (idempotent); only ``entry_point`` is required."""
    registered = []
    for env_id, spec in families.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=spec["entry_point"], max_episode_steps=spec.get("max_episode_steps"),
                         kwargs=spec.get("kwargs", {}), disable_env_checker=spec.get("disable_env_checker", False))
        registered.append(Family(env_id, spec.get("summary", ""), source))
    return registered


_loaded: tuple[list[Family], list[PluginFailure]] | None = None


def _load_one(entry_point: Any) -> list[Family]:
    value = entry_point.load()
    families = value() if callable(value) else value
    if not isinstance(families, dict) or not all(isinstance(spec, dict) and "entry_point" in spec
                                                 for spec in families.values()):
        raise TypeError(f"{entry_point.value} must be a dict {{env_id: {{'entry_point': ..., ...}}}} "
                        "or a function returning one")
    source = entry_point.dist.name if entry_point.dist is not None else entry_point.name
    return register_families(families, source)


def load_plugins() -> tuple[list[Family], list[PluginFailure]]:
    """Load every ``rlmaml.envs`` entry point once; returns the families and the plugins that failed."""
    global _loaded
    if _loaded is None:
        families: list[Family] = []
        failures: list[PluginFailure] = []
        for entry_point in entry_points(group=PLUGIN_GROUP):
            try:
                families.extend(_load_one(entry_point))
            except Exception as error:  # a broken plugin must not break rlmaml; report it instead
                failures.append(PluginFailure(entry_point.name, f"{type(error).__name__}: {error}"))
        _loaded = (families, failures)
    return _loaded


def all_families() -> tuple[list[Family], list[PluginFailure]]:
    """The built-in families followed by those of installed plugins."""
    from rlmaml.envs import FAMILIES

    builtin = [Family(env_id, spec["summary"], "rlmaml") for env_id, spec in FAMILIES.items()]
    plugin_families, failures = load_plugins()
    return builtin + plugin_families, failures
