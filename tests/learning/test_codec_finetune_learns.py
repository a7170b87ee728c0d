"""The codec fine-tune learns: `kani-adapt codec train` (decoder mode, NeMo's GAN step without
discriminators) on a few clips of voices the tiny codec was not built from lowers their round-trip
mel distance within a few steps, while their tokens stay exactly the same."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kani_adapt.core import espeak
from kani_adapt.core.atomic import write_audio
from kani_adapt.cli.main import main
from kani_adapt.codec import nanocodec
from kani_adapt.codec.metrics import mel_distance

pytestmark = pytest.mark.slow

CLIPS = [("the river runs fast after the rain", "it+m3"),
         ("every morning the birds sing outside", "nl+f2"),
         ("bring your coat, it is getting cold", "pl+m1")]
STEPS = 40
LOWER_BY = 0.04  # measured: 0.670 -> 0.627 (6.4 % lower) after 40 steps; 80 steps give 8.5 %


def round_trip_distances(codec, clips) -> tuple[list[float], list[np.ndarray]]:
    out, codes_all = [], []
    for audio in clips:
        codes, frames = codec.encode(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
        decoded, n = codec.decode(codes, frames)
        out.append(mel_distance(audio, decoded[0, : int(n[0])].numpy(), codec.sample_rate))
        codes_all.append(codes.numpy())
    return out, codes_all


def test_decoder_fine_tuning_lowers_the_mel_distance_of_its_clips(tmp_path):
    clips, lines = [], []
    for i, (text, voice) in enumerate(CLIPS):
        audio = espeak.speak(text, voice)
        clips.append(audio)
        wav = write_audio(tmp_path / f"clip{i}.wav", audio, espeak.SAMPLE_RATE)
        lines.append(json.dumps({"audio_filepath": str(wav), "duration": len(audio) / 22050,
                                 "speaker": voice, "text": text}))
    manifest = tmp_path / "manifest.json"
    manifest.write_text("\n".join(lines) + "\n")
    before, codes_before = round_trip_distances(nanocodec.load_codec("tiny"), clips)
    run, config = tmp_path / "run", tmp_path / "codec.yaml"
    config.write_text(f"train_manifest: {manifest}\nrun_dir: {run}\ncodec: tiny\nmode: decoder\n"
                      "discriminators: []\nbatch_size: 3\nsegment_seconds: 1.0\nval_clips: 1\n"
                      "device: cpu\noptim: {lr: 3.0e-3, lr_decay: 1.0}\n")
    assert main(["codec", "train", str(config), f"max_steps={STEPS}", f"val_every={STEPS}",
                 f"ckpt_every={STEPS}"]) == 0
    assert main(["codec", "export", str(run), "--out", str(tmp_path / "tuned.nemo")]) == 0
    after, codes_after = round_trip_distances(nanocodec.load_codec(str(tmp_path / "tuned.nemo")), clips)
    assert all(np.array_equal(a, b) for a, b in zip(codes_before, codes_after))  # tokens stay valid
    share = 1 - np.mean(after) / np.mean(before)
    assert share >= LOWER_BY, f"mel distance {np.mean(before):.3f} -> {np.mean(after):.3f}"
