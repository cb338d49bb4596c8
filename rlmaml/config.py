"""Training configuration: a frozen dataclass, presets, and reading/writing it as JSON or TOML.

Free of torch, like everything the command-line parser reads, so that ``rlmaml --help`` answers at once."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlmaml.errors import UserError
from rlmaml.runs import write_json


class ConfigError(UserError, ValueError):
    """A configuration that cannot be used; the message is meant for the user."""


METHODS = ("maml", "pretrained", "oracle", "random")
"""MAML and the paper's comparison methods (see ``TrainConfig.method``)."""

METHOD_LABELS = {"maml": "MAML", "pretrained": "pretrained", "oracle": "oracle", "random": "random init"}
"""How tables and figures name each method."""

INNER_OBJECTIVES = ("reinforce", "lvc")
"""Inner-step surrogates (see ``TrainConfig.inner_objective`` and ``rlmaml.adaptation.inner_loss``)."""

HVP_ADAPTATIONS = ("subsample", "full", "first-order")
"""What the adaptation inside the curvature's KL sees (see ``TrainConfig.hvp_adaptation``)."""

META_OPTIMIZERS = ("trpo", "ppo")
"""Outer updates (see ``TrainConfig.meta_optimizer``)."""

STEP_RULES = ("fixed", "return-scaled")
"""How an inner step's size is applied, in training (``TrainConfig.inner_step_rule``) and at evaluation
(see ``rlmaml.adaptation.adapt_step``): the step size times the gradient (the paper's), or a step of
length size x (target return - the batch's mean return) along the gradient's direction."""

TASK_SETS = ("test", "validation")
"""The tasks ``rlmaml evaluate`` can adapt on: the run's recorded held-out tasks, or validation tasks."""


@dataclass(frozen=True)
class TRPOSettings:
    """Outer-loop TRPO settings; TrainConfig.trpo builds them and documents each field's meaning
    and default."""

    max_kl: float
    cg_iterations: int
    cg_damping: float
    line_search_ratio: float
    line_search_steps: int
    hvp_traj_fraction: float
    hvp_adaptation: str
    line_search_kl_rescale: bool
    hvp_task_fraction: float


