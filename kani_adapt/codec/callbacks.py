"""Lightning callbacks of a codec run: data position + RNG, checkpoints, validation logging."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from kani_adapt.codec import metrics
from kani_adapt.codec.data import Position


class RunState(Callback):
    """Counts batches (the data position) and saves/restores it with every RNG in checkpoints."""

    def __init__(self, position: Position):
        self.position = position

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.position.batches += 1

    def state_dict(self) -> dict:
        np_state = np.random.get_state()
        return {
            "batches": self.position.batches,
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            # Plain lists and tensors only, so the checkpoint loads with weights_only=True.
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "python": json.dumps(random.getstate()),
        }

    def load_state_dict(self, state: dict) -> None:
        self.position.batches = int(state["batches"])
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        name, keys, *rest = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
        version, internal, gauss = json.loads(state["python"])
        random.setstate((version, tuple(internal), gauss))


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
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step-{done:06d}.ckpt"
        trainer.save_checkpoint(path)
        tmp = self.folder / "last.ckpt.tmp"
        tmp.write_bytes(path.read_bytes())
        tmp.replace(self.folder / "last.ckpt")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        # NeMo stores its config object as hyper-parameters; the run's config.yaml already
        # describes the run, and without it the checkpoint is plain tensors (weights_only loads).
        for key in ("hyper_parameters", "hparams_name", "hparams_type"):
            checkpoint.pop(key, None)


def _spectrogram_figure(audio: np.ndarray, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mag = metrics._magnitude(audio.astype(np.float64), 1024, 256)
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.imshow(np.log10(mag.T + 1e-5), origin="lower", aspect="auto")
    ax.set_title(title)
    fig.tight_layout()
    return fig


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
            writer.add_figure(f"val_{i}/original_spectrogram", _spectrogram_figure(audio, "original"), 0)
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
                writer.add_figure(f"val_{i}/reconstructed_spectrogram",
                                  _spectrogram_figure(recon, f"batch {step}"), step)
        pl_module.train(was_training)
        row = {"batch": step, **{f"val_{k}": _mean([s[k] for s in scores]) for k in scores[0]}}
        if writer is not None:
            for key, value in row.items():
                if key != "batch" and np.isfinite(value):
                    writer.add_scalar(f"val/{key[4:]}", value, step)
        with self.metrics_file.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        return row
