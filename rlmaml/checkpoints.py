"""Checkpoints of a run (iteration, policy parameters, random streams), saved atomically with a content
checksum, and loaded safely: checksum first, then ``weights_only`` unpickling, then checks of what the
state holds. Every way a file can be unreadable or wrong is one ``RunError`` line naming the file.

File layout: ``MAGIC``, the SHA-256 of the payload (32 bytes), the payload (``torch.save``'s bytes).
Files without the header, written by earlier releases, load as before (no checksum to check).
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
from pathlib import Path
from typing import Any

import torch

from rlmaml.runs import RunError, atomic_write

MAGIC = b"RLMAML-CHECKPOINT-1\n"
"""The first bytes of a checkpoint written with a checksum."""

RUN_STATE_KEYS = ("iteration", "policy", "rng", "best_return")
"""What a run's ``checkpoint.pt`` holds, all of which resuming (or branching) it needs."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Atomically save a checkpoint of tensors and plain containers, with its checksum. The state is
    serialised in memory first, so a failed write (a full disk) is a plain ``RunWriteError`` and
    leaves the previous file whole."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).digest()
    atomic_write(path, lambda handle: handle.write(MAGIC + digest + payload))


def _damaged(path: Path, what: str) -> RunError:
    hint = ("; a run that kept snapshots (run.snapshot_every) resumes from one with "
            "`rlmaml train --resume RUN_DIR --resume-from N`") if path.name == "checkpoint.pt" else ""
    return RunError(f"{path} {what}; the file was changed or damaged{hint}")


def _payload(path: Path) -> bytes:
    """The serialised state of the checkpoint at ``path``, its checksum verified."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RunError(f"cannot read checkpoint {path}: {error.strerror or error}") from None
    if not data.startswith(MAGIC):
        return data  # an earlier release's checkpoint: no checksum
    digest, payload = data[len(MAGIC):len(MAGIC) + 32], data[len(MAGIC) + 32:]
    if hashlib.sha256(payload).digest() != digest:
        raise _damaged(path, "does not match its checksum")
    return payload


def load_checkpoint(path: Path, keys: tuple[str, ...] = ("iteration", "policy")) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` that holds ``keys``, after checking its
    checksum, that it unpickles with ``weights_only=True`` (nothing in it runs code), and that its
    iteration is a non-negative integer and its parameters are finite tensors."""
    return check_state(_unpickled(path), keys, path)


def _unpickled(path: Path) -> Any:
    """The object pickled in the checkpoint at ``path`` (tensors and plain containers only)."""
    payload = _payload(path)
    try:
        state = torch.load(io.BytesIO(payload), weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises weights_only=False: not for a file we did not write
        raise _damaged(path, "holds objects other than tensors and plain containers (refused unread: loading "
                             "them could run code)") from None
    except Exception as error:  # torch raises many kinds here, all meaning "not a checkpoint we wrote"
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise _damaged(path, f"cannot be read as a checkpoint ({type(error).__name__}: {first})") from None
    return state


def check_state(state: Any, keys: tuple[str, ...], path: Path) -> dict[str, Any]:
    """``state`` (read from ``path``) if it is a checkpoint holding ``keys`` whose values are sound;
    ``RunError`` naming the file otherwise."""
    if not isinstance(state, dict) or not set(keys) <= set(state):
        raise _damaged(path, f"is not a checkpoint with {', '.join(keys)}")
    iteration = state["iteration"]
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise _damaged(path, f"has iteration {iteration!r}, not a non-negative integer")
    policy = state["policy"]
    if not isinstance(policy, dict) or not all(isinstance(value, torch.Tensor) for value in policy.values()):
        raise _damaged(path, "does not hold a policy's tensors")
    for name, value in policy.items():
        if not bool(torch.isfinite(value).all()):
            raise _damaged(path, f"holds non-finite values in its policy parameter {name}")
    if "best_return" in keys:
        best = state["best_return"]
        if not isinstance(best, (int, float)) or isinstance(best, bool) or math.isnan(best):
            raise _damaged(path, f"has best_return {best!r}, not a number")
    if "rng" in keys and not isinstance(state["rng"], dict):
        raise _damaged(path, "does not hold the random streams' states")
    return state


def restore_policy(policy: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """Put the parameters of checkpoint ``state`` (read from ``path``) into ``policy``; ``RunError``
    if they do not fit the policy the run's config.json describes."""
    try:
        policy.load_state_dict(state["policy"])
    except (RuntimeError, TypeError) as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise RunError(f"{path} does not fit the policy of the run's config.json ({first}); "
                       "the file was changed or damaged") from None
