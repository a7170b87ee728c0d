"""CPU/GPU cost of ONE full-size (0.6 kbps shape) codec fine-tuning step, NeMo's GAN step included.

Run: python benchmarks/codec_step.py [--mode decoder] [--batch-size 8] [--seconds 1.0] [--device cpu]
Prints the wall time of the training step (discriminator + generator update, excluding model
build and data loading of the first batch) and the process's peak RSS. Random weights: the cost
does not depend on them.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="decoder", choices=["decoder", "full", "lora"])
    parser.add_argument("--size", default="0.6kbps", choices=["0.6kbps", "tiny"],
                        help="codec shape (tiny: a check that the script runs)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0, help="segment length per item")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--discriminators", nargs="*", default=["mpd", "mrd"],
                        choices=["mpd", "mrd"], help="the GAN's discriminators (none: no GAN)")
    args = parser.parse_args()

    import soundfile as sf
    import torch
    from lightning.pytorch import Callback, Trainer

    from kani_adapt.training.codec.data import Position, train_loader
    from kani_adapt.codec.manifest import read_manifest
    from kani_adapt.training.codec.train import n_optimizers, prepare_model
    from kani_adapt.training.codec.config import CodecTrainConfig
    from kani_adapt.core.devices import for_lightning, resolve

    class Timer(Callback):
        def on_train_batch_start(self, *a):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_train_batch_end(self, *a):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.seconds = time.perf_counter() - self.start

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "a.wav"
        sf.write(wav, torch.randn(int(22050 * (args.seconds + 1))).mul(0.1).numpy(), 22050)
        manifest = Path(tmp) / "m.json"
        manifest.write_text(f'{{"audio_filepath": "{wav}", "duration": {args.seconds + 1}}}\n')
        cfg = CodecTrainConfig(train_manifest=str(manifest), codec=args.size, mode=args.mode,
                               batch_size=args.batch_size, segment_seconds=args.seconds, max_steps=1,
                               discriminators=list(args.discriminators))
        t0 = time.perf_counter()
        model = prepare_model(cfg)
        build = time.perf_counter() - t0
        segment = -(-int(args.seconds * 22050) // 1764) * 1764
        loader = train_loader(read_manifest(manifest), Position(), 22050, segment, args.batch_size, 0)
        timer = Timer()
        accelerator, gpus = for_lightning(args.device)
        trainer = Trainer(max_steps=n_optimizers(model), accelerator=accelerator, devices=gpus or 1,
                          logger=False, enable_checkpointing=False, callbacks=[timer],
                          limit_val_batches=0, num_sanity_val_steps=0, enable_progress_bar=False,
                          enable_model_summary=False)
        trainer.fit(model, train_dataloaders=loader)
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
    on_gpu = resolve(args.device).startswith("cuda")
    device = torch.cuda.get_device_name() if on_gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"mode={args.mode} batch={args.batch_size}x{segment / 22050:.2f}s device={device}")
    print(f"model build: {build:.1f} s, trainable parameters: {trainable:.1f} M")
    parts = "discriminator + generator" if model.discriminator is not None else "generator"
    print(f"one training step ({parts}; discriminators: {' '.join(args.discriminators) or 'none'}): "
          f"{timer.seconds:.1f} s")
    print(f"peak RSS: {rss_gib:.2f} GiB")
    if on_gpu:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
