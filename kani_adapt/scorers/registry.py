"""The one list of scorers: what each measures and how it is shown.

Each entry of :data:`REGISTRY` says which :class:`ScorerConfig` switch turns it on, the config
keys of the models it loads (preflight checks each), how its model loads and how it fills a
clip's row (both read a :class:`Setup`: the switches and each tag's facts), and its metrics
(:class:`Metric`): whether higher is better, whether it is a key metric of the verdict,
compared with the recordings, or shown beside each clip on the page, and how the report
computes it when it is not a plain per-clip value (a corpus rate, or derived once every row is
in). Preflight (``eval/preflight.py``), the report's verdict and anchor line
(``eval/report.py``, ``eval/protocol.py``), the page (``eval/page.py``), the eval run's metric
list and the training callback's monitors read this list and no other.

A new scorer is its module in ``kani_adapt/scorers/``, its switch in :class:`ScorerConfig`
(``scorers/config.py``) and one entry below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from kani_adapt.config.defaults import SPEAKER_EMBEDDER_TINY
from kani_adapt.scorers.config import ScorerConfig
from kani_adapt.scorers.failures import DEFAULT_CHARS_PER_SECOND
from kani_adapt.text.tags import Tag, accent_labels, asr_language_of, language_of


@dataclass
class Clip:
    """One clip to score, with what the scorers compare it with."""

    audio: np.ndarray
    text: str
    speaker: str
    tag: str | None = None
    codes: np.ndarray | None = None  # (frames, 4), for the repetition check
    hit_length_cap: bool = False
    chars_per_second: float = DEFAULT_CHARS_PER_SECOND
    reference: np.ndarray | None = None  # embedding of a different clip of the same speaker
    reference_xvector: np.ndarray | None = None


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    headline: int = 0  # its place among the verdict's key metrics (1 first; 0: not one)
    anchor: int = 0  # its place in the verdict's comparison with the recordings (0: not there)
    column: int = 0  # its place among the figures beside each clip on index.html (0: not shown)
    # A corpus rate: the (edits, units) row columns, summed over the rows before dividing.
    corpus: tuple[str, str] | None = None
    # Computed once every row is in (from the recordings' anchors, or given by generation): not
    # a value the scorer writes into each row, so training's monitors cannot watch it.
    derived: bool = False

    @property
    def per_clip(self) -> bool:
        return self.corpus is None and not self.derived


@dataclass(frozen=True)
class Setup:
    """What a scorer's ``load`` and ``score`` read: the switches and the facts of each tag."""

    cfg: ScorerConfig
    tags: Mapping[str, Tag] = field(default_factory=dict)
    # "kani" (the default) or "msbench": upstream's benchmark protocol (scorers/msbench.py for
    # the texts, scorers/msbench_audio.py for what the scorers hear)
    protocol: str = "kani"

    def language(self, tag: str | None) -> str:
        """The language a clip's texts are read in (CER/WER normalisation)."""
        return language_of(tag, self.tags)

    def asr_language(self, tag: str | None) -> str | None:
        return asr_language_of(tag, self.tags)


Load = Callable[[Setup, str], Any]  # (setup, device) -> model
Score = Callable[[Any, Setup, Sequence[Clip], int, list[dict]], None]  # fills the rows


@dataclass(frozen=True)
class Scorer:
    name: str
    metrics: tuple[Metric, ...]
    enabled: Callable[[ScorerConfig], bool]
    load: Load | None = None  # None: nothing to load (the model passed to ``score`` is None)
    score: Score | None = None  # None: its rows are filled elsewhere (by generation)
    models: dict[str, str] = field(default_factory=dict)  # ScorerConfig key -> what the model is
    model_files: tuple[str, ...] = ("config.json",)  # what a local folder of its models holds
    sizes: tuple[str, ...] = ()  # names its loader builds on this machine instead (``tiny``)
    runs_last: bool = False  # reads what the other scorers wrote into the rows
    # hears the clip as generated even under a protocol that prepares audio (the failure
    # detectors: trimming would hide the silence they count)
    raw_audio: bool = False


def _always(cfg: ScorerConfig) -> bool:
    return True


