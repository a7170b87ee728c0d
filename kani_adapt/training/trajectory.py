"""The log-likelihood of a generated utterance under the generator's sampling policy, end of
speech included: the one definition that preference pairs (reference log-probabilities) and the
``dpo`` objective (policy log-probabilities) both compute.

Generation (:mod:`kani_adapt.models.generator.generate`, ``constrain_audio`` on) samples every
token from a restricted set: at a **frame boundary** (right after start of speech, and after the
4th token of every frame) from end of speech and the 4032 ids of codebook 0; inside a frame from
the 4032 ids of the codebook due. A rollout of ``T`` whole frames ``y_0 .. y_{T-1}`` (4 codes
each) then has, with ``h_b`` the hidden state at boundary ``b`` (the position of start of speech
for ``b = 0``, of the last code of frame ``b - 1`` otherwise) and ``p_b`` the probability of end
of speech there among {end of speech} + codebook 0::

    log pi(y | x) =  sum_{b=0}^{T-1} [ log(1 - p_b)                 (not ending: the stop term)
                                       + log q0(y_b,0 | h_b)         (codebook 0 among its ids)
                                       + sum_{c=1}^{3} log qc(y_b,c | ...) ]
                   + log p_T          (ending after the last frame; absent when the rollout was
                                       truncated by the frame cap)

``log(1 - p_b) + log q0`` is exactly the probability generation gave codebook 0 among end of
speech and codebook 0, so the sum is the probability of the rollout under the policy that
sampled it at temperature 1 (tests/training/test_trajectory.py checks it against the sampler's
own logits). The **stop terms** (``log(1 - p_b)`` at every non-final boundary, ``log p_T`` at the
last) are what carry a preference to the end-of-speech decision: the token terms are normalised
over audio ids only and cannot move it. Boundary ``0`` counts as a decision too: an utterance may
end before its first frame (an empty rollout is ``log p_0``).

``floor`` bounds each stop term away from 0 and 1 smoothly (``p -> floor + (1 - 2 floor) p``),
so one saturated decision cannot dominate a sum while its gradient keeps its sign (a hard clamp
would give saturated decisions no gradient at all). ``floor = 0`` is the exact likelihood.
Length normalisation divides by ``max(T, 1)`` frames. Temperature, top-p and the repetition
penalty are sampling choices, not part of the policy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from kani_adapt import tokens

CB = tokens.CODEBOOK_SIZE
FRAME = tokens.TOKENS_PER_FRAME


@dataclass
class Trajectory:
    """Per-row sums (not means) of the log-likelihood's parts, and the frame counts."""

    token_lp: torch.Tensor  # (B,) sum of the codebook terms
    stop_lp: torch.Tensor  # (B,) sum of the stop terms (not ending at each boundary, ending at the last)
    frames: torch.Tensor  # (B,) T

    def combined(self, normalise: bool = True) -> torch.Tensor:
        total = self.token_lp + self.stop_lp
        return total / self.frames.clamp(min=1) if normalise else total


@dataclass(frozen=True)
class Rollout:
    """One utterance as the policy produced it: the prompt it answered (laid out as generation
    lays it out, ending with start of speech), its (frames, 4) codes and whether the frame cap
    cut it."""

    prompt: Sequence[int]
    codes: np.ndarray
    truncated: bool
    speaker: np.ndarray | None = None  # 128-d embedding (None: unconditioned)


def batch(rollouts: Sequence[Rollout]) -> dict[str, torch.Tensor]:
    """Right-padded rows of ``prompt + audio tokens`` (no end of speech: the last frame's hidden
    state decides it), with where each row's audio starts, its frames and truncation."""
    seqs = [list(r.prompt) + tokens.codes_to_tokens(np.asarray(r.codes).reshape(-1, FRAME))
            for r in rollouts]
    if any(list(r.prompt[-1:]) != [tokens.START_OF_SPEECH] for r in rollouts):
        raise ValueError("a rollout's prompt must end with start of speech (tokens.prompt_ids)")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), tokens.PAD, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    out = {"input_ids": ids, "attention_mask": mask,
           "audio_start": torch.tensor([len(r.prompt) for r in rollouts]),
           "frames": torch.tensor([len(np.asarray(r.codes).reshape(-1, FRAME)) for r in rollouts]),
           "truncated": torch.tensor([bool(r.truncated) for r in rollouts])}
    speakers = [r.speaker for r in rollouts]
    if any(s is not None for s in speakers):
        if any(s is None for s in speakers):
            raise ValueError("a batch mixes rollouts with and without a speaker embedding")
        out["speaker_emb"] = torch.from_numpy(np.stack(speakers).astype(np.float32))
    return out


