"""Text: the frontend every step reads a text through (normalisation per language), a tag's
facts with the one resolver from a tag to its language (``tags``), and tokenizer fertility.
May import ``kani_adapt.core`` and ``kani_adapt.config``."""
