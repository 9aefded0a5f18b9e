"""OKX order-book checksum: signed CRC32 over the top 25 levels per side, interleaved.

The string is `bid1px:bid1sz:ask1px:ask1sz:bid2px:...` built from the exact texts the
exchange sent (reformatting a number would break it); a shorter side simply runs out.
"""

from __future__ import annotations

import zlib

from operators.book import OrderBook

CHECKSUM_LEVELS = 25


def okx_checksum(book: OrderBook) -> int:
    bids = book.bids.top(CHECKSUM_LEVELS)
    asks = book.asks.top(CHECKSUM_LEVELS)
    parts: list[str] = []
    for index in range(max(len(bids), len(asks))):
        if index < len(bids):
            parts += bids[index][0], bids[index][1]
        if index < len(asks):
            parts += asks[index][0], asks[index][1]
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value
