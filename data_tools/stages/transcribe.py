"""Stage transcribe: ASR for clips without a transcript, a check of the ones that came with one,
and cuts of long transcribed recordings at sentence ends and pauses (without MFA).

- A clip without text gets the recogniser's, unless a hallucination guard fires (low average
  log-probability, no-speech probability, compression ratio, a repeated n-gram loop, or words per
  second outside the speaker's range); each guard is a reason code in ``rejected.jsonl``.
- A clip with text (``transcribe.verify``) is rejected as ``transcript_mismatch`` when the CER
  between the normalised texts exceeds ``max_transcript_cer``; its CER becomes a dataset column.
- A long clip (``Utterance.long``: a recording with one transcript) is cut by
  ``longform.plan_cuts`` from ASR word times and the segment stage's VAD; each cut keeps the
  user's words and records how far its edges moved into a pause (``moved_s``).

The recogniser is any object with ``transcribe(audios, rate, languages) -> [Transcript]``
(``kani_adapt.scorers.asr``), and optionally ``words(audio, rate, language, spans)`` with word
times and ``detect_language(audios, rate)``; the runner passes one in as ``given["asr"]``,
otherwise the configured Whisper is loaded. Whisper's words get times from the VAD spans they
were heard in (see ``span_words``): cuts only ever fall in those pauses.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from data_tools.inputs import ids
from data_tools.records import Utterance, reject_utt, rejection
from data_tools.speech import longform, voices
from data_tools.speech.guards import guard_reasons, rate_rejections
from data_tools.stages.kit import (BaseStage, Kept, Model, Rejected, Resources, Switch, collect,
                                   ordered)
from data_tools.stages.segment import split_long
from kani_adapt.audio import read_clip, resample, write_clip
from kani_adapt.batching import id_batches
from kani_adapt.config.shared import Device
from kani_adapt.config.wiring import ModelRef
from kani_adapt.core import hub
from kani_adapt.text.tags import asr_language_of, asr_languages, language_of
from kani_adapt.text.tags import languages as text_languages

NAME = "transcribe"
VAD_RATE = 16000
WINDOW_SECONDS = 28.0  # speech per Whisper call for long recordings (its window is 30 s)


@dataclass
class TranscribeConfig:
    # auto: run where the ASR model is on this machine (a folder, or already in the Hugging Face
    # cache), so nothing is fetched unasked and configs without a model behave as before (clips
    # without a transcript are rejected at ingest); on: required (a hub id is fetched); off: skip.
    enabled: Switch = "auto"
    model: ModelRef = "openai/whisper-large-v3"  # Whisper: local folder or hub id
    device: Device = "auto"  # a GPU when there is one (see kani_adapt/core/devices.py)
    batch_size: int = 8  # clips per ASR batch (grouped by length and language)
    # (the language forced on each clip: its tag's, tags.<tag>.asr_language or .language)
    detect_language: bool = False  # detect instead of forcing, and reject other languages
    min_language_prob: float = 0.5  # with detect_language: the tag's language must reach this
    verify: bool = True  # clips that came with a transcript: compare it with what ASR heard
    # Character error rate (normalised texts) above which a given transcript is wrong: Whisper
    # large-v3 on clean read speech is ~2-5 %, on accented speech ~10-20 %; another clip's
    # text ~80 %+.
    max_transcript_cer: float = 0.3
    # Hallucination guards on transcripts the ASR writes (Whisper's own fallback thresholds):
    min_avg_logprob: float = -1.0  # mean token log-probability
    max_no_speech_prob: float = 0.6  # probability of the no-speech token
    max_compression_ratio: float = 2.4  # zlib ratio of the text: loops compress well
    max_ngram_repeats: int = 4  # the same 1-4 word n-gram this many times in a row: a loop
    wps_outlier_mads: float = 4.0  # words/s further than this many MADs from the speaker's median
    min_words_per_second: float = 0.5  # absolute range for every speaker (read speech ~2-3.5)
    max_words_per_second: float = 6.0

    RANGES: ClassVar[dict[str, str]] = {  # min_avg_logprob: a log-probability, below zero
        "batch_size": "> 0", "min_language_prob": "[0, 1]", "max_transcript_cer": ">= 0",
        "max_no_speech_prob": "[0, 1]", "max_compression_ratio": ">= 0",
        "max_ngram_repeats": "> 0", "wps_outlier_mads": ">= 0", "min_words_per_second": ">= 0",
        "max_words_per_second": ">= 0"}

    def validate(self) -> list[str]:
        return ordered(self, "min_words_per_second", "max_words_per_second")


def span_windows(spans: list[tuple[float, float]], limit: float = WINDOW_SECONDS) -> list[list]:
    """Consecutive VAD spans grouped into windows of at most ``limit`` seconds (end to end);
    a longer span is split hard (no pause to cut at there anyway)."""
    pieces = split_long(spans, limit)
    windows: list[list] = []
    for s, e in pieces:
        if windows and e - windows[-1][0][0] <= limit:
            windows[-1].append((s, e))
        else:
            windows.append([(s, e)])
    return windows


def span_words(text: str, spans: list[tuple[float, float]]) -> list[tuple[str, float, float]]:
    """Times for the words heard in one window: its speech laid end to end, each word given a
    share by its length, and kept inside the span its middle falls in. Only the order of words
    and spans matters for cutting: a cut falls between spans, in a VAD pause."""
    words = text.split()
    total = sum(e - s for s, e in spans)
    if not words or total <= 0:
        return []
    weights = np.array([len(w) + 1 for w in words], float)
    edges = np.concatenate([[0.0], np.cumsum(weights) / weights.sum() * total])
    offsets = np.cumsum([0.0] + [e - s for s, e in spans])

    def at(t: float) -> tuple[int, float]:
        k = min(int(np.searchsorted(offsets, t, side="right")) - 1, len(spans) - 1)
        return k, spans[k][0] + t - offsets[k]

    out = []
    for word, a, b in zip(words, edges[:-1], edges[1:]):
        k, _ = at((a + b) / 2)
        lo, hi = spans[k]
        out.append((word, max(lo, at(a)[1] if at(a)[0] == k else lo),
                    min(hi, at(b)[1] if at(b)[0] == k else hi)))
    return out


def asr_words(asr, audio: np.ndarray, rate: int, language, spans) -> list:
    """Word times of one long recording from the recogniser's own timings where it has them."""
    if hasattr(asr, "words"):
        return asr.words(audio, rate, language, spans)
    windows = span_windows(spans)
    clips = [audio[int(w[0][0] * rate): int(w[-1][1] * rate)] for w in windows]
    heard = asr.transcribe(clips, rate, [language] * len(clips))
    return [w for window, t in zip(windows, heard) for w in span_words(t.text, window)]


