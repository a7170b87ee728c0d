"""Configuration: the one loader (guarded YAML, ``key=value``, typed filling), wiring between
sections, sections several schemas share (devices, seeds, LoRA, optimiser, sampling, defaults).
May import ``kani_adapt.core`` only."""
