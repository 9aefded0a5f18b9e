"""A local stand-in for Binance and OKX public market data, with ground truth.

`sim` is a black-box peer of the collector: it imports nothing of ours, so what it
checks cannot share a bug with what it is checking.

- `specs`, `decimal_text`: instruments' grids and exact number text.
- `market`: a seeded order-book process per symbol; the truth of every book state.
- `binance_format`, `okx_format`: that process written as each exchange writes it.
- `faults`: damage to inject (gaps, duplicates, bad checksums, malformed frames).
- `recording`: a deterministic recording of what a live client would have received.
- `server` (`SimExchange`, `SimulatorThread`; `python -m sim`): the same market live on
  loopback, real time, real protocols, with `settings`, `live_market` (windows played in
  real time), `binance_server` and `okx_server` (one port per venue for REST and
  websockets, via `rest`), `peer` (one client's outbox), `limits` (rate limits) and
  `live_faults` (faults armed at a time or on demand, each recorded).
"""
