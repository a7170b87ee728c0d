"""Stage 3, align: word timings from Montreal Forced Aligner, and what they decide.

Clips that fail to align, or whose alignment misses transcript words, are rejected; kept clips
are trimmed to their first and last word; long recordings are split at sentence ends. Without
MFA the stage stops with the conda command to install it (``prepare`` then runs without it).
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from data_tools.inputs import ids
from data_tools.records import Utterance
from data_tools.speech import mfa
from data_tools.speech.mfa import Word
from data_tools.stages.kit import BaseStage, Kept, Rejected, Switch
from kani_adapt.audio import read_clip, write_clip
from kani_adapt.config.defaults import MAX_CLIP_SECONDS
from kani_adapt.config.wiring import ModelRef
from kani_adapt.core import atomic

NAME = "align"
Piece = tuple[str, float, float, str]  # id suffix, start, end, text


@dataclass
class AlignConfig:
    enabled: Switch = "auto"  # auto: run where MFA is installed; on: require it; off: skip
    dictionary: ModelRef = ""  # pronunciation dictionary; "": a grapheme dictionary from the corpus
    acoustic_model: ModelRef = ""  # MFA acoustic model; "": train one on the corpus itself
    train_config: ModelRef = ""  # MFA training config (--config_path); "": MFA's defaults
    mfa_command: str = "mfa"
    num_jobs: int = 2
    min_word_match: float = 0.9  # fraction of transcript words the alignment must contain
    pad_seconds: float = 0.1  # kept before the first and after the last word
    max_seconds: float = MAX_CLIP_SECONDS  # long recordings are split at sentence ends below this

    RANGES: ClassVar[dict[str, str]] = {"num_jobs": "> 0", "min_word_match": "[0, 1]",
                                        "pad_seconds": ">= 0", "max_seconds": "> 0"}


def word_match(words: list[Word], text: str) -> float:
    """Share of transcript words that the alignment found, in order."""
    want = mfa.words_of(text)
    got = [w.text.lower() for w in words]
    if not want:
        return 0.0
    blocks = difflib.SequenceMatcher(a=want, b=got, autojunk=False).get_matching_blocks()
    return sum(b.size for b in blocks) / len(want)


def sentence_ends(text: str) -> list[int]:
    """Indices (in ``words_of`` numbering) of words that end a sentence."""
    ends, n = [], -1
    for token in text.split():
        if mfa.words_of(token):
            n += 1
        if re.search(r"[.!?…。！？]['\")\]]*$", token) and n >= 0:
            ends.append(n)
    return ends


def split_sentences(words: list[Word], text: str, max_seconds: float,
                    pad: float) -> list[tuple[int, int]]:
    """Word ranges [first, last] grouping whole sentences into pieces of at most
    ``max_seconds`` (a single longer sentence stays one piece). Assumes words match the text."""
    ends = sentence_ends(text)
    bounds = sorted(set(e for e in ends if e < len(words)) | {len(words) - 1})
    pieces, first, last = [], 0, None
    for end in bounds:
        if last is not None and words[end].end - words[first].start + 2 * pad > max_seconds:
            pieces.append((first, last))
            first = last + 1
        last = end
    return pieces + [(first, last)] if last is not None else pieces


def decide(utt: Utterance, words: list[Word] | None, cfg: AlignConfig) -> list[Piece] | str:
    """What to keep of one clip, or the rejection reason."""
    if not words:
        return "alignment_failed"
    if word_match(words, utt.text) < cfg.min_word_match:
        return "poor_alignment"
    end_limit = utt.duration
    if utt.duration <= cfg.max_seconds or len(mfa.words_of(utt.text)) != len(words):
        return [("", max(0.0, words[0].start - cfg.pad_seconds),
                 min(end_limit, words[-1].end + cfg.pad_seconds), utt.text)]
    tokens = utt.text.split()
    index = [i for i, t in enumerate(tokens) if mfa.words_of(t)]  # word n -> token position
    pieces = []
    for k, (a, b) in enumerate(split_sentences(words, utt.text, cfg.max_seconds, cfg.pad_seconds)):
        text = " ".join(tokens[index[a]: index[b] + 1])
        pieces.append((ids.child("", "sent", k), max(0.0, words[a].start - cfg.pad_seconds),
                       min(end_limit, words[b].end + cfg.pad_seconds), text))
    return pieces


def _cut(utt: Utterance, pieces: list[Piece], work: Path) -> list[Utterance]:
    audio, rate = read_clip(work / utt.audio)
    out = []
    for suffix, start, end, text in pieces:
        clip = audio[int(start * rate): int(end * rate)]
        path = ids.clip_path(work, NAME, utt.id + suffix)
        write_clip(path, clip, rate)
        rel = path.relative_to(work)
        out.append(dataclasses.replace(utt, id=utt.id + suffix, audio=rel.as_posix(), text=text,
                                       duration=len(clip) / rate, start=utt.start + start,
                                       long=False))
    return out


def align_corpus(utts: list[Utterance], work: Path, cfg: AlignConfig,
                 folder: Path | None = None) -> dict[str, list[Word]]:
    """Run MFA over the clips; {utterance id: words} for every clip it aligned. ``folder``
    holds MFA's corpus and outputs (default ``<work>/align``; one per shard)."""
    exe = mfa.require_mfa(cfg.mfa_command)
    folder = folder or Path(work) / NAME
    names = mfa.write_corpus(utts, work, folder / "corpus")
    dictionary = Path(cfg.dictionary) if cfg.dictionary else folder / "grapheme_dict.txt"
    if not cfg.dictionary:
        atomic.write_text(dictionary, mfa.grapheme_dictionary([u.text for u in utts]))
    model = Path(cfg.acoustic_model) if cfg.acoustic_model else folder / "acoustic_model.zip"
    shutil.rmtree(folder / "textgrids", ignore_errors=True)  # no TextGrid from an earlier run
    steps = mfa.commands(exe, folder / "corpus", dictionary, model, folder / "textgrids",
                         train=not cfg.acoustic_model, num_jobs=cfg.num_jobs,
                         train_config=cfg.train_config)
    mfa.run_commands(steps, folder / "mfa_root", folder / "mfa.log")
    grids = mfa.textgrids(folder / "textgrids")
    return {names[n]: mfa.read_words(p) for n, p in grids.items() if n in names}


