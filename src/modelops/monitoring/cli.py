"""The monitoring commands of ``modelops``: ``modelops timelapse`` (`make timelapse
WEEKS=N`). src/modelops/cli.py adds them with ``add_parser`` and calls ``main``. The
replay's defaults live here, so building the parser imports nothing heavy (every
``modelops`` command builds it)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.config import Settings, load_settings

if TYPE_CHECKING:
    from modelops.monitoring.timelapse import Options

STORE = "BENTOML_HOME"
STRATEGIES = ("never", "scheduled", "drift")
OUT = Path("reports/timelapse")
# Retraining fits the most recent matured weeks: 4 beat 8 after the new tactic in the
# time-lapse (mean weekly ROC-AUC 0.803 against 0.796, drift strategy, one run).
WINDOW_WEEKS = 4


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``timelapse`` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "timelapse",
        help="replay simulated weeks through the service, monitoring and retraining, "
        "per retraining strategy (reports/timelapse)",
    )
    parser.add_argument("--weeks", type=int, default=12, help="weeks to replay (12)")
    parser.add_argument(
        "--window-weeks", type=int, default=WINDOW_WEEKS,
        help=f"matured weeks a retrained model is fitted on ({WINDOW_WEEKS})",
    )  # fmt: skip
    parser.add_argument(
        "--strategies", default=",".join(STRATEGIES),
        help=f"comma-separated, of {', '.join(STRATEGIES)} (all)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="of the label delays (0)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where results go ({OUT})")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep each strategy's prediction log in --out"
    )
    return parser


def options(args: argparse.Namespace) -> Options:
    """The replay's options from the command line."""
    from modelops.monitoring.timelapse import Options

    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    return Options(
        weeks=args.weeks,
        strategies=strategies,
        window_weeks=args.window_weeks,
        seed=args.seed,
        out=args.out,
        keep_logs=args.keep_logs,
    )


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the time-lapse with a BentoML model store of its own (a temporary folder), so
    the project's store keeps only what `make bento` put there. BentoML reads its home
    once, at import: if it is loaded already, the replay runs in a subprocess (which
    reads ``--params``)."""
    # a terminated replay unwinds, so each strategy's service is stopped and its copy removed
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return _run(args, settings)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from modelops.monitoring.timelapse import run

    with tempfile.TemporaryDirectory(prefix="timelapse-store-") as store:
        if "bentoml" in sys.modules:
            command = [sys.executable, "-m", "modelops.monitoring.timelapse", *_argv(args)]
            return subprocess.run(command, env=os.environ | {STORE: store}, check=False).returncode
        before = os.environ.get(STORE)
        os.environ[STORE] = store
        try:
            outcome = run(Path.cwd(), settings, options(args))
        finally:
            if before is None:
                os.environ.pop(STORE, None)
            else:
                os.environ[STORE] = before
    print(f"time-lapse: {len(outcome.weeks)} strategy-weeks in {outcome.seconds['total']:.0f} s; "
          f"{args.out}/summary.md, {args.out}/timelapse.png")  # fmt: skip
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    return [
        "--params", str(getattr(args, "params", "params.yaml")), "--weeks", str(args.weeks),
        "--window-weeks", str(args.window_weeks), "--strategies", args.strategies,
        "--seed", str(args.seed), "--out", str(args.out),
        *(["--keep-logs"] if args.keep_logs else []),
    ]  # fmt: skip


def subprocess_main(argv: list[str]) -> int:
    """``python -m modelops.monitoring.timelapse``: ``main`` in a fresh process."""
    parser = argparse.ArgumentParser(prog="modelops timelapse")
    parser.add_argument("--params", default="params.yaml")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args([*argv[:2], "timelapse", *argv[2:]] if argv[:1] == ["--params"]
                             else ["timelapse", *argv])  # fmt: skip
    return main(args, load_settings(args.params))
