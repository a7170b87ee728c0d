"""synthesize(): the one prompt -> generate -> decode path, identical to calling its parts."""
import numpy as np
import pytest
import soundfile as sf
import torch

from kani_adapt import tokens
from kani_adapt.models.generator.generate import generate
from kani_adapt.config.sampling import SamplingConfig
from kani_adapt.models.generator.synthesize import synthesize
from kani_adapt.models.generator.tokenizer import encode_text
from tests.helpers import substitute_codec, tiny_generator

GREEDY = SamplingConfig(temperature=0.0, max_frames=3, constrain_audio=True, seed=0)


class FrameCodec:
    """A codec double whose audio spells out the codes, so a wrong decode is visible."""
    sample_rate = 100
    num_codebooks = 4

    def decode(self, codes, lengths):
        audio = codes.float().sum(1).repeat_interleave(2, dim=1)  # 2 samples per frame
        return audio, lengths * 2


@pytest.fixture(scope="module")
def tiny():
    return tiny_generator()


def test_greedy_codes_equal_the_hand_written_path(tiny):
    model, tok = tiny
    texts, tags = ["hallo welt", "guten tag", "eins"], ["de", None, "de_hessian"]
    voice = np.random.default_rng(1).standard_normal(128).astype(np.float32)
    speakers = [voice, None, voice]
    rows = synthesize(model, tok, None, texts, tags, speakers, GREEDY, batch_size=1)
    for i, text in enumerate(texts):
        spk = torch.from_numpy(voice[None]) if speakers[i] is not None else None
        [expected] = generate(model, [tokens.prompt_ids(encode_text(tok, text, tags[i]))], spk,
                              GREEDY)
        assert np.array_equal(rows[i].codes, expected.codes)
        assert rows[i].hit_length_cap == expected.hit_length_cap and rows[i].audio is None


def test_one_speaker_vector_is_used_for_every_text(tiny):
    model, tok = tiny
    voice = np.random.default_rng(2).standard_normal(128).astype(np.float32)
    one = synthesize(model, tok, None, ["a b", "c d"], "de", voice, GREEDY)
    each = synthesize(model, tok, None, ["a b", "c d"], "de", [voice, voice], GREEDY)
    assert all(np.array_equal(x.codes, y.codes) for x, y in zip(one, each))


def test_each_row_is_decoded_to_its_own_waveform(tiny):
    model, tok = tiny
    rows = synthesize(model, tok, FrameCodec(), ["hallo", "welt"], "de", None, GREEDY)
    for row in rows:
        assert row.sample_rate == 100 and row.audio.dtype == np.float32
        expected = np.repeat(row.codes.sum(1).astype(np.float32), 2)
        assert np.array_equal(row.audio, expected)


def test_generate_with_a_codec_writes_a_wav_beside_the_codes(tmp_path, monkeypatch):
    from kani_adapt.cli.main import main

    asked = substitute_codec(monkeypatch, FrameCodecProtocol())
    model_dir = tmp_path / "tiny"
    assert main(["init", "--size", "tiny", "--out", str(model_dir)]) == 0
    out = tmp_path / "codes.npy"
    assert main(["generate", str(model_dir), "--text", "hallo", "--max-frames", "3",
                 "--temperature", "0", "--codec", "double", "--out", str(out)]) == 0
    codes = np.load(out)
    audio, rate = sf.read(tmp_path / "codes.wav", dtype="float32")
    assert rate == 100 and len(audio) == 2 * len(codes) > 0
    assert asked == ["double"]  # the --codec value, through the registry


class FrameCodecProtocol(FrameCodec):
    """The double, complete enough for the registry's protocol check."""
    codebook_size = tokens.CODEBOOK_SIZE
    samples_per_frame = 2

    def encode(self, audio, lengths):
        raise NotImplementedError
