"""Right-padded training batches from token-contract examples."""
from __future__ import annotations

from typing import Sequence

import torch

from kani_adapt import tokens


def collate(examples: Sequence[tokens.Example], speaker_embs=None) -> dict[str, torch.Tensor]:
    """Pad examples on the right with PAD (label -100, mask 0).

    Right padding keeps the frame-level positions that the model derives from ``input_ids``
    correct for every real token; ``speaker_embs`` (B, 128) is passed through.
    """
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), tokens.PAD, dtype=torch.long)
    labels = torch.full((len(examples), width), tokens.IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, ex in enumerate(examples):
        n = len(ex.input_ids)
        ids[i, :n] = torch.tensor(ex.input_ids)
        labels[i, :n] = torch.tensor(ex.labels)
        mask[i, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if speaker_embs is not None:
        batch["speaker_emb"] = torch.as_tensor(speaker_embs, dtype=torch.float32)
    return batch
