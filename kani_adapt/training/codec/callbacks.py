"""Lightning callbacks of a codec run: data position + RNG, checkpoints, validation logging."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from kani_adapt.core.atomic import write_bytes
from kani_adapt.core import rng
from kani_adapt.codec import metrics
from kani_adapt.training.codec.data import Position
from kani_adapt.pages.plots import spectrogram_image


class RunState(Callback):
    """Counts batches (the data position) and saves/restores it with every RNG in checkpoints."""

    def __init__(self, position: Position):
        self.position = position

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.position.batches += 1

    def state_dict(self) -> dict:
        return {"batches": self.position.batches, **rng.capture()}

    def load_state_dict(self, state: dict) -> None:
        self.position.batches = int(state["batches"])
        rng.restore(state)


class Checkpointer(Callback):
    """Saves every ``every`` batches and at the last batch, as step-NNNNNN.ckpt and last.ckpt.

    Lightning's ModelCheckpoint counts optimizer steps (two per batch with a discriminator);
    counting batches keeps the names and cadence meaningful in every mode.
    """

    def __init__(self, folder: Path, position: Position, every: int, last_batch: int):
        self.folder, self.position, self.every, self.last_batch = folder, position, every, last_batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        done = self.position.batches
        if done % self.every and done < self.last_batch:
            return
        self.save(trainer)

    def save(self, trainer) -> None:
        """step-NNNNNN.ckpt of the batches done so far, copied to last.ckpt."""
        done = self.position.batches
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step-{done:06d}.ckpt"
        trainer.save_checkpoint(path)
        write_bytes(self.folder / "last.ckpt", path.read_bytes())

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        # NeMo stores its config object as hyper-parameters; the run's config.yaml already
        # describes the run, and without it the checkpoint is plain tensors (weights_only loads).
        for key in ("hyper_parameters", "hparams_name", "hparams_type"):
            checkpoint.pop(key, None)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


class Validator(Callback):
    """Every ``every`` batches: reconstruct the fixed validation clips, log metrics, audio and
    spectrograms to TensorBoard and append the metrics to metrics.jsonl."""

    def __init__(self, clips: list[np.ndarray], every: int, position: Position, metrics_file: Path,
                 last_batch: int):
        self.clips, self.every, self.position = clips, every, position
        self.metrics_file, self.last_batch = metrics_file, last_batch

    def _writer(self, trainer):
        logger = trainer.logger
        return getattr(logger, "experiment", None) if logger is not None else None

    def on_train_start(self, trainer, pl_module):
        writer = self._writer(trainer)
        if writer is None or self.position.batches:
            return
        sr = int(pl_module.sample_rate)
        for i, audio in enumerate(self.clips):
            writer.add_audio(f"val_{i}/original", torch.from_numpy(audio)[None], 0, sample_rate=sr)
            writer.add_image(f"val_{i}/original_spectrogram", spectrogram_image(audio, sr, "original"), 0,
                             dataformats="HWC")
        self.validate(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        done = self.position.batches
        if done % self.every == 0 or done == self.last_batch:
            self.validate(trainer, pl_module)

    def reconstruct(self, pl_module, audio: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(audio)[None].to(pl_module.device)
        with torch.no_grad():
            out, _ = pl_module(audio=x, audio_len=torch.tensor([x.shape[1]], device=x.device))
        return out[0, : len(audio)].float().cpu().numpy()

    def validate(self, trainer, pl_module) -> dict:
        was_training = pl_module.training
        pl_module.eval()
        sr, step = int(pl_module.sample_rate), self.position.batches
        writer = self._writer(trainer)
        scores = []
        for i, audio in enumerate(self.clips):
            recon = self.reconstruct(pl_module, audio)
            scores.append(metrics.all_metrics(audio, recon, sr))
            if writer is not None:
                writer.add_audio(f"val_{i}/reconstructed", torch.from_numpy(recon)[None], step, sample_rate=sr)
                writer.add_image(f"val_{i}/reconstructed_spectrogram",
                                 spectrogram_image(recon, sr, f"batch {step}"), step, dataformats="HWC")
        pl_module.train(was_training)
        row = {"batch": step, **{f"val_{k}": _mean([s[k] for s in scores]) for k in scores[0]}}
        if writer is not None:
            for key, value in row.items():
                if key != "batch" and np.isfinite(value):
                    writer.add_scalar(f"val/{key[4:]}", value, step)
        with self.metrics_file.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        return row
