"""One shape for every error answer, client text made safe to repeat, and a rate limit
for log lines about requests.

Every 4xx and 5xx answer of the service is an RFC 9457 problem, served as
``application/problem+json``::

    {"status": 400, "title": "Bad Request",
     "detail": "record.age: Input should be greater than or equal to 0",
     "errors": [{"field": "record.age",
                 "message": "Input should be greater than or equal to 0"}]}

``errors`` lists the fields at fault (empty when the request as a whole is). Whatever
the client sent is repeated only escaped (no control characters reach a log line) and
cut to a bounded length.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

MEDIA_TYPE = "application/problem+json"
MAX_ECHO = 80  # characters of one client string (a field name, an id) an answer repeats
MAX_DETAIL = 500  # characters of a problem's detail
MAX_ERRORS = 20  # field errors listed in one answer; the detail counts the rest
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\\]")


class FieldError(BaseModel):
    """One field at fault: where (dotted path in the body) and which rule it breaks."""

    field: str
    message: str


class Problem(BaseModel):
    """The body of every error answer (RFC 9457 problem details)."""

    status: int = Field(description="the HTTP status code")
    title: str = Field(description="the status code's phrase")
    detail: str = Field(description="what is wrong, naming the field and the rule")
    errors: list[FieldError] = Field(description="the fields at fault; empty if none")


def escape(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` safe for a log line or an answer: control characters, lone surrogates
    and backslashes escaped, cut to ``limit`` characters (the cut said)."""
    cut = _UNSAFE.sub(
        lambda m: m.group().encode("unicode_escape", "backslashreplace").decode(), text[:limit]
    )
    return cut if len(text) <= limit else f"{cut}... ({len(text)} characters)"


def problem(status: int, detail: str, errors: Sequence[FieldError] = ()) -> Problem:
    """A problem for ``status``; ``detail`` is cut to MAX_DETAIL characters."""
    return Problem(
        status=status,
        title=HTTPStatus(status).phrase,
        detail=detail if len(detail) <= MAX_DETAIL else detail[: MAX_DETAIL - 3] + "...",
        errors=list(errors[:MAX_ERRORS]),
    )


def field_errors(errors: list[dict[str, Any]]) -> Problem:
    """A 400 for pydantic validation errors (their ``loc`` and ``msg``)."""
    found = [
        FieldError(
            field=".".join(escape(str(part)) for part in error.get("loc", ())) or "body",
            message=str(error.get("msg", "invalid")).removeprefix("Value error, "),
        )
        for error in errors
    ]
    detail = "; ".join(f"{e.field}: {e.message}" for e in found[:3])
    if len(found) > 3:
        detail += f"; and {len(found) - 3} more (errors lists {min(len(found), MAX_ERRORS)})"
    return problem(400, detail or "invalid request", found)


def reshape(status: int, body: bytes, server_detail: str | None = None) -> Problem:
    """The problem for an error answer of BentoML or Starlette, whatever its shape:
    pydantic errors (``{"error", "detail": [...]}``), ``{"error": ...}`` (also inside a
    list) or plain text. ``server_detail``: what the service said about a 5xx (BentoML
    hides every 5xx message behind a generic one)."""
    try:
        content: Any = json.loads(body)
    except ValueError:
        content = body.decode("utf-8", "replace").strip()
    if isinstance(content, list) and len(content) == 1:
        content = content[0]
    if isinstance(content, dict) and isinstance(content.get("detail"), list):
        return field_errors(content["detail"])
    if status >= 500 and server_detail:
        return problem(status, server_detail)
    if isinstance(content, dict) and isinstance(content.get("error"), str):
        return problem(status, escape(content["error"], MAX_DETAIL))
    if isinstance(content, str) and content:
        return problem(status, escape(content, MAX_DETAIL))
    return problem(status, HTTPStatus(status).phrase)


def encode(found: Problem) -> bytes:
    """The answer's body."""
    return found.model_dump_json().encode()


@dataclass
class LogLimit:
    """A token bucket for log lines about requests: ``burst`` at once, ``per_second`` after;
    ``suppressed`` counts the lines not written since the last one that was."""

    per_second: float = 5.0
    burst: float = 20.0
    _tokens: float = 20.0
    _last: float = field(default_factory=time.monotonic)
    suppressed: int = 0

    def allow(self) -> bool:
        """Whether one more line may be written now."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.suppressed += 1
        return False
