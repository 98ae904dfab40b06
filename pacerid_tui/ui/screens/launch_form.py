"""The launch form (`l`): which config, instance type, market and max price, and the training
fields a user changes between runs (model, epochs, learning rate, batch size, image size), with
the current price in each zone beside it (with `instance.regions`: where the run would go, best
first, with the reason per row) and an estimate of the run's duration and cost (for Kaggle data,
from the image count Kaggle lists before anything is spent).

Prices are asked for in a worker (the AWS call takes a moment); typing restarts it after a
short pause, so a half-typed instance type costs no API call. The screen only collects the
choice; `ui/launch.py` turns it into a config file and the app creates the run.
"""

from __future__ import annotations

import asyncio
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from pacerid_tui.config import Config, ModelConfig, load_config
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.steps.dataset_size import DatasetSize, kaggle_size
from pacerid_tui.core.steps.zone_market import ZoneQuotes
from pacerid_tui.ui.launch import TRAINING_FIELDS, Choice, edited, estimate, write_launch_config

MODELS: tuple[str, ...] = typing.get_args(ModelConfig.model_fields["name"].annotation)
TRAINING_LABELS = {
    "model.name": "Model",
    "training.epochs": "Epochs",
    "training.learning_rate": "Learning rate",
    "data.batch_size": "Batch size",
    "data.image_size": "Image size, px",
}

TYPING_PAUSE_S = 0.4
"""Wait this long after the last keystroke before asking for prices again."""
RANKED_ROWS = 4
"""Places shown with `instance.regions`, best first (README: "Choosing where")."""


@dataclass(frozen=True)
class LaunchRequest:
    config_path: Path
    """The file the run will use: the chosen one, or an edited copy under the state folder."""
    config: Config