def _from(module: str, name: str) -> Callable:
    """``module.name``, imported when first called (nothing heavy at import)."""
    def call(*args, **kwargs):
        from importlib import import_module

        return getattr(import_module(f"kani_adapt.scorers.{module}"), name)(*args, **kwargs)
    return call


def _score_failures(model, setup: Setup, clips, rate, rows) -> None:
    from kani_adapt.scorers import failures

    for row, clip in zip(rows, clips):
        f = failures.detect(setup.cfg.failures, text=clip.text, audio=clip.audio, rate=rate,
                            codes=clip.codes, hit_length_cap=clip.hit_length_cap,
                            chars_per_second=clip.chars_per_second, transcript=row.get("asr_text"))
        row.update(failure=float(f.any), failure_reasons=",".join(f.reasons),
                   duration_ratio=f.duration_ratio, repeat_share=f.repeat_share,
                   silence_share=f.silence_share)


def _load_dnsmos(setup: Setup, device: str):
    from kani_adapt.scorers.quality import DNSMOS
    return DNSMOS(device, setup.cfg.dnsmos_threads)


def _score_dnsmos(model, setup, clips, rate, rows) -> None:
    for row, q in zip(rows, model.score([c.audio for c in clips], rate)):
        row.update(dnsmos_p808=q.p808, dnsmos_ovrl=q.ovrl, dnsmos_sig=q.sig, dnsmos_bak=q.bak)


# An utterance above 50 % WER is "catastrophic": said wrong, not merely mis-heard
# (make-speech-benchmark's definition); its rate is reported per tag.
CATASTROPHIC_WER = 0.5


def _load_asr(setup: Setup, device: str):
    from kani_adapt.scorers.asr import WhisperASR
    return WhisperASR.load(setup.cfg.asr, device, setup.cfg.asr_batch_size)


def _score_asr(model, setup: Setup, clips, rate, rows) -> None:
    from kani_adapt.scorers.text import error_rates

    languages = [setup.asr_language(c.tag) for c in clips]  # what Whisper is told
    heard = model.transcribe([c.audio for c in clips], rate, languages)
    for row, clip, t in zip(rows, clips, heard):
        if setup.protocol == "msbench":
            from kani_adapt.scorers import msbench

            row.update(msbench.row(msbench.align(clip.text, t.text, setup.language(clip.tag))),
                       asr_text=t.text, lang_prob=t.language_prob, asr_avg_logprob=t.avg_logprob,
                       asr_no_speech_prob=t.no_speech_prob, asr_compression_ratio=t.compression_ratio)
            continue
        rates = error_rates(clip.text, t.text, setup.language(clip.tag))
        row.update(asr_text=t.text, cer=rates.cer, wer=rates.wer, lang_prob=t.language_prob,
                   catastrophic=float(rates.wer > CATASTROPHIC_WER), char_edits=rates.char_edits,
                   ref_chars=rates.chars, word_edits=rates.word_edits, ref_words=rates.words,
                   asr_avg_logprob=t.avg_logprob, asr_no_speech_prob=t.no_speech_prob,
                   asr_compression_ratio=t.compression_ratio)


def _similarity(kind: str, spec: Callable[[ScorerConfig], str]) -> Load:
    def load(setup: Setup, device: str):
        from kani_adapt.scorers.similarity import SpeakerSimilarity
        return SpeakerSimilarity.load(spec(setup.cfg), kind, device, setup.cfg.batch_size)
    return load


def _cosines(metric: str, reference: str) -> Score:
    """Fills ``metric``: cosine of each clip's embedding to its ``reference`` (NaN without)."""
    def score(model, setup, clips, rate, rows) -> None:
        from kani_adapt.scorers.similarity import cosine

        for row, clip, e in zip(rows, clips, model.embed([c.audio for c in clips], rate)):
            ref = getattr(clip, reference)
            row[metric] = float(cosine(e, ref)) if ref is not None else math.nan
    return score


def _load_accent(setup: Setup, device: str):
    from kani_adapt.scorers.langid import AccentClassifier
    return AccentClassifier.load(setup.cfg.accent_model, accent_labels(setup.tags), device,
                                 setup.cfg.batch_size)


