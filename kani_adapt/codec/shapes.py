"""NanoCodec's architecture as NeMo configs: rates, quantizer, sizes (``tiny``, ``0.6kbps``),
discriminators, and a model of a size with random weights. Files and the ``Codec`` wrapper are
:mod:`kani_adapt.codec.nanocodec`'s; NeMo is imported only when a model is built.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from kani_adapt.config.defaults import NANOCODEC_HUB_ID
from kani_adapt.core.errors import CheckpointError

SAMPLE_RATE = 22050
SAMPLES_PER_FRAME = 1764  # 12.5 frames per second
NUM_GROUPS = 4
LEVELS = [9, 8, 8, 7]  # 9*8*8*7 = 4032 codes per codebook
LATENT_DIM = NUM_GROUPS * len(LEVELS)
HUB_ID = NANOCODEC_HUB_ID

_MODULES = "nemo.collections.tts.modules.audio_codec_modules"
_LOSSES = "nemo.collections.tts.losses.audio_codec_loss"


@dataclass(frozen=True)
class CodecShape:
    """Channel widths and residual-block layout; rates and quantizer are NanoCodec's in every size."""

    encoder_channels: int
    decoder_channels: int
    kernel_sizes: tuple[int, ...]
    dilations: tuple[int, ...]
    in_kernel_size: int = 7  # the encoder's first convolution
    loss_resolutions: int = 7  # NeMo's recipe: 7 STFT sizes from 32 to 2048 (the largest N kept)


SIZES = {
    # Real quantizer and 1764 samples per frame, only thin: fast enough for CPU tests. The encoder's
    # widths and first kernel are those codec/tiny.py designs its weights for (a filterbank).
    "tiny": CodecShape(encoder_channels=16, decoder_channels=64, kernel_sizes=(3,), dilations=(1,),
                       in_kernel_size=127, loss_resolutions=3),
    "0.6kbps": CodecShape(encoder_channels=24, decoder_channels=864, kernel_sizes=(3, 7, 11),
                          dilations=(1, 3, 5)),
}


def discriminator_config(kinds: tuple[str, ...]) -> dict | None:
    """MPD ("mpd") and multi-resolution STFT ("mrd") discriminators as NeMo targets."""
    parts = []
    for kind in kinds:
        if kind == "mpd":
            parts.append({"_target_": f"{_MODULES}.MultiPeriodDiscriminator", "periods": [2, 3, 5, 7, 11]})
        elif kind == "mrd":
            parts.append({"_target_": f"{_MODULES}.MultiResolutionDiscriminatorSTFT",
                          "resolutions": [[512, 128, 512], [1024, 256, 1024], [2048, 512, 2048]],
                          "stft_bands": [[0.0, 0.1], [0.1, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0]]})
        else:
            raise CheckpointError(f"unknown discriminator {kind!r}; choose from mpd, mrd")
    if not parts:
        return None
    return {"_target_": f"{_MODULES}.Discriminator", "discriminators": parts}


LOSS_RESOLUTIONS = [[32, 8, 32], [64, 16, 64], [128, 32, 128], [256, 64, 256], [512, 128, 512],
                    [1024, 256, 1024], [2048, 512, 2048]]
MEL_LOSS_DIMS = [5, 10, 20, 40, 80, 160, 320]


def model_config(size: str, discriminators: tuple[str, ...] = ("mpd", "mrd")) -> DictConfig:
    """A NanoCodec-shaped `AudioCodecModel` config (losses as in NeMo's 22 kHz low-frame-rate recipe)."""
    if size not in SIZES:
        raise CheckpointError(f"unknown codec size {size!r}; choose from {', '.join(SIZES)}")
    shape = SIZES[size]
    res = {"resblock_kernel_sizes": list(shape.kernel_sizes),
           "resblock_dilation_sizes": list(shape.dilations)}
    cfg = {
        "sample_rate": SAMPLE_RATE,
        "samples_per_frame": SAMPLES_PER_FRAME,
        "audio_encoder": {"_target_": f"{_MODULES}.HiFiGANEncoder", "encoded_dim": LATENT_DIM,
                          "down_sample_rates": [2, 3, 6, 7, 7], "base_channels": shape.encoder_channels,
                          "in_kernel_size": shape.in_kernel_size,
                          "activation": "lrelu", "pad_mode": "replicate", **res},
        "vector_quantizer": {"_target_": f"{_MODULES}.GroupFiniteScalarQuantizer",
                             "num_groups": NUM_GROUPS, "num_levels_per_group": LEVELS},
        "audio_decoder": {"_target_": f"{_MODULES}.CausalHiFiGANDecoder", "input_dim": LATENT_DIM,
                          "up_sample_rates": [7, 7, 6, 3, 2], "base_channels": shape.decoder_channels,
                          "activation": "half_snake", "output_activation": "clamp", "pad_mode": "zeros",
                          "n_groups_equal_to_out_channels": True, **res},
        "discriminator": discriminator_config(discriminators),
        "generator_loss": {"_target_": f"{_LOSSES}.GeneratorSquaredLoss"},
        "discriminator_loss": {"_target_": f"{_LOSSES}.DiscriminatorSquaredLoss"},
        "loss_resolutions": LOSS_RESOLUTIONS[-shape.loss_resolutions:],
        "mel_loss_dims": MEL_LOSS_DIMS[-shape.loss_resolutions:],
        "mel_loss_log_guard": 1.0, "stft_loss_log_guard": 1.0,
        "mel_loss_l1_scale": 1.0, "mel_loss_l2_scale": 0.0, "stft_loss_scale": 20.0,
        "time_domain_loss_scale": 0.0, "commit_loss_scale": 0.0, "gen_loss_scale": 1.0, "feature_loss_scale": 1.0,
        "optim": {"_target_": "torch.optim.Adam", "lr": 2e-4, "betas": [0.8, 0.99]},
    }
    return OmegaConf.create(cfg)


def build_model(size: str, seed: int = 0, discriminators: tuple[str, ...] = ("mpd", "mrd")):
    """A NanoCodec-shaped `AudioCodecModel` with random weights (deterministic for a seed): the
    architecture only. The codec ``tiny`` names everywhere else is :mod:`kani_adapt.codec.tiny`'s,
    whose weights make codes follow the audio."""
    from nemo.collections.tts.models import AudioCodecModel

    torch.manual_seed(seed)
    return AudioCodecModel(cfg=model_config(size, discriminators)).eval()
