"""The KaniTTS2 generator: LFM2 with frame-level positions, learnable RoPE and a speaker slot;
loading, generation and synthesis. May import core, config, text, contracts and the codec."""
