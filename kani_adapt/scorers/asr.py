"""Whisper transcription through transformers, with the confidence figures that guard against
hallucination: average log-probability, no-speech probability and compression ratio.

``WhisperASR.load`` takes any Whisper hub id (default ``openai/whisper-large-v3``) or a local
folder; nothing is fetched at import. The language is forced per clip (from its tag:
:func:`kani_adapt.text.tags.asr_language_of`); clips are batched by language and length. One decoder step at the
start-of-transcript position gives, as in Whisper's own decoding, the no-speech probability and
the language-identification distribution (used by ``langid``).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kani_adapt.core.errors import CheckpointError, ConfigError
from kani_adapt.batching import length_batches
from kani_adapt.core.devices import resolve
from kani_adapt.audio import all_to_rate
from kani_adapt.scorers import SCORER_RATE

DEFAULT_MODEL = "openai/whisper-large-v3"
MAX_SECONDS = 30.0  # Whisper's window; longer clips are cut there (and flagged)
# Greedy, no repetition penalty, the short-form path (one 30 s window, no chunking), as
# upstream's benchmark decodes (a repetition penalty hides loops and flatters a model); the
# language is forced per clip and at most 200 new tokens guard against runaways.
DECODING = dict(num_beams=1, do_sample=False, repetition_penalty=1.0, no_repeat_ngram_size=0)


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None  # the forced language code (None: Whisper chose)
    avg_logprob: float  # mean log-probability of the text tokens and end of text
    no_speech_prob: float  # probability of the no-speech token at the transcript start
    compression_ratio: float  # UTF-8 bytes / zlib bytes of the text; loops compress well
    language_prob: float  # Whisper's probability of the forced language (nan when none)
    truncated: bool  # the clip was longer than Whisper's 30 s window
    token_ids: tuple[int, ...] = ()  # the text tokens Whisper generated


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


class WhisperASR:
    def __init__(self, model, processor, device: str, batch_size: int = 8, max_new_tokens: int = 200):
        self.model, self.processor = model, processor
        self.device, self.batch_size, self.max_new_tokens = device, batch_size, max_new_tokens
        gen = model.generation_config
        self.lang_to_id: dict[str, int] = dict(getattr(gen, "lang_to_id", None) or {})
        if not self.lang_to_id:
            raise CheckpointError("the Whisper generation config has no lang_to_id; "
                                  "a multilingual Whisper checkpoint is needed")
        tok = processor.tokenizer
        self.sot = tok.convert_tokens_to_ids("<|startoftranscript|>")
        self.no_speech = next((tok.convert_tokens_to_ids(t) for t in ("<|nospeech|>", "<|nocaptions|>")
                               if tok.convert_tokens_to_ids(t) != tok.unk_token_id), None)

    @classmethod
    def load(cls, spec: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 8,
             dtype: str = "auto") -> "WhisperASR":
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        from kani_adapt.core.hub import resolve_folder

        folder = resolve_folder(spec, required=("config.json", "preprocessor_config.json"))
        device = resolve(device)
        torch_dtype = {"auto": torch.float16 if device.startswith("cuda") else torch.float32,
                       "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        try:
            processor = WhisperProcessor.from_pretrained(str(folder))
            model = WhisperForConditionalGeneration.from_pretrained(str(folder), dtype=torch_dtype)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{folder}: not a Whisper checkpoint ({err})") from err
        return cls(model.to(device).eval(), processor, device, batch_size)

    def _language_token(self, language: str) -> int:
        token = f"<|{language}|>"
        if token not in self.lang_to_id:
            raise ConfigError(f"Whisper does not know language {language!r}; give the tag one of "
                              f"its codes (tags: {{gsw_zurich: {{asr_language: de}}}})")
        return self.lang_to_id[token]

    def _features(self, audios: list[np.ndarray]):
        feats = self.processor.feature_extractor(audios, sampling_rate=SCORER_RATE, return_tensors="pt")
        return feats.input_features.to(self.device, self.model.dtype)

    def _start_step(self, encoder_out):
        """Full-vocabulary probabilities at the start-of-transcript position, [B, V]."""
        import torch

        start = torch.full((encoder_out.shape[0], 1), self.sot, device=self.device)
        logits = self.model(encoder_outputs=(encoder_out,), decoder_input_ids=start).logits[:, -1]
        return logits.float()

    def language_probs(self, logits) -> list[dict[str, float]]:
        """Whisper's language identification: softmax over the language tokens only."""
        import torch

        codes = [t[2:-2] for t in self.lang_to_id]
        ids = torch.tensor(list(self.lang_to_id.values()), device=logits.device)
        probs = torch.softmax(logits[:, ids], dim=-1).cpu().numpy()
        return [dict(zip(codes, map(float, row))) for row in probs]

    def _avg_logprob(self, encoder_out, prompts: list[list[int]], texts: list[list[int]]) -> list[float]:
        """Mean log-probability of each row's text tokens and end of text, teacher-forced."""
        import torch

        eot = self.processor.tokenizer.eos_token_id
        rows = [p + t + [eot] for p, t in zip(prompts, texts)]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), eot, device=self.device)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
        logp = torch.log_softmax(
            self.model(encoder_outputs=(encoder_out,), decoder_input_ids=ids[:, :-1]).logits.float(), -1)
        picked = logp.gather(-1, ids[:, 1:, None])[..., 0].cpu().numpy()
        return [float(picked[i, len(p) - 1:len(r) - 1].mean()) for i, (p, r) in enumerate(zip(prompts, rows))]

    def transcribe(self, audios: Sequence[np.ndarray], rate: int,
                   languages: Sequence[str | None] | None = None) -> list[Transcript]:
        import torch

        audios = all_to_rate(audios, rate, SCORER_RATE)
        languages = list(languages) if languages is not None else [None] * len(audios)
        out: list[Transcript | None] = [None] * len(audios)
        for batch in length_batches([len(a) for a in audios], self.batch_size, groups=languages):
            with torch.no_grad():
                for i, t in zip(batch, self._batch([audios[i] for i in batch], languages[batch[0]])):
                    out[i] = t
        return out  # type: ignore[return-value]

    def _batch(self, audios: list[np.ndarray], language: str | None) -> list[Transcript]:
        tok = self.processor.tokenizer
        feats = self._features(audios)
        encoder_out = self.model.get_encoder()(feats).last_hidden_state
        start = self._start_step(encoder_out)
        no_speech = (torch_softmax(start)[:, self.no_speech].tolist() if self.no_speech is not None
                     else [math.nan] * len(audios))
        lang_probs = self.language_probs(start)
        kwargs = {"language": language} if language else {}
        if language:
            self._language_token(language)
        room = self.model.config.max_target_positions - 5  # the 4 prompt tokens and one spare
        seqs = self.model.generate(feats, task="transcribe", max_new_tokens=min(self.max_new_tokens, room),
                                   **DECODING, **kwargs)
        special = set(tok.all_special_ids)
        texts = [[int(t) for t in s if int(t) not in special and int(t) < len(tok)] for s in seqs]
        prompts = [self._prompt(language, probs) for probs in lang_probs]
        logprobs = self._avg_logprob(encoder_out, prompts, texts)
        result = []
        for i, a in enumerate(audios):
            text = tok.decode(texts[i], skip_special_tokens=True).strip()
            result.append(Transcript(
                text=text, language=language, avg_logprob=logprobs[i], no_speech_prob=no_speech[i],
                compression_ratio=compression_ratio(text),
                language_prob=lang_probs[i].get(language, math.nan) if language else math.nan,
                truncated=len(a) > MAX_SECONDS * SCORER_RATE, token_ids=tuple(texts[i])))
        return result

    def _prompt(self, language: str | None, probs: dict[str, float]) -> list[int]:
        tok = self.processor.tokenizer
        lang = self._language_token(language or max(probs, key=probs.get))
        return [self.sot, lang, tok.convert_tokens_to_ids("<|transcribe|>"),
                tok.convert_tokens_to_ids("<|notimestamps|>")]

    def detect_language(self, audios: Sequence[np.ndarray], rate: int) -> list[dict[str, float]]:
        """Language-identification distribution per clip (one decoder step, batched)."""
        import torch

        audios = all_to_rate(audios, rate, SCORER_RATE)
        out: list[dict[str, float]] = [{}] * len(audios)
        for batch in length_batches([len(a) for a in audios], self.batch_size):
            with torch.no_grad():
                enc = self.model.get_encoder()(self._features([audios[i] for i in batch])).last_hidden_state
                for i, probs in zip(batch, self.language_probs(self._start_step(enc))):
                    out[i] = probs
        return out


def torch_softmax(logits):
    import torch

    return torch.softmax(logits, dim=-1)
