"""The ``dpo`` objective's data: a pairs file (kani_adapt/training/pairs.py) in step-indexed,
token-budget batches, with held-out groups for validation.

A pair costs two rows of its longer side (chosen and rejected are padded to one width), so
``data.token_budget`` bounds padded tokens as for the supervised objective and
``token_budget: auto`` measures the objective's own probe batch. The split holds out whole
groups (a text in one voice), so validation accuracy is measured on pairs of prompts the run
never stepped on. The run's prompt layout and text frontend are the pairs' (the policy's): a
run whose ``data`` settings lay prompts out otherwise is refused, since the reference
log-probabilities would belong to another likelihood.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from kani_adapt import tokens
from kani_adapt.core.errors import DataError
from kani_adapt.text import frontend
from kani_adapt.training import batching, pairs as pairs_file, trajectory


@dataclass
class PairSet(Dataset):
    pairs: list[pairs_file.Pair]
    use_speaker: bool

    @property
    def lengths(self) -> list[int]:
        return [2 * (len(p.prompt) + tokens.TOKENS_PER_FRAME * max(len(p.chosen.codes), len(p.rejected.codes))
                     + int(self.use_speaker)) for p in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> pairs_file.Pair:
        return self.pairs[i]


def collate_pairs(use_speaker: bool) -> Callable[[list[pairs_file.Pair]], dict[str, torch.Tensor]]:
    def collate(items: list[pairs_file.Pair]) -> dict[str, torch.Tensor]:
        rows = [trajectory.Rollout(p.prompt, getattr(p, side).codes, getattr(p, side).truncated,
                                   p.speaker_emb if use_speaker else None)
                for side in ("chosen", "rejected") for p in items]
        batch = trajectory.batch(rows)
        batch["ref"] = torch.tensor([getattr(p, side).ref for side in ("chosen", "rejected")
                                     for p in items], dtype=torch.float32)
        batch["weight"] = torch.tensor([p.weight for p in items], dtype=torch.float32)
        return batch
    return collate


def check_meta(meta: pairs_file.Meta, cfg, where: str) -> list[str]:
    """Why the pairs cannot train this run (empty: they can)."""
    problems = []
    run, theirs = cfg.data.text_layout(), meta.text_layout()
    if run != theirs:
        problems.append(f"{where}: the pairs were laid out {theirs.identity()} (the policy's "
                        f"layout), this run lays prompts out {run.identity()}; set "
                        "data.repeat_short_texts and repeat_* to the policy's (its text_layout.json)")
    if abs(meta.stop_floor - cfg.dpo.stop_floor) > 1e-12:
        problems.append(f"{where}: its reference log-probabilities used stop_floor "
                        f"{meta.stop_floor:g}, this run dpo.stop_floor {cfg.dpo.stop_floor:g}; set "
                        "them equal or build the pairs again")
    return problems


def split(pairs: list[pairs_file.Pair], share: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: a seeded share of the groups held out whole."""
    groups = sorted({p.group for p in pairs})
    rng = np.random.default_rng(seed + 31)
    held = set(rng.permutation(groups)[:int(round(share * len(groups)))].tolist()) if share else set()
    if len(held) == len(groups):
        held = set()
    train = [i for i, p in enumerate(pairs) if p.group not in held]
    return train, [i for i, p in enumerate(pairs) if p.group in held]


class PairsData(batching.Budgeted, L.LightningDataModule):
    def __init__(self, cfg, tokenizer, token_budget: int | Callable[[], int] | None = None):
        super().__init__()
        self.cfg = cfg
        self.train_set: PairSet | None = None
        self.val_pairs: PairSet | None = None
        self.val_set = self.replay_val = None  # no rows to sample or score speech from
        self.frontend: frontend.Frontend | None = None
        self.text_layout = tokens.TextLayout()
        self.stats: dict = {}
        self._budget_from(cfg, token_budget)

    def setup(self, stage=None):
        if self.train_set is not None:
            return
        where = str(self.cfg.dpo.pairs)
        found, meta = pairs_file.read(where)
        problems = check_meta(meta, self.cfg, where)
        if problems:
            raise DataError(" | ".join(problems))
        use = self.cfg.data.use_speaker_emb
        if use and any(p.speaker_emb is None for p in found):
            raise DataError(f"{where}: some pairs have no speaker embedding; set "
                            "data.use_speaker_emb=false or give every pair its voice")
        if not found:
            raise DataError(f"{where}: no pairs; the prefer run's pairs.json says why")
        train, val = split(found, self.cfg.dpo.val_share, self.cfg.trainer.seed)
        self.train_set = PairSet([found[i] for i in train], use)
        self.val_pairs = PairSet([found[i] for i in val], use)
        self.text_layout = meta.text_layout()
        self.frontend = frontend.Frontend.from_identity(meta.frontend, where)
        self.stats = {"pairs": len(train), "val_pairs": len(val), "policy": meta.policy,
                      "tags": sorted({p.tag for p in found if p.tag}),
                      "train_speakers": len({p.speaker for p in found}), "val_speakers": [],
                      "sources": {s: sum(p.source == s for p in found) for s in ("auto", "human")},
                      "made": meta.counts}

    def train_dataloader(self):
        budget, seed = self.token_budget, self.cfg.trainer.seed
        lengths = self.train_set.lengths
        plan = batching.EpochPlan(lambda epoch: batching.plan_batches(lengths, budget, seed + epoch))
        trainer = self.trainer
        sampler = batching.StepBatchSampler(
            plan.batch, total=self.cfg.trainer.max_steps,
            start=lambda: trainer.global_step if trainer is not None else 0,
            rank=trainer.global_rank if trainer is not None else 0,
            world=trainer.world_size if trainer is not None else 1)
        return self._loader(self.train_set, sampler)

    def val_dataloader(self):
        if self.val_pairs is None or not len(self.val_pairs):
            return []
        return [self._loader(self.val_pairs,
                             batching.plan_batches(self.val_pairs.lengths, self.token_budget, 0))]

    def _loader(self, part, batch_sampler):
        gen = torch.Generator().manual_seed(self.cfg.trainer.seed)
        return DataLoader(part, batch_sampler=batch_sampler, collate_fn=collate_pairs(part.use_speaker),
                          generator=gen, num_workers=0)
