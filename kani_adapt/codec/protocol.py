"""The small codec protocol the rest of the toolkit uses (data tools, training, evaluation).

Only the codec module imports NeMo; everything else talks to a codec through this protocol, so
tests can use tiny codecs and other implementations can be swapped in.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Codec(Protocol):
    sample_rate: int  # 22050 for NanoCodec 0.6 kbps
    samples_per_frame: int  # 1764 (12.5 frames per second)
    num_codebooks: int  # 4
    codebook_size: int  # 4032

    def encode(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio [B, T] float at ``sample_rate`` with valid ``lengths`` [B] -> codes
        [B, num_codebooks, F] int64 in 0..codebook_size-1, and valid frame counts [B]."""
        ...

    def decode(self, codes: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes [B, num_codebooks, F] with valid ``frames`` [B] -> audio [B, F * samples_per_frame]
        float, and valid sample counts [B]."""
        ...
