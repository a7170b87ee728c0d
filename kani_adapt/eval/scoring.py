"""Every configured scorer over a list of clips, one flat dict of metrics per clip."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kani_adapt.eval.config import ScorerConfig
from kani_adapt.scorers import failures
from kani_adapt.scorers.asr import LanguageMap

# Direction of each summary metric: True when higher is better.
HIGHER_IS_BETTER = {
    "cer": False, "wer": False, "similarity": True, "similarity_xvector": True,
    "dnsmos_p808": True, "dnsmos_ovrl": True, "dnsmos_sig": True, "dnsmos_bak": True,
    "lang_prob": True, "accent_correct": True, "failure": False,
}


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


def metric_names(cfg: ScorerConfig) -> list[str]:
    """The summary metrics a scorer config produces (known before any model is loaded)."""
    out = ["failure"]
    if cfg.dnsmos:
        out += ["dnsmos_p808", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"]
    if cfg.asr:
        out += ["cer", "wer", "lang_prob"]
    if cfg.speaker_embedder:
        out.append("similarity")
    if cfg.xvector:
        out.append("similarity_xvector")
    if cfg.accent_model:
        out.append("accent_correct")
    return out


class Scorers:
    def __init__(self, cfg: ScorerConfig, device: str):
        self.cfg = cfg
        self.languages = LanguageMap(cfg.languages)
        self.dnsmos = self.asr = self.similarity = self.xvector = self.accent = None
        if cfg.dnsmos:
            from kani_adapt.scorers.quality import DNSMOS
            self.dnsmos = DNSMOS(device, cfg.dnsmos_threads)
        if cfg.asr:
            from kani_adapt.scorers.asr import WhisperASR
            self.asr = WhisperASR.load(cfg.asr, device, cfg.asr_batch_size)
        if cfg.speaker_embedder or cfg.xvector:
            from kani_adapt.scorers.similarity import SpeakerSimilarity
            if cfg.speaker_embedder:
                self.similarity = SpeakerSimilarity.load(cfg.speaker_embedder, "kani", device, cfg.batch_size)
            if cfg.xvector:
                self.xvector = SpeakerSimilarity.load(cfg.xvector, "wavlm-xvector", device, cfg.batch_size)
        if cfg.accent_model:
            from kani_adapt.scorers.langid import AccentClassifier
            self.accent = AccentClassifier.load(cfg.accent_model, cfg.accent_labels, device, cfg.batch_size)

    def names(self) -> list[str]:
        """The summary metrics these scorers produce."""
        return metric_names(self.cfg)

    def score(self, clips: Sequence[Clip], rate: int) -> list[dict]:
        rows = [{"duration_s": len(c.audio) / rate} for c in clips]
        audios = [c.audio for c in clips]
        if self.dnsmos:
            for row, q in zip(rows, self.dnsmos.score(audios, rate)):
                row.update(dnsmos_p808=q.p808, dnsmos_ovrl=q.ovrl, dnsmos_sig=q.sig, dnsmos_bak=q.bak)
        transcripts = [None] * len(clips)
        if self.asr:
            transcripts = self._asr(clips, rows, rate)
        for name, model in (("similarity", self.similarity), ("similarity_xvector", self.xvector)):
            if model:
                self._similarity(name, model, clips, rows, rate)
        if self.accent:
            for row, p in zip(rows, self.accent.predict(audios, rate, [c.tag for c in clips])):
                row.update(accent_label=p.label, accent_correct=math.nan if p.correct is None else float(p.correct))
        for row, clip, text in zip(rows, clips, transcripts):
            f = failures.detect(self.cfg.failures, text=clip.text, audio=clip.audio, rate=rate,
                                codes=clip.codes, hit_length_cap=clip.hit_length_cap,
                                chars_per_second=clip.chars_per_second, transcript=text)
            row.update(failure=float(f.any), failure_reasons=",".join(f.reasons),
                       duration_ratio=f.duration_ratio, repeat_share=f.repeat_share,
                       silence_share=f.silence_share)
        return rows

    def _asr(self, clips, rows, rate) -> list[str]:
        from kani_adapt.scorers.text import error_rates

        langs = [self.languages(c.tag) for c in clips]
        out = self.asr.transcribe([c.audio for c in clips], rate, langs)
        for row, clip, lang, t in zip(rows, clips, langs, out):
            rates = error_rates(clip.text, t.text, lang or "")
            row.update(asr_text=t.text, cer=rates.cer, wer=rates.wer, lang_prob=t.language_prob,
                       asr_avg_logprob=t.avg_logprob, asr_no_speech_prob=t.no_speech_prob,
                       asr_compression_ratio=t.compression_ratio)
        return [t.text for t in out]

    def _similarity(self, name, model, clips, rows, rate) -> None:
        from kani_adapt.scorers.similarity import cosine

        key = "reference" if name == "similarity" else "reference_xvector"
        emb = model.embed([c.audio for c in clips], rate)
        for row, clip, e in zip(rows, clips, emb):
            ref = getattr(clip, key)
            row[name] = float(cosine(e, ref)) if ref is not None else math.nan
