"""The run folder: where config, metrics, checkpoints and held-out tasks live, written safely.

Free of torch (checkpoints' contents are ``rlmaml.checkpoints``), so the command-line parser can use it."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Callable, Iterator

from rlmaml.errors import UserError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class RunError(UserError, ValueError):
    """A run folder that cannot be used; the message is meant for the user."""


class RunWriteError(RunError):
    """A file of a run or an evaluation could not be written (disk full, permissions); any file it
    was replacing is left as it was."""


def make_output_dir(path: Path) -> None:
    """Create ``path`` and its parents, or raise a ``RunError`` saying why it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot create output folder {path}: {error.strerror}") from None
    if not os.access(path, os.W_OK):
        raise RunError(f"cannot write to output folder {path}: permission denied")


EVALUATION_FILES = ("evaluation.json", "evaluation.csv", "evaluation.png")
PREVIOUS_EVALUATIONS = "previous-evaluations"


def keep_previous_evaluation(folder: Path) -> Path | None:
    """Move the evaluation files in ``folder`` (if any) to ``folder/previous-evaluations/<time>/``,
    named by the modification time of the first of evaluation.json, .csv, .png present, so a new
    evaluation does not replace them.

    Returns the folder they went to, or None if there was no previous evaluation."""
    present = [folder / name for name in EVALUATION_FILES if (folder / name).is_file()]
    if not present:
        return None
    written = time.strftime("%Y%m%d-%H%M%S", time.localtime(present[0].stat().st_mtime))
    target = folder / PREVIOUS_EVALUATIONS / written
    suffix = 1
    while target.exists():
        suffix += 1
        target = folder / PREVIOUS_EVALUATIONS / f"{written}-{suffix}"
    try:
        target.mkdir(parents=True)
        for path in present:
            path.rename(target / path.name)
    except OSError as error:
        raise RunWriteError(f"cannot keep the previous evaluation of {folder} in {target}: {error.strerror}"
                            ) from None
    return target


@contextmanager
def output_dir(path: Path) -> Iterator[None]:
    """Make ``path`` as ``make_output_dir`` does before work that fills it; if the work fails (or is
    interrupted) before writing a file there, remove the empty folders this made."""
    made = [folder for folder in (path, *path.parents) if not folder.exists()]  # innermost first
    make_output_dir(path)
    try:
        yield
    except BaseException:
        for folder in made:
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break
        raise


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run folder ``runs/<name>/``."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / "best.pt"

    def checkpoint_for(self, which: str) -> Path:
        """The checkpoint called ``final``, ``best``, or an iteration number kept by ``snapshot_every``."""
        if which == "final":
            return self.checkpoint
        if which == "best":
            return self.best_checkpoint
        if which.isdigit():
            return self.snapshot(int(which))
        raise RunError(f"--checkpoint must be final, best or an iteration number, got {which!r}")

    def snapshot(self, iteration: int) -> Path:
        """The policy kept after ``iteration`` meta-iterations (see ``snapshot_every``)."""
        return self.path / "snapshots" / f"iteration-{iteration:05d}.pt"

    def snapshot_iterations(self) -> list[int]:
        """Iterations of the snapshots the run kept, in order."""
        names = (p.stem.removeprefix("iteration-") for p in (self.path / "snapshots").glob("iteration-*.pt"))
        return sorted(int(name) for name in names if name.isdigit())

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def test_tasks(self) -> Path:
        return self.path / "test_tasks.json"

    @property
    def branch(self) -> Path:
        """Where a run made by ``rlmaml train --branch`` records its source (``rlmaml.branches``)."""
        return self.path / "branch.json"

    def require(self, *files: str) -> None:
        """Raise RunError unless the folder exists and holds the named files (attribute names)."""
        if not self.path.is_dir():
            raise RunError(f"run folder {self.path} " + ("is a file, not a folder" if self.path.exists()
                                                          else "does not exist"))
        for name in files:
            if not getattr(self, name).is_file():
                raise RunError(f"{self.path} is not a complete rlmaml run: {getattr(self, name).name} is missing")


def _cannot_write(path: Path, error: OSError) -> RunWriteError:
    return RunWriteError(f"cannot write {path}: {error.strerror or error}")


WRITTEN = (".lock", "config.json", "metrics.jsonl", "checkpoint.pt", "best.pt", "test_tasks.json", "branch.json",
           "snapshots", "tensorboard", "evaluation.json", "evaluation.csv", "evaluation.png", PREVIOUS_EVALUATIONS)
"""What rlmaml writes inside a run folder."""