def _score_accent(model, setup, clips, rate, rows) -> None:
    for row, p in zip(rows, model.predict([c.audio for c in clips], rate, [c.tag for c in clips])):
        row.update(accent_label=p.label,
                   accent_correct=math.nan if p.correct is None else float(p.correct))


REGISTRY: tuple[Scorer, ...] = (
    # the failure detectors (kani_adapt/scorers/failures.py): always on; they run last and read
    # what the others wrote (the ASR transcript)
    Scorer("failures", (Metric("failure", False, headline=6),), _always, score=_score_failures,
           runs_last=True, raw_audio=True),
    Scorer("dnsmos", (Metric("dnsmos_p808", True, headline=5, anchor=4, column=4),
                      Metric("dnsmos_ovrl", True, column=5), Metric("dnsmos_sig", True),
                      Metric("dnsmos_bak", True)),
           lambda c: c.dnsmos, _load_dnsmos, _score_dnsmos),
    # corpus rates: all edits over all reference units (make-speech-benchmark's WER; the mean of
    # per-utterance rates lets short utterances weigh as much as long ones)
    Scorer("asr", (Metric("cer", False, headline=1, anchor=1, column=1),
                   Metric("wer", False, column=2),
                   Metric("catastrophic", False, headline=3, anchor=5),
                   Metric("lang_prob", True, column=6),
                   Metric("corpus_cer", False, headline=2, corpus=("char_edits", "ref_chars")),
                   Metric("corpus_wer", False, anchor=2, corpus=("word_edits", "ref_words"))),
           lambda c: bool(c.asr), _load_asr, _score_asr, models={"asr": "ASR model"}),
    # similarity_norm: similarity rescaled between the different-speaker floor (0) and the
    # same-speaker ceiling (1) of the eval set's recordings
    Scorer("similarity", (Metric("similarity", True, headline=4, column=3),
                          Metric("similarity_norm", True, anchor=3, derived=True)),
           lambda c: bool(c.speaker_embedder), _similarity("kani", lambda c: c.speaker_embedder),
           _cosines("similarity", "reference"), models={"speaker_embedder": "speaker embedder"},
           sizes=(SPEAKER_EMBEDDER_TINY,)),
    Scorer("xvector", (Metric("similarity_xvector", True),), lambda c: bool(c.xvector),
           _similarity("wavlm-xvector", lambda c: c.xvector),
           _cosines("similarity_xvector", "reference_xvector"),
           models={"xvector": "x-vector model"}),
    Scorer("accent", (Metric("accent_correct", True, column=7),), lambda c: bool(c.accent_model),
           _load_accent, _score_accent, models={"accent_model": "accent classifier"}),
    # the accent judge (scorers/accent.py): the target label's posterior per clip, and the
    # accent-embedding shift toward the tag's recordings and away from the base accent
    Scorer("accent_id", (Metric("accent_posterior", True, headline=8, anchor=6, column=8),
                         Metric("accent_shift", True, headline=9, anchor=7, column=9, derived=True)),
           lambda c: bool(c.accent_classifiers), _from("accent", "load_scorer"),
           _from("accent", "score"), models={"accent_classifiers": "SpeechBrain accent classifier"},
           model_files=("hyperparams.yaml",)),
    # phoneme error rate against espeak-ng's phonemes of the text (scorers/phonemes.py); its
    # ratio to the median of the tag's recordings compares languages
    Scorer("phonemes", (Metric("per", False, column=10),
                        Metric("corpus_per", False, headline=10, anchor=8, corpus=("per_edits", "ref_phones")),
                        Metric("per_relative", False, derived=True), Metric("per_unheard", False)),
           lambda c: bool(c.phoneme_model), _from("phonemes", "load_scorer"), _from("phonemes", "score"),
           models={"phoneme_model": "phoneme recogniser"},
           model_files=("config.json", "preprocessor_config.json", "vocab.json")),
    # the second recogniser family (CTC greedy, no language model; scorers/ctc.py)
    Scorer("ctc_asr", (Metric("ctc_wer", False),
                       Metric("corpus_ctc_wer", False, corpus=("ctc_word_edits", "ctc_ref_words"))),
           lambda c: bool(c.ctc_asr), _from("ctc", "load_scorer"), _from("ctc", "score"),
           models={"ctc_asr": "CTC recogniser"},
           model_files=("config.json", "preprocessor_config.json", "vocab.json")),
    # generation's onset-entropy derailment score (eval/generation.py fills it; not for the
    # anchor rows)
    Scorer("generation", (Metric("onset_entropy", False, derived=True),), _always),
)


