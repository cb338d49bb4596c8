"""Training configuration: nested frozen dataclasses, presets, and reading config files.

A config has a few top-level fields (``method``, ``seed``, ``num_iterations``) and one section per
concern: ``task``, ``policy``, ``advantages``, ``inner`` (the inner update), ``outer`` (the
meta-update, with its ``trpo`` and ``ppo`` settings) and ``run`` (bookkeeping). A field is named
by its dotted path (``inner.lr``, ``outer.trpo.max_kl``) in ``--set``, config files and errors; each
leaf also has a short unique *flat name* (``inner_lr``, ``max_kl``): its command-line flag
(``--inner-lr``) and its key in the flat config files written before sections existed, which are
still read. Every default, bound and choice is stated once, on its field; the field's docstring
is its documentation (``--help`` and the configuration reference are generated from it).

Free of torch, like everything the command-line parser reads, so that ``rlmaml --help`` answers at once.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import tomllib

from rlmaml.errors import UserError


class ConfigError(UserError, ValueError):
    """A configuration that cannot be used; the message is meant for the user."""


Method = Literal["maml", "pretrained", "oracle", "random"]
Activation = Literal["relu", "tanh"]
InnerObjectiveName = Literal["reinforce", "lvc", "dice"]
StepRuleName = Literal["fixed", "return-scaled"]
MetaOptimizerName = Literal["trpo", "ppo"]
HvpAdaptation = Literal["subsample", "full", "first-order"]
DeviceName = Literal["cpu", "cuda"]
TaskSet = Literal["test", "validation"]
"""The tasks ``rlmaml evaluate`` can adapt on: the run's recorded held-out tasks, or validation tasks."""

METHOD_LABELS = {"maml": "MAML", "pretrained": "pretrained", "oracle": "oracle", "random": "random init"}
"""How tables and figures name each method."""


def setting(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, flat: str | None = None,
            gt: float | None = None, ge: float | None = None, lt: float | None = None,
            le: float | None = None, alias: str | None = None) -> Any:
    """A config field: its default, its flat name (when it is not the field's own name), its bounds
    (checked by :class:`Section`) and an extra command-line alias."""
    metadata = {"flat": flat, "bounds": (gt, ge, lt, le), "alias": alias}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _bounds_text(gt: float | None, ge: float | None, lt: float | None, le: float | None, integer: bool) -> str:
    if integer and ge is not None and gt is lt is le is None:
        return "a positive integer" if ge == 1 else "a non-negative integer" if ge == 0 else f"an integer >= {ge:g}"
    if gt == 0 and ge is lt is le is None:
        return "positive"
    if ge == 0 and gt is lt is le is None:
        return "non-negative"
    low = f"({gt:g}" if gt is not None else f"[{ge:g}" if ge is not None else "(-inf"
    high = f"{lt:g})" if lt is not None else f"{le:g}]" if le is not None else "inf)"
    return f"in {low}, {high}"


@dataclass(frozen=True)
class Section:
    """Base of every config section: checks each field's type, choices and bounds on construction,
    naming the field by its dotted path (``PATH``) in the error."""

    PATH: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for spec in dataclasses.fields(self):
            path = f"{self.PATH}.{spec.name}" if self.PATH else spec.name
            value = getattr(self, spec.name)
            _check_type(path, value, hints[spec.name])
            gt, ge, lt, le = spec.metadata.get("bounds", (None,) * 4)
            if value is None or isinstance(value, (Section, tuple, dict, str, bool)):
                continue
            if ((gt is not None and not value > gt) or (ge is not None and not value >= ge)
                    or (lt is not None and not value < lt) or (le is not None and not value <= le)):
                text = _bounds_text(gt, ge, lt, le, isinstance(value, int))
                raise ConfigError(f"{path} must be {text}, got {value!r}")