def alignment_on(cfg) -> bool:
    """auto: only where MFA is installed; on: required (the stage names the install)."""
    if cfg.align.enabled == "off":
        return False
    if cfg.align.enabled == "on":
        return True
    return mfa.find_mfa(cfg.align.mfa_command) is not None


class Align(BaseStage):
    name = section = NAME
    config = AlignConfig
    help = "Montreal Forced Aligner: reject poor alignments, trim to words, split long clips"
    model = True

    def enabled(self, cfg) -> bool:
        return alignment_on(cfg)

    def why_off(self, cfg) -> str:
        if cfg.align.enabled == "off":
            return "align.enabled is off"
        return f"Montreal Forced Aligner not installed ({mfa.INSTALL_HINT})"

    def open(self, ctx) -> None:
        mfa.require_mfa(ctx.cfg.align.mfa_command)

    def batches(self, ctx, todo: list) -> list[list]:
        return [todo]  # MFA aligns (and trains on) a corpus at once

    def process(self, ctx, batch: list[Utterance]) -> dict:
        i, n = ctx.shard
        folder = Path(ctx.work) / NAME / ("" if n == 1 else f"shard-{i:05d}-of-{n:05d}")
        aligned = align_corpus(batch, ctx.work, ctx.cfg.align, folder)
        out = {}
        for utt in batch:
            decision = decide(utt, aligned.get(utt.id), ctx.cfg.align)
            out[utt.id] = Rejected(decision) if isinstance(decision, str) else \
                Kept(_cut(utt, decision, ctx.work))
        return out


STAGE = Align()
