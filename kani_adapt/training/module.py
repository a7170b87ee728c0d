"""The Lightning module: the parameterisation (``mode``: all weights, or LoRA on a frozen base)
and the optimiser; what a step optimises is the run's objective (:mod:`kani_adapt.training.objectives`)."""
from __future__ import annotations

import logging
import math

import lightning as L
import torch

from kani_adapt import tokens
from kani_adapt.core import rng
from kani_adapt.training import health, lora
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.losses import perplexity
from kani_adapt.training.objectives import registry as objectives


PROGRESS = ("loss", "real_tokens_per_s")  # train figures shown on the progress bar
log = logging.getLogger("kani_adapt.train")


class GeneratorModule(L.LightningModule):
    def __init__(self, cfg: TrainConfig, model):
        super().__init__()
        self.cfg = cfg
        self.objective = objectives.get(cfg.objective)
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
        self.meter = self.objective.meter()
        self.loss_watch = health.LossWatch()
        self.balance: dict | None = None  # gradient norms of the step being logged
        # full fine-tunes: how far the text embeddings turn from the weights the run starts with
        self.drift = health.TextDrift(model) if health.embedding(model) is not None else None

    @property
    def kani(self):
        """The KaniTTS2 model itself (with LoRA layers injected in place, in LoRA mode)."""
        return self.net.get_base_model() if self.cfg.mode == "lora" else self.net

    def forward_losses(self, batch) -> dict[str, torch.Tensor]:
        """The objective's figures of a batch (``loss`` among them), as validation sees them."""
        return self.objective.losses(self, batch)

    def training_step(self, batch, batch_idx):
        loss = self.objective.training_loss(self, batch)
        self.loss_watch.add(loss)
        return loss

    def on_before_optimizer_step(self, optimizer):
        if self._log_now():  # unclipped gradients, read at the log interval only
            self.balance = health.grad_balance(self.kani)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self._log_now():
            self._log_train(self.meter.flush())
            self._log_health()

    def _log_health(self) -> None:
        step = self.global_step
        figures = self.loss_watch.flush(step)
        if self.balance is not None:
            figures.update(self.balance)
            if health.out_of_balance(self.balance["grad_ratio"]):
                log.warning("step %d: audio/text gradient norm ratio %.3g is outside [1/%g, %g] "
                            "(audio %.3g, text %.3g): one side starves", step,
                            self.balance["grad_ratio"], health.GRAD_RATIO_BOUND,
                            health.GRAD_RATIO_BOUND, self.balance["grad_norm_audio"],
                            self.balance["grad_norm_text"])
            self.balance = None
        if self.drift is not None:
            figures["text_emb_cos_to_init"] = cosine = self.drift.cosine(self.kani)
            if cosine < health.COSINE_ALARM:
                log.warning("step %d: text embeddings at cosine %.3f to their start (alarm below "
                            "%.2f): the pretrained text table is turning; lower the learning rate "
                            "or freeze model.embed_tokens (optim.freeze)", step, cosine,
                            health.COSINE_ALARM)
        for key, value in figures.items():
            self.log(f"health/{key}", value)

    def _log_now(self) -> bool:
        trainer = self._trainer
        return trainer is not None and trainer._logger_connector.should_update_logs

    def _log_train(self, m: dict) -> None:
        for key, value in m.items():
            self.log(f"train/{key}", value, prog_bar=key in PROGRESS)
        for layer, rope in enumerate(self.kani.model.learnable_rope_layers):
            if rope is not None:
                self.log(f"rope/alpha_layer{layer}", float(rope.alpha().detach()))

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        out = self.forward_losses(batch)
        prefix = "val" if dataloader_idx == 0 else "val_replay"
        n = self.objective.weight(batch)
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
