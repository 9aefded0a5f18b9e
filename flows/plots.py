"""`marketprism plot heatmap|depth`: pictures of one book from recordings.

heatmap: resting liquidity over time the way Bookmap draws it: time on x, price on y,
size as colour on a log scale, best bid and ask drawn over it, trades as dots sized by
volume (green: the taker bought, red: sold). depth: both sides' cumulative size against
price at one moment. The book is the same float replica the feature engine keeps, fed by
the sync engine's events of the recording.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from connectors.png import save_png
from flows.dataset import _parse_time
from flows.offline import sync_messages
from operators.features.engine import FeatureEngine, FeatureSettings
from schemas.events import BookDelta, BookFull, Trade

MS = 1_000_000
# An "inferno"-like ramp: black, purple, red, orange, pale yellow.
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64)
MARGIN_LEFT, MARGIN_BOTTOM = 70, 24


@dataclass
class BookFrames:
    """Columns of one book over time: resting size per price row, best prices, trades."""

    times_ns: np.ndarray  # [columns] the moment of each column
    liquidity: np.ndarray  # [rows, columns] size resting in each price row (row 0 = highest price)
    prices: np.ndarray  # [rows] the price at each row's centre, descending
    best_bid: np.ndarray  # [columns]
    best_ask: np.ndarray
    trades: list[tuple[int, float, float, str]]  # (recv_ns, price, quantity, taker side)


def _book_events(paths: Iterable[Path], venue: str, symbol: str, start_ms: int | None,
                 end_ms: int | None) -> Iterable[object]:
    for _, produced in sync_messages(paths):
        for event in produced:
            if getattr(event, "venue", None) != venue or getattr(event, "symbol", None) != symbol:
                continue
            moment = event.exchange_ms if getattr(event, "exchange_ms", None) is not None else event.recv_ns // MS
            if end_ms is not None and moment >= end_ms:
                return
            yield event, start_ms is None or moment >= start_ms


def collect_frames(paths: list[Path], *, venue: str, symbol: str, columns: int, rows: int,
                   start_ms: int | None = None, end_ms: int | None = None, levels: int = 1000) -> BookFrames:
    """Sample the book at `columns` evenly spaced moments of the range (two passes: the
    first finds the time and price range, the second fills the columns)."""
    engine = FeatureEngine(venue, symbol, FeatureSettings(every_updates=None, interval_ms=None))
    first_ns = last_ns = None
    low, high = np.inf, -np.inf
    for event, inside in _book_events(paths, venue, symbol, start_ms, end_ms):
        engine.on_event(event)
        if inside and isinstance(event, (BookDelta, BookFull)) and engine.live:
            first_ns = event.recv_ns if first_ns is None else first_ns
            last_ns = event.recv_ns
            bid, ask = -engine.book.bids.keys[0], engine.book.asks.keys[0]
            low, high = min(low, bid), max(high, ask)
    if first_ns is None:
        raise LookupError(f"no synced book of {venue}:{symbol} in the recordings and range given")
    span = max(high - low, high * 1e-4)
    top, bottom = high + span * 0.25, low - span * 0.25
    prices = top - (np.arange(rows) + 0.5) * (top - bottom) / rows
    # integer steps: float64 cannot hold a ns timestamp, and a rounded-down first column
    # would fall before the book exists
    moments = np.array([first_ns + (last_ns - first_ns) * i // max(columns - 1, 1) for i in range(columns)],
                       dtype=np.int64)
    liquidity = np.zeros((rows, columns))
    best_bid, best_ask = np.full(columns, np.nan), np.full(columns, np.nan)
    trades: list[tuple[int, float, float, str]] = []
    engine = FeatureEngine(venue, symbol, FeatureSettings(every_updates=None, interval_ms=None))
    column = 0

    def fill(upto_ns: int) -> None:
        nonlocal column
        while column < columns and moments[column] <= upto_ns:
            if engine.live:
                for side in (engine.book.bids, engine.book.asks):
                    price, size = side.prices(levels), side.quantities(levels)
                    row = np.floor((top - price) / (top - bottom) * rows).astype(np.int64)
                    inside = (row >= 0) & (row < rows)
                    np.add.at(liquidity[:, column], row[inside], size[inside])
                best_bid[column], best_ask[column] = -engine.book.bids.keys[0], engine.book.asks.keys[0]
            column += 1

    for event, inside in _book_events(paths, venue, symbol, start_ms, end_ms):
        if inside:
            fill(event.recv_ns - 1)  # columns before this event show the book before it
        engine.on_event(event)
        if inside and isinstance(event, Trade) and first_ns <= event.recv_ns <= last_ns:
            trades.append((event.recv_ns, float(event.price), float(event.quantity), event.side))
    fill(last_ns)  # the last column: the book after the last event
    return BookFrames(moments, liquidity, prices, best_bid, best_ask, trades)


def colour(values: np.ndarray) -> np.ndarray:
    """log(1 + size) scaled to the largest, through the colour ramp: uint8 RGB."""
    scaled = np.log1p(values)
    peak = scaled.max()
    position = (scaled / peak if peak > 0 else scaled) * (len(_RAMP) - 1)
    lower = np.clip(np.floor(position).astype(np.int64), 0, len(_RAMP) - 2)
    weight = (position - lower)[..., None]
    return (_RAMP[lower] * (1 - weight) + _RAMP[lower + 1] * weight).round().astype(np.uint8)


def _axis_labels(draw: ImageDraw.ImageDraw, prices: np.ndarray, height: int) -> None:
    font = ImageFont.load_default()
    for row in np.linspace(0, len(prices) - 1, 6).astype(int):
        y = int(row * height / len(prices))
        draw.text((4, y), f"{prices[row]:.6g}", fill=(220, 220, 220), font=font)


def render_heatmap(frames: BookFrames, *, width: int, height: int, title: str) -> Image.Image:
    rows, columns = frames.liquidity.shape
    plot = Image.fromarray(colour(frames.liquidity)).resize((width - MARGIN_LEFT, height - MARGIN_BOTTOM),
                                                           Image.Resampling.NEAREST)
    image = Image.new("RGB", (width, height), (16, 16, 16))
    image.paste(plot, (MARGIN_LEFT, 0))
    draw = ImageDraw.Draw(image)
    top, step = frames.prices[0], frames.prices[0] - frames.prices[1]
    plot_w, plot_h = width - MARGIN_LEFT, height - MARGIN_BOTTOM

    def y_of(price: float) -> float:
        return ((top + step / 2) - price) / (step * rows) * plot_h

    def x_of(t_ns: float) -> float:
        span = max(int(frames.times_ns[-1] - frames.times_ns[0]), 1)
        return MARGIN_LEFT + (t_ns - frames.times_ns[0]) / span * (plot_w - 1)

    for series, rgb in ((frames.best_bid, (80, 220, 255)), (frames.best_ask, (255, 90, 200))):
        points = [(x_of(t), y_of(p)) for t, p in zip(frames.times_ns, series) if not np.isnan(p)]
        if len(points) > 1:
            draw.line(points, fill=rgb, width=1)
    if frames.trades:
        biggest = max(q for _, _, q, _ in frames.trades)
        for t, price, quantity, side in frames.trades:
            r = 2 + 8 * np.sqrt(quantity / biggest)
            x, y = x_of(t), y_of(price)
            draw.ellipse((x - r, y - r, x + r, y + r), outline=(255, 255, 255),
                         fill=(40, 200, 90) if side == "buy" else (230, 50, 50))
    _axis_labels(draw, frames.prices, plot_h)
    seconds = (frames.times_ns[-1] - frames.times_ns[0]) / 1e9
    draw.text((MARGIN_LEFT + 4, plot_h + 6), f"{title}   {seconds:.1f} s   size: log colour   "
              "lines: best bid (cyan) / ask (pink)   dots: trades (green buy, red sell)", fill=(220, 220, 220))
    return image


def book_at(paths: list[Path], *, venue: str, symbol: str, at_ms: int | None) -> FeatureEngine:
    """The book's float replica at `at_ms` (exchange time), or at the end of the recordings."""
    engine = FeatureEngine(venue, symbol, FeatureSettings(every_updates=None, interval_ms=None))
    for event, _ in _book_events(paths, venue, symbol, None, None if at_ms is None else at_ms + 1):
        engine.on_event(event)
    if not engine.live:
        raise LookupError(f"no synced book of {venue}:{symbol} at the moment given")
    return engine


