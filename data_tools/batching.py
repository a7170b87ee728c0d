"""Length-bucketed batches: clips of similar length together, so little compute pads."""
from __future__ import annotations


def make_batches(lengths: dict[str, int], max_padded: int, max_size: int) -> list[list[str]]:
    """Group ids so that (batch size x longest clip) stays within ``max_padded`` samples.

    Sorted longest first: neighbours have similar lengths, so padding is small. A clip longer
    than the budget still gets a batch of its own.
    """
    order = sorted(lengths, key=lambda k: (-lengths[k], k))
    batches, current = [], []
    for utt_id in order:
        longest = lengths[current[0]] if current else lengths[utt_id]
        if current and ((len(current) + 1) * longest > max_padded or len(current) >= max_size):
            batches.append(current)
            current = []
        current.append(utt_id)
    return batches + ([current] if current else [])
