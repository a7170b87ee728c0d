"""The speaker embedder (WavLM + statistics pooling + two conv blocks) in its publisher's layout."""
