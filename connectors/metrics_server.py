"""The Prometheus endpoint of a MarketPrism process (collector or store).

Loopback unless told otherwise: the figures name books and rates, nothing secret, but an
open port is still an open port. `MARKETPRISM_METRICS_PORT` (default 9108) and
`MARKETPRISM_METRICS_HOST` (default 127.0.0.1); port 0 turns the endpoint off.
"""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


class MetricsEndpoint:
    """`/metrics` served from a background thread until `stop`."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry = REGISTRY) -> None:
        self.host, self.port, self.registry = host, port, registry
        self._server: WSGIServer | None = None

    def start(self) -> MetricsEndpoint:
        if self.port == 0:
            return self
        self._server, _ = start_http_server(self.port, addr=self.host, registry=self.registry)
        self.port = self._server.server_port
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
