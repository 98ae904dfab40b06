"""The whole lifecycle through the real `pacerid-tui` program on the embedded local provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.core.test_notify import webhook_receiver

REPO = Path(__file__).resolve().parents[2]


def tiny_config(tmp_path: Path, epochs: int = 2, **instance: Any) -> Path:
    """configs/local.yaml made quick; `instance` overrides keys of its `instance:` section."""
    config = yaml.safe_load((REPO / "configs" / "local.yaml").read_text())
    config["instance"].update(instance)
    config["data"]["image_size"] = 32
    config["data"]["synthetic"].update(train_per_class=24, test_per_class=8)
    config["training"]["epochs"] = epochs
    config["output"]["dir"] = str(tmp_path / "results")
    config["output"]["ios_models_dir"] = str(tmp_path / "ios" / "Models")
    (tmp_path / "ios").mkdir(exist_ok=True)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def finished_post(run_id: str, best: float) -> dict[str, Any]:
    """The webhook's JSON for a local run that finished with `best` validation accuracy."""
    said = f"training finished (best val acc {best:.1%}) · $0.00 spent"  # a chat shows this
    return {
        "run_id": run_id,
        "state": "finished",
        "best_val_acc": best,
        "cost_usd": 0.0,
        "message": "training finished",
        "text": f"pacerid-tui: {run_id} finished: {said}",
        "content": f"pacerid-tui: {run_id} finished: {said}",
    }


CLI_TIMEOUT_S = 240
"""Under pytest's 300 s: a stuck command fails with what it printed, not a bare timeout."""


