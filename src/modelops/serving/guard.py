"""ASGI middleware in front of the API: refuses oversized bodies (413) before anything
parses them, and counts every 4xx answer in /metrics (validation failures)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from modelops.serving import telemetry

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestGuard:
    """Body-size limit and 4xx counting for POST requests."""

    def __init__(self, app: App, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"]

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                telemetry.VALIDATION_FAILURES.labels(
                    endpoint=endpoint, status=str(message["status"])
                ).inc()
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared <= self.max_body_bytes:
            await self.app(scope, receive, counting_send)  # the server enforces the length
            return
        body = None if declared is not None else await self._read_body(receive)
        if body is None:
            error = {
                "error": f"request body exceeds {self.max_body_bytes} bytes "
                "(serving.max_body_bytes in params.yaml)"
            }
            await _send_json(counting_send, 413, error)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, counting_send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """A body of undeclared length (chunked), or None once it exceeds the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


async def _send_json(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
