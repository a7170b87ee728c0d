"""Speaker embedder with the Orange/Speaker-wavLM-tbr architecture on transformers' WavLM.

16 kHz mono, at most 30 s, mean/variance normalised per utterance -> WavLM encoder -> mean and
standard deviation over valid frames (2 x hidden) -> two blocks of 1x1 conv + ReLU +
BatchNorm(affine=False) (2 x hidden -> 512 -> 128) -> L2-normalised 128-d vector.

A model folder holds ``config.json`` (``{"architecture": "speaker-wavlm-tbr", "wavlm": {...},
"hidden": 512, "emb_dim": 128}``) and ``model.safetensors``. ``build`` makes a tiny random one
for tests; ``save`` and ``load`` are the same path for tiny and real weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

ARCHITECTURE = "speaker-wavlm-tbr"
SAMPLE_RATE = 16000
MAX_SECONDS = 30.0

TINY_WAVLM = dict(  # a few thousand parameters: shapes only, for tests
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=(32, 32, 32), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8), num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4, num_buckets=32, max_bucket_distance=64,
    do_stable_layer_norm=True, feat_extract_norm="layer",
)


class SpeakerEmbedder(nn.Module):
    def __init__(self, wavlm: dict, hidden: int = 512, emb_dim: int = 128):
        super().__init__()
        from transformers import WavLMConfig, WavLMModel

        self.config = {"architecture": ARCHITECTURE, "wavlm": dict(wavlm), "hidden": hidden,
                       "emb_dim": emb_dim}
        self.wavlm = WavLMModel(WavLMConfig(**wavlm))
        width = self.wavlm.config.hidden_size
        self.head = nn.Sequential(
            nn.Conv1d(2 * width, hidden, 1), nn.ReLU(), nn.BatchNorm1d(hidden, affine=False),
            nn.Conv1d(hidden, emb_dim, 1), nn.ReLU(), nn.BatchNorm1d(emb_dim, affine=False),
        )

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """audio [B, T] at 16 kHz with valid ``lengths`` [B] -> unit vectors [B, emb_dim]."""
        mask = torch.arange(audio.shape[1], device=audio.device)[None, :] < lengths[:, None]
        audio = normalise(audio, mask)
        hidden = self.wavlm(audio, attention_mask=mask.long()).last_hidden_state
        frames = self.wavlm._get_feature_vector_attention_mask(hidden.shape[1], mask.long())
        weights = frames.unsqueeze(-1).to(hidden.dtype)
        count = weights.sum(1).clamp(min=1)
        mean = (hidden * weights).sum(1) / count
        std = (((hidden - mean[:, None]) ** 2 * weights).sum(1) / count).clamp(min=1e-8).sqrt()
        pooled = torch.cat([mean, std], dim=-1).unsqueeze(-1)  # [B, 2*hidden, 1] for 1x1 convs
        return nn.functional.normalize(self.head(pooled).squeeze(-1), dim=-1)


def normalise(audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over each row's valid samples; padding stays zero."""
    m = mask.to(audio.dtype)
    count = m.sum(1, keepdim=True).clamp(min=1)
    mean = (audio * m).sum(1, keepdim=True) / count
    var = (((audio - mean) * m) ** 2).sum(1, keepdim=True) / count
    return (audio - mean) / (var + 1e-7).sqrt() * m


def build(seed: int = 0, wavlm: dict | None = None) -> SpeakerEmbedder:
    torch.manual_seed(seed)
    return SpeakerEmbedder(wavlm or TINY_WAVLM).eval()


def save(model: SpeakerEmbedder, folder: Path) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config, indent=1))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    return folder


def load(path_or_id: str, device: str = "cpu") -> SpeakerEmbedder:
    """From a local folder or a hub id; every weight must be present (no silent random init)."""
    from safetensors.torch import load_file

    from kani_adapt.errors import CheckpointError
    from kani_adapt.models.generator.checkpoint import resolve

    folder = resolve(path_or_id, required=("config.json", "model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    if config.get("architecture") != ARCHITECTURE:
        raise CheckpointError(f"{folder}/config.json is not a {ARCHITECTURE} speaker embedder")
    model = SpeakerEmbedder(config["wavlm"], config.get("hidden", 512), config.get("emb_dim", 128))
    missing, unexpected = model.load_state_dict(load_file(str(folder / "model.safetensors")),
                                                strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{folder}: missing weights {missing[:3]}, unexpected "
                              f"{unexpected[:3]}; not a {ARCHITECTURE} checkpoint")
    return model.to(device).eval()
