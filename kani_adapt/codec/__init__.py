"""Audio codecs that turn waveforms into KaniTTS2's NanoCodec tokens and back (behind a protocol
and a registry), and the codec readiness check. May import core, config, text, contracts, pages."""
