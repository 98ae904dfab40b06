"""`pacerid-tui history` and `mistakes` through the real command line (in-process), over a
registry with two finished runs trained at different learning rates. Their results are what
the trainer writes: metrics.jsonl events and report.json from trainer/report.py itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from pacerid_tui import paths
from pacerid_tui.__main__ import main
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.steps.registry import Registry
from tests.e2e.test_cli_local import tiny_config
from trainer.engine import Evaluation
from trainer.report import build_report

CLASSES = ["BIO - Actros", "MDT - Adapta", "MDT - Sensia", "STJ - Accent"]
CONFUSION = [[5, 0, 0, 0], [0, 2, 3, 0], [0, 1, 4, 0], [1, 0, 0, 4]]  # 5 test images a class


def finished_run(tmp_path: Path, name: str, learning_rate: float, accuracies: list[float]) -> str:
    config = tiny_config(tmp_path / name)
    raw = yaml.safe_load(config.read_text())
    raw["training"]["learning_rate"] = learning_rate
    config.write_text(yaml.safe_dump(raw))
    run_id = f"pacerid-local-20261203-0900-{name}"
    results = tmp_path / name / "results" / run_id
    results.mkdir(parents=True)
    events = [
        {"event": "epoch", "time": 100.0 + n, "epoch": n, "epochs": 2, "val_acc": acc}
        for n, acc in enumerate(accuracies, start=1)
    ]
    (results / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    confusion = torch.tensor(CONFUSION)
    best = max(range(len(accuracies)), key=lambda n: accuracies[n])
    validation = {"val_acc": accuracies[best], "val_loss": 0.4, "val_top5": 1.0, "val_images": 8}
    accuracy = int(confusion.trace()) / int(confusion.sum())
    evaluation = Evaluation(0.5, accuracy, 1.0, confusion)
    report = build_report(evaluation, CLASSES, best + 1, accuracies[best], validation, 2)
    (results / "report.json").write_text(json.dumps(report))
    Registry(paths.registry_file()).save(
        Run(run_id, "local", str(config), created_at=1_796_000_000.0 + learning_rate, epoch=2)
    )
    return run_id


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return (
        finished_run(tmp_path, "a", 0.002, [0.5, 0.75]),
        finished_run(tmp_path, "b", 0.0005, [0.6, 0.55]),
    )


def test_history_lists_each_run_with_its_learning_rate_and_best_accuracy(
    two_runs: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["learning_rate"], r["best_val_acc"], r["test_acc"]) for r in rows] == [
        (two_runs[1], 0.0005, 0.6, 0.75),
        (two_runs[0], 0.002, 0.75, 0.75),
    ]  # validation chose the epoch; the test accuracy is that epoch's one test pass
    assert all(r["model"] == "resnet18" and r["image_size"] == 32 for r in rows)
    assert main(["history", "--sort", "accuracy"]) == 0
    table = capsys.readouterr().out
    assert table.index(two_runs[0]) < table.index(two_runs[1]) and "75.0%" in table
    assert main(["history", "--sort", "colour"]) == 2
    assert "use one of created, accuracy" in capsys.readouterr().err


def test_mistakes_shows_the_worst_classes_first_and_the_confused_pairs(
    two_runs: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mistakes", "--run", two_runs[0]]) == 0
    out = capsys.readouterr().out.splitlines()
    first = out.index("Accuracy 75 % on 20 test images, manufacturer 95 %.")
    chosen = "The model of epoch 2, chosen on validation accuracy 75 %; tested once."
    assert out[first + 1] == chosen
    classes = [line for line in out if "/5" in line]
    assert classes[0].split() == ["40", "%", "2/5", "MDT", "-", "Adapta"]
    assert classes[-1].endswith("5/5  BIO - Actros")
    assert "  3 × MDT - Adapta → MDT - Sensia (60 % of MDT - Adapta)" in out
    assert main(["mistakes", "--run", two_runs[1], "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["pairs"][0] == {
        "true": "MDT - Adapta", "predicted": "MDT - Sensia", "count": 3, "share": 0.6,
    }  # fmt: skip


def test_mistakes_before_the_report_is_downloaded_says_what_to_do(
    two_runs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a" / "results" / two_runs[0] / "report.json").unlink()
    assert main(["mistakes", "--run", two_runs[0]]) == 2
    err = capsys.readouterr().err
    assert "download the finished run first" in err and "Traceback" not in err


def test_two_launches_with_set_show_their_own_learning_rates_in_the_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same config file launched twice with different `--set training.learning_rate=…`: each
    run's frozen config keeps its own value, and the history shows it with the run's best."""
    config = tiny_config(tmp_path)
    launched = []
    for rate, accuracies in (("0.002", [0.5, 0.75]), ("0.0005", [0.6, 0.55])):
        assert (
            main(["launch", "--config", str(config), "--set", f"training.learning_rate={rate}"])
            == 0
        )
        run_id = capsys.readouterr().out.split()[-1]
        assert main(["terminate", "--run", run_id]) == 0
        results = tmp_path / "results" / run_id
        results.mkdir(parents=True, exist_ok=True)
        events = [
            {"event": "epoch", "time": 100.0 + n, "epoch": n, "epochs": 2, "val_acc": acc}
            for n, acc in enumerate(accuracies, start=1)
        ]
        (results / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        launched.append((run_id, float(rate), max(accuracies)))
    capsys.readouterr()
    assert main(["history", "--json"]) == 0
    rows = {
        r["run_id"]: (r["run_id"], r["learning_rate"], r["best_val_acc"])
        for r in json.loads(capsys.readouterr().out)
    }
    assert [rows[run_id] for run_id, _, _ in launched] == launched
    assert yaml.safe_load(config.read_text())["training"]["learning_rate"] != 0.0005
