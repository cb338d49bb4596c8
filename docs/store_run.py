"""Stores what the docs report of a finished, evaluated run under results/, small enough to keep in the
repository: ``python docs/store_run.py RUN_DIR results/<study>/<variant>/seed<N>``.

Copies the run's ``config.json`` and its latest ``evaluation.json`` / ``evaluation.csv``, and writes
``training.json``: per meta-iteration, the pre- and post-update training returns, the share of
pre-update actions at the action bounds and the run-away detector's flag. ``docs/generate.py`` builds
the results-over-seeds tables from these files."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

CURVES = ("pre_return", "post_return", "pre_action_bound_share", "runaway")


def training_curves(run_dir: Path) -> dict[str, list[float]]:
    """Each of ``CURVES`` over the run's meta-iterations, from its metrics.jsonl (3 decimals)."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {name: [round(float(record[name]), 3) for record in records] for name in CURVES}


def store(run_dir: Path, destination: Path) -> None:
    """Copy the evidence of ``run_dir`` to ``destination`` (created; existing files replaced)."""
    missing = [name for name in ("config.json", "metrics.jsonl", "evaluation.json") if not (run_dir / name).is_file()]
    if missing:
        raise SystemExit(f"error: {run_dir} has no {', '.join(missing)} (train and evaluate it first)")
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "evaluation.json", "evaluation.csv"):
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, destination / name)
    text = json.dumps(training_curves(run_dir), separators=(",", ":")) + "\n"
    (destination / "training.json").write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("destination", type=Path, metavar="DESTINATION")
    args = parser.parse_args()
    store(args.run_dir, args.destination)
    return 0


if __name__ == "__main__":
    sys.exit(main())
