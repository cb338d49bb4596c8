"""The README must stay true to the code (its commands, flags and config fields) and to the stored results."""

import json
import re
import subprocess
import sys

from rlmaml.cli import build_parser

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
MEAN_SE = re.compile(r"([+-]?\d+\.\d+) ± (\d+\.\d+)")


def test_readme_starts_with_the_two_fresh_machine_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert first_block == ['pip install torch==2.13.0 && pip install . && rlmaml train',
                           'pip install torch==2.13.0 && pip install ".[test]" && pytest']
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert first_block[1] in ci


def test_the_generated_configuration_reference_is_up_to_date():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "docs" / "generate.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_cli_flag_is_documented():
    documented = README + (REPO_ROOT / "docs" / "configuration.md").read_text()
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


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Anchors of every heading, with GitHub's -1, -2, ... suffixes for repeated ones."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M):
        slug = github_anchor(heading)
        out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return out


def test_links_to_headings_resolve():
    results_anchors = anchors((REPO_ROOT / "benchmarks" / "RESULTS.md").read_text())
    readme_anchors = anchors(README)
    for target in re.findall(r"RESULTS\.md#([^)\s]+)\)", README):
        assert target in results_anchors, target
    for target in re.findall(r"\]\(#([^)\s]+)\)", README):
        assert target in readme_anchors, target


def stored_rows() -> list[tuple[str, list[tuple[float, float]]]]:
    """Every (mean, standard error) sequence in results/**/evaluation.json: the methods' rows and the
    paired differences (both signs)."""
    rows = []
    for path in sorted((REPO_ROOT / "results").glob("**/evaluation.json")):
        table = json.loads(path.read_text())
        for result in table["results"]:
            rows.append((f"{path} {result['label']}", [(s["mean"], s["stderr"]) for s in result["summary"]]))
        for diff in (table.get("paired") or {}).get("differences", []):
            pairs = [(s["mean"], s["stderr"]) for s in diff["summary"]]
            rows.append((f"{path} minus {diff['label']}", pairs))
            rows.append((f"{path} {diff['label']} minus", [(-m, e) for m, e in pairs]))
    return rows


def decimals(text: str) -> int:
    return len(text.split(".")[1])


def quotes(doc_pairs: list[tuple[str, str]], stored: list[tuple[float, float]]) -> bool:
    """Whether the quoted pairs are this stored sequence (or a consecutive part of it), up to rounding."""
    return len(doc_pairs) <= len(stored) and all(
        abs(float(m) - sm) <= 0.6 * 10 ** -decimals(m) and abs(float(e) - se) <= 0.6 * 10 ** -decimals(e)
        for (m, e), (sm, se) in zip(doc_pairs, stored))


def runs_of_two_or_more(pairs: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Every consecutive run of at least two of a line's 'mean ± se' figures: a line may quote a stored
    sequence next to figures from elsewhere (a table row of several results, a sentence)."""
    return [pairs[a:b] for a in range(len(pairs)) for b in range(a + 2, len(pairs) + 1)]


def test_quoted_figures_round_the_stored_results_correctly():
    """Two or more consecutive 'mean ± se' figures on a line that quote a stored evaluation must round
    each stored value itself (not a value rounded once already)."""
    rows = stored_rows()
    wrong = []
    for doc in (REPO_ROOT / "README.md", REPO_ROOT / "benchmarks" / "RESULTS.md"):
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for doc_pairs in runs_of_two_or_more(MEAN_SE.findall(line)):
                for name, stored in rows:
                    for start in range(len(stored)):
                        if not quotes(doc_pairs, stored[start:]):
                            continue
                        for (m, e), (sm, se) in zip(doc_pairs, stored[start:]):
                            exact = (f"{sm:.{decimals(m)}f}", f"{se:.{decimals(e)}f}")
                            if (m.lstrip("+"), e) != exact:
                                wrong.append(f"{doc.name}:{number}: {m} ± {e} should be {exact[0]} ± {exact[1]} "
                                             f"({name})")
    assert not wrong, "\n".join(sorted(set(wrong)))
