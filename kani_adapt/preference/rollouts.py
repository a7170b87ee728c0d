"""The sample and score stages: rollouts of every text x voice group from the policy, batched,
with each row's own frame cap; then each rollout's transcript, error rates, duration and reward,
stored so that re-scoring (another reward) needs no re-sampling.

Prompts are laid out as the policy was trained (its text frontend and ``text_layout``: the
production layout, or DPO would optimise another policy). The cap is ``cap_factor`` x the
expected frames (the duration model), within ``[cap_min, cap_max]``; a rollout that reaches it
is truncated (it never ends: no end-of-speech term, and it cannot be chosen).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from kani_adapt import tokens
from kani_adapt.preference.config import SampleConfig
from kani_adapt.preference.duration import DurationModel
from kani_adapt.preference.prompts import Prompt
from kani_adapt.text.tags import language_of


@dataclass
class Rollout:
    group: str
    prompt: Prompt
    split: str  # train or eval
    speaker: str
    speaker_emb: np.ndarray | None
    ids: list[int]  # the prompt as generation laid it out (ends with start of speech)
    expected: float  # seconds
    cap: int  # frames
    codes: np.ndarray | None = None
    truncated: bool = False


# transcripts of rollouts: (codes of each, tag of each) -> text of each
Transcriber = Callable[[Sequence[np.ndarray], Sequence[str]], list[str]]
# voice similarity of rollouts: (codes of each, the voice each was given) -> cosine of each
# (nan where there is no voice to compare: an empty rollout or no voice given)
VoiceMatch = Callable[[Sequence[np.ndarray], Sequence[np.ndarray | None]], list[float]]


def laid_out(generator, texts: list[str], tags: list[str]) -> list[tuple[list[int], list[int]]]:
    """(text ids, the prompt as the policy generates from it) of each text: its text frontend
    and its ``text_layout``, the production layout."""
    from kani_adapt.models.generator.synthesize import text_prompts

    return [(text_ids, tokens.prompt_ids(text_ids, repeats=generator.text_layout.repeats(text_ids)))
            for text_ids in text_prompts(generator, texts, tags)]


def plan(generator, prompts: list[Prompt], split: str, voices: dict[str, np.ndarray | None],
         durations: dict[str, DurationModel], cfg: SampleConfig, rng: np.random.Generator) -> list[Rollout]:
    """``cfg.rollouts`` rollouts for each text in ``cfg.speakers_per_text`` voices drawn from
    ``voices`` (the split's pool)."""
    names = sorted(voices)
    ids = laid_out(generator, [p.text for p in prompts], [p.tag for p in prompts])
    out = []
    for prompt, (text_ids, laid) in zip(prompts, ids):
        model = durations[language_of(prompt.tag)]
        expected = model.expected(prompt.words, tokens.text_tokens(text_ids))
        cap = int(np.clip(round(cfg.cap_factor * expected * tokens.FRAMES_PER_SECOND),
                          cfg.cap_min, cfg.cap_max))
        for speaker in rng.permutation(names)[:cfg.speakers_per_text].tolist():
            group = f"{split}/{prompt.kind}/{prompt.text}/{speaker}"
            out += [Rollout(group, prompt, split, speaker, voices[speaker], laid, expected, cap)
                    for _ in range(cfg.rollouts)]
    return out


def sample(generator, rollouts: list[Rollout], cfg: SampleConfig, round_seed: int) -> None:
    """Fill in every rollout's codes: batches of ``cfg.batch`` rows of similar caps, each row
    stopping at its own cap (and at end of speech)."""
    import torch

    from kani_adapt.config.sampling import rollout
    from kani_adapt.models.generator.generate import generate

    order = sorted(range(len(rollouts)), key=lambda i: (rollouts[i].speaker_emb is None, rollouts[i].cap))
    for n, start in enumerate(range(0, len(order), cfg.batch)):
        part = order[start:start + cfg.batch]
        conditioned = [i for i in part if rollouts[i].speaker_emb is not None]
        for index in (conditioned, [i for i in part if rollouts[i].speaker_emb is None]):
            if not index:
                continue
            rows = [rollouts[i] for i in index]
            spk = (torch.from_numpy(np.stack([r.speaker_emb for r in rows]).astype(np.float32))
                   if rows[0].speaker_emb is not None else None)
            sampling = rollout(cfg.temperature, cfg.top_p, max(r.cap for r in rows),
                               round_seed * 100_003 + n, cfg.onset_guidance,
                               cfg.onset_frames if cfg.onset_guidance != 1 else 0)
            got = generate(generator.model, [r.ids for r in rows], spk, sampling,
                           caps=[r.cap for r in rows])
            for made, row in zip(rows, got):
                made.codes = np.asarray(row.codes, dtype=np.int64).reshape(-1, tokens.TOKENS_PER_FRAME)
                made.truncated = bool(row.hit_length_cap)


def _decoded(codec, codes: Sequence[np.ndarray], index: list[int]) -> list[np.ndarray]:
    """The audio of ``codes[i]`` for each ``i`` in ``index`` (none empty), decoded in one batch."""
    import torch

    frames = torch.tensor([len(codes[i]) for i in index])
    stacked = torch.zeros((len(index), tokens.TOKENS_PER_FRAME, int(frames.max())), dtype=torch.long)
    for k, i in enumerate(index):
        stacked[k, :, :len(codes[i])] = torch.from_numpy(np.asarray(codes[i]).T)
    with torch.no_grad():
        audio, lengths = codec.decode(stacked, frames)
    return [audio[k, :int(lengths[k])].float().cpu().numpy() for k in range(len(index))]


def codec_transcriber(codec, asr, tags_known=None) -> Transcriber:
    """The real path: decode with the codec, transcribe with Whisper, the tag's language forced."""
    from kani_adapt.text.tags import asr_language_of

    def transcribe(codes: Sequence[np.ndarray], tags: Sequence[str]) -> list[str]:
        out = [""] * len(codes)
        live = [i for i, c in enumerate(codes) if len(c)]
        if not live:
            return out
        heard = asr.transcribe(_decoded(codec, codes, live), codec.sample_rate,
                               [asr_language_of(tags[i], tags_known) for i in live])
        for i, t in zip(live, heard):
            out[i] = t.text
        return out

    return transcribe


def codec_voice_match(codec, similarity) -> VoiceMatch:
    """Decode with the codec, embed with the speaker embedder that embedded the dataset's voices
    (a :class:`kani_adapt.scorers.similarity.SpeakerSimilarity`), cosine to the voice given."""
    from kani_adapt.scorers.similarity import cosine

    def match(codes: Sequence[np.ndarray], voices: Sequence[np.ndarray | None]) -> list[float]:
        out = [float("nan")] * len(codes)
        live = [i for i, c in enumerate(codes) if len(c) and voices[i] is not None]
        if not live:
            return out
        heard = similarity.embed(_decoded(codec, codes, live), codec.sample_rate)
        given = np.stack([np.asarray(voices[i], np.float32) for i in live])
        for i, value in zip(live, cosine(heard, given).tolist()):
            out[i] = float(value)
        return out

    return match
