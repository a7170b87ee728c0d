"""Every configured scorer over a list of clips, one flat dict of metrics per clip.

The scorers evaluation runs are registered here, in :data:`REGISTRY`, and only here: each entry
says which ``ScorerConfig`` switch turns it on, the summary metrics it gives (and whether higher
is better), how its model loads and how it fills a clip's row. A new scorer is its module in
``kani_adapt/scorers/``, its switch in ``ScorerConfig`` and one entry below; reports, checkpoint
monitors and early stopping pick its metrics up from the registry. The failure detectors always
run, last, and read what the others wrote (the ASR transcript).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from kani_adapt.eval.config import ScorerConfig
from kani_adapt.scorers import failures
from kani_adapt.scorers.asr import LanguageMap


@dataclass
class Clip:
    audio: np.ndarray
    text: str
    speaker: str
    tag: str | None = None
    codes: np.ndarray | None = None  # (frames, 4), for the repetition check
    hit_length_cap: bool = False
    chars_per_second: float = failures.DEFAULT_CHARS_PER_SECOND
    reference: np.ndarray | None = None  # embedding of a different clip of the same speaker
    reference_xvector: np.ndarray | None = None


@dataclass(frozen=True)
class Scorer:
    name: str
    metrics: dict[str, bool]  # summary metric -> True when higher is better
    enabled: Callable[[ScorerConfig], bool]
    load: Callable[[ScorerConfig, str], Any]  # (config, device) -> model
    score: Callable[[Any, ScorerConfig, Sequence[Clip], int, list[dict]], None]  # fills the rows


def _load_dnsmos(cfg: ScorerConfig, device: str):
    from kani_adapt.scorers.quality import DNSMOS
    return DNSMOS(device, cfg.dnsmos_threads)


def _score_dnsmos(model, cfg, clips, rate, rows) -> None:
    for row, q in zip(rows, model.score([c.audio for c in clips], rate)):
        row.update(dnsmos_p808=q.p808, dnsmos_ovrl=q.ovrl, dnsmos_sig=q.sig, dnsmos_bak=q.bak)


# An utterance above 50 % WER is "catastrophic": said wrong, not merely mis-heard
# (make-speech-benchmark's definition); its rate is reported per tag.
CATASTROPHIC_WER = 0.5


def _load_asr(cfg: ScorerConfig, device: str):
    from kani_adapt.scorers.asr import WhisperASR
    return WhisperASR.load(cfg.asr, device, cfg.asr_batch_size)


def _score_asr(model, cfg, clips, rate, rows) -> None:
    from kani_adapt.scorers.text import error_rates

    languages = LanguageMap(cfg.languages)
    langs = [languages(c.tag) for c in clips]
    heard = model.transcribe([c.audio for c in clips], rate, langs)
    for row, clip, lang, t in zip(rows, clips, langs, heard):
        rates = error_rates(clip.text, t.text, lang or "")
        row.update(asr_text=t.text, cer=rates.cer, wer=rates.wer, lang_prob=t.language_prob,
                   catastrophic=float(rates.wer > CATASTROPHIC_WER), char_edits=rates.char_edits,
                   ref_chars=rates.chars, word_edits=rates.word_edits, ref_words=rates.words,
                   asr_avg_logprob=t.avg_logprob, asr_no_speech_prob=t.no_speech_prob,
                   asr_compression_ratio=t.compression_ratio)


def _similarity(kind: str, spec: Callable[[ScorerConfig], str]):
    def load(cfg: ScorerConfig, device: str):
        from kani_adapt.scorers.similarity import SpeakerSimilarity
        return SpeakerSimilarity.load(spec(cfg), kind, device, cfg.batch_size)
    return load


def _cosines(metric: str, reference: str):
    """Fills ``metric``: cosine of each clip's embedding to its ``reference`` (NaN without)."""
    def score(model, cfg, clips, rate, rows) -> None:
        from kani_adapt.scorers.similarity import cosine

        for row, clip, e in zip(rows, clips, model.embed([c.audio for c in clips], rate)):
            ref = getattr(clip, reference)
            row[metric] = float(cosine(e, ref)) if ref is not None else math.nan
    return score


