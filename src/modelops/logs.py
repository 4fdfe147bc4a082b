"""Logging and progress output shared by the CLI and the pipeline stages."""

from __future__ import annotations

import logging
import sys


class _StageFormatter(logging.Formatter):
    """``[stage] message``; warnings and errors also name their level."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage

    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname}: " if record.levelno >= logging.WARNING else ""
        return f"[{self.stage}] {level}{super().format(record)}"


def setup(stage: str, level: int = logging.INFO) -> logging.Logger:
    """Log ``[stage] message`` lines to stderr and return the stage's logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StageFormatter(stage))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return logging.getLogger(f"modelops.{stage}")
