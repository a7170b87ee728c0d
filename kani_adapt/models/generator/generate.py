"""Batched generation with a KV cache and per-row frame-level positions.

Each row is prompted with ``SOH BOS text EOT EOH SOA SOS`` (optionally with a speaker slot at
index 1) and left-padded; padded positions are masked and zeroed inside the model. Every fed
token gets the position it would have in training (``tokens.PositionTracker``), so cached
generation sees exactly the positions the model was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from kani_adapt import tokens
from kani_adapt.errors import ConfigError
from kani_adapt.models.generator.model import KaniTTS2ForCausalLM, insert_at_one


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.7  # 0 = greedy
    top_p: float = 0.95  # nucleus sampling mass
    repetition_penalty: float = 1.1  # >1 discourages tokens already in the row
    max_new_frames: int = 500  # 40 s at 12.5 frames/s, the pretraining length limit
    constrain_audio: bool = True  # only the expected codebook's tokens (and EOS at frame ends)
    seed: int | None = None

    def __post_init__(self):
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.repetition_penalty <= 0:
            raise ConfigError("need temperature >= 0, 0 < top_p <= 1, repetition_penalty > 0")
        if self.max_new_frames < 1:
            raise ConfigError("max_new_frames must be at least 1")


@dataclass
class GeneratedRow:
    codes: np.ndarray  # (frames, 4)
    token_ids: list[int]  # prompt + generated tokens
    positions: list[float]  # position of every fed element, speaker slot included
    hit_length_cap: bool  # stopped by max_new_frames, not by end of speech
    step_logits: list[torch.Tensor] = field(default_factory=list)  # raw logits, if kept


class _Row:
    """Bookkeeping of one batch row during generation."""

    def __init__(self, prompt: list[int], audio_step: float, speaker: bool):
        self.ids = list(prompt)
        self.tracker = tokens.PositionTracker(audio_step, speaker_slot=speaker)
        self.positions = tokens.frame_positions(prompt, audio_step, speaker_slot=speaker).tolist()
        self.tracker.extend(prompt)
        self.generated = 0
        self.done = False
        self.logits: list[torch.Tensor] = []

    def allowed(self) -> tuple[int, int, bool]:
        """Id range of the next audio token, and whether end of speech may come now."""
        audio = self.tracker.audio_count
        start = tokens.AUDIO_TOKENS_START + tokens.CODEBOOK_SIZE * (audio % tokens.TOKENS_PER_FRAME)
        return start, start + tokens.CODEBOOK_SIZE, audio % tokens.TOKENS_PER_FRAME == 0


@torch.no_grad()
def generate(
    model: KaniTTS2ForCausalLM,
    prompts: list[list[int]],
    speaker_embs: torch.Tensor | None = None,
    sampling: SamplingConfig = SamplingConfig(),
    *,
    keep_logits: bool = False,
) -> list[GeneratedRow]:
    """Generate audio codes for each prompt (from ``tokens.prompt_ids``); one row per prompt."""
    if not prompts:
        return []
    if any(p[-1] != tokens.START_OF_SPEECH for p in prompts):
        raise ConfigError("each prompt must end with start-of-speech (see tokens.prompt_ids)")
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu")
    gen.manual_seed(sampling.seed if sampling.seed is not None else torch.seed())
    has_spk = speaker_embs is not None
    rows = [_Row(p, model.audio_step, has_spk) for p in prompts]
    embeds, mask, positions = _prefill_inputs(model, rows, prompts, speaker_embs, device)
    out = model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                use_cache=True, logits_to_keep=1)
    cache, length = out.past_key_values, embeds.shape[1]
    max_tokens = sampling.max_new_frames * tokens.TOKENS_PER_FRAME + 1
    for _ in range(max_tokens):
        logits = out.logits[:, -1, :].float().cpu()
        next_ids = [_pick(row, logits[i], sampling, gen, keep_logits) for i, row in enumerate(rows)]
        if all(row.done for row in rows):
            break
        step_pos = [row.tracker.push(t) if not row.done or t != tokens.PAD else 0.0
                    for row, t in zip(rows, next_ids)]
        for row, t, p in zip(rows, next_ids, step_pos):
            if not (row.done and t == tokens.PAD):
                row.ids.append(t)
                row.positions.append(p)
            if t == tokens.END_OF_SPEECH:
                row.done = True
        mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=mask.dtype, device=device)], 1)
        out = model(
            input_ids=torch.tensor(next_ids, device=device)[:, None],
            attention_mask=mask,
            position_ids=torch.tensor(step_pos, device=device)[:, None],
            past_key_values=cache,
            use_cache=True,
            cache_position=torch.tensor([length], device=device),
        )
        cache, length = out.past_key_values, length + 1
        if all(row.done for row in rows):
            break
    return [_result(row, len(p)) for row, p in zip(rows, prompts)]


def _prefill_inputs(model, rows, prompts, speaker_embs, device):
    """Left-padded prompt embeddings (speaker slot inserted), mask and positions."""
    embed = model.model.embed_tokens
    seqs = []
    for i, prompt in enumerate(prompts):
        e = embed(torch.tensor(prompt, device=device))[None]
        if speaker_embs is not None:
            spk = model.model.speaker_emb_projection(speaker_embs[i:i + 1].to(device, e.dtype))
            e = insert_at_one(e, spk)
        seqs.append(e[0])
    width = max(len(s) for s in seqs)
    hidden = seqs[0].shape[-1]
    embeds = torch.zeros(len(seqs), width, hidden, dtype=seqs[0].dtype, device=device)
    mask = torch.zeros(len(seqs), width, dtype=torch.long, device=device)
    positions = torch.zeros(len(seqs), width, dtype=torch.float32, device=device)
    for i, (s, row) in enumerate(zip(seqs, rows)):
        embeds[i, width - len(s):] = s
        mask[i, width - len(s):] = 1
        positions[i, width - len(s):] = torch.tensor(row.positions, dtype=torch.float32)
    return embeds, mask, positions


def _pick(row: _Row, logits: torch.Tensor, sampling: SamplingConfig, gen, keep: bool) -> int:
    """Choose the next token of one row (PAD once the row has finished)."""
    if row.done:
        return tokens.PAD
    if keep:
        row.logits.append(logits.clone())
    if row.generated >= sampling.max_new_frames * tokens.TOKENS_PER_FRAME:
        row.done = True
        return tokens.PAD
    row.generated += 1
    scores = _penalise(logits.clone(), row.ids, sampling.repetition_penalty)
    if sampling.constrain_audio:
        lo, hi, may_stop = row.allowed()
        allowed = torch.full_like(scores, float("-inf"))
        allowed[lo:hi] = 0
        if may_stop:
            allowed[tokens.END_OF_SPEECH] = 0
        scores = scores + allowed
    return _sample(scores, sampling, gen)


def _penalise(scores: torch.Tensor, seen: list[int], penalty: float) -> torch.Tensor:
    if penalty == 1.0:
        return scores
    idx = torch.tensor(sorted(set(seen)), dtype=torch.long)
    picked = scores[idx]
    scores[idx] = torch.where(picked > 0, picked / penalty, picked * penalty)
    return scores


def _sample(scores: torch.Tensor, sampling: SamplingConfig, gen) -> int:
    if sampling.temperature == 0:
        return int(scores.argmax())
    probs = torch.softmax(scores / sampling.temperature, dim=-1)
    if sampling.top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        before = sorted_probs.cumsum(0) - sorted_probs
        sorted_probs[before >= sampling.top_p] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=gen))


def _result(row: _Row, prompt_len: int) -> GeneratedRow:
    generated = row.ids[prompt_len:]
    codes = tokens.parse_codes([tokens.START_OF_SPEECH, *generated], strict=False)
    return GeneratedRow(
        codes=codes,
        token_ids=row.ids,
        positions=row.positions,
        hit_length_cap=tokens.END_OF_SPEECH not in generated,
        step_logits=row.logits,
    )
