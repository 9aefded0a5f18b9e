"""A local stand-in for Binance and OKX public market data, with ground truth.

`sim` is a black-box peer of the collector: it imports nothing of ours, so what it
checks cannot share a bug with what it is checking.

- `specs`, `decimal_text`: instruments' grids and exact number text.
- `market`: a seeded order-book process per symbol; the truth of every book state.
- `binance_format`, `okx_format`: that process written as each exchange writes it.
- `faults`: damage to inject (gaps, duplicates, bad checksums, malformed frames).
- `recording`: a deterministic recording of what a live client would have received.
"""
