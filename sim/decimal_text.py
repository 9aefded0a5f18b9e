"""Exact decimal text from integer units: prices and sizes never pass through a float."""

from __future__ import annotations


def decimal_text(units: int, decimals: int, width: int | None) -> str:
    """`units` x 10**-decimals as text.

    `width` fixes the number of decimals (Binance writes 8: "90000.01000000");
    None gives the shortest exact form (OKX: "90000.1", "0.5", "3").
    """
    if units < 0:
        return "-" + decimal_text(-units, decimals, width)
    whole, frac = divmod(units, 10**decimals)
    digits = f"{frac:0{decimals}d}" if decimals else ""
    if width is None:
        digits = digits.rstrip("0")
        return f"{whole}.{digits}" if digits else str(whole)
    if width < decimals:
        raise ValueError(f"{decimals} decimals do not fit in a width of {width}")
    return f"{whole}.{digits}{'0' * (width - decimals)}"