def _check_type(path: str, value: Any, hint: Any) -> None:
    """Raise ``ConfigError`` unless ``value`` has the type ``hint`` (as the config's fields use them)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path} must be one of {', '.join(map(str, args))}, got {value!r}")
    elif origin in (typing.Union, types.UnionType):  # X | None
        if value is not None:
            try:
                _check_type(path, value, next(a for a in args if a is not type(None)))
            except ConfigError as error:
                raise ConfigError(str(error).replace(", got", " or null, got", 1)) from None
    elif hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
    elif hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{path} must be an integer, got {value!r}")
    elif hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ConfigError(f"{path} must be a finite number, got {value!r}")
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}")
    elif origin is tuple:
        if (not isinstance(value, tuple) or not value
                or any(not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in value)):
            raise ConfigError(f"{path} must be a list of positive integers, got {value!r}")
    elif origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path} must be a table/object, got {value!r}")
    elif not isinstance(value, hint):
        raise ConfigError(f"{path} must be a section of fields, got {value!r}")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved type of each field of dataclass ``cls`` (its annotations are strings here)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


@dataclass(frozen=True)
class TaskConfig(Section):
    """The task family and how many tasks and trajectories a meta-iteration samples."""

    PATH: ClassVar[str] = "task"

    env_id: str = setting("rlmaml/Navigation2D-v0", alias="--env")
    """Gymnasium id of the task family (it must follow the rlmaml task protocol), or ``module:id``."""
    env_kwargs: dict[str, Any] = setting(factory=dict)
    """Keyword arguments for ``gymnasium.make`` (e.g. ``{"action_mode": "clip"}`` for Navigation2D).
    Given in a config file or with ``--set``, they replace the preset's."""
    horizon: int | None = setting(None, ge=1)
    """Steps per trajectory; ``null`` takes the env's registered ``max_episode_steps``."""
    num_tasks: int = setting(20, ge=1)
    """Tasks per meta-iteration (the meta-batch)."""
    num_traj: int = setting(20, ge=1)
    """Trajectories per task for every inner step and for the post-adaptation batch."""
    num_eval_tasks: int = setting(40, ge=1)
    """Held-out test tasks drawn (from their own random stream) and recorded with the run."""


@dataclass(frozen=True)
class PolicyConfig(Section):
    """The Gaussian MLP policy: a mean network and a learned state-independent log-std."""

    PATH: ClassVar[str] = "policy"

    hidden_sizes: tuple[int, ...] = setting((100, 100))
    """Hidden layer widths (``--hidden-sizes 100,100``)."""
    activation: Activation = setting("relu")
    """Hidden activation."""
    init_std: float = setting(1.0, gt=0)
    """Initial standard deviation of the actions."""


@dataclass(frozen=True)
class AdvantageConfig(Section):
    """Advantages of every batch: a linear feature baseline per task and GAE."""

    PATH: ClassVar[str] = "advantages"

    gamma: float = setting(0.99, ge=0, le=1)
    """Discount factor."""
    gae_lambda: float = setting(1.0, ge=0, le=1)
    """GAE lambda (1.0: Monte-Carlo returns minus the baseline)."""


