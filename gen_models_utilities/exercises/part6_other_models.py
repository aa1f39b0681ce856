"""Checks of the exercise notebook's part 6, diffusion and likelihood (17b): exercises 21 and 22."""
from __future__ import annotations

__all__: list[str] = []
