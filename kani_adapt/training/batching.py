"""Length-aware batching by token budget, and a step-indexed batch order for exact resume.

Batches group examples of similar length so that padding stays small, and are then visited in
a shuffled order. The batch of every global step is a pure function of (seed, step), so a
resumed run continues with exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np


class Budgeted:
    """A data module's padded tokens per batch: a number (by default ``data.token_budget``), or
    for ``token_budget: auto`` the probe that measures it at fit start and answers when called
    (kani_adapt.training.budget.TokenBudgetProbe); asked when batches are planned."""

    def _budget_from(self, cfg, token_budget: "int | Callable[[], int] | None") -> None:
        self._budget = cfg.data.token_budget if token_budget is None else token_budget
        if not (callable(self._budget) or isinstance(self._budget, int)):
            raise TypeError(f"token budget {self._budget!r}: give a number or the budget probe")

    @property
    def token_budget(self) -> int:
        return self._budget() if callable(self._budget) else self._budget


def plan_batches(lengths: Sequence[int], token_budget: int, seed: int) -> list[list[int]]:
    """Group indices into batches with ``len(batch) * max_length <= token_budget``.

    Examples are sorted by length (ties broken at random), cut greedily, and the batches are
    shuffled. An example longer than the budget gets a batch of its own.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches: list[list[int]] = []
    current: list[int] = []
    for idx in order:
        # Sorted ascending, so the newest example is the longest of the batch.
        if current and (len(current) + 1) * lengths[idx] > token_budget:
            batches.append(current)
            current = []
        current.append(int(idx))
    if current:
        batches.append(current)
    return [batches[i] for i in rng.permutation(len(batches))]


def random_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    """Fixed-size batches in random order (what length-unaware pipelines do)."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]


def padding_efficiency(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Real tokens / padded tokens over all batches (1.0 = no padding)."""
    real = padded = 0
    for batch in batches:
        sizes = [lengths[i] for i in batch]
        real += sum(sizes)
        padded += max(sizes) * len(sizes)
    return real / padded if padded else 1.0


def is_replay_step(step: int, ratio: float) -> bool:
    """Whether global batch ``step`` comes from the replay set: ``ratio`` of all batches,
    spread evenly (deterministic, so resume sees the same mix)."""
    if ratio <= 0:
        return False
    return int((step + 1) * ratio) > int(step * ratio)


class EpochPlan:
    """Endless batches of one dataset: epoch ``e`` is ``plan(e)``; indices shifted by ``offset``
    (the dataset's place in a concatenation)."""

    def __init__(self, plan: Callable[[int], list[list[int]]], offset: int = 0):
        self.plan, self.offset = plan, offset
        self.per_epoch = len(plan(0))
        self._cache: dict[int, list[list[int]]] = {}

    def batch(self, k: int) -> list[int]:
        epoch, index = divmod(k, self.per_epoch)
        if epoch not in self._cache:
            self._cache = {epoch: self.plan(epoch)}
        return [i + self.offset for i in self._cache[epoch][index]]


def mixed_batch(flat: int, main: EpochPlan, replay: EpochPlan | None, ratio: float) -> list[int]:
    """Global batch ``flat``: from ``replay`` on replay steps, else the next ``main`` batch."""
    if replay is None or ratio <= 0:
        return main.batch(flat)
    replay_before = int(flat * ratio)  # replay steps among 0 .. flat-1
    if is_replay_step(flat, ratio):
        return replay.batch(replay_before)
    return main.batch(flat - replay_before)


class StepBatchSampler:
    """Yields the batches of steps ``start() .. total - 1`` for one rank.

    Step ``s`` of rank ``r`` is global batch ``batch_fn(s * world + r)``. ``start`` is read when
    iteration begins, so a resumed trainer continues where its checkpoint stopped.
    """

    def __init__(self, batch_fn: Callable[[int], list[int]], total: int,
                 start: Callable[[], int] = lambda: 0, rank: int = 0, world: int = 1):
        self.batch_fn, self.total, self.start = batch_fn, total, start
        self.rank, self.world = rank, world

    def batch(self, step: int) -> list[int]:
        return self.batch_fn(step * self.world + self.rank)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start(), self.total):
            yield self.batch(step)

    def __len__(self) -> int:
        # The whole run, also when resumed: Lightning counts batches already done in the epoch
        # it restores, and would end the epoch early if this shrank by that count.
        return self.total