def head_rows(model, ids: torch.Tensor) -> torch.Tensor:
    """Rows ``ids`` of the output layer as the model applies it: the tied LM head, and where
    PEFT trains single rows of it (``lora.stop_row``: its trainable tokens), those rows as
    trained."""
    head = model.lm_head
    layer = head.token_adapter if hasattr(head, "token_adapter") else head
    base = layer.base_layer if hasattr(layer, "base_layer") else layer
    rows = base.weight[ids]
    if layer is head or getattr(layer, "disable_adapters", False) or getattr(layer, "merged", False):
        return rows
    for name in layer.active_adapters:
        if name not in layer.trainable_tokens_delta:
            continue
        trained = layer.trainable_tokens_delta[name]
        for k, token in enumerate(layer.token_indices[name]):
            rows = torch.where((ids == token)[:, None], trained[k].to(rows.dtype), rows)
    return rows


def _floored(logp: torch.Tensor, floor: float) -> torch.Tensor:
    """log(floor + (1 - 2 floor) p) from log p, without leaving log space."""
    if floor <= 0:
        return logp
    return torch.logaddexp(torch.full_like(logp, math.log(floor)), logp + math.log1p(-2 * floor))


def logprobs(model, rows: dict[str, torch.Tensor], floor: float = 1e-4,
             stop: bool = True) -> Trajectory:
    """The trajectory log-likelihood of every row of ``rows`` (:func:`batch`) under ``model``
    (the module docstring defines it). ``stop=False`` leaves the stop terms out (they are then
    zero): a comparison for tests and ablations, not a setting."""
    device = next(model.parameters()).device
    ids = rows["input_ids"].to(device)
    spk = rows.get("speaker_emb")
    hidden = model.hidden_states(input_ids=ids, attention_mask=rows["attention_mask"].to(device),
                                 speaker_emb=None if spk is None else spk.to(device))
    shift = 1 if spk is not None else 0  # the speaker slot sits at index 1
    start = rows["audio_start"].to(device)[:, None]
    frames = rows["frames"].to(device)
    most = int(frames.max()) if len(frames) else 0
    t = torch.arange(most + 1, device=device)[None]
    # Boundary b predicts codebook 0 of frame b, or the end: the position before that token.
    bound = (start - 1 + FRAME * t + shift).clamp(max=hidden.shape[1] - 1)
    h_bound = hidden.gather(1, bound[..., None].expand(-1, -1, hidden.shape[-1]))
    cb0 = torch.arange(CB, device=device) + tokens.AUDIO_TOKENS_START
    eos = torch.tensor([tokens.END_OF_SPEECH], device=device)
    cb0_logits = (h_bound @ head_rows(model, cb0).T).float()  # (B, T+1, CB)
    eos_logit = (h_bound @ head_rows(model, eos).T).float()[..., 0]
    lse_cb0 = cb0_logits.logsumexp(-1)
    lse_all = torch.logaddexp(lse_cb0, eos_logit)
    log_end, log_go = eos_logit - lse_all, lse_cb0 - lse_all
    before_last = t < frames[:, None]  # boundaries 0 .. T-1: the utterance went on
    last = (t == frames[:, None]) & ~rows["truncated"].to(device)[:, None]
    stop_lp = (_floored(log_go, floor) * before_last + _floored(log_end, floor) * last).sum(1)
    token_lp = torch.zeros(len(frames), device=device)
    if most:
        codes = (ids.gather(1, (start + torch.arange(FRAME * most, device=device)[None])
                            .clamp(max=ids.shape[1] - 1)) - tokens.AUDIO_TOKENS_START)
        codes = codes.view(len(frames), most, FRAME) % CB
        valid = (t[:, :most] < frames[:, None]).float()
        first = cb0_logits[:, :most].gather(-1, codes[..., :1])[..., 0] - lse_cb0[:, :most]
        token_lp = token_lp + (first * valid).sum(1)
        for c in range(1, FRAME):
            at = (start - 1 + FRAME * t[:, :most] + c + shift).clamp(max=hidden.shape[1] - 1)
            h = hidden.gather(1, at[..., None].expand(-1, -1, hidden.shape[-1]))
            rows_c = torch.arange(CB, device=device) + tokens.AUDIO_TOKENS_START + c * CB
            logits = (h @ head_rows(model, rows_c).T).float()
            picked = logits.gather(-1, codes[..., c:c + 1])[..., 0] - logits.logsumexp(-1)
            token_lp = token_lp + (picked * valid).sum(1)
    if not stop:
        stop_lp = torch.zeros_like(stop_lp)
    return Trajectory(token_lp, stop_lp, frames.float())


def reference(model, rollouts: Sequence[Rollout], floor: float, batch_size: int = 8,
              normalise: bool = True) -> list[float]:
    """Each rollout's :meth:`Trajectory.combined` log-likelihood under ``model``, without
    gradients (the reference log-probabilities a pairs file stores). Batches never mix
    conditioned and unconditioned rollouts."""
    out: list[float | None] = [None] * len(rollouts)
    for conditioned in (True, False):
        index = [i for i, r in enumerate(rollouts) if (r.speaker is not None) == conditioned]
        for k in range(0, len(index), batch_size):
            part = index[k:k + batch_size]
            with torch.no_grad():
                got = logprobs(model, batch([rollouts[i] for i in part]), floor).combined(normalise)
            for i, value in zip(part, got.tolist()):
                out[i] = float(value)
    return out  # type: ignore[return-value]
