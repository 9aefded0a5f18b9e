"""Settings models. Values come from the environment (MARKETPRISM_...), never from code."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing import Annotated


class ReplaySettings(BaseSettings):
    """`python -m bytewax.run flows.replay` reads these; `marketprism replay` sets them from flags."""

    model_config = SettingsConfigDict(env_prefix="MARKETPRISM_REPLAY_")

    inputs: Annotated[list[Path], NoDecode] = Field(description="recording files, separated by ':' or ','")
    out: Path | None = Field(default=None, description="normalized events as JSON Lines")
    report: Path | None = Field(default=None, description="the replay report (JSON)")
    full_interval_ms: int = Field(default=1000, ge=1, description="full books every N ms of recording time")
    depth: int = Field(default=5000, ge=1, description="levels per side in published full books")

    @field_validator("inputs", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.replace(",", ":").split(":") if part]
        return value