def render_depth(engine: FeatureEngine, *, width: int, height: int, levels: int, title: str) -> Image.Image:
    """Cumulative size against price: bids (green) from the best bid down, asks (red) up."""
    bids, asks = engine.book.bids, engine.book.asks
    bid_p, bid_q = bids.prices(levels), np.cumsum(bids.quantities(levels))
    ask_p, ask_q = asks.prices(levels), np.cumsum(asks.quantities(levels))
    low, high = float(bid_p[-1]), float(ask_p[-1])
    peak = max(float(bid_q[-1]), float(ask_q[-1]))
    plot_w, plot_h = width - MARGIN_LEFT, height - MARGIN_BOTTOM
    image = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(image)

    def point(price: float, size: float) -> tuple[float, float]:
        return MARGIN_LEFT + (price - low) / (high - low) * (plot_w - 1), plot_h - size / peak * (plot_h - 10)

    for prices, sizes, line, fill in ((bid_p, bid_q, (20, 140, 60), (170, 225, 185)),
                                      (ask_p, ask_q, (190, 40, 40), (240, 185, 185))):
        # a staircase: the size stays until the next level's price
        steps = [point(float(prices[0]), 0.0)]
        for i in range(len(prices)):
            steps.append(point(float(prices[i]), float(sizes[i - 1]) if i else 0.0))
            steps.append(point(float(prices[i]), float(sizes[i])))
        draw.polygon([*steps, point(float(prices[-1]), 0.0)], fill=fill)
        draw.line(steps, fill=line, width=2)
    font = ImageFont.load_default()
    for size in np.linspace(0, peak, 5):
        draw.text((4, point(low, size)[1] - 6), f"{size:.4g}", fill=(60, 60, 60), font=font)
    mid = (float(bid_p[0]) + float(ask_p[0])) / 2
    draw.line([point(mid, 0), point(mid, peak)], fill=(120, 120, 120), width=1)
    draw.text((MARGIN_LEFT + 4, plot_h + 6), f"{title}   {low:.6g} .. {high:.6g}   mid {mid:.6g}   "
              f"cumulative size, {len(bid_p)} bid / {len(ask_p)} ask levels", fill=(40, 40, 40), font=font)
    return image


