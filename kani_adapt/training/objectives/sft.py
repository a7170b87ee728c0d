"""``objective: sft``: supervised next-token loss over the tokenized dataset's rows.

Batches are the length-aware, step-indexed ones of :class:`kani_adapt.training.data.GeneratorData`
(held-out speakers for validation, replay mixed in); the loss is the mean cross-entropy over
every scored position (all tokens or audio only, ``data.loss_on``), with the speaker slot
masked; the figures logged are the loss per token group, perplexity per codebook, padding
efficiency and real tokens per second.
"""
from __future__ import annotations

import time

import torch

from kani_adapt import tokens
from kani_adapt.models.generator.model import insert_at_one
from kani_adapt.training.losses import (GROUPS, chunked_token_losses, group_stats, losses_from,
                                        mean_loss, perplexity)
from kani_adapt.training.losses import token_losses as full_token_losses


class Supervised:
    name = "sft"
    help = "next-token loss on the dataset's rows (continued pretraining or supervised LoRA)"

    def data(self, cfg, tokenizer, token_budget=None):
        from kani_adapt.training.data import GeneratorData

        return GeneratorData(cfg, tokenizer, token_budget)

    def meter(self) -> "StepMeter":
        return StepMeter()

    def training_loss(self, module, batch) -> torch.Tensor:
        per_token, labels = token_losses(module, batch)
        loss = mean_loss(per_token, labels)
        # Metrics stay on the device; they are read (one sync) at the log interval only.
        module.meter.add(loss.detach(), *group_stats(per_token, labels), batch["attention_mask"])
        return loss

    def losses(self, module, batch) -> dict[str, torch.Tensor]:
        return losses_from(*token_losses(module, batch))

    def weight(self, batch) -> int:
        return int((batch["labels"] != tokens.IGNORE_INDEX).sum())

    def probe_batch(self, module, budget: int, longest: int) -> dict[str, torch.Tensor]:
        """Rows of the longest training length filling ``budget`` (what batching allows at most)."""
        device = module.device
        length = min(longest, budget)
        rows = max(1, budget // length)
        ids = torch.randint(tokens.AUDIO_TOKENS_START, tokens.VOCAB_SIZE, (rows, length),
                            device=device)
        batch = {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}
        if module.cfg.data.use_speaker_emb:
            batch["speaker_emb"] = torch.randn(rows, 128, device=device)
        return batch


def token_losses(module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position loss (B, L') of the module's model and the labels it belongs to (speaker
    slot included)."""
    labels = batch["labels"]
    spk = batch.get("speaker_emb")
    inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                  speaker_emb=spk)
    if spk is not None:
        labels = insert_at_one(labels, torch.full_like(labels[:, 0], tokens.IGNORE_INDEX))
    chunk = module.cfg.model.loss_chunk
    if chunk:
        hidden = module.kani.hidden_states(**inputs)
        return chunked_token_losses(hidden, module.kani.lm_head, labels, chunk), labels
    return full_token_losses(module.kani(**inputs, use_cache=False).logits, labels), labels


class StepMeter:
    """Training metrics summed on the device between log intervals and read with one sync.

    Layout of the running sum: loss, steps, per-group loss sums, per-group token counts, real
    tokens, padded tokens. Tokens/s covers the steps since the previous read, timed after a
    device sync so that queued GPU work is counted.
    """

    def __init__(self):
        self.total: torch.Tensor | None = None
        self.tick: float | None = None

    def add(self, loss, group_sums, group_counts, mask: torch.Tensor) -> None:
        one = torch.ones(1, device=loss.device)
        row = torch.cat([loss.float()[None], one, group_sums.float(), group_counts.float(),
                         mask.sum().float()[None], one * mask.numel()])
        self.total = row if self.total is None else self.total + row

    def reset(self) -> None:
        self.total = None

    def flush(self) -> dict[str, float]:
        if self.total is None:
            return {}
        if self.total.is_cuda:
            torch.cuda.synchronize(self.total.device)
        now = time.perf_counter()
        values = self.total.tolist()
        self.total = None
        g = len(GROUPS)
        loss, steps, sums, counts = values[0], values[1], values[2:2 + g], values[2 + g:2 + 2 * g]
        real, padded = values[-2], values[-1]
        out = {"loss": loss / steps, "padding_efficiency": real / padded}
        if self.tick is not None:
            out["real_tokens_per_s"] = real / max(now - self.tick, 1e-9)
        self.tick = now
        for name, total, count in zip(GROUPS, sums, counts):
            if count:
                out[f"loss_{name}"] = total / count
                if name.startswith("cb"):
                    out[f"ppl_{name}"] = perplexity(total / count)
        return out


OBJECTIVE = Supervised()
