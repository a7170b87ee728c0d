"""The speaker embedder's network and files in its publisher's layout (Orange/Speaker-wavLM-tbr,
re-hosted as nineninesix/speaker-emb-tbr, read by the official runtime's ``EmbeddingsModel``).

Folder: ``config.json`` is a transformers WavLM config plus ``embd_size`` (128) and
``top_interm_size`` (512); ``model.safetensors`` holds ``wavlm.*`` and ``top_layers.affine1``,
``batchnorm1``, ``affine2``, ``batchnorm2``.

Numerics (format page, section 5), reproduced here for a padded batch: each clip is normalised
by its own mean and *unbiased* standard deviation (+1e-10 on the std); the WavLM encoder's last
hidden state is pooled into mean and sqrt(unbiased variance, floored at 1e-10) over the clip's
own frames; then conv1x1 -> ReLU -> BatchNorm(eps 1e-3, running statistics) twice, and an L2
normalisation. Padding never reaches the statistics, so a batch equals one clip at a time.
Reading a folder (checked first) is :mod:`kani_adapt.models.speaker.embedder`'s.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kani_adapt.core import atomic
from kani_adapt.config.defaults import SPEAKER_EMBEDDER_HUB_ID

SAMPLE_RATE = 16000
MAX_SECONDS = 30.0  # the official runtime truncates longer references
DEFAULT_MODEL = SPEAKER_EMBEDDER_HUB_ID
WEIGHTS = "model.safetensors"
BN_EPS = 1e-3  # the publisher's BatchNorm eps (not torch's 1e-5 default)

TINY_WAVLM = dict(  # a few thousand parameters: shapes only, for tests and demos
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=(32, 32, 32), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8), conv_bias=False,
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, num_buckets=32,
    max_bucket_distance=64, do_stable_layer_norm=True, feat_extract_norm="layer",
)


class TopLayers(nn.Module):
    """Two blocks of 1x1 conv -> ReLU -> BatchNorm(no affine); names match the published file."""

    def __init__(self, in_size: int, interm_size: int, embd_size: int):
        super().__init__()
        self.affine1 = nn.Conv1d(in_size, interm_size, kernel_size=1)
        self.batchnorm1 = nn.BatchNorm1d(interm_size, affine=False, eps=BN_EPS)
        self.affine2 = nn.Conv1d(interm_size, embd_size, kernel_size=1)
        self.batchnorm2 = nn.BatchNorm1d(embd_size, affine=False, eps=BN_EPS)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.batchnorm1(torch.relu(self.affine1(pooled)))
        return self.batchnorm2(torch.relu(self.affine2(x)))


class SpeakerEmbedder(nn.Module):
    def __init__(self, config):
        """``config``: a transformers ``WavLMConfig`` carrying ``embd_size``, ``top_interm_size``."""
        super().__init__()
        from transformers import WavLMModel

        self.config = config
        self.wavlm = WavLMModel(config)
        self.top_layers = TopLayers(2 * config.hidden_size, config.top_interm_size,
                                    config.embd_size)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """audio [B, T] at 16 kHz with valid ``lengths`` [B] -> unit vectors [B, embd_size]."""
        if self.config.feat_extract_norm != "layer":
            # group-norm feature extractors normalise over time, padding included: one by one
            return torch.cat([self._embed(audio[i:i + 1, : int(n)], lengths[i:i + 1])
                              for i, n in enumerate(lengths)])
        return self._embed(audio, lengths)

    def _embed(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = torch.arange(audio.shape[1], device=audio.device)[None, :] < lengths[:, None]
        hidden = self.wavlm(normalise(audio, mask), attention_mask=mask.long()).last_hidden_state
        frames = self.wavlm._get_feature_vector_attention_mask(hidden.shape[1], mask.long())
        mean, var = masked_mean_var(hidden, frames)
        pooled = torch.cat([mean, var.clamp(min=1e-10).sqrt()], dim=-1).unsqueeze(-1)
        return nn.functional.normalize(self.top_layers(pooled).squeeze(-1), dim=-1)

    def embed(self, clips: list[np.ndarray], sample_rate: int = SAMPLE_RATE,
              batch_size: int = 8) -> np.ndarray:
        """Mono float clips at any ``sample_rate`` -> [N, embd_size] float32 unit vectors."""
        clips = [prepare(c, sample_rate) for c in clips]
        device = next(self.parameters()).device
        out = []
        for start in range(0, len(clips), batch_size):
            batch, lengths = pad(clips[start:start + batch_size])
            with torch.inference_mode():
                out.append(self(batch.to(device), lengths.to(device)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.embd_size), np.float32)


def normalise(audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(x - mean) / (unbiased std + 1e-10) over each row's valid samples; padding stays zero."""
    mean, var = masked_mean_var(audio.unsqueeze(-1), mask)
    return (audio - mean) / (var.sqrt() + 1e-10) * mask.to(audio.dtype)


def masked_mean_var(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased variance of x [B, T, C] over the time steps where mask [B, T] is set."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    count = weights.sum(1)
    mean = (x * weights).sum(1) / count.clamp(min=1)
    var = (((x - mean[:, None]) * weights) ** 2).sum(1) / (count - 1).clamp(min=1)
    return mean, var


def prepare(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 at 16 kHz (soxr), cut to the 30 s the official runtime keeps."""
    from kani_adapt.core.errors import DataError

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise DataError(f"a reference clip must be mono and non-empty, got shape {audio.shape}")
    if sample_rate != SAMPLE_RATE:
        from kani_adapt.audio import resample

        audio = resample(audio, sample_rate, SAMPLE_RATE)
    return audio[: int(MAX_SECONDS * SAMPLE_RATE)]


def pad(clips: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    from kani_adapt.audio import padded

    return padded(clips)


def make_config(wavlm: dict | None = None, embd_size: int = 128, top_interm_size: int = 512):
    from transformers import WavLMConfig

    return WavLMConfig(**(wavlm or TINY_WAVLM), embd_size=embd_size,
                       top_interm_size=top_interm_size)


def build(seed: int = 0, wavlm: dict | None = None) -> SpeakerEmbedder:
    """A random embedder of the given WavLM sizes (default tiny), with non-trivial statistics: the
    architecture, for format tests. Voices differ only in the fitted one, ``load("tiny")``."""
    torch.manual_seed(seed)
    model = SpeakerEmbedder(make_config(wavlm))
    with torch.no_grad():
        for bn in (model.top_layers.batchnorm1, model.top_layers.batchnorm2):
            bn.running_mean.normal_(0, 0.1)
            bn.running_var.uniform_(1e-3, 1e-1)
    return model.eval()


def write_files(model: SpeakerEmbedder, folder: Path) -> None:
    """The publisher's layout into an existing ``folder``: WavLM config + head sizes, one
    safetensors file."""
    from safetensors.torch import save_file

    config = model.config.to_dict()
    config["architectures"] = ["EmbeddingsModel"]
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic.write_text(Path(folder) / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file(state, str(Path(folder) / WEIGHTS), metadata={"format": "pt"})


def save(model: SpeakerEmbedder, folder: Path) -> Path:
    """The publisher's layout, written as a whole folder (replaced atomically)."""
    return atomic.write_folder(Path(folder), lambda tmp: write_files(model, tmp))
