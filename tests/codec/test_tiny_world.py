"""The tiny codec and the tiny speaker embedder behave like the real ones where it matters: codes
follow the audio (many frames per clip, many distinct codes, different sentences give different
codes, decoding is closer to the input than decoding the same codes shuffled) and voices differ.

Measured on espeak-ng speech the models were not built from (other sentences, other voices).
"""
from __future__ import annotations

import itertools
import tarfile

import numpy as np
import pytest
import torch

from kani_adapt.core import espeak
from kani_adapt import tokens
from kani_adapt.codec import nanocodec, tiny
from kani_adapt.codec.metrics import mel_distance

HELD_OUT = [  # (sentence, voice): neither is in the codec's build corpus
    ("the little boat sailed across the quiet lake", "en"),
    ("she bought fresh bread at the market this morning", "en+m2"),
    ("rain is expected over the hills tomorrow afternoon", "en-gb-scotland"),
    ("please close the window before you leave the room", "en+f4"),
    ("mind how you go now, the pavement is icy", "en-gb-scotland+f3"),
    ("ich trinke am abend gern einen apfelwein", "de+m3"),
    ("kannst du mir bitte das salz geben", "de"),
    ("der zug nach darmstadt faehrt gleich ab", "de+f2"),
    ("the bus to the city centre leaves at nine", "en-gb-scotland+m4"),
    ("wir treffen uns morgen um acht uhr am bahnhof", "de+m1"),
    ("are you coming down the road later on", "en+m7"),
    ("it is a lovely day for a walk by the river", "en-gb-scotland+m2"),
]


def trimmed(audio: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """Without leading and trailing silence, as the segment stage cuts clips."""
    loud = np.nonzero(np.abs(audio) > floor)[0]
    return audio[loud[0]: loud[-1] + 1]


@pytest.fixture(scope="module")
def codec():
    return nanocodec.load_codec("tiny")


@pytest.fixture(scope="module")
def clips():
    return [trimmed(espeak.speak(text, voice)) for text, voice in HELD_OUT]


def encode(codec, audio: np.ndarray) -> np.ndarray:
    codes, frames = codec.encode(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
    return codes[0, :, : int(frames[0])].T.numpy()


def decode(codec, codes: np.ndarray) -> np.ndarray:
    audio, n = codec.decode(torch.from_numpy(np.ascontiguousarray(codes.T))[None],
                            torch.tensor([len(codes)]))
    return audio[0, : int(n[0])].numpy()


def test_the_tiny_codec_is_a_nemo_file_read_back_through_the_nemo_path(codec):
    path = tiny.cached_file()
    with tarfile.open(path) as tar:
        names = {m.name.lstrip("./") for m in tar.getmembers()}
    assert {"model_config.yaml", "model_weights.ckpt"} <= names
    assert (codec.sample_rate, codec.samples_per_frame) == (22050, 1764)
    assert (codec.num_codebooks, codec.codebook_size) == (4, 4032)
    again = nanocodec.load_codec(str(path))
    audio = trimmed(espeak.speak("one more time", "en"))
    assert np.array_equal(encode(again, audio), encode(codec, audio))


def test_codes_follow_the_audio(codec, clips):
    codes = [encode(codec, a) for a in clips]
    seconds = sum(len(a) for a in clips) / codec.sample_rate
    assert seconds >= 30
    frames = sum(len(c) for c in codes)
    assert frames == sum(-(-len(a) // codec.samples_per_frame) for a in clips)
    kept = sum(len(tokens.drop_repeated_frames(c)) for c in codes) / frames
    assert kept >= 0.8, f"only {kept:.0%} of the frames survive repeat-dropping"
    every = np.concatenate(codes)
    distinct = [len(np.unique(every[:, cb])) for cb in range(4)]
    assert min(distinct) >= 200, f"distinct codes per codebook over {seconds:.0f} s: {distinct}"
    for a, b in itertools.combinations(codes, 2):  # different sentences, different codes
        n = min(len(a), len(b))
        assert np.mean(np.all(a[:n] == b[:n], axis=1)) < 0.1


def test_decoding_is_closer_to_the_input_than_decoding_shuffled_codes(codec, clips):
    rng = np.random.default_rng(0)
    own, other = [], []
    for audio in clips:
        codes = encode(codec, audio)
        shuffled = codes[rng.permutation(len(codes))]
        own.append(mel_distance(audio, decode(codec, codes), codec.sample_rate))
        other.append(mel_distance(audio, decode(codec, shuffled), codec.sample_rate))
    assert all(o < s for o, s in zip(own, other)), list(zip(own, other))
    assert np.mean(own) < 0.8 * np.mean(other), (np.mean(own), np.mean(other))


def test_digital_silence_gives_one_repeated_code_as_in_the_real_codec(codec):
    codes = encode(codec, np.zeros(codec.sample_rate, np.float32))
    assert len(codes) == 13 and len(tokens.drop_repeated_frames(codes[1:-1])) == 1


def test_the_log_compressor_computes_a_logarithm():
    """The residual block designed in tiny.py maps a band envelope x to log(x / 1e-5)."""
    model = nanocodec.build_model("tiny", discriminators=())
    tiny.design_encoder(model.audio_encoder)
    res = model.audio_encoder.res_layers[-1].res_blocks[0].res_blocks[0]
    x = np.geomspace(tiny.FLOOR, tiny.TOP, 200)
    inputs = torch.zeros(1, res.input_conv.conv.in_channels, len(x))
    inputs[0, : tiny.BANDS] = torch.tensor(x, dtype=torch.float32)
    with torch.no_grad():
        out = res(inputs=inputs, input_len=torch.tensor([len(x)]))[0, : tiny.BANDS].numpy()
    expected = np.log(x / tiny.FLOOR)  # 0 .. 11.5
    assert np.abs(out - expected[None]).max() < 0.1, np.abs(out - expected[None]).max()


def test_the_tiny_embedder_separates_espeak_voices():
    from kani_adapt.models.speaker import embedder

    model = embedder.load(embedder.TINY)
    sentences = [text for text, _ in HELD_OUT[:3]]
    voices = ["en+m3", "en+f3", "en-gb-scotland+m4", "de+f4", "de", "de+m3"]
    embs = {v: model.embed([espeak.speak(s, v) for s in sentences], espeak.SAMPLE_RATE)
            for v in voices}
    same = {v: np.mean([e[i] @ e[j] for i, j in itertools.combinations(range(len(e)), 2)])
            for v, e in embs.items()}
    other = {v: np.mean([float(embs[v][i] @ embs[u][j]) for u in voices if u != v
                         for i in range(3) for j in range(3)]) for v in voices}
    assert np.mean(list(same.values())) > np.mean(list(other.values())) + 0.2, (same, other)
    assert all(same[v] > other[v] for v in voices), (same, other)
