"""Language and accent identification.

- Whisper's language-identification probability of the tag's language (``whisper_language_prob``,
  from ``asr.WhisperASR``: one decoder step at the transcript start).
- Any transformers audio-classification model (an accent or dialect identifier) with an expected
  label per tag; reported as whether the top label is the expected one (accuracy over clips).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kani_adapt.core.errors import CheckpointError, ConfigError
from kani_adapt.batching import length_batches
from kani_adapt.core.devices import resolve
from kani_adapt.audio import all_to_rate
from kani_adapt.scorers import SCORER_RATE


def whisper_language_prob(asr, audios: Sequence[np.ndarray], rate: int,
                          languages: Sequence[str | None]) -> list[float]:
    """Probability Whisper gives each clip's expected language (nan where none is expected)."""
    for lang in set(languages):
        if lang:
            asr._language_token(lang)  # unknown codes fail before any audio is processed
    probs = asr.detect_language(audios, rate)
    return [p.get(lang, float("nan")) if lang else float("nan") for p, lang in zip(probs, languages)]


@dataclass(frozen=True)
class AccentPrediction:
    label: str
    prob: float
    expected: str | None
    correct: bool | None  # None when no label is expected for the tag


class AccentClassifier:
    def __init__(self, model, extractor, device: str, expected: dict[str, str], batch_size: int = 8):
        self.model, self.extractor, self.device = model, extractor, device
        self.expected, self.batch_size = expected, batch_size
        labels = set(model.config.id2label.values())
        wrong = sorted(v for v in expected.values() if v not in labels)
        if wrong:
            raise ConfigError(f"expected accent labels {wrong} are not labels of the classifier "
                              f"(it knows: {sorted(labels)[:20]})")

    @classmethod
    def load(cls, spec: str, expected: dict[str, str], device: str = "auto",
             batch_size: int = 8) -> "AccentClassifier":
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        from kani_adapt.core.hub import resolve_folder

        folder = resolve_folder(spec, required=("config.json", "preprocessor_config.json"))
        device = resolve(device)
        try:
            extractor = AutoFeatureExtractor.from_pretrained(str(folder))
            model = AutoModelForAudioClassification.from_pretrained(str(folder), trust_remote_code=False)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{folder}: not an audio-classification checkpoint ({err})") from err
        return cls(model.to(device).eval(), extractor, device, expected, batch_size)

    def predict(self, audios: Sequence[np.ndarray], rate: int,
                tags: Sequence[str | None]) -> list[AccentPrediction]:
        import torch

        clips = all_to_rate(audios, rate, SCORER_RATE)
        out: list[AccentPrediction | None] = [None] * len(clips)
        for batch in length_batches([len(c) for c in clips], self.batch_size):
            inputs = self.extractor([clips[i] for i in batch], sampling_rate=SCORER_RATE,
                                    return_tensors="pt", padding=True, return_attention_mask=True)
            with torch.no_grad():
                logits = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits
            probs = torch.softmax(logits.float(), -1).cpu().numpy()
            for i, row in zip(batch, probs):
                label = self.model.config.id2label[int(row.argmax())]
                expected = self.expected.get(tags[i] or "")
                out[i] = AccentPrediction(label, float(row.max()), expected,
                                          None if expected is None else label == expected)
        return out  # type: ignore[return-value]
