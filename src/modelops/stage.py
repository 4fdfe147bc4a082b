"""The common entry point of the pipeline stage scripts in pipelines/."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from modelops.config import Settings, load_settings
from modelops.errors import InputError
from modelops.logs import setup

StageBody = Callable[[Settings, logging.Logger], None]


def run_stage(name: str, body: StageBody, argv: list[str] | None = None) -> None:
    """Parse ``--params``, run the stage, report its time; on bad input print the
    message and exit 1 (outputs are written atomically, so earlier ones stay intact)."""
    parser = argparse.ArgumentParser(prog=f"pipelines/{name}.py", description=body.__doc__)
    parser.add_argument("--params", default="params.yaml", help="settings file")
    args = parser.parse_args(argv)
    log = setup(name)
    started = time.perf_counter()
    try:
        body(load_settings(args.params), log)
    except InputError as exc:
        log.error("%s", exc)
        log.error("stage '%s' failed; its previous outputs are unchanged", name)
        sys.exit(1)
    log.info("done in %.1f s", time.perf_counter() - started)
