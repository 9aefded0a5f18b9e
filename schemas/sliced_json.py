"""JSON documents with big arrays of levels, parsed in slices with a pause between them.

An OKX `books-full` answer (330 KB, 5000 levels a side) parsed in one `orjson.loads`
holds the GIL for 2-3 ms, every second and for every OKX book, twice: where the REST
thread checks that the body is JSON, and where the answer is decoded; the flow's worker,
which must pass on the next websocket message within a millisecond, waits that long. Parsed a
slice of levels at a time with `pause()` between slices (a short sleep lets a waiting
thread take the GIL), no single call holds it for more than a fraction of a millisecond.

The result is always exactly `orjson.loads(text)`, or its error: each array of arrays
(`[[`...`]]`) longer than a slice is cut at `],[` between levels, each slice is parsed as
an array of its own, and the rest of the document is parsed with a marker where the array
was. That is the document's own parse only when every slice and the rest parse and the
marker is found once, as a value: the first slice starts where the array does, so a cut
inside a string would leave that slice's string open. Anything else (a `]]` inside a
string, a marker text in the document, malformed JSON) falls back to one whole parse.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

# What the live source's threads use: slices of about 0.2 ms of parsing each, and a pause
# long enough for a thread waiting on the GIL to take it.
SLICE_CHARS = 32_768
PAUSE_S = 0.0002

_MARK = "\x00sliced-array-"
_MARK_JSON = "\\u0000sliced-array-"


def loads_in_slices(text: str, *, slice_chars: int, pause: Callable[[], None]) -> Any:
    """`orjson.loads(text)`, with no single parse of much more than `slice_chars`."""
    if len(text) <= slice_chars:
        return orjson.loads(text)
    rest: list[str] = []
    arrays: list[list[Any]] = []
    at = 0
    while (start := text.find("[[", at)) >= 0:
        end = text.find("]]", start)
        if end < 0:
            break
        end += 2
        if end - start > slice_chars:
            try:
                arrays.append(_sliced_array(text[start + 1 : end - 1], slice_chars, pause))
            except orjson.JSONDecodeError:
                return orjson.loads(text)
            rest += (text[at:start], f'"{_MARK_JSON}{len(arrays) - 1}"')
            at = end
        else:
            rest.append(text[at:end])
            at = end
    if not arrays:
        return orjson.loads(text)
    rest.append(text[at:])
    try:
        skeleton = orjson.loads("".join(rest))
    except orjson.JSONDecodeError:
        return orjson.loads(text)
    found: list[int] = []
    document = _put_back(skeleton, arrays, found)
    if sorted(found) != list(range(len(arrays))):
        return orjson.loads(text)
    return document


def loads_yielding(text: str) -> Any:
    """`loads_in_slices` as the live source's threads use it: between slices they sleep
    `PAUSE_S`, so a thread waiting on the GIL (the flow's worker) takes it."""
    return loads_in_slices(text, slice_chars=SLICE_CHARS, pause=_pause)


def _pause() -> None:
    time.sleep(PAUSE_S)


def _sliced_array(inner: str, slice_chars: int, pause: Callable[[], None]) -> list[Any]:
    """The items of `[inner]`, parsed a slice at a time (raises if a slice is not JSON)."""
    items: list[Any] = []
    at = 0
    while len(inner) - at > slice_chars:
        cut = inner.find("],[", at + slice_chars)
        if cut < 0:
            break
        items += orjson.loads(f"[{inner[at : cut + 1]}]")
        at = cut + 2
        pause()
    items += orjson.loads(f"[{inner[at:]}]")
    return items


def _put_back(value: Any, arrays: list[list[Any]], found: list[int]) -> Any:
    """`value` with each marker string replaced by its array; every marker seen goes to `found`."""
    if isinstance(value, str):
        if value.startswith(_MARK):
            index = value[len(_MARK) :]
            found.append(int(index) if index.isdigit() and int(index) < len(arrays) else -1)
            return arrays[found[-1]] if found[-1] >= 0 else value
        return value
    if isinstance(value, dict):
        return {key: _put_back(item, arrays, found) for key, item in value.items()}
    if isinstance(value, list):
        return [_put_back(item, arrays, found) for item in value]
    return value
