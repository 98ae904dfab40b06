"""The image count of a Kaggle dataset before any spend (issue 26, item 2): kagglesdk's
ListDatasetFiles, answered page by page by the Kaggle stand-in (tests/kaggle_standin.py, shaped
from kagglesdk's ApiListDatasetFilesRequest/Response), and the launch form's estimate from it."""

from __future__ import annotations

import pytest

from pacerid_tui.config import Config
from pacerid_tui.core.steps.dataset_size import DatasetSize, kaggle_size, size_of
from pacerid_tui.ui.launch import estimate
from tests.kaggle_standin import KEY, LIST_RPC, USERNAME, KaggleStandIn

FILES = [
    ("Train/Biotronik/0001.jpg", 30_000),
    ("Train/Biotronik/0002.JPG", 31_000),
    ("Train/Medtronic/0001.png", 29_000),
    ("Test/Medtronic/0001.png", 28_000),
    ("Train/README.md", 500),  # not an image
    ("Train/Medtronic/0002.jpeg", 30_500),
]


def test_the_training_images_are_those_under_train() -> None:
    assert size_of(FILES) == DatasetSize(4, 149_000)


def test_kaggle_lists_the_files_page_by_page(
    kaggle: KaggleStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    kaggle.files = FILES
    assert kaggle_size("jamesphoward/pacemakers") == DatasetSize(4, 149_000)
    listed = [r for r in kaggle.requests if r["path"] == LIST_RPC]
    assert len(listed) == 3  # 6 files, 2 a page


def test_without_an_answer_the_size_stays_unknown(
    kaggle: KaggleStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", "wrong")
    kaggle.files = FILES
    assert kaggle_size("jamesphoward/pacemakers") is None  # refused (401)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    assert kaggle_size("someone/else") is None  # not found (404)
    assert kaggle_size("no-slash") is None


def test_the_estimate_uses_the_count_and_says_where_the_speed_came_from() -> None:
    config = Config.model_validate(
        {"instance": {"provider": "aws", "instance_type": "g4dn.xlarge"},
         "training": {"epochs": 10}}
    )  # fmt: skip
    unknown = estimate(config, {}, 0.20)
    assert unknown.images is None and "dataset size unknown" in unknown.text(0.20)
    measured = estimate(config, {"g4dn.xlarge": 100.0}, 0.20, images=4000)
    # 4,000 images x 10 epochs at 100 img/s: 400 s, at $0.20/h: $0.0222
    assert measured.seconds == pytest.approx(400.0)
    assert measured.cost_usd == pytest.approx(0.20 * 400 / 3600)
    assert "4,000 images × 10 epochs at 100 img/s (measured)" in measured.text(0.20)