def refuse_links(run: RunDir) -> None:
    """``RunError`` if anything rlmaml writes in the run folder is a symbolic link: a write must never
    follow one out of the folder."""
    for name in WRITTEN:
        if (run.path / name).is_symlink():
            raise RunError(f"{run.path / name} is a symbolic link; rlmaml does not write through links (they can "
                           "lead out of the run folder): replace it with a real file or folder")


def lock_run(run: RunDir) -> IO[bytes] | None:
    """Take the run folder's exclusive lock (``.lock``, released when the returned file is closed or
    the process dies, even by ``kill -9``); ``RunError`` if another process holds it. No lock
    (``None``) where the platform lacks ``fcntl`` (Windows) or the file system lacks locks."""
    refuse_links(run)
    if fcntl is None:
        return None
    try:
        handle = (run.path / ".lock").open("ab")
    except OSError as error:
        raise _cannot_write(run.path / ".lock", error) from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        handle.close()
        if not isinstance(error, BlockingIOError):  # a file system without locks (some NFS set-ups)
            return None
        raise RunError(f"{run.path} is being trained by another rlmaml process (or by an unclosed "
                       "Trainer in this one); wait for it to finish or stop it (Ctrl-C or kill PID "
                       "checkpoints) before resuming") from None
    return handle


def remove_stale_temporaries(run: RunDir) -> list[Path]:
    """Delete the temporary files that writes killed half-way (``kill -9``) left in the run folder and
    its snapshots/; call it holding the run's lock, so that no live write is touched. Returns them."""
    stale = [path for folder in (run.path, run.path / "snapshots") if folder.is_dir()
             for path in folder.glob(".*.tmp") if path.is_file() and not path.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _file_mode() -> int:
    """The mode ``open`` would give a new file under the current umask (``mkstemp`` gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over ``path``;
    ``RunWriteError`` if that fails, with ``path`` untouched."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        os.chmod(tmp, _file_mode())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _cannot_write(path, error) from None
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_file(data: bytes, path: Path) -> None:
    """Atomically replace ``path`` with ``data`` (``RunWriteError`` if it cannot be written)."""
    atomic_write(path, lambda handle: handle.write(data))


def _finite(value: Any) -> Any:
    """``value`` with every nan or infinity (a diverged loss, the standard error of one task) replaced
    by None: Python's JSON writes them as NaN and Infinity, which strict readers (jq, JavaScript) reject."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def json_text(value: Any, indent: int | None = None) -> str:
    """``value`` as strict JSON, with null where a number is nan or infinite."""
    return json.dumps(_finite(value), indent=indent, allow_nan=False)


def write_json(value: Any, path: Path) -> None:
    """Atomically write ``value`` as indented strict JSON (nan and infinities as null)."""
    write_file((json_text(value, indent=2) + "\n").encode(), path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, ValueError) as error:  # ValueError: not UTF-8
        raise RunError(f"cannot read {path}: {error}") from None


def read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RunError(f"cannot read {path}: {error}") from None


def read_test_tasks(run: RunDir) -> list[dict[str, Any]]:
    """The held-out tasks the run recorded in ``test_tasks.json``; ``RunError`` if the file is not a
    non-empty list of tasks under ``"tasks"``."""
    recorded = read_json(run.test_tasks)
    recorded = recorded.get("tasks") if isinstance(recorded, dict) else None
    if not isinstance(recorded, list) or not recorded or not all(isinstance(task, dict) for task in recorded):
        raise RunError(f"{run.test_tasks} does not hold a list of tasks under \"tasks\"; "
                       "the file was changed or damaged")
    return recorded


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file. A torn last line (a run killed while appending) is
    ignored; any other line that is not a JSON object raises ``RunError`` rather than being dropped.
    A null (a number that was nan or infinite when written) reads as nan."""
    if not path.is_file():
        return []
    lines = _read_text(path).splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or "iteration" not in record:
            if number == len(lines):
                break
            raise RunError(f"{path} line {number} is not a metrics record; the file was changed or damaged")
        records.append({key: math.nan if value is None else value for key, value in record.items()})
    return records


def truncate_metrics(path: Path, num_iterations: int) -> None:
    """Keep only the records of the first ``num_iterations`` iterations (used on resume)."""
    kept = [r for r in read_metrics(path) if r["iteration"] < num_iterations]
    write_file("".join(json_text(r) + "\n" for r in kept).encode(), path)


def append_metrics(record: dict[str, Any], path: Path) -> None:
    """Append one record as a line; a line torn by a failed write is the last and is ignored on read."""
    try:
        with path.open("a") as handle:
            handle.write(json_text(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise _cannot_write(path, error) from None
