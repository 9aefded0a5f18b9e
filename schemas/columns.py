"""Event objects built from columns: a replay's tickers and trades by the thousand.

`build_column(cls, *columns)` is `list(map(cls, *columns))`. For the event dataclasses
whose `__init__` only stores its arguments (slotted, every field given, no
`__post_init__`), the compiled builder (`schemas/_slots.c`) allocates each object and fills
its slots directly, which is several times cheaper than calling `__init__`.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from schemas.compiled import compiled
from schemas.events import Ticker, Trade

T = TypeVar("T")

_SLOTS = compiled("schemas._slots")


def _stores_only(cls: type) -> tuple[str, ...] | None:
    """The field names in `__init__`'s order when `__init__` does nothing but store them."""
    if not is_dataclass(cls) or not hasattr(cls, "__slots__") or hasattr(cls, "__post_init__"):
        return None
    names = tuple(f.name for f in fields(cls))
    return names if all(f.init for f in fields(cls)) and set(names) <= set(cls.__slots__) else None


_DIRECT: dict[type, tuple[str, ...]] = {
    cls: names for cls in (Ticker, Trade) if (names := _stores_only(cls)) is not None
}


def build_column(cls: type[T], *columns: list[Any]) -> list[T]:
    """`list(map(cls, *columns))`; the columns are lists of one length."""
    names = _DIRECT.get(cls) if _SLOTS is not None else None
    if names is None:
        return list(map(cls, *columns))
    return _SLOTS.build(cls, names, columns)  # type: ignore[no-any-return, union-attr]
