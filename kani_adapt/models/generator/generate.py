"""Batched generation with a KV cache and per-row frame-level positions.

Each row is prompted with ``SOH BOS text EOT EOH SOA SOS`` (optionally with a speaker slot at
index 1) and left-padded; padded positions are masked and zeroed inside the model. Every fed
token gets the position it would have in training (``tokens.PositionTracker``), so cached
generation sees exactly the positions the model was trained on.

Onset-only classifier-free guidance (``sampling.cfg_scale``, ``sampling.cfg_frames``): a second,
unconditional branch runs beside the batch for the first ``cfg_frames`` frames. Its prompt is
the row's prompt without the text, ``SOH BOS EOT EOH SOA SOS`` (no tag either), with the same
speaker embedding, and it is fed the tokens the guided rows pick, at its own positions. The
logits sampled from are ``cond + (cfg_scale - 1) * (cond - uncond)``: exactly the plain logits at
scale 1. The unconditional branch means something only for a model that saw text-less rows in
training (``data.text_dropout``); after ``cfg_frames`` the branch stops and costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from kani_adapt import tokens
from kani_adapt.core.errors import ConfigError
from kani_adapt.models.generator.model import KaniTTS2ForCausalLM, insert_at_one
from kani_adapt.config.sampling import SamplingConfig  # the one sampling section (kani_adapt/config/sampling.py)


@dataclass
class GeneratedRow:
    codes: np.ndarray  # (frames, 4)
    token_ids: list[int]  # prompt + generated tokens
    positions: list[float]  # position of every fed element, speaker slot included
    hit_length_cap: bool  # stopped by max_frames, not by end of speech
    step_logits: list[torch.Tensor] = field(default_factory=list)  # raw logits, if kept
    # Mean entropy of the next audio token over the first ONSET_FRAMES frames, divided by the
    # entropy of a uniform choice (1.0): a derailed generation stays flat and high, a clean one
    # drops as the model locks on (gepard-train MODEL_GUIDE 5.1). NaN: no audio step.
    onset_entropy: float = float("nan")


STOP_CHECK_EVERY = 8  # steps between reads of the device-side "all rows done" flag
ONSET_FRAMES = 50


@torch.no_grad()
def generate(
    model: KaniTTS2ForCausalLM,
    prompts: list[list[int]],
    speaker_embs: torch.Tensor | None = None,
    sampling: SamplingConfig = SamplingConfig(),
    *,
    keep_logits: bool = False,
    caps: list[int] | None = None,
) -> list[GeneratedRow]:
    """Generate audio codes for each prompt (from ``tokens.prompt_ids``); one row per prompt.

    ``caps`` gives each row its own frame cap (at most ``sampling.max_frames``): a row that
    reaches it stops there, as one that hits ``max_frames`` does (``hit_length_cap``).

    Everything per token stays on the model's device: repetition penalty, the codebook
    constraint, temperature, top-p and sampling are batched tensor operations, and whether
    every row has finished is read every ``STOP_CHECK_EVERY`` steps (rows that finish earlier
    are fed padding meanwhile, as in any batch).
    """
    if not prompts:
        return []
    if any(p[-1] != tokens.START_OF_SPEECH for p in prompts):
        raise ConfigError("each prompt must end with start-of-speech (see tokens.prompt_ids)")
    device = next(model.parameters()).device
    has_spk = speaker_embs is not None
    embeds, mask, prompt_pos = _prefill_inputs(model, prompts, speaker_embs, device)
    state = _State(model, prompts, has_spk, sampling, device, caps)
    width, rows = embeds.shape[1], len(prompts)
    cap = sampling.max_frames * tokens.TOKENS_PER_FRAME
    if caps is not None:
        cap = min(cap, max(caps) * tokens.TOKENS_PER_FRAME)
    full_mask = torch.cat([mask, torch.ones(rows, cap, dtype=mask.dtype, device=device)], 1)
    cache_pos = torch.arange(width, width + cap, device=device)
    out = model(inputs_embeds=embeds, attention_mask=mask, position_ids=prompt_pos,
                use_cache=True, logits_to_keep=1)
    guide = _Unconditional(model, prompts, speaker_embs, sampling, device) \
        if sampling.cfg_frames > 0 else None
    kept, picked, fed_pos = [], [], []
    for step in range(cap):
        logits = out.logits[:, -1, :].float()
        if guide is not None and step < guide.steps:
            logits = logits + (sampling.cfg_scale - 1) * (logits - guide.logits())
        if keep_logits:
            kept.append((logits.clone(), state.done.clone()))
        next_ids, positions = state.step(logits)
        picked.append(next_ids)
        fed_pos.append(positions)
        if guide is not None and step + 1 < guide.steps:
            guide.feed(next_ids, step)
        if step % STOP_CHECK_EVERY == STOP_CHECK_EVERY - 1 and bool(state.done.all()):
            break
        if step == cap - 1:
            break
        out = model(input_ids=next_ids[:, None], attention_mask=full_mask[:, :width + step + 1],
                    position_ids=positions[:, None].float(), past_key_values=out.past_key_values,
                    use_cache=True, cache_position=cache_pos[step:step + 1])
    if keep_logits and len(picked) == cap:
        # The step that meets the cap still shows its logits (and then picks nothing).
        out = model(input_ids=picked[-1][:, None], attention_mask=full_mask[:, :width + cap],
                    position_ids=fed_pos[-1][:, None].float(), past_key_values=out.past_key_values,
                    use_cache=True, cache_position=cache_pos[cap - 1:cap])
        kept.append((out.logits[:, -1, :].float(), state.done.clone()))
    return _results(prompts, model.audio_step, has_spk, picked, fed_pos, kept, state.entropy)


class _Unconditional:
    """The text-less branch of onset-only guidance: its own cache and positions, fed the tokens
    the guided rows pick (see the module docstring)."""

    def __init__(self, model, prompts, speaker_embs, sampling: SamplingConfig, device):
        self.model = model
        self.steps = sampling.cfg_frames * tokens.TOKENS_PER_FRAME
        bare = [tokens.prompt_ids([tokens.BOS]) for _ in prompts]
        embeds, mask, pos = _prefill_inputs(model, bare, speaker_embs, device)
        self.state = _State(model, bare, speaker_embs is not None, sampling, device)
        self.width = embeds.shape[1]
        self.mask = torch.cat([mask, torch.ones(len(bare), self.steps, dtype=mask.dtype,
                                                device=device)], 1)
        self.cache_pos = torch.arange(self.width, self.width + self.steps, device=device)
        self.out = model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos,
                         use_cache=True, logits_to_keep=1)

    def logits(self) -> torch.Tensor:
        return self.out.logits[:, -1, :].float()

    def feed(self, picked: torch.Tensor, step: int) -> None:
        positions = self.state.advance(picked)
        self.out = self.model(input_ids=picked[:, None],
                              attention_mask=self.mask[:, :self.width + step + 1],
                              position_ids=positions[:, None].float(),
                              past_key_values=self.out.past_key_values, use_cache=True,
                              cache_position=self.cache_pos[step:step + 1])


class _State:
    """Per-row generation state as device tensors: tokens seen, token counts, finished."""

    def __init__(self, model, prompts, has_spk: bool, sampling: SamplingConfig, device,
                 caps: list[int] | None = None):
        rows = len(prompts)
        self.sampling, self.has_spk = sampling, has_spk
        self.audio_step = model.audio_step
        self.seen = torch.zeros(rows, tokens.VOCAB_SIZE, dtype=torch.bool, device=device)
        for i, p in enumerate(prompts):  # once, before the loop
            self.seen[i, torch.tensor(p, device=device)] = True
        audio = [sum(tokens.is_audio(t) for t in p) for p in prompts]
        self.audio = torch.tensor(audio, device=device)
        self.text = torch.tensor([len(p) - a for p, a in zip(prompts, audio)], device=device)
        self.done = torch.zeros(rows, dtype=torch.bool, device=device)
        # each row's audio-token budget (None: the loop's own cap alone)
        self.limit = None if caps is None else self.audio + torch.tensor(
            [min(c, sampling.max_frames) * tokens.TOKENS_PER_FRAME for c in caps], device=device)
        self.offsets = torch.arange(tokens.CODEBOOK_SIZE, device=device)
        self.gen = None
        self.entropy: list[torch.Tensor] = []  # per step: each row's normalised entropy

    def step(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token of every row (PAD for finished rows) and its position."""
        s = self.sampling
        if s.constrain_audio:
            candidates = self._candidates()
            scores = logits.gather(1, candidates)
            seen = self.seen.gather(1, candidates)
        else:
            candidates, scores, seen = None, logits, self.seen
        if s.repetition_penalty != 1.0:
            penalised = torch.where(scores > 0, scores / s.repetition_penalty,
                                    scores * s.repetition_penalty)
            scores = torch.where(seen, penalised, scores)
        if s.constrain_audio:
            may_stop = self.audio % tokens.TOKENS_PER_FRAME == 0
            scores[:, 0] = scores[:, 0].masked_fill(~may_stop, float("-inf"))
        if len(self.entropy) < ONSET_FRAMES * tokens.TOKENS_PER_FRAME:
            self.entropy.append(_entropy(scores[:, 1:] if s.constrain_audio else
                                         scores[:, tokens.AUDIO_TOKENS_START:]))
        choice = _choose(scores, s, self._generator(logits.device))
        picked = choice if candidates is None else candidates.gather(1, choice[:, None])[:, 0]
        picked = picked.masked_fill(self.done, tokens.PAD)
        return picked, self.advance(picked)

    def advance(self, picked: torch.Tensor) -> torch.Tensor:
        """Take ``picked`` as every row's next token; the positions it is fed at."""
        positions = self._positions()
        live = ~self.done
        is_audio = picked >= tokens.AUDIO_TOKENS_START
        self.audio += (live & is_audio).long()
        self.text += (live & ~is_audio).long()
        self.seen.scatter_(1, picked[:, None], True)
        self.done |= picked == tokens.END_OF_SPEECH
        if self.limit is not None:
            self.done |= self.audio >= self.limit
        return positions.masked_fill(~live, 0.0)  # float64, as the tracker's

    def _candidates(self) -> torch.Tensor:
        """End of speech, then the ids of the codebook each row expects next. End of speech
        comes first (it is the smaller id), so greedy ties break as over the whole vocabulary."""
        start = tokens.AUDIO_TOKENS_START + tokens.CODEBOOK_SIZE * (
            self.audio % tokens.TOKENS_PER_FRAME)
        eos = torch.full_like(start, tokens.END_OF_SPEECH)
        return torch.cat([eos[:, None], start[:, None] + self.offsets], 1)

    def _positions(self) -> torch.Tensor:
        """``tokens.PositionTracker.push`` for every row, in float64 as the tracker computes."""
        pos = self.text.double() + (self.audio // tokens.TOKENS_PER_FRAME).double() * self.audio_step
        return pos + 1 if self.has_spk else pos

    def _generator(self, device):
        if self.gen is None:
            self.gen = torch.Generator(device=device)
            seed = self.sampling.seed
            self.gen.manual_seed(seed if seed is not None else torch.seed())
        return self.gen


def _entropy(scores: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(scores) per row over the audio ids, over log(count): 1 = uniform."""
    logp = torch.log_softmax(scores.float(), -1)
    ent = -(logp.exp() * logp).nan_to_num().sum(-1)
    return ent / float(np.log(scores.shape[-1]))


def _choose(scores: torch.Tensor, sampling: SamplingConfig, gen) -> torch.Tensor:
    """Index of the chosen score of every row: greedy, or temperature + top-p sampling."""
    if sampling.temperature == 0:
        return scores.argmax(-1)
    probs = torch.softmax(scores / sampling.temperature, dim=-1)
    if sampling.top_p < 1:
        sorted_probs, order = probs.sort(-1, descending=True)
        before = sorted_probs.cumsum(-1) - sorted_probs
        sorted_probs = sorted_probs.masked_fill(before >= sampling.top_p, 0)
        probs = torch.zeros_like(probs).scatter_(1, order, sorted_probs)
    return torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, generator=gen)[:, 0]


def _prefill_inputs(model, prompts, speaker_embs, device):
    """Left-padded prompt embeddings (speaker slot inserted), mask and positions."""
    embed = model.model.embed_tokens
    seqs, positions = [], []
    for i, prompt in enumerate(prompts):
        e = embed(torch.tensor(prompt, device=device))[None]
        if speaker_embs is not None:
            spk = model.model.speaker_emb_projection(speaker_embs[i:i + 1].to(device, e.dtype))
            e = insert_at_one(e, spk)
        seqs.append(e[0])
        positions.append(tokens.frame_positions(prompt, model.audio_step,
                                                speaker_slot=speaker_embs is not None))
    width = max(len(s) for s in seqs)
    hidden = seqs[0].shape[-1]
    embeds = torch.zeros(len(seqs), width, hidden, dtype=seqs[0].dtype, device=device)
    mask = torch.zeros(len(seqs), width, dtype=torch.long, device=device)
    pos = torch.zeros(len(seqs), width, dtype=torch.float32, device=device)
    for i, (s, p) in enumerate(zip(seqs, positions)):
        embeds[i, width - len(s):] = s
        mask[i, width - len(s):] = 1
        pos[i, width - len(s):] = torch.tensor(p, dtype=torch.float32)
    return embeds, mask, pos


def _results(prompts, audio_step, has_spk, picked, fed_pos, kept, entropy=()) -> list[GeneratedRow]:
    """Rows from the per-step device tensors, read back once."""
    ids = torch.stack(picked, 1).cpu().tolist() if picked else [[] for _ in prompts]
    ent = torch.stack(list(entropy), 1).cpu().numpy() if len(entropy) else None
    pos = torch.stack(fed_pos, 1).cpu().tolist() if fed_pos else [[] for _ in prompts]
    out = []
    for i, prompt in enumerate(prompts):
        generated = ids[i]
        if tokens.END_OF_SPEECH in generated:
            generated = generated[:generated.index(tokens.END_OF_SPEECH) + 1]
        positions = tokens.frame_positions(prompt, audio_step, speaker_slot=has_spk).tolist()
        positions += pos[i][:len(generated)]
        logits = [step[i].cpu() for step, done in kept if not bool(done[i])]
        codes = tokens.parse_codes([tokens.START_OF_SPEECH, *generated], strict=False)
        audio_steps = [k for k, t in enumerate(generated) if t >= tokens.AUDIO_TOKENS_START]
        onset = [float(ent[i, k]) for k in audio_steps if ent is not None and k < ent.shape[1]]
        out.append(GeneratedRow(
            codes=codes, token_ids=[*prompt, *generated], positions=positions,
            hit_length_cap=tokens.END_OF_SPEECH not in generated, step_logits=logits,
            onset_entropy=float(np.mean(onset)) if onset else float("nan")))
    return out
