"""The fertility gate as a recipe check: the tags a LoRA recipe would stop on at training
(:func:`kani_adapt.training.data.check_fertility`), known before any stage runs. The tokenizer
is the generator's own (``generator.model.init``: a size's offline tokenizer, or the one in the
checkpoint's folder), the texts those training will read (:mod:`kani_adapt.recipes.expected`),
and the advice names the keys as the recipe spells them (``generator.data.*``)."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.core.errors import KaniAdaptError
from kani_adapt.core.preflight import Finding, note, problem
from kani_adapt.recipes import expected
from kani_adapt.text import fertility

KEYS = "generator.data."  # where the gate's thresholds live in a recipe


def findings(recipe, needs=None) -> list[Finding]:
    """A problem per tag whose script the generator's tokenizer spells in bytes, when the
    recipe trains a LoRA; a note when the texts or the tokenizer are not known yet."""
    gen = recipe.generator
    if gen.mode != "lora" or not (gen.data.max_byte_fallback or gen.data.max_fertility_ratio):
        return []
    seen = expected.expected(recipe, needs)
    if seen is None or not any(seen.texts.values()):
        return []  # nothing to measure before the transcripts exist: training measures them
    try:
        tokenizer = _tokenizer(gen.model.init)
    except KaniAdaptError as err:  # a damaged tokenizer: training would stop on it too
        return [problem(f"generator.model.init: {err}")]
    if tokenizer is None:
        return [note(f"generator.model.init: {gen.model.init} is not on this machine yet: the "
                     "fertility of its tokenizer is measured at training", "fertility")]
    texts = {tag or "(none)": group for tag, group in expected.normalised(recipe, seen).items()}
    figures = fertility.report(texts, tokenizer, _plain())
    return [problem(line, "fertility") for line in
            fertility.gate(figures, gen.data.max_byte_fallback, gen.data.max_fertility_ratio, KEYS)]


def _tokenizer(init: str):
    """The generator's text tokenizer (None when its model is neither a size nor on this
    machine); the KaniTTS2 tokens training adds do not change how a text is split."""
    from kani_adapt.core import hub
    from kani_adapt.models.generator import sizes

    if init in sizes.SIZES:
        from kani_adapt.models.generator.tokenizer import build_offline_text_tokenizer

        return build_offline_text_tokenizer()
    if not hub.on_machine(init):
        return None
    from kani_adapt.models.generator import checkpoint

    return checkpoint.load_tokenizer(Path(checkpoint.resolve(init, ("config.json",))))


def _plain():
    from kani_adapt.text import frontend

    return frontend.Frontend(enabled=False)  # the texts are normalised already
