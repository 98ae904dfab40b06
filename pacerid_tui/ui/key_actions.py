"""Every run action once: its key, its label, its tooltip. Bindings, buttons and the command
palette are all generated from this table, so the three can never disagree; with the app's own
keys, they make the dashboard's bindings (`BINDINGS`, which `?` lists)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Action:
    key: str
    name: str
    """The app's `action_<name>`; also the binding id `run.<name>` and the button id."""
    label: str
    tooltip: str
    footer: bool = True
    """Also in the footer; every action is listed by `?` and the palette either way."""
    button: bool = True
    """Also a button above the log."""


ACTIONS: tuple[Action, ...] = (
    Action("l", "launch", "Launch", "Open the launch form: config, type, market, max price"),
    Action("u", "upload", "Upload", "Sync trainer/ and configs/ to the host (only changes)"),
    Action("e", "setup", "Setup", "Prepare the host's Python (instant the second time)"),
    Action("g", "data", "Data", "Fetch the dataset on the host"),
    Action("t", "train", "Train", "Start training detached on the host (resumes)"),
    Action("f", "follow", "Follow", "Stream the training log and metrics", footer=False),
    Action("d", "download", "Download", "Fetch results (only new or changed files)"),
    Action("x", "terminate", "Terminate", "Terminate the instance: stops billing"),
    Action("r", "run_all", "Run all", "Every step from launch to download"),
    Action(
        "s", "ssh", "SSH", "Open a shell on the host; the dashboard comes back after", footer=False
    ),
    Action(
        "m", "export", "Export", "Export the downloaded best checkpoint to Core ML", footer=False
    ),
    Action(
        "v", "sync_model", "Sync model", "Install the exported model into the iOS app", footer=False
    ),
    Action(
        "a",
        "adopt",
        "Adopt",
        "Give instances of ours that no run knows a run, to follow or terminate them",
        footer=False,
        button=False,
    ),
    Action(
        "w",
        "mistakes",
        "Mistakes",
        "What the selected finished run's model got wrong, per class",
        footer=False,
        button=False,
    ),
    Action(
        "h",
        "history",
        "History",
        "Every run side by side; select several to overlay their curves",
        footer=False,
        button=False,
    ),
    Action(
        "y",
        "log_scale",
        "Log scale",
        "Switch the loss chart between a linear and a log scale",
        footer=False,
        button=False,
    ),
)

BINDINGS: list[BindingType] = [
    *(
        Binding(a.key, a.name, a.label, tooltip=a.tooltip, id=f"run.{a.name}", show=a.footer)
        for a in ACTIONS
    ),
    Binding("f5,ctrl+r", "refresh", "Refresh", tooltip="Ask the providers now", id="app.refresh"),
    Binding("slash", "filter", "Filter log", tooltip="Show only matching lines", id="log.filter"),
    Binding(
        "p",
        "pause_log",
        "Pause log",
        tooltip="Stop or resume auto-scroll",
        id="log.pause",
        show=False,
    ),
    Binding(
        "ctrl+t",
        "toggle_theme",
        "Light/dark",
        tooltip="Switch between the dark and the light theme",
        id="app.theme",
        show=False,
    ),
    Binding(
        "c",
        "doctor",
        "Doctor",
        tooltip="Check the account and config before anything is spent",
        id="app.doctor",
        show=False,
    ),
    Binding("question_mark", "help", "Keys", tooltip="Show every key", id="app.help"),
    Binding("q", "quit", "Quit", tooltip="Leave; instances keep running", id="app.quit"),
]
"""The dashboard's keys: one binding per run action (id `run.<name>`), then the app's own;
`?` lists them all (`screens/help.py`)."""
