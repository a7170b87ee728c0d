"""The published models in their publishers' formats, each with a tiny twin: the generator (and
the one text-to-audio path) and the speaker embedder. May import core, config, text, contracts."""
