"""Writing pictures: a Pillow image to a PNG file (no timestamps or text chunks, so the same
picture gives the same bytes)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def save_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=False)
