"""The compiled twins of the level loops (`operators/_levels_core.c`) and of the typed
reading of Binance frames (`operators/_binance_frames.c`), when they are there.

`pip install` (and so `make test` / `make demo`) builds them with the machine's C compiler.
Without them, or with MARKETPRISM_PURE_PYTHON=1 in the environment, the pure-Python loops
run: the same answers, a few times slower (tests hold the two to the same answers and the
replay to the same bytes). A missing build is said once in the log, never silently slow.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

_log = logging.getLogger(__name__)


def _load(name: str) -> ModuleType | None:
    if os.environ.get("MARKETPRISM_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(f"operators.{name}")
    except ImportError as exc:
        _log.warning("compiled operators.%s not built (%s): the pure-Python loops run instead; "
                     "`pip install -e .` builds it", name, exc)
        return None


CORE: ModuleType | None = _load("_levels_core")
FRAMES: ModuleType | None = _load("_binance_frames")
