"""Stage 2, segment: find speech with silero-vad, trim leading/trailing silence, and cut long
untranscribed recordings into pieces of ``min_seconds``..``max_seconds`` at pauses.

A long clip *with* a transcript is kept whole (marked ``long``): only word timings can say where
its text splits, so the align stage splits it at sentence ends (without alignment the filter
rejects it as too long). The decisions (``trim``, ``cut_at_pauses``) are pure functions of the
speech spans; the VAD is a replaceable function ``(audio_16k) -> [(start_s, end_s)]``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from data_tools.inputs import ids
from data_tools.inputs.longaudio import ClipFile, speech_spans
from data_tools.records import Utterance, rejection
from data_tools.speech import voices
from data_tools.stages.kit import BaseStage, Kept, Model, Rejected, Switch, ordered
from kani_adapt.audio import write_clip
from kani_adapt.config.defaults import MAX_CLIP_SECONDS, SPEAKER_EMBEDDER_TINY
from kani_adapt.config.shared import Device

NAME = "segment"
VAD_RATE = 16000
Span = tuple[float, float]


@dataclass
class SegmentConfig:
    min_seconds: float = 2.0  # shortest piece cut from a long untranscribed recording
    max_seconds: float = MAX_CLIP_SECONDS  # longer clips are cut at pauses (or split by alignment)
    pad_seconds: float = 0.15  # silence kept around speech when trimming
    vad_threshold: float = 0.5  # silero-vad speech probability
    min_silence_seconds: float = 0.3  # pauses shorter than this do not end speech
    device: Device = "cpu"  # where silero-vad runs (512-sample windows: a GPU rarely pays)
    # One voice per utterance in long recordings (interviews, podcasts): windows are embedded
    # with embed.model, and pieces that span a voice change or lie where another voice speaks
    # than the recording's main one are rejected (voice_change, other_voice). auto: when
    # embed.model is on this machine; on: required; off: never.
    voice_changes: Switch = "auto"
    voice_window_seconds: float = 3.0  # speech per embedded window (embedders want a few s)
    voice_hop_seconds: float = 1.0  # window step: how finely a change is placed
    voice_min_drop: float = 0.25  # cosine drop below the recording's typical window-to-window
    #                               similarity that counts as another voice (at least)

    RANGES: ClassVar[dict[str, str]] = {
        "min_seconds": ">= 0", "max_seconds": "> 0", "pad_seconds": ">= 0",
        "vad_threshold": "[0, 1]", "min_silence_seconds": ">= 0", "voice_window_seconds": "> 0",
        "voice_hop_seconds": "> 0", "voice_min_drop": "[0, 2]"}

    def validate(self) -> list[str]:
        return ordered(self, "min_seconds", "max_seconds")


def silero_vad(cfg: SegmentConfig) -> Callable[[np.ndarray], list[Span]]:
    """Speech spans in seconds from silero-vad (its model ships inside the wheel)."""
    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad import get_speech_timestamps, load_silero_vad

        model = load_silero_vad().to(cfg.device)
    finally:  # importing silero_vad sets torch to one thread for the whole process
        torch.set_num_threads(threads)

    def spans(audio16k: np.ndarray) -> list[Span]:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # 512-sample windows: more threads only add overhead
        try:
            stamps = get_speech_timestamps(
                torch.from_numpy(audio16k).to(cfg.device), model, threshold=cfg.vad_threshold,
                sampling_rate=VAD_RATE, speech_pad_ms=0,
                min_silence_duration_ms=int(cfg.min_silence_seconds * 1000))
        finally:
            torch.set_num_threads(threads)  # later stages (codec, embedder) want them all
        return [(s["start"] / VAD_RATE, s["end"] / VAD_RATE) for s in stamps]
    return spans


def trim(spans: list[Span], duration: float, pad: float) -> Span | None:
    """From just before the first speech to just after the last; None when there is none."""
    if not spans:
        return None
    return max(0.0, spans[0][0] - pad), min(duration, spans[-1][1] + pad)


def cut_at_pauses(spans: list[Span], duration: float, cfg: SegmentConfig) -> list[Span]:
    """Pieces of at most ``max_seconds`` that end in pauses, each padded; pieces shorter than
    ``min_seconds`` are dropped. Speech longer than ``max_seconds`` without a pause is cut hard."""
    pieces, start, end = [], None, None
    for s, e in split_long(spans, cfg.max_seconds - 2 * cfg.pad_seconds):
        if start is not None and e - start + 2 * cfg.pad_seconds > cfg.max_seconds:
            pieces.append((start, end))
            start = None
        start, end = (s if start is None else start), e
    if start is not None:
        pieces.append((start, end))
    padded = [(max(0.0, s - cfg.pad_seconds), min(duration, e + cfg.pad_seconds))
              for s, e in pieces]
    return [(s, e) for s, e in padded if e - s >= cfg.min_seconds]


def split_long(spans: list[Span], limit: float) -> list[Span]:
    """Spans longer than ``limit`` seconds split hard into pieces of at most ``limit``."""
    out = []
    for s, e in spans:
        while e - s > limit:
            out.append((s, s + limit))
            s += limit
        out.append((s, e))
    return out


def plan(utt: Utterance, spans: list[Span], cfg: SegmentConfig) -> list[tuple[str, Span]] | str:
    """[(id suffix, span)] to keep, or the rejection reason."""
    trimmed = trim(spans, utt.duration, cfg.pad_seconds)
    if trimmed is None:
        return "no_speech"
    if trimmed[1] - trimmed[0] <= cfg.max_seconds or utt.text:
        return [("", trimmed)]
    pieces = cut_at_pauses(spans, utt.duration, cfg)
    return [(ids.child("", "seg", i), p) for i, p in enumerate(pieces)] or "no_piece_in_range"


def process(utt: Utterance, work: Path, vad, cfg: SegmentConfig, voices_of=None) -> Kept:
    """``voices_of(audio, rate, speech)``: a recording's voices (``voices.Voices``) or None;
    asked only when a long recording is cut into pieces, each of which must hold one voice."""
    audio = ClipFile(work / utt.audio)  # read a slice at a time: recordings can be hours
    rate = audio.rate
    spans = speech_spans(audio, rate, vad)
    decision = plan(utt, spans, cfg)
    if isinstance(decision, str):
        raise Rejected(decision, f"{utt.duration:.1f} s clip")
    dropped = []
    if voices_of and any(suffix for suffix, _ in decision):  # a long recording cut at pauses
        found = voices_of(audio, rate, spans)
        if found is not None and found.changes:  # cut where the voice changes as well
            decision = [(ids.child("", "seg", i), p)
                        for i, p in enumerate(cut_by_voice(spans, utt.duration, cfg, found))]
        decision, dropped = one_voice(utt, decision, found)
        if not decision and dropped:
            raise Rejected(dropped[0]["reason"], f"{dropped[0]['detail']} (every piece)")
        if not decision:
            raise Rejected("no_piece_in_range", "no stretch of one voice holds a piece of "
                                                f"{cfg.min_seconds:g}-{cfg.max_seconds:g} s")
    out = []
    for suffix, (start, end) in decision:
        piece = audio[int(start * rate): int(end * rate)]
        path = ids.clip_path(work, NAME, utt.id + suffix)
        write_clip(path, piece, rate)
        rel = path.relative_to(work)
        out.append(dataclasses.replace(
            utt, id=utt.id + suffix, audio=rel.as_posix(), duration=len(piece) / rate,
            start=utt.start + start, long=len(piece) / rate > cfg.max_seconds))
    return Kept(out, extra={"dropped": dropped} if dropped else {})


def cut_by_voice(spans: list[Span], duration: float, cfg: SegmentConfig, found) -> list[Span]:
    """``cut_at_pauses`` inside each stretch of one voice: no piece spans a change, and the
    second or two around a change, which may hold both voices, is left out."""
    pieces = []
    for s in found.stretches:
        def clip(span: Span) -> Span:
            return max(span[0], s.start_s), min(span[1], s.end_s)
        inside = [clip(span) for span in spans if span[1] > s.start_s and span[0] < s.end_s]
        pieces += [clip(piece) for piece in cut_at_pauses(inside, duration, cfg)]
    return [(a, b) for a, b in pieces if b - a >= cfg.min_seconds]


def one_voice(utt: Utterance, decision: list, found) -> tuple[list, list[dict]]:
    """The pieces in which one voice, the main one, speaks; rejection records for the others."""
    if found is None:
        return decision, []
    keep, dropped = [], []
    for suffix, (start, end) in decision:
        why = found.judge(start, end)
        if why is None:
            keep.append((suffix, (start, end)))
        else:
            dropped.append({**rejection(utt.id + suffix, NAME, *why, utt.source),
                            "seconds": round(end - start, 3)})
    return keep, dropped


class Segment(BaseStage):
    name = section = NAME
    config = SegmentConfig
    help = "trim silence with silero-vad; cut long untranscribed audio at pauses"
    model = True
    # silero-vad runs on its own device: the recipe's device does not reach it
    device, shares_device = "device", False
    # voice changes (voice_changes: on) embed windows with the embed stage's model
    models = (Model("embed.model", "speaker embedder", given="embedder",
                    when=lambda cfg: cfg.segment.voice_changes == "on",
                    sizes=(SPEAKER_EMBEDDER_TINY,)),)

    def open(self, ctx) -> None:
        ctx.state["vad"] = ctx.given.get("vad") or silero_vad(ctx.cfg.segment)

    def process_item(self, ctx, utt: Utterance) -> Kept:
        return process(utt, ctx.work, ctx.state["vad"], ctx.cfg.segment,
                       lambda audio, rate, speech: voices.for_recording(ctx, audio, rate, speech))


STAGE = Segment()
