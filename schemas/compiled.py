"""The compiled twins of hot loops (the `_*.c` files beside the modules), when they are built.

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


def compiled(module: str) -> ModuleType | None:
    """The compiled module by its dotted name, or None when it is not built or not wanted."""
    if os.environ.get("MARKETPRISM_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        _log.warning("compiled %s not built (%s): the pure-Python loops run instead; "
                     "`pip install -e .` builds it", module, exc)
        return None
