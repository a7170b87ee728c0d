"""Training health, the same for every objective: figures that tell a run that adapts from one
that degrades before the audio does (what gepard-train's dashboards watch, MODEL_GUIDE 12.7).

- **Loss**: a step whose loss is not finite, or exactly zero, is counted on the device; at each
  log interval the counts are logged (``health/nonfinite_loss_steps``,
  ``health/zero_loss_steps``) and a warning line names them. (A micro-batch without a scored
  target gives a zero loss by construction, not NaN: ``losses.mean_loss``.)
- **Gradient balance**: where the embedding trains (full fine-tunes), the gradient norm of the
  audio-token rows against that of the text-token rows at each log interval
  (``health/grad_norm_audio``, ``health/grad_norm_text``, ``health/grad_ratio`` = audio over
  text); a ratio above ``GRAD_RATIO_BOUND`` or below its inverse (the two sides more than an
  order of magnitude apart: upstream's "healthy" band) gets a warning line.
- **Text embedding drift**: full fine-tunes log the mean cosine of a fixed sample of text-token
  rows to their values at the start of the run (``health/text_emb_cos_to_init``; the module is
  built from the run's starting weights before a checkpoint is restored, so a resumed run
  compares with the true start too); below ``COSINE_ALARM`` a warning
  line says the pretrained text table is being rotated away (upstream: under 0.75 in the first
  10-20k steps, cut the embedding's learning rate).

Every figure is read on the host at the log interval only.
"""
from __future__ import annotations

import logging
import numpy as np
import torch

from kani_adapt import tokens

log = logging.getLogger("kani_adapt.train")
GRAD_RATIO_BOUND = 10.0
COSINE_ALARM = 0.75
TEXT_ROWS = 8192  # rows sampled (seed 0) for the cosine; all of them when fewer


class LossWatch:
    """Steps with a non-finite or zero loss, counted on the device."""

    def __init__(self):
        self.counts: torch.Tensor | None = None

    def add(self, loss: torch.Tensor) -> None:
        loss = loss.detach().float()
        row = torch.stack([(~torch.isfinite(loss)).float(), (loss == 0).float()])
        self.counts = row if self.counts is None else self.counts + row

    def flush(self, step: int) -> dict[str, float]:
        if self.counts is None:
            return {}
        bad, zero = self.counts.tolist()
        self.counts = None
        if bad:
            log.warning("step %d: %d step(s) since the last log had a loss that is not finite; "
                        "check the data and the learning rate", step, int(bad))
        if zero:
            log.warning("step %d: %d step(s) since the last log had a loss of exactly 0 (no "
                        "scored targets, or nothing left to learn)", step, int(zero))
        return {"nonfinite_loss_steps": bad, "zero_loss_steps": zero}


def embedding(model) -> torch.nn.Parameter | None:
    """The token embedding's weight when it trains (tied to the LM head), else None."""
    weight = model.get_input_embeddings().weight
    # a leaf that trains; under PEFT's trained rows the weight is computed (not a leaf): the
    # table itself is frozen then
    return weight if weight.requires_grad and weight.is_leaf else None


def grad_balance(model) -> dict[str, float] | None:
    """Gradient norms of the audio-token and text-token rows of the embedding, and their ratio
    (None where the embedding does not train or has no gradient)."""
    weight = embedding(model)
    if weight is None or weight.grad is None:
        return None
    grad = weight.grad.detach().float()
    audio = grad[tokens.AUDIO_TOKENS_START:].norm()
    text = grad[:tokens.TEXT_VOCAB_SIZE].norm()
    audio, text = float(audio), float(text)
    ratio = audio / text if text > 0 else float("inf")
    return {"grad_norm_audio": audio, "grad_norm_text": text, "grad_ratio": ratio}


def out_of_balance(ratio: float, bound: float = GRAD_RATIO_BOUND) -> bool:
    return not (1 / bound <= ratio <= bound)


class TextDrift:
    """Cosine of sampled text-token rows to their values when this object was made (the start
    of the run)."""

    def __init__(self, model):
        weight = model.get_input_embeddings().weight
        pick = np.random.default_rng(0).permutation(tokens.TEXT_VOCAB_SIZE)[:TEXT_ROWS]
        self.index = torch.from_numpy(np.sort(pick))
        self.start = weight.detach()[self.index].float().cpu().contiguous()

    def cosine(self, model) -> float:
        weight = model.get_input_embeddings().weight.detach()
        now = weight[self.index.to(weight.device)].float()
        return float(torch.nn.functional.cosine_similarity(now, self.start.to(now.device), dim=-1).mean())
