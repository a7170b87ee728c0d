"""Codec fine-tuning: NeMo's own GAN training step under Lightning (``train``), its schema
(``config``), batches (``data``), callbacks (``callbacks``) and decoder LoRA (``lora``)."""
