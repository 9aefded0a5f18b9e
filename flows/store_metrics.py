"""The store process's Prometheus endpoint: its own port (`MARKETPRISM_STORE_METRICS_PORT`,
default 9109, so that `marketprism collect` and its store share a machine), loopback unless
`MARKETPRISM_STORE_METRICS_HOST` says otherwise, 0 = off.

The endpoint is a convenience for watching: a port already taken is logged and the store
goes on storing without it. Its threads are daemons, so they never keep a stopped store alive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from connectors.metrics_server import MetricsEndpoint
from connectors.store_lag import StoreLagMonitor
from connectors.store_metrics import STORE_METRICS
from schemas.settings import StoreSettings

log = logging.getLogger("marketprism.store")

LAG_INTERVAL_S = 5.0  # a third of the usual scrape interval


@dataclass(slots=True)
class StoreMetricsEndpoint:
    """The endpoint and the lag reader feeding it; `stop` ends both."""

    endpoint: MetricsEndpoint
    lag: StoreLagMonitor

    def stop(self) -> None:
        self.lag.stop()
        self.endpoint.stop()


def start_store_metrics(settings: StoreSettings) -> StoreMetricsEndpoint | None:
    """Serve the store's metrics, or None (the reason logged) when off or the port is taken."""
    if settings.store_metrics_port == 0:
        return None
    try:
        endpoint = MetricsEndpoint(settings.store_metrics_host, settings.store_metrics_port).start()
    except OSError as exc:
        log.error("store metrics endpoint %s:%d not started (%s); storing without it",
                  settings.store_metrics_host, settings.store_metrics_port, exc)
        return None
    lag = StoreLagMonitor(
        settings.nats_url, on_lag=STORE_METRICS.note_lag, interval_s=LAG_INTERVAL_S, durable_prefix=settings.store_durable,
    ).start()
    return StoreMetricsEndpoint(endpoint, lag)
