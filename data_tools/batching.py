"""Length-bucketed batches of utterance ids, through the project's one batcher."""
from __future__ import annotations

from kani_adapt.batching import length_batches


def make_batches(lengths: dict[str, int], max_padded: int, max_size: int) -> list[list[str]]:
    """Group ids so that (batch size x longest clip) stays within ``max_padded`` samples;
    equal lengths are ordered by id, so the batches do not depend on the dict's order."""
    ids = sorted(lengths)
    batches = length_batches([lengths[i] for i in ids], max_size, max_padded)
    return [[ids[i] for i in batch] for batch in batches]
