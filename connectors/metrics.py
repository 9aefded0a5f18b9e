"""Counters of what the exchange connections went through, per book, for Prometheus.

Every failure path of a source logs a line naming the book and counts it here; Bytewax
serves these next to its own metrics (and `prometheus_client` can serve them alone).
`endpoint` tells a book's sockets apart: `public` (the book's own stream) and, for OKX,
`business` (candles).
"""

from __future__ import annotations

from prometheus_client import Counter

CONNECTION_FAILURES = Counter(
    "marketprism_connection_failures", "Websocket connections that failed or dropped, per book", ["book", "endpoint"]
)
CONNECTIONS = Counter("marketprism_connections", "Websocket connections opened, per book", ["book", "endpoint"])
SILENT_SOCKETS = Counter(
    "marketprism_silent_sockets", "Websocket connections closed for sending nothing too long", ["book", "endpoint"]
)
SUBSCRIBE_ERRORS = Counter("marketprism_subscribe_errors", "Error replies to a subscription, per book", ["book"])
REST_FAILURES = Counter(
    "marketprism_rest_failures",
    "REST snapshot / books-full requests that failed, per book and outcome (HTTP status, 'error', 'bad_body', "
    "or 'prepare': decoding off the worker failed and the flow decoded the answer)",
    ["book", "outcome"],
)
RESYNC_REQUESTS = Counter("marketprism_resync_requests_received", "Resync requests a source acted on", ["book"])
