"""Tokenized datasets -> token-contract examples, speaker-held-out split, length-aware loader.

The dataset is read through :mod:`kani_adapt.dataset` (its columns, reader and accessors).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from kani_adapt import dataset, tokens
from kani_adapt.text import fertility, frontend
from kani_adapt.core.errors import DataError
from kani_adapt.core.untrusted import visible
from kani_adapt.models.generator.batch import collate
from kani_adapt.models.generator.tokenizer import encode_text
from kani_adapt.training import batching
from kani_adapt.training.split import describe, split_rows
from kani_adapt.training.config import TrainDataConfig

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
    texts: list[str] = field(default_factory=list)
    repeats: list[int] = field(default_factory=list)  # text copies per row (empty: 1 each)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i: int) -> Item:
        row = self.table[self.rows[i]]
        example = tokens.build_example(self.text_ids[i], dataset.codes(row), loss_on=self.cfg.loss_on,
                                       drop_repeats=self.cfg.drop_repeated_frames,
                                       repeats=self.repeats[i] if self.repeats else 1)
        emb = None
        if self.cfg.use_speaker_emb:
            emb = dataset.speaker_embedding(row, self.cfg.speaker_emb_column)
        return Item(example, emb, str(row[dataset.SPEAKER]), self.tags[i])


def dataset_frontend(hf_folder: str) -> frontend.Frontend:
    """The text frontend a dataset's texts went through (stored by the data tools beside it),
    else the default one; training reads its rows through it again (a no-op on normalised text,
    and the reading of rows written by other tools)."""
    return frontend.read(dataset.DatasetLayout.of_table(hf_folder).root) or frontend.Frontend()


def run_frontend(main: frontend.Frontend, tags_main, replay: frontend.Frontend | None = None,
                 tags_replay=()) -> frontend.Frontend:
    """One frontend for the run (stored with it and every export): each tag keeps the language
    its own dataset's frontend gives it."""
    languages = {t: main.language_for(t) for t in tags_main if t}
    if replay is not None:
        languages.update({t: replay.language_for(t) for t in tags_replay if t and t not in languages})
    return frontend.Frontend(language=main.language, languages=languages, numbers=main.numbers,
                             enabled=main.enabled)


def tokenize_table(table, rows, tokenizer, cfg: TrainDataConfig, source: str,
                   front: frontend.Frontend | None = None) -> TokenizedSet:
    """Text ids and exact example lengths for ``rows`` of ``table``, each text read through
    the text frontend ``front`` (the dataset's own by default)."""
    front = front or dataset_frontend(source)
    if cfg.use_speaker_emb and cfg.speaker_emb_column not in table.column_names:
        raise DataError(f"{source}: no column {cfg.speaker_emb_column!r} of speaker embeddings; "
                        "set data.speaker_emb_column, or data.use_speaker_emb=false")
    text_ids, lengths, tags, texts = [], [], [], []
    for r in rows:
        row = table[r]
        tag = dataset.tag(row, cfg.tag_column) or ""
        try:
            text = front.apply(dataset.text(row), tag, dataset.text_override(row))
            ids = encode_text(tokenizer, text, tag or None)
        except DataError as err:
            raise DataError(f"{source} row {r}: {err}") from err
        codes = dataset.codes(row)
        n = len(tokens.drop_repeated_frames(codes)) if cfg.drop_repeated_frames else len(codes)
        text_ids.append(ids)
        tags.append(tag)
        texts.append(text)
        lengths.append(len(ids) + 7 + 4 * n + int(cfg.use_speaker_emb))
    return TokenizedSet(table, list(rows), text_ids, lengths, cfg, tags, texts)


def check_fertility(part: TokenizedSet, tokenizer, cfg) -> dict:
    """Fertility per tag of the training texts (kani_adapt.text.fertility); LoRA stops here when a
    tag's script falls back to bytes."""
    by_tag: dict[str, list[str]] = {}
    for tag, text in zip(part.tags, part.texts):
        by_tag.setdefault(tag or "(none)", []).append(text)
    figures = fertility.report(by_tag, tokenizer, frontend.Frontend(enabled=False))
    if cfg.mode == "lora":
        problems = fertility.gate(figures, cfg.data.max_byte_fallback, cfg.data.max_fertility_ratio)
        if problems:
            raise DataError(f"{cfg.data.train}: " + " | ".join(problems))
    return figures


def drop_texts(part: TokenizedSet, share: float, seed: int) -> int:
    """Train ``share`` of the rows without their text (the prompt keeps only BOS): the same
    rows every run with this seed. Returns how many."""
    count = int(round(share * len(part)))
    for i in np.random.default_rng(seed + 7919).permutation(len(part))[:count].tolist():
        removed = len(part.text_ids[i]) - 1
        part.text_ids[i] = [tokens.BOS]
        part.lengths[i] -= removed
    return count