class WhisperRecogniser:
    """The configured Whisper behind the stage's recogniser interface."""

    def __init__(self, cfg: TranscribeConfig):
        from kani_adapt.scorers.asr import WhisperASR

        self.whisper = WhisperASR.load(cfg.model, cfg.device, cfg.batch_size)
        self.transcribe = self.whisper.transcribe
        self.detect_language = self.whisper.detect_language


def _asr_language(utt: Utterance, tags) -> str | None:
    return asr_language_of(utt.tag, tags)


def check_language(asr, audios: list, rate: int, languages: list, cfg) -> list[str | None]:
    """With ``detect_language``: a rejection detail per clip whose detected language is not
    its tag's (None where it matches, or where the clip has no tag)."""
    if not cfg.detect_language or not hasattr(asr, "detect_language"):
        return [None] * len(audios)
    out = []
    for probs, lang in zip(asr.detect_language(audios, rate), languages):
        top = max(probs, key=probs.get) if probs else None
        ok = lang is None or probs.get(lang, 0.0) >= cfg.min_language_prob
        out.append(None if ok else f"heard {top} ({probs.get(top, 0):.2f}); tag says {lang} "
                                   f"({probs.get(lang, 0):.2f} < {cfg.min_language_prob})")
    return out


def _confidence(t) -> dict:
    return {"asr_avg_logprob": t.avg_logprob, "asr_no_speech_prob": t.no_speech_prob,
            "asr_compression_ratio": t.compression_ratio}


