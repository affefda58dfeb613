"""The material library (材料库): materials submitted at the counter, stored once, reused when verified."""

from __future__ import annotations

from exchange.materials.library import MaterialError, MaterialLibrary

__all__ = ["MaterialError", "MaterialLibrary"]
