"""Plain HTTP answers on a websocket port, through websockets' `process_request` hook.

The hook sees every request before the websocket handshake; returning a `Response`
answers it as plain HTTP (one request per TCP connection, `Connection: close`), returning
None lets the handshake go on. That is how one port serves a venue's REST and websockets.
"""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Response

JSON = "application/json;charset=UTF-8"


def parse_target(target: str) -> tuple[str, dict[str, str]]:
    """"/api/v3/depth?symbol=BTCUSDT&limit=5" -> ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": "5"})."""
    parts = urlsplit(target)
    return parts.path, {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}


def respond(
    status: int, body: bytes | str, headers: Sequence[tuple[str, str]] = (), content_type: str = JSON
) -> Response:
    """An HTTP response with `body` (text is encoded as UTF-8) and extra `headers`."""
    data = body.encode() if isinstance(body, str) else body
    fields = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Connection", "close"),
            *headers,
        ]
    )
    return Response(status, HTTPStatus(status).phrase, fields, data)


def respond_json(status: int, message: Any, headers: Sequence[tuple[str, str]] = ()) -> Response:
    return respond(status, orjson.dumps(message), headers)
