"""Registering task families with Gymnasium, for the built-in ones (``rlmaml.envs``), plugins
(``rlmaml.plugins``) and users (``rlmaml.register_family``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class Family:
    """One registered task family and where it comes from (``rlmaml``, a plugin, or ``user``)."""

    env_id: str
    summary: str
    source: str


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