def _load_accent(cfg: ScorerConfig, device: str):
    from kani_adapt.scorers.langid import AccentClassifier
    return AccentClassifier.load(cfg.accent_model, cfg.accent_labels, device, cfg.batch_size)


def _score_accent(model, cfg, clips, rate, rows) -> None:
    for row, p in zip(rows, model.predict([c.audio for c in clips], rate, [c.tag for c in clips])):
        row.update(accent_label=p.label, accent_correct=math.nan if p.correct is None else float(p.correct))


REGISTRY: tuple[Scorer, ...] = (
    Scorer("dnsmos", {"dnsmos_p808": True, "dnsmos_ovrl": True, "dnsmos_sig": True, "dnsmos_bak": True},
           lambda c: c.dnsmos, _load_dnsmos, _score_dnsmos),
    Scorer("asr", {"cer": False, "wer": False, "catastrophic": False, "lang_prob": True},
           lambda c: bool(c.asr), _load_asr, _score_asr),
    Scorer("similarity", {"similarity": True}, lambda c: bool(c.speaker_embedder),
           _similarity("kani", lambda c: c.speaker_embedder), _cosines("similarity", "reference")),
    Scorer("xvector", {"similarity_xvector": True}, lambda c: bool(c.xvector),
           _similarity("wavlm-xvector", lambda c: c.xvector),
           _cosines("similarity_xvector", "reference_xvector")),
    Scorer("accent", {"accent_correct": True}, lambda c: bool(c.accent_model),
           _load_accent, _score_accent),
)
FAILURE = {"failure": False}  # the detectors in kani_adapt/scorers/failures.py, always on
# Computed from other metrics once every row is in: similarity rescaled between the
# different-speaker floor (0) and the same-speaker ceiling (1) of the eval set's recordings.
DERIVED = {"similarity_norm": True,
           # generation's onset-entropy derailment score (not for the anchor rows)
           "onset_entropy": False}
# Corpus rates: all edits over all reference units (make-speech-benchmark's WER; the mean of
# per-utterance rates lets short utterances weigh as much as long ones). (edits, units) columns.
CORPUS = {"corpus_cer": ("char_edits", "ref_chars"), "corpus_wer": ("word_edits", "ref_words")}

def higher_is_better() -> dict[str, bool]:
    """Every summary metric a registered scorer gives, and whether higher is better."""
    return {**{m: up for s in REGISTRY for m, up in s.metrics.items()}, **FAILURE, **DERIVED,
            **{m: False for m in CORPUS}}


def metric_names(cfg: ScorerConfig) -> list[str]:
    """The summary metrics a scorer config produces (known before any model is loaded)."""
    return [*FAILURE, *(m for s in REGISTRY if s.enabled(cfg) for m in s.metrics)]


class Scorers:
    """The models of every scorer the config turns on, loaded once."""

    def __init__(self, cfg: ScorerConfig, device: str):
        self.cfg = cfg
        self.models = {s.name: s.load(cfg, device) for s in REGISTRY if s.enabled(cfg)}

    def names(self) -> list[str]:
        """The summary metrics these scorers produce."""
        return metric_names(self.cfg)

    def score(self, clips: Sequence[Clip], rate: int) -> list[dict]:
        rows = [{"duration_s": len(c.audio) / rate} for c in clips]
        for scorer in REGISTRY:
            if scorer.name in self.models:
                scorer.score(self.models[scorer.name], self.cfg, clips, rate, rows)
        for row, clip in zip(rows, clips):
            f = failures.detect(self.cfg.failures, text=clip.text, audio=clip.audio, rate=rate,
                                codes=clip.codes, hit_length_cap=clip.hit_length_cap,
                                chars_per_second=clip.chars_per_second, transcript=row.get("asr_text"))
            row.update(failure=float(f.any), failure_reasons=",".join(f.reasons),
                       duration_ratio=f.duration_ratio, repeat_share=f.repeat_share,
                       silence_share=f.silence_share)
        return rows
