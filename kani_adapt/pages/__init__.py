"""Pages: every HTML page kani-adapt writes (players, spectrograms, tables) and the pictures in
them. May import core, config, text and the contracts (``tokens``, ``dataset``, ``audio``)."""
