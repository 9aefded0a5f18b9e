"""Settings of a live simulated exchange: where it listens, what it serves, the venues' limits and timers, faults.

Defaults are the real exchanges' figures; tests shrink the timers to seconds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from sim.live_faults import FaultSettings


@dataclass(frozen=True)
class BinanceSettings:
    ping_interval_s: float = 20.0  # the server pings every 20 s ...
    pong_timeout_s: float = 60.0  # ... and closes a connection that leaves a ping unanswered for a minute
    lifetime_s: float = 24 * 3600.0  # then `serverShutdown` and a close
    weight_limit: int = 6000  # REQUEST_WEIGHT per minute per IP
    ban_s: float = 120.0  # the first 418 ban; repeats double it, up to 3 days
    messages_per_s: int = 5  # incoming messages per connection; more closes it


@dataclass(frozen=True)
class OkxSettings:
    idle_timeout_s: float = 30.0  # a connection with nothing sent either way this long is closed (4004)
    connects_per_s: int = 3  # connection attempts per IP; more get HTTP 429 at the handshake
    books_per_2s: int = 40  # GET /api/v5/market/books per IP
    books_full_per_2s: int = 10  # GET /api/v5/market/books-full per IP
    books_full_refresh_s: float = 1.0  # books-full serves a copy of the book this old at most


@dataclass(frozen=True)
class SimSettings:
    """One run of the live exchange. Ports 0 pick free ports; the host must be a loopback address."""

    host: str = "127.0.0.1"
    binance_port: int = 0
    okx_port: int = 0
    symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT")
    seed: int = 0
    history_s: float = 600.0  # how far back the truth (book_at, update_id_at) reaches in a long run
    # Multiplies every instrument's `activity` (level changes, trades, top changes per window):
    # 10 is a market ten times as busy. Windows stay 100 ms, as the exchanges' diff cadence does.
    rate_scale: float = 1.0
    # A trending market: the price walks this many levels a second through every book (up
    # when positive), e.g. -300 carries it past a 5000-level snapshot's deepest bid in ~17 s.
    trend_levels_per_s: float = 0.0
    binance: BinanceSettings = field(default_factory=BinanceSettings)
    okx: OkxSettings = field(default_factory=OkxSettings)
    faults: FaultSettings = field(default_factory=FaultSettings)

    def __post_init__(self) -> None:
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the simulator listens on loopback addresses only, not {self.host!r}")
        if not self.rate_scale > 0:
            raise ValueError(f"rate_scale must be positive, not {self.rate_scale!r}")
