"""The command line the Makefile and the workflows call: ``modelops <command>``."""

from __future__ import annotations

import argparse
import sys

from modelops.config import load_settings
from modelops.data import dataset
from modelops.errors import InputError
from modelops.logs import setup
from modelops.summary import summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelops", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="settings file (params.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="the DVC-tracked raw dataset")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    data_commands.add_parser(
        "get",
        help="restore raw data from DVC, or regenerate it from the simulator and check its hash",
    )
    add = data_commands.add_parser("append", help="simulate the next week(s) as new batches")
    add.add_argument("--weeks", type=int, default=1, help="how many weeks to add (default 1)")
    commands.add_parser("summary", help="key metrics, lift over baselines, where outputs are")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; input errors print a message and return 1."""
    args = _parser().parse_args(argv)
    log = setup(args.command)
    try:
        if args.command == "summary":
            print(summary())
            return 0
        settings = load_settings(args.params)
        if args.data_command == "get":
            log.info("%s", dataset.get(settings))
        else:
            added = dataset.append(settings, args.weeks)
            log.info("added %s; commit %s", ", ".join(map(str, added)), dataset.dvc_file(settings))
    except InputError as exc:
        log.error("%s", exc)
        return 1
    except FileNotFoundError as exc:
        log.error("%s: run `make run` first", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
