"""The Lightning module: continue-pretraining (all weights) or LoRA on the generator."""
from __future__ import annotations

import math
import time

import lightning as L
import torch

from kani_adapt.models.generator.model import insert_at_one
from kani_adapt import rng, tokens
from kani_adapt.training import lora
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.losses import causal_lm_losses, perplexity


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
        self._tick: float | None = None
        self.sample_hook = None  # set by the run: callable(module) logging generated samples

    @property
    def kani(self):
        """The KaniTTS2 model itself (with LoRA layers injected in place, in LoRA mode)."""
        return self.net.get_base_model() if self.cfg.mode == "lora" else self.net

    def forward_losses(self, batch) -> dict[str, torch.Tensor]:
        labels = batch["labels"]
        spk = batch.get("speaker_emb")
        logits = self.kani(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           speaker_emb=spk).logits
        if spk is not None:
            labels = insert_at_one(labels, torch.full_like(labels[:, 0], tokens.IGNORE_INDEX))
        return causal_lm_losses(logits, labels)

    def training_step(self, batch, batch_idx):
        out = self.forward_losses(batch)
        self._log_group("train", out)
        mask = batch["attention_mask"]
        real = int(mask.sum())
        self.log("train/padding_efficiency", real / mask.numel())
        if self._tick is not None:
            self.log("train/real_tokens_per_s", real / max(time.perf_counter() - self._tick, 1e-9),
                     prog_bar=True)
        self._tick = time.perf_counter()
        return out["loss"]

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

    def _log_group(self, prefix: str, out: dict) -> None:
        self.log(f"{prefix}/loss", out["loss"], prog_bar=True)
        for key, value in out.items():
            if key != "loss":
                self.log(f"{prefix}/{key}", value)
                if key.startswith("loss_cb"):
                    # A tensor, not float(): no host sync on the training hot path.
                    self.log(f"{prefix}/ppl_{key[5:]}", value.clamp(max=50.0).exp())
        for layer, rope in enumerate(self.kani.model.learnable_rope_layers):
            if rope is not None:
                self.log(f"rope/alpha_layer{layer}", rope.alpha().detach())

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
        optimizer = torch.optim.AdamW([g for g in params if g["params"]], betas=tuple(o.betas))
        total = self.cfg.trainer.max_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, o.warmup_steps, total, o.min_lr_ratio))
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

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
