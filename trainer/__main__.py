"""`python -m trainer {synthetic,download,weights,train,export}`: the trainer's command line.

The controller runs these on the host over SSH and reads only exit codes and files (see
DESIGN.md, "The host contract"). Exit codes: 0 done; 1 failed; 2 bad arguments or config;
75 stopped by a spot notice or SIGTERM after writing a checkpoint (run `train` again to resume).
Problems are one sentence on stderr; --debug shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from trainer.errors import EXIT_FAILURE, TrainerError, UsageError

COMMANDS = ("synthetic", "download", "weights", "train", "export")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--config", required=True, type=Path, help="configs/*.yaml")
    parser.add_argument(
        "--data", type=Path, help="dataset folder (Train/, Test/); all but weights need it"
    )
    parser.add_argument("--output", type=Path, help="run outputs; default: DATA/../output")
    parser.add_argument(
        "--resume",
        default="auto",
        help="auto (latest checkpoint in --output, if any), none, or a checkpoint path",
    )
    parser.add_argument("--epochs", type=positive_int, help="override training.epochs")
    parser.add_argument(
        "--credentials-stdin",
        action="store_true",
        help='download: read {"username": …, "key": …} for Kaggle from stdin',
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        from trainer.export import main as export_main

        return export_main(argv[1:])
    args = parse_args(argv)
    from trainer.metrics import setup_console_logging

    setup_console_logging(verbose=os.environ.get("RANK", "0") == "0")
    try:
        return dispatch(args, argv)
    except TrainerError as err:
        if args.debug:
            raise
        print(err, file=sys.stderr)
        return err.exit_code
    except Exception as err:
        if args.debug:
            raise
        print(f"{args.command} failed: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAILURE


def dispatch(args: argparse.Namespace, argv: list[str]) -> int:
    from trainer.config import load_config

    config = load_config(args.config, args.epochs)
    if args.command == "weights":  # setup: ImageNet weights into torch's cache, once
        if not config.model.pretrained:
            print("model.pretrained is false: no weights to fetch.")
            return 0
        from trainer.weights import fetch

        fetch(config.model.name)
        return 0
    if args.data is None:
        raise UsageError(f"{args.command} needs the dataset folder: pass --data DIR.")
    data_dir = args.data.expanduser().resolve()
    if args.command == "synthetic":
        from trainer.synthetic import ensure_synthetic

        ensure_synthetic(data_dir, config.data.synthetic, config.data.image_size)
        return 0
    if args.command == "download":
        from trainer.download import download

        download(config.data.dataset, data_dir, sys.stdin if args.credentials_stdin else None)
        return 0
    from trainer.distributed import gpus_to_spread_over, torchrun_argv

    processes = gpus_to_spread_over(config.training.device)
    if processes > 1:
        command = torchrun_argv(argv, processes)
        os.execv(command[0], command)
    from trainer.run import train

    output = (args.output or data_dir.parent / "output").expanduser().resolve()
    return train(config, data_dir, output, args.resume)


if __name__ == "__main__":
    sys.exit(main())
