"""Codec fine-tuning: NeMo's own GAN training step under Lightning (``train``), its schema
(``config``), batches, callbacks and decoder LoRA. May import up to listening, as training does."""
