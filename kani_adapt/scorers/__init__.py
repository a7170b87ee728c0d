"""Scorers shared by evaluation and the data tools, one module each. May import core, config,
text, contracts and the models (never evaluation).

- ``textnorm``: per-language text normalisation (the same one the data tools use)
- ``text``: CER and WER (jiwer) after that normalisation
- ``asr``: Whisper transcription with per-clip confidence (log-prob, no-speech, compression)
- ``similarity``: speaker similarity (KaniTTS2 speaker embedder, optional WavLM x-vector)
- ``quality``: DNSMOS P.808 and P.835 (OVRL, SIG, BAK)
- ``langid``: language identification (Whisper, optional audio classifier with expected labels)
- ``failures``: length cap, runaway/truncation, repeated codes, silence, empty transcript
- ``registry``: the one list of scorers (their switches in ``config``): what each loads and
  measures and how it is shown; evaluation, its report and page, preflight and training's
  monitors read it

Nothing heavy is imported here: models load inside ``load`` functions, never at import.
"""

SCORER_RATE = 16000  # Whisper, DNSMOS and the speaker models all take 16 kHz
