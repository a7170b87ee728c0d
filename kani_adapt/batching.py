"""Length-bucketed batches: clips of similar length together, so little compute pads.

The one batcher of the project: the data tools (codec, embedder), the scorers (Whisper, speaker
similarity, accent ID) and evaluation all group clips through :func:`length_batches`.
"""
from __future__ import annotations

from typing import Sequence


def length_batches(lengths: Sequence[int], max_size: int, max_padded: int | None = None,
                   groups: Sequence = ()) -> list[list[int]]:
    """Indices batched longest first, at most ``max_size`` per batch and (with ``max_padded``)
    at most that many padded samples (batch size x longest clip); a clip longer than the budget
    still gets a batch of its own. Items of different ``groups`` never share a batch (Whisper
    decodes one forced language per batch). Ties keep index order."""
    keys = list(groups) if groups else [None] * len(lengths)
    order = sorted(range(len(lengths)), key=lambda i: (str(keys[i]), -lengths[i]))
    batches: list[list[int]] = []
    for i in order:
        current = batches[-1] if batches else None
        if (current and len(current) < max_size and keys[current[0]] == keys[i]
                and (max_padded is None or (len(current) + 1) * lengths[current[0]] <= max_padded)):
            current.append(i)
        else:
            batches.append([i])
    return batches


def id_batches(lengths: dict[str, int], max_padded: int, max_size: int) -> list[list[str]]:
    """:func:`length_batches` of ids (the data tools' clips): (batch size x longest clip) within
    ``max_padded`` samples; equal lengths are ordered by id, so the batches do not depend on the
    dict's order."""
    ids = sorted(lengths)
    batches = length_batches([lengths[i] for i in ids], max_size, max_padded)
    return [[ids[i] for i in batch] for batch in batches]
