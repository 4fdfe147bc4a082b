"""Logging and progress output shared by the CLI and the pipeline stages."""

from __future__ import annotations

import logging
import sys


def setup(stage: str, level: int = logging.INFO) -> logging.Logger:
    """Log ``[stage] message`` lines to stderr and return the stage's logger."""
    logging.basicConfig(level=level, format=f"[{stage}] %(message)s", stream=sys.stderr, force=True)
    return logging.getLogger(f"modelops.{stage}")
