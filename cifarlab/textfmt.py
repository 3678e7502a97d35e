"""How shapes read in messages, tables and diagrams, so every part of cifarlab writes them alike."""

from __future__ import annotations

from collections.abc import Sequence


def fmt_shape(shape: Sequence[int] | None) -> str:
    """``(512, 2, 2)`` -> ``"512x2x2"``; ``None`` (a shape never reached) -> ``"?"``."""
    return "x".join(str(s) for s in shape) if shape is not None else "?"
