"""Training batches for the codec: random fixed-length segments, a pure function of the batch index.

Batch ``i`` always holds the same clips and the same crops for a given seed, so a resumed run
only needs to know how many batches it has consumed (no sampler state to save).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from kani_adapt.codec.manifest import Clip, load_audio
from kani_adapt.core.errors import DataError


def batch_plan(batch_index: int, batch_size: int, n_clips: int, seed: int) -> list[tuple[int, int]]:
    """(clip index, stream position) for each item of a batch: clips are drawn epoch by epoch
    from a fresh permutation, so every clip is seen once per epoch."""
    plan = []
    for pos in range(batch_index * batch_size, (batch_index + 1) * batch_size):
        epoch, within = divmod(pos, n_clips)
        order = np.random.default_rng([seed, epoch]).permutation(n_clips)
        plan.append((int(order[within]), pos))
    return plan


def crop_offset(duration: float, segment: float, seed: int, pos: int) -> float:
    """Start (seconds) of the random segment for one stream position; 0 for short clips."""
    room = max(0.0, duration - segment)
    return float(np.random.default_rng([seed, pos, 7]).uniform(0.0, room)) if room > 0 else 0.0


@dataclass
class Position:
    """Batches consumed so far; shared by the sampler and the checkpointing callback."""

    batches: int = 0


class StepSampler(Sampler):
    """Yields batch plans from the current position on, forever (max_steps stops training)."""

    def __init__(self, position: Position, batch_size: int, n_clips: int, seed: int):
        self.position, self.batch_size, self.n_clips, self.seed = position, batch_size, n_clips, seed

    def __iter__(self):
        index = self.position.batches  # read when iteration starts, i.e. after a resume restored it
        while True:
            yield batch_plan(index, self.batch_size, self.n_clips, self.seed)
            index += 1


class SegmentDataset(Dataset):
    def __init__(self, clips: list[Clip], sample_rate: int, segment_samples: int, seed: int):
        if not clips:
            raise DataError("no training clips")
        self.clips, self.sample_rate, self.segment, self.seed = clips, sample_rate, segment_samples, seed

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        index, pos = item
        clip = self.clips[index]
        seconds = self.segment / self.sample_rate
        offset = crop_offset(clip.duration, seconds, self.seed, pos)
        audio = load_audio(clip.audio_filepath, self.sample_rate, max_seconds=seconds, offset_seconds=offset)
        return torch.from_numpy(audio)


def collate(items: list[torch.Tensor], segment: int) -> dict[str, torch.Tensor]:
    """Pad to the segment length (a whole number of codec frames); NeMo's batch keys."""
    audio = torch.zeros(len(items), segment)
    lengths = torch.zeros(len(items), dtype=torch.long)
    for row, item in enumerate(items):
        audio[row, : len(item)] = item[:segment]
        lengths[row] = min(len(item), segment)
    return {"audio": audio, "audio_lens": lengths}


def train_loader(clips: list[Clip], position: Position, sample_rate: int, segment_samples: int,
                 batch_size: int, seed: int, workers: int = 0) -> DataLoader:
    dataset = SegmentDataset(clips, sample_rate, segment_samples, seed)
    sampler = StepSampler(position, batch_size, len(clips), seed)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                      collate_fn=lambda items: collate(items, segment_samples))
