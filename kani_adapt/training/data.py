"""Tokenized datasets -> token-contract examples, speaker-held-out split, length-aware loader.

Expected columns (as the data tools write them): ``text``, ``nano_layer_1..4``, ``encoded_len``,
``speaker_emb``, ``speaker``, a tag column (``tag``) and optionally ``duration``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from kani_adapt import tokens
from kani_adapt.errors import DataError
from kani_adapt.models.generator.batch import collate
from kani_adapt.models.generator.tokenizer import encode_text
from kani_adapt.training import batching
from kani_adapt.training.config import TrainDataConfig

AUTO_FALLBACK_BUDGET = 8192  # token_budget "auto" without CUDA (nothing to measure)
CODE_COLUMNS = [f"nano_layer_{i}" for i in range(1, 5)]
REQUIRED = ["text", *CODE_COLUMNS, "encoded_len", "speaker"]


def load_table(spec: str):
    """A Hugging Face dataset from a save_to_disk folder, a parquet file or a parquet folder."""
    import datasets

    path = Path(spec)
    if path.is_dir() and (path / "dataset_dict.json").exists():
        table = datasets.load_from_disk(str(path))["train"]
    elif path.is_dir() and (path / "state.json").exists():
        table = datasets.load_from_disk(str(path))
    elif path.is_dir() and any(path.rglob("*.parquet")):
        files = sorted(str(p) for p in path.rglob("*.parquet"))
        table = datasets.load_dataset("parquet", data_files=files, split="train")
    elif path.is_file() and path.suffix == ".parquet":
        table = datasets.load_dataset("parquet", data_files=str(path), split="train")
    else:
        raise DataError(f"{spec}: not a saved Hugging Face dataset or parquet file/folder "
                        "(write one with `data-tools write`)")
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise DataError(f"{spec}: missing column(s) {', '.join(missing)}")
    return table


@dataclass
class Item:
    example: tokens.Example
    speaker_emb: np.ndarray | None
    speaker: str
    tag: str


@dataclass
class TokenizedSet(Dataset):
    """Rows of one table turned into examples on access; lengths known up front for batching."""

    table: object
    rows: list[int]
    text_ids: list[list[int]]
    lengths: list[int]
    cfg: TrainDataConfig
    tags: list[str] = field(default_factory=list)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i: int) -> Item:
        row = self.table[self.rows[i]]
        n = int(row["encoded_len"])
        codes = np.stack([np.asarray(row[c][:n], dtype=np.int64) for c in CODE_COLUMNS], 1)
        example = tokens.build_example(self.text_ids[i], codes, loss_on=self.cfg.loss_on,
                                       drop_repeats=self.cfg.drop_repeated_frames)
        emb = None
        if self.cfg.use_speaker_emb:
            emb = np.asarray(row[self.cfg.speaker_emb_column], dtype=np.float32)
        return Item(example, emb, str(row["speaker"]), self.tags[i])


def tokenize_table(table, rows, tokenizer, cfg: TrainDataConfig, source: str) -> TokenizedSet:
    """Text ids and exact example lengths for ``rows`` of ``table``."""
    text_ids, lengths, tags = [], [], []
    has_tag = cfg.tag_column in table.column_names
    for r in rows:
        row = table[r]
        tag = (row[cfg.tag_column] or "").strip().lower() if has_tag else ""
        try:
            ids = encode_text(tokenizer, row["text"], tag or None)
        except DataError as err:
            raise DataError(f"{source} row {r}: {err}") from err
        n = int(row["encoded_len"])
        if cfg.drop_repeated_frames:
            codes = np.stack([np.asarray(row[c][:n]) for c in CODE_COLUMNS], 1)
            n = len(tokens.drop_repeated_frames(codes))
        text_ids.append(ids)
        tags.append(tag)
        lengths.append(len(ids) + 7 + 4 * n + int(cfg.use_speaker_emb))
    return TokenizedSet(table, list(rows), text_ids, lengths, cfg, tags)


def duration_of(row) -> float:
    if row.get("duration") is not None:
        return float(row["duration"])
    return int(row["encoded_len"]) / tokens.FRAMES_PER_SECOND


def split_rows(table, cfg: TrainDataConfig, seed: int) -> tuple[list[int], list[int], dict]:
    """Keep rows within the duration range; hold out ``val_speakers`` whole speakers."""
    speakers = table["speaker"]
    durations = [duration_of(table[i]) for i in range(len(table))]
    keep = [i for i, d in enumerate(durations) if cfg.min_duration <= d <= cfg.max_duration]
    names = sorted({str(speakers[i]) for i in keep})
    if cfg.val_speakers and len(names) <= cfg.val_speakers:
        raise DataError(f"{cfg.train}: {len(names)} speaker(s) cannot give {cfg.val_speakers} "
                        "held-out validation speaker(s) and still train; set data.val_speakers=0")
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(names)[:cfg.val_speakers].tolist()) if cfg.val_speakers else set()
    train = [i for i in keep if str(speakers[i]) not in held]
    val = [i for i in keep if str(speakers[i]) in held][:cfg.val_max_items]
    stats = {
        "rows": len(table), "filtered_by_duration": len(table) - len(keep),
        "train_hours": sum(durations[i] for i in train) / 3600,
        "train_speakers": len(names) - len(held), "val_speakers": sorted(held),
    }
    return train, val, stats


def collate_items(items: list[Item]) -> dict[str, torch.Tensor]:
    embs = None
    if items[0].speaker_emb is not None:
        embs = np.stack([it.speaker_emb for it in items])
    return collate([it.example for it in items], embs)


class GeneratorData(L.LightningDataModule):
    """Training set (plus optional replay set) in length-aware, step-indexed batches; a
    validation set of held-out speakers (plus held-out replay rows)."""

    def __init__(self, cfg, tokenizer):
        super().__init__()
        self.cfg, self.tokenizer = cfg, tokenizer
        self.train_set = self.val_set = self.replay_train = self.replay_val = None
        self.stats: dict = {}
        # Resolved token budget: the configured one, or what the probe at fit start chose.
        budget = cfg.data.token_budget
        self.token_budget: int = AUTO_FALLBACK_BUDGET if budget == "auto" else budget

    def setup(self, stage=None):
        if self.train_set is not None:
            return
        d, seed = self.cfg.data, self.cfg.trainer.seed
        table = load_table(d.train)
        train_rows, val_rows, self.stats = split_rows(table, d, seed)
        if not train_rows:
            raise DataError(f"{d.train}: no training rows left after the duration filter")
        self.train_set = tokenize_table(table, train_rows, self.tokenizer, d, d.train)
        self.val_set = tokenize_table(table, val_rows, self.tokenizer, d, d.train)
        self.stats["tags"] = sorted({t for t in self.train_set.tags if t})
        if d.replay:
            replay = load_table(d.replay)
            order = np.random.default_rng(seed).permutation(len(replay)).tolist()
            n_val = min(d.val_max_items, len(order) // 10)
            self.replay_val = tokenize_table(replay, order[:n_val], self.tokenizer, d, d.replay)
            self.replay_train = tokenize_table(replay, order[n_val:], self.tokenizer, d, d.replay)

    def _plan(self, dataset, offset=0):
        budget, seed = self.token_budget, self.cfg.trainer.seed
        return batching.EpochPlan(
            lambda epoch: batching.plan_batches(dataset.lengths, budget, seed + epoch), offset)

    def train_dataloader(self):
        main = self._plan(self.train_set)
        parts, replay = [self.train_set], None
        if self.replay_train is not None:
            replay = self._plan(self.replay_train, offset=len(self.train_set))
            parts.append(self.replay_train)
        ratio = self.cfg.data.replay_ratio
        trainer = self.trainer
        sampler = batching.StepBatchSampler(
            lambda flat: batching.mixed_batch(flat, main, replay, ratio),
            total=self.cfg.trainer.max_steps,
            start=lambda: trainer.global_step if trainer is not None else 0,
            rank=trainer.global_rank if trainer is not None else 0,
            world=trainer.world_size if trainer is not None else 1,
        )
        return self._loader(ConcatDataset(parts), sampler)

    def val_dataloader(self):
        loaders = []
        for dataset in (self.val_set, self.replay_val):
            if dataset is not None and len(dataset):
                batches = batching.plan_batches(dataset.lengths, self.token_budget, 0)
                loaders.append(self._loader(dataset, batches))
        return loaders

    def _loader(self, dataset, batch_sampler):
        # Own generator: creating an iterator must not draw from the global RNG (exact resume).
        # Workers only read rows by index (the batch order comes from the sampler in this
        # process), so they do not change which batches a step sees.
        gen = torch.Generator().manual_seed(self.cfg.trainer.seed)
        workers = self.cfg.data.num_workers
        return DataLoader(dataset, batch_sampler=batch_sampler, collate_fn=collate_items,
                          generator=gen, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=torch.cuda.is_available())