def every_metric() -> list[Metric]:
    return [m for s in REGISTRY for m in s.metrics]


def higher_is_better() -> dict[str, bool]:
    """Every metric a registered scorer gives, and whether higher is better."""
    return {m.name: m.higher_is_better for m in every_metric()}


def active(cfg: ScorerConfig) -> list[Scorer]:
    return [s for s in REGISTRY if s.enabled(cfg)]


def metric_names(cfg: ScorerConfig) -> list[str]:
    """The metrics the scorers ``cfg`` turns on write into each clip's row (known before any
    model is loaded): what training's monitors and early stopping can watch."""
    return [m.name for s in active(cfg) for m in s.metrics if m.per_clip]


def derived_metrics(cfg: ScorerConfig) -> list[str]:
    """The metrics computed once every row is in, of the scorers ``cfg`` turns on."""
    return [m.name for s in active(cfg) for m in s.metrics if m.derived]


def corpus_rates() -> dict[str, tuple[str, str]]:
    """corpus metric -> its (edits, units) row columns."""
    return {m.name: m.corpus for m in every_metric() if m.corpus is not None}


def _placed(attribute: str) -> list[str]:
    ranked = [m for m in every_metric() if getattr(m, attribute)]
    return [m.name for m in sorted(ranked, key=lambda m: getattr(m, attribute))]


def headline() -> list[str]:
    """The verdict's key metrics, in order (the first one a comparison has decides it)."""
    return _placed("headline")


def anchored() -> list[str]:
    """The metrics the verdict compares with the recordings' own, in order."""
    return _placed("anchor")


def columns() -> list[str]:
    """The figures shown beside each clip on an eval folder's index.html, in order."""
    return _placed("column")


def model_keys() -> list[tuple[str, str, tuple[str, ...]]]:
    """(ScorerConfig key, what it is, the files its folder holds) of every model a scorer
    loads: what preflight checks."""
    return [(key, what, s.model_files) for s in REGISTRY for key, what in s.models.items()]


def built_here(key: str) -> tuple[str, ...]:
    """The names the loader of the model at ScorerConfig ``key`` builds on this machine."""
    return next((s.sizes for s in REGISTRY if key in s.models), ())


class Scorers:
    """The models of every scorer the config turns on, loaded once."""

    def __init__(self, cfg: ScorerConfig, device: str, tags: Mapping[str, Tag] | None = None,
                 protocol: str = "kani"):
        self.cfg = cfg
        self.setup = Setup(cfg, dict(tags or {}), protocol)
        self.models = {s.name: s.load(self.setup, device) for s in active(cfg) if s.load is not None}

    def names(self) -> list[str]:
        """The metrics these scorers write into each row."""
        return metric_names(self.cfg)

    def score(self, clips: Sequence[Clip], rate: int) -> list[dict]:
        rows = [{"duration_s": len(c.audio) / rate} for c in clips]
        heard, heard_rate = self.heard(clips, rate)
        for scorer in sorted(active(self.cfg), key=lambda s: s.runs_last):
            if scorer.score is not None:
                given, given_rate = (clips, rate) if scorer.raw_audio else (heard, heard_rate)
                scorer.score(self.models.get(scorer.name), self.setup, given, given_rate, rows)
        return rows

    def heard(self, clips: Sequence[Clip], rate: int) -> tuple[Sequence[Clip], int]:
        """The clips as the scorers hear them: as given, or under ``msbench`` prepared as
        upstream prepares synthesis (mono, 16 kHz soxr HQ, VAD trim, -1 dBFS peak)."""
        if self.setup.protocol != "msbench":
            return clips, rate
        from dataclasses import replace

        from kani_adapt.scorers import msbench_audio

        return [replace(c, audio=msbench_audio.prepare(c.audio, rate)) for c in clips], msbench_audio.RATE