def repeat_texts(part: TokenizedSet, layout: tokens.TextLayout, keep: float, seed: int) -> int:
    """Lay ``part``'s short rows out with their text copies (``layout``), except a share
    ``keep`` of them (the same rows every run with this seed). Returns how many rows repeat."""
    part.repeats = [layout.repeats(ids) for ids in part.text_ids]
    short = [i for i, r in enumerate(part.repeats) if r > 1]
    rng = np.random.default_rng(seed + 104729)
    for i in rng.permutation(short)[:int(round(keep * len(short)))].tolist():
        part.repeats[i] = 1
    for i, r in enumerate(part.repeats):
        part.lengths[i] += (r - 1) * len(tokens.human_turn(part.text_ids[i]))
    return sum(r > 1 for r in part.repeats)


def collate_items(items: list[Item]) -> dict[str, torch.Tensor]:
    embs = None
    if items[0].speaker_emb is not None:
        embs = np.stack([it.speaker_emb for it in items])
    return collate([it.example for it in items], embs)


class GeneratorData(batching.Budgeted, L.LightningDataModule):
    """Training set (plus optional replay set) in length-aware, step-indexed batches; a
    validation set of held-out speakers (plus held-out replay rows)."""

    def __init__(self, cfg, tokenizer, token_budget: int | Callable[[], int] | None = None):
        super().__init__()
        self.cfg, self.tokenizer = cfg, tokenizer
        self.train_set = self.val_set = self.replay_train = self.replay_val = None
        self.frontend: frontend.Frontend | None = None  # the run's text frontend, after setup
        self.text_layout = tokens.TextLayout()  # the run's prompt layout, after setup
        self.stats: dict = {}
        self._budget_from(cfg, token_budget)

    def setup(self, stage=None):
        if self.train_set is not None:
            return
        d, seed = self.cfg.data, self.cfg.trainer.seed
        table = dataset.read(d.train)
        train_rows, val_rows, self.stats = split_rows(table, d, seed)
        logging.getLogger("kani_adapt.progress").info("%s", visible(describe(self.stats)))
        if not train_rows:
            raise DataError(f"{d.train}: no training rows left after the duration filter")
        main = dataset_frontend(d.train)
        self.train_set = tokenize_table(table, train_rows, self.tokenizer, d, d.train, main)
        self.val_set = tokenize_table(table, val_rows, self.tokenizer, d, d.train, main)
        self.stats["tags"] = sorted({t for t in self.train_set.tags if t})
        # the licences of packaged contributions the data came from (for the adapter card)
        self.stats["sources"] = dataset.read_sources(d.train)
        self.frontend = run_frontend(main, self.train_set.tags + self.val_set.tags)
        self.stats["fertility"] = check_fertility(self.train_set, self.tokenizer, self.cfg)
        self.stats["text_dropout_rows"] = drop_texts(self.train_set, d.text_dropout, seed)
        # validation is laid out as generation lays prompts out: every short text repeated
        self.text_layout = layout = d.text_layout()
        self.stats["repeated_rows"] = repeat_texts(self.train_set, layout, d.repeat_keep, seed)
        repeat_texts(self.val_set, layout, 0.0, seed)
        if d.replay:
            replay = dataset.read(d.replay)
            order = np.random.default_rng(seed).permutation(len(replay)).tolist()
            n_val = min(d.val_max_items, len(order) // 10)
            other = dataset_frontend(d.replay)
            self.replay_val = tokenize_table(replay, order[:n_val], self.tokenizer, d, d.replay, other)
            self.replay_train = tokenize_table(replay, order[n_val:], self.tokenizer, d, d.replay,
                                               other)
            repeat_texts(self.replay_train, layout, d.repeat_keep, seed + 1)
            repeat_texts(self.replay_val, layout, 0.0, seed)
            self.frontend = run_frontend(main, self.train_set.tags + self.val_set.tags, other,
                                         self.replay_train.tags + self.replay_val.tags)

    def _plan(self, part, offset=0):
        budget, seed = self.token_budget, self.cfg.trainer.seed
        return batching.EpochPlan(
            lambda epoch: batching.plan_batches(part.lengths, budget, seed + epoch), offset)

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
        for part in (self.val_set, self.replay_val):
            if part is not None and len(part):
                batches = batching.plan_batches(part.lengths, self.token_budget, 0)
                loaders.append(self._loader(part, batches))
        return loaders

    def _loader(self, part, batch_sampler):
        # Own generator: creating an iterator must not draw from the global RNG (exact resume).
        # Workers only read rows by index (the batch order comes from the sampler in this
        # process), so they do not change which batches a step sees.
        gen = torch.Generator().manual_seed(self.cfg.trainer.seed)
        workers = self.cfg.data.num_workers
        return DataLoader(part, batch_sampler=batch_sampler, collate_fn=collate_items,
                          generator=gen, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=torch.cuda.is_available())
