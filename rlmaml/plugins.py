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

from rlmaml.registry import Family, register_families

PLUGIN_GROUP = "rlmaml.envs"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, with a one-line reason."""

    name: str
    reason: str


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
