"""CTC recognisers through transformers' ``Wav2Vec2ForCTC``, decoded greedily with no language
model: the second recogniser family of upstream's protocol (``facebook/mms-1b-all``: characters,
one adapter per language) and the phoneme recogniser of the phoneme error rate
(``facebook/wav2vec2-xlsr-53-espeak-cv-ft``: espeak IPA phones; :mod:`kani_adapt.scorers.phonemes`).

Greedy CTC: the most likely token of each frame, repeats merged, blanks (the pad token) and the
other special tokens dropped; the word delimiter (``|``) becomes a space. Clips are batched by
length, padded, and each row's frames cut to its own length, so a clip scores the same alone
or in a batch.

An MMS-style checkpoint (a vocabulary per language, ``adapter.<code>.safetensors`` files) is
switched to each clip's language: ISO 639-3, from the tag's language through :data:`ISO639_3`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from kani_adapt.audio import all_to_rate
from kani_adapt.batching import length_batches
from kani_adapt.core.devices import resolve
from kani_adapt.core.errors import CheckpointError, ConfigError
from kani_adapt.scorers import SCORER_RATE

# ISO 639-1 -> 639-3, as MMS names its adapters (a three-letter language passes as it is)
ISO639_3 = {"ar": "ara", "bn": "ben", "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan",
            "de": "deu", "el": "ell", "en": "eng", "es": "spa", "et": "est", "eu": "eus",
            "fa": "fas", "fi": "fin", "fr": "fra", "ga": "gle", "gd": "gla", "hi": "hin",
            "hu": "hun", "it": "ita", "ja": "jpn", "ko": "kor", "ky": "kir", "nl": "nld",
            "no": "nor", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk",
            "sv": "swe", "sw": "swh", "tr": "tur", "uk": "ukr", "vi": "vie", "yo": "yor",
            "zh": "cmn"}


class CTCRecogniser:
    def __init__(self, model, processor, device: str, batch_size: int = 8):
        self.model, self.processor, self.device, self.batch_size = model, processor, device, batch_size
        tok = processor.tokenizer
        self.tokenizer = tok
        self.languages = sorted(getattr(tok, "vocab", {}) or {}) if _nested(tok) else []
        self._language: str | None = None

    @classmethod
    def load(cls, spec: str, device: str = "auto", batch_size: int = 8) -> "CTCRecogniser":
        from transformers import AutoProcessor, Wav2Vec2ForCTC

        from kani_adapt.core.hub import resolve_folder

        folder = resolve_folder(spec, required=("config.json", "preprocessor_config.json", "vocab.json"))
        device = resolve(device)
        try:  # a phoneme tokenizer would phonemise its input with `phonemizer`: it only decodes here
            processor = AutoProcessor.from_pretrained(str(folder), do_phonemize=False)
            model = Wav2Vec2ForCTC.from_pretrained(str(folder))
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{folder}: not a Wav2Vec2ForCTC checkpoint ({err})") from err
        return cls(model.to(device).eval(), processor, device, batch_size)

    def vocabulary(self) -> set[str]:
        """The tokens it can emit (special tokens left out)."""
        special = set(self.tokenizer.all_special_tokens)
        return {t for t in self.tokenizer.get_vocab() if t not in special}

    def use_language(self, language: str | None) -> None:
        """Switch an MMS-style checkpoint to ``language`` (nothing to do for one vocabulary)."""
        if not self.languages or not language:
            return
        code = ISO639_3.get(language, language)
        if code not in self.languages:
            raise ConfigError(f"the CTC recogniser has no vocabulary for language {language!r} "
                              f"({code}); it knows {len(self.languages)} languages")
        if code != self._language:
            self.tokenizer.set_target_lang(code)
            self.model.load_adapter(code)
            self._language = code

    def tokens(self, audios: Sequence[np.ndarray], rate: int,
               languages: Sequence[str | None] | None = None) -> list[list[str]]:
        """The greedy CTC token sequence of each clip."""
        clips = all_to_rate(audios, rate, SCORER_RATE)
        languages = list(languages) if languages is not None else [None] * len(clips)
        out: list[list[str]] = [[] for _ in clips]
        for batch in length_batches([len(c) for c in clips], self.batch_size, groups=languages):
            self.use_language(languages[batch[0]])
            for i, seq in zip(batch, self._batch([clips[i] for i in batch])):
                out[i] = seq
        return out

    def transcribe(self, audios: Sequence[np.ndarray], rate: int,
                   languages: Sequence[str | None] | None = None) -> list[str]:
        """Text: the tokens joined, the word delimiter as a space."""
        delimiter = getattr(self.tokenizer, "word_delimiter_token", None) or "|"
        return [" ".join("".join(" " if t == delimiter else t for t in seq).split())
                for seq in self.tokens(audios, rate, languages)]

    def _batch(self, clips: list[np.ndarray]) -> list[list[str]]:
        import torch

        usable = [c if len(c) >= 400 else np.pad(c, (0, 400 - len(c))) for c in clips]  # one frame
        inputs = self.processor.feature_extractor(usable, sampling_rate=SCORER_RATE, return_tensors="pt",
                                                  padding=True, return_attention_mask=True)
        mask = inputs.get("attention_mask")
        feed = {"input_values": inputs["input_values"].to(self.device)}
        if mask is not None and self.model.config.feat_extract_norm == "layer":
            feed["attention_mask"] = mask.to(self.device)  # models trained without a mask get none
        with torch.no_grad():
            ids = self.model(**feed).logits.argmax(-1).cpu().numpy()
        lengths = self.model._get_feat_extract_output_lengths(
            torch.tensor([len(c) for c in usable])).tolist()
        return [self._collapse(row[:n]) for row, n in zip(ids, lengths)]

    def _collapse(self, ids: np.ndarray) -> list[str]:
        blank = self.tokenizer.pad_token_id
        special = set(self.tokenizer.all_special_ids)
        kept, previous = [], None
        for i in ids.tolist():
            if i != previous and i != blank and i not in special:
                kept.append(i)
            previous = i
        return self.tokenizer.convert_ids_to_tokens(kept)


def _nested(tokenizer) -> bool:
    vocab = getattr(tokenizer, "vocab", None)
    return isinstance(vocab, dict) and bool(vocab) and all(isinstance(v, dict) for v in vocab.values())


# --- the second recogniser family as a scorer (its registry entry: "ctc_asr") ---

def load_scorer(setup, device: str) -> CTCRecogniser:
    return CTCRecogniser.load(setup.cfg.ctc_asr, device, setup.cfg.batch_size)


def score(model: CTCRecogniser, setup, clips, rate: int, rows: list[dict]) -> None:
    """ctc_text, ctc_wer (and its edit counts) of every clip, normalised as the Whisper scores
    are (upstream's normaliser under ``msbench``)."""
    from kani_adapt.scorers import msbench
    from kani_adapt.scorers.text import error_rates

    languages = [setup.language(c.tag) for c in clips]
    texts = model.transcribe([c.audio for c in clips], rate, languages)
    for row, clip, text, lang in zip(rows, clips, texts, languages):
        if setup.protocol == "msbench":
            a = msbench.align(clip.text, text, lang)
            edits, words, wer = float(a.word_edits), (math.nan if a.empty_reference else float(a.ref_words)), a.wer
        else:
            r = error_rates(clip.text, text, lang)
            edits, words, wer = float(r.word_edits), float(r.words) if clip.text else math.nan, r.wer
        row.update(ctc_text=text, ctc_wer=wer, ctc_word_edits=edits, ctc_ref_words=words)
