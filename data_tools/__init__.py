"""Data tools: from community recordings to tokenized KaniTTS2 training data (stages, their
registry and runner, engines, reports, the contribution gate). May import kani_adapt up to training."""