@dataclass(frozen=True)
class InnerConfig(Section):
    """The inner update: the policy-gradient steps that adapt the policy to one task."""

    PATH: ClassVar[str] = "inner"

    num_steps: int = setting(1, ge=1, flat="num_inner_steps")
    """Policy-gradient steps in the inner loop during training."""
    lr: float = setting(0.1, gt=0, flat="inner_lr")
    """Inner step size alpha."""
    objective: InnerObjectiveName = setting("reinforce", flat="inner_objective")
    """Inner-step surrogate: ``reinforce`` (the paper's, log pi * advantage), ``lvc`` (ProMP's
    pi / stop_grad(pi) * advantage) or ``dice`` (DiCE with a baseline: each step's advantage weighted
    by the magic box of the trajectory's log-probabilities up to it, minus up to the step before). Same
    inner step; their second derivatives, taken by the meta-gradient and the TRPO curvature, differ:
    LVC also credits each pre-update action for its own step's advantage, DiCE for every later one."""
    step_rule: StepRuleName = setting("fixed", flat="inner_step_rule")
    """How ``inner.lr`` makes a step: ``fixed`` (the paper's: ``inner.lr`` times the gradient) or, experimental,
    ``return-scaled`` (a step of length ``inner.lr`` x (``inner.target_return`` - the task's mean return in
    the step's trajectories) along the gradient; ``inner.lr`` is then a length per unit of return: 0.003
    trains well on Navigation2D). Evaluation uses the run's rule unless told otherwise."""
    target_return: float = setting(0.0, flat="inner_target_return")
    """The return a ``return-scaled`` step aims at (0, the default, is Navigation2D's best possible return)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target_return and self.step_rule == "fixed":
            raise ConfigError("inner.target_return applies only to inner.step_rule return-scaled")


@dataclass(frozen=True)
class TRPOConfig(Section):
    """TRPO's meta-update (``outer.optimizer = "trpo"``): conjugate gradient and a line search."""

    PATH: ClassVar[str] = "outer.trpo"

    max_kl: float = setting(0.01, gt=0)
    """Trust region: maximum mean KL of the adapted policy on the post-adaptation data."""
    cg_iterations: int = setting(10, ge=1)
    """Conjugate-gradient iterations for the step direction."""
    cg_damping: float = setting(0.1, ge=0)
    """Damping added to the Hessian-vector products, (H + damping I) v. It bounds how far conjugate gradient
    stretches the step along directions where the adapted policy's KL has almost no curvature: with
    second-order MAML, steps along them move the pre-update policy but hardly the adapted one, and with
    1e-5 (the original code's value) they made the pre-update policy run away on some seeds."""
    line_search_ratio: float = setting(0.5, gt=0, lt=1)
    """Backtracking factor of the line search."""
    line_search_kl_rescale: bool = setting(False)
    """When a candidate improves the surrogate but exceeds ``max_kl``, shrink the step by
    sqrt(0.9 * max_kl / KL) (the KL grows with the square of the step) instead of ``line_search_ratio``."""
    line_search_steps: int = setting(15, ge=1)
    """Maximum backtracking steps before the update is rejected."""
    hvp_traj_fraction: float = setting(1.0, gt=0, le=1)
    """Fraction of each task's trajectories used for the Hessian-vector products (1.0: all)."""
    hvp_task_fraction: float = setting(1.0, gt=0, le=1)
    """Fraction of the meta-batch's tasks used for those products (1.0: all). Each task's KL term is
    computed whole, so unlike a trajectory subsample under ``subsample`` this leaves the curvature
    unbiased; it makes the exact curvature (``full``) cheaper in proportion."""
    hvp_adaptation: HvpAdaptation = setting("subsample")
    """What the adaptation inside those products sees: ``subsample`` the same fraction of the inner-step
    trajectories, ``full`` all of them, ``first-order`` all of them with its Jacobian taken as the identity."""


@dataclass(frozen=True)
class PPOConfig(Section):
    """ProMP's meta-update (``outer.optimizer = "ppo"``, Rothfuss et al. 2019): Adam steps on the adapted
    policy's clipped surrogate, plus a KL penalty on the pre-update policy."""

    PATH: ClassVar[str] = "outer.ppo"

    epochs: int = setting(5, ge=1, flat="ppo_epochs")
    """Adam steps per meta-iteration, each re-adapting on the same meta-batch (ProMP: 5)."""
    clip: float = setting(0.3, gt=0, lt=1, flat="ppo_clip")
    """The adapted policy's likelihood ratio is clipped to [1 - clip, 1 + clip] (ProMP: 0.3)."""
    lr: float = setting(1e-3, gt=0, flat="meta_lr")
    """Adam's step size; Adam's moments carry over from one meta-iteration to the next (ProMP: 1e-3)."""
    inner_kl_penalty: float = setting(5e-4, ge=0)
    """Weight of KL(old || new) of the pre-update policy on the first inner-step batch, which keeps
    the policy that samples the adaptation data from moving far (ProMP's fixed 5e-4; 0 turns it off).
    With ``adaptive_inner_kl_penalty``, the starting weight."""
    adaptive_inner_kl_penalty: bool = setting(False)
    """After every meta-iteration halve the penalty's weight if that KL ended below ``inner_kl_target`` / 1.5
    and double it above 1.5 x ``inner_kl_target`` (ProMP's option, off in its published runs). The weight
    is saved in checkpoints and logged as ``inner_kl_penalty``."""
    inner_kl_target: float = setting(0.01, gt=0)
    """With ``adaptive_inner_kl_penalty``: the pre-update policy's KL per meta-iteration the weight steers
    toward (ProMP: 0.01)."""