@dataclass(frozen=True)
class PPOSettings:
    """Outer-loop PPO (ProMP) settings; TrainConfig.ppo builds them and documents each field."""

    epochs: int
    clip: float
    lr: float
    inner_kl_penalty: float
    adaptive_inner_kl_penalty: bool
    inner_kl_target: float


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Saved as ``config.json`` in the run folder."""

    method: str = "maml"
    """What to train: ``maml``; ``pretrained`` (the outer update on the whole task distribution, no inner
    step in training, fine-tuned at evaluation); ``oracle`` (like pretrained, observing the task parameter;
    evaluated without adaptation); ``random`` (no training: the initial policy, fine-tuned at evaluation)."""
    env_id: str = "rlmaml/Navigation2D-v0"
    """Gymnasium id of the task family (must follow the rlmaml task protocol)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for ``gymnasium.make`` (e.g. ``{"action_mode": "clip"}`` for Navigation2D)."""
    horizon: int | None = None
    """Steps per trajectory; ``null`` takes the env's registered ``max_episode_steps``."""
    num_tasks: int = 20
    """Tasks per meta-iteration (meta-batch size)."""
    num_traj: int = 20
    """Trajectories per task for every inner step and for the post-adaptation batch."""
    num_iterations: int = 300
    """Meta-iterations to train."""
    hidden_sizes: tuple[int, ...] = (100, 100)
    """Hidden layer widths of the Gaussian MLP policy."""
    activation: str = "relu"
    """Hidden activation: ``relu`` or ``tanh``."""
    init_std: float = 1.0
    """Initial standard deviation of the policy (state-independent, learned)."""
    num_inner_steps: int = 1
    """Policy-gradient steps in the inner loop during training."""
    inner_lr: float = 0.1
    """Inner step size alpha."""
    first_order: bool = False
    """Drop second-order terms of the meta-gradient (first-order MAML)."""
    inner_objective: str = "reinforce"
    """Inner-step surrogate: ``reinforce`` (the paper's, log pi * advantage) or ``lvc`` (ProMP's
    pi / stop_grad(pi) * advantage). Same inner step; LVC's second derivative, taken by the
    meta-gradient and the TRPO curvature, also credits the pre-update policy for the data it samples."""
    inner_step_rule: str = "fixed"
    """How ``inner_lr`` makes an inner step: ``fixed`` (the paper's: ``inner_lr`` times the gradient) or
    ``return-scaled`` (a step of length ``inner_lr`` x (``inner_target_return`` - the task's mean return in
    the step's trajectories) along the gradient; ``inner_lr`` is then a length per unit of return: 0.003
    trains well on Navigation2D). Evaluation uses the run's rule unless told otherwise."""
    inner_target_return: float = 0.0
    """The return a ``return-scaled`` step aims at (0, the default, is Navigation2D's best possible return)."""
    meta_optimizer: str = "trpo"
    """Outer update: ``trpo`` (the paper's: conjugate gradient and a line search within ``max_kl``) or
    ``ppo`` (ProMP's, Rothfuss et al. 2019: ``ppo_epochs`` Adam steps of size ``meta_lr`` on the
    adapted policy's clipped surrogate, plus ``inner_kl_penalty`` times the pre-update policy's KL).
    The TRPO fields below apply to ``trpo`` only, the PPO fields to ``ppo`` only."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 1.0
    """GAE lambda (1.0: Monte-Carlo returns minus the baseline)."""
    max_kl: float = 0.01
    """TRPO trust region: maximum mean KL of the adapted policy on the post-adaptation data."""
    cg_iterations: int = 10
    """Conjugate-gradient iterations for the TRPO direction."""
    cg_damping: float = 1e-5
    """Damping added to the Hessian-vector products."""
    line_search_ratio: float = 0.5
    """Backtracking factor of the TRPO line search."""
    line_search_kl_rescale: bool = False
    """When a candidate improves the surrogate but exceeds ``max_kl``, shrink the step by
    sqrt(0.9 * max_kl / KL) (the KL grows with the square of the step) instead of ``line_search_ratio``."""
    line_search_steps: int = 15
    """Maximum backtracking steps before the update is rejected."""
    hvp_traj_fraction: float = 1.0
    """Fraction of each task's trajectories used for the CG Hessian-vector products (1.0: all)."""
    hvp_task_fraction: float = 1.0
    """Fraction of the meta-batch's tasks used for those products (1.0: all). Each task's KL term is
    computed whole, so unlike a trajectory subsample under ``subsample`` this leaves the curvature
    unbiased; it makes the exact curvature (``full``) cheaper in proportion."""
    hvp_adaptation: str = "subsample"
    """What the adaptation inside those products sees: ``subsample`` the same fraction of the inner-step
    trajectories, ``full`` all of them, ``first-order`` all of them with its Jacobian taken as the identity."""
    ppo_epochs: int = 5
    """PPO: Adam steps per meta-iteration, each re-adapting on the same meta-batch (ProMP: 5)."""
    ppo_clip: float = 0.3
    """PPO: the likelihood ratio of the adapted policy is clipped to [1 - ppo_clip, 1 + ppo_clip] (ProMP: 0.3)."""
    meta_lr: float = 1e-3
    """PPO: Adam's step size; Adam's moments carry over from one meta-iteration to the next (ProMP: 1e-3)."""
    inner_kl_penalty: float = 5e-4
    """PPO: weight of KL(old || new) of the pre-update policy on the first inner-step batch, which keeps
    the policy that samples the adaptation data from moving far (ProMP's fixed 5e-4; 0 turns it off).
    With ``adaptive_inner_kl_penalty``, the starting weight."""
    adaptive_inner_kl_penalty: bool = False
    """PPO: after every meta-iteration halve the penalty's weight if that KL ended below
    ``inner_kl_target`` / 1.5 and double it above 1.5 x ``inner_kl_target`` (ProMP's option, off in its
    published runs). The weight is saved in checkpoints and logged as ``inner_kl_penalty``."""
    inner_kl_target: float = 0.01
    """PPO with ``adaptive_inner_kl_penalty``: the pre-update policy's KL per meta-iteration the weight
    steers toward (ProMP: 0.01)."""
    num_workers: int | None = None
    """Rollout worker processes; ``null``: one per CPU core for families that benefit (MuJoCo, Meta-World), none
    otherwise; 0: sample in the training process. Results are bitwise reproducible for a given count."""
    seed: int = 0
    """Root seed (a non-negative integer): training tasks, held-out tasks, env seeds and policy noise are
    spawned from it."""
    num_eval_tasks: int = 40
    """Held-out test tasks drawn (from their own stream) and recorded with the run."""
    checkpoint_every: int = 1
    """Write a checkpoint every this many meta-iterations (and always at the end or on Ctrl-C)."""
    snapshot_every: int = 0
    """Also keep the policy every this many meta-iterations in ``snapshots/`` (0: never)."""
    tensorboard: bool = False
    """Also log every metric to TensorBoard event files in ``tensorboard/`` (needs ``rlmaml[tensorboard]``)."""

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):  # the annotations are strings (postponed evaluation)
            value = getattr(self, spec.name)
            nullable = spec.type == "int | None"
            if spec.type in ("int", "int | None") and not (value is None and nullable) and (
                    not isinstance(value, int) or isinstance(value, bool)):
                raise ConfigError(f"{spec.name} must be an integer{' or null' if nullable else ''}, got {value!r}")
            if spec.type == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                         or not math.isfinite(value)):
                raise ConfigError(f"{spec.name} must be a finite number, got {value!r}")
            if spec.type == "str" and not isinstance(value, str):
                raise ConfigError(f"{spec.name} must be a string, got {value!r}")
            if spec.type == "bool" and not isinstance(value, bool):
                raise ConfigError(f"{spec.name} must be true or false, got {value!r}")
        positive = ("num_tasks", "num_traj", "num_iterations", "num_inner_steps", "cg_iterations", "ppo_epochs",
                    "line_search_steps", "num_eval_tasks", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("seed", "snapshot_every", "num_workers"):
            if (getattr(self, name) or 0) < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")
        if self.horizon is not None and self.horizon < 1:
            raise ConfigError(f"horizon must be a positive integer or null, got {self.horizon!r}")
        for name in ("inner_lr", "max_kl", "init_std", "meta_lr", "inner_kl_target"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("cg_damping", "inner_kl_penalty"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be non-negative, got {getattr(self, name)!r}")
        if not 0 < self.ppo_clip < 1:
            raise ConfigError(f"ppo_clip must be in (0, 1), got {self.ppo_clip!r}")
        if self.inner_step_rule not in STEP_RULES:
            raise ConfigError(f"inner_step_rule must be one of {', '.join(STEP_RULES)}, got {self.inner_step_rule!r}")
        if not math.isfinite(self.inner_target_return):
            raise ConfigError(f"inner_target_return must be a finite number, got {self.inner_target_return!r}")
        if self.inner_target_return and self.inner_step_rule == "fixed":
            raise ConfigError("inner_target_return applies only to inner_step_rule return-scaled")
        if self.meta_optimizer not in META_OPTIMIZERS:
            raise ConfigError(f"meta_optimizer must be one of {', '.join(META_OPTIMIZERS)}, got {self.meta_optimizer!r}")
        if not 0 < self.line_search_ratio < 1:
            raise ConfigError(f"line_search_ratio must be in (0, 1), got {self.line_search_ratio!r}")
        for name in ("hvp_traj_fraction", "hvp_task_fraction"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if self.hvp_adaptation not in HVP_ADAPTATIONS:
            raise ConfigError(f"hvp_adaptation must be one of {', '.join(HVP_ADAPTATIONS)}, got {self.hvp_adaptation!r}")
        if self.inner_objective not in INNER_OBJECTIVES:
            raise ConfigError(f"inner_objective must be one of {', '.join(INNER_OBJECTIVES)}, got {self.inner_objective!r}")
        if not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ConfigError("gamma and gae_lambda must be in [0, 1]")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.activation not in ("relu", "tanh"):
            raise ConfigError(f"activation must be relu or tanh, got {self.activation!r}")
        if not self.hidden_sizes or any(not isinstance(h, int) or isinstance(h, bool) or h < 1
                                       for h in self.hidden_sizes):
            raise ConfigError(f"hidden_sizes must be positive integers, got {self.hidden_sizes!r}")

    @property
    def inner_lrs(self) -> list[float]:
        """Step size of each training inner step (all ``inner_lr``; none for the baselines)."""
        return [self.inner_lr] * self.num_inner_steps if self.method == "maml" else []

    @property
    def trained_iterations(self) -> int:
        """Meta-iterations the trainer runs (0 for the ``random`` baseline)."""
        return 0 if self.method == "random" else self.num_iterations

    @property
    def trpo(self) -> TRPOSettings:
        return TRPOSettings(self.max_kl, self.cg_iterations, self.cg_damping, self.line_search_ratio,
                            self.line_search_steps, self.hvp_traj_fraction, self.hvp_adaptation,
                            self.line_search_kl_rescale, self.hvp_task_fraction)

    @property
    def ppo(self) -> PPOSettings:
        return PPOSettings(self.ppo_epochs, self.ppo_clip, self.meta_lr, self.inner_kl_penalty,
                           self.adaptive_inner_kl_penalty, self.inner_kl_target)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return from_dict({**self.to_dict(), **changes})


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}

NAV_PAPER: dict[str, Any] = dict(num_tasks=20, num_traj=20, hidden_sizes=(100, 100), activation="relu",
                                 init_std=1.0, inner_lr=0.1, num_inner_steps=1, max_kl=0.01, cg_iterations=10,
                                 hvp_traj_fraction=0.2, num_iterations=300)
LOCOMOTION_PAPER: dict[str, Any] = dict(num_tasks=40, num_traj=20, hidden_sizes=(100, 100), activation="relu",
                                        init_std=1.0, inner_lr=0.1, num_inner_steps=1, max_kl=0.01, cg_iterations=10,
                                        hvp_traj_fraction=0.1, hvp_adaptation="first-order", num_iterations=500)
ANT_PAPER: dict[str, Any] = {**LOCOMOTION_PAPER, "env_kwargs": {"frame_skip": 2}}  # dt 0.02 s, the paper's
PRESETS: dict[str, dict[str, Any]] = {
    "nav-paper": NAV_PAPER,
    "nav-quick": {**NAV_PAPER, "num_iterations": 50},
    "cheetah-vel": {**LOCOMOTION_PAPER, "env_id": "rlmaml/HalfCheetahVel-v0"},
    "cheetah-dir": {**LOCOMOTION_PAPER, "env_id": "rlmaml/HalfCheetahDir-v0"},
    "ant-vel": {**ANT_PAPER, "env_id": "rlmaml/AntVel-v0"},
    "ant-dir": {**ANT_PAPER, "env_id": "rlmaml/AntDir-v0", "num_traj": 40},
    "ant-goal": {**ANT_PAPER, "env_id": "rlmaml/AntGoal-v0"},
}
"""Named starting points. ``nav-paper``: the paper's 2D-navigation settings (20 tasks x 20
trajectories, the env's registered horizon (100 for Navigation2D), 2x100 ReLU, inner step 0.1, TRPO max KL 0.01, 10 CG iterations), with
the CG curvature measured on 20% of each task's trajectories for speed (``hvp_traj_fraction=1``
for all of them).
``nav-quick``: the same for 50 meta-iterations, the default of ``rlmaml train``.
``cheetah-vel``, ``cheetah-dir``, ``ant-vel``, ``ant-dir``, ``ant-goal``: the paper's locomotion
settings (40 tasks x 20 trajectories, 40 for ant-dir as in the paper; the env's registered horizon
200; 2x100 ReLU; inner step 0.1; TRPO max KL 0.01, 10 CG iterations on 10% of the trajectories
with the Fisher matrix of the adapted policy (``hvp_adaptation="first-order"``); 500 meta-iterations).
The Ant presets also set ``env_kwargs={"frame_skip": 2}``: the paper's control period (0.02 s)
instead of Gymnasium's 0.05 s, at which AntVel learns to end its episodes early. ``env_kwargs``
given in a config file or with ``--set`` replace the preset's (keep ``frame_skip`` in them)."""
DEFAULT_PRESET = "nav-quick"


def unknown_fields_message(names: list[str]) -> str:
    """'unknown config field(s): ...' naming the closest real field for each, if one is close."""
    described = []
    for name in names:
        close = difflib.get_close_matches(name, FIELDS, n=1)
        described.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    return (f"unknown config field(s): {', '.join(described)}; "
            "`rlmaml train --help` lists the fields under --set, the README's Config fields describes them")


def from_dict(values: dict[str, Any]) -> TrainConfig:
    """Build a config from plain values (as read from JSON/TOML); unknown keys are an error."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(unknown_fields_message(unknown))
    values = dict(values)
    if "hidden_sizes" in values:
        if not isinstance(values["hidden_sizes"], (list, tuple)):
            raise ConfigError(f"hidden_sizes must be a list of integers, got {values['hidden_sizes']!r}")
        values["hidden_sizes"] = tuple(values["hidden_sizes"])
    if "env_kwargs" in values:
        if not isinstance(values["env_kwargs"], dict):
            raise ConfigError(f"env_kwargs must be a table/object, got {values['env_kwargs']!r}")
        values["env_kwargs"] = dict(values["env_kwargs"])  # never share a preset's dict
    try:
        return TrainConfig(**values)
    except TypeError as error:
        raise ConfigError(str(error)) from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Values from a config file, TOML if its name ends in ``.toml``, else JSON (not yet validated)."""
    toml = path.suffix == ".toml"
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark some editors write is fine
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        values = tomllib.loads(text) if toml else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        guessed = "" if path.suffix in (".json", ".toml") else " (read as JSON, by its name; TOML files end in .toml)"
        raise ConfigError(f"malformed config file {path}{guessed}: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold an object/table of fields")
    return values


def resolve(preset: str | None, file_values: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    """Preset, then config-file values, then command-line overrides, later ones winning."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return from_dict({**PRESETS[name], **file_values, **overrides})


def save_config(config: TrainConfig, path: Path) -> None:
    """Atomically write ``config`` as JSON: a failed or killed write leaves the old file whole."""
    write_json(config.to_dict(), path)


def load_config(path: Path) -> TrainConfig:
    return from_dict(read_config_file(path))
