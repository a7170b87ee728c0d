"""Audio codecs that turn waveforms into KaniTTS2's NanoCodec tokens and back."""
