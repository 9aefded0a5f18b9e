"""The instruments the simulator knows: price and size grids, wire number style, depth and pace.

Grids follow the exchanges' own filters (Binance BTCUSDT tick 0.01, step 0.00001;
OKX BTC-USDT tick 0.1, lot 0.00000001). Pace is relative to Binance BTCUSDT in 2024
(`activity` 1.0), whose message statistics the market model is calibrated on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.decimal_text import decimal_text

BINANCE_DECIMALS = 8


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One instrument on one venue. Prices are integer ticks, sizes integer lots."""

    symbol: str  # "BTC-USDT"
    price_decimals: int  # one tick is 10**-price_decimals
    qty_decimals: int  # one lot is 10**-qty_decimals
    text_decimals: int | None  # fixed decimals on the wire, or None for the shortest form
    start_price: int  # ticks
    median_qty: int  # lots at a typical level
    near_gap: float  # mean empty ticks between neighbouring levels at the top ...
    gap_growth: float  # ... growing by this much per level of depth
    volatility: float  # ticks per sqrt(second) of the hidden fair price
    activity: float  # changes and trades per second, relative to Binance BTCUSDT
    first_update_id: int
    first_trade_id: int
    levels_per_side: int = 6000

    def price_text(self, ticks: int) -> str:
        return decimal_text(ticks, self.price_decimals, self.text_decimals)

    def qty_text(self, lots: int) -> str:
        return decimal_text(lots, self.qty_decimals, self.text_decimals)


SPECS: dict[tuple[str, str], SymbolSpec] = {
    ("binance", "BTC-USDT"): SymbolSpec(
        symbol="BTC-USDT", price_decimals=2, qty_decimals=5, text_decimals=BINANCE_DECIMALS,
        start_price=9_000_000, median_qty=2_000, near_gap=3.0, gap_growth=0.008,
        volatility=100.0, activity=1.0, first_update_id=47_211_360_001, first_trade_id=3_622_104_500,
    ),
    ("binance", "ETH-USDT"): SymbolSpec(
        symbol="ETH-USDT", price_decimals=2, qty_decimals=4, text_decimals=BINANCE_DECIMALS,
        start_price=300_000, median_qty=5_000, near_gap=0.3, gap_growth=0.0002,
        volatility=4.0, activity=0.7, first_update_id=37_120_455_001, first_trade_id=1_488_201_300,
    ),
    ("binance", "SOL-USDT"): SymbolSpec(
        symbol="SOL-USDT", price_decimals=2, qty_decimals=3, text_decimals=BINANCE_DECIMALS,
        start_price=15_000, median_qty=20_000, near_gap=0.2, gap_growth=0.0001,
        volatility=0.3, activity=0.5, first_update_id=12_004_118_001, first_trade_id=702_415_900,
    ),
    ("binance", "BNB-USDT"): SymbolSpec(
        symbol="BNB-USDT", price_decimals=2, qty_decimals=3, text_decimals=BINANCE_DECIMALS,
        start_price=60_000, median_qty=5_000, near_gap=0.6, gap_growth=0.0005,
        volatility=1.0, activity=0.4, first_update_id=9_311_760_001, first_trade_id=512_003_700,
    ),
    ("okx", "BTC-USDT"): SymbolSpec(
        symbol="BTC-USDT", price_decimals=1, qty_decimals=8, text_decimals=None,
        start_price=900_000, median_qty=2_000_000, near_gap=0.5, gap_growth=0.001,
        volatility=3.0, activity=0.6, first_update_id=31_245_880_001, first_trade_id=531_208_400,
    ),
    ("okx", "ETH-USDT"): SymbolSpec(
        symbol="ETH-USDT", price_decimals=2, qty_decimals=6, text_decimals=None,
        start_price=300_000, median_qty=500_000, near_gap=0.3, gap_growth=0.0002,
        volatility=4.0, activity=0.45, first_update_id=22_718_300_001, first_trade_id=402_116_900,
    ),
}


def spec_for(venue: str, symbol: str) -> SymbolSpec:
    """The spec of `symbol` on `venue`, or a KeyError naming what is known."""
    try:
        return SPECS[(venue, symbol)]
    except KeyError:
        known = ", ".join(f"{v}:{s}" for v, s in SPECS)
        raise KeyError(f"no simulated instrument {venue}:{symbol}; known: {known}") from None
