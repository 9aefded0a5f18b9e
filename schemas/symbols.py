"""Symbol names: one spelling ("BTC-USDT") everywhere, whatever the venue writes.

Binance glues base and quote together ("BTCUSDT", "btcusdt" in stream names), so
the split needs the list of quote assets; OKX already writes "BTC-USDT".
"""

from __future__ import annotations

# Quote assets Binance and Binance.US have listed pairs against. The longest
# matching suffix wins, so "FDUSD" and "BUSD" beat "USD".
BINANCE_QUOTES: tuple[str, ...] = tuple(
    sorted(
        {
            "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "PAX", "UST", "VAI",
            "AEUR", "EURI", "USD", "EUR", "GBP", "AUD", "BRL", "JPY", "RUB", "TRY",
            "UAH", "BIDR", "IDRT", "BVND", "ZAR", "NGN", "PLN", "RON", "ARS", "MXN",
            "COP", "CZK", "BTC", "ETH", "BNB", "XRP", "DOGE", "DOT", "TRX", "SOL",
        },
        key=len,
        reverse=True,
    )
)


def normalize_binance_symbol(raw: str) -> str:
    """"BTCUSDT" or "btcusdt" -> "BTC-USDT"; an already normalized "BTC-USDT" passes through.

    Raises ValueError when the name ends in no known quote asset, rather than guess a split.
    """
    name = raw.strip().upper()
    if "-" in name:
        base, quote = _split_dashed(name, raw)
        return f"{base}-{quote}"
    if not name.isascii() or not name.isalnum():
        raise ValueError(f"Binance symbol {raw!r} must be letters and digits only")
    for quote in BINANCE_QUOTES:
        if name.endswith(quote) and len(name) > len(quote):
            return f"{name[: -len(quote)]}-{quote}"
    raise ValueError(
        f"cannot split Binance symbol {raw!r} into base and quote: "
        f"it ends in none of the known quote assets {', '.join(sorted(BINANCE_QUOTES))}"
    )


def to_binance_symbol(symbol: str) -> str:
    """"BTC-USDT" -> "BTCUSDT", the spelling Binance's REST API wants."""
    base, quote = _split_dashed(symbol.strip().upper(), symbol)
    return base + quote


def _split_dashed(name: str, raw: str) -> tuple[str, str]:
    parts = name.split("-")
    if len(parts) != 2 or not all(p.isascii() and p.isalnum() for p in parts):
        raise ValueError(f"symbol {raw!r} is not of the form BASE-QUOTE, e.g. BTC-USDT")
    return parts[0], parts[1]