def _run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.sources]
    title = f"{args.venue}:{args.symbol}"
    if args.kind == "heatmap":
        frames = collect_frames(paths, venue=args.venue, symbol=args.symbol, columns=args.columns, rows=args.rows,
                                start_ms=_parse_time(args.start), end_ms=_parse_time(args.end), levels=args.levels)
        image = render_heatmap(frames, width=args.width, height=args.height, title=title)
    else:
        engine = book_at(paths, venue=args.venue, symbol=args.symbol, at_ms=_parse_time(args.at))
        image = render_depth(engine, width=args.width, height=args.height, levels=args.levels, title=title)
    save_png(image, args.out)
    print(f"{args.out}: {image.width} x {image.height}")
    return 0


def add_plot_command(commands: Any) -> None:
    """`marketprism plot heatmap|depth ...` (called by flows.cli)."""
    plot = commands.add_parser("plot", help="pictures of a book from recordings (PNG)")
    kinds = plot.add_subparsers(dest="kind", required=True)
    for kind, text in (("heatmap", "resting liquidity over time, Bookmap style"),
                       ("depth", "cumulative depth of both sides at one moment")):
        sub = kinds.add_parser(kind, help=text)
        sub.add_argument("--from", dest="sources", nargs="+", required=True, metavar="RECORDING")
        sub.add_argument("--venue", required=True)
        sub.add_argument("--symbol", required=True)
        sub.add_argument("--out", type=Path, required=True)
        sub.add_argument("--width", type=int, default=1000)
        sub.add_argument("--height", type=int, default=500)
        if kind == "heatmap":
            sub.add_argument("--start", help="ISO-8601, inclusive (exchange time)")
            sub.add_argument("--end", help="ISO-8601, exclusive")
            sub.add_argument("--columns", type=int, default=400, help="moments sampled across the range")
            sub.add_argument("--rows", type=int, default=200, help="price rows")
            sub.add_argument("--levels", type=int, default=1000, help="best levels per side drawn")
        else:
            sub.add_argument("--at", help="ISO-8601 moment (default: the end of the recordings)")
            sub.add_argument("--levels", type=int, default=200, help="levels per side drawn")
        sub.set_defaults(run=_run)
