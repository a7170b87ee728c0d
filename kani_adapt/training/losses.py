"""Token-level losses split by what the target token is: each codebook, text, control.

Two ways to the same per-token losses: from full logits (``token_losses``), or from the final
hidden states and the LM head a slice of positions at a time (``chunked_token_losses``). The
second never holds more than one slice's fp32 logits: each slice is checkpointed, so backward
recomputes its logits instead of keeping every slice's (the full L x 80,538 fp32 logits are
most of a step's memory once activations are checkpointed).

Reductions are fixed-shape masked sums, never boolean indexing, so the training step does not
wait for the device.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from kani_adapt import tokens

GROUPS = [*(f"cb{c}" for c in range(tokens.TOKENS_PER_FRAME)), "text", "control"]


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


def shift_labels(labels: torch.Tensor) -> torch.Tensor:
    """Target of each position (the next label); the last position has none."""
    # Shift the labels, not the logits: slicing the (B, L, 80538) logits would copy them.
    return F.pad(labels, (0, 1), value=tokens.IGNORE_INDEX)[:, 1:]


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position next-token loss (B, L), fp32, 0 where there is no target; labels unshifted."""
    target = shift_labels(labels)
    per_token = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1),
                                ignore_index=tokens.IGNORE_INDEX, reduction="none")
    return per_token.view(target.shape)


def _slice_losses(head, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), target, ignore_index=tokens.IGNORE_INDEX,
                           reduction="none")


def chunked_token_losses(hidden: torch.Tensor, head: torch.nn.Module, labels: torch.Tensor,
                         chunk: int = 64) -> torch.Tensor:
    """``token_losses(head(hidden), labels)`` computed ``chunk`` positions at a time."""
    target = shift_labels(labels).reshape(-1)
    flat = hidden.reshape(-1, hidden.shape[-1])
    parts = []
    for start in range(0, flat.shape[0], chunk):
        h, t = flat[start:start + chunk], target[start:start + chunk]
        if torch.is_grad_enabled() and (h.requires_grad or any(
                p.requires_grad for p in head.parameters())):
            parts.append(checkpoint(_slice_losses, head, h, t, use_reentrant=False))
        else:
            parts.append(_slice_losses(head, h, t))
    return torch.cat(parts).view(labels.shape)


def group_stats(per_token: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss and token count per group (``GROUPS`` order), detached; labels unshifted."""
    masks = target_groups(shift_labels(labels))
    stacked = torch.stack([masks[g] for g in GROUPS])  # (G, B, L)
    sums = (per_token.detach()[None] * stacked).flatten(1).sum(1)
    return sums, stacked.flatten(1).sum(1)


def mean_loss(per_token: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over all positions with a target (the training loss)."""
    valid = shift_labels(labels) != tokens.IGNORE_INDEX
    return (per_token * valid).sum() / valid.sum().clamp(min=1)


def losses_from(per_token: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """``loss`` and the mean loss of every group that has targets (``loss_cb0`` ...); the group
    check reads counts on the host, so this is for evaluation, not the training step."""
    out = {"loss": mean_loss(per_token, labels)}
    sums, counts = group_stats(per_token, labels)
    for name, total, n in zip(GROUPS, sums, counts.tolist()):
        if n:
            out[f"loss_{name}"] = total / n
    return out


def causal_lm_losses(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean next-token loss over all labelled tokens (``loss``) and per target group
    (``loss_cb0`` .. ``loss_cb3``, ``loss_text``, ``loss_control``); labels are unshifted."""
    return losses_from(token_losses(logits, labels), labels)


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))
