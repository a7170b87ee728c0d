"""An eval folder written by the real `kani-adapt eval` (tiny random generators and codec,
espeak-ng references of two speakers and two accents), shared by the listening tests."""
import json
import shutil
from pathlib import Path

import pytest

from kani_adapt.cli.main import main
from tests.scorers.speech import speak

SENTENCES = {"en": ["the bus leaves at nine", "it is a lovely day"],
             "de": ["guten morgen wie geht es", "der zug fährt gleich ab"]}
SPEAKERS = (("anna", "en+f3", "en"), ("bernd", "de+m3", "de"))


def build_eval(root: Path) -> Path:
    for name, seed in (("adapted", 0), ("base", 1)):
        assert main(["init", "--size", "tiny", "--out", str(root / name), "--seed", str(seed),
                     "--dtype", "fp32"]) == 0
    lines = []
    for speaker, voice, tag in SPEAKERS:
        for k, text in enumerate(SENTENCES[tag]):
            speak(text, root, voice, f"{speaker}{k}")
            lines.append(json.dumps({"id": f"{speaker}-{k}", "text": text, "speaker": speaker,
                                     "tag": tag, "reference": f"{speaker}{k}.wav",
                                     "reference_text": text}))
    (root / "set.jsonl").write_text("\n".join(lines) + "\n")
    out = root / "eval"
    assert main(["eval", str(root / "adapted"), "codec=tiny", "sampling.max_frames=12",
                 "batch_size=4", "resamples=50", "device=cpu", "scorers.dnsmos=false",
                 "--compare", str(root / "base"), "--set", str(root / "set.jsonl"),
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def eval_master(tmp_path_factory):
    return build_eval(tmp_path_factory.mktemp("listen-eval"))


@pytest.fixture
def eval_dir(eval_master, tmp_path):
    """A fresh copy per test (the listening store lives in the eval folder)."""
    return Path(shutil.copytree(eval_master, tmp_path / "eval"))
