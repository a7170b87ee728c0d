"""Text: the frontend every step reads a text through (normalisation per language, tag to
language) and tokenizer fertility. May import ``kani_adapt.core`` and ``kani_adapt.config``."""
