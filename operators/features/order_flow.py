"""Order flow between consecutive books: OFI (Cont, Kukanov, Stoikov 2014), multi-level OFI
(Xu, Gould, Howison 2018), the plan's delta flow, and trade flow.

OFI of one event n, with the paper's non-strict inequalities:
    e_n = 1{Pb_n >= Pb_n-1} qb_n - 1{Pb_n <= Pb_n-1} qb_n-1
        - 1{Pa_n <= Pa_n-1} qa_n + 1{Pa_n >= Pa_n-1} qa_n-1
so an unchanged price counts the size change, a better price the whole new size, a worse
price minus the whole old size. Multi-level OFI applies the same to the m-th level.
"""

from __future__ import annotations

Level = tuple[float, float]  # (price, size)


def event_ofi(bid_before: Level, bid_after: Level, ask_before: Level, ask_after: Level) -> float:
    (pb0, qb0), (pb1, qb1) = bid_before, bid_after
    (pa0, qa0), (pa1, qa1) = ask_before, ask_after
    flow = 0.0
    if pb1 >= pb0:
        flow += qb1
    if pb1 <= pb0:
        flow -= qb0
    if pa1 <= pa0:
        flow -= qa1
    if pa1 >= pa0:
        flow += qa0
    return flow


def multi_level_ofi(
    before: tuple[list[float], list[float], list[float], list[float]],
    after: tuple[list[float], list[float], list[float], list[float]],
    levels: int,
) -> list[float]:
    """e_n at levels 1..`levels` from (bid prices, bid sizes, ask prices, ask sizes), best first;
    a level missing before or after on either side contributes 0 for that side."""
    bp0, bq0, ap0, aq0 = before
    bp1, bq1, ap1, aq1 = after
    out = []
    for m in range(levels):
        flow = 0.0
        if m < len(bp0) and m < len(bp1):
            if bp1[m] >= bp0[m]:
                flow += bq1[m]
            if bp1[m] <= bp0[m]:
                flow -= bq0[m]
        if m < len(ap0) and m < len(ap1):
            if ap1[m] <= ap0[m]:
                flow -= aq1[m]
            if ap1[m] >= ap0[m]:
                flow += aq0[m]
        out.append(flow)
    return out


def delta_flow(bid_flow: float, ask_flow: float, bid_updates: int, ask_updates: int) -> dict[str, float | None]:
    """The plan's incremental features over the deltas since the last sample; `flow_ratio` is
    null where the plan wrote inf (no ask flow), so datasets stay finite."""
    return {
        "bid_flow": bid_flow,
        "ask_flow": ask_flow,
        "net_flow": bid_flow - ask_flow,
        "flow_ratio": bid_flow / ask_flow if ask_flow > 0 else None,
        "update_count": float(bid_updates + ask_updates),
        "bid_update_count": float(bid_updates),
        "ask_update_count": float(ask_updates),
    }


def trade_flow(buy_volume: float, sell_volume: float, count: int) -> dict[str, float | None]:
    """Trades since the last sample, signed by the taker: buys positive."""
    return {
        "trade_buy_volume": buy_volume,
        "trade_sell_volume": sell_volume,
        "signed_volume": buy_volume - sell_volume,
        "trade_count": float(count),
    }
