"""The README must stay true to the code: its commands, flags and config fields."""

import dataclasses
import re
from pathlib import Path

from rlmaml.cli import build_parser
from rlmaml.config import TrainConfig

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_starts_with_the_two_fresh_machine_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert first_block == ['pip install torch==2.13.0 && pip install . && rlmaml train',
                           'pip install torch==2.13.0 && pip install ".[test]" && pytest']
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert first_block[1] in ci


def test_every_config_field_is_documented_with_its_default():
    for field in dataclasses.fields(TrainConfig):
        row = re.search(rf"^\| `{field.name}` \| `(.*?)` \|", README, re.M)
        assert row, f"config field {field.name} missing from the README table"
        assert row.group(1) == repr(getattr(TrainConfig(), field.name)), field.name


def test_every_cli_flag_is_documented():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("train", "evaluate", "plot", "check-env"):
        for action in subparsers[name]._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}" in README or f"{flag}`" in README or f", `{flag}`" in README, flag


def test_the_python_example_runs(tmp_path, capsys):
    section = README.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    for old, new in (('"runs/from-python"', repr(str(tmp_path / "run"))), ('"num_iterations": 20', '"num_iterations": 2'),
                     ("num_traj=20", "num_traj=2")):
        assert old in code
        code = code.replace(old, new)
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"after {k} steps" for k in range(4)]
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 2
