"""`kani-adapt speaker-emb` end to end on a twin saved by the official EmbeddingsModel."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from kani_adapt.models.speaker.voice import load_speaker_embedding
from kani_adapt.cli.main import main
from tests.conformance.twins import official_speaker_embedder


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spk") / "speaker-emb-tbr"
    return official_speaker_embedder(folder, seed=5), folder


def write_refs(folder):
    rng = np.random.default_rng(0)
    refs = []
    for i, (rate, seconds, channels) in enumerate([(16000, 0.6, 1), (44100, 0.4, 2)]):
        audio = (rng.standard_normal((int(rate * seconds), channels)) * 0.2).astype(np.float32)
        path = folder / f"ref{i}.wav"
        sf.write(path, audio, rate, subtype="FLOAT")
        refs.append((path, audio.mean(axis=1), rate))
    return refs


def official_embedding(model, audio, rate):
    audio = soxr.resample(audio, rate, 16000).astype(np.float32) if rate != 16000 else audio
    with torch.no_grad():
        return model(torch.from_numpy(audio)[None])[0].numpy()


def test_one_reference_gives_the_official_embedding(twin, tmp_path, capsys):
    official, folder = twin
    (path, audio, rate), _ = write_refs(tmp_path)
    out = tmp_path / "voice.npy"
    assert main(["speaker-emb", str(path), "--model", str(folder), "--out", str(out)]) == 0
    voice = np.load(out)
    assert voice.dtype == np.float32 and voice.shape == (128,)
    assert np.abs(voice - official_embedding(official, audio, rate)).max() <= 1e-5
    assert "wrote" in capsys.readouterr().out


def test_several_references_give_their_renormalised_mean(twin, tmp_path):
    official, folder = twin
    refs = write_refs(tmp_path)
    out = tmp_path / "voices" / "mean.npy"
    assert main(["speaker-emb", *[str(p) for p, _, _ in refs], "--model", str(folder),
                 "--out", str(out)]) == 0
    each = np.stack([official_embedding(official, a, r) for _, a, r in refs])
    expected = each.mean(0) / np.linalg.norm(each.mean(0))
    voice = load_speaker_embedding(out)  # what `generate --speaker-emb` reads
    assert np.abs(voice - expected).max() <= 1e-5
    assert abs(np.linalg.norm(voice) - 1) < 1e-5


def test_unreadable_reference_is_one_line_naming_the_file(twin, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    assert main(["speaker-emb", str(bad), "--model", str(twin[1]),
                 "--out", str(tmp_path / "v.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(bad) in err and "\n" not in err
    assert not (tmp_path / "v.npy").exists()


def test_help_explains_the_voice_file_without_importing_torch():
    code = ("import sys\nfrom kani_adapt.cli.main import main\n"
            "try:\n    main(['speaker-emb', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported for --help'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "--speaker-emb" in run.stdout and "16 kHz" in run.stdout and "mean" in run.stdout
