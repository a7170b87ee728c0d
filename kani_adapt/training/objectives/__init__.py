"""Training objectives: what a step optimises (``sft``: next-token loss), each owning its batches,
its loss and its token-budget probe batch, beside the parameterisation (``mode``: full or LoRA)
that the Lightning module applies. May import what training imports (up to listening)."""
