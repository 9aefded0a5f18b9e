"""Settings models. Values come from the environment (MARKETPRISM_...), never from code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, YamlConfigSettingsSource

from schemas.raw import VENUES


class ReplaySettings(BaseSettings):
    """`python -m bytewax.run flows.replay` reads these; `marketprism replay` sets them from flags."""

    model_config = SettingsConfigDict(env_prefix="MARKETPRISM_REPLAY_")

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

    model_config = SettingsConfigDict(env_prefix="MARKETPRISM_", extra="ignore")

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
    run_seconds: float | None = Field(default=None, gt=0, description="stop after this long; None runs forever")
    status_interval_s: float = Field(default=2.0, gt=0)
    control_bus: Literal["local", "nats"] = Field(
        default="local", description="'nats' when the flow runs as several processes (bytewax.run -p ...)"
    )

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