@dataclass(frozen=True)
class OuterConfig(Section):
    """The meta-update: which optimiser, and the settings of each."""

    PATH: ClassVar[str] = "outer"

    optimizer: MetaOptimizerName = setting("trpo", flat="meta_optimizer")
    """``trpo`` (the paper's: conjugate gradient and a line search within ``max_kl``) or ``ppo``
    (ProMP's clipped surrogate with Adam). Only the chosen one's section applies."""
    first_order: bool = setting(False)
    """Drop the second-order terms of the meta-gradient (first-order MAML)."""
    trpo: TRPOConfig = setting(factory=TRPOConfig)
    ppo: PPOConfig = setting(factory=PPOConfig)


@dataclass(frozen=True)
class RunConfig(Section):
    """Bookkeeping: rollout processes, checkpoints, logging."""

    PATH: ClassVar[str] = "run"

    num_workers: int | None = setting(None, ge=0)
    """Rollout worker processes; ``null``: one per CPU core for families that benefit (MuJoCo, Meta-World),
    none otherwise; 0: sample in the training process. Results are bitwise reproducible for a given count."""
    checkpoint_every: int = setting(1, ge=1)
    """Write a checkpoint every this many meta-iterations (and always at the end or on Ctrl-C)."""
    snapshot_every: int = setting(0, ge=0)
    """Also keep the policy every this many meta-iterations in ``snapshots/`` (0: never)."""
    tensorboard: bool = setting(False)
    """Also log every metric to TensorBoard event files in ``tensorboard/`` (needs ``rlmaml[tensorboard]``)."""
    device: DeviceName = setting("cpu")
    """Where the policy and the meta-update run: ``cpu``, or ``cuda`` (the current GPU). Rollouts run on CPU
    either way, with a CPU copy of the parameters; checkpoints hold CPU tensors, so a run moves between
    devices."""


@dataclass(frozen=True)
class TrainConfig(Section):
    """Everything a training run depends on. Saved as ``config.json`` in the run folder."""

    method: Method = setting("maml")
    """What to train: ``maml``; ``pretrained`` (the outer update on the whole task distribution, no inner
    step in training, fine-tuned at evaluation); ``oracle`` (like pretrained, observing the task parameter;
    evaluated without adaptation); ``random`` (no training: the initial policy, fine-tuned at evaluation)."""
    seed: int = setting(0, ge=0)
    """Root seed: training tasks, held-out tasks, env seeds and policy noise are spawned from it."""
    num_iterations: int = setting(300, ge=1)
    """Meta-iterations to train."""
    task: TaskConfig = setting(factory=TaskConfig)
    policy: PolicyConfig = setting(factory=PolicyConfig)
    advantages: AdvantageConfig = setting(factory=AdvantageConfig)
    inner: InnerConfig = setting(factory=InnerConfig)
    outer: OuterConfig = setting(factory=OuterConfig)
    run: RunConfig = setting(factory=RunConfig)

    @property
    def inner_lrs(self) -> tuple[float, ...]:
        """Step size of each training inner step (all ``inner.lr``; none for the baselines)."""
        return (self.inner.lr,) * self.inner.num_steps if self.method == "maml" else ()

    @property
    def trained_iterations(self) -> int:
        """Meta-iterations the trainer runs (0 for the ``random`` baseline)."""
        return 0 if self.method == "random" else self.num_iterations

    def to_dict(self) -> dict[str, Any]:
        """Nested plain values, as ``config.json`` stores them."""
        return dataclasses.asdict(self)

    def with_values(self, values: Mapping[str, Any]) -> "TrainConfig":
        """A copy with the fields named in ``values`` (dotted paths or flat names) changed."""
        return build({**leaf_values(self), **normalized(values, "value")})


# ---------------------------------------------------------------------------------------------
# The schema: every leaf field by dotted path, and the flat names.

@dataclass(frozen=True)
class Leaf:
    """One configurable value: where it sits, its type, default, flat name and documentation."""

    path: str
    spec: dataclasses.Field[Any]
    hint: Any
    section: type[Section]

    @property
    def flat(self) -> str:
        return self.spec.metadata.get("flat") or self.spec.name

    @property
    def flag(self) -> str:
        return "--" + self.flat.replace("_", "-")

    @property
    def default(self) -> Any:
        if self.spec.default_factory is not dataclasses.MISSING:
            return self.spec.default_factory()
        return self.spec.default

    @property
    def doc(self) -> str:
        return field_docs(self.section).get(self.spec.name, "")


