"""The compiled twins of the level loops (`operators/_levels_core.c`) and of the typed
reading of Binance frames (`operators/_binance_frames.c`), when they are built
(`schemas.compiled` says how, and what runs without them)."""

from __future__ import annotations

from types import ModuleType

from schemas.compiled import compiled

CORE: ModuleType | None = compiled("operators._levels_core")
FRAMES: ModuleType | None = compiled("operators._binance_frames")
