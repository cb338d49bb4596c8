"""rlmaml: policy-gradient MAML for meta-reinforcement learning on PyTorch and Gymnasium.

Importing the package registers its task families in the Gymnasium namespace ``rlmaml``.
"""

import importlib.util
import sys
from pathlib import Path
from typing import Any


def _map_source_envs() -> None:
    """In a source checkout (``python -m rlmaml`` from the repository root) the task families sit
    in ``../envs`` rather than in the package; map them to ``rlmaml.envs`` as the build does."""
    if importlib.util.find_spec("rlmaml.envs") is not None:
        return
    folder = Path(__file__).resolve().parent.parent / "envs"
    spec = importlib.util.spec_from_file_location("rlmaml.envs", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        raise ImportError(f"rlmaml.envs is neither installed nor at {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rlmaml.envs"] = module
    spec.loader.exec_module(module)


_map_source_envs()

from rlmaml import envs as envs  # noqa: E402  (registers rlmaml/... ids with Gymnasium)
from rlmaml.api import Run, evaluate, load_run, make_config, register_family, resume, train  # noqa: E402
from rlmaml.config import PRESETS, ConfigError, TrainConfig  # noqa: E402
from rlmaml.errors import UserError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["PRESETS", "ConfigError", "GaussianMLPPolicy", "Run", "TaskSampler", "TrainConfig", "UserError",
           "__version__", "envs", "evaluate", "load_run", "make_config", "register_family", "resume", "train"]

_TORCH_CLASSES = {"GaussianMLPPolicy": "rlmaml.policy", "TaskSampler": "rlmaml.sampling"}


def __getattr__(name: str) -> Any:
    """The classes built on torch are imported on first use, so that importing the package (and
    with it ``rlmaml --help``) does not wait seconds for torch."""
    if name in _TORCH_CLASSES:
        return getattr(importlib.import_module(_TORCH_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_TORCH_CLASSES))
