"""The speaker embedder (WavLM + statistics pooling + two conv blocks) in its publisher's layout,
its tiny twin and voice files. May import core, config and contracts."""
