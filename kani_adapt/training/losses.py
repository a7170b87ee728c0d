"""Token-level losses split by what the target token is: each codebook, text, control."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kani_adapt import tokens


def target_groups(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean masks over (already shifted) labels: cb0..cb3, text, control."""
    valid = labels != tokens.IGNORE_INDEX
    groups = {}
    for c in range(tokens.TOKENS_PER_FRAME):
        lo = tokens.AUDIO_TOKENS_START + c * tokens.CODEBOOK_SIZE
        groups[f"cb{c}"] = valid & (labels >= lo) & (labels < lo + tokens.CODEBOOK_SIZE)
    groups["text"] = valid & (labels < tokens.TEXT_VOCAB_SIZE)
    groups["control"] = valid & (labels >= tokens.TEXT_VOCAB_SIZE) & (
        labels < tokens.AUDIO_TOKENS_START)
    return groups


def causal_lm_losses(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean next-token loss over all labelled tokens (``loss``) and per target group
    (``loss_cb0`` .. ``loss_cb3``, ``loss_text``, ``loss_control``); labels are unshifted."""
    # Shift the labels, not the logits: slicing the (B, L, 80538) logits would copy them.
    labels = F.pad(labels, (0, 1), value=tokens.IGNORE_INDEX)[:, 1:]
    per_token = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                ignore_index=tokens.IGNORE_INDEX, reduction="none")
    per_token = per_token.view(labels.shape)
    valid = labels != tokens.IGNORE_INDEX
    out = {"loss": per_token[valid].sum() / valid.sum().clamp(min=1)}
    for name, mask in target_groups(labels).items():
        if mask.any():
            out[f"loss_{name}"] = per_token[mask].mean().detach()
    return out


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))
