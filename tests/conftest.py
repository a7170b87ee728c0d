"""Settings and session fixtures shared by several test folders (their helpers live in helper
modules: ``tests/helpers.py``, ``tests/codec/corpus.py``, ``tests/scorers/speech.py``, ...)."""
import os

# Tests never reach a model hub: hub ids resolve through the local cache only (a lookup that
# cannot connect would otherwise retry for about 46 s). Set before huggingface_hub is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import shutil
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    no_gpu = pytest.mark.skip(reason="needs CUDA")
    no_mfa = pytest.mark.skip(reason="needs Montreal Forced Aligner (conda install)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_gpu)
        if "mfa" in item.keywords and shutil.which("mfa") is None:
            item.add_marker(no_mfa)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """A synthetic tokenized dataset: 3 speakers, 4 clips each."""
    from kani_adapt.training.synthetic import synthetic_dataset

    return synthetic_dataset(tmp_path_factory.mktemp("data") / "synth", n_speakers=3,
                             per_speaker=4)


@pytest.fixture(scope="session")
def base_ckpt(tmp_path_factory):
    """A tiny random generator saved by `kani-adapt init` (fp32, official RoPE start)."""
    from kani_adapt.cli.main import main

    out = tmp_path_factory.mktemp("gen") / "tiny"
    assert main(["init", "--size", "tiny", "--out", str(out), "--dtype", "fp32",
                 "--alpha-init", "official"]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_nemo(tmp_path_factory):
    """A copy of the tiny codec's .nemo (built on this machine; codes follow the audio)."""
    import shutil

    from kani_adapt.codec.tiny import cached_file

    return Path(shutil.copy(cached_file(), tmp_path_factory.mktemp("codec") / "tiny.nemo"))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Speech-like tones of two speakers with a NeMo manifest (tests/codec/corpus.py)."""
    from tests.codec.corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory):
    """A tiny random Whisper in the transformers layout (tests/scorers/whisper_twin.py)."""
    from tests.scorers.whisper_twin import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")
