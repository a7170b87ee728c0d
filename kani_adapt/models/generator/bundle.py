"""A loaded generator: the model and everything it was trained with, in one explicit bundle.

Loading a checkpoint (:func:`kani_adapt.models.generator.checkpoint.load_checkpoint`) or an
adapter (:func:`kani_adapt.training.lora.load_adapter`) returns a :class:`Generator`; synthesis,
evaluation, the recipe's samples and ``generate`` take one, and saving writes its parts back
(``text_frontend.json``, ``text_layout.json``, ``generation_config.json``). Nothing rides on the
Hugging Face model object itself.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kani_adapt import tokens
from kani_adapt.text import frontend


@dataclass(frozen=True)
class Generator:
    model: Any  # KaniTTS2ForCausalLM (or a PeftModel over one)
    tokenizer: Any
    # how its texts were read (text_frontend.json; None: none stored, texts read by the default)
    text_frontend: frontend.Frontend | None = None
    # how its prompts were laid out (text_layout.json; absent: plain)
    text_layout: tokens.TextLayout = field(default_factory=tokens.TextLayout)
    # sampling values its generation_config.json sets, in SamplingConfig names (only those)
    sampling: dict = field(default_factory=dict)

    @property
    def reads_with(self) -> frontend.Frontend:
        """The frontend every text for this model goes through."""
        return self.text_frontend or frontend.Frontend()

    def with_model(self, model) -> "Generator":
        """The same bundle around another model (an adapter applied, weights merged)."""
        return dataclasses.replace(self, model=model)

    def with_frontend(self, front: frontend.Frontend | None) -> "Generator":
        """The bundle with the frontend a folder stored (``None``: keep this one)."""
        return self if front is None else dataclasses.replace(self, text_frontend=front)

    def eval(self) -> "Generator":
        self.model.eval()
        return self
