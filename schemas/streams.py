"""NATS JetStream: the five streams (the plan's four and FEATURES), the subjects we publish on, and how to log in.

Values follow the original plan and can be overridden from the environment
(MARKETPRISM_NATS_...; one stream's field with `__`, e.g.
`MARKETPRISM_NATS_ORDERBOOK_DELTA__MAX_AGE_S=7200`). Every subject has four
lower-case tokens (klines five: `market.{ex}.{sym}.kline.{interval}`; features, as issue 9 names
them, three: `features.{ex}.{sym}`), so a stream
filter must name all of them: the plan's `orderbook.full.*` would match nothing we publish.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GiB = 1024**3
MiB = 1024**2
HOUR_S = 3600

SubjectKind = Literal[
    "full", "snapshot", "delta", "update", "pure_delta", "trade", "ticker", "quality", "funding_rate", "open_interest",
    "kline", "features",
]

_TEMPLATES: dict[str, str] = {
    "full": "orderbook.full.{exchange}.{symbol}",
    "snapshot": "orderbook.snapshot.{exchange}.{symbol}",
    "delta": "orderbook.delta.{exchange}.{symbol}",
    "update": "orderbook.update.{exchange}.{symbol}",
    "pure_delta": "orderbook.pure_delta.{exchange}.{symbol}",
    "trade": "market.{exchange}.{symbol}.trade",
    "ticker": "market.{exchange}.{symbol}.ticker",
    "quality": "market.{exchange}.{symbol}.quality",
    "funding_rate": "market.{exchange}.{symbol}.funding_rate",
    "open_interest": "market.{exchange}.{symbol}.open_interest",
    "kline": "market.{exchange}.{symbol}.kline.{interval}",
    "features": "features.{exchange}.{symbol}",
}

_FORBIDDEN_IN_TOKEN = frozenset(".*> \t\r\n")


def _token(value: str) -> str:
    token = value.lower()
    if not token or _FORBIDDEN_IN_TOKEN.intersection(token):
        raise ValueError(f"not usable as one subject token: {value!r}")
    return token


@lru_cache(maxsize=4096)  # a few dozen subjects, asked for by every publication on the worker
def subject(kind: SubjectKind, exchange: str, symbol: str, interval: str | None = None) -> str:
    """`subject("full", "binance", "BTC-USDT")` -> `orderbook.full.binance.btc-usdt`; klines
    name their interval: `subject("kline", "okx", "BTC-USDT", "1m")` -> `market.okx.btc-usdt.kline.1m`."""
    template = _TEMPLATES[kind]
    if ("{interval}" in template) != (interval is not None):
        raise ValueError(f"a {kind} subject {'needs' if interval is None else 'takes no'} interval")
    return template.format(exchange=_token(exchange), symbol=_token(symbol), interval=_token(interval or "-"))


def subject_matches(pattern: str, subject_: str) -> bool:
    """NATS wildcard matching: `*` is one token, a final `>` is one or more."""
    want = pattern.split(".")
    have = subject_.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


class StreamLimits(BaseModel):
    """One stream's subjects and retention limits (the plan's numbers are the defaults)."""

    subjects: list[str]
    max_msgs: int = Field(gt=0)
    max_bytes: int = Field(gt=0)
    max_age_s: int = Field(gt=0, description="messages older than this are discarded")
    max_consumers: int = Field(gt=0)
    replicas: int = Field(default=1, ge=1, le=5)


class StreamSettings(BaseSettings):
    """The JetStream streams (the plan's four and FEATURES) the sink creates (or updates) on every connect."""

    model_config = SettingsConfigDict(env_prefix="MARKETPRISM_NATS_", env_nested_delimiter="__")

    duplicate_window_s: int = Field(
        default=600, gt=0, description="a Nats-Msg-Id seen within this window is stored once"
    )
    compression: Literal["s2", "none"] = Field(
        default="s2", description="JetStream's S2 compression of the file streams (nats-server 2.10+)"
    )
    orderbook_full: StreamLimits = StreamLimits(
        subjects=["orderbook.full.*.*", "orderbook.snapshot.*.*"],
        max_msgs=1_000_000, max_bytes=1 * GiB, max_age_s=24 * HOUR_S, max_consumers=10,
    )
    orderbook_delta: StreamLimits = StreamLimits(
        subjects=["orderbook.delta.*.*", "orderbook.update.*.*", "orderbook.pure_delta.*.*"],
        max_msgs=10_000_000, max_bytes=2 * GiB, max_age_s=1 * HOUR_S, max_consumers=20,
    )
    market_trades: StreamLimits = StreamLimits(
        subjects=["market.*.*.trade"],
        max_msgs=5_000_000, max_bytes=1 * GiB, max_age_s=24 * HOUR_S, max_consumers=15,
    )
    market_data: StreamLimits = StreamLimits(
        subjects=[
            "market.*.*.ticker", "market.*.*.quality", "market.*.*.kline.*",
            "market.*.*.funding_rate", "market.*.*.open_interest",
        ],
        max_msgs=2_000_000, max_bytes=512 * MiB, max_age_s=24 * HOUR_S, max_consumers=10,
    )
    # Deep-learning features of each book (`operators.features`), a stream of their own.
    features: StreamLimits = StreamLimits(
        subjects=["features.*.*"],
        max_msgs=5_000_000, max_bytes=1 * GiB, max_age_s=24 * HOUR_S, max_consumers=10,
    )

    @field_validator("orderbook_full", "orderbook_delta", "market_trades", "market_data", "features", mode="before")
    @classmethod
    def _override_only_given_fields(cls, value: Any, info: ValidationInfo) -> Any:
        # One environment variable (say MAX_AGE_S) must not wipe the stream's other limits.
        if isinstance(value, dict) and info.field_name is not None:
            default: StreamLimits = cls.model_fields[info.field_name].default
            return {**default.model_dump(), **value}
        return value

    @model_validator(mode="after")
    def _window_fits_every_stream(self) -> StreamSettings:
        for name, limits in self.streams().items():
            if self.duplicate_window_s > limits.max_age_s:
                raise ValueError(f"duplicate_window_s {self.duplicate_window_s} exceeds {name} max_age_s {limits.max_age_s}")
        return self

    def streams(self) -> dict[str, StreamLimits]:
        return {
            "ORDERBOOK_FULL": self.orderbook_full,
            "ORDERBOOK_DELTA": self.orderbook_delta,
            "MARKET_TRADES": self.market_trades,
            "MARKET_DATA": self.market_data,
            "FEATURES": self.features,
        }

    def stream_for(self, subject_: str) -> str | None:
        """The stream that stores `subject_`, or None if no stream would (a publish would fail)."""
        for name, limits in self.streams().items():
            if any(subject_matches(pattern, subject_) for pattern in limits.subjects):
                return name
        return None


class NatsAuth(BaseSettings):
    """How to log in to NATS: user and password, a token, or a `.creds` file (at most one),
    and how to trust the server over TLS: a CA file, and a client certificate if it asks.

    Secrets are `SecretStr` so that printing or logging settings never shows them. The
    password or the token may instead be a file (`password_file`, `token_file`: a mounted
    Kubernetes secret), read at each connect so that a rotated secret is picked up.
    """

    # pydantic quotes the input in a validation error; these inputs hold secrets.
    model_config = SettingsConfigDict(env_prefix="MARKETPRISM_NATS_", hide_input_in_errors=True)

    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = Field(default=None, description="a file holding the password, instead of password")
    token: SecretStr | None = None
    token_file: Path | None = Field(default=None, description="a file holding the token, instead of token")
    creds_file: Path | None = Field(default=None, description="NATS user credentials (JWT + NKey seed)")
    tls_ca_file: Path | None = Field(default=None, description="CA bundle the server's certificate must chain to")
    tls_cert_file: Path | None = Field(default=None, description="client certificate, for servers that verify clients")
    tls_key_file: Path | None = Field(default=None, description="the client certificate's private key")

    @model_validator(mode="after")
    def _one_method(self) -> NatsAuth:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give MARKETPRISM_NATS_PASSWORD or MARKETPRISM_NATS_PASSWORD_FILE, not both")
        if self.token is not None and self.token_file is not None:
            raise ValueError("give MARKETPRISM_NATS_TOKEN or MARKETPRISM_NATS_TOKEN_FILE, not both")
        if (self.user is None) != (self.password is None and self.password_file is None):
            raise ValueError("MARKETPRISM_NATS_USER and MARKETPRISM_NATS_PASSWORD (or _PASSWORD_FILE) go together")
        has_token = self.token is not None or self.token_file is not None
        methods = [self.user is not None, has_token, self.creds_file is not None]
        if sum(methods) > 1:
            raise ValueError("give one of user/password, token or creds_file, not several")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("MARKETPRISM_NATS_TLS_CERT_FILE and MARKETPRISM_NATS_TLS_KEY_FILE go together")
        return self

    def secret_password(self) -> str | None:
        """The password itself, for the client only (from `password_file` if given, read now);
        an error names the file, never its content."""
        return _secret(self.password, self.password_file, "password")

    def secret_token(self) -> str | None:
        """The token itself, for the client only (from `token_file` if given, read now)."""
        return _secret(self.token, self.token_file, "token")


def _secret(value: SecretStr | None, path: Path | None, what: str) -> str | None:
    if path is None:
        return None if value is None else value.get_secret_value()
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise OSError(f"cannot read the NATS {what} file {path}: {exc.strerror}") from None
