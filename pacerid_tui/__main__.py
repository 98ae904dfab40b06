"""`pacerid-tui`: no subcommand opens the dashboard; every lifecycle step is also a subcommand.

Errors meant for users print one sentence and exit with the error's code (2 for usage errors);
tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pacerid_tui import paths
from pacerid_tui.core.kernel.errors import PaceridError


def common_options(default: object) -> argparse.ArgumentParser:
    """--config, --run and --debug, before or after the command. After it they default to
    SUPPRESS, so `pacerid-tui --config X all` keeps X (a subparser's own default would
    otherwise overwrite it with None)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=default,
        help=f"run config (default: {paths.DEFAULT_CONFIG})",
    )
    common.add_argument(
        "--run", default=default, help="run id or a prefix of it (default: the most recent run)"
    )
    common.add_argument(
        "--debug", action="store_true", default=default or False, help="show tracebacks"
    )
    return common


def parser() -> argparse.ArgumentParser:
    common = common_options(argparse.SUPPRESS)
    top = argparse.ArgumentParser(
        prog="pacerid-tui",
        parents=[common_options(None)],
        description="Train the PacerID classifier on a spot GPU (or this machine) from one "
        "terminal. Without a command, opens the dashboard.",
    )
    sub = top.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=help)

    def settable(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--set",
            dest="sets",
            action="append",
            metavar="KEY=VALUE",
            help="override a config key for this run (repeatable; e.g. training.epochs=5); "
            "recorded in the run's frozen config",
        )
        return parser

    add("dashboard", "open the dashboard (the default)")
    settable(add("launch", "create a run and start its instance"))
    add("upload", "sync trainer/ and configs/ to the host (only what changed)")
    add("setup", "prepare the host's Python (idempotent)")
    add("data", "fetch the dataset on the host (Kaggle or synthetic)")
    train = add("train", "start training detached on the host")
    train.add_argument("--follow", action="store_true", help="stream the log until it ends")
    train.add_argument("--resume", default="auto", help="auto (default), none, or a checkpoint")
    logs = add("logs", "show the training log")
    logs.add_argument("--follow", "-f", action="store_true", help="keep streaming")
    for following in (train, logs):
        following.add_argument(
            "--recover",
            action="store_true",
            help="with --follow: relaunch an instance that is gone for no known reason",
        )
    add("download", "fetch results (new or changed files only)")
    terminate = add("terminate", "terminate the run's instance (stops billing)")
    terminate.add_argument("--instance", help="terminate this instance id, known to a run or not")
    adopt = settable(add("adopt", "give an unknown instance of ours (see `status`) a run again"))
    adopt.add_argument("instance", help="instance id")
    run_all = settable(add("all", "every step from launch to download, then terminate"))
    run_all.add_argument(
        "--keep-on-failure",
        action="store_true",
        help="when a step fails, keep the host (billing) instead of terminating it",
    )
    doctor = add("doctor", "check the account and config before anything is spent")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    run_all.add_argument(
        "--recover",
        action="store_true",
        help="with --run: relaunch an instance that is gone for no known reason",
    )
    swept = add("sweep", "list everything of ours left in every region, priced; --yes removes it")
    swept.add_argument(
        "--yes", action="store_true", help="remove what no run uses (spot requests first)"
    )
    swept.add_argument("--json", action="store_true", help="machine-readable output")
    status = add("status", "list runs with state, uptime and cost")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    shell = add("ssh", "open a shell on the host (or run a command there)")
    shell.add_argument("remote", nargs=argparse.REMAINDER, help="command to run instead")
    export = add("export", "convert a downloaded run's model to Core ML")
    export.add_argument("--checkpoint", type=Path, help="default: best, else latest")
    sync_model = add("sync-model", "copy the exported model into the iOS app")
    sync_model.add_argument("version", help="vMAJOR.MINOR.PATCH")
    sync_model.add_argument("--force", action="store_true", help="overwrite or downgrade")
    hist = add("history", "every run side by side: config, best accuracy, duration, cost")
    hist.add_argument("--json", action="store_true", help="machine-readable output")
    hist.add_argument(
        "--sort", default="created", help="created (default), accuracy, cost, duration, lr, model"
    )
    wrong = add("mistakes", "what a finished run's model got wrong, per class (report.json)")
    wrong.add_argument("--json", action="store_true", help="machine-readable output")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = args.command or "dashboard"
    try:
        if command == "dashboard":
            from pacerid_tui.ui.entry import run_dashboard

            return run_dashboard(args)
        from pacerid_tui.cli import commands  # not needed (nor imported) for the dashboard

        return asyncio.run(commands.dispatch(command, args))
    except PaceridError as err:
        if args.debug:
            raise
        print(f"pacerid-tui: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(
            "pacerid-tui: interrupted; the instance keeps running (see `status`).", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