def cli(
    *args: str, check: bool = True, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pacerid_tui", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=os.environ.copy(),
            cwd=REPO,
        )
    except subprocess.TimeoutExpired as stuck:
        said = stuck.stderr.decode() if isinstance(stuck.stderr, bytes) else stuck.stderr
        pytest.fail(f"`pacerid-tui {' '.join(args)}` ran past {timeout:g} s; it said:\n{said}")
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on 127.0.0.1: (its URL, the JSON bodies POSTed to it)."""
    with webhook_receiver() as receiving:
        yield receiving


def with_webhook(config: Path, url: str) -> Path:
    raw = yaml.safe_load(config.read_text())
    raw["notify"] = {"webhook_url": url}
    config.write_text(yaml.safe_dump(raw))
    return config


def test_launch_to_terminate(tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, posts = receiver
    config = with_webhook(tiny_config(tmp_path), url)
    run_id = cli("launch", "--config", str(config)).stdout.strip()
    assert run_id.startswith("pacerid-local-")
    upload = cli("upload", "--run", run_id)
    assert "files sent" in upload.stderr
    assert "Upload: 0 of" in cli("upload", "--run", run_id).stderr  # nothing changed
    cli("setup", "--run", run_id)
    assert "Setup already done" in cli("setup", "--run", run_id).stdout
    cli("data", "--run", run_id)
    cli("train", "--run", run_id)  # returns at once: training runs detached, this SSH closes
    refused = cli("train", "--run", run_id, check=False)
    assert refused.returncode == 2
    assert "already running" in refused.stderr and "Traceback" not in refused.stderr
    # A controller killed mid-training (kill -9) does not stop training; a new one follows it.
    watcher = subprocess.Popen(
        [sys.executable, "-m", "pacerid_tui", "logs", "-f", "--run", run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert watcher.stdout is not None
    seen = []
    for line in watcher.stdout:  # live lines while training runs
        seen.append(line)
        if "Training resnet18" in line:
            break
    watcher.kill()  # SIGKILL: no cleanup of any kind
    watcher.wait()
    assert not any("INFO Done" in line for line in seen)  # cut before the end
    followed = cli("logs", "--follow", "--run", run_id)
    assert "Epoch 2/2" in followed.stdout
    assert [(p["run_id"], p["state"]) for p in posts] == [(run_id, "finished")]
    again = cli("logs", "--follow", "--run", run_id)  # sees the same end again: no second post
    assert f"{run_id}: training finished" in again.stderr and len(posts) == 1
    cli("download", "--run", run_id)
    results = tmp_path / "results" / run_id
    events = [json.loads(line) for line in (results / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    assert events[-1]["event"] == "done"
    assert (results / "checkpoint_best.pt").stat().st_size > 0
    assert not list(results.glob("checkpoint_epoch_*"))  # only when configured

    exported = cli("export", "--run", run_id)
    assert "Exported" in exported.stderr
    assert (results / "coreml" / "PacerIDClassifier.mlpackage").is_dir()
    cli("sync-model", "v1.0.0", "--run", run_id)
    manifest = json.loads((tmp_path / "ios" / "Models" / "model-manifest.json").read_text())
    assert (manifest["version"], manifest["source_run"]) == ("v1.0.0", run_id)
    lower = cli("sync-model", "v0.9.0", "--run", run_id, check=False)
    assert lower.returncode == 2 and "Traceback" not in lower.stderr

    status = json.loads(cli("status", "--json").stdout)
    assert [(row["run_id"], row["state"], row["epoch"]) for row in status] == [
        (run_id, "running", 2)
    ]
    assert status[0]["cost_usd"] == 0.0
    cli("terminate", "--run", run_id)
    status = json.loads(cli("status", "--json").stdout)
    assert status[0]["state"] == "terminated"
    home = Path(os.environ["PACERID_HOME"])
    instance_id = status[0]["instance_id"]
    assert not (home / "local" / instance_id / "workspace").exists()
    leftovers = subprocess.run(["pgrep", "-f", instance_id], capture_output=True, text=True)
    assert leftovers.stdout == ""


def test_all_posts_the_end_once_and_not_again_on_the_finished_run(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """The dashboard's notices from the CLI: `all` posts the webhook once when the run ends,
    with what the dashboard posts; `all` again on the finished run posts nothing."""
    url, posts = receiver
    config = with_webhook(tiny_config(tmp_path, epochs=1), url)
    done = cli("all", "--config", str(config))
    [run_id] = [r["run_id"] for r in json.loads(cli("status", "--json").stdout)]
    assert f"{run_id}: training finished" in done.stderr
    metrics = (tmp_path / "results" / run_id / "metrics.jsonl").read_text().splitlines()
    best = max(e["val_acc"] for e in map(json.loads, metrics) if e["event"] == "epoch")
    assert posts == [finished_post(run_id, best)]
    again = cli("all", "--run", run_id)
    assert "training finished" not in again.stderr  # no follow: the run had ended
    assert len(posts) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("training:\n  epochs: zero\n", "training.epochs = 'zero' is invalid"),
        ("trainig:\n  epochs: 3\n", "unknown key 'trainig'"),
        ("data: [unclosed\n", "is not valid YAML"),
    ],
)
def test_a_broken_config_is_one_sentence_and_exit_2(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    done = cli("launch", "--config", str(path), check=False)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert str(path) in done.stderr


def test_commands_without_runs_say_what_to_do() -> None:
    done = cli("upload", check=False)
    assert done.returncode == 2
    assert "No runs yet" in done.stderr


def test_kaggle_data_without_credentials_refuses_before_launching(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "configs" / "local.yaml").read_text())
    config["data"]["source"] = "kaggle"
    path = tmp_path / "kaggle.yaml"
    path.write_text(yaml.safe_dump(config))
    done = cli("launch", "--config", str(path), check=False)
    assert done.returncode == 2
    assert "Kaggle credentials are missing" in done.stderr
    home = Path(os.environ["PACERID_HOME"])
    assert not list((home / "local").glob("local-*"))


def test_an_instance_the_registry_forgot_is_listed_adoptable_and_terminable(tmp_path: Path) -> None:
    config = str(tiny_config(tmp_path))
    cli("launch", "--config", config)
    cli("launch", "--config", config)
    home = Path(os.environ["PACERID_HOME"])
    (home / "runs.json").unlink()  # the registry is lost; the instances are not
    listed = json.loads(cli("status", "--json", "--config", config).stdout)
    unknown = [row for row in listed if not row["known"]]
    assert len(listed) == len(unknown) == 2 and {u["state"] for u in unknown} == {"running"}
    assert "pacerid-tui adopt ID" in cli("status", "--config", config).stdout
    adopted = cli("adopt", unknown[0]["instance_id"], "--config", config).stdout.strip()
    assert adopted == unknown[0]["run_id"]
    cli("terminate", "--instance", unknown[1]["instance_id"], "--config", config)
    after = json.loads(cli("status", "--json", "--config", config).stdout)
    assert [(r["run_id"], r["state"], r["known"]) for r in after] == [(adopted, "running", True)]
    cli("terminate", "--run", adopted)
