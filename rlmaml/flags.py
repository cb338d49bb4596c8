"""Command-line flags derived from the config dataclasses, and ``--set FIELD=VALUE``.

Every config field gets one flag, named after its flat name (``inner.lr`` -> ``--inner-lr``), typed
and documented from the field itself and grouped by section in ``--help``. Given flags and ``--set``
items become overrides keyed by dotted path; naming one field twice with different values is an error.
"""

from __future__ import annotations

import argparse
import json
import typing
from typing import Any, Callable, Literal

from rlmaml.config import LEAVES, SECTIONS, ConfigError, Leaf, field_docs, normalized

DEST_PREFIX = "config:"
"""Namespace attributes of config flags are ``config:<dotted path>``, present only when given."""


def seed_arg(text: str) -> int:
    """argparse type of every ``--seed``: a non-negative integer, as numpy's seeding requires."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expects a non-negative integer, got {text!r}")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects integers like 100,100, got {text!r}") from None


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expects a JSON object, e.g. '{{\"frame_skip\": 2}}': {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expects a JSON object, got {text!r}")
    return value


def _optional_int(text: str) -> int | None:
    if text.lower() in ("null", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects an integer or null, got {text!r}") from None


def _parser_type(leaf: Leaf) -> tuple[Callable[[str], Any] | None, tuple[str, ...] | None]:
    """The argparse ``type`` and ``choices`` of a leaf's flag (``None`` type: a boolean switch)."""
    hint = leaf.hint
    origin = typing.get_origin(hint)
    if leaf.path == "seed":
        return seed_arg, None
    if origin is Literal:
        return str, typing.get_args(hint)
    if hint is bool:
        return None, None
    if origin is tuple:
        return _int_list, None
    if origin is dict:
        return json_object, None
    if hint is int:
        return int, None
    if hint is float:
        return float, None
    if hint is str:
        return str, None
    return _optional_int, None  # int | None


def _help(leaf: Leaf) -> str:
    first = leaf.doc.split("\n\n")[0].replace("\n", " ").replace("``", "").replace("%", "%%")
    default = leaf.default
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else json.dumps(default)
    return f"{first} [{leaf.path}; field default {shown}]"


METAVARS = {int: "N", float: "X", str: "TEXT"}


def _metavar(leaf: Leaf) -> str:
    origin = typing.get_origin(leaf.hint)
    if origin is tuple:
        return "N,N"
    if origin is dict:
        return "JSON"
    return METAVARS.get(leaf.hint, "N")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field, in an argument group per section."""
    for path, section in SECTIONS:
        title = f"config: {path}" if path else "config"
        doc = (section.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ").replace("``", "").replace("%", "%%")
        group = parser.add_argument_group(title, doc if path else None)
        docs = field_docs(section)
        for name in docs:
            leaf = LEAVES.get(f"{path}.{name}" if path else name)
            if leaf is None:
                continue
            flags = [leaf.flag] + ([leaf.spec.metadata["alias"]] if leaf.spec.metadata.get("alias") else [])
            kind, choices = _parser_type(leaf)
            dest = DEST_PREFIX + leaf.path
            if kind is None:
                group.add_argument(*flags, dest=dest, action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=_help(leaf))
            else:
                group.add_argument(*flags, dest=dest, type=kind, choices=choices, default=argparse.SUPPRESS,
                                   metavar=None if choices else _metavar(leaf), help=_help(leaf))


def parse_set(item: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` (FIELD a dotted path or a flat name) as (dotted path, value), VALUE read as JSON
    when it parses, else as a string."""
    name, sep, raw = item.partition("=")
    if not sep:
        raise ConfigError(f"--set expects FIELD=VALUE, got {item!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    (path, value), = normalized({name: value}, "--set").items()
    return path, value


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config values given on the command line (flags and ``--set``), by dotted path. A field
    given twice with different values (a flag and ``--set``, or two ``--set``) is a ``ConfigError``."""
    given: dict[str, tuple[str, Any]] = {}
    for dest, value in vars(args).items():
        if dest.startswith(DEST_PREFIX):
            path = dest.removeprefix(DEST_PREFIX)
            given[path] = (LEAVES[path].flag, value)
    for item in getattr(args, "set", None) or []:
        path, value = parse_set(item)
        earlier = given.get(path)
        if earlier is not None and earlier[1] != value and not (isinstance(value, list) and tuple(value) == earlier[1]):
            raise ConfigError(f"{path} is given twice, as {earlier[0]} {earlier[1]!r} and as --set {item}; "
                              "give it once")
        given[path] = (f"--set {item}", value)
    return {path: value for path, (_, value) in given.items()}