def _sections(cls: type[Section]) -> list[tuple[str, type[Section]]]:
    """``cls`` and its nested sections, depth first, with their dotted paths."""
    found = [(cls.PATH, cls)]
    for spec in dataclasses.fields(cls):
        hint = _hints(cls)[spec.name]
        if isinstance(hint, type) and issubclass(hint, Section):
            found.extend(_sections(hint))
    return found


SECTIONS: list[tuple[str, type[Section]]] = _sections(TrainConfig)
"""Every section with its dotted path ("" for the top level), in reading order."""

LEAVES: dict[str, Leaf] = {
    (f"{path}.{spec.name}" if path else spec.name): Leaf(f"{path}.{spec.name}" if path else spec.name, spec,
                                                         _hints(cls)[spec.name], cls)
    for path, cls in SECTIONS for spec in dataclasses.fields(cls)
    if not (isinstance(_hints(cls)[spec.name], type) and issubclass(_hints(cls)[spec.name], Section))}
"""Every value a config holds, by dotted path."""

FLAT_NAMES: dict[str, str] = {leaf.flat: path for path, leaf in LEAVES.items()}
"""Flat name (flag and pre-sections config key) -> dotted path."""
assert len(FLAT_NAMES) == len(LEAVES), "two config fields share a flat name"


_DOCS: dict[type, dict[str, str]] = {}


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of dataclass ``cls`` (read from its source)."""
    if cls not in _DOCS:
        _DOCS[cls] = _read_field_docs(cls)
    return _DOCS[cls]


def _read_field_docs(cls: type) -> dict[str, str]:
    tree = ast.parse(inspect.getsource(cls).lstrip())
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant) and isinstance(following.value.value, str)):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def unknown_field_message(name: str, source: str) -> str:
    """'unknown config field ...' naming the closest real field, if one is close."""
    close = difflib.get_close_matches(name, [*LEAVES, *FLAT_NAMES, *(p for p, _ in SECTIONS if p)], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (f"unknown config field {name!r} in {source}{hint}; `rlmaml train --help` lists the fields, "
            "docs/configuration.md describes them")


def normalized(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``values`` keyed by dotted path: a key may be a dotted path or a flat name."""
    out = {}
    for key, value in values.items():
        path = key if key in LEAVES else FLAT_NAMES.get(key)
        if path is None:
            raise ConfigError(unknown_field_message(key, source))
        out[path] = value
    return out


