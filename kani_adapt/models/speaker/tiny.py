"""The tiny speaker embedder: the published layout at a few thousand parameters, fitted so that
voices differ.

A random embedder of this size gives every clip nearly the same vector (cosines of 0.99 between
any two voices), which would make speaker similarity, outlier rejection and voice-change cuts
untestable. So it is trained briefly, deterministically, at build time: 150 Adam steps of a
cosine-softmax speaker classifier over 16 espeak-ng voices (6 sentences each, 1.5 s crops), the
classifier's weights thrown away afterwards, and the BatchNorm statistics set from all the
training clips. On other espeak-ng voices and sentences, clips of one voice are then closer to
each other than to other voices (tests/models/test_speaker_embedder.py measures it). Kept per
machine like the tiny codec (:mod:`kani_adapt.core.built`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kani_adapt.models.speaker import network

BUILD_VERSION = 1
STEPS, BATCH, CROP_SECONDS, LR, SCALE = 150, 16, 1.5, 3e-3, 10.0
VOICES = ("en", "en+m2", "en+f2", "de+m5", "de+f1", "en-us+m7", "fr+f5", "es+m1", "it+f2",
          "nl+m6", "pl+f3", "sv+m1", "en+m1", "de+f5", "en-us+f1", "fr+m4")
SENTENCES = ("the quick brown fox jumps over the lazy dog", "guten morgen, wie geht es dir heute",
             "one two three four five six seven", "we will meet at the station at eight",
             "das wetter ist heute sehr schoen", "where are my keys and my phone")


def corpus() -> list[tuple[np.ndarray, int]]:
    """(16 kHz clip, voice index) for every voice and sentence."""
    from kani_adapt.core import espeak

    return [(network.prepare(espeak.speak(text, voice), espeak.SAMPLE_RATE), v)
            for text in SENTENCES for v, voice in enumerate(VOICES)]


def _crops(clips, rng, count: int):
    size = int(CROP_SECONDS * network.SAMPLE_RATE)
    picked = rng.choice(len(clips), count, replace=False)
    audio, labels = [], []
    for i in picked:
        clip, label = clips[i]
        start = int(rng.integers(0, max(1, len(clip) - size)))
        audio.append(clip[start:start + size])
        labels.append(label)
    return audio, torch.tensor(labels)


def fit(model, clips, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    head = torch.nn.Linear(model.config.embd_size, len(VOICES), bias=False)
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=LR)
    losses = []
    model.train()
    for _ in range(STEPS):
        audio, labels = _crops(clips, rng, BATCH)
        batch, lengths = network.pad(audio)
        logits = SCALE * model(batch, lengths) @ torch.nn.functional.normalize(head.weight, dim=-1).T
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    _set_batchnorm_statistics(model, [c for c, _ in clips])
    return losses


def _set_batchnorm_statistics(model, clips) -> None:
    """Running statistics = the exact mean and variance over all clips (not a moving average)."""
    norms = (model.top_layers.batchnorm1, model.top_layers.batchnorm2)
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.eval()
    for bn in norms:
        bn.train()
    with torch.no_grad():
        batch, lengths = network.pad(clips)
        model(batch, lengths)
    for bn in norms:
        bn.momentum = 0.1
    model.eval()


def build(seed: int = 0):
    """The fitted tiny embedder (a ``SpeakerEmbedder`` in eval mode)."""
    torch.manual_seed(seed)
    model = network.SpeakerEmbedder(network.make_config())
    fit(model, corpus(), seed)
    return model.eval()


def cached_folder(seed: int = 0) -> Path:
    """The tiny embedder's folder (publisher's layout) on this machine, built on first use."""
    from kani_adapt.core import built, espeak

    parts = {"version": BUILD_VERSION, "seed": seed, "espeak": espeak.version(),
             "torch": torch.__version__.split("+")[0]}
    return built.cached("tiny-speaker-embedder", parts,
                        lambda tmp: network.write_files(build(seed), tmp),
                        "the tiny speaker embedder from espeak-ng speech")
