"""The compiled level text writer writes exactly what `levels_json` writes in Python, and
that text is the JSON of the levels (judged by orjson reading it back).

Why: every full book and delta on NATS, in ClickHouse and in replay files is written by
`schemas/_levels_text.c` when it is built; a machine without a compiler writes the same
bytes with the Python twin, so a replay's output must not depend on which one ran.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import encoding

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DECIMALS = st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,8})?", fullmatch=True)
TEXTS = DECIMALS | st.text(max_size=4)
LEVEL = st.builds(list, st.lists(TEXTS, min_size=2, max_size=4)) | st.tuples(TEXTS, TEXTS) | st.lists(TEXTS, max_size=1)
SIDES = st.lists(LEVEL, max_size=6) | st.lists(LEVEL, max_size=3).map(tuple)
AGES = st.none() | st.integers(-5, 10**12)


def test_the_writer_is_built_by_pip_install() -> None:
    assert encoding._TEXT is not None, "schemas/_levels_text.c was not built; run `pip install -e .`"


def _python(levels: Any, deep: Any, age: int | None) -> bytes | None:
    try:
        return orjson.dumps(encoding.levels_json_in_python(levels, deep, age))
    except IndexError:
        return None


@PROPERTY
@given(levels=SIDES, deep=SIDES, age=AGES)
def test_the_compiled_text_is_the_python_text(levels: Any, deep: Any, age: int | None) -> None:
    assert encoding._TEXT is not None
    compiled = encoding._TEXT.levels_text(levels, deep, age)
    python = _python(levels, deep, age)
    if compiled is None:  # left to Python: a level it does not write itself
        return
    assert python is not None and compiled.encode() == python


@PROPERTY
@given(levels=st.lists(st.tuples(DECIMALS, DECIMALS), max_size=50), deep=st.lists(st.tuples(DECIMALS, DECIMALS), max_size=5),
       age=st.integers(0, 10**9))
def test_decimal_levels_read_back_as_the_levels(levels: list[tuple[str, str]], deep: list[tuple[str, str]], age: int) -> None:
    text = orjson.dumps(encoding.levels_json(levels, deep, age))
    expected = [{"price": p, "quantity": q} for p, q in levels] + [{"price": p, "quantity": q, "age_ms": age} for p, q in deep]
    assert orjson.loads(text) == expected
    assert encoding._TEXT is not None and encoding._TEXT.levels_text(levels, deep, age) is not None


def test_a_full_book_side_is_written_by_the_compiled_writer() -> None:
    assert encoding._TEXT is not None
    side = [[f"{90000 - n / 100:.2f}", "0.5"] for n in range(5000)]
    text = encoding._TEXT.levels_text(side, [], None)
    assert text is not None and orjson.loads(text) == [{"price": p, "quantity": q} for p, q in side]
