"""The scorers' switches and settings (``scorers:`` in the eval and training-eval sections).

A scorer's switch lives here, beside the registry that reads it
(:mod:`kani_adapt.scorers.registry`): a key naming a model is declared in the scorer's entry
(``models``), so preflight checks it and nothing else has to list it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from kani_adapt.scorers.failures import FailureConfig


@dataclass
class ScorerConfig:
    dnsmos: bool = True  # DNSMOS P.808 / P.835 (CPU, ONNX models in the speechmos wheel)
    dnsmos_threads: int = 0  # onnxruntime threads (0 = its default)
    asr: str = ""  # Whisper hub id or folder (e.g. openai/whisper-large-v3); empty = no CER/WER
    #                (the language of each clip: its tag's, tags.<tag>.language / asr_language)
    asr_batch_size: int = 8
    speaker_embedder: str = ""  # KaniTTS2 speaker embedder folder or hub id; empty = no similarity
    xvector: str = ""  # optional WavLMForXVector folder or hub id (second similarity)
    accent_model: str = ""  # optional audio-classification folder or hub id (its expected
    #                         label per tag: tags.<tag>.accent_label)
    # The accent judge (scorers/accent.py): a SpeechBrain EncoderClassifier per language
    # (folder or hub id, e.g. {en: Jzuluaga/accent-id-commonaccent_ecapa}; its target label per
    # tag: tags.<tag>.accent_label), and a folder of base-accent recordings per language for
    # the accent-embedding shift (e.g. {en: recordings/standard_english})
    accent_classifiers: dict[str, str] = field(default_factory=dict)
    accent_base: dict[str, str] = field(default_factory=dict)
    # A CTC phoneme recogniser emitting espeak IPA (folder or hub id, e.g.
    # facebook/wav2vec2-xlsr-53-espeak-cv-ft): the phoneme error rate (scorers/phonemes.py)
    phoneme_model: str = ""
    # A second recogniser family, CTC greedy without a language model (folder or hub id, e.g.
    # facebook/mms-1b-all): its WER beside Whisper's, the gap reported (scorers/ctc.py)
    ctc_asr: str = ""
    batch_size: int = 8  # clips per batch for the embedders, classifiers and CTC recognisers
    failures: FailureConfig = field(default_factory=FailureConfig)
    RANGES: ClassVar[dict] = {"dnsmos_threads": ">= 0", "asr_batch_size": ">= 1", "batch_size": ">= 1"}
