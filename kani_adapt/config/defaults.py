"""Values shared by several schemas, declared once (light: no imports, safe on the --help path)."""

# The codec KaniTTS2 was trained with: tokenizes the data, decodes samples, is fine-tuned.
NANOCODEC_HUB_ID = "nvidia/nemo-nano-codec-22khz-0.6kbps-12.5fps"

# The speaker embedder KaniTTS2 was trained with: voice files, the data tools' embed stage, eval.
SPEAKER_EMBEDDER_HUB_ID = "nineninesix/speaker-emb-tbr"
# The speaker embedder every loader builds on this machine instead (random weights fitted on
# espeak-ng voices: demos and tests), wherever an embedder is named.
SPEAKER_EMBEDDER_TINY = "tiny"

# The longest utterance the data tools keep (segment, align and filter cut or drop longer ones)
# and the seconds of each clip the codec readiness check round-trips. Generator training's
# `data.max_duration` (40 s) is another concept: the longest clip pretraining kept.
MAX_CLIP_SECONDS = 20.0