def judge(utt: Utterance, t, cfg: TranscribeConfig, tags=None) -> Kept | Rejected:
    """What one clip becomes once the recogniser heard it (``tags``: each tag's facts)."""
    from kani_adapt.scorers.text import error_rates

    conf = {k: round(float(v), 4) for k, v in _confidence(t).items()}
    if utt.text:  # a given transcript: check it, keep the user's words
        rates = error_rates(utt.text, t.text, language_of(utt.tag, tags))
        if rates.cer > cfg.max_transcript_cer:
            return Rejected("transcript_mismatch",
                            f"CER {rates.cer:.2f} > max_transcript_cer={cfg.max_transcript_cer}; "
                            f"given: {rates.reference!r}; heard: {rates.hypothesis!r}")
        cols = {"cer": round(rates.cer, 4), **conf}
        return Kept([utt], extra={"columns": {utt.id: cols}})
    reasons = guard_reasons(t, utt.duration, cfg)
    if reasons:
        return Rejected(reasons[0][0], "; ".join(f"{c}: {d}" for c, d in reasons) +
                        f"; heard: {t.text[:200]!r}")
    wps = len(t.text.split()) / utt.duration if utt.duration else 0.0
    return Kept([dataclasses.replace(utt, text=t.text)],
                extra={"columns": {utt.id: conf}, "wps": round(wps, 4)})


def cut_long(ctx, utt: Utterance, asr, vad) -> Kept | Rejected:
    """Cuts of one long recording (its transcript's words, or the recogniser's)."""
    seg = ctx.cfg.segment
    audio, rate = read_clip(ctx.work / utt.audio)
    spans = vad(resample(audio, rate, VAD_RATE))
    words = asr_words(asr, audio, rate, _asr_language(utt, ctx.cfg.tags), spans)
    plan = longform.plan_cuts(words, spans, longform.CutConfig(
        seg.min_seconds, seg.max_seconds, seg.pad_seconds), transcript=utt.text or None,
        duration_s=len(audio) / rate)
    plan = voices.one_voice_cuts(plan, voices.for_recording(ctx, audio, rate, spans),
                                 seg.min_seconds, seg.pad_seconds)
    out, cuts = [], []
    for k, cut in enumerate(plan.cuts):
        cut_id = ids.child(utt.id, "cut", k)
        piece = audio[int(cut.start_s * rate): int(cut.end_s * rate)]
        path = ids.clip_path(ctx.work, NAME, cut_id)
        write_clip(path, piece, rate)
        out.append(dataclasses.replace(
            utt, id=cut_id, audio=path.relative_to(ctx.work).as_posix(), text=cut.text,
            duration=len(piece) / rate, start=utt.start + cut.start_s, long=False))
        cuts.append({"id": cut_id, "start_s": round(cut.start_s, 3), "end_s": round(cut.end_s, 3),
                     "moved_s": cut.moved_s, "moved_why": cut.moved_why})
    dropped = [{**rejection(ids.child(utt.id, "drop", k), NAME, r.code, r.detail, utt.source),
                "seconds": round(r.end_s - r.start_s, 3), "text": r.text}
               for k, r in enumerate(plan.rejections)]
    if not out:
        first = plan.rejections[0] if plan.rejections else None
        return Rejected(first.code if first else "no_words", first.detail if first else "")
    return Kept(out, extra={"cuts": cuts, "dropped": dropped})


