"""Settings models. Values come from the environment (MARKETPRISM_...), never from code.

Each hides its input in validation errors: pydantic would quote every value, and a NATS
URL may carry a password (`nats://user:secret@host`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, TypedDict

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, YamlConfigSettingsSource

from schemas.raw import VENUES


# A 5000-level Binance snapshot weighs 250 of the 6000 a minute; audits may use half, so
# 12 a minute in all: one every 5 s per Binance book of the process, at the most.
AUDIT_SECONDS_PER_BOOK = 5.0


class SyncKnobs(TypedDict):
    depth: int
    full_interval_ms: int
    snapshot_interval_ms: int
    audit_interval_ms: int
    audit_min_gap_ms: int
    audit_exact_share: float
    watchdog_ms: int
    deep_max_age_ms: int


class ReplaySettings(BaseSettings):
    """`python -m bytewax.run flows.replay` reads these; `marketprism replay` sets them from flags."""

    model_config = SettingsConfigDict(env_prefix="MARKETPRISM_REPLAY_", hide_input_in_errors=True)

    inputs: Annotated[list[Path], NoDecode] = Field(description="recording files, separated by ':' or ','")
    out: Path | None = Field(default=None, description="normalized events as JSON Lines")
    report: Path | None = Field(default=None, description="the replay report (JSON)")
    full_interval_ms: int = Field(default=1000, ge=1, description="full books every N ms of recording time")
    depth: int = Field(default=5000, ge=1, description="levels per side in published full books")
    nats_url: str | None = Field(default=None, description="also publish to NATS JetStream, as the collector does")
    snapshot_interval_ms: int = Field(default=10_000, ge=1, description="orderbook.snapshot every N ms (with NATS)")
    spill_dir: Path = Field(default=Path("data/spill/replay-nats"), description="NATS outage buffer")

    @field_validator("inputs", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.replace(",", ":").split(":") if part]
        return value


class CollectSettings(BaseSettings):
    """The collector's settings: MARKETPRISM_* environment variables, or a YAML file named by
    MARKETPRISM_CONFIG (environment wins). Endpoints default to the live exchanges."""

    model_config = SettingsConfigDict(env_prefix="MARKETPRISM_", extra="ignore", hide_input_in_errors=True)

    venues: Annotated[list[str], NoDecode] = Field(default=["binance", "okx"])
    symbols: Annotated[list[str], NoDecode] = Field(default=["BTC-USDT", "ETH-USDT"])
    binance_rest_url: str = "https://api.binance.com"
    binance_ws_url: str = "wss://stream.binance.com:9443"
    okx_rest_url: str = "https://www.okx.com"
    okx_ws_url: str = "wss://ws.okx.com:8443/ws/v5/public"
    okx_business_ws_url: str | None = Field(
        default=None, description="candles; None: okx_ws_url with its trailing /public replaced by /business"
    )
    silence_s: float = Field(default=30.0, gt=0, description="a websocket that sends nothing this long is replaced")
    depth: int = Field(default=5000, ge=1, le=5000, description="levels per side (Binance snapshot limit)")
    full_interval_ms: int = Field(default=1000, ge=1, description="full books on orderbook.full every N ms")
    snapshot_interval_ms: int = Field(default=10_000, ge=1, description="orderbook.snapshot every N ms")
    okx_deep_interval_s: float = Field(default=1.0, ge=0, description="books-full refresh per OKX book; 0 = off")
    okx_deep_max_age_s: float = Field(default=5.0, gt=0, description="books-full levels older than this are not published")
    audit_interval_s: float | None = Field(
        default=None, gt=0,
        description="a fresh snapshot audits each Binance book this often; None: 60 s, or longer so that all "
        "Binance books of the process use at most half of the 6000 request weight a minute",
    )
    audit_exact_share: float = Field(
        default=0.95, gt=0, le=1, description="audit early when a side's exact depth falls below this share of depth"
    )
    watchdog_s: float = Field(
        default=30.0, gt=0, description="a book out of sync this long has its source act again (escalating)"
    )
    metrics_host: str = Field(default="127.0.0.1", description="where the Prometheus endpoint listens")
    metrics_port: int = Field(default=9108, ge=0, le=65535, description="Prometheus endpoint port; 0 = off")
    binance_rotate_after_s: float = Field(
        default=23.5 * 3600, gt=0, description="open a successor connection before Binance's 24 h limit"
    )
    nats_url: str | None = Field(default=None, description="None: start an embedded nats-server")
    data_dir: Path = Field(default=Path("data"), description="embedded NATS store, spill files, recordings")
    sinks: Annotated[list[str], NoDecode] = Field(
        default=["nats", "recorder", "clickhouse"],
        description="nats, recorder (raw .jsonl.zst under <data_dir>/recordings), clickhouse (embedded chDB "
        "under <data_dir>/clickhouse unless MARKETPRISM_CLICKHOUSE_URL is set)",
    )
    features_every_updates: int | None = Field(
        default=10, ge=1, description="a feature row on features.{ex}.{sym} every N updates of a book; None: off"
    )
    features_interval_ms: int | None = Field(
        default=1000, ge=1, description="and one when this much receive time has passed; None: off"
    )
    run_seconds: float | None = Field(default=None, gt=0, description="stop after this long; None runs forever")
    end_on_sigterm: bool = Field(
        default=False, description="under bytewax.run, SIGTERM ends the run as run_seconds would (sinks flushed, "
        "exit status 0) instead of killing the process; off by default: one process of a cluster cannot end alone",
    )
    status_interval_s: float = Field(default=2.0, gt=0)
    control_bus: Literal["local", "nats"] = Field(
        default="local", description="'nats' when the flow runs as several processes (bytewax.run -p ...)"
    )

    def sync_settings(self) -> SyncKnobs:
        """What the sync machines need of these settings (`operators.sync_base.SyncSettings` fields)."""
        binance_books = sum(venue != "okx" for venue in self.venues) * len(self.symbols)
        audit_s = self.audit_interval_s or max(60.0, binance_books * AUDIT_SECONDS_PER_BOOK)
        return {
            "depth": self.depth,
            "full_interval_ms": self.full_interval_ms,
            "snapshot_interval_ms": self.snapshot_interval_ms,
            "audit_interval_ms": round(audit_s * 1000),
            "audit_min_gap_ms": round(min(audit_s, max(1, binance_books) * AUDIT_SECONDS_PER_BOOK) * 1000),
            "audit_exact_share": self.audit_exact_share,
            "watchdog_ms": round(self.watchdog_s * 1000),
            "deep_max_age_ms": round(self.okx_deep_max_age_s * 1000),
        }

    @field_validator("venues", "symbols", "sinks", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("venues")
    @classmethod
    def _known_venues(cls, venues: list[str]) -> list[str]:
        unknown = [venue for venue in venues if venue not in VENUES]
        if unknown:
            raise ValueError(f"unknown venue {unknown[0]!r}; known: {', '.join(VENUES)}")
        return venues

    @model_validator(mode="after")
    def _derive_business_url(self) -> CollectSettings:
        if self.okx_business_ws_url is None and "okx" in self.venues:
            if not self.okx_ws_url.endswith("/public"):
                raise ValueError(
                    f"okx_business_ws_url is needed: okx_ws_url {self.okx_ws_url!r} does not end in /public"
                )
            self.okx_business_ws_url = self.okx_ws_url.removesuffix("/public") + "/business"
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):  # type: ignore[no-untyped-def]
        config = os.environ.get("MARKETPRISM_CONFIG")
        sources = [init_settings, env_settings]
        if config:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config))
        return tuple(sources)


class StoreSettings(BaseSettings):
    """The store dataflow: which NATS to read, and where its batches wait (MARKETPRISM_...).

    ClickHouse itself is configured by `ClickHouseSettings` (MARKETPRISM_CLICKHOUSE_...);
    without a URL it is chDB under `<data_dir>/clickhouse`, as for the collector.
    """

    model_config = SettingsConfigDict(env_prefix="MARKETPRISM_", extra="ignore", hide_input_in_errors=True)

    nats_url: str = Field(default="nats://127.0.0.1:4222", description="the collector's NATS")
    data_dir: Path = Field(default=Path("data"), description="batches on their way (<data_dir>/spill/store)")
    store_durable: str = Field(default="marketprism-store", description="prefix of the durable consumers' names")
    store_batch_age_s: float = Field(default=1.0, gt=0, description="a batch is inserted when its first row is this old")
    store_manage_schema: bool = Field(
        default=True, description="false: the tables are someone else's (a server older than the DDL needs)",
    )
    store_ack_wait_s: float = Field(
        default=30.0, gt=0, description="JetStream redelivers what a store took and did not ack after this long",
    )
    # Not the collector's 9108: `marketprism collect` runs both on one machine.
    store_metrics_host: str = Field(default="127.0.0.1", description="where the store's Prometheus endpoint listens")
    store_metrics_port: int = Field(default=9109, ge=0, le=65535, description="the store's Prometheus port; 0 = off")
