"""Comparison methods (pretrained, oracle, random), multi-run evaluation tables and figures."""

import csv
import json
import math
import shutil
import warnings

import numpy as np
import pytest
import torch

from rlmaml import report
from rlmaml.checkpoints import load_checkpoint
from rlmaml.cli import main
from rlmaml.config import ConfigError, from_dict
from rlmaml.evaluation import checkpoint_label, evaluation_tasks, paired_differences, summarize
from rlmaml.paper import paper_curves
from rlmaml.report import _line_style, adaptation_title, csv_rows, episode_lengths, plot_adaptation, plot_training
from rlmaml.runs import RunDir, read_metrics
from rlmaml.sampling import TaskSampler
from rlmaml.seeding import RandomStreams

TINY = ["--num-tasks", "3", "--num-traj", "4", "--horizon", "10", "--hidden-sizes", "8", "--num-iterations", "2",
        "--set", "num_eval_tasks=5", "--no-progress", "--no-evaluate"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per method, same seed and task family."""
    root = tmp_path_factory.mktemp("methods")
    paths = {}
    for method in ("maml", "pretrained", "oracle", "random"):
        paths[method] = root / method
        assert main(["train", *TINY, "--method", method, "--run-dir", str(paths[method])]) == 0
    return paths


def test_baselines_train_without_inner_steps_and_random_not_at_all(runs):
    pretrained = read_metrics(RunDir(runs["pretrained"]).metrics)
    assert len(pretrained) == 2 and all(r["pre_return"] == r["post_return"] for r in pretrained)
    maml = read_metrics(RunDir(runs["maml"]).metrics)
    assert all(r["pre_return"] != r["post_return"] for r in maml)
    assert read_metrics(RunDir(runs["random"]).metrics) == []
    assert load_checkpoint(runs["random"] / "checkpoint.pt")["iteration"] == 0
    assert from_dict({"method": "pretrained", "num_inner_steps": 2}).inner_lrs == ()


def test_oracle_policy_observes_the_task_parameter(runs):
    oracle = load_checkpoint(runs["oracle"] / "checkpoint.pt")["policy"]
    maml = load_checkpoint(runs["maml"] / "checkpoint.pt")["policy"]
    assert oracle["weight0"].shape[0] == maml["weight0"].shape[0] + 2  # Navigation2D's goal (x, y)


def test_one_evaluation_of_all_methods_on_the_same_tasks(runs, tmp_path, capsys):
    out = tmp_path / "compare"
    order = ["maml", "pretrained", "oracle", "random"]
    assert main(["evaluate", *(str(runs[m]) for m in order), "--num-steps", "2", "--num-traj", "3",
                 "--out-dir", str(out)]) == 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    labels = [r["label"] for r in evaluation["results"]]
    assert labels[-1] == "random init" and labels[0].startswith("MAML (final, it. 2)")
    assert [r["checkpoint"] for r in evaluation["results"]] == ["final", "best"] * 3 + ["final"]
    assert evaluation["num_tasks"] == 5 and all(len(r["per_task"]) == 5 for r in evaluation["results"])
    assert evaluation["tasks_from"] == str(runs["maml"])
    assert (out / "evaluation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (out / "evaluation.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    oracle_rows = [row for row in rows if row["method"] == "oracle"]
    assert [row["step"] for row in oracle_rows] == ["0", "0"]  # told the task: evaluated without adaptation
    assert len(rows) == 5 * 3 + 2 and {row["metric"] for row in rows} == {"return"}
    printed = capsys.readouterr().out
    assert all(label in printed for label in labels)
    paired = evaluation["paired"]
    assert paired["reference"] == labels[0] and [d["label"] for d in paired["differences"]] == labels[1:]
    first, oracle = evaluation["results"][0], evaluation["results"][4]
    oracle_minus = next(d for d in paired["differences"] if d["label"] == oracle["label"])
    assert oracle_minus["summary"][2]["mean"] == pytest.approx(  # the oracle's one level, against step 2
        np.mean([maml[2] - level[0] for maml, level in zip(first["per_task"], oracle["per_task"])]))
    block = printed[printed.index(f"{labels[0]} minus each, paired over the 5 tasks"):].splitlines()
    assert [line.split("  ")[0] for line in block[2:2 + len(labels) - 1]] == labels[1:]


def test_paired_differences_match_a_direct_computation_on_fixed_returns():
    maml = [[-10.0, -4.0, -2.0], [-20.0, -2.0, -1.5], [-30.0, -3.0, -2.5], [-12.5, -1.0, -1.0]]  # [tasks][steps]
    pretrained = [[-11.0, -9.0, -3.0], [-19.0, -8.0, -2.0], [-31.0, -7.0, -4.0], [-12.0, -6.0, -1.0]]
    oracle = [[-0.5], [-0.7], [-0.4], [-0.6]]  # no inner steps: one level
    short = [[-10.0, -5.0], [-20.0, -4.0], [-30.0, -6.0], [-12.5, -2.0]]  # one step fewer
    results = [{"label": name, "per_task": values} for name, values in
               (("maml", maml), ("pretrained", pretrained), ("oracle", oracle), ("short", short))]
    differences = paired_differences(results)
    assert [d["label"] for d in differences] == ["pretrained", "oracle", "short"]
    expected = {"pretrained": np.array(maml) - np.array(pretrained), "oracle": np.array(maml) - np.array(oracle),
                "short": np.array(maml)[:, :2] - np.array(short)}
    for difference in differences:
        values = expected[difference["label"]]  # [tasks][steps]
        assert [row["step"] for row in difference["summary"]] == list(range(values.shape[1]))
        for row, column in zip(difference["summary"], values.T):
            assert row["mean"] == pytest.approx(column.mean())
            assert row["stderr"] == pytest.approx(column.std(ddof=1) / math.sqrt(len(column)))
    reversed_order = paired_differences([results[2], results[0]])[0]["summary"]  # the oracle first: held level too
    assert [row["mean"] for row in reversed_order] == pytest.approx(list((np.array(oracle) - np.array(maml)).mean(0)))


def test_labels_tell_maml_runs_with_another_inner_objective_apart():
    assert checkpoint_label(from_dict({}), "final", 300) == "MAML (final, it. 300)"
    assert checkpoint_label(from_dict({"inner_objective": "lvc"}), "best", 12) == "MAML-LVC (best, it. 12)"
    assert checkpoint_label(from_dict({"method": "oracle"}), "100", 100) == "oracle (it. 100)"
    assert checkpoint_label(from_dict({"method": "random"}), "final", 0) == "random init"


def test_two_runs_of_one_method_are_told_apart_by_their_folders(runs, tmp_path, capsys):
    copy = tmp_path / "maml-copy"
    shutil.copytree(runs["maml"], copy)
    out = tmp_path / "eval"
    main(["evaluate", str(runs["maml"]), str(copy), str(runs["pretrained"]), "--num-traj", "2", "--num-steps", "1",
          "--checkpoint", "final", "--out-dir", str(out)])
    labels = [r["label"] for r in json.loads((out / "evaluation.json").read_text())["results"]]
    assert labels == ["MAML (final, it. 2) [maml]", "MAML (final, it. 2) [maml-copy]", "pretrained (final, it. 2)"]
    printed = capsys.readouterr().out
    assert all(label in printed for label in labels)
    with open(out / "evaluation.csv") as handle:
        assert {row["label"] for row in csv.DictReader(handle)} == set(labels)


def test_figure_gives_each_run_of_one_method_its_own_colour_and_each_checkpoint_its_own_line():
    results = [{"method": m, "run": r} for m, r in
               [("maml", "a"), ("maml", "a"), ("maml", "b"), ("pretrained", "p"), ("maml", "b"), ("oracle", "o")]]
    styles = [_line_style(results, i) for i in range(len(results))]
    (a_final, a_best, b_final, pretrained, b_best, oracle) = styles
    assert a_final[0] == a_best[0] and b_final[0] == b_best[0]  # one colour per run
    assert len({a_final[0], b_final[0], pretrained[0], oracle[0]}) == 4
    assert a_final[1] == b_final[1] == "-" and a_best[1] == b_best[1] == "--"  # final solid, best dashed


def test_table_means_and_standard_errors_match_a_direct_computation():
    per_task = [[-10.0, -4.0], [-20.0, -2.0], [-30.0, -3.0], [-12.5, -1.0]]  # [tasks][steps]
    summary = summarize(torch.tensor(per_task).T)
    evaluation = {"results": [{"label": "x", "method": "maml", "run": "r", "checkpoint": "final", "iteration": 1,
                               "step_sizes": [0.1], "summary": summary, "per_task": per_task}]}
    rows = csv_rows(evaluation)
    for step, row in enumerate(rows):
        values = np.array([task[step] for task in per_task])
        assert row["mean"] == pytest.approx(values.mean())
        assert row["stderr"] == pytest.approx(values.std(ddof=1) / math.sqrt(len(values)))
        assert [float(v) for v in row["per_task"].split()] == list(values)
    assert rows[1]["step_size"] == 0.1 and rows[0]["step_size"] == 0.0


def test_evaluation_of_several_runs_is_deterministic_for_a_seed(runs, tmp_path):
    def per_task(seed):
        out = tmp_path / f"e{seed}"
        main(["evaluate", str(runs["maml"]), str(runs["pretrained"]), "--num-traj", "2", "--num-steps", "1",
              "--seed", str(seed), "--out-dir", str(out)])
        return [r["per_task"] for r in json.loads((out / "evaluation.json").read_text())["results"]]
    assert per_task(4) == per_task(4) != per_task(5)


def test_held_out_tasks_never_overlap_training_or_validation_tasks(runs):
    run = RunDir(runs["maml"])
    config = from_dict(json.loads(run.config.read_text()))
    test = [json.dumps(t) for t in evaluation_tasks(run)]
    validation = [json.dumps(t) for t in evaluation_tasks(run, "validation")]
    sampler = TaskSampler(config.task.env_id)
    train_stream = RandomStreams.from_seed(config.seed).train_tasks
    training = {json.dumps(t) for _ in range(200) for t in sampler.sample_tasks(config.task.num_tasks, train_stream)}
    assert len(training) == 200 * config.task.num_tasks and len(set(test)) == len(test) == len(validation)
    assert not training & set(test) and not training & set(validation) and not set(test) & set(validation)


def test_comparing_runs_of_different_families_is_a_one_line_error(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a comparison's default output folder runs/compare-<time> would go
    other = tmp_path / "clip"
    main(["train", *TINY, "--set", 'env_kwargs={"action_mode": "clip"}', "--run-dir", str(other)])
    capsys.readouterr()
    assert main(["evaluate", str(runs["maml"]), str(other)]) == 2
    err = capsys.readouterr().err
    assert "compare runs of one task family" in err and len(err.strip().splitlines()) == 1
    longer = tmp_path / "longer"
    main(["train", *TINY, "--horizon", "12", "--run-dir", str(longer)])
    capsys.readouterr()
    assert main(["evaluate", str(runs["maml"]), str(longer)]) == 2
    assert f"{longer} has horizon 12, but {runs['maml']} has 10" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # a refused comparison leaves no empty output folder behind


def test_plot_writes_training_curves_of_several_runs(runs, tmp_path, capsys):
    output = tmp_path / "curves.png"
    assert main(["plot", str(runs["maml"]), str(runs["pretrained"]), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert output.read_bytes()[:4] == b"\x89PNG" and str(output) in printed
    maml, pretrained = (read_metrics(RunDir(runs[m]).metrics) for m in ("maml", "pretrained"))
    summary = printed.splitlines()[:4]  # TINY runs have 2 iterations: the window is both
    assert summary[0].startswith("meta-iterations 0-1: ") and summary[0].endswith("minus maml, paired over iterations")
    assert summary[2].split() == ["maml", "2", f"{np.mean([r['pre_return'] for r in maml]):.2f}",
                                  f"{np.mean([r['post_return'] for r in maml]):.2f}",
                                  f"{np.median([r['time_total'] for r in maml]):.2f}",
                                  f"{np.median([r['kl'] for r in maml]):.4f}"]
    differences = [p["post_return"] - m["post_return"] for p, m in zip(pretrained, maml)]
    assert summary[3].split()[-3:] == [f"{np.mean(differences):+.2f}", "±",
                                       f"{np.std(differences, ddof=1) / math.sqrt(2):.2f}"]
    assert main(["plot", str(runs["maml"]), "--output", str(output), "--iterations", "1-0"]) == 2
    assert "--iterations expects FIRST-LAST" in capsys.readouterr().err
    assert main(["plot", str(runs["random"])]) == 2
    assert "a random-initialisation run does not train" in capsys.readouterr().err
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "metrics.jsonl").write_text("")  # a run that has not finished an iteration
    assert main(["plot", str(tmp_path / "fresh")]) == 2
    assert "no metrics to plot yet" in capsys.readouterr().err


def _records(pre_lengths, post_lengths):
    return [{"iteration": i, "pre_return": -10.0 + i, "post_return": -8.0 + i, "kl": 0.01, "time_total": 1.0,
             **({} if pre is None else {"pre_length": pre, "post_length": post})}
            for i, (pre, post) in enumerate(zip(pre_lengths, post_lengths))]


def test_training_plot_shows_episode_lengths_only_when_episodes_end_early(tmp_path):
    full = _records([200.0] * 5, [200.0] * 5)  # never terminates: every trajectory runs to the horizon
    unlogged = _records([None] * 5, [None] * 5)  # metrics written before lengths were logged
    early = _records([40.0, 45.0, 60.0, 80.0, 90.0], [42.0, 50.0, 70.0, 85.0, 95.0])
    assert episode_lengths(full) is None and episode_lengths(unlogged) is None
    iteration, pre, post = episode_lengths(unlogged + early)
    np.testing.assert_array_equal(pre, [40, 45, 60, 80, 90])
    np.testing.assert_array_equal(post, [42, 50, 70, 85, 95])
    assert len(iteration) == 5
    without = plot_training([("a", full), ("b", unlogged)], tmp_path / "a.png")
    assert len(without) == 3 and not any("steps per trajectory" in label for label in without)
    with_lengths = plot_training([("a", full), ("b", early)], tmp_path / "b.png", smooth=2)
    assert len(with_lengths) == 4 and with_lengths[3] == "mean steps per trajectory (moving average of 2)"
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_validation_task_set_is_evaluated_on_other_tasks_than_the_test_set(runs, tmp_path):
    out = {}
    for task_set in ("test", "validation"):
        main(["evaluate", str(runs["maml"]), "--task-set", task_set, "--num-traj", "2", "--num-steps", "1",
              "--checkpoint", "final", "--out-dir", str(tmp_path / task_set)])
        out[task_set] = json.loads((tmp_path / task_set / "evaluation.json").read_text())
    assert out["validation"]["task_set"] == "validation" and out["test"]["task_set"] == "test"
    assert out["validation"]["results"][0]["per_task"] != out["test"]["results"][0]["per_task"]


def test_figure_title_names_the_step_sizes_only_when_every_method_shares_them():
    def evaluation(*schedules):
        results = [{"method": "maml", "step_sizes": list(s)} for s in schedules]
        return {"env_id": "e", "num_tasks": 4, "task_set": "test", "num_traj": 2,
                "results": results + [{"method": "oracle", "step_sizes": []}]}
    assert adaptation_title(evaluation((0.1, 0.025), (0.1, 0.025))).endswith("step sizes 0.1, 0.025 for every method")
    assert "step sizes" not in adaptation_title(evaluation((0.1, 0.025), (0.05, 0.01)))  # in the legend instead


def test_figure_of_many_checkpoints_keeps_its_axes_and_legend_apart(tmp_path):
    summary = [{"mean": -3.0, "stderr": 0.1}, {"mean": -2.0, "stderr": 0.1}]
    results = [{"label": f"MAML (it. {10 * i})", "method": "maml", "run": "a", "step_sizes": [0.1],
                "summary": summary} for i in range(1, 31)]
    evaluation = {"env_id": "e", "num_tasks": 4, "task_set": "test", "num_traj": 2, "results": results}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a legend taller than the figure collapses the axes, with a warning
        plot_adaptation(evaluation, tmp_path / "many.png")
    assert (tmp_path / "many.png").stat().st_size > 0


def test_training_plot_of_many_runs_has_one_legend_that_fits_and_a_colour_per_run(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path, dpi: figures.append(fig))
    adapting = [(f"maml-{i}", _records([40.0 + i] * 5, [50.0] * 5)) for i in range(11)]
    pretrained = [("pretrained", [{**r, "post_return": r["pre_return"]} for r in _records([None] * 5, [None] * 5)])]
    plot_training(adapting + pretrained, tmp_path / "many.png")
    (fig,) = figures
    fig.canvas.draw()
    (legend,) = fig.legends
    assert all(ax.get_legend() is None for ax in fig.axes)
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == [f"maml-{i}" for i in range(11)] + ["pretrained (no inner step)", "before adaptation",
                                                           "after adaptation"]
    colors = {tuple(handle.get_color()) for handle in legend.legend_handles[:12]}
    assert len(colors) == 12
    box, page = legend.get_window_extent(), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1


def test_evaluate_with_paper_adds_the_published_curves_to_table_json_and_figure(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "--num-tasks", "2", "--num-traj", "2", "--horizon", "100", "--hidden-sizes", "8",
                 "--num-iterations", "1", "--no-progress", "--no-evaluate", "--run-dir", str(run)]) == 0
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path, dpi: figures.append(fig))
    capsys.readouterr()
    assert main(["evaluate", str(run), "--paper", "--checkpoint", "final", "--num-steps", "2", "--num-traj", "2",
                 "--num-tasks", "2", "--no-progress", "--out-dir", str(tmp_path / "out")]) == 0
    paper = json.loads((tmp_path / "out" / "evaluation.json").read_text())["paper"]
    assert paper["curves"] == {"maml": [-40.4, -11.7, -3.3], "pretrained": [-40.8, -19.7, -11.7],
                               "random": [-82.7, -58.0, -53.8], "oracle": [-2.3]}  # cut to the steps evaluated
    table = capsys.readouterr().out
    assert [line.split()[2:] for line in table.splitlines() if line.startswith("paper: MAML")] == [
        ["-40.4", "-11.7", "-3.3"]]
    (fig,) = figures
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert labels[1:] == ["paper: MAML", "paper: pretrained", "paper: random init", "paper: oracle"]


def test_evaluate_with_paper_refuses_families_and_horizons_the_paper_did_not_run(runs, capsys):
    main(["evaluate", str(runs["maml"]), "--paper"])  # TINY runs: Navigation2D with horizon 10
    assert "returns are over 100 steps, but the runs have horizon 10" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="published no results for rlmaml/AntGoal-v0"):
        paper_curves("rlmaml/AntGoal-v0", None, 3)
    assert paper_curves("rlmaml/AntVel-v0", 200, 1)["curves"] == {"maml": [30.6, 96.7], "oracle": [107.9]}