class Transcribe(BaseStage):
    name = section = NAME
    config = TranscribeConfig
    help = "Whisper ASR: write missing transcripts, check given ones (CER), cut long recordings"
    model, writes_text, device = True, True, "device"
    # enabled: auto is decided before a run, from the recordings (data_tools/preflight.py)
    models = (Model("transcribe.model", "ASR model", given="asr",
                    when=lambda cfg: cfg.transcribe.enabled == "on"),)
    columns = ("cer", "asr_avg_logprob", "asr_no_speech_prob", "asr_compression_ratio")

    def enabled(self, cfg) -> bool:
        """``auto`` is decided from the recordings before a run (data_tools/preflight.py);
        undecided, it means: where the model is on this machine."""
        on = cfg.transcribe.enabled
        return on == "on" or (on == "auto" and hub.on_machine(cfg.transcribe.model))

    def why_off(self, cfg) -> str:
        if cfg.transcribe.enabled == "off":
            return "transcribe.enabled is off"
        return (f"ASR model {cfg.transcribe.model} is not on this machine; set transcribe.model "
                "to a Whisper folder, or transcribe.enabled: on to fetch it")

    def resources(self, cfg) -> Resources:
        return Resources(pool=True, device=cfg.transcribe.device)

    def settings(self, ctx) -> dict:
        given = ctx.given.get("asr")
        own = {k: v for k, v in super().settings(ctx).items() if k != "enabled"}  # auto -> on
        return {**own, "segment": dataclasses.asdict(ctx.cfg.segment),
                # what Whisper is told, and how given transcripts are read to check them
                "languages": [text_languages(ctx.cfg.tags), asr_languages(ctx.cfg.tags)],
                "given": getattr(given, "name", type(given).__name__) if given else None}

    def open(self, ctx) -> None:
        ctx.state["asr"] = ctx.given.get("asr") or WhisperRecogniser(ctx.cfg.transcribe)

    def _vad(self, ctx):
        if "vad" not in ctx.state:
            from data_tools.stages.segment import silero_vad
            ctx.state["vad"] = ctx.given.get("vad") or silero_vad(ctx.cfg.segment)
        return ctx.state["vad"]

    def batches(self, ctx, todo: list[Utterance]) -> list[list[Utterance]]:
        size = ctx.cfg.transcribe.batch_size  # similar lengths share a batch: little padding
        by_id = {u.id: u for u in todo}
        lengths = {u.id: int(min(u.duration, 30.0) * 100) for u in todo if not u.long}
        return [[u] for u in todo if u.long] + [
            [by_id[i] for i in b] for b in id_batches(lengths, 3000 * size, size)]

    def process(self, ctx, batch: list[Utterance]) -> dict:
        cfg, asr = ctx.cfg.transcribe, ctx.state["asr"]
        out = {u.id: cut_long(ctx, u, asr, self._vad(ctx)) for u in batch if u.long}
        heard = [u for u in batch if not u.long and (not u.text or cfg.verify)]
        out |= {u.id: Kept([u]) for u in batch if not u.long and u not in heard}
        if heard:
            clips = [read_clip(ctx.work / u.audio) for u in heard]
            rate = clips[0][1]
            audios = [a if r == rate else resample(a, r, rate) for a, r in clips]
            langs = [_asr_language(u, ctx.cfg.tags) for u in heard]
            wrong = check_language(asr, audios, rate, langs, cfg)
            for u, t, bad in zip(heard, asr.transcribe(audios, rate, langs), wrong):
                out[u.id] = Rejected("language_mismatch", bad) if bad else \
                    judge(u, t, cfg, ctx.cfg.tags)
        return out

    def decide(self, ctx, items: list, results: dict) -> tuple[list, list[dict]]:
        kept, rejected = collect(items, results, NAME)
        rates = {}
        for item in items:
            wps = results[item.id]["extra"].get("wps")
            if wps is not None and not results[item.id]["rejected"]:
                rates[item.id] = (item.speaker, wps)
        slow_fast = rate_rejections(rates, ctx.cfg.transcribe)
        rejected += [reject_utt(u, NAME, "asr_words_per_second", slow_fast[u.id])
                     for u in kept if u.id in slow_fast]
        return [u for u in kept if u.id not in slow_fast], rejected


STAGE = Transcribe()