def flattened(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Values read from a file (nested sections, or the flat layout of older files, or a mix) keyed by
    dotted path. A section's table may leave out fields; ``env_kwargs`` is one value, not a section."""
    section_paths = {path for path, _ in SECTIONS if path}
    out: dict[str, Any] = {}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for key, value in table.items():
            path = f"{prefix}.{key}" if prefix else key
            if path in section_paths:
                if not isinstance(value, dict):
                    raise ConfigError(f"{path} in {source} must be a table/object of fields, got {value!r}")
                walk(value, path)
            elif path in LEAVES:
                out[path] = value
            elif not prefix and key in FLAT_NAMES:
                out[FLAT_NAMES[key]] = value
            else:
                raise ConfigError(unknown_field_message(path, source))

    walk(values, "")
    return out


def leaf_values(config: TrainConfig) -> dict[str, Any]:
    """Every value of ``config`` by dotted path."""
    out = {}
    for path in LEAVES:
        value: Any = config
        for part in path.split("."):
            value = getattr(value, part)
        out[path] = value
    return out


def _coerced(leaf: Leaf, value: Any) -> Any:
    """JSON's forms of the config's types: a list for a tuple, an integer for a float; a fresh dict."""
    if typing.get_origin(leaf.hint) is tuple and isinstance(value, list):
        return tuple(value)
    if leaf.hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        return dict(value)  # never share a preset's dict
    return value


def build(values: Mapping[str, Any]) -> TrainConfig:
    """A config from values keyed by dotted path (missing ones take their defaults)."""

    def make(cls: type[Section]) -> Section:
        kwargs: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            path = f"{cls.PATH}.{spec.name}" if cls.PATH else spec.name
            hint = _hints(cls)[spec.name]
            if isinstance(hint, type) and issubclass(hint, Section):
                kwargs[spec.name] = make(hint)
            elif path in values:
                kwargs[spec.name] = _coerced(LEAVES[path], values[path])
        return cls(**kwargs)

    unknown = sorted(set(values) - set(LEAVES))
    if unknown:
        raise ConfigError(unknown_field_message(unknown[0], "the values given"))
    return typing.cast(TrainConfig, make(TrainConfig))


def from_dict(values: Mapping[str, Any], source: str = "the config") -> TrainConfig:
    """A config from plain values as read from JSON/TOML: nested sections or the older flat layout."""
    return build(flattened(values, source))


# ---------------------------------------------------------------------------------------------
# Presets and the order in which settings are combined.

NAV_PAPER: dict[str, Any] = {
    "num_iterations": 300, "task.num_tasks": 20, "task.num_traj": 20, "policy.hidden_sizes": (100, 100),
    "policy.activation": "relu", "policy.init_std": 1.0, "inner.lr": 0.1, "inner.num_steps": 1,
    "outer.trpo.max_kl": 0.01, "outer.trpo.cg_iterations": 10, "outer.trpo.hvp_traj_fraction": 0.2}
LOCOMOTION_PAPER: dict[str, Any] = {
    **NAV_PAPER, "num_iterations": 500, "task.num_tasks": 40, "outer.trpo.hvp_traj_fraction": 0.1,
    "outer.trpo.hvp_adaptation": "first-order"}
ANT_PAPER: dict[str, Any] = {**LOCOMOTION_PAPER, "task.env_kwargs": {"frame_skip": 2}}  # dt 0.02 s, the paper's
PRESETS: dict[str, dict[str, Any]] = {
    "nav-paper": NAV_PAPER,
    "nav-quick": {**NAV_PAPER, "num_iterations": 50},
    "cheetah-vel": {**LOCOMOTION_PAPER, "task.env_id": "rlmaml/HalfCheetahVel-v0"},
    "cheetah-dir": {**LOCOMOTION_PAPER, "task.env_id": "rlmaml/HalfCheetahDir-v0"},
    "ant-vel": {**ANT_PAPER, "task.env_id": "rlmaml/AntVel-v0"},
    "ant-dir": {**ANT_PAPER, "task.env_id": "rlmaml/AntDir-v0", "task.num_traj": 40},
    "ant-goal": {**ANT_PAPER, "task.env_id": "rlmaml/AntGoal-v0"},
}
"""Named starting points, by dotted path. ``nav-paper``: the paper's 2D-navigation settings (20 tasks x 20
trajectories, the env's registered horizon (100), 2x100 ReLU, inner step 0.1, TRPO max KL 0.01, 10 CG
iterations), with the CG curvature measured on 20% of each task's trajectories for speed.
``nav-quick``: the same for 50 meta-iterations, the default of ``rlmaml train``.
``cheetah-vel``, ``cheetah-dir``, ``ant-vel``, ``ant-dir``, ``ant-goal``: the paper's locomotion settings
(40 tasks x 20 trajectories, 40 for ant-dir as in the paper; the env's registered horizon 200; inner step
0.1; TRPO max KL 0.01, 10 CG iterations on 10% of the trajectories with the Fisher matrix of the adapted
policy (``hvp_adaptation="first-order"``); 500 meta-iterations). The Ant presets also set
``task.env_kwargs={"frame_skip": 2}``: the paper's control period (0.02 s) instead of Gymnasium's 0.05 s."""
DEFAULT_PRESET = "nav-quick"


def read_config_file(path: Path) -> dict[str, Any]:
    """Values from a config file (TOML if its name ends in ``.toml``, else JSON) keyed by dotted path."""
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
    return flattened(values, str(path))


def resolve(preset: str | None = None, file_values: Mapping[str, Any] | None = None,
            overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Preset, then config-file values, then overrides (each keyed by dotted path or flat name), later
    ones winning."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return build({**PRESETS[name], **normalized(file_values or {}, "the config file"),
                  **normalized(overrides or {}, "the overrides")})


def load_config(path: Path) -> TrainConfig:
    """The config saved in a run folder (nested, or the flat layout older runs wrote)."""
    return build(read_config_file(path))
