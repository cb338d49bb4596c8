"""The README and docs/ must stay true to the code (commands, flags, config fields) and to the stored results."""

import re
import subprocess
import sys

from rlmaml.cli import build_parser

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_fresh_machine_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert first_block == ['pip install torch==2.13.0 && pip install . && rlmaml train',
                           'pip install torch==2.13.0 && pip install ".[test]" && pytest']
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert first_block[1] in ci


def test_the_generated_docs_and_readme_table_are_up_to_date():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "docs" / "generate.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_cli_flag_is_documented():
    documented = README + "".join(page.read_text() for page in (REPO_ROOT / "docs").glob("*.md"))
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("train", "evaluate", "plot", "check-env"):
        for action in subparsers[name]._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}" in documented or f"{flag}`" in documented, flag


def test_the_python_example_runs(tmp_path, capsys):
    section = README.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    for old, new in (('"runs/from-python"', repr(str(tmp_path / "run"))), ("num_iterations=20", "num_iterations=2"),
                     ("num_traj=20", "num_traj=2")):
        assert old in code
        code = code.replace(old, new)
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"after {k} steps" for k in range(4)]
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 2


def test_links_in_the_readme_and_docs_name_files_that_exist():
    for page in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_the_product_text_names_no_issue_number_date_or_file_outside_the_repository():
    texts = [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md"), *(REPO_ROOT / "rlmaml").glob("*.py"),
             *(REPO_ROOT / "envs").glob("*.py"), *(REPO_ROOT / "benchmarks").glob("*.py")]
    for path in texts:
        text = path.read_text()
        assert not re.search(r"\bissues? #?\d+", text, re.I), path
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), path
        assert not re.search(r"\.\./shared|\bDESIGN\.md|\bREFERENCE\.md", text), path
