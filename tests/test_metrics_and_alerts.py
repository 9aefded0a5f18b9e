"""The Prometheus endpoint, the alert rules and the dashboard, against a real collector run.

- `promtool test rules` runs the rules on hand-made series (deploy/prometheus/alerts_test.yml);
- every metric an alert or a dashboard panel uses is one the collector serves;
- what it serves is the books' state: every book in sync, the configured depth, the
  depth and checksums the simulator's books give;
- no secret from the environment ever appears in what it serves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from connectors.metrics_server import MetricsEndpoint
from connectors.nats_server import EmbeddedNatsServer
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import collect_from

REPO = Path(__file__).resolve().parents[1]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "marketprism.json"
SECRET = "s3cr3t-never-shown"
METRIC = re.compile(r"\bmarketprism_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum")


def test_promtool_passes_the_alert_rule_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing: deploy/prometheus/provision-promtool.sh should have installed it")
        pytest.skip("promtool is not installed (make test installs it where it can)")
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"], cwd=ALERTS.parent, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _used_metrics() -> set[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    expressions += [target["expr"] for panel in panels for target in panel.get("targets", [])]
    used = set()
    for expression in expressions:
        for name in METRIC.findall(expression):
            used.add(next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name))
    return used


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    tmp = tmp_path_factory.mktemp("metrics")
    os.environ["MARKETPRISM_NATS_PASSWORD_PROBE"] = SECRET  # present in the environment, never to be shown
    endpoint = MetricsEndpoint("127.0.0.1", _free_port()).start()
    try:
        with SimulatorThread(SimSettings(seed=3)) as simulator, EmbeddedNatsServer(tmp / "nats") as server:
            summary = collect_from(simulator, server.url, tmp, 10)
        with urllib.request.urlopen(endpoint.url, timeout=10) as response:
            text = response.read().decode()
    finally:
        endpoint.stop()
        del os.environ["MARKETPRISM_NATS_PASSWORD_PROBE"]
    return text, summary


def _samples(text: str, name: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name):].rsplit(" ", 1)
            found[labels] = float(value)
    return found


def test_every_metric_an_alert_or_panel_uses_is_served(scraped) -> None:
    text, _ = scraped
    served = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE marketprism_")}
    served |= {name + "_total" for name in served}  # counters are declared without their suffix
    used = _used_metrics()
    assert len(used) >= 20
    assert sorted(used - served) == []


def test_the_served_figures_are_the_books(scraped) -> None:
    text, summary = scraped
    synced = _samples(text, "marketprism_book_synced")
    assert synced == {
        '{symbol="BTC-USDT",venue="binance"}': 1.0, '{symbol="ETH-USDT",venue="binance"}': 1.0,
        '{symbol="BTC-USDT",venue="okx"}': 1.0, '{symbol="ETH-USDT",venue="okx"}': 1.0,
    }
    depth = _samples(text, "marketprism_book_depth_levels")
    assert depth['{side="bid",symbol="BTC-USDT",venue="okx"}'] == 400
    assert depth['{side="bid",symbol="BTC-USDT",venue="binance"}'] >= 4900
    assert set(_samples(text, "marketprism_book_configured_depth").values()) == {5000.0}
    assert set(_samples(text, "marketprism_checksum_pass_ratio").values()) == {1.0}
    verified = _samples(text, "marketprism_book_checksums_verified_total")
    # The exporter hands on the engine's own counters: as many as the run's summary, at least.
    for key, book in summary["books"].items():
        venue, symbol = key.split(":")
        assert verified[f'{{symbol="{symbol}",venue="{venue}"}}'] <= book["checksums_verified"]
        if venue == "okx":
            assert verified[f'{{symbol="{symbol}",venue="{venue}"}}'] > 0
    latency = _samples(text, "marketprism_publish_latency_seconds_count")
    assert latency['{kind="delta",venue="binance"}'] > 0


def test_no_secret_is_served(scraped) -> None:
    text, _ = scraped
    assert SECRET not in text
