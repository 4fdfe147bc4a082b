"""The service's edge: ASGI middleware in front of every route, so that nothing a client
sends reaches a parser, a metric label or a log line unchecked.

For each POST to an API endpoint, in this order: the admin token (401, before the body
is read), the body size (413, before it is parsed), the media type (415 unless JSON),
then the JSON itself (400 for invalid JSON, NaN or Infinity, or a key given twice). Every
error answer, ours or BentoML's, leaves as one problem shape (problem.py); client errors
are logged once, without a traceback, escaped and rate-limited. It also serves /metrics:
request counts and durations labelled with the endpoint from a fixed set (any other path
counts as ``other``), and the fields at fault in refused records labelled with the
schema's column (any other as ``other``), so a client cannot create series.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import prometheus_client
from prometheus_client import multiprocess

from modelops.serving import telemetry
from modelops.serving.problem import (
    MEDIA_TYPE,
    LogLimit,
    Problem,
    encode,
    escape,
    problem,
    reshape,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("modelops.serving.edge")
SERVER_ERROR = "modelops.error"  # scope key: what the service says about its own 5xx
SYSTEM_PATHS = ("/", "/docs.json", "/schema.json", "/livez", "/healthz", "/readyz", "/metrics")
OTHER = "other"  # the endpoint label of every path the service does not serve


@dataclass(frozen=True)
class Endpoint:
    """A POST endpoint of the API: whether it needs a JSON body, or the admin token."""

    path: str
    body: bool = True
    admin_token_env: str | None = None


class Edge:
    """The checks, error shape, client-error log and HTTP metrics of the service."""

    def __init__(
        self,
        app: App,
        endpoints: Iterable[Endpoint],
        max_body_bytes: int,
        fields: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.endpoints = {e.path: e for e in endpoints}
        self.labels = frozenset(self.endpoints) | frozenset(SYSTEM_PATHS)
        self.fields = frozenset(fields)  # the schema's columns: labels of refused fields
        self.max_body_bytes = max_body_bytes
        self.log_limit = LogLimit()
        # labelled metric series, looked up once: labels() costs more than the update
        self._per_endpoint: dict[str, tuple[Any, Any]] = {}
        self._answered: dict[tuple[str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in self.labels else OTHER
        start = time.perf_counter()
        status = 500  # if nothing is sent (the client left), count it as a failure

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress, duration = self._series(endpoint)
        in_progress.inc()
        try:
            await self._handle(scope, receive, counted, endpoint)
        finally:
            in_progress.dec()
            duration.observe(time.perf_counter() - start)
            answered = self._answered.get((endpoint, status))
            if answered is None:
                answered = telemetry.HTTP_REQUESTS.labels(endpoint=endpoint, status=str(status))
                self._answered[(endpoint, status)] = answered
            answered.inc()

    def _series(self, endpoint: str) -> tuple[Any, Any]:
        """The endpoint's in-progress gauge and duration histogram (labelled once)."""
        found = self._per_endpoint.get(endpoint)
        if found is None:
            found = (
                telemetry.HTTP_IN_PROGRESS.labels(endpoint=endpoint),
                telemetry.HTTP_DURATION.labels(endpoint=endpoint),
            )
            self._per_endpoint[endpoint] = found
        return found

    async def _handle(self, scope: Scope, receive: Receive, send: Send, endpoint: str) -> None:
        if endpoint == "/metrics":
            if scope["method"] == "GET":
                await _send(send, 200, metrics(), prometheus_client.CONTENT_TYPE_LATEST)
            else:
                refused = problem(405, "Method Not Allowed")
                await self._refuse(send, refused, endpoint, scope["method"], [(b"allow", b"GET")])
            return
        shaped = self._shaping(scope, send, endpoint)
        api = self.endpoints.get(scope["path"])
        if api is None or scope["method"] != "POST":
            await self.app(scope, receive, shaped)
            return
        found, body = await self._check(api, scope, receive)
        if found is not None:
            await self._refuse(send, found, endpoint, scope["method"])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, shaped)

    async def _check(
        self, api: Endpoint, scope: Scope, receive: Receive
    ) -> tuple[Problem | None, bytes]:
        """The problem with a request, if any, and its body."""
        if api.admin_token_env and not _authorized(scope, api.admin_token_env):
            return problem(
                401, "a valid admin token is required: Authorization: Bearer <token>"
            ), b""
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return self._too_large(), b""
        content_type = _header(scope, b"content-type").lower()
        media_type, _, options = content_type.partition(";")
        media_type = media_type.strip()
        charset = options.partition("charset=")[2].strip(' "')
        if (media_type and media_type != "application/json") or charset not in ("", "utf-8"):
            return problem(
                415, f"only application/json (UTF-8) is accepted, not {escape(content_type)}"
            ), b""
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            return self._too_large(), b""
        if not body:
            if api.body:
                return problem(400, "the body must be a JSON object; it is empty"), body
            return None, body
        if not media_type:
            return problem(415, "send the body as application/json (Content-Type header)"), b""
        return _json_problem(body), body

    def _too_large(self) -> Problem:
        return problem(
            413, f"the body exceeds {self.max_body_bytes} bytes (serving.max_body_bytes)"
        )

    def _shaping(self, scope: Scope, send: Send, endpoint: str) -> Send:
        """``send`` that turns every error answer into the problem shape."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def shaped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            found = reshape(start["status"], b"".join(chunks), scope.get(SERVER_ERROR))
            kept = [(k, v) for k, v in start.get("headers", []) if k not in _REPLACED]
            await self._refuse(send, found, endpoint, scope["method"], kept)

        return shaped

    async def _refuse(
        self,
        send: Send,
        found: Problem,
        endpoint: str,
        method: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        for error in found.errors if found.status == 400 else ():
            parts = reversed(error.field.split("."))  # e.g. records.3.<column>
            field = next((part for part in parts if part in self.fields), OTHER)
            telemetry.REFUSED_FIELDS.labels(field=field).inc()
        if found.status < 500 and not self.log_limit.allow():
            telemetry.CLIENT_ERRORS_UNLOGGED.inc()
        elif found.status < 500:
            suppressed, self.log_limit.suppressed = self.log_limit.suppressed, 0
            log.warning(
                "%s %s: %d %s%s",
                escape(method, 16),
                endpoint,
                found.status,
                escape(found.detail, 300),
                f" ({suppressed} client errors not logged before this one)" if suppressed else "",
            )
        await _send(send, found.status, encode(found), MEDIA_TYPE, headers)


_REPLACED = {b"content-type", b"content-length"}


def _json_problem(body: bytes) -> Problem | None:
    """A 400 if ``body`` is not strict JSON: invalid, NaN or Infinity, a repeated key."""
    try:
        _STRICT_JSON.decode(body.decode("utf-8"))
    except RecursionError:
        return problem(400, "invalid JSON: nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        return problem(400, f"invalid JSON: {escape(str(exc), 200)}")
    return None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"the key '{escape(repeated)}' appears twice in one object")
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# One decoder for every body (UTF-8, as the media-type check requires).
_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def _authorized(scope: Scope, token_env: str) -> bool:
    token = os.environ.get(token_env, "")
    given = _header(scope, b"authorization")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    media_type: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    fixed = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": fixed + (headers or [])}
    )
    await send({"type": "http.response.body", "body": body})


def metrics() -> bytes:
    """The Prometheus exposition of every worker (multi-process), or of this process."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return prometheus_client.generate_latest()
    registry = prometheus_client.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return prometheus_client.generate_latest(registry)


class QuietClientErrors(logging.Filter):
    """Drops BentoML's ERROR-with-traceback lines for client errors (the edge logs those
    once, without a traceback); server errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        status = getattr(getattr(exc, "error_code", None), "value", None)
        client = type(exc).__name__ == "ValidationError" or (status is not None and status < 500)
        return not client
