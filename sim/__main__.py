"""`python -m sim`: run the live local exchange on loopback until Ctrl-C, printing its endpoints and state.

Faults: `--fault KIND@SECONDS:VENUE:SYMBOL` arms one at that time after start (repeat the
option for more), e.g. `--fault drop@30:binance:BTC-USDT --fault seq_reset@45:okx:ETH-USDT`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from sim.live_faults import KINDS, FaultSettings, ScheduledFault, check
from sim.server import SimExchange
from sim.settings import BinanceSettings, OkxSettings, SimSettings


def parse_fault(text: str) -> ScheduledFault:
    """"drop@30:binance:BTC-USDT" -> ScheduledFault(30.0, "drop", "binance", "BTC-USDT")."""
    try:
        kind, rest = text.split("@", 1)
        at, venue, symbol = rest.split(":")
        fault = ScheduledFault(float(at), kind, venue, symbol)
        check(kind, venue)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KIND@SECONDS:VENUE:SYMBOL ({exc})") from None
    return fault


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default %(default)s)")
    parser.add_argument("--binance-port", type=int, default=9443, help="REST and websockets (default %(default)s)")
    parser.add_argument("--okx-port", type=int, default=8443, help="REST and websockets (default %(default)s)")
    parser.add_argument("--symbols", default="BTC-USDT,ETH-USDT", help="comma-separated (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=24 * 3600.0, help="Binance connection lifetime, s")
    parser.add_argument("--ping-interval", type=float, default=20.0, help="Binance ping interval, s")
    parser.add_argument("--pong-timeout", type=float, default=60.0, help="Binance pong timeout, s")
    parser.add_argument("--idle-timeout", type=float, default=30.0, help="OKX idle close, s")
    parser.add_argument(
        "--trend", type=float, default=0.0, help="levels a second the price walks through every book (+ up, - down)"
    )
    parser.add_argument("--fault", type=parse_fault, action="append", default=[], help=f"kinds: {', '.join(KINDS)}")
    parser.add_argument("--stall-seconds", type=float, default=5.0)
    parser.add_argument("--slow-snapshot-seconds", type=float, default=3.0)
    parser.add_argument("--ban-snapshot-seconds", type=int, default=120, help="Retry-After of a ban_snapshot 418")
    parser.add_argument("--status-every", type=float, default=10.0, help="seconds between status lines")
    return parser


def settings_from(args: argparse.Namespace) -> SimSettings:
    return SimSettings(
        host=args.host,
        binance_port=args.binance_port,
        okx_port=args.okx_port,
        symbols=tuple(s.strip() for s in args.symbols.split(",") if s.strip()),
        seed=args.seed,
        trend_levels_per_s=args.trend,
        binance=BinanceSettings(
            ping_interval_s=args.ping_interval, pong_timeout_s=args.pong_timeout, lifetime_s=args.lifetime
        ),
        okx=OkxSettings(idle_timeout_s=args.idle_timeout),
        faults=FaultSettings(
            schedule=tuple(args.fault), stall_s=args.stall_seconds, slow_snapshot_s=args.slow_snapshot_seconds,
            ban_snapshot_s=args.ban_snapshot_seconds,
        ),
    )


async def serve(exchange: SimExchange, status_every: float) -> None:
    settings = exchange.settings
    await exchange.start()
    print(f"binance  REST {exchange.binance_url}  websocket {exchange.binance_ws_url}/ws/<stream> | /stream?streams=")
    print(f"okx      REST {exchange.okx_url}  websocket {exchange.okx_ws_url}  business {exchange.okx_business_ws_url}")
    print(f"symbols {', '.join(settings.symbols)}, seed {settings.seed}; Ctrl-C stops", flush=True)
    seen = 0
    try:
        while True:
            await asyncio.sleep(status_every)
            for fault in exchange.faults[seen:]:
                print(f"fault {fault.kind} on {fault.venue}:{fault.symbol} {fault.detail}", flush=True)
            seen = len(exchange.faults)
            print(exchange.status(), flush=True)
    finally:
        await exchange.stop()


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        exchange = SimExchange(settings_from(args))  # checks symbols and scheduled faults before anything listens
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(exchange, args.status_every))


if __name__ == "__main__":
    main()
