"""Values shared by several schemas, declared once (light: no imports, safe on the --help path)."""

# The codec KaniTTS2 was trained with: tokenizes the data, decodes samples, is fine-tuned.
NANOCODEC_HUB_ID = "nvidia/nemo-nano-codec-22khz-0.6kbps-12.5fps"
