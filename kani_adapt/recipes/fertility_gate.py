"""The fertility gate as a recipe check: what a LoRA recipe would stop on, known before training
(the data tools' ``filter/fertility.json``, kani_adapt.text.fertility's figures per tag)."""
from __future__ import annotations

import json
from pathlib import Path

from kani_adapt.text import fertility


def problems(recipe) -> list[str]:
    """Lines for ``check``: the tags whose script falls back to bytes when the recipe trains a
    LoRA; empty when it does not, or before the data are prepared."""
    gen = recipe.generator
    if gen.mode != "lora" or recipe.data is None:
        return []
    path = Path(recipe.data.work) / "filter" / "fertility.json"
    if not path.is_file():
        return []
    figures = json.loads(path.read_text(encoding="utf-8"))
    return fertility.gate(figures, gen.data.max_byte_fallback, gen.data.max_fertility_ratio)
