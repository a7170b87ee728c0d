"""pocketsphinx (a language model of the expected sentences) behind the transcribe stage's
recogniser interface, as the runner passes models in (``given["asr"]``)."""
from __future__ import annotations

import math
import re
from pathlib import Path

from kani_adapt.audio import resample
from kani_adapt.scorers.asr import Transcript, compression_ratio


class SphinxRecogniser:
    name = "pocketsphinx-sentence-lm"

    def __init__(self, sentences: list[str], folder: Path):
        from tests.asr_doubles import sentence_lm

        self.sentences = [re.sub(r"[^\w' ]", " ", s.lower()) for s in sentences]
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lm = sentence_lm(self.sentences, self.folder)
        self.heard: list[str] = []  # every transcript, in call order

    def transcribe(self, audios, rate, languages=None) -> list[Transcript]:
        from tests.asr_doubles import recognise

        out = []
        for audio in audios:
            text = recognise(resample(audio, rate, 16000), self.lm)
            self.heard.append(text)
            out.append(Transcript(text, None, math.nan, math.nan, compression_ratio(text),
                                  math.nan, False))
        return out

    def words(self, audio, rate, language, spans) -> list[tuple[str, float, float]]:
        from tests.asr_doubles import pocketsphinx_words

        return pocketsphinx_words(resample(audio, rate, 16000), self.sentences, self.folder)
