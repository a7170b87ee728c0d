"""Tiny twins of published models, built and saved with their publishers' own code."""
from __future__ import annotations

from pathlib import Path

import torch

from tests.conformance import official

# The official head's first conv is hard-wired to 2048 inputs (mean + std of 1024 channels), so
# the twin keeps WavLM-large's width and shrinks everything else.
TWIN_WAVLM = dict(
    hidden_size=1024, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    conv_dim=(32, 32, 32), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8), conv_bias=False,
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, num_buckets=32,
    max_bucket_distance=64, do_stable_layer_norm=True, feat_extract_norm="layer",
)


def official_speaker_embedder(folder: Path, seed: int = 0):
    """An ``EmbeddingsModel`` with small, uneven running variances (so the BatchNorm eps and the
    variance definition matter), saved with its own ``save_pretrained``."""
    from transformers import WavLMConfig

    torch.manual_seed(seed)
    config = WavLMConfig(**TWIN_WAVLM, embd_size=128, top_interm_size=512)
    model = official.load("speaker_embedder").EmbeddingsModel(config).eval()
    with torch.no_grad():
        for bn in (model.top_layers.batchnorm1, model.top_layers.batchnorm2):
            bn.running_mean.normal_(0, 0.2)
            bn.running_var.uniform_(1e-4, 1e-2)
    model.save_pretrained(folder)
    return model
