"""Data tools: from community recordings to tokenized KaniTTS2 training data."""