class LaunchForm(ModalScreen[LaunchRequest | None]):
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", id="launch.cancel", tooltip="Launch nothing"),
    ]

    def __init__(self, config_path: Path, measured: dict[str, float]) -> None:
        super().__init__()
        self.config_path = config_path
        self.measured = measured
        self.quotes = ZoneQuotes()
        self.sizes: dict[str, DatasetSize | None] = {}
        """Kaggle datasets' sizes, as Kaggle listed them while this form was open."""

    def compose(self) -> ComposeResult:
        try:
            config = load_config(self.config_path)
        except PaceridError:
            config = Config()
        instance = config.instance
        price = "" if instance.max_price is None else f"{instance.max_price:g}"
        local = instance.provider == "local"
        with Vertical(id="launch-dialog", classes="dialog"):
            yield Static("[b]Launch a new run[/b]", id="launch-title")
            with Horizontal(id="launch-body"):
                with Vertical(id="launch-fields"):
                    yield Label("Config file")
                    yield Input(str(self.config_path), id="config")
                    yield Label("Instance type")
                    yield Input(instance.instance_type, id="instance-type", disabled=local)
                    yield Label("Market")
                    yield Select(
                        [("spot", "spot"), ("on-demand", "on-demand")],
                        value=instance.market,
                        allow_blank=False,
                        id="market",
                        disabled=local,
                    )
                    yield Label("Max price, USD/h (empty: none)")
                    yield Input(price, id="max-price", disabled=local)
                    if local:
                        yield Static(
                            "[i]The local provider runs on this machine: type, market and "
                            "price do not apply.[/i]"
                        )
                    with Grid(id="launch-training"):
                        yield from self.training_fields(config)
                with Vertical(id="launch-side"):
                    yield Static("Prices now, by zone:\n…", id="zone-prices")
                    yield Static("", id="estimate")
            yield Static("", id="launch-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Launch (enter)", id="launch", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def training_fields(self, config: Config) -> ComposeResult:
        values = {
            "training.epochs": config.training.epochs,
            "training.learning_rate": config.training.learning_rate,
            "data.batch_size": config.data.batch_size,
            "data.image_size": config.data.image_size,
        }
        for key in TRAINING_FIELDS:
            yield Label(TRAINING_LABELS[key])
            field_id = "train-" + key.replace(".", "-").replace("_", "-")
            if key == "model.name":
                yield Select(
                    [(name, name) for name in MODELS],
                    value=config.model.name,
                    allow_blank=False,
                    compact=True,
                    id=field_id,
                )
            else:
                yield Input(
                    f"{values[key]:g}" if key.endswith("rate") else str(values[key]),
                    compact=True,
                    id=field_id,
                )

    def training_choice(self) -> dict[str, str]:
        chosen = {}
        for key in TRAINING_FIELDS:
            widget = self.query_one("#train-" + key.replace(".", "-").replace("_", "-"))
            value = widget.value if isinstance(widget, Input | Select) else ""
            chosen[key] = str(value).strip()
        return chosen

    def on_mount(self) -> None:
        self.query_one("#launch", Button).focus()
        self.update_side(0.0)

    def choice(self) -> tuple[Path, Choice]:
        """The form's values; ValueError when the max price is not a number."""
        text = self.query_one("#max-price", Input).value.strip()
        market = self.query_one("#market", Select).value
        return Path(self.query_one("#config", Input).value.strip()), Choice(
            self.query_one("#instance-type", Input).value.strip(),
            str(market),
            float(text) if text else None,
            self.training_choice(),
        )

    async def form_config(self) -> tuple[Path, Choice, dict[str, Any], Config] | None:
        """The form's choice applied to its config file (read in a thread), or None once the
        form says what is wrong."""
        error = self.query_one("#launch-error", Static)
        try:
            path, choice = self.choice()
            raw, config = await asyncio.to_thread(edited, path, choice)
        except ValueError:
            error.update("Max price must be a number of dollars per hour, e.g. 0.30.")
            return None
        except PaceridError as err:
            error.update(str(err))
            return None
        return path, choice, raw, config

    @on(Input.Changed)
    @on(Select.Changed)
    def changed(self) -> None:
        self.update_side(TYPING_PAUSE_S)

    @work(exclusive=True, group="launch-form", exit_on_error=False)
    async def update_side(self, delay: float) -> None:
        await asyncio.sleep(delay)
        found = await self.form_config()
        if found is None:
            return
        _path, choice, _raw, config = found
        self.query_one("#launch-error", Static).update("")
        side = self.query_one("#zone-prices", Static)
        try:
            where = await asyncio.to_thread(self.quotes.ranking, config)
            prices = {} if where else await asyncio.to_thread(self.zone_prices, config)
        except PaceridError as err:
            side.update(f"Prices unavailable: {err}")
            where, prices = None, {}
        else:
            lines = [f"  {zone:<12} ${price:.4f}/h" for zone, price in prices.items()]
            inst = config.instance
            kind = inst.instance_type if inst.provider == "aws" else "local"
            if where:
                best = [f"Where {kind} would go, best first:"]
                for n, row in enumerate(where.ranked[:RANKED_ROWS], start=1):
                    cost = (
                        "" if row.expected_usd is None else f" · ≈ ${row.expected_usd:.2f} the run"
                    )
                    best += [f"{n}. {row.place}{cost}", f"   {row.risk}"]  # two lines fit the side
                side.update(Text("\n".join([*best, where.basis])))
            else:
                side.update(f"Prices now for {kind}, by zone:\n" + "\n".join(lines or ["  -"]))
        cheapest = min(prices.values()) if prices and choice.market == "spot" else None
        if where is not None:
            cheapest = where.ranked[0].facts.price
        images = await self.kaggle_images(config)
        self.query_one("#estimate", Static).update(
            estimate(config, self.measured, cheapest, images).text(cheapest)
        )

    async def kaggle_images(self, config: Config) -> int | None:
        """The training images of the config's Kaggle dataset, as Kaggle lists them: asked once
        per dataset a form (in a thread: a few HTTP calls), None when it cannot be told."""
        if config.data.source != "kaggle":
            return None
        dataset = config.data.dataset
        if dataset not in self.sizes:
            self.sizes[dataset] = await asyncio.to_thread(kaggle_size, dataset)
        size = self.sizes[dataset]
        return size.train_images if size else None

    def zone_prices(self, config: Config) -> dict[str, float]:
        return self.quotes.now(config.instance)

    @on(Button.Pressed, "#launch")
    async def launch(self) -> None:
        found = await self.form_config()
        if found is None:
            return
        path, _choice, raw, config = found
        same = config == load_config(path)  # nothing edited: the run keeps the user's file
        self.checked_launch(path, same, raw, config)

    @work(exclusive=True, group="launch-check", exit_on_error=False)
    async def checked_launch(
        self, path: Path, same: bool, raw: dict[str, Any], config: Config
    ) -> None:
        """The blocking doctor checks first (quota, network…): a refusal stays in the form."""
        error = self.query_one("#launch-error", Static)
        error.update("Checking the account…")
        try:
            await asyncio.to_thread(self.quotes.ready, config)
        except PaceridError as err:
            error.update(str(err))
            return
        target = path if same else write_launch_config(raw, config, path)
        self.dismiss(LaunchRequest(target, config))

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)
