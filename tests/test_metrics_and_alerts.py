"""The Prometheus endpoints, the alert rules and the dashboard, against a real collector
run and a real store process.

- `promtool test rules` runs the rules on hand-made series (deploy/prometheus/alerts_test.yml);
- every metric an alert or a dashboard panel uses is one the collector or the store serves;
- what the collector serves is the books' state: every book in sync, the configured depth,
  the depth and checksums the simulator's books give;
- what the store serves, with ClickHouse unreachable, is what JetStream and its spill
  directory say: messages delivered and unacked, their age, the batches on disk;
- no secret from the environment ever appears in what they serve.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from connectors.metrics_server import MetricsEndpoint
from connectors.nats_server import EmbeddedNatsServer
from connectors.spill import SUFFIX
from flows.status import StatusBoard
from flows.status_view import STORE_BEHIND_S, StatusView, parse
from flows.store_metrics import start_store_metrics
from schemas.settings import StoreSettings
from sim.server import SimulatorThread
from sim.settings import SimSettings
from tests.live_support import collect_from
from tests.store_support import free_port, kill_flows, publish, run_flow, scrape_text, trades, wait_for

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
    config = subprocess.run(  # the example scrape configuration names the jobs the rules expect
        [promtool, "check", "config", "prometheus.yml"], cwd=ALERTS.parent, capture_output=True, text=True, timeout=60
    )
    assert config.returncode == 0, config.stdout + config.stderr


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


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, str]:
    """What the collector served after a run, its summary, and what its board wrote (not a terminal)."""
    tmp = tmp_path_factory.mktemp("metrics")
    os.environ["MARKETPRISM_NATS_PASSWORD_PROBE"] = SECRET  # present in the environment, never to be shown
    endpoint = MetricsEndpoint("127.0.0.1", free_port()).start()
    written = io.StringIO()
    try:
        with SimulatorThread(SimSettings(seed=3)) as simulator, EmbeddedNatsServer(tmp / "nats") as server:
            summary = collect_from(simulator, server.url, tmp, 10, board=StatusBoard(1.0, out=written))
        with urllib.request.urlopen(endpoint.url, timeout=10) as response:
            text = response.read().decode()
    finally:
        endpoint.stop()
        del os.environ["MARKETPRISM_NATS_PASSWORD_PROBE"]
    return text, summary, written.getvalue()


def test_the_board_off_a_terminal_writes_a_plain_line_per_interval(scraped) -> None:
    _, summary, written = scraped
    lines = written.splitlines()
    assert len(lines) >= 5 and "\x1b" not in written  # 10 s at 1 s: no redraws, no colours
    assert lines[-1].split("; ")[1] == f"books {len(summary['books'])}/{len(summary['books'])} in sync"
    assert "NATS spill 0 messages (0 B)" in lines[-1]


def _samples(text: str, name: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name):].rsplit(" ", 1)
            found[labels] = float(value)
    return found


@dataclass(slots=True)
class StoreRun:
    """One scrape of a store whose ClickHouse is unreachable, and the truth at that moment."""

    text: str
    scraped_at: float
    started_at: float  # just before the store process was launched
    published: tuple[float, float]  # before and after the trades were published
    consumer: dict[str, int]  # MARKET_TRADES: JetStream's consumer info
    spill: tuple[int, int]  # batch files in data/spill/store and their bytes
    log: str


async def _consumer(url: str, stream: str) -> dict[str, int]:
    import nats

    client = await nats.connect(url)
    try:
        info = await client.jetstream().consumer_info(stream, f"marketprism-store-{stream}")
        return {"pending": info.num_pending or 0, "unacked": info.num_ack_pending or 0}
    finally:
        await client.close()


TRADES = 200


def _held(text: str) -> bool:
    """The store took every trade, cannot store them, and has been behind long enough to show it."""
    lag = _samples(text, "marketprism_store_lag_seconds").get('{stream="MARKET_TRADES"}', 0.0)
    return (f'marketprism_store_unacked_messages{{stream="MARKET_TRADES"}} {float(TRADES)}' in text
            and "marketprism_store_clickhouse_up 0.0" in text and lag > STORE_BEHIND_S)


@pytest.fixture(scope="module")
def store_scraped(tmp_path_factory: pytest.TempPathFactory) -> StoreRun:
    tmp = tmp_path_factory.mktemp("store-metrics")
    port = free_port()
    with EmbeddedNatsServer(tmp / "nats") as server:
        before = time.time()
        publish(server.url, trades(1, TRADES))
        published = (before, time.time())
        env = {
            **os.environ, "MARKETPRISM_NATS_URL": server.url, "MARKETPRISM_DATA_DIR": str(tmp / "store"),
            "MARKETPRISM_STORE_METRICS_PORT": str(port),
            # Nothing listens there: every connect fails, the batch waits on disk, nothing is acked.
            "MARKETPRISM_CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{free_port()}",
            "MARKETPRISM_CLICKHOUSE_PASSWORD": SECRET,
        }
        started_at = time.time()
        run_flow("flows.store", env, tmp / "store.log")
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            wait_for(lambda: _held(scrape_text(url)), f"the store to hold the trades unstored over {STORE_BEHIND_S} s")
            text, scraped_at = scrape_text(url), time.time()
            consumer = asyncio.run(_consumer(server.url, "MARKET_TRADES"))
            files = list((tmp / "store" / "spill" / "store").glob(f"*{SUFFIX}"))
            spill = (len(files), sum(f.stat().st_size for f in files))
        finally:
            kill_flows()  # it cannot drain without ClickHouse
    return StoreRun(text, scraped_at, started_at, published, consumer, spill, (tmp / "store.log").read_text())


def test_the_store_serves_its_lag_and_spill_as_jetstream_and_the_disk_say(store_scraped: StoreRun) -> None:
    run = store_scraped
    unacked = _samples(run.text, "marketprism_store_unacked_messages")
    pending = _samples(run.text, "marketprism_store_pending_messages")
    lag = _samples(run.text, "marketprism_store_lag_seconds")
    trades_stream = '{stream="MARKET_TRADES"}'
    assert unacked[trades_stream] == run.consumer["unacked"] == TRADES
    assert pending[trades_stream] == run.consumer["pending"] == 0
    # The oldest unstored trade was published before the store started and read after it did.
    assert run.started_at - run.published[1] <= lag[trades_stream] <= run.scraped_at - run.published[0]
    assert lag[trades_stream] > 0 and all(v == 0 for k, v in lag.items() if k != trades_stream)
    assert _scalar(run.text, "marketprism_store_spill_batches") == run.spill[0] >= 1
    assert _scalar(run.text, "marketprism_store_spill_bytes") == run.spill[1] > 0
    assert _scalar(run.text, "marketprism_store_insert_failures_total") >= 1
    assert _scalar(run.text, "marketprism_store_clickhouse_up") == 0
    assert SECRET not in run.text and SECRET not in run.log


def test_the_status_view_marks_the_store_behind_and_clickhouse_down(store_scraped: StoreRun) -> None:
    lines = StatusView().lines([parse(store_scraped.text)], store_scraped.scraped_at)
    trades_row = next(line for line in lines if "MARKET_TRADES" in line)
    assert trades_row.startswith("\x1b[31;1mMARKET_TRADES ")  # red: more than STORE_BEHIND_S behind
    assert next(line for line in lines if "ORDERBOOK_DELTA" in line).startswith("ORDERBOOK_DELTA ")
    spill = next(line for line in lines if "store spill" in line)
    assert spill.startswith("\x1b[31;1m") and "ClickHouse DOWN" in spill


def _scalar(text: str, name: str) -> float:
    return next(float(line.split()[1]) for line in text.splitlines() if line.split(" ")[0] == name)


def test_a_taken_store_metrics_port_is_logged_and_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with caplog.at_level(logging.ERROR):
            assert start_store_metrics(StoreSettings(store_metrics_port=port)) is None
    assert f"store metrics endpoint 127.0.0.1:{port} not started" in caplog.text
    assert start_store_metrics(StoreSettings(store_metrics_port=0)) is None  # off


def test_every_metric_an_alert_or_panel_uses_is_served(scraped, store_scraped: StoreRun) -> None:
    text = scraped[0] + store_scraped.text
    served = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE marketprism_")}
    served |= {name + "_total" for name in served}  # counters are declared without their suffix
    used = _used_metrics()
    assert len(used) >= 30
    assert sorted(used - served) == []


def test_the_served_figures_are_the_books(scraped) -> None:
    text, summary, _ = scraped
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
    text = scraped[0]
    assert SECRET not in text
