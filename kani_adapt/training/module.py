"""The Lightning module: continue-pretraining (all weights) or LoRA on the generator."""
from __future__ import annotations

import math
import time

import lightning as L
import torch

from kani_adapt.models.generator.model import insert_at_one
from kani_adapt.core import rng
from kani_adapt import tokens
from kani_adapt.training import lora
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.losses import (GROUPS, chunked_token_losses, group_stats, losses_from,
                                        mean_loss, perplexity, token_losses)


class GeneratorModule(L.LightningModule):
    def __init__(self, cfg: TrainConfig, model):
        super().__init__()
        self.cfg = cfg
        if cfg.mode == "lora":
            self.net = lora.apply_lora(model, cfg.lora)  # PeftModel: adapters + frozen base
        else:
            self.net = model
            for name, param in model.named_parameters():
                if any(name.startswith(prefix) for prefix in cfg.optim.freeze):
                    param.requires_grad_(False)
        if cfg.model.gradient_checkpointing:
            # Non-reentrant: with a frozen base (LoRA) no checkpointed input requires grad, and
            # reentrant checkpointing then fails at the first backward.
            self.kani.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.trainer.compile:
            # In place: parameter names (and so checkpoints) stay as they are. Batches change
            # shape from step to step, hence dynamic shapes.
            self.kani.model.compile(dynamic=True)
        self.sample_hook = None  # set by the run: callable(module) logging generated samples
        self._meter = StepMeter()

    @property
    def kani(self):
        """The KaniTTS2 model itself (with LoRA layers injected in place, in LoRA mode)."""
        return self.net.get_base_model() if self.cfg.mode == "lora" else self.net

    def token_losses(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-position loss (B, L') and the labels it belongs to (speaker slot included)."""
        labels = batch["labels"]
        spk = batch.get("speaker_emb")
        inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      speaker_emb=spk)
        if spk is not None:
            labels = insert_at_one(labels, torch.full_like(labels[:, 0], tokens.IGNORE_INDEX))
        chunk = self.cfg.model.loss_chunk
        if chunk:
            hidden = self.kani.hidden_states(**inputs)
            return chunked_token_losses(hidden, self.kani.lm_head, labels, chunk), labels
        return token_losses(self.kani(**inputs, use_cache=False).logits, labels), labels

    def forward_losses(self, batch) -> dict[str, torch.Tensor]:
        return losses_from(*self.token_losses(batch))

    def training_step(self, batch, batch_idx):
        per_token, labels = self.token_losses(batch)
        loss = mean_loss(per_token, labels)
        # Metrics stay on the device; they are read (one sync) at the log interval only.
        self._meter.add(loss.detach(), *group_stats(per_token, labels), batch["attention_mask"])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self._log_now():
            self._log_train(self._meter.flush())

    def _log_now(self) -> bool:
        trainer = self._trainer
        return trainer is not None and trainer._logger_connector.should_update_logs

    def _log_train(self, m: dict) -> None:
        if not m:
            return
        self.log("train/loss", m["loss"], prog_bar=True)
        self.log("train/padding_efficiency", m["padding_efficiency"])
        if "real_tokens_per_s" in m:
            self.log("train/real_tokens_per_s", m["real_tokens_per_s"], prog_bar=True)
        for name in GROUPS:
            if f"loss_{name}" in m:
                self.log(f"train/loss_{name}", m[f"loss_{name}"])
                if name.startswith("cb"):
                    self.log(f"train/ppl_{name}", perplexity(m[f"loss_{name}"]))
        for layer, rope in enumerate(self.kani.model.learnable_rope_layers):
            if rope is not None:
                self.log(f"rope/alpha_layer{layer}", float(rope.alpha().detach()))

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        out = self.forward_losses(batch)
        prefix = "val" if dataloader_idx == 0 else "val_replay"
        n = int((batch["labels"] != tokens.IGNORE_INDEX).sum())
        for key, value in out.items():
            self.log(f"{prefix}/{key}", value, batch_size=n, add_dataloader_idx=False,
                     sync_dist=True)

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            return
        metrics = self.trainer.callback_metrics
        for c in range(tokens.TOKENS_PER_FRAME):
            key = f"val/loss_cb{c}"
            if key in metrics:
                self.log(f"val/ppl_cb{c}", perplexity(float(metrics[key])), sync_dist=True)
        if self.sample_hook is not None and self.trainer.is_global_zero:
            self.sample_hook(self)

    def configure_optimizers(self):
        o = self.cfg.optim
        groups = {"decay": [], "no_decay": [], "rope": []}
        for name, param in self.net.named_parameters():
            if not param.requires_grad:
                continue
            key = "rope" if name.endswith("alpha_weight") else (
                "no_decay" if param.ndim < 2 else "decay")
            groups[key].append(param)
        params = [
            {"params": groups["decay"], "weight_decay": o.weight_decay, "lr": o.lr},
            {"params": groups["no_decay"], "weight_decay": 0.0, "lr": o.lr},
            {"params": groups["rope"], "weight_decay": 0.0, "lr": o.lr * o.rope_lr_ratio},
        ]
        # Fused AdamW: one kernel for all parameters instead of several per tensor, and no read
        # of the step count on the host (the unfused version reads it for every parameter).
        # fp16 AMP unscales through a gradient scaler, which a fused optimizer takes over.
        fused = next(self.net.parameters()).device.type in ("cuda", "cpu") and not (
            self.cfg.trainer.precision.startswith("16"))
        optimizer = torch.optim.AdamW([g for g in params if g["params"]], betas=tuple(o.betas),
                                      fused=fused or None)
        total = self.cfg.trainer.max_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, o.warmup_steps, total, o.min_lr_ratio))
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def configure_callbacks(self):
        # The progress bar (a terminal only: elsewhere ProgressLog writes one line per log
        # interval) reads its metrics from the device when it redraws: once per log interval.
        import sys

        from lightning.pytorch.callbacks import TQDMProgressBar

        if not sys.stderr.isatty():
            return []
        return [TQDMProgressBar(refresh_rate=max(1, self.cfg.trainer.log_every))]

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None,
                                    gradient_clip_algorithm=None):
        """Clip by global norm on the device. Lightning's mixed-precision plugin refuses to clip
        for a fused optimizer (it assumes a gradient scaler); bf16 and fp32 have none, so the
        gradients here are true gradients, and fp16 runs do not use the fused optimizer."""
        if not gradient_clip_val:
            return
        if self.cfg.trainer.precision.startswith("16"):
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, gradient_clip_val, foreach=True)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["kani_rng"] = rng.capture()

    def on_load_checkpoint(self, checkpoint):
        state = checkpoint.get("kani_rng")
        if state is None:
            return
        rng.restore(state)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to ``min_ratio`` at ``total`` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


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
        out.update({f"loss_{n}": s / c for n, s, c in zip(GROUPS, sums, counts) if c})
        if self.tick is not None:
            out["real_tokens_per_s"] = real / max(now - self.tick, 1e-9)
        self.tick = now
        return out
