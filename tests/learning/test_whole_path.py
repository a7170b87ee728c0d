"""The whole path in the tiny world: espeak-ng recordings -> `data-tools prepare` (real stages, the
tiny NeMo codec, the tiny speaker embedder) -> `kani-adapt train` -> export -> `kani-adapt
generate --codec tiny`: the audio generated for a memorised row is the codec's round trip of the
clip that `prepare` kept. Frames are kept as encoded (no repeat-dropping), so the comparison is
exact sample for sample."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from data_tools.cli import main as data_tools
from kani_adapt import audio as audio_io, dataset
from kani_adapt.core import espeak
from kani_adapt.core.atomic import write_audio
from tests.helpers import tiny_embedder_folder
from tests.learning import world as W

pytestmark = pytest.mark.slow

RECORDINGS_ROW = {"anna": ("en-gb-scotland", "see you at the match"),
              "ben": ("en-gb-scotland+m4", "the bus leaves at nine")}


def record(folder, seed: int, voice: str, text: str) -> None:
    """A clip as a phone records it: quiet room noise, speech, quiet room noise."""
    rng = np.random.default_rng(seed)
    room = lambda s: (rng.standard_normal(int(s * 22050)) * 1e-4).astype(np.float32)  # noqa: E731
    write_audio(folder / f"{voice}.wav", np.concatenate([room(0.4), espeak.speak(text, voice),
                                                          room(0.4)]), 22050)
    (folder / f"{voice}.txt").write_text(text + "\n", encoding="utf-8")


def test_recordings_to_generated_speech_equal_the_codec_round_trip(tmp_path):
    for i, (speaker, (voice, text)) in enumerate(RECORDINGS_ROW.items()):
        (tmp_path / "recordings" / speaker).mkdir(parents=True)
        record(tmp_path / "recordings" / speaker, i, voice, text)
    tiny_embedder_folder(tmp_path / "embedder")
    config = tmp_path / "data.yaml"
    config.write_text(
        f"work: {tmp_path / 'work'}\n"
        f"ingest:\n  sources:\n    - {{path: {tmp_path / 'recordings'}, name: rec, tag: en_scotland}}\n"
        "align: {enabled: off}\ntranscribe: {enabled: off}\n"
        f"embed: {{model: {tmp_path / 'embedder'}, device: cpu}}\n"
        "tokenize: {codec: tiny, device: cpu}\nwrite: {drop_repeated_frames: false}\n")
    assert data_tools(["prepare", str(config)]) == 0
    layout = dataset.DatasetLayout(tmp_path / "work" / "dataset")
    table = dataset.read(layout.hf)
    assert len(table) == 2 and min(table[dataset.ENCODED_LEN]) >= 15
    W.train(tmp_path / "run", layout.hf, "tiny", "continue_pretrain", 200, 5e-3,
            **{"data.drop_repeated_frames": "false"})
    merged = W.export(tmp_path / "run", tmp_path / "merged")

    clips = {json.loads(line)["text"]: json.loads(line)["audio_filepath"]
             for line in layout.nemo_manifest.read_text().splitlines()}
    row = table[0]
    generated = W.generate(merged, row, tmp_path / "gen", codec="tiny")
    assert np.array_equal(generated, W.codes_of(row, drop_repeats=False))
    kept = audio_io.read(clips[row[dataset.TEXT]], 22050).audio
    round_trip = W.decode(W.encode(kept))
    wav, rate = sf.read(sorted((tmp_path / "gen").glob("*.wav"))[-1], dtype="float32")
    assert rate == 22050 and len(wav) == len(round_trip)
    np.testing.assert_allclose(wav, round_trip, atol=2 / 32768)  # 16-bit WAV
